//! AgentOS persistence: the control blocks (AOSCB, ACB, SCB), SessionHistory,
//! the RuntimeLog and the ContentStore, on SQLite (embedded default) or
//! PostgreSQL (shared by several daemons).
//!
//! [`Store`] is the one API; two real backends sit behind it:
//! - SQLite through rusqlite: one writer thread owns the write connection and
//!   runs each whole operation (read-check-write transaction) in one hop;
//!   reads use a small pool of connections on blocking threads (WAL lets them
//!   run beside the writer). An exclusive lock file keeps a database file to
//!   one daemon.
//! - PostgreSQL through sqlx: row locks order concurrent writers, including
//!   writers in other daemons.
//!
//! Guarantees on both:
//! - `seq` of SessionHistory is 1, 2, 3… per session with no gap or duplicate:
//!   the session row is the counter, bumped in the same transaction that
//!   inserts the messages.
//! - Every control-block change bumps `revision` by exactly 1 and may be made
//!   conditional on `expectedRevision`.

mod common;
mod error;
mod postgres;
mod schema;
mod sqlite;
mod store;
mod writer;

pub use error::StoreError;
pub use store::{
    Backend, Counts, EventPage, EventWake, FactLog, HistoryQuery, InboxEntry, KV_MAX_KEYS, KvEntry,
    LogQuery, MessageExtra, NewEvent, NewLogEntry, NewMessage, NodeRecord, SessionQuery, Store,
    StoreOptions, StoredEvent,
};
