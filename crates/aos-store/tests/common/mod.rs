//! Shared fixtures for the store tests: a fresh SQLite file or a fresh
//! PostgreSQL schema per test, and sample records.

#![allow(dead_code)]

use aos_store::{NewMessage, Store};
use aos_types::{Aoscb, Origin, Part, Role, SCHEMA_VERSION, Scb, now};

pub use aos_testkit::{pg_store as postgres, sqlite_store as sqlite};

/// A second store ("another daemon") on the same PostgreSQL schema.
pub async fn postgres_again(schema: &str) -> Store {
    aos_testkit::pg_store_in(schema).await
}

pub fn aoscb() -> Aoscb {
    let t = now();
    Aoscb {
        schema_version: SCHEMA_VERSION.into(),
        name: "test".into(),
        skill_root: "./skills".into(),
        revision: 1,
        created_at: t.clone(),
        updated_at: t,
        default_skills: vec![],
        model: "m".into(),
        auto_fold_threshold: 16384,
        compaction_threshold: 100_000,
        max_turns: 50,
    }
}

pub use aos_testkit::{acb, scb};

pub fn text(s: &str) -> NewMessage {
    NewMessage {
        role: Role::User,
        parts: vec![Part::text(s)],
        origin: Origin::Human,
        extra: Default::default(),
    }
}

/// An agent and a ready session in `store`.
pub async fn session(store: &Store) -> Scb {
    let a = acb();
    store.agent_insert(&a).await.expect("agent");
    let s = scb(&a.agent_id);
    store.session_insert(&s).await.expect("session");
    s
}
