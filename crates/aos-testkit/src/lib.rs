//! Fixtures shared by the test suites: a fresh SQLite store, a fresh
//! PostgreSQL schema or database per test (so tests run in parallel), and the
//! repository paths tests need.
//!
//! PostgreSQL is never optional: with no server to reach the kit starts one
//! of its own from the installed binaries, and with no binaries either these
//! fixtures panic naming the package — a machine without PostgreSQL fails
//! instead of skipping.

pub use aos_llm_script::{Reply, ScriptedLlm};

use aos_store::{Store, StoreOptions};
use aos_types::{
    Acb, AgentStatus, IdKind, SCHEMA_VERSION, Scb, SessionPhase, SessionStatus, new_id, now,
};
use std::path::PathBuf;

pub mod pg;

/// The PostgreSQL server tests use: `AOS_TEST_PG_URL`, else a server on
/// 127.0.0.1:5432, else a throwaway cluster of the test process's own
/// ([`pg`]).
pub fn pg_url() -> String {
    pg::url()
}

/// A unique lowercase name with a prefix, usable as a schema or database name.
pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        new_id(IdKind::Agent).trim_start_matches("ag_")
    )
}

/// A store on a new SQLite file; keep the directory alive as long as the store.
pub async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/aos.db", dir.path().display());
    (Store::open(&url).await.expect("open sqlite"), dir)
}

/// Drops schemas and databases that earlier test runs left behind (older than
/// two hours, judged by the ULID time in their names), once per process, so a
/// developer machine or a reused CI machine does not fill up.
async fn sweep_stale() {
    use sqlx::{Connection, Row};
    static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if SWEPT.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let Ok(mut conn) = sqlx::PgConnection::connect(&pg_url()).await else {
        return;
    };
    let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    let stale = |name: &str, prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|id| ulid::Ulid::from_string(&id.to_uppercase()).ok())
            .is_some_and(|u| u.datetime() < cutoff)
    };
    let q = "SELECT nspname AS n FROM pg_namespace WHERE nspname LIKE 't\\_%'";
    if let Ok(rows) = sqlx::query(q).fetch_all(&mut conn).await {
        for name in rows.iter().filter_map(|r| r.try_get::<String, _>("n").ok()) {
            if stale(&name, "t_") {
                let _ = sqlx::query(&format!("DROP SCHEMA \"{name}\" CASCADE"))
                    .execute(&mut conn)
                    .await;
            }
        }
    }
    let q = "SELECT datname AS n FROM pg_database WHERE datname LIKE 'aos\\_e2e\\_%'";
    if let Ok(rows) = sqlx::query(q).fetch_all(&mut conn).await {
        for name in rows.iter().filter_map(|r| r.try_get::<String, _>("n").ok()) {
            if stale(&name, "aos_e2e_") {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        }
    }
}

/// A store on a new schema of the test PostgreSQL server; returns the schema
/// so a second store ("another daemon") can share it.
pub async fn pg_store() -> (Store, String) {
    sweep_stale().await;
    let schema = unique_name("t");
    (pg_store_in(&schema).await, schema)
}

/// A store on an existing (or new) schema.
pub async fn pg_store_in(schema: &str) -> Store {
    Store::open_with(
        &pg_url(),
        StoreOptions {
            pg_schema: Some(schema.to_string()),
            max_connections: Some(8),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("PostgreSQL at {} is required for the tests: {e}", pg_url()))
}

/// Creates a new database on the test server and returns its URL (for
/// daemons started as processes, which take a plain `--db` URL).
pub async fn fresh_pg_database() -> String {
    use sqlx::Connection;
    sweep_stale().await;
    let name = unique_name("aos_e2e");
    let mut conn = sqlx::PgConnection::connect(&pg_url())
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {} is required for the tests: {e}", pg_url()));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = pg_url();
    let (prefix, _) = base.rsplit_once('/').expect("URL has a database part");
    format!("{prefix}/{name}")
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The built-in skill root.
pub fn builtin_skills() -> PathBuf {
    repo_root().join("skills")
}

/// Skills written for other agents (scripts/, references/, extra frontmatter).
pub fn third_party_skills() -> PathBuf {
    repo_root().join("crates/aos-manifest/tests/fixtures/good")
}

/// Broken skills, each with the error it must raise.
pub fn broken_skills() -> PathBuf {
    repo_root().join("crates/aos-manifest/tests/fixtures/bad")
}

/// A new active agent record (not stored).
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

/// A new ready, idle session record of `agent_id` (not stored).
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
        lease_term: 0,
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
