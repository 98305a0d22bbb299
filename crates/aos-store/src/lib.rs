//! AgentOS persistence: the control blocks (AOSCB, ACB, SCB), SessionHistory,
//! the RuntimeLog and the ContentStore, on SQLite (embedded default) or
//! PostgreSQL (shared by several daemons).
//!
//! Both backends are real databases driven through one SQL implementation
//! ([`Store`]) on sqlx's `Any` driver; the few dialect differences live in
//! `schema.rs`. Guarantees:
//! - `seq` of SessionHistory is 1, 2, 3… per session with no gap or duplicate,
//!   under concurrent appends from many tasks and (on PostgreSQL) many daemons:
//!   the session row is the counter, bumped in the same transaction that inserts
//!   the messages.
//! - Every control block change bumps `revision` by exactly 1 and may be made
//!   conditional on `expectedRevision`.
//! - A SQLite file is owned by one daemon at a time (an exclusive lock file).

mod error;
mod schema;
mod store;

pub use error::StoreError;
pub use store::{
    Backend, HistoryQuery, LogQuery, MessageExtra, NewLogEntry, NewMessage, Store, StoreOptions,
};
