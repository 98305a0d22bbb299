//! The agent's bash sandbox as the kernel sees it: the policy of a session's
//! commands (from the daemon's configuration and the agent's
//! `permissions`), the refusal of dispatches when the kernel cannot enforce
//! it, the per-session cgroup released when a dispatch ends, and the note a
//! denied command's output gets. The mechanism is `aos-sandbox`.

use crate::{BashSandbox, KernelConfig};
use aos_sandbox::{Cgroups, Confinement, Grants, Network, Policy, Prepared, Report};
use aos_types::{Acb, ErrorCode, SyscallError};
use serde_json::json;
use std::path::PathBuf;

/// What the kernel found at start.
#[derive(Debug)]
pub(crate) struct SandboxState {
    pub cgroups: Cgroups,
    pub abi: i32,
    /// The configured system paths as read rules (private files left out).
    pub system_rules: Vec<PathBuf>,
}

/// A dispatch's sandbox: its policy and the policy compiled.
pub(crate) struct SessionSandbox {
    pub policy: Policy,
    prepared: Prepared,
}

impl SandboxState {
    pub(crate) fn probe(cfg: &BashSandbox) -> SandboxState {
        let cgroups = if cfg.enabled {
            Cgroups::detect()
        } else {
            Cgroups::none("the bash sandbox is off")
        };
        let system_rules = if cfg.enabled {
            aos_sandbox::system_rules(&cfg.system_paths)
        } else {
            Vec::new()
        };
        SandboxState {
            cgroups,
            abi: aos_sandbox::effective_abi(),
            system_rules,
        }
    }
}

impl SandboxState {
    /// The `bashSandbox` section of `system.health` and `aos sandbox check`.
    pub(crate) fn report(&self, cfg: &KernelConfig) -> Report {
        Report::probe(cfg.bash_sandbox.enabled, &self.cgroups)
    }

    /// Refuses a dispatch the sandbox cannot confine (fail closed); warns on
    /// every dispatch while the operator has turned it off.
    pub(crate) fn admit_dispatch(
        &self,
        cfg: &KernelConfig,
        session_id: &str,
    ) -> Result<(), SyscallError> {
        if !cfg.bash_sandbox.enabled {
            tracing::warn!(session = %session_id, "the bash sandbox is off (bashSandbox: \"off\" / AOS_BASH_SANDBOX=off): this dispatch's commands run with the daemon's rights");
            return Ok(());
        }
        let abi = self.abi;
        if abi < aos_sandbox::REQUIRED_ABI {
            let e = aos_sandbox::SandboxError::Unsupported {
                kernel: abi,
                required: aos_sandbox::REQUIRED_ABI,
                what: "files, TCP ports, signal and abstract-socket scoping",
            };
            return Err(SyscallError::new(ErrorCode::Unavailable, e.to_string())
            .with_details(json!({ "missing": "bashSandbox", "landlockAbi": abi,
                                  "requiredAbi": aos_sandbox::REQUIRED_ABI,
                                  "optOut": "bashSandbox: \"off\" in aoscb.json or AOS_BASH_SANDBOX=off" })));
        }
        Ok(())
    }

    /// The sandbox of a session's commands, or `None` when it is off.
    pub(crate) fn prepare(
        &self,
        cfg: &KernelConfig,
        api_url: &str,
        agent: &Acb,
        session_id: &str,
    ) -> Result<Option<SessionSandbox>, SyscallError> {
        if !cfg.bash_sandbox.enabled {
            return Ok(None);
        }
        let grants = Grants::from_permissions(agent.permissions.as_ref()).map_err(|e| {
            SyscallError::invalid(format!(
                "agent {} has invalid permissions: {e}; fix them with agent.update",
                agent.agent_id
            ))
        })?;
        let mut read_exec = self.system_rules.clone();
        read_exec.extend(cfg.bin_dir.clone());
        let policy = Policy {
            read_exec,
            read_only: cfg.skill_roots.clone(),
            read_write: vec![
                crate::paths::work_dir(cfg, session_id),
                crate::paths::tmp_dir(cfg, session_id),
            ],
            network: grants.network,
            api_port: api_port(api_url),
            limits: grants.limits,
            run_as: cfg.bash_sandbox.run_as,
        };
        let prepared = Prepared::new(&policy, self.abi).map_err(sandbox_error)?;
        Ok(Some(SessionSandbox { policy, prepared }))
    }

    /// One command's confinement.
    pub(crate) fn confine(
        &self,
        s: &SessionSandbox,
        session_id: &str,
    ) -> Result<Confinement, SyscallError> {
        s.prepared
            .confinement(&self.cgroups, session_id)
            .map_err(sandbox_error)
    }

    /// Kills whatever the session's commands left running (its cgroup).
    pub(crate) async fn release(&self, session_id: &str) {
        let left = self.cgroups.release(session_id).await;
        if left > 0 {
            tracing::info!(session = %session_id, processes = left, "killed the processes a dispatch left running");
        }
    }
}

fn sandbox_error(e: aos_sandbox::SandboxError) -> SyscallError {
    let code = match e {
        aos_sandbox::SandboxError::Unsupported { .. } => ErrorCode::Unavailable,
        aos_sandbox::SandboxError::Setup(_) => ErrorCode::Internal,
    };
    SyscallError::new(code, e.to_string())
}

fn api_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split('/').next()?;
    host.rsplit_once(':')?.1.parse().ok()
}

/// Words of an error a confined command prints when the sandbox refused it.
const DENIALS: &[&str] = &[
    "Permission denied",
    "Operation not permitted",
    "PermissionError",
    "EACCES",
    "EPERM",
    "Invalid cross-device link",
];

/// A note for the agent when a command's output shows a refusal: what the
/// sandbox allows and which permission grants more.
pub(crate) fn hint(policy: &Policy, agent_id: &str, output: &str) -> Option<String> {
    if !DENIALS.iter().any(|d| output.contains(d)) {
        return None;
    }
    let net = match &policy.network {
        Network::All => "any host and port".to_string(),
        Network::None => format!(
            "only the daemon's API (TCP port {}) — permissions.network is \"none\"",
            policy.api_port.map_or("?".into(), |p| p.to_string())
        ),
        n @ Network::Ports(_) => format!(
            "the daemon's API and the TCP ports of permissions.network = {}",
            n.describe()
        ),
    };
    Some(format!(
        "\n[sandbox: this command runs confined. It writes only in its work dir ($HOME) and $TMPDIR, \
         reads the system directories and skill roots, sees nothing else of the daemon's home, \
         signals only its own processes, and reaches {net}. An operator grants network access with \
         `aos agent update {agent_id} --permissions '{{\"network\": \"all\"}}'` (or a list of TCP ports).]"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_port_is_read_from_the_url() {
        assert_eq!(api_port("http://127.0.0.1:8420"), Some(8420));
        assert_eq!(api_port("http://[::1]:9/v1"), Some(9));
        assert_eq!(api_port(""), None);
    }

    #[test]
    fn a_refusal_gets_a_note_naming_the_permission() {
        let p = Policy {
            api_port: Some(8420),
            ..Policy::new()
        };
        let note =
            hint(&p, "ag_1", "curl: (7) Failed to connect: Permission denied").expect("a note");
        assert!(note.contains("permissions.network"), "{note}");
        assert!(note.contains("8420"), "{note}");
        assert!(hint(&p, "ag_1", "all fine").is_none());
    }
}
