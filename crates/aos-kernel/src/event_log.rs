//! The cluster's event log (issue 23). On a shared store (PostgreSQL) every
//! node's events go to one table: a fact's event in the fact's own
//! transaction (the store writes it with the messages, [`FactLog`]), the other
//! events through a bounded relay, in batches. Positions follow commit order
//! (a transaction's id, then the event's rank in it), and every node tails
//! the table by position — woken by a NOTIFY sent after each commit, reading
//! at least once a second without one — reading only what no transaction
//! still running can precede. So a node's `/v1/events` shows every node's
//! events with the same ids, `Last-Event-ID` resumes on any node, and no
//! committed fact's event is lost with its node. The table keeps the last
//! [`KEEP`] events. On SQLite (one node) events stay in memory.

use crate::Kernel;
use aos_extension::events::{Event, EventBus};
use aos_store::{Backend, FactLog, NewEvent, Store, StoredEvent};
use serde_json::value::RawValue;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Events waiting to be written; past it they are dropped and counted.
const RELAY_CAPACITY: usize = 8_192;
/// Events written in one statement at most.
const BATCH: usize = 256;
/// Events the table keeps.
const KEEP: i64 = 100_000;
/// The longest a tailer goes without reading the log.
const POLL: Duration = Duration::from_secs(1);
/// The longest first wait before a re-read when the log holds events a
/// running transaction still holds back (doubling up to [`POLL`]); a NOTIFY
/// — that transaction's, if it writes events — ends it sooner.
const SETTLE: Duration = Duration::from_millis(5);
/// Held back this long, the log's readers are told why.
const STALL_WARN: Duration = Duration::from_secs(5);
/// Events read in one page.
const PAGE: i64 = 1_000;

/// Routes this node's events through the cluster's log when the store is
/// shared; a no-op on SQLite.
pub(crate) async fn start(k: &Kernel) {
    if k.store().backend() != Backend::Postgres {
        return;
    }
    let last = match k.store().events_last_id().await {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the event log; events stay on this node");
            return;
        }
    };
    let Some(rx) = k.events().relay(RELAY_CAPACITY) else {
        return;
    };
    k.store().log_facts(FactLog {
        node_id: k.node_id().to_string(),
        name: aos_types::hook::CONTEXT_INGEST.name().to_string(),
        payload: Box::new(|scb, m| crate::kernel::ingest_payload(scb, m).to_string()),
    });
    let bus = Arc::downgrade(k.events());
    tokio::spawn(write(
        k.store().clone(),
        k.node_id().to_string(),
        rx,
        bus.clone(),
    ));
    tokio::spawn(tail(k.store().clone(), bus, last));
}

/// Writes what this node publishes, in batches, retrying (50 ms doubling to
/// 5 s) while the store refuses — for as long as the bus lives.
async fn write(store: Store, node: String, mut rx: mpsc::Receiver<Event>, bus: Weak<EventBus>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![stored(first)];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(stored(e)),
                Err(_) => break,
            }
        }
        let mut wait = Duration::from_millis(50);
        while let Err(e) = store.events_append(&node, batch.clone()).await {
            if bus.strong_count() == 0 {
                return;
            }
            tracing::warn!(error = %e, events = batch.len(), "cannot write events to the cluster's log; retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }
}

/// The event to write.
fn stored(e: Event) -> NewEvent {
    NewEvent {
        name: e.name,
        time: e.time,
        scope: e.scope.to_string(),
        agent_id: e.agent_id,
        session_id: e.session_id,
        payload: e.payload.get().to_string(),
    }
}

/// Delivers the log's events after `last` to this node's bus as they settle.
async fn tail(store: Store, bus: Weak<EventBus>, mut last: i64) {
    let mut wake = None;
    let mut read_since_trim = 0;
    let mut settle = SETTLE;
    let mut held_since: Option<Instant> = None;
    loop {
        let Some(b) = bus.upgrade() else { return };
        if wake.is_none() {
            wake = store.events_listen().await.ok();
        }
        let mut unsettled = false;
        loop {
            match store.events_after(last, PAGE).await {
                Ok(page) => {
                    for e in &page.events {
                        deliver(&b, e);
                        last = e.id;
                    }
                    read_since_trim += page.events.len();
                    unsettled = page.unsettled;
                    if !page.more {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the cluster's event log");
                    break;
                }
            }
        }
        drop(b);
        if read_since_trim >= 10_000 {
            read_since_trim = 0;
            if let Err(e) = store.events_trim(KEEP).await {
                tracing::debug!(error = %e, "cannot trim the event log");
            }
        }
        // Events committed behind a transaction still running: read again
        // at its NOTIFY, or soon — none comes if it writes no event.
        let timeout = match unsettled {
            true => {
                let since = *held_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= STALL_WARN {
                    tracing::warn!(held_for = ?since.elapsed(), "the cluster's events are held back by a long transaction on the database server (see docs/operations.md)");
                    held_since = Some(Instant::now());
                }
                let t = settle;
                settle = (settle * 2).min(POLL);
                t
            }
            false => {
                (settle, held_since) = (SETTLE, None);
                POLL
            }
        };
        match &mut wake {
            Some(w) => {
                if !w.wait(timeout).await {
                    wake = None;
                }
            }
            None => tokio::time::sleep(timeout).await,
        }
    }
}

fn deliver(bus: &EventBus, e: &StoredEvent) {
    let Ok(payload) = RawValue::from_string(e.event.payload.clone()) else {
        return;
    };
    let event = Event {
        id: 0,
        name: e.event.name.clone(),
        time: e.event.time.clone(),
        scope: "session",
        agent_id: e.event.agent_id.clone(),
        session_id: e.event.session_id.clone(),
        payload,
    };
    bus.deliver(e.id as u64, event, &e.event.scope);
}
