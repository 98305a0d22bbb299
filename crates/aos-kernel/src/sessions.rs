//! Loading a session for an op, with the checks every op that touches one
//! makes: the id's shape, and whether the session (and its agent) still
//! accepts changes.

use crate::kernel::Kernel;
use crate::params::{self, StoreResult};
use aos_store::StoreError;
use aos_types::{Acb, AgentStatus, ErrorCode, Scb, SessionStatus, SyscallError};

/// Loads a session after checking the id's shape.
pub(crate) async fn load(k: &Kernel, session_id: &str) -> Result<Scb, SyscallError> {
    params::id("sessionId", session_id)?;
    k.store().session_get(session_id).await.sys()
}

/// Checks that a session accepts new messages from a client.
pub(crate) async fn writable(k: &Kernel, session_id: &str) -> Result<Scb, SyscallError> {
    let scb = not_archived(k, session_id).await?;
    if scb.status == SessionStatus::Initializing {
        return Err(SyscallError::new(
            ErrorCode::SessionNotReady,
            format!("session {session_id} is still bootstrapping"),
        ));
    }
    Ok(scb)
}

/// Checks that neither a session nor its agent is archived (what changing
/// a session, or storing content for it, needs).
pub(crate) async fn not_archived(k: &Kernel, session_id: &str) -> Result<Scb, SyscallError> {
    let scb = load(k, session_id).await?;
    if scb.status == SessionStatus::Archived {
        return Err(params::store_err(session_archived(&scb)));
    }
    let agent = k.store().agent_get(&scb.agent_id).await.sys()?;
    if agent.status == AgentStatus::Archived {
        return Err(params::store_err(agent_archived(&agent)));
    }
    Ok(scb)
}

pub(crate) fn session_archived(s: &Scb) -> StoreError {
    StoreError::Rejected {
        code: "session.archived",
        message: format!("session {} is archived", s.session_id),
    }
}

/// The refusal of a change to an archived agent.
pub(crate) fn agent_archived(acb: &Acb) -> StoreError {
    StoreError::Rejected {
        code: "agent.archived",
        message: format!("agent {} is archived", acb.agent_id),
    }
}
