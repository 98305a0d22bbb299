//! Capabilities → a WASI context: preopened directories (`capabilities.fs`),
//! outbound addresses (`capabilities.net`), environment variables
//! (`capabilities.env`). Nothing else is granted.
//!
//! A directory grant is resolved to its real path when the instance starts
//! and refused if that leaves its base (`$SKILL_DIR`, or `$SKILL_DATA` — the
//! skill's data directory for the instance's owner); inside a preopen, WASI
//! (cap-std) refuses any path, symlinks included, that leads out of it.

use aos_kernel::services::{ServiceOwner, SyscallPort};
use aos_manifest::{FsMode, SkillManifest};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

/// `$SKILL_DATA` of `skill` for `owner`: `$AOS_HOME/skill-data/<skill>/<owner>`
/// (`system`, `agent-<id>`, `session-<id>`).
pub(crate) fn skill_data(
    home: &Path,
    skill: &str,
    owner: &ServiceOwner,
) -> Result<PathBuf, String> {
    let owner_dir = match owner {
        ServiceOwner::System => "system".to_string(),
        ServiceOwner::Agent(id) => format!("agent-{id}"),
        ServiceOwner::Session(id) => format!("session-{id}"),
    };
    let safe = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    if !safe(skill) || !safe(&owner_dir) {
        return Err(format!(
            "no data directory for skill {skill:?} and owner {owner_dir:?}: unsafe name"
        ));
    }
    Ok(home.join("skill-data").join(skill).join(owner_dir))
}

/// Resolves a grant's host path (`$SKILL_DIR/…` or `$SKILL_DATA/…`; the
/// manifest parser refused anything else and any `..`) to the real path it
/// names, refusing one that leads out of its base through a symlink.
/// `$SKILL_DATA` is created on first use; its subdirectories must exist.
fn resolve(i: usize, host: &str, skill_dir: &Path, data: &Path) -> Result<PathBuf, String> {
    let (base, rest) = if let Some(r) = host.strip_prefix("$SKILL_DIR") {
        (skill_dir, r)
    } else if let Some(r) = host.strip_prefix("$SKILL_DATA") {
        std::fs::create_dir_all(data).map_err(|e| {
            format!(
                "capabilities.fs[{i}]: cannot create {}: {e}",
                data.display()
            )
        })?;
        (data, r)
    } else {
        return Err(format!(
            "capabilities.fs[{i}].host {host:?} must start with $SKILL_DIR or $SKILL_DATA"
        ));
    };
    let canon = |p: &Path| {
        p.canonicalize()
            .map_err(|e| format!("capabilities.fs[{i}]: cannot resolve {}: {e}", p.display()))
    };
    let base = canon(base)?;
    let path = canon(&base.join(rest.trim_start_matches('/')))?;
    if !path.starts_with(&base) {
        return Err(format!(
            "capabilities.fs[{i}]: {host:?} resolves to {}, outside {} (a symlink leads out); refused",
            path.display(),
            base.display()
        ));
    }
    Ok(path)
}

/// Resolves the allowed `host:port` entries to socket addresses.
pub(crate) async fn resolve_net(entries: &[String]) -> HashSet<SocketAddr> {
    let mut out = HashSet::new();
    for e in entries {
        match tokio::net::lookup_host(e.as_str()).await {
            Ok(addrs) => out.extend(addrs),
            Err(err) => {
                tracing::warn!(entry = %e, error = %err, "capabilities.net entry does not resolve")
            }
        }
    }
    out
}

/// Builds the WASI context of one instance.
pub(crate) fn wasi_ctx(
    skill: &SkillManifest,
    skill_dir: &Path,
    home: &Path,
    owner: &ServiceOwner,
    net: HashSet<SocketAddr>,
    port: Arc<dyn SyscallPort>,
) -> Result<WasiCtx, String> {
    let caps = &skill.capabilities;
    let mut b = WasiCtxBuilder::new();
    let data = skill_data(home, &skill.name, owner)?;
    for (i, g) in caps.fs.iter().enumerate() {
        let host = resolve(i, &g.host, skill_dir, &data)?;
        // The skill's own directory is read-only whatever the grant says.
        let perms = match g.mode {
            FsMode::Rw if !g.host.starts_with("$SKILL_DIR") => FsPerms::ReadWrite,
            _ => FsPerms::ReadOnly,
        };
        b.preopened_dir(&host, &g.guest, perms)
            .map_err(|e| format!("capabilities.fs[{i}]: cannot open {}: {e}", host.display()))?;
    }
    for name in &caps.env {
        if let Ok(v) = std::env::var(name) {
            b.env(name, v);
        }
    }
    // No network at all unless the manifest lists addresses; then each
    // connect and send is checked against them.
    let any_net = !caps.net.is_empty();
    b.allow_ip_name_lookup(any_net)
        .allow_tcp(any_net)
        .allow_udp(any_net);
    let skill_name = skill.name.clone();
    let net = Arc::new(net);
    b.socket_addr_check(move |addr, usage| {
        let allowed = match usage {
            // The implicit bind before an outbound connect or send.
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                addr.ip().is_unspecified() && addr.port() == 0 && !net.is_empty()
            }
            SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend => net.contains(&addr),
            // Listening and accepting are never granted.
            _ => false,
        };
        if !allowed && matches!(usage, SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend) {
            port.denied(
                "capabilities.net",
                format!("add \"{addr}\" to capabilities.net in {skill_name}/SKILL.md"),
            );
        }
        Box::pin(async move { allowed })
    });
    Ok(b.build())
}
