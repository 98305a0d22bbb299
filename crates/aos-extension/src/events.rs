//! The event bus behind `GET /v1/events`: every event-kind hook the kernel
//! fires is published here, numbered, kept in a bounded ring for
//! `Last-Event-ID` resume, and broadcast to live subscribers.

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{broadcast, mpsc};

/// How many past events are kept for resume…
const RING: usize = 4096;
/// …and how many bytes of their payloads (JSON text), whichever is reached
/// first (a payload can be a whole message).
const RING_BYTES: usize = 1 << 20;

/// One published event.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Monotonic id (per daemon), the SSE `id`.
    pub id: u64,
    /// Hook name, e.g. `session.started`.
    pub name: String,
    /// When.
    pub time: String,
    /// `system`, `agent` or `session`.
    pub scope: &'static str,
    /// Agent concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Session concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The hook payload, as the JSON text subscribers are sent.
    pub payload: Box<RawValue>,
}

impl Event {
    /// The payload as a value.
    pub fn payload_value(&self) -> Value {
        serde_json::from_str(self.payload.get()).unwrap_or(Value::Null)
    }
}

/// The kept events, their payloads' bytes, and the last id given.
#[derive(Debug, Default)]
struct Ring {
    last_id: u64,
    events: VecDeque<Arc<Event>>,
    bytes: usize,
}

/// Which events a subscriber wants.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// `system`, `agent` or `session`: only events of that scope.
    pub scope: Option<String>,
    /// Only this agent's events.
    pub agent_id: Option<String>,
    /// Only this session's events.
    pub session_id: Option<String>,
}

impl EventFilter {
    /// Whether `e` passes the filter.
    pub fn matches(&self, e: &Event) -> bool {
        self.scope.as_deref().is_none_or(|s| s == e.scope)
            && self
                .agent_id
                .as_deref()
                .is_none_or(|a| e.agent_id.as_deref() == Some(a))
            && self
                .session_id
                .as_deref()
                .is_none_or(|s| e.session_id.as_deref() == Some(s))
    }
}

/// The bus.
#[derive(Debug)]
pub struct EventBus {
    /// Events are shared, never copied: the ring and every subscriber hold
    /// the same `Arc` (a payload can be a whole message).
    tx: broadcast::Sender<Arc<Event>>,
    ring: Mutex<Ring>,
    /// Set when events go through the cluster's log instead of straight
    /// to this node's subscribers.
    relay: OnceLock<mpsc::Sender<Event>>,
    /// Events the relay had no room for.
    dropped: AtomicU64,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

/// The scope of an event concerning `agent_id` and `session_id`.
fn scope_of(agent_id: Option<&str>, session_id: Option<&str>) -> &'static str {
    match (agent_id, session_id) {
        (_, Some(_)) => "session",
        (Some(_), None) => "agent",
        (None, None) => "system",
    }
}

impl EventBus {
    /// An empty bus.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        EventBus {
            tx,
            ring: Mutex::default(),
            relay: OnceLock::new(),
            dropped: AtomicU64::new(0),
        }
    }

    /// From now on, sends what is published to the returned receiver (at
    /// most `capacity` waiting; past it an event is dropped, counted and
    /// logged) instead of to subscribers: the relay writes them to the
    /// cluster's log (their `id` not yet given: it is numbered there) and
    /// [`EventBus::deliver`]s what the log holds to every node's bus, this one
    /// included. `None` if a relay was already set.
    pub fn relay(&self, capacity: usize) -> Option<mpsc::Receiver<Event>> {
        let (tx, rx) = mpsc::channel(capacity);
        self.relay.set(tx).ok().map(|()| rx)
    }

    /// Events the relay had no room for, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Publishes an event; ids are assigned under the ring lock so that the
    /// ring and the broadcast see the same order.
    pub fn publish(
        &self,
        name: &str,
        agent_id: Option<&str>,
        session_id: Option<&str>,
        payload: Value,
    ) {
        if let Ok(raw) = serde_json::value::to_raw_value(&payload) {
            self.publish_raw(name, agent_id, session_id, raw);
        }
    }

    /// [`EventBus::publish`] of a payload already written as JSON text.
    pub fn publish_raw(
        &self,
        name: &str,
        agent_id: Option<&str>,
        session_id: Option<&str>,
        payload: Box<RawValue>,
    ) {
        let event = Event {
            id: 0,
            name: name.to_string(),
            time: aos_types::now(),
            scope: scope_of(agent_id, session_id),
            agent_id: agent_id.map(String::from),
            session_id: session_id.map(String::from),
            payload,
        };
        let Some(relay) = self.relay.get() else {
            self.keep(None, event);
            return;
        };
        if relay.try_send(event).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "event relay full or closed; events dropped");
            }
        }
    }

    /// Delivers an event of the cluster's log, numbered `id` there, to this
    /// node's subscribers; one not newer than the last delivered is ignored.
    pub fn deliver(&self, id: u64, mut event: Event, scope: &str) {
        event.id = id;
        event.scope = match scope {
            "system" => "system",
            "agent" => "agent",
            _ => "session",
        };
        self.keep(Some(id), event);
    }

    /// Numbers `event` (the next id, or `id`), keeps it in the ring and
    /// sends it to the subscribers.
    fn keep(&self, id: Option<u64>, mut event: Event) {
        let Ok(mut ring) = self.ring.lock() else {
            return;
        };
        match id {
            Some(id) if id <= ring.last_id => return,
            Some(id) => ring.last_id = id,
            None => ring.last_id += 1,
        }
        event.id = ring.last_id;
        let e = Arc::new(event);
        ring.bytes += e.payload.get().len();
        ring.events.push_back(e.clone());
        while ring.events.len() > RING || (ring.bytes > RING_BYTES && ring.events.len() > 1) {
            if let Some(old) = ring.events.pop_front() {
                ring.bytes -= old.payload.get().len();
            }
        }
        // No subscriber is not an error.
        let _ = self.tx.send(e);
    }

    /// Subscribes, first returning the kept events after `last_id` (for
    /// `Last-Event-ID`), then a live receiver. Taking both under the ring lock
    /// means nothing is missed or seen twice.
    pub fn subscribe(
        &self,
        last_id: Option<u64>,
    ) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let Ok(ring) = self.ring.lock() else {
            return (Vec::new(), self.tx.subscribe());
        };
        let rx = self.tx.subscribe();
        let past = match last_id {
            Some(id) => ring.events.iter().filter(|e| e.id > id).cloned().collect(),
            None => Vec::new(),
        };
        (past, rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resume_and_filter() {
        let bus = EventBus::new();
        bus.publish("aos.started", None, None, json!({}));
        bus.publish("agent.started", Some("ag_1"), None, json!({}));
        bus.publish("session.started", Some("ag_1"), Some("se_1"), json!({}));
        let (past, _rx) = bus.subscribe(Some(1));
        assert_eq!(past.iter().map(|e| e.id).collect::<Vec<_>>(), vec![2, 3]);
        let f = EventFilter {
            session_id: Some("se_1".into()),
            ..Default::default()
        };
        assert_eq!(past.iter().filter(|e| f.matches(e)).count(), 1);
        let f = EventFilter {
            scope: Some("agent".into()),
            ..Default::default()
        };
        assert_eq!(past.iter().filter(|e| f.matches(e)).count(), 1);
        assert_eq!(past[1].payload_value(), json!({}));
    }

    /// With a relay, what is published goes to it (bounded: past its room
    /// events are dropped and counted), and subscribers see only what is
    /// delivered back, with the ids the cluster's log gave — never an older
    /// one twice.
    #[test]
    fn a_relayed_bus_shows_what_the_log_delivers() {
        let bus = EventBus::new();
        let mut rx = bus.relay(2).expect("relay");
        assert!(bus.relay(2).is_none(), "one relay");
        for i in 0..3 {
            bus.publish("tick", Some("ag_1"), Some("se_1"), json!(i));
        }
        assert_eq!(bus.dropped(), 1);
        let first = rx.try_recv().expect("queued");
        assert_eq!((first.scope, first.payload.get()), ("session", "0"));
        let (past, _rx) = bus.subscribe(Some(0));
        assert!(past.is_empty(), "nothing before the log delivers");
        bus.deliver(7, first, "session");
        let second = rx.try_recv().expect("queued");
        bus.deliver(5, second, "session");
        let (past, _rx) = bus.subscribe(Some(0));
        assert_eq!(past.iter().map(|e| e.id).collect::<Vec<_>>(), vec![7]);
    }

    /// The ring keeps at most [`RING`] events and [`RING_BYTES`] of their
    /// payloads: large payloads push the oldest out sooner.
    #[test]
    fn the_ring_is_bounded_by_count_and_by_bytes() {
        let bus = EventBus::new();
        for i in 0..RING + 10 {
            bus.publish("tick", None, None, json!(i));
        }
        let (past, _rx) = bus.subscribe(Some(0));
        assert_eq!(past.len(), RING);
        assert_eq!(past[0].id, 11, "the oldest went first");
        let big = "x".repeat(100_000);
        for _ in 0..20 {
            bus.publish("big", None, None, json!(big));
        }
        let (past, _rx) = bus.subscribe(Some(0));
        let bytes: usize = past.iter().map(|e| e.payload.get().len()).sum();
        assert!(bytes <= RING_BYTES, "{bytes} bytes kept");
        assert_eq!(past.len(), RING_BYTES / 100_002, "the newest that fit");
        assert!(past.iter().all(|e| e.name == "big"));
    }
}
