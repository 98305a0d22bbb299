//! Who is calling, and what they may call (`kernel.md` §3, "Who may call
//! what"). The operator may call everything. A skill service may call exactly
//! the syscalls its `capabilities.syscalls` list (names or groups), and only
//! within its owner's scope.

use crate::services::ServiceOwner;
use aos_types::{ErrorCode, SyscallError, syscall_info};
use serde_json::json;
use std::path::PathBuf;

/// The authenticated caller of a syscall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The operator token: may call everything.
    Operator,
    /// The kernel itself (bootstrap, recovery).
    Kernel,
    /// A skill service instance.
    Service(ServiceGrant),
    /// The bash of a ReActUnit: its own session and agent only.
    Session {
        /// The agent.
        agent_id: String,
        /// The session being dispatched.
        session_id: String,
        /// The dispatch whose bash holds the token.
        dispatch_id: Option<String>,
    },
}

/// What a service may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceGrant {
    /// Skill name.
    pub skill: String,
    /// Instance id.
    pub instance_id: String,
    /// Owner.
    pub owner: ServiceOwner,
    /// The agent of a session-owned service.
    pub owner_agent: Option<String>,
    /// `capabilities.syscalls`: op names and group names.
    pub syscalls: Vec<String>,
    /// `capabilities.kv`: the `kv.*` ops on its own namespace.
    pub kv: bool,
    /// The skill's `SKILL.md`, for the hint in a denial.
    pub manifest_path: PathBuf,
}

impl Principal {
    /// `createdBy` of objects this principal creates.
    pub fn created_by(&self) -> String {
        match self {
            Principal::Service(g) => match (&g.owner, &g.owner_agent) {
                (ServiceOwner::Agent(a), _) | (ServiceOwner::Session(_), Some(a)) => a.clone(),
                _ => "human".into(),
            },
            Principal::Session { agent_id, .. } => agent_id.clone(),
            _ => "human".into(),
        }
    }

    /// Owner type and id written into RuntimeLog entries.
    pub fn log_owner(&self) -> (&'static str, Option<String>) {
        match self {
            Principal::Operator => ("operator", None),
            Principal::Kernel => ("system", None),
            Principal::Service(g) => ("skill", Some(g.skill.clone())),
            Principal::Session { session_id, .. } => ("session", Some(session_id.clone())),
        }
    }
}

impl ServiceGrant {
    /// Checks the op against the grant (name or group), before any parsing.
    pub fn allows_op(&self, op: &str) -> Result<(), SyscallError> {
        let group = syscall_info(op).map(|i| i.group);
        if group == Some("kv") {
            return if self.kv {
                Ok(())
            } else {
                Err(SyscallError::new(
                    ErrorCode::PermissionDenied,
                    format!(
                        "skill {} may not call {op}: add `kv: true` under capabilities in {}",
                        self.skill,
                        self.manifest_path.display()
                    ),
                )
                .with_details(json!({
                    "missing": op, "capability": "capabilities.kv", "skill": self.skill,
                    "manifest": self.manifest_path, "add": "kv: true",
                })))
            };
        }
        if self
            .syscalls
            .iter()
            .any(|g| g == op || Some(g.as_str()) == group)
        {
            return Ok(());
        }
        Err(SyscallError::new(
            ErrorCode::PermissionDenied,
            format!(
                "skill {} may not call {op}: add \"{op}\" to capabilities.syscalls in {}",
                self.skill,
                self.manifest_path.display()
            ),
        )
        .with_details(json!({
            "missing": op, "capability": "capabilities.syscalls", "skill": self.skill,
            "manifest": self.manifest_path, "add": format!("syscalls: [{op}]"),
        })))
    }
}
