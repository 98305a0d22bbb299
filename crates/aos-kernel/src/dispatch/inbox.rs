//! The per-session dispatch inbox (`kernel.md` §3, `session.dispatch` with
//! `queue: true`): FIFO, durable. A queued message is in the store before it
//! is acknowledged and leaves it once its user message is in SessionHistory
//! (whose id is derived from the dispatch id, so a crash between the two never
//! writes it twice); at start the daemon resumes what it had acknowledged.

use super::{begin, lease, start};
use crate::dispatches::{DispatchState, Input, Outcome, Queued, user_message_id};
use crate::kernel::{Done, Kernel, OpResult};
use crate::params::StoreResult;
use aos_store::InboxEntry;
use aos_types::{ErrorCode, Scb, SessionPhase, SessionStatus, SyscallError};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::Arc;

/// Queues a message for a busy session; answers `{sessionId, dispatchId,
/// queued: true}` once it is stored.
pub(super) async fn enqueue(k: &Kernel, scb: &Scb, input: Input, id: Option<String>) -> OpResult {
    let d = k.dispatches();
    let state = d.register(k.events(), &scb.agent_id, &scb.session_id, "queued", id);
    let entry = InboxEntry {
        dispatch_id: state.id.clone(),
        session_id: scb.session_id.clone(),
        node_id: k.node_id().to_string(),
        created_at: aos_types::now(),
        message: input.text,
        origin: input.origin,
        a2a: input.a2a,
    };
    if let Err(e) = k.store().inbox_push(&entry).await.sys() {
        d.forget(&state.id);
        return Err(e);
    }
    push(k, state.clone(), entry);
    // The running dispatch may have ended while this one was being stored.
    next(k, &scb.session_id).await;
    Ok(
        Done::data(json!({ "sessionId": scb.session_id, "dispatchId": state.id, "queued": true }))
            .ids(Some(&scb.agent_id), Some(&scb.session_id)),
    )
}

fn push(k: &Kernel, state: Arc<DispatchState>, e: InboxEntry) {
    if let Ok(mut inbox) = k.dispatches().inbox.lock() {
        inbox.entry(e.session_id).or_default().push_back(Queued {
            state,
            input: Input {
                text: e.message,
                origin: e.origin,
                a2a: e.a2a,
            },
        });
    }
}

fn has_front(k: &Kernel, session_id: &str) -> bool {
    k.dispatches()
        .inbox
        .lock()
        .is_ok_and(|i| i.get(session_id).is_some_and(|q| !q.is_empty()))
}

fn pop(k: &Kernel, session_id: &str) -> Option<Queued> {
    k.dispatches()
        .inbox
        .lock()
        .ok()?
        .get_mut(session_id)
        .and_then(VecDeque::pop_front)
}

/// Starts the session's next queued message if the session is free. Only a
/// lease holder pops, so concurrent callers never start the same message.
pub(super) async fn next(k: &Kernel, session_id: &str) {
    while !k.is_stopping() && has_front(k, session_id) {
        let lease = match lease::take(k, session_id, SessionPhase::Dispatched).await {
            Ok(l) => Some(l),
            Err(e) if e.code == ErrorCode::SessionBusy => return,
            Err(e) => {
                fail_front(k, session_id, e).await;
                None
            }
        };
        let Some(lease) = lease else { continue };
        let Some(q) = pop(k, session_id) else {
            lease::release(k, session_id, &lease).await;
            return;
        };
        let started = begin(k, &q.state, &lease, q.input).await;
        if let Err(e) = k.store().inbox_remove(&q.state.id).await {
            tracing::error!(dispatch = %q.state.id, error = %e, "cannot clear the inbox entry");
        }
        if let Ok(first_seq) = started {
            start(k, q.state, lease, first_seq);
            return;
        }
    }
}

/// Starts this node's queued messages whose session is free: freed by
/// another node, or by a takeover — a release elsewhere has no local call of
/// [`next`]. Sessions under a live lease are skipped without a write.
pub(crate) async fn start_freed(k: &Kernel) {
    let waiting: Vec<String> = k
        .dispatches()
        .inbox
        .lock()
        .map(|i| {
            i.iter()
                .filter(|(_, q)| !q.is_empty())
                .map(|(s, _)| s.clone())
                .collect()
        })
        .unwrap_or_default();
    let now = aos_types::now();
    for sid in waiting {
        let busy = k.store().session_get(&sid).await.is_ok_and(|s| {
            matches!(s.phase, SessionPhase::Dispatched | SessionPhase::Compacting)
                && s.lease_expires_at
                    .as_deref()
                    .is_some_and(|t| t > now.as_str())
        });
        if !busy {
            next(k, &sid).await;
        }
    }
}

/// Queues `entries` (this node's now) in memory; drops those that already
/// ran (their user message is in SessionHistory) or whose session is gone
/// or archived. The sessions with something queued.
async fn requeue(k: &Kernel, entries: Vec<InboxEntry>) -> Result<Vec<String>, SyscallError> {
    let mut sessions: Vec<String> = Vec::new();
    for e in entries {
        let scb = k.store().session_get(&e.session_id).await.ok();
        let written = k
            .store()
            .message_get(&e.session_id, &user_message_id(&e.dispatch_id))
            .await
            .is_ok();
        let Some(scb) = scb.filter(|s| s.status != SessionStatus::Archived && !written) else {
            k.store().inbox_remove(&e.dispatch_id).await.sys()?;
            continue;
        };
        let id = Some(e.dispatch_id.clone());
        let state =
            k.dispatches()
                .register(k.events(), &scb.agent_id, &scb.session_id, "queued", id);
        if !sessions.contains(&scb.session_id) {
            sessions.push(scb.session_id.clone());
        }
        push(k, state, e);
    }
    Ok(sessions)
}

/// Takes over the queued messages of node `from` (lost or stopped: its
/// heartbeats say so) — they start when their session is free
/// ([`start_freed`]); how many.
pub(crate) async fn adopt(k: &Kernel, from: &str) -> usize {
    let entries = match k.store().inbox_adopt(from, k.node_id()).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(node = from, error = %e, "cannot adopt a lost node's queued messages");
            return 0;
        }
    };
    let n = entries.len();
    if n > 0 {
        if let Err(e) = requeue(k, entries).await {
            tracing::warn!(node = from, error = %e, "adopted queued messages not all requeued");
        }
        tracing::info!(
            node = from,
            messages = n,
            "adopted the queued messages of a node that is gone"
        );
    }
    n
}

async fn fail_front(k: &Kernel, session_id: &str, e: SyscallError) {
    if let Some(q) = pop(k, session_id) {
        let _ = k.store().inbox_remove(&q.state.id).await;
        let mut o = Outcome::pending("failed");
        o.error = Some(json!(e));
        q.state.end(o);
    }
}

/// At daemon start: re-queues the messages this node acknowledged and had not
/// started, then starts each session's first. A message whose user message is
/// already in SessionHistory ran (its run was ended by recovery) and is
/// dropped; so is one whose session is gone or archived.
pub(crate) async fn resume(k: &Kernel) -> Result<usize, SyscallError> {
    let entries = k.store().inbox_list(k.node_id()).await.sys()?;
    let sessions = requeue(k, entries).await?;
    let mut queued = 0;
    for s in &sessions {
        queued += k
            .dispatches()
            .inbox
            .lock()
            .map_or(0, |i| i.get(s).map_or(0, VecDeque::len));
        next(k, s).await;
    }
    Ok(queued)
}
