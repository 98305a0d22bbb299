//! The dispatches of this daemon: each one's state (outcome, interrupt,
//! event stream) and the per-session FIFO inbox of queued messages. The
//! dispatch ops (`crate::react`) and the loop's port read and change them.

use aos_extension::events::EventBus;
use aos_store::{MessageExtra, NewMessage};
use aos_types::{IdKind, Origin, Part, Role, SyscallError, Usage, new_id};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
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
    pub(crate) fn pending(status: &str) -> Outcome {
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
            store_failed: crate::params::is_store_failure(e),
        }
    }

    pub(crate) fn finished(&self) -> bool {
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
    bus: Arc<EventBus>,
    pub agent_id: String,
    /// A `session.compact` its own bash asked for: run when the turn ends.
    pub compact_request: Mutex<Option<String>>,
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
    /// The running dispatch of each session.
    pub(crate) running: Mutex<HashMap<String, Arc<DispatchState>>>,
    /// Each session's queued messages, in order.
    pub(crate) inbox: Mutex<HashMap<String, VecDeque<Queued>>>,
}

impl Dispatches {
    /// Registers a new dispatch (`id`: the one an idempotency key gave).
    pub(crate) fn register(
        &self,
        bus: &Arc<EventBus>,
        agent_id: &str,
        session_id: &str,
        status: &str,
        id: Option<String>,
    ) -> Arc<DispatchState> {
        let state = Arc::new(DispatchState {
            id: id.unwrap_or_else(|| new_id(IdKind::Dispatch)),
            session_id: session_id.to_string(),
            bus: bus.clone(),
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

    /// Forgets a dispatch.
    pub(crate) fn forget(&self, id: &str) {
        if let Ok(mut all) = self.all.lock() {
            all.remove(id);
        }
    }

    /// A dispatch this daemon knows.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<DispatchState>> {
        self.all.lock().ok()?.get(id).cloned()
    }

    /// The dispatch running in a session.
    pub(crate) fn running_in(&self, session_id: &str) -> Option<Arc<DispatchState>> {
        self.running.lock().ok()?.get(session_id).cloned()
    }

    /// Every running dispatch (for shutdown).
    pub(crate) fn all_running(&self) -> Vec<Arc<DispatchState>> {
        self.running
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The agent and session of a dispatch this daemon knows.
    pub(crate) fn owner(&self, id: &str) -> Option<(String, String)> {
        let d = self.get(id)?;
        Some((d.agent_id.clone(), d.session_id.clone()))
    }
}

/// A message waiting for its session to be free.
pub(crate) struct Queued {
    /// Its dispatch (status `queued`).
    pub state: Arc<DispatchState>,
    /// The message.
    pub input: Input,
}

/// A dispatch's user message before it is written.
pub(crate) struct Input {
    pub text: String,
    pub origin: Origin,
    /// The `data-a2a` envelope, for a message from another agent.
    pub a2a: Option<Value>,
}

impl Input {
    /// The message's parts and extra metadata.
    pub(crate) fn into_message(self, id: String) -> NewMessage {
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

/// The id of a dispatch's user message: derived from the dispatch id, so a
/// queued message is written once even when its run is resumed after a crash.
pub(crate) fn user_message_id(dispatch_id: &str) -> String {
    format!("msg_{}", dispatch_id.trim_start_matches("ds_"))
}
