//! Recovery after a crash (`kernel.md` §4.6): state comes back from the AOSCB,
//! the control blocks and SessionHistory only.

use crate::Kernel;
use crate::bootstrap;
use crate::hooks::HookScope;
use crate::kernel::Write;
use crate::params::StoreResult;
use aos_store::{Backend, HistoryQuery, NewMessage};
use aos_types::hook;
use aos_types::{
    Origin, Part, Role, Scb, SessionPhase, SessionStatus, SyscallError, ToolState, now,
};
use serde_json::json;
use std::collections::BTreeMap;

/// How far back recovery looks for tool calls left without a result.
const TAIL: i64 = 500;

/// Recovers every session that is not at rest.
pub(crate) async fn recover_all(k: &Kernel) -> Result<(), SyscallError> {
    let sessions = k.store().sessions_to_recover().await.sys()?;
    for scb in sessions {
        let id = scb.session_id.clone();
        let agent = scb.agent_id.clone();
        if let Err(e) = recover_one(k, scb).await {
            tracing::error!(session = %id, error = %e, "session recovery failed");
            k.emit(
                hook::SESSION_ERROR,
                HookScope {
                    agent_id: Some(&agent),
                    session_id: Some(&id),
                },
                json!({ "source": "recovery", "recoverable": false, "message": e.message }),
            );
        }
    }
    Ok(())
}

async fn recover_one(k: &Kernel, scb: Scb) -> Result<(), SyscallError> {
    if scb.status == SessionStatus::Initializing {
        tracing::info!(session = %scb.session_id, "resuming a half-done bootstrap");
        bootstrap::finish(k, scb, "recovery").await?;
        return Ok(());
    }
    match scb.phase {
        // A compaction runs under a lease too (inside a dispatch or for
        // `session.compact`); it wrote all or nothing, and what stopped is
        // said with the same interrupt fact.
        SessionPhase::Dispatched | SessionPhase::Compacting if lease_is_void(k, &scb) => {
            close_stranded(k, scb, &DAEMON_RESTART).await
        }
        SessionPhase::Dispatched | SessionPhase::Compacting => Ok(()),
        SessionPhase::Bootstrapping => release(k, &scb).await.map(|_| ()),
        SessionPhase::Idle | SessionPhase::Interrupted => Ok(()),
    }
}

/// On SQLite this daemon is the only node, so any lease left is stale. On
/// PostgreSQL a lease is void once expired, or if it was held under our node id.
fn lease_is_void(k: &Kernel, scb: &Scb) -> bool {
    if k.store().backend() == Backend::Sqlite {
        return true;
    }
    let expired = scb
        .lease_expires_at
        .as_deref()
        .is_none_or(|t| t <= now().as_str());
    expired || scb.lease_holder.as_deref() == Some(k.node_id())
}

/// Frees the session if it is still under `scb`'s lease.
async fn release(k: &Kernel, scb: &Scb) -> Result<Scb, SyscallError> {
    let lease = scb.lease_id.clone();
    k.store()
        .session_update(&scb.session_id, None, move |s| {
            if s.lease_id == lease {
                s.phase = SessionPhase::Idle;
                s.lease_id = None;
                s.lease_holder = None;
                s.lease_expires_at = None;
            }
            Ok(())
        })
        .await
        .sys()
}

/// Kills the commands a crashed daemon left running in this session.
fn kill_leftovers(k: &Kernel, session_id: &str) {
    let dir = crate::paths::running_dir(k.config(), session_id);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let marker = format!("AOS_SESSION_ID={session_id}");
    for e in entries.flatten() {
        if aos_sandbox::kill_leftover(&e.path(), &marker) {
            tracing::info!(session = %session_id, file = %e.path().display(), "killed a command left running");
        }
    }
}

/// Kills what was left running, closes tool calls left open, writes the
/// interrupt fact, frees the session.
/// Why a session's dispatch ended without closing it, as written into it.
pub(crate) struct Stranded<'a> {
    /// The interrupt fact's `reason`.
    pub reason: &'a str,
    /// The result of each command left open.
    pub open_call: &'a str,
}

/// What a takeover writes into the session it closes.
pub(crate) const NODE_LOST: Stranded<'static> = Stranded {
    reason: "node lost",
    open_call: "the node running this command stopped answering (its lease expired); whether it completed is unknown",
};

pub(crate) const DAEMON_RESTART: Stranded<'static> = Stranded {
    reason: "daemon restart",
    open_call: "the daemon stopped while this command ran; whether it completed is unknown",
};

/// Kills what was left running, closes tool calls left open (each with the
/// honest `why.open_call`), writes the interrupt fact and frees the session:
/// after a crash, or when this daemon's own dispatch ended without being able
/// to (the store failed).
pub(crate) async fn close_stranded(
    k: &Kernel,
    scb: Scb,
    why: &Stranded<'_>,
) -> Result<(), SyscallError> {
    kill_leftovers(k, &scb.session_id);
    k.sandbox().release(&scb.session_id).await;
    let from = scb
        .last_message_seq
        .unwrap_or(0)
        .saturating_sub(TAIL)
        .max(1);
    let q = HistoryQuery {
        from_seq: from,
        to_seq: None,
        limit: TAIL + 1,
    };
    let tail = k.store().history(&scb.session_id, &q).await.sys()?;
    let mut open: BTreeMap<String, Part> = BTreeMap::new();
    for m in &tail {
        for p in &m.parts {
            if let Part::ToolBash {
                tool_call_id,
                state,
                ..
            } = p
            {
                if *state == ToolState::InputAvailable {
                    open.insert(tool_call_id.clone(), p.clone());
                } else {
                    open.remove(tool_call_id);
                }
            }
        }
    }
    let mut batch: Vec<NewMessage> = open
        .into_values()
        .filter_map(|p| match p {
            Part::ToolBash {
                tool_call_id,
                input,
                ..
            } => Some(NewMessage {
                role: Role::Assistant,
                parts: vec![Part::ToolBash {
                    id: String::new(),
                    tool_call_id,
                    state: ToolState::OutputError,
                    input,
                    output: None,
                    error_text: Some(why.open_call.into()),
                }],
                origin: Origin::Aos,
                extra: Default::default(),
            }),
            _ => None,
        })
        .collect();
    batch.push(NewMessage {
        role: Role::System,
        parts: vec![Part::DataInterrupt {
            id: String::new(),
            data: json!({ "reason": why.reason }),
        }],
        origin: Origin::Aos,
        extra: Default::default(),
    });
    // Fenced by the lease the session is under (the stale one after a
    // restart, the claimed one in a takeover): if another node took the
    // session meanwhile, nothing is written and it is left to that node.
    let write = scb
        .lease_id
        .as_deref()
        .map_or(Write::Expecting(None), Write::Leased);
    k.append_with(&scb, write, batch, None).await?;
    release(k, &scb).await?;
    tracing::info!(session = %scb.session_id, reason = why.reason, "stranded dispatch closed");
    k.emit(
        hook::SESSION_INTERRUPTED,
        HookScope {
            agent_id: Some(&scb.agent_id),
            session_id: Some(&scb.session_id),
        },
        json!({ "agentId": scb.agent_id, "sessionId": scb.session_id, "reason": why.reason }),
    );
    Ok(())
}
