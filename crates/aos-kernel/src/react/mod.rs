//! The ReActUnit: an LLM plus one tool, `bash`, in a loop, created per
//! dispatch (`kernel.md` §4.4). This module owns dispatch bookkeeping —
//! leases, the per-session FIFO inbox, waiters, interrupts. The loop itself
//! is the kernel's [`crate::Runner`].

mod inbox;
mod lease;

pub(crate) use inbox::resume;
pub(crate) use lease::set_phase;

use crate::hooks::HookScope;
use crate::kernel::{Done, Kernel, OpResult};
use crate::params::{self, StoreResult, decode};
use crate::principal::Principal;
use aos_store::{MessageExtra, NewMessage};
use aos_types::hook;
use aos_types::{ErrorCode, IdKind, Origin, Part, Role, SessionPhase, SyscallError, Usage, new_id};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Where a dispatch stands.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// `queued`, `running`, `completed`, `interrupted`, `failed`, `max_turns`.
    pub status: String,
    /// Seq of the last message the dispatch wrote.
    pub final_message_seq: Option<i64>,
    /// The final answer's text.
    pub final_text: Option<String>,
    /// Tokens used.
    pub usage: Usage,
    /// The error of a failed dispatch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// Whether it failed because the store refused a write (a full disk, a
    /// lost database): what it left open may not be recorded.
    #[serde(skip)]
    pub store_failed: bool,
}

impl Outcome {
    fn pending(status: &str) -> Outcome {
        Outcome {
            status: status.into(),
            final_message_seq: None,
            final_text: None,
            usage: Usage::default(),
            error: None,
            store_failed: false,
        }
    }

    /// The outcome of a dispatch that failed with `e` (after writing up to
    /// `seq`, using `usage`).
    pub fn failed(seq: Option<i64>, usage: Usage, e: &SyscallError) -> Outcome {
        Outcome {
            status: "failed".into(),
            final_message_seq: seq,
            final_text: None,
            usage,
            error: Some(json!(e)),
            store_failed: params::is_store_failure(e),
        }
    }

    fn finished(&self) -> bool {
        !matches!(self.status.as_str(), "queued" | "running")
    }
}

/// One event of a dispatch's stream (`GET /v1/dispatch/{id}/stream`).
#[derive(Debug, Clone, Serialize)]
pub struct StreamEvent {
    /// Position in the stream, from 1 (the SSE id).
    pub seq: u64,
    /// `message`, `tool_call`, `tool_result`, `error` or `done`.
    pub event: &'static str,
    /// The payload (shared by the replay log and every subscriber).
    pub data: Arc<Value>,
}

/// Events kept per dispatch for late subscribers.
const MAX_STREAM_EVENTS: usize = 20_000;

/// One dispatch.
pub(crate) struct DispatchState {
    pub id: String,
    pub session_id: String,
    pub outcome: watch::Sender<Outcome>,
    pub interrupt: watch::Sender<Option<String>>,
    stream: Mutex<Vec<StreamEvent>>,
    live: tokio::sync::broadcast::Sender<StreamEvent>,
    /// The daemon's event bus: every stream event is also on `/v1/events`
    /// as `dispatch.<event>`.
    bus: Arc<crate::EventBus>,
    agent_id: String,
    /// A `session.compact` its own bash asked for: run when the turn ends.
    compact_request: Mutex<Option<String>>,
}

impl DispatchState {
    /// Takes the compaction the dispatch's own bash scheduled, if any.
    pub(crate) fn take_compact_request(&self) -> Option<String> {
        self.compact_request.lock().ok()?.take()
    }

    /// Records and broadcasts a stream event.
    pub(crate) fn publish(&self, event: &'static str, data: Value) {
        let Ok(mut log) = self.stream.lock() else {
            return;
        };
        let e = StreamEvent {
            seq: log.len() as u64 + 1,
            event,
            data: Arc::new(data),
        };
        if log.len() < MAX_STREAM_EVENTS {
            log.push(e.clone());
        }
        let mut payload = Value::clone(&e.data);
        if let Some(o) = payload.as_object_mut() {
            o.insert("dispatchId".into(), json!(self.id));
        }
        self.bus.publish(
            &format!("dispatch.{}", e.event),
            Some(&self.agent_id),
            Some(&self.session_id),
            payload,
        );
        let _ = self.live.send(e);
    }

    /// Ends the dispatch: the `done` event, then the outcome for waiters.
    pub(crate) fn end(&self, outcome: Outcome) {
        self.publish(
            "done",
            json!({ "status": outcome.status, "finalMessageSeq": outcome.final_message_seq,
                    "usage": outcome.usage, "error": outcome.error }),
        );
        self.outcome.send_replace(outcome);
    }

    /// What happened so far, and the live continuation (no gap, no repeat).
    pub(crate) fn subscribe(
        &self,
    ) -> (
        Vec<StreamEvent>,
        tokio::sync::broadcast::Receiver<StreamEvent>,
    ) {
        let log = self.stream.lock().map(|l| l.clone()).unwrap_or_default();
        // Subscribing under the same lock keeps replay and live disjoint.
        let guard = self.stream.lock();
        let rx = self.live.subscribe();
        drop(guard);
        (log, rx)
    }
}

/// All dispatches of this daemon.
#[derive(Default)]
pub struct Dispatches {
    all: Mutex<HashMap<String, Arc<DispatchState>>>,
    running: Mutex<HashMap<String, Arc<DispatchState>>>,
    inbox: Mutex<HashMap<String, VecDeque<inbox::Queued>>>,
}

impl Dispatches {
    fn register(
        &self,
        k: &Kernel,
        agent_id: &str,
        session_id: &str,
        status: &str,
        id: Option<String>,
    ) -> Arc<DispatchState> {
        let state = Arc::new(DispatchState {
            id: id.unwrap_or_else(|| new_id(IdKind::Dispatch)),
            session_id: session_id.to_string(),
            bus: k.events().clone(),
            agent_id: agent_id.to_string(),
            outcome: watch::Sender::new(Outcome::pending(status)),
            interrupt: watch::Sender::new(None),
            stream: Mutex::new(Vec::new()),
            live: tokio::sync::broadcast::channel(1024).0,
            compact_request: Mutex::new(None),
        });
        if let Ok(mut all) = self.all.lock() {
            all.insert(state.id.clone(), state.clone());
        }
        state
    }

    fn forget(&self, id: &str) {
        if let Ok(mut all) = self.all.lock() {
            all.remove(id);
        }
    }

    fn get(&self, id: &str) -> Option<Arc<DispatchState>> {
        self.all.lock().ok()?.get(id).cloned()
    }

    fn running_in(&self, session_id: &str) -> Option<Arc<DispatchState>> {
        self.running.lock().ok()?.get(session_id).cloned()
    }

    /// Every running dispatch (for shutdown).
    pub(crate) fn all_running(&self) -> Vec<Arc<DispatchState>> {
        self.running
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserMessage {
    role: String,
    content: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Dispatch {
    session_id: String,
    message: UserMessage,
    #[serde(default)]
    queue: bool,
    a2a: Option<A2aFrom>,
    idempotency_key: Option<String>,
}

/// The sender of a message from another agent (`data-a2a`, `kernel.md`
/// §2.2): given by the a2a service, never by an agent's own token.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct A2aFrom {
    mode: A2aMode,
    from_agent_id: String,
    from_session_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum A2aMode {
    Silent,
    Notify,
    Wake,
}

/// A dispatch's user message before it is written.
pub(super) struct Input {
    text: String,
    origin: Origin,
    /// The `data-a2a` envelope, for a message from another agent.
    a2a: Option<Value>,
}

impl Input {
    /// The message's parts and extra metadata.
    fn into_message(self, id: String) -> NewMessage {
        let from_agent_id = self
            .a2a
            .as_ref()
            .and_then(|a| a["fromAgentId"].as_str())
            .map(String::from);
        let mut parts = Vec::with_capacity(2);
        if let Some(data) = self.a2a {
            parts.push(Part::DataA2a {
                id: String::new(),
                data,
            });
        }
        parts.push(Part::text(self.text));
        NewMessage {
            role: Role::User,
            parts,
            origin: self.origin,
            extra: MessageExtra {
                id: Some(id),
                from_agent_id,
                ..Default::default()
            },
        }
    }
}

/// Checks an a2a envelope: only a service (the a2a skill) or the operator may
/// speak for another agent, and the sender must exist.
pub(crate) async fn a2a_envelope(
    k: &Kernel,
    p: &Principal,
    from: A2aFrom,
) -> Result<Value, SyscallError> {
    if matches!(p, Principal::Session { .. }) {
        return Err(SyscallError::new(
            ErrorCode::PermissionDenied,
            "a session token may not set `a2a`: send with `aos a2a send`",
        )
        .with_details(json!({ "missing": "a2a", "principal": "session" })));
    }
    params::id("a2a.fromAgentId", &from.from_agent_id)?;
    let sender = crate::ops::session::load(k, &from.from_session_id).await?;
    if sender.agent_id != from.from_agent_id {
        return Err(SyscallError::invalid(format!(
            "`a2a.fromSessionId` {} does not belong to agent {}",
            from.from_session_id, from.from_agent_id
        )));
    }
    if let Some(c) = &from.correlation_id {
        params::short_text("a2a.correlationId", c)?;
    }
    Ok(json!(from))
}

/// Longest user message, in bytes.
const MAX_MESSAGE: usize = 1 << 20;

/// `session.dispatch`.
pub(crate) async fn dispatch(k: &Kernel, p: &Principal, params: Map<String, Value>) -> OpResult {
    let d: Dispatch = decode("session.dispatch", params)?;
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
    let scb = crate::ops::session::writable(k, &d.session_id).await?;
    crate::sandbox::admit_dispatch(k, &scb.session_id)?;
    let scope = HookScope {
        agent_id: Some(&scb.agent_id),
        session_id: Some(&scb.session_id),
    };
    let input = json!({ "agentId": scb.agent_id, "sessionId": scb.session_id, "message": d.message.content });
    let admitted = k
        .inner
        .hooks
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
        Some(from) => Some(a2a_envelope(k, p, from).await?),
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
            let state = k.inner.dispatches.register(
                k,
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

/// Where the process groups of running commands are recorded, so a daemon
/// restarted after a crash can kill what was left running.
pub(crate) fn running_dir(cfg: &crate::KernelConfig, session_id: &str) -> std::path::PathBuf {
    cfg.home.join("sessions").join(session_id).join("running")
}

/// The session's working directory (the commands' cwd).
pub(crate) fn work_dir(cfg: &crate::KernelConfig, session_id: &str) -> std::path::PathBuf {
    cfg.home.join("sessions").join(session_id).join("work")
}

/// The session's temporary directory (`TMPDIR` of its commands).
pub(crate) fn tmp_dir(cfg: &crate::KernelConfig, session_id: &str) -> std::path::PathBuf {
    cfg.home.join("sessions").join(session_id).join("tmp")
}

/// The file naming the process group of the session's running command
/// (empty between commands). One per session: a session runs one dispatch
/// at a time (its lease).
pub(crate) fn pid_file(cfg: &crate::KernelConfig, session_id: &str) -> std::path::PathBuf {
    running_dir(cfg, session_id).join("command.pid")
}

/// Creates the session's directories and its empty pid file when the
/// session is created, so no command pays for a new inode (a command
/// creates them again if they were removed).
pub(crate) fn make_dirs(cfg: &crate::KernelConfig, session_id: &str) {
    let made = command_dirs(cfg, session_id)
        .map(drop)
        .and_then(|()| std::fs::create_dir_all(running_dir(cfg, session_id)))
        .and_then(|()| std::fs::File::create(pid_file(cfg, session_id)).map(drop));
    if let Err(e) = made {
        tracing::warn!(session = %session_id, error = %e, "cannot create the session's directories");
    }
}

/// Creates the session's work and temp dirs if missing and returns them;
/// when commands run as another user, that user owns them and the session's
/// directory lets it through (traverse only).
pub(crate) fn command_dirs(
    cfg: &crate::KernelConfig,
    session_id: &str,
) -> std::io::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let (work, tmp) = (work_dir(cfg, session_id), tmp_dir(cfg, session_id));
    for dir in [&work, &tmp] {
        if !dir.is_dir() {
            std::fs::create_dir_all(dir)?;
            if let Some((uid, gid)) = cfg.bash_sandbox.run_as.filter(|_| cfg.bash_sandbox.enabled) {
                use std::os::unix::fs::PermissionsExt;
                std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
                if let Some(session) = dir.parent() {
                    std::fs::set_permissions(session, std::fs::Permissions::from_mode(0o711))?;
                }
            }
        }
    }
    Ok((work, tmp))
}

/// The id of a dispatch's user message: derived from the dispatch id, so a
/// queued message is written once even when its run is resumed after a crash.
fn user_message_id(dispatch_id: &str) -> String {
    format!("msg_{}", dispatch_id.trim_start_matches("ds_"))
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
        let scb = k.inner.store.session_get(&state.session_id).await.sys()?;
        let m = input.into_message(user_message_id(&state.id));
        let (msgs, _) = k.append(&scb, None, vec![m]).await?;
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
    let scb = crate::ops::session::writable(k, &c.session_id).await?;
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
    let scb = k.inner.store.session_get(&scb.session_id).await.sys();
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
    if let Ok(mut r) = k.inner.dispatches.running.lock() {
        r.insert(state.session_id.clone(), state.clone());
    }
    tokio::spawn(async move {
        let renewal = lease::renew(&k, &state.session_id, &lease);
        state.outcome.send_modify(|o| o.status = "running".into());
        let outcome = crate::runner::run(&k, &state, lease.clone(), first_seq).await;
        crate::sandbox::release(&k, &state.session_id).await;
        renewal.abort();
        if outcome.store_failed {
            lease::close_after_store_failure(&k, &state.session_id, &lease).await;
        } else {
            lease::release(&k, &state.session_id, &lease).await;
        }
        if let Ok(mut r) = k.inner.dispatches.running.lock() {
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
    let known = k.inner.dispatches.get(id);
    if known.is_none() {
        k.inner
            .store
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
    let running = k.inner.dispatches.running_in(session_id)?;
    if own != session_id || &running.id != dispatch {
        return None;
    }
    *running.compact_request.lock().ok()? = Some(reason.to_string());
    Some(Done::data(json!({
        "sessionId": session_id, "scheduled": true, "compacted": false,
        "note": "runs when this turn ends, before the next model call",
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Wait {
    dispatch_id: String,
    timeout_ms: Option<u64>,
}

/// `session.wait`.
pub(crate) async fn wait(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let w: Wait = decode("session.wait", params)?;
    params::id("dispatchId", &w.dispatch_id)?;
    let state = k
        .inner
        .dispatches
        .get(&w.dispatch_id)
        .ok_or_else(|| SyscallError::not_found("dispatch", &w.dispatch_id))?;
    let timeout = Duration::from_millis(w.timeout_ms.unwrap_or(600_000).min(3_600_000));
    let mut rx = state.outcome.subscribe();
    let outcome = match tokio::time::timeout(timeout, rx.wait_for(Outcome::finished)).await {
        Ok(Ok(o)) => o.clone(),
        // Not finished in time: as it is now (`queued` or `running`).
        _ => state.outcome.borrow().clone(),
    };
    Ok(Done::data(json!(outcome)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Interrupt {
    session_id: String,
    reason: Option<String>,
}

/// `session.interrupt`.
pub(crate) async fn interrupt(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let i: Interrupt = decode("session.interrupt", params)?;
    let scb = crate::ops::session::load(k, &i.session_id).await?;
    let reason = i.reason.unwrap_or_else(|| "interrupted by request".into());
    params::short_text("reason", &reason)?;
    let Some(state) = k.inner.dispatches.running_in(&scb.session_id) else {
        return free_stranded(k, scb, &reason).await;
    };
    state.interrupt.send_replace(Some(reason));
    Ok(Done::data(
        json!({ "sessionId": scb.session_id, "dispatchId": state.id, "interrupted": true }),
    )
    .ids(Some(&scb.agent_id), Some(&scb.session_id)))
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
    let running = k.inner.dispatches.all_running();
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

/// The agent and session of a dispatch this daemon knows.
pub(crate) fn dispatch_owner(k: &Kernel, id: &str) -> Option<(String, String)> {
    let d = k.inner.dispatches.get(id)?;
    Some((d.agent_id.clone(), d.session_id.clone()))
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
    let s = k.inner.dispatches.get(id)?;
    let (past, rx) = s.subscribe();
    Some((s.session_id.clone(), past, rx))
}
