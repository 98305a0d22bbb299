//! Capabilities → a WASI context: preopened directories (`capabilities.fs`),
//! outbound addresses (`capabilities.net`), environment variables
//! (`capabilities.env`). Nothing else is granted.

use aos_kernel::services::SyscallPort;
use aos_manifest::{FsMode, SkillManifest};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

/// Resolves `$SKILL_DIR/…` or `$AOS_HOME/…` (the manifest parser already
/// refused anything else and any `..`).
fn expand(host: &str, skill_dir: &Path, home: &Path) -> Result<PathBuf, String> {
    let (root, rest) = if let Some(r) = host.strip_prefix("$SKILL_DIR") {
        (skill_dir, r)
    } else if let Some(r) = host.strip_prefix("$AOS_HOME") {
        (home, r)
    } else {
        return Err(format!(
            "capabilities.fs host {host:?} must start with $SKILL_DIR or $AOS_HOME"
        ));
    };
    Ok(root.join(rest.trim_start_matches('/')))
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
    net: HashSet<SocketAddr>,
    port: Arc<dyn SyscallPort>,
) -> Result<WasiCtx, String> {
    let caps = &skill.capabilities;
    let mut b = WasiCtxBuilder::new();
    for (i, g) in caps.fs.iter().enumerate() {
        let host = expand(&g.host, skill_dir, home)?;
        let perms = match g.mode {
            FsMode::Ro => FsPerms::ReadOnly,
            FsMode::Rw => {
                // A writable directory under $AOS_HOME is created on first use.
                if g.host.starts_with("$AOS_HOME") {
                    std::fs::create_dir_all(&host).map_err(|e| {
                        format!(
                            "capabilities.fs[{i}]: cannot create {}: {e}",
                            host.display()
                        )
                    })?;
                }
                FsPerms::ReadWrite
            }
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
