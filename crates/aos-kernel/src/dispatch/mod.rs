//! Dispatches (`kernel.md` §4.4): the ops that start, queue, wait for,
//! interrupt and compact them, and their bookkeeping — leases, the
//! per-session FIFO inbox, waiters, interrupts. The loop that runs a
//! dispatch is the kernel's [`crate::Runner`], reached through the
//! [`crate::DispatchPort`] of `runner.rs`.

mod inbox;
mod lease;
mod port;

pub(crate) use inbox::{adopt, resume, start_freed};

use crate::dispatches::{DispatchState, Input, Outcome, StreamEvent, user_message_id};
use crate::hooks::HookScope;
use crate::kernel::{Done, Kernel, OpResult, Write};
use crate::params::{self, StoreResult, decode};
use crate::principal::Principal;
use aos_types::hook;
use aos_types::requests::{A2aFrom, SessionDispatch, SessionInterrupt, SessionWait};
use aos_types::{ErrorCode, Origin, SessionPhase, SyscallError};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Checks an a2a envelope: only a service (the a2a skill) or the operator may
/// speak for another agent, and the sender must exist.
pub(crate) async fn a2a_envelope(
    k: &Kernel,
    p: &Principal,
    from: A2aFrom,
) -> Result<A2aFrom, SyscallError> {
    if matches!(p, Principal::Session { .. }) {
        return Err(SyscallError::new(
            ErrorCode::PermissionDenied,
            "a session token may not set `a2a`: send with `aos a2a send`",
        )
        .with_details(json!({ "missing": "a2a", "principal": "session" })));
    }
    params::id("a2a.fromAgentId", &from.from_agent_id)?;
    let sender = crate::sessions::load(k, &from.from_session_id).await?;
    if sender.agent_id != from.from_agent_id {
        return Err(SyscallError::invalid(format!(
            "`a2a.fromSessionId` {} does not belong to agent {}",
            from.from_session_id, from.from_agent_id
        )));
    }
    if let Some(c) = &from.correlation_id {
        params::short_text("a2a.correlationId", c)?;
    }
    Ok(from)
}

/// Longest user message, in bytes.
const MAX_MESSAGE: usize = 1 << 20;

/// `session.dispatch`.
pub(crate) async fn dispatch(k: &Kernel, p: &Principal, params: Map<String, Value>) -> OpResult {
    let d: SessionDispatch = decode("session.dispatch", params)?;
    if d.message.role != "user" {
        return Err(SyscallError::invalid("`message.role` must be \"user\""));
    }
    if d.message.content.trim().is_empty() || d.message.content.len() > MAX_MESSAGE {
        return Err(SyscallError::invalid(
            "`message.content` must be 1 byte to 1 MiB of text",
        ));
    }
    let keyed = params::keyed_id("ds_", &d.session_id, d.idempotency_key.as_deref())?;
    if let Some(id) = &keyed
        && let Some(done) = replay_dispatch(k, &d.session_id, id).await
    {
        return Ok(done);
    }
    let scb = crate::sessions::writable(k, &d.session_id).await?;
    k.sandbox().admit_dispatch(k.config(), &scb.session_id)?;
    let scope = HookScope {
        agent_id: Some(&scb.agent_id),
        session_id: Some(&scb.session_id),
    };
    let input = json!({ "agentId": scb.agent_id, "sessionId": scb.session_id, "message": d.message.content });
    let admitted = k
        .hooks()
        .admit(
            hook::SESSION_DISPATCH_BEFORE,
            scope,
            &input,
            json!(d.message.content),
        )
        .await?;
    let message = admitted
        .as_str()
        .map(String::from)
        .unwrap_or(d.message.content);
    let a2a = match d.a2a {
        Some(from) => Some(json!(a2a_envelope(k, p, from).await?)),
        None => None,
    };
    let origin = if matches!(p, Principal::Session { .. }) || a2a.is_some() {
        Origin::Agent
    } else {
        Origin::Human
    };
    let input = Input {
        text: message,
        origin,
        a2a,
    };
    match lease::take(k, &scb.session_id, SessionPhase::Dispatched).await {
        Ok(lease) => {
            let state = k.dispatches().register(
                k.events(),
                &scb.agent_id,
                &scb.session_id,
                "running",
                keyed.clone(),
            );
            let first_seq = begin(k, &state, &lease, input).await?;
            start(k, state.clone(), lease, first_seq);
            Ok(
                Done::data(json!({ "sessionId": scb.session_id, "dispatchId": state.id }))
                    .ids(Some(&scb.agent_id), Some(&scb.session_id)),
            )
        }
        Err(e) if e.code == ErrorCode::SessionBusy && d.queue => {
            inbox::enqueue(k, &scb, input, keyed).await
        }
        Err(e) => Err(e),
    }
}

/// Writes the dispatch's user message under the lease (`kernel.md` §4.4
/// step 2); on failure the lease is released and the dispatch ends `failed`.
async fn begin(
    k: &Kernel,
    state: &DispatchState,
    lease: &str,
    input: Input,
) -> Result<i64, SyscallError> {
    let written = async {
        let scb = k.store().session_get(&state.session_id).await.sys()?;
        let m = input.into_message(user_message_id(&state.id));
        let (msgs, _) = k
            .append_with(&scb, Write::Leased(lease), vec![m], None)
            .await?;
        let msg = msgs
            .into_iter()
            .next()
            .ok_or_else(|| SyscallError::internal("append returned nothing"))?;
        state.publish("message", json!({ "type": "message", "message": msg }));
        Ok(msg.metadata.seq)
    }
    .await;
    if let Err(e) = &written {
        lease::release(k, &state.session_id, lease).await;
        let mut o = Outcome::pending("failed");
        o.error = Some(json!(e));
        state.end(o);
    }
    written
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Compact {
    session_id: String,
    reason: Option<String>,
}

/// `session.compact`: compacts an idle session now (phase `compacting` under
/// a lease, so no dispatch starts meanwhile; queued ones run after).
pub(crate) async fn compact(k: &Kernel, p: &Principal, params: Map<String, Value>) -> OpResult {
    let c: Compact = decode("session.compact", params)?;
    let reason = c.reason.unwrap_or_else(|| "requested".into());
    params::short_text("reason", &reason)?;
    if let Some(done) = schedule_own_compaction(k, p, &c.session_id, &reason) {
        return Ok(done);
    }
    let scb = crate::sessions::writable(k, &c.session_id).await?;
    if !crate::compaction::available(k, &scb) {
        return Err(SyscallError::new(
            ErrorCode::ContextEngineUnavailable,
            format!(
                "session.compact needs a context.compact handler (the aos-context skill) and none serves session {}",
                scb.session_id
            ),
        ));
    }
    let lease = lease::take(k, &scb.session_id, SessionPhase::Compacting).await?;
    let renewal = lease::renew(k, &scb.session_id, &lease);
    let trigger = crate::compaction::Trigger {
        auto: false,
        overflow: false,
        reason,
    };
    let scb = k.store().session_get(&scb.session_id).await.sys();
    let result = match scb {
        Ok(scb) => crate::compaction::run(k, &scb, &trigger).await,
        Err(e) => Err(e),
    };
    renewal.abort();
    let after = lease::release(k, &c.session_id, &lease).await;
    inbox::next(k, &c.session_id).await;
    let mut data = match result? {
        Ok(done) => {
            let mut v = json!(done);
            v["compacted"] = json!(true);
            v
        }
        Err(declined) => json!({ "compacted": false, "reason": declined.reason }),
    };
    data["sessionId"] = json!(c.session_id);
    let done = Done::data(data);
    Ok(match after {
        Some(s) => done
            .rev(s.revision)
            .ids(Some(&s.agent_id), Some(&s.session_id)),
        None => done,
    })
}

/// Runs a dispatch whose user message is written (at `first_seq`) in the
/// background; when it ends, the next queued message of the session (if any)
/// starts.
fn start(k: &Kernel, state: Arc<DispatchState>, lease: String, first_seq: i64) {
    let k = k.clone();
    if let Ok(mut r) = k.dispatches().running.lock() {
        r.insert(state.session_id.clone(), state.clone());
    }
    tokio::spawn(async move {
        let renewal = lease::renew(&k, &state.session_id, &lease);
        state.outcome.send_modify(|o| o.status = "running".into());
        let outcome = port::run(&k, &state, lease.clone(), first_seq).await;
        k.sandbox().release(&state.session_id).await;
        renewal.abort();
        if outcome.store_failed {
            lease::close_after_store_failure(&k, &state.session_id, &lease).await;
        } else {
            lease::release(&k, &state.session_id, &lease).await;
        }
        if let Ok(mut r) = k.dispatches().running.lock() {
            r.remove(&state.session_id);
        }
        state.end(outcome);
        inbox::next(&k, &state.session_id).await;
    });
}

/// The answer of a dispatch whose `idempotencyKey` (dispatch `id`) was
/// accepted before — known to this daemon, or its user message written:
/// that dispatch, nothing started now.
async fn replay_dispatch(k: &Kernel, session_id: &str, id: &str) -> Option<Done> {
    let known = k.dispatches().get(id);
    if known.is_none() {
        k.store()
            .message_get(session_id, &user_message_id(id))
            .await
            .ok()?;
    }
    let status = known.map(|d| d.outcome.borrow().status.clone());
    Some(Done::data(json!({
        "sessionId": session_id, "dispatchId": id, "replayed": true,
        "queued": status.as_deref() == Some("queued"), "status": status,
    })))
}

/// `session.compact` from the bash of the session's own running dispatch:
/// the dispatch holds the session, so the compaction is scheduled for when
/// its current turn ends (the loop runs it before its next LLM call).
fn schedule_own_compaction(
    k: &Kernel,
    p: &Principal,
    session_id: &str,
    reason: &str,
) -> Option<Done> {
    let Principal::Session {
        session_id: own,
        dispatch_id: Some(dispatch),
        ..
    } = p
    else {
        return None;
    };
    let running = k.dispatches().running_in(session_id)?;
    if own != session_id || &running.id != dispatch {
        return None;
    }
    *running.compact_request.lock().ok()? = Some(reason.to_string());
    Some(Done::data(json!({
        "sessionId": session_id, "scheduled": true, "compacted": false,
        "note": "runs when this turn ends, before the next model call",
    })))
}

/// `session.wait`.
pub(crate) async fn wait(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let w: SessionWait = decode("session.wait", params)?;
    params::id("dispatchId", &w.dispatch_id)?;
    let timeout = Duration::from_millis(w.timeout_ms.unwrap_or(600_000).min(3_600_000));
    let Some(state) = k.dispatches().get(&w.dispatch_id) else {
        return wait_remote(k, &w.dispatch_id, timeout).await;
    };
    let mut rx = state.outcome.subscribe();
    let outcome = match tokio::time::timeout(timeout, rx.wait_for(Outcome::finished)).await {
        Ok(Ok(o)) => o.clone(),
        // Not finished in time: as it is now (`queued` or `running`).
        _ => state.outcome.borrow().clone(),
    };
    Ok(Done::data(json!(outcome)))
}

/// `session.wait` on a dispatch another node runs (issue 23), followed
/// through the cluster's event log: its outcome once `done` arrives, or
/// `running` when `timeout` passed first.
async fn wait_remote(k: &Kernel, id: &str, timeout: Duration) -> OpResult {
    let (_, past, mut rx) =
        remote_stream(k, id).ok_or_else(|| SyscallError::not_found("dispatch", id))?;
    let done = match past.into_iter().find(|e| e.event == "done") {
        Some(e) => Some(e),
        None => tokio::time::timeout(
            timeout,
            next_matching(&mut rx, |e| (e.event == "done").then_some(e)),
        )
        .await
        .ok()
        .flatten(),
    };
    Ok(Done::data(match done {
        Some(e) => Value::clone(&e.data),
        None => json!({ "status": "running" }),
    }))
}

/// The next value of `rx` that `accept` keeps, skipping what a slow receiver
/// missed; `None` once the sender is gone.
async fn next_matching<T: Clone, U>(
    rx: &mut tokio::sync::broadcast::Receiver<T>,
    mut accept: impl FnMut(T) -> Option<U>,
) -> Option<U> {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match rx.recv().await {
            Ok(v) => {
                if let Some(u) = accept(v) {
                    return Some(u);
                }
            }
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return None,
        }
    }
}

/// The agent and session of a dispatch another node runs, as this node's
/// event ring shows it (for authorization).
pub(crate) fn remote_owner(k: &Kernel, id: &str) -> Option<(String, String)> {
    if k.store().backend() != aos_store::Backend::Postgres {
        return None;
    }
    let (ring, _) = k.events().subscribe(Some(0));
    let e = ring.iter().find(|e| of_dispatch(e, id).is_some())?;
    Some((e.agent_id.clone()?, e.session_id.clone()?))
}

/// `session.interrupt`.
pub(crate) async fn interrupt(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let i: SessionInterrupt = decode("session.interrupt", params)?;
    let scb = crate::sessions::load(k, &i.session_id).await?;
    let reason = i.reason.unwrap_or_else(|| "interrupted by request".into());
    params::short_text("reason", &reason)?;
    let Some(state) = k.dispatches().running_in(&scb.session_id) else {
        if let Some(holder) = remote_holder(k, &scb) {
            return interrupt_remote(k, scb, holder, reason).await;
        }
        return free_stranded(k, scb, &reason).await;
    };
    state.interrupt.send_replace(Some(reason));
    Ok(Done::data(
        json!({ "sessionId": scb.session_id, "dispatchId": state.id, "interrupted": true }),
    )
    .ids(Some(&scb.agent_id), Some(&scb.session_id)))
}

/// The bus event (through the cluster's log) asking the node that runs a
/// session's dispatch to interrupt it: `{sessionId, nodeId, reason}`.
pub(crate) const INTERRUPT_REQUESTED: &str = "session.interrupt.requested";
/// How long `session.interrupt` waits for another node's dispatch to end.
const REMOTE_INTERRUPT_WAIT: Duration = Duration::from_secs(5);

/// The other node holding `scb`'s live lease, on a shared store.
fn remote_holder(k: &Kernel, scb: &aos_types::Scb) -> Option<String> {
    let holder = scb.lease_holder.as_deref()?;
    let live = scb
        .lease_expires_at
        .as_deref()
        .is_some_and(|t| t > aos_types::now().as_str());
    (k.store().backend() == aos_store::Backend::Postgres && holder != k.node_id() && live)
        .then(|| holder.to_string())
}

/// `session.interrupt` of a session another node runs (issue 23): asked
/// through the cluster's event log, answered once that dispatch's `done` is
/// seen here (its status says whether the interrupt or the end came first).
async fn interrupt_remote(
    k: &Kernel,
    scb: aos_types::Scb,
    holder: String,
    reason: String,
) -> OpResult {
    let sid = scb.session_id.clone();
    let (_, mut live) = k.events().subscribe(None);
    k.events().publish(
        INTERRUPT_REQUESTED,
        Some(&scb.agent_id),
        Some(&sid),
        json!({ "sessionId": sid, "nodeId": holder, "reason": reason }),
    );
    let done = tokio::time::timeout(
        REMOTE_INTERRUPT_WAIT,
        next_matching(&mut live, |e| {
            (e.name == "dispatch.done" && e.session_id.as_deref() == Some(&sid))
                .then(|| e.payload_value())
        }),
    )
    .await;
    let Ok(Some(done)) = done else {
        return Err(SyscallError::new(
            ErrorCode::Unavailable,
            format!(
                "session {sid} runs on node {holder}, which was asked to interrupt it and did not confirm within {REMOTE_INTERRUPT_WAIT:?}; ask again, or wait for its lease to expire (a takeover closes it)"
            ),
        ));
    };
    Ok(Done::data(json!({ "sessionId": sid, "dispatchId": done["dispatchId"],
        "interrupted": done["status"] == "interrupted", "status": done["status"], "nodeId": holder }))
    .ids(Some(&scb.agent_id), Some(&sid)))
}

/// Interrupts this node's dispatches that another node was asked to
/// interrupt ([`INTERRUPT_REQUESTED`]), for as long as the kernel runs.
pub(crate) fn follow_remote_interrupts(k: &Kernel) {
    let (_, mut live) = k.events().subscribe(None);
    let weak = k.downgrade();
    tokio::spawn(async move {
        let asked =
            |e: Arc<aos_extension::events::Event>| (e.name == INTERRUPT_REQUESTED).then_some(e);
        while let Some(e) = next_matching(&mut live, asked).await {
            let Some(k) = weak.upgrade() else { return };
            let p = e.payload_value();
            let (Some(sid), Some(node)) = (p["sessionId"].as_str(), p["nodeId"].as_str()) else {
                continue;
            };
            if node != k.node_id() {
                continue;
            }
            if let Some(state) = k.dispatches().running_in(sid) {
                let reason = p["reason"].as_str().unwrap_or("interrupted by request");
                tracing::info!(session = %sid, "interrupt asked by another node");
                state.interrupt.send_replace(Some(reason.to_string()));
            }
        }
    });
}

/// `session.interrupt` of a session no dispatch of this daemon runs, but
/// whose lease this daemon holds (its dispatch ended and could not free it):
/// closed honestly and freed at once, its queued messages started.
async fn free_stranded(k: &Kernel, scb: aos_types::Scb, reason: &str) -> OpResult {
    let ours = scb.lease_id.is_some() && scb.lease_holder.as_deref() == Some(k.node_id());
    if !ours {
        return Err(SyscallError::new(
            ErrorCode::SessionNotReady,
            format!("session {} runs no dispatch", scb.session_id),
        ));
    }
    let why = crate::recovery::Stranded {
        reason,
        open_call: "the dispatch ended without recording this command's result",
    };
    let (agent, session) = (scb.agent_id.clone(), scb.session_id.clone());
    crate::recovery::close_stranded(k, scb, &why).await?;
    inbox::next(k, &session).await;
    Ok(
        Done::data(json!({ "sessionId": session, "interrupted": true, "freed": true }))
            .ids(Some(&agent), Some(&session)),
    )
}

/// Daemon stop: lets running dispatches finish within `grace`, then
/// interrupts the rest (each writes its interrupt fact) and waits for them.
pub(crate) async fn interrupt_all(k: &Kernel, grace: Duration) {
    let running = k.dispatches().all_running();
    let deadline = tokio::time::Instant::now() + grace;
    for s in &running {
        let mut rx = s.outcome.subscribe();
        let _ = tokio::time::timeout_at(deadline, rx.wait_for(Outcome::finished)).await;
    }
    for s in &running {
        s.interrupt.send_replace(Some("daemon stopping".into()));
    }
    for s in running {
        let mut rx = s.outcome.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(Outcome::finished)).await;
    }
}

/// The stream of a dispatch: its session, the events so far and the live
/// receiver; `None` if this daemon does not know the dispatch.
pub(crate) fn stream(
    k: &Kernel,
    id: &str,
) -> Option<(
    String,
    Vec<StreamEvent>,
    tokio::sync::broadcast::Receiver<StreamEvent>,
)> {
    let s = k.dispatches().get(id)?;
    let (past, rx) = s.subscribe();
    Some((s.session_id.clone(), past, rx))
}

/// The stream of a dispatch running on another node (issue 23), followed
/// through the cluster's event log: the `dispatch.*` events this node has
/// seen of it, then the ones to come, ending after `done` — numbered from 1
/// in that order. A dispatch whose node died never sends `done`: the session's
/// closing by another node (a takeover, or the node's restart) ends the
/// stream with `done`, status `interrupted`. `None` on SQLite, or if this
/// node has seen nothing of it (unknown, or older than the event ring).
pub(crate) fn remote_stream(
    k: &Kernel,
    id: &str,
) -> Option<(
    String,
    Vec<StreamEvent>,
    tokio::sync::broadcast::Receiver<StreamEvent>,
)> {
    if k.store().backend() != aos_store::Backend::Postgres {
        return None;
    }
    let (ring, mut live) = k.events().subscribe(Some(0));
    let session = ring
        .iter()
        .find(|e| of_dispatch(e, id).is_some())?
        .session_id
        .clone()?;
    let mut seq = 0;
    let mut number = move |(event, data): (&'static str, Value)| {
        seq += 1;
        StreamEvent {
            seq,
            event,
            data: Arc::new(data),
        }
    };
    let mut past: Vec<StreamEvent> = Vec::new();
    for e in ring.iter().skip_while(|e| of_dispatch(e, id).is_none()) {
        if let Some(found) = followed(e, id, &session) {
            past.push(number(found));
        }
        if past.last().is_some_and(|e| e.event == "done") {
            break;
        }
    }
    let (tx, rx) = tokio::sync::broadcast::channel(1024);
    if !past.iter().any(|e| e.event == "done") {
        let (id, sid) = (id.to_string(), session.clone());
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                let e = match live.recv().await {
                    // The client went: stop following (a dispatch whose
                    // node died never sends `done`).
                    Ok(_) if tx.receiver_count() == 0 => return,
                    Ok(e) => e,
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                };
                let Some(found) = followed(&e, &id, &sid) else {
                    continue;
                };
                let done = found.0 == "done";
                if tx.send(number(found)).is_err() || done {
                    return;
                }
            }
        });
    }
    Some((session, past, rx))
}

/// What a follower of dispatch `id` on `session` makes of a bus event: one
/// of the dispatch's own, or its `done` when another node closed the session
/// after the dispatch's node was lost or restarted.
fn followed(
    e: &aos_extension::events::Event,
    id: &str,
    session: &str,
) -> Option<(&'static str, Value)> {
    if e.name != hook::SESSION_INTERRUPTED.name() || e.session_id.as_deref() != Some(session) {
        return of_dispatch(e, id);
    }
    let reason = e.payload_value()["reason"].as_str()?.to_string();
    if reason != crate::recovery::NODE_LOST.reason
        && reason != crate::recovery::DAEMON_RESTART.reason
    {
        return None;
    }
    let error = json!({ "code": "node.lost",
        "message": format!("the node running this dispatch is gone; the session was closed ({reason})") });
    Some((
        "done",
        json!({ "status": "interrupted", "finalMessageSeq": null,
        "usage": aos_types::Usage::default(), "error": error }),
    ))
}

/// A bus event's stream event and data, if it is one of dispatch `id`'s.
fn of_dispatch(e: &aos_extension::events::Event, id: &str) -> Option<(&'static str, Value)> {
    let event = match e.name.strip_prefix("dispatch.")? {
        "message" => "message",
        "tool_call" => "tool_call",
        "tool_result" => "tool_result",
        "error" => "error",
        "done" => "done",
        _ => return None,
    };
    let mut data = e.payload_value();
    let of = data.as_object_mut()?.remove("dispatchId")?;
    (of == id).then_some((event, data))
}
