//! [`Store`]: one SQL implementation over sqlx's `Any` driver.

use crate::StoreError;
use crate::schema;
use aos_types::{
    Acb, AgentStatus, Aoscb, ContentMeta, IdKind, Message, MessageMetadata, Origin, Part, Role,
    RuntimeLogEntry, SCHEMA_VERSION, Scb, SessionPhase, SessionStatus, new_id, now,
};
use serde_json::Value;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard};

type Result<T> = std::result::Result<T, StoreError>;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite, single daemon.
    Sqlite,
    /// PostgreSQL, possibly shared by several daemons.
    Postgres,
}

/// Options for [`Store::open_with`].
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// PostgreSQL schema to use (created if missing); `public` when `None`.
    pub pg_schema: Option<String>,
    /// Pool size; a sensible default per backend when `None`.
    pub max_connections: Option<u32>,
}

/// A message to append; the store assigns `id`, `seq` and `createdAt`.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Role.
    pub role: Role,
    /// Parts; empty part ids are filled.
    pub parts: Vec<Part>,
    /// Origin.
    pub origin: Origin,
    /// Extra metadata fields (fromAgentId, parentId, summary, finish, error).
    pub extra: MessageExtra,
}

/// Optional metadata of a [`NewMessage`].
#[derive(Debug, Clone, Default)]
pub struct MessageExtra {
    /// Sending agent.
    pub from_agent_id: Option<String>,
    /// Parent message.
    pub parent_id: Option<String>,
    /// Compaction summary flag.
    pub summary: Option<bool>,
    /// `completed` …
    pub finish: Option<String>,
    /// Error of the run.
    pub error: Option<Value>,
}

/// A RuntimeLog entry to write.
#[derive(Debug, Clone)]
pub struct NewLogEntry {
    /// `info`, `warn`, `error`.
    pub level: &'static str,
    /// Operation name.
    pub op: String,
    /// `system`, `agent`, `session`, `operator`, `skill`…
    pub owner_type: String,
    /// Owner id.
    pub owner_id: Option<String>,
    /// Agent concerned.
    pub agent_id: Option<String>,
    /// Session concerned.
    pub session_id: Option<String>,
    /// Related ids.
    pub refs: Option<Value>,
    /// Payload.
    pub data: Option<Value>,
}

/// Filter and page of `runtime.log.list`.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Only this agent.
    pub agent_id: Option<String>,
    /// Only this session.
    pub session_id: Option<String>,
    /// Only this op.
    pub op: Option<String>,
    /// Only this level.
    pub level: Option<String>,
    /// Entries with id > cursor.
    pub after: Option<i64>,
    /// Page size.
    pub limit: i64,
}

/// Range and page of `session.history.list`.
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    /// First seq (inclusive).
    pub from_seq: i64,
    /// Last seq (inclusive).
    pub to_seq: Option<i64>,
    /// Page size.
    pub limit: i64,
}

/// The store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer; taking this lock first avoids `SQLITE_BUSY`
    /// deadlocks between deferred transactions of this process.
    write_lock: Option<Arc<Mutex<()>>>,
    /// Held for the life of the store: the SQLite single-daemon lock.
    _file_lock: Option<Arc<File>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| PathBuf::from(path))
}

impl Store {
    /// Opens (creating and migrating as needed) the database at `url`:
    /// `sqlite:///abs/path.db`, `sqlite://rel.db` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Store> {
        Self::open_with(url, StoreOptions::default()).await
    }

    /// As [`Store::open`] with options.
    pub async fn open_with(url: &str, opts: StoreOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::open_postgres(url, opts).await
        } else if url.starts_with("sqlite:") {
            Self::open_sqlite(url, opts).await
        } else {
            Err(StoreError::BadUrl {
                url: url.to_string(),
                reason: "use sqlite://PATH or postgres://USER@HOST:PORT/DB".into(),
            })
        }
    }

    async fn open_sqlite(url: &str, opts: StoreOptions) -> Result<Store> {
        let path = sqlite_path(url).ok_or_else(|| StoreError::BadUrl {
            url: url.to_string(),
            reason: "expected sqlite://PATH to a database file".into(),
        })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let lock_path = PathBuf::from(format!("{}.lock", path.display()));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked {
                path: path.display().to_string(),
                lock: lock_path.display().to_string(),
            });
        }
        let conn_url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = AnyPoolOptions::new()
            .max_connections(opts.max_connections.unwrap_or(4))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = NORMAL",
                        "PRAGMA busy_timeout = 10000",
                        "PRAGMA foreign_keys = ON",
                    ] {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(&conn_url)
            .await?;
        schema::migrate(&pool, Backend::Sqlite).await?;
        Ok(Store {
            pool,
            backend: Backend::Sqlite,
            write_lock: Some(Arc::new(Mutex::new(()))),
            _file_lock: Some(Arc::new(lock)),
        })
    }

    async fn open_postgres(url: &str, opts: StoreOptions) -> Result<Store> {
        let schema = opts.pg_schema.clone();
        if let Some(s) = &schema
            && !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(StoreError::BadUrl {
                url: url.to_string(),
                reason: format!("schema name {s:?} must be letters, digits and _"),
            });
        }
        if let Some(s) = &schema {
            let setup = AnyPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{s}\""))
                .execute(&setup)
                .await?;
            setup.close().await;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(opts.max_connections.unwrap_or(16))
            .after_connect(move |conn, _| {
                let schema = schema.clone();
                Box::pin(async move {
                    if let Some(s) = schema {
                        sqlx::query(&format!("SET search_path TO \"{s}\""))
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        schema::migrate(&pool, Backend::Postgres).await?;
        Ok(Store {
            pool,
            backend: Backend::Postgres,
            write_lock: None,
            _file_lock: None,
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool (and, for SQLite, releases the daemon lock once every
    /// clone is dropped).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A cheap liveness probe.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Begins a write transaction (taking the SQLite writer lock first).
    async fn write_tx(&self) -> Result<(Option<MutexGuard<'_, ()>>, Transaction<'static, Any>)> {
        let guard = match &self.write_lock {
            Some(l) => Some(l.lock().await),
            None => None,
        };
        let tx = self.pool.begin().await?;
        Ok((guard, tx))
    }
}

// ---------------------------------------------------------------- AOSCB

impl Store {
    /// Creates the AOSCB from `initial` if there is none; otherwise refreshes
    /// `name` and `skillRoot` (which come from the environment at every start)
    /// without touching the revision unless they changed.
    pub async fn aoscb_init(&self, initial: &Aoscb) -> Result<Aoscb> {
        let (_g, mut tx) = self.write_tx().await?;
        let row = sqlx::query("SELECT doc FROM aoscb WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?;
        let cb = match row {
            None => {
                sqlx::query("INSERT INTO aoscb (id, revision, doc) VALUES (1, $1, $2)")
                    .bind(initial.revision)
                    .bind(serde_json::to_string(initial)?)
                    .execute(&mut *tx)
                    .await?;
                initial.clone()
            }
            Some(row) => {
                let mut cb: Aoscb = serde_json::from_str(&row.try_get::<String, _>("doc")?)?;
                if cb.name != initial.name || cb.skill_root != initial.skill_root {
                    cb.name = initial.name.clone();
                    cb.skill_root = initial.skill_root.clone();
                    cb.revision += 1;
                    cb.updated_at = now();
                    sqlx::query("UPDATE aoscb SET revision = $1, doc = $2 WHERE id = 1")
                        .bind(cb.revision)
                        .bind(serde_json::to_string(&cb)?)
                        .execute(&mut *tx)
                        .await?;
                }
                cb
            }
        };
        tx.commit().await?;
        Ok(cb)
    }

    /// The AOSCB.
    pub async fn aoscb_get(&self) -> Result<Aoscb> {
        let row = sqlx::query("SELECT doc FROM aoscb WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "aoscb",
                id: "1".into(),
            })?;
        Ok(serde_json::from_str(&row.try_get::<String, _>("doc")?)?)
    }

    /// Changes the AOSCB through `f`, bumping the revision.
    pub async fn aoscb_update(
        &self,
        expected: Option<i64>,
        f: impl FnOnce(&mut Aoscb) -> Result<()>,
    ) -> Result<Aoscb> {
        let (_g, mut tx) = self.write_tx().await?;
        let row = sqlx::query("SELECT doc FROM aoscb WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let mut cb: Aoscb = serde_json::from_str(&row.try_get::<String, _>("doc")?)?;
        check_revision("system", expected, cb.revision)?;
        f(&mut cb)?;
        let old = cb.revision;
        cb.revision += 1;
        cb.updated_at = now();
        let done =
            sqlx::query("UPDATE aoscb SET revision = $1, doc = $2 WHERE id = 1 AND revision = $3")
                .bind(cb.revision)
                .bind(serde_json::to_string(&cb)?)
                .bind(old)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::RevisionConflict {
                kind: "system",
                expected: old,
                actual: old + 1,
            });
        }
        tx.commit().await?;
        Ok(cb)
    }
}

fn check_revision(kind: &'static str, expected: Option<i64>, actual: i64) -> Result<()> {
    match expected {
        Some(e) if e != actual => Err(StoreError::RevisionConflict {
            kind,
            expected: e,
            actual,
        }),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------- agents

impl Store {
    /// Inserts a new agent.
    pub async fn agent_insert(&self, acb: &Acb) -> Result<()> {
        let (_g, mut tx) = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO agents (agent_id, status, revision, created_at, doc) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&acb.agent_id)
        .bind(acb.status.as_str())
        .bind(acb.revision)
        .bind(&acb.created_at)
        .bind(serde_json::to_string(acb)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One agent.
    pub async fn agent_get(&self, agent_id: &str) -> Result<Acb> {
        let row = sqlx::query("SELECT doc FROM agents WHERE agent_id = $1")
            .bind(agent_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "agent",
                id: agent_id.into(),
            })?;
        Ok(serde_json::from_str(&row.try_get::<String, _>("doc")?)?)
    }

    /// Agents in creation order, optionally by status, after a cursor (agent id).
    pub async fn agent_list(
        &self,
        status: Option<AgentStatus>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Acb>> {
        let rows = sqlx::query(
            "SELECT doc FROM agents WHERE ($1 = '' OR status = $1) AND agent_id > $2 ORDER BY agent_id LIMIT $3",
        )
        .bind(status.map_or("", AgentStatus::as_str))
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(serde_json::from_str(&r.try_get::<String, _>("doc")?)?))
            .collect()
    }

    /// Changes an agent through `f`, bumping the revision.
    pub async fn agent_update(
        &self,
        agent_id: &str,
        expected: Option<i64>,
        f: impl FnOnce(&mut Acb) -> Result<()>,
    ) -> Result<Acb> {
        let (_g, mut tx) = self.write_tx().await?;
        let row = sqlx::query("SELECT doc FROM agents WHERE agent_id = $1")
            .bind(agent_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "agent",
                id: agent_id.into(),
            })?;
        let mut acb: Acb = serde_json::from_str(&row.try_get::<String, _>("doc")?)?;
        check_revision("agent", expected, acb.revision)?;
        f(&mut acb)?;
        let old = acb.revision;
        acb.revision += 1;
        acb.updated_at = now();
        let done = sqlx::query(
            "UPDATE agents SET status = $1, revision = $2, doc = $3 WHERE agent_id = $4 AND revision = $5",
        )
        .bind(acb.status.as_str())
        .bind(acb.revision)
        .bind(serde_json::to_string(&acb)?)
        .bind(agent_id)
        .bind(old)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::RevisionConflict {
                kind: "agent",
                expected: old,
                actual: old + 1,
            });
        }
        tx.commit().await?;
        Ok(acb)
    }
}

// ---------------------------------------------------------------- sessions

const SCB_COLUMNS: &str = "status, phase, revision, lease_id, lease_holder, lease_expires_at, message_count, last_message_seq, updated_at, archived_at, doc";

/// Reads an SCB: the doc, overlaid with the authoritative columns.
fn scb_from_row(row: &AnyRow) -> Result<Scb> {
    let mut scb: Scb = serde_json::from_str(&row.try_get::<String, _>("doc")?)?;
    let status: String = row.try_get("status")?;
    let phase: String = row.try_get("phase")?;
    scb.status = SessionStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("session status {status:?}")))?;
    scb.phase = SessionPhase::parse(&phase)
        .ok_or_else(|| StoreError::Corrupt(format!("session phase {phase:?}")))?;
    scb.revision = row.try_get("revision")?;
    scb.lease_id = row.try_get("lease_id")?;
    scb.lease_holder = row.try_get("lease_holder")?;
    scb.lease_expires_at = row.try_get("lease_expires_at")?;
    scb.message_count = row.try_get("message_count")?;
    scb.last_message_seq = row.try_get("last_message_seq")?;
    scb.updated_at = row.try_get("updated_at")?;
    scb.archived_at = row.try_get("archived_at")?;
    Ok(scb)
}

impl Store {
    /// Inserts a new session.
    pub async fn session_insert(&self, scb: &Scb) -> Result<()> {
        let (_g, mut tx) = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO sessions (session_id, agent_id, status, phase, revision, lease_id, lease_holder, lease_expires_at, message_count, last_message_seq, created_at, updated_at, archived_at, doc) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&scb.session_id)
        .bind(&scb.agent_id)
        .bind(scb.status.as_str())
        .bind(scb.phase.as_str())
        .bind(scb.revision)
        .bind(scb.lease_id.clone())
        .bind(scb.lease_holder.clone())
        .bind(scb.lease_expires_at.clone())
        .bind(scb.message_count)
        .bind(scb.last_message_seq)
        .bind(&scb.created_at)
        .bind(&scb.updated_at)
        .bind(scb.archived_at.clone())
        .bind(serde_json::to_string(scb)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One session.
    pub async fn session_get(&self, session_id: &str) -> Result<Scb> {
        let row = sqlx::query(&format!(
            "SELECT {SCB_COLUMNS} FROM sessions WHERE session_id = $1"
        ))
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "session",
            id: session_id.into(),
        })?;
        scb_from_row(&row)
    }

    /// Sessions by id order, optionally of one agent and/or status.
    pub async fn session_list(
        &self,
        agent_id: Option<&str>,
        status: Option<SessionStatus>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Scb>> {
        let rows = sqlx::query(&format!(
            "SELECT {SCB_COLUMNS} FROM sessions WHERE ($1 = '' OR agent_id = $1) AND ($2 = '' OR status = $2) AND session_id > $3 ORDER BY session_id LIMIT $4"
        ))
        .bind(agent_id.unwrap_or(""))
        .bind(status.map_or("", SessionStatus::as_str))
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(scb_from_row).collect()
    }

    /// Sessions that need recovery: not ready+idle and not archived.
    pub async fn sessions_to_recover(&self) -> Result<Vec<Scb>> {
        let rows = sqlx::query(&format!(
            "SELECT {SCB_COLUMNS} FROM sessions WHERE status = 'initializing' OR (status = 'ready' AND phase <> 'idle')"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(scb_from_row).collect()
    }

    /// Changes a session through `f`, bumping the revision. Lease columns
    /// change atomically with the rest of the row.
    pub async fn session_update(
        &self,
        session_id: &str,
        expected: Option<i64>,
        f: impl FnOnce(&mut Scb) -> Result<()>,
    ) -> Result<Scb> {
        let (_g, mut tx) = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "SELECT {SCB_COLUMNS} FROM sessions WHERE session_id = $1"
        ))
        .bind(session_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "session",
            id: session_id.into(),
        })?;
        let mut scb = scb_from_row(&row)?;
        check_revision("session", expected, scb.revision)?;
        f(&mut scb)?;
        let old = scb.revision;
        scb.revision += 1;
        scb.updated_at = now();
        let done = sqlx::query(
            "UPDATE sessions SET status = $1, phase = $2, revision = $3, lease_id = $4, lease_holder = $5, lease_expires_at = $6, updated_at = $7, archived_at = $8, doc = $9 \
             WHERE session_id = $10 AND revision = $11",
        )
        .bind(scb.status.as_str())
        .bind(scb.phase.as_str())
        .bind(scb.revision)
        .bind(scb.lease_id.clone())
        .bind(scb.lease_holder.clone())
        .bind(scb.lease_expires_at.clone())
        .bind(&scb.updated_at)
        .bind(scb.archived_at.clone())
        .bind(serde_json::to_string(&scb)?)
        .bind(session_id)
        .bind(old)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::RevisionConflict {
                kind: "session",
                expected: old,
                actual: old + 1,
            });
        }
        tx.commit().await?;
        Ok(scb)
    }
}

// ---------------------------------------------------------------- history

impl Store {
    /// Appends messages to a session in one transaction. Seqs continue the
    /// session's sequence with no gap; the session's revision goes up by one.
    /// Fails with [`StoreError::Rejected`] on an archived session and with
    /// [`StoreError::RevisionConflict`] when `expected` does not match.
    pub async fn append(
        &self,
        session_id: &str,
        expected: Option<i64>,
        messages: Vec<NewMessage>,
    ) -> Result<(Vec<Message>, Scb)> {
        let n = messages.len() as i64;
        if n == 0 {
            return Ok((Vec::new(), self.session_get(session_id).await?));
        }
        let (_g, mut tx) = self.write_tx().await?;
        let time = now();
        // The row update is the per-session counter and, on PostgreSQL, the
        // row lock that orders concurrent appenders across daemons.
        let row = sqlx::query(&format!(
            "UPDATE sessions SET last_message_seq = COALESCE(last_message_seq, 0) + $1, message_count = message_count + $1, revision = revision + 1, updated_at = $2 \
             WHERE session_id = $3 AND status <> 'archived' AND ($4 < 0 OR revision = $4) RETURNING {SCB_COLUMNS}"
        ))
        .bind(n)
        .bind(&time)
        .bind(session_id)
        .bind(expected.unwrap_or(-1))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            drop(tx);
            return Err(self.append_refusal(session_id, expected).await);
        };
        let scb = scb_from_row(&row)?;
        let last = scb.last_message_seq.unwrap_or(n);
        let mut out = Vec::with_capacity(messages.len());
        for (i, m) in messages.into_iter().enumerate() {
            let msg = build_message(m, last - n + 1 + i as i64, &time);
            sqlx::query(
                "INSERT INTO messages (session_id, seq, message_id, doc) VALUES ($1, $2, $3, $4)",
            )
            .bind(session_id)
            .bind(msg.metadata.seq)
            .bind(&msg.id)
            .bind(serde_json::to_string(&msg)?)
            .execute(&mut *tx)
            .await?;
            out.push(msg);
        }
        tx.commit().await?;
        Ok((out, scb))
    }

    /// Explains why an append matched no row.
    async fn append_refusal(&self, session_id: &str, expected: Option<i64>) -> StoreError {
        match self.session_get(session_id).await {
            Err(e) => e,
            Ok(scb) if scb.status == SessionStatus::Archived => StoreError::Rejected {
                code: "session.archived",
                message: format!("session {session_id} is archived"),
            },
            Ok(scb) => StoreError::RevisionConflict {
                kind: "session",
                expected: expected.unwrap_or(-1),
                actual: scb.revision,
            },
        }
    }

    /// A page of history in seq order.
    pub async fn history(&self, session_id: &str, q: &HistoryQuery) -> Result<Vec<Message>> {
        let rows = sqlx::query(
            "SELECT doc FROM messages WHERE session_id = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq LIMIT $4",
        )
        .bind(session_id)
        .bind(q.from_seq)
        .bind(q.to_seq.unwrap_or(i64::MAX))
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(serde_json::from_str(&r.try_get::<String, _>("doc")?)?))
            .collect()
    }

    /// One message by id, within a session.
    pub async fn message_get(&self, session_id: &str, message_id: &str) -> Result<Message> {
        let row = sqlx::query("SELECT doc FROM messages WHERE session_id = $1 AND message_id = $2")
            .bind(session_id)
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "message",
                id: message_id.into(),
            })?;
        Ok(serde_json::from_str(&row.try_get::<String, _>("doc")?)?)
    }
}

fn build_message(m: NewMessage, seq: i64, time: &str) -> Message {
    let mut parts = m.parts;
    for p in &mut parts {
        if p.id().is_empty() {
            *p.id_mut() = new_id(IdKind::Part);
        }
    }
    Message {
        id: new_id(IdKind::Message),
        role: m.role,
        parts,
        metadata: MessageMetadata {
            seq,
            created_at: time.to_string(),
            origin: m.origin,
            from_agent_id: m.extra.from_agent_id,
            parent_id: m.extra.parent_id,
            summary: m.extra.summary,
            finish: m.extra.finish,
            error: m.extra.error,
        },
    }
}

// ---------------------------------------------------------------- runtime log

impl Store {
    /// Writes a RuntimeLog entry; returns its id.
    pub async fn log_append(&self, e: NewLogEntry) -> Result<i64> {
        let (_g, mut tx) = self.write_tx().await?;
        let time = now();
        let doc = serde_json::json!({
            "ownerType": e.owner_type, "ownerId": e.owner_id, "refs": e.refs, "data": e.data,
        });
        let id: i64 = sqlx::query(
            "INSERT INTO runtime_log (time, level, op, agent_id, session_id, doc) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&time)
        .bind(e.level)
        .bind(&e.op)
        .bind(e.agent_id)
        .bind(e.session_id)
        .bind(doc.to_string())
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        tx.commit().await?;
        Ok(id)
    }

    /// A page of the RuntimeLog, oldest first.
    pub async fn log_list(&self, q: &LogQuery) -> Result<Vec<RuntimeLogEntry>> {
        let rows = sqlx::query(
            "SELECT id, time, level, op, agent_id, session_id, doc FROM runtime_log \
             WHERE id > $1 AND ($2 = '' OR agent_id = $2) AND ($3 = '' OR session_id = $3) AND ($4 = '' OR op = $4) AND ($5 = '' OR level = $5) \
             ORDER BY id LIMIT $6",
        )
        .bind(q.after.unwrap_or(0))
        .bind(q.agent_id.clone().unwrap_or_default())
        .bind(q.session_id.clone().unwrap_or_default())
        .bind(q.op.clone().unwrap_or_default())
        .bind(q.level.clone().unwrap_or_default())
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(log_from_row).collect()
    }
}

fn log_from_row(r: &AnyRow) -> Result<RuntimeLogEntry> {
    let doc: Value = serde_json::from_str(&r.try_get::<String, _>("doc")?)?;
    let opt = |k: &str| doc.get(k).filter(|v| !v.is_null()).cloned();
    Ok(RuntimeLogEntry {
        schema_version: SCHEMA_VERSION.into(),
        id: r.try_get("id")?,
        time: r.try_get("time")?,
        level: r.try_get("level")?,
        op: r.try_get("op")?,
        owner_type: doc["ownerType"].as_str().unwrap_or("system").to_string(),
        owner_id: opt("ownerId").and_then(|v| v.as_str().map(String::from)),
        agent_id: r.try_get("agent_id")?,
        session_id: r.try_get("session_id")?,
        refs: opt("refs"),
        data: opt("data"),
    })
}

// ---------------------------------------------------------------- content

impl Store {
    /// Stores an immutable blob for a session.
    pub async fn content_put(&self, session_id: &str, content: &str) -> Result<ContentMeta> {
        let meta = ContentMeta {
            schema_version: SCHEMA_VERSION.into(),
            content_id: new_id(IdKind::Content),
            session_id: session_id.to_string(),
            size_chars: content.chars().count() as i64,
            line_count: line_count(content),
            created_at: now(),
        };
        let (_g, mut tx) = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO content (content_id, session_id, size_chars, line_count, created_at, body) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&meta.content_id)
        .bind(&meta.session_id)
        .bind(meta.size_chars)
        .bind(meta.line_count)
        .bind(&meta.created_at)
        .bind(content)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(meta)
    }

    /// A blob and its metadata.
    pub async fn content_get(&self, content_id: &str) -> Result<(ContentMeta, String)> {
        let r = sqlx::query(
            "SELECT content_id, session_id, size_chars, line_count, created_at, body FROM content WHERE content_id = $1",
        )
        .bind(content_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "content",
            id: content_id.into(),
        })?;
        let meta = ContentMeta {
            schema_version: SCHEMA_VERSION.into(),
            content_id: r.try_get("content_id")?,
            session_id: r.try_get("session_id")?,
            size_chars: r.try_get("size_chars")?,
            line_count: r.try_get("line_count")?,
            created_at: r.try_get("created_at")?,
        };
        Ok((meta, r.try_get("body")?))
    }

    /// Whether a blob exists.
    pub async fn content_exists(&self, content_id: &str) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 AS one FROM content WHERE content_id = $1")
                .bind(content_id)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }
}

/// Lines as an editor counts them: a trailing newline does not open a new line.
fn line_count(s: &str) -> i64 {
    if s.is_empty() {
        0
    } else {
        s.lines().count() as i64
    }
}
