//! Capabilities → a WASI context: preopened directories (`capabilities.fs`),
//! outbound addresses (`capabilities.net`), environment variables
//! (`capabilities.env`). Nothing else is granted.
//!
//! A directory grant is resolved to its real path when the instance starts
//! and refused if that leaves its base (`$SKILL_DIR`, or `$SKILL_DATA` — the
//! skill's data directory for the instance's owner); inside a preopen, WASI
//! (cap-std) refuses any path, symlinks included, that leads out of it.

use aos_extension::{ServiceOwner, SyscallPort};
use aos_manifest::{FsMode, NetProtocol, SkillManifest};
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

/// The addresses a service may reach, by protocol, and whether it may
/// resolve names at all (only when an entry names a host, not an address).
#[derive(Debug, Clone, Default)]
pub(crate) struct NetGrant {
    tcp: HashSet<SocketAddr>,
    udp: HashSet<SocketAddr>,
    names: bool,
}

/// Resolves the `capabilities.net` entries (`host:port` for TCP,
/// `udp://host:port`) to socket addresses.
pub(crate) async fn resolve_net(entries: &[String]) -> NetGrant {
    let mut grant = NetGrant::default();
    for e in entries {
        let Some((proto, host_port)) = aos_manifest::net_entry(e) else {
            continue;
        };
        if host_port.parse::<SocketAddr>().is_err() {
            grant.names = true;
        }
        let set = match proto {
            NetProtocol::Tcp => &mut grant.tcp,
            NetProtocol::Udp => &mut grant.udp,
        };
        match tokio::net::lookup_host(host_port).await {
            Ok(addrs) => set.extend(addrs),
            Err(err) => {
                tracing::warn!(entry = %e, error = %err, "capabilities.net entry does not resolve")
            }
        }
    }
    grant
}

/// Builds the WASI context of one instance.
pub(crate) fn wasi_ctx(
    skill: &SkillManifest,
    skill_dir: &Path,
    home: &Path,
    owner: &ServiceOwner,
    net: NetGrant,
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
    // connect (TCP entries) and datagram (udp:// entries) is checked
    // against them, and names resolve only if an entry names a host.
    b.allow_ip_name_lookup(net.names)
        .allow_tcp(!net.tcp.is_empty())
        .allow_udp(!net.udp.is_empty());
    let skill_name = skill.name.clone();
    let net = Arc::new(net);
    b.socket_addr_check(move |addr, usage| {
        let wildcard = addr.ip().is_unspecified() && addr.port() == 0;
        let allowed = match usage {
            // The implicit bind before an outbound connect or send.
            SocketAddrUse::TcpBind => wildcard && !net.tcp.is_empty(),
            SocketAddrUse::UdpBind => wildcard && !net.udp.is_empty(),
            SocketAddrUse::TcpConnect => net.tcp.contains(&addr),
            SocketAddrUse::UdpSend => net.udp.contains(&addr),
            // Listening and accepting are never granted.
            _ => false,
        };
        if !allowed && matches!(usage, SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend) {
            let entry = match usage {
                SocketAddrUse::TcpConnect => format!("\"{addr}\""),
                _ => format!("\"udp://{addr}\""),
            };
            port.denied(
                "capabilities.net",
                format!("add {entry} to capabilities.net in {skill_name}/SKILL.md"),
            );
        }
        Box::pin(async move { allowed })
    });
    Ok(b.build())
}
