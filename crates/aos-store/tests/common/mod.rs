//! Shared fixtures for the store tests: a fresh SQLite file or a fresh
//! PostgreSQL schema per test, and sample records.

#![allow(dead_code)]

use aos_store::{NewMessage, Store, StoreOptions};
use aos_types::{
    Acb, AgentStatus, Aoscb, IdKind, Origin, Part, Role, SCHEMA_VERSION, Scb, SessionPhase,
    SessionStatus, new_id, now,
};

/// The PostgreSQL server tests use. Never skipped: without a server these
/// tests fail, which is what CI must see.
pub fn pg_url() -> String {
    std::env::var("AOS_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A store on a new SQLite file; keep the TempDir alive.
pub async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/aos.db", dir.path().display());
    (Store::open(&url).await.expect("open sqlite"), dir)
}

/// A fresh PostgreSQL schema name.
pub fn pg_schema() -> String {
    format!("t_{}", new_id(IdKind::Agent).trim_start_matches("ag_"))
}

/// A store on a new PostgreSQL schema.
pub async fn postgres() -> (Store, String) {
    let schema = pg_schema();
    let store = Store::open_with(
        &pg_url(),
        StoreOptions {
            pg_schema: Some(schema.clone()),
            max_connections: Some(8),
        },
    )
    .await
    .expect("open postgres: is AOS_TEST_PG_URL reachable?");
    (store, schema)
}

/// A second store ("another daemon") on the same PostgreSQL schema.
pub async fn postgres_again(schema: &str) -> Store {
    Store::open_with(
        &pg_url(),
        StoreOptions {
            pg_schema: Some(schema.to_string()),
            max_connections: Some(8),
        },
    )
    .await
    .expect("open postgres again")
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

pub fn acb() -> Acb {
    let t = now();
    Acb {
        schema_version: SCHEMA_VERSION.into(),
        agent_id: new_id(IdKind::Agent),
        status: AgentStatus::Active,
        display_name: "a".into(),
        revision: 1,
        created_by: "human".into(),
        created_at: t.clone(),
        updated_at: t,
        archived_at: None,
        default_skills: vec![],
        auto_fold_threshold: None,
        model: None,
        permissions: None,
    }
}

pub fn scb(agent_id: &str) -> Scb {
    let t = now();
    Scb {
        schema_version: SCHEMA_VERSION.into(),
        session_id: new_id(IdKind::Session),
        agent_id: agent_id.into(),
        status: SessionStatus::Ready,
        phase: SessionPhase::Idle,
        lease_id: None,
        lease_holder: None,
        lease_expires_at: None,
        title: None,
        revision: 1,
        created_by: "human".into(),
        created_at: t.clone(),
        updated_at: t,
        archived_at: None,
        default_skills: vec![],
        auto_fold_threshold: None,
        message_count: 0,
        last_message_seq: None,
    }
}

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
