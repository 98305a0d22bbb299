//! The event bus behind `GET /v1/events`: every event-kind hook the kernel
//! fires is published here, numbered, kept in a bounded ring for
//! `Last-Event-ID` resume, and broadcast to live subscribers.

use serde::Serialize;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// How many past events are kept for resume.
const RING: usize = 4096;

/// One published event.
#[derive(Debug, Clone, Serialize)]
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
    /// The hook payload.
    pub payload: Value,
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
    ring: Mutex<(u64, VecDeque<Arc<Event>>)>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// An empty bus.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        EventBus {
            tx,
            ring: Mutex::new((0, VecDeque::with_capacity(RING))),
        }
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
        let scope = match (agent_id, session_id) {
            (_, Some(_)) => "session",
            (Some(_), None) => "agent",
            (None, None) => "system",
        };
        let Ok(mut ring) = self.ring.lock() else {
            return;
        };
        ring.0 += 1;
        let e = Arc::new(Event {
            id: ring.0,
            name: name.to_string(),
            time: aos_types::now(),
            scope,
            agent_id: agent_id.map(String::from),
            session_id: session_id.map(String::from),
            payload,
        });
        if ring.1.len() == RING {
            ring.1.pop_front();
        }
        ring.1.push_back(e.clone());
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
            Some(id) => ring.1.iter().filter(|e| e.id > id).cloned().collect(),
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
    }
}
