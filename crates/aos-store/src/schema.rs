//! DDL per backend and the migration runner. Every migration runs inside one
//! transaction; on PostgreSQL an advisory lock serialises daemons that start at
//! the same time.

/// Ordered migrations: (version, SQLite DDL, PostgreSQL DDL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, SQLITE_V1, POSTGRES_V1),
    (2, SQLITE_V2, POSTGRES_V2),
    (3, SQLITE_V3, POSTGRES_V3),
    (4, NODES_V4, NODES_V4),
    (5, KV_V5, KV_V5),
    (6, SQLITE_V6, POSTGRES_V6),
];

/// v6: the event log in commit order. An event's position is its writing
/// transaction's id (shifted 16 bits) plus its rank in that transaction, so
/// facts' events are written in the facts' own transactions without a lock,
/// and a tailer reads only positions below the oldest transaction still
/// running (`crate::Store::events_after`). The default serves writers of v5.
const POSTGRES_V6: &str = r#"
ALTER TABLE events ADD COLUMN pos BIGINT;
UPDATE events SET pos = id;
ALTER TABLE events ALTER COLUMN pos SET DEFAULT ((pg_current_xact_id()::text::bigint << 16) | (nextval('events_id_seq') & 65535));
ALTER TABLE events ALTER COLUMN pos SET NOT NULL;
CREATE UNIQUE INDEX events_pos ON events(pos);
"#;

const SQLITE_V6: &str = r#"
ALTER TABLE events ADD COLUMN pos INTEGER;
"#;

/// v5: services' key-value store (`capabilities.kv`), one namespace per
/// skill and owner.
const KV_V5: &str = r#"
CREATE TABLE kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    revision BIGINT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
);
"#;

/// v4: the node registry — each daemon's heartbeat (`crate::Store::node_beat`).
const NODES_V4: &str = r#"
CREATE TABLE nodes (
    node_id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    period_ms BIGINT NOT NULL,
    stopped_at TEXT
);
"#;

/// v3: the cluster's event log (PostgreSQL): every node's events, in one
/// order, tailed by every node (`crate::Store::events_after`). SQLite has
/// one node and keeps its events in memory; the table exists for symmetry.
const SQLITE_V3: &str = r#"
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id TEXT NOT NULL,
    name TEXT NOT NULL,
    time TEXT NOT NULL,
    scope TEXT NOT NULL,
    agent_id TEXT,
    session_id TEXT,
    payload TEXT NOT NULL
);
"#;

const POSTGRES_V3: &str = r#"
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    node_id TEXT NOT NULL,
    name TEXT NOT NULL,
    time TEXT NOT NULL,
    scope TEXT NOT NULL,
    agent_id TEXT,
    session_id TEXT,
    payload TEXT NOT NULL
);
"#;

/// v2: the durable dispatch inbox (messages queued with `queue: true`).
const SQLITE_V2: &str = r#"
CREATE TABLE dispatch_inbox (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    dispatch_id TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL REFERENCES sessions(session_id),
    node_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX dispatch_inbox_node ON dispatch_inbox(node_id, position);
"#;

const POSTGRES_V2: &str = r#"
CREATE TABLE dispatch_inbox (
    position BIGSERIAL PRIMARY KEY,
    dispatch_id TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL REFERENCES sessions(session_id),
    node_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX dispatch_inbox_node ON dispatch_inbox(node_id, position);
"#;

const SQLITE_V1: &str = r#"
CREATE TABLE aoscb (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    revision INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(agent_id),
    status TEXT NOT NULL,
    phase TEXT NOT NULL,
    revision INTEGER NOT NULL,
    lease_id TEXT,
    lease_holder TEXT,
    lease_expires_at TEXT,
    message_count INTEGER NOT NULL,
    last_message_seq INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    archived_at TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX sessions_agent ON sessions(agent_id, created_at);
CREATE TABLE messages (
    session_id TEXT NOT NULL REFERENCES sessions(session_id),
    seq INTEGER NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE runtime_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    level TEXT NOT NULL,
    op TEXT NOT NULL,
    agent_id TEXT,
    session_id TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX runtime_log_session ON runtime_log(session_id, id);
CREATE INDEX runtime_log_agent ON runtime_log(agent_id, id);
CREATE TABLE content (
    content_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    size_chars INTEGER NOT NULL,
    line_count INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL
);
"#;

const POSTGRES_V1: &str = r#"
CREATE TABLE aoscb (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    revision BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(agent_id),
    status TEXT NOT NULL,
    phase TEXT NOT NULL,
    revision BIGINT NOT NULL,
    lease_id TEXT,
    lease_holder TEXT,
    lease_expires_at TEXT,
    message_count BIGINT NOT NULL,
    last_message_seq BIGINT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    archived_at TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX sessions_agent ON sessions(agent_id, created_at);
CREATE TABLE messages (
    session_id TEXT NOT NULL REFERENCES sessions(session_id),
    seq BIGINT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE runtime_log (
    id BIGSERIAL PRIMARY KEY,
    time TEXT NOT NULL,
    level TEXT NOT NULL,
    op TEXT NOT NULL,
    agent_id TEXT,
    session_id TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX runtime_log_session ON runtime_log(session_id, id);
CREATE INDEX runtime_log_agent ON runtime_log(agent_id, id);
CREATE TABLE content (
    content_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    size_chars BIGINT NOT NULL,
    line_count BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL
);
"#;

/// Brings a PostgreSQL schema up to date, under an advisory lock so daemons
/// starting together do not race.
pub(crate) async fn migrate_postgres(pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
    use sqlx::Row;
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(8420420)")
        .execute(&mut *tx)
        .await?;
    sqlx::query(CREATE_MIGRATIONS).execute(&mut *tx).await?;
    let current: i64 = sqlx::query(CURRENT_VERSION)
        .fetch_one(&mut *tx)
        .await?
        .try_get("v")?;
    for (version, _, ddl) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        for stmt in statements(ddl) {
            sqlx::query(stmt).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO aos_schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(aos_types::now())
            .execute(&mut *tx)
            .await?;
        tracing::info!(version, "store migrated");
    }
    tx.commit().await
}

/// Brings a SQLite database up to date (the daemon lock is already held).
pub(crate) fn migrate_sqlite(conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(CREATE_MIGRATIONS, [])?;
    let current: i64 = tx.query_row(CURRENT_VERSION, [], |r| r.get(0))?;
    for (version, ddl, _) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.execute_batch(ddl)?;
        tx.execute(
            "INSERT INTO aos_schema_migrations (version, applied_at) VALUES (?1, ?2)",
            rusqlite::params![version, aos_types::now()],
        )?;
        tracing::info!(version, "store migrated");
    }
    tx.commit()
}

const CREATE_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS aos_schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)";
const CURRENT_VERSION: &str = "SELECT COALESCE(MAX(version), 0) AS v FROM aos_schema_migrations";

fn statements(ddl: &str) -> impl Iterator<Item = &str> {
    ddl.split(';').map(str::trim).filter(|s| !s.is_empty())
}
