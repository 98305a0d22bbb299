//! The SQLite backend (rusqlite). One thread owns the write connection and
//! runs each write operation whole — read, check, write — so a write costs
//! one thread hop however many statements it needs; writes that queue up
//! while it is busy are committed together ([`writer`]). Reads run on
//! blocking threads with their own connections (WAL: readers never wait for
//! the writer).
//!
//! The store file belongs to one daemon (a lock file says so), so the
//! control blocks read on every turn — the AOSCB and the agents — are kept in
//! memory as they are written ([`Cached`]); the database stays the truth.

use crate::StoreError;
use crate::common::{
    LogRow, Result, SCB_COLUMNS, ScbColumns, append_refusal, build_message, bump, check_revision,
    log_doc, not_found,
};
use crate::schema;
use crate::store::{
    Fence, HistoryQuery, InboxEntry, KvEntry, LogQuery, NewLogEntry, NewMessage, NodeRecord,
    SessionQuery,
};
use crate::writer::{self, Job};
use aos_types::{
    Acb, AgentStatus, Aoscb, ContentMeta, Message, RuntimeLogEntry, SCHEMA_VERSION, Scb,
    SessionStatus, now,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};

/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;
/// Page cache of a reader connection, KiB (SQLite's default is 2 000).
const READER_CACHE_KIB: u32 = 256;
/// History pages up to this many messages are read on the calling thread.
const SHORT_PAGE: i64 = 32;
/// Control blocks of one kind kept in memory; past it the cache starts over.
const MAX_CACHED: usize = 10_000;

pub(crate) struct SqliteStore {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    readers: Arc<Readers>,
    lock: Mutex<Option<File>>,
    aoscb: Cached<Aoscb>,
    agents: Cached<Acb>,
}

/// Control blocks by key, as last written or read. Only this store writes
/// the file, so an entry is the stored document; a write replaces an entry
/// only with a newer revision, so two writes finishing out of order, or a
/// read that raced a write, never leave an older document behind.
struct Cached<T> {
    map: Mutex<std::collections::HashMap<String, T>>,
    revision: fn(&T) -> i64,
}

impl<T: Clone> Cached<T> {
    fn new(revision: fn(&T) -> i64) -> Cached<T> {
        Cached {
            map: Mutex::default(),
            revision,
        }
    }

    fn get(&self, key: &str) -> Option<T> {
        self.map.lock().ok()?.get(key).cloned()
    }

    /// Keeps `value` unless a newer revision is already there.
    fn put(&self, key: &str, value: &T) {
        if let Ok(mut m) = self.map.lock() {
            let newer = m
                .get(key)
                .is_some_and(|old| (self.revision)(old) > (self.revision)(value));
            if !newer {
                if m.len() >= MAX_CACHED && !m.contains_key(key) {
                    m.clear();
                }
                m.insert(key.to_string(), value.clone());
            }
        }
    }

    /// The cached value, else `load`'s (then cached).
    fn get_or(&self, key: &str, load: impl FnOnce() -> Result<T>) -> Result<T> {
        if let Some(v) = self.get(key) {
            return Ok(v);
        }
        let v = load()?;
        self.put(key, &v);
        Ok(v)
    }
}

struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn get(&self) -> Result<Connection> {
        if let Some(c) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(c);
        }
        let c = Connection::open(&self.path)?;
        // A reader's page cache is dropped whenever the writer committed
        // since its last read (WAL), so a large one only holds memory.
        c.execute_batch(&format!(
            "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA cache_size = -{READER_CACHE_KIB};"
        ))?;
        stable_plans(&c)?;
        unicode_lower(&c)?;
        Ok(c)
    }

    fn put(&self, c: Connection) {
        if let Ok(mut v) = self.idle.lock()
            && v.len() < MAX_IDLE_READERS
        {
            v.push(c);
        }
    }
}

/// `aos_lower(text)`: lower case by Unicode's rules, as PostgreSQL's
/// `lower()` is (SQLite's folds ASCII only), for `session.list`'s search.
fn unicode_lower(c: &Connection) -> Result<()> {
    use rusqlite::functions::FunctionFlags;
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    c.create_scalar_function("aos_lower", 1, flags, |ctx| {
        let text: Option<String> = ctx.get(0)?;
        Ok(text.map(|t| t.to_lowercase()))
    })?;
    Ok(())
}

/// Query-planner stability: a cached statement keeps its plan whatever is
/// bound. Without it SQLite re-prepares a statement (parses and plans it
/// again) when a new value is bound to a parameter that may change the plan —
/// `LIMIT ?` does — which was ~25 % of an incremental context assembly's
/// samples (the history page read).
fn stable_plans(c: &Connection) -> Result<()> {
    c.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

fn open_writer(path: &PathBuf) -> Result<Connection> {
    let mut c = Connection::open(path)?;
    let mode: String = c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt(format!(
            "cannot enable WAL (journal_mode is {mode})"
        )));
    }
    c.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
    )?;
    stable_plans(&c)?;
    schema::migrate_sqlite(&mut c)?;
    Ok(c)
}

/// `e` as [`StoreError::Full`] naming the database file when the disk under
/// it is full (SQLite's `SQLITE_FULL`, `ENOSPC` from around the file).
fn full(e: StoreError, path: &std::path::Path) -> StoreError {
    let is_full = match &e {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
            f.code == rusqlite::ErrorCode::DiskFull
        }
        StoreError::Io(io) => io.kind() == std::io::ErrorKind::StorageFull,
        StoreError::Commit(why) => why.contains("database or disk is full"),
        _ => false,
    };
    if is_full {
        StoreError::Full {
            file: path.display().to_string(),
        }
    } else {
        e
    }
}

impl SqliteStore {
    pub(crate) async fn open(path: PathBuf) -> Result<SqliteStore> {
        tokio::task::spawn_blocking(move || Self::open_blocking(path))
            .await
            .map_err(|_| StoreError::Closed)?
    }

    fn open_blocking(path: PathBuf) -> Result<SqliteStore> {
        Self::open_at(&path).map_err(|e| full(e, &path))
    }

    fn open_at(path: &std::path::Path) -> Result<SqliteStore> {
        let path = path.to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            return Err(StoreError::BadUrl {
                url: format!("sqlite://{}", path.display()),
                reason: format!(
                    "the directory {} does not exist: create it first, or choose another path",
                    dir.display()
                ),
            });
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
        let conn = open_writer(&path)?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("aos-sqlite-writer".into())
            .spawn(move || writer::run(conn, rx))?;
        Ok(SqliteStore {
            jobs: Mutex::new(Some(tx)),
            readers: Arc::new(Readers {
                path,
                idle: Mutex::new(Vec::new()),
            }),
            lock: Mutex::new(Some(lock)),
            aoscb: Cached::new(|cb| cb.revision),
            agents: Cached::new(|a| a.revision),
        })
    }

    /// Runs `f` on the writer thread, in a savepoint of the batch it is
    /// committed with ([`writer`]); answers once the batch is committed.
    async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (job, rx) = writer::job(f);
        let sender = self
            .jobs
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .ok_or(StoreError::Closed)?;
        sender.send(job).map_err(|_| StoreError::Closed)?;
        rx.await
            .map_err(|_| StoreError::Closed)?
            .map_err(|e| full(e, &self.readers.path))
    }

    /// Runs `f` on a read connection on a blocking thread.
    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let c = readers.get()?;
            let r = f(&c);
            readers.put(c);
            r
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// A point read (one row by key, a few microseconds) on the calling
    /// thread: handing it to the blocking pool would cost more than the query.
    fn read_now<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let c = self.readers.get()?;
        let r = f(&c);
        self.readers.put(c);
        r
    }

    pub(crate) async fn close(&self) {
        // Let queued writes finish, then stop the writer and drop the lock.
        let _ = self.write(|_| Ok(())).await;
        if let Ok(mut j) = self.jobs.lock() {
            j.take();
        }
        if let Ok(mut r) = self.readers.idle.lock() {
            r.clear();
        }
        if let Ok(mut l) = self.lock.lock() {
            l.take();
        }
    }

    pub(crate) async fn ping(&self) -> Result<()> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    pub(crate) async fn kv_get(&self, ns: String, key: String) -> Result<Option<KvEntry>> {
        self.read(move |c| {
            Ok(c.prepare_cached(crate::common::KV_GET)?
                .query_row(params![ns, key], kv_row)
                .optional()?)
        })
        .await
    }

    pub(crate) async fn kv_list(
        &self,
        ns: String,
        prefix: String,
        after: String,
        limit: i64,
    ) -> Result<Vec<KvEntry>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(crate::common::KV_LIST)?;
            let rows = stmt.query_map(params![ns, after, prefix, limit], kv_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    pub(crate) async fn kv_put(
        &self,
        ns: String,
        key: String,
        value: String,
        expected: Option<i64>,
    ) -> Result<KvEntry> {
        self.write(move |t| {
            let current: Option<i64> = t
                .prepare_cached("SELECT revision FROM kv WHERE namespace = ?1 AND key = ?2")?
                .query_row(params![ns, key], |r| r.get(0))
                .optional()?;
            let keys: i64 = t
                .prepare_cached(crate::common::KV_COUNT)?
                .query_row(params![ns], |r| r.get(0))?;
            let revision = crate::common::kv_next(&key, current, expected, keys)?;
            let updated_at = now();
            t.prepare_cached(crate::common::KV_PUT)?
                .execute(params![ns, key, value, revision, updated_at])?;
            Ok(KvEntry {
                key,
                value,
                revision,
                updated_at,
            })
        })
        .await
    }

    pub(crate) async fn kv_delete(&self, ns: String, key: String) -> Result<bool> {
        self.write(move |t| {
            Ok(t.prepare_cached(crate::common::KV_DELETE)?
                .execute(params![ns, key])?
                > 0)
        })
        .await
    }

    pub(crate) async fn node_beat(&self, n: NodeRecord) -> Result<()> {
        self.write(move |t| {
            t.prepare_cached(crate::common::NODE_BEAT)?
                .execute(params![
                    n.node_id,
                    n.url,
                    n.version,
                    n.started_at,
                    n.heartbeat_at,
                    n.period_ms
                ])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn node_stopped(&self, node_id: String) -> Result<()> {
        self.write(move |t| {
            t.prepare_cached(crate::common::NODE_STOPPED)?
                .execute(params![node_id, now()])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn nodes_forget(&self, before: String) -> Result<u64> {
        self.write(move |t| {
            let n = t
                .prepare_cached(crate::common::NODES_FORGET)?
                .execute(params![before])?;
            Ok(n as u64)
        })
        .await
    }

    pub(crate) async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(crate::common::NODES)?;
            let rows = stmt.query_map([], |r| {
                Ok(NodeRecord {
                    node_id: r.get(0)?,
                    url: r.get(1)?,
                    version: r.get(2)?,
                    started_at: r.get(3)?,
                    heartbeat_at: r.get(4)?,
                    period_ms: r.get(5)?,
                    stopped_at: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    pub(crate) async fn counts(&self) -> Result<crate::Counts> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(crate::common::COUNTS_SQL)?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(crate::Counts(rows.collect::<rusqlite::Result<_>>()?))
        })
        .await
    }
}

// ---------------------------------------------------------------- AOSCB

fn aoscb_load(t: &Connection) -> Result<Option<Aoscb>> {
    let doc: Option<String> = t
        .prepare_cached("SELECT doc FROM aoscb WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(doc.map(|d| serde_json::from_str(&d)).transpose()?)
}

fn aoscb_store(t: &Connection, cb: &Aoscb) -> Result<()> {
    t.prepare_cached("INSERT INTO aoscb (id, revision, doc) VALUES (1, ?1, ?2) ON CONFLICT (id) DO UPDATE SET revision = ?1, doc = ?2")?
        .execute(params![cb.revision, serde_json::to_string(cb)?])?;
    Ok(())
}

impl SqliteStore {
    pub(crate) async fn aoscb_init(&self, initial: Aoscb) -> Result<Aoscb> {
        let cb = self
            .write(move |t| match aoscb_load(t)? {
                None => {
                    aoscb_store(t, &initial)?;
                    Ok(initial)
                }
                Some(mut cb) => {
                    if cb.name != initial.name || cb.skill_root != initial.skill_root {
                        cb.name = initial.name;
                        cb.skill_root = initial.skill_root;
                        bump(&mut cb.revision, &mut cb.updated_at);
                        aoscb_store(t, &cb)?;
                    }
                    Ok(cb)
                }
            })
            .await?;
        self.aoscb.put("", &cb);
        Ok(cb)
    }

    pub(crate) async fn aoscb_get(&self) -> Result<Aoscb> {
        self.aoscb.get_or("", || {
            self.read_now(|c| aoscb_load(c)?.ok_or_else(|| not_found("aoscb", "1")))
        })
    }

    pub(crate) async fn aoscb_update(
        &self,
        expected: Option<i64>,
        f: impl FnOnce(&mut Aoscb) -> Result<()> + Send + 'static,
    ) -> Result<Aoscb> {
        let cb = self
            .write(move |t| {
                let mut cb = aoscb_load(t)?.ok_or_else(|| not_found("aoscb", "1"))?;
                check_revision("system", expected, cb.revision)?;
                f(&mut cb)?;
                bump(&mut cb.revision, &mut cb.updated_at);
                aoscb_store(t, &cb)?;
                Ok(cb)
            })
            .await?;
        self.aoscb.put("", &cb);
        Ok(cb)
    }
}

// ---------------------------------------------------------------- agents

fn agent_load(t: &Connection, agent_id: &str) -> Result<Acb> {
    let doc: Option<String> = t
        .prepare_cached("SELECT doc FROM agents WHERE agent_id = ?1")?
        .query_row([agent_id], |r| r.get(0))
        .optional()?;
    let doc = doc.ok_or_else(|| not_found("agent", agent_id))?;
    Ok(serde_json::from_str(&doc)?)
}

impl SqliteStore {
    pub(crate) async fn agent_insert(&self, acb: Acb) -> Result<()> {
        let doc = serde_json::to_string(&acb)?;
        let (id, status, revision, created) = (
            acb.agent_id.clone(),
            acb.status.as_str(),
            acb.revision,
            acb.created_at.clone(),
        );
        self.write(move |t| {
            t.prepare_cached("INSERT INTO agents (agent_id, status, revision, created_at, doc) VALUES (?1, ?2, ?3, ?4, ?5)")?
                .execute(params![id, status, revision, created, doc])?;
            Ok(())
        })
        .await?;
        self.agents.put(&acb.agent_id, &acb);
        Ok(())
    }

    pub(crate) async fn agent_get(&self, agent_id: String) -> Result<Acb> {
        self.agents
            .get_or(&agent_id, || self.read_now(|c| agent_load(c, &agent_id)))
    }

    pub(crate) async fn agent_list(
        &self,
        status: Option<AgentStatus>,
        after: String,
        limit: i64,
    ) -> Result<Vec<Acb>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT doc FROM agents WHERE (?1 = '' OR status = ?1) AND agent_id > ?2 ORDER BY agent_id LIMIT ?3",
            )?;
            let docs = stmt.query_map(params![status.map_or("", AgentStatus::as_str), after, limit], |r| r.get::<_, String>(0))?;
            docs.map(|d| Ok(serde_json::from_str(&d?)?)).collect()
        })
        .await
    }

    pub(crate) async fn agent_update(
        &self,
        agent_id: String,
        expected: Option<i64>,
        f: impl FnOnce(&mut Acb) -> Result<()> + Send + 'static,
    ) -> Result<Acb> {
        let acb = self
            .write(move |t| {
                let mut acb = agent_load(t, &agent_id)?;
                check_revision("agent", expected, acb.revision)?;
                f(&mut acb)?;
                bump(&mut acb.revision, &mut acb.updated_at);
                t.prepare_cached(
                    "UPDATE agents SET status = ?1, revision = ?2, doc = ?3 WHERE agent_id = ?4",
                )?
                .execute(params![
                    acb.status.as_str(),
                    acb.revision,
                    serde_json::to_string(&acb)?,
                    agent_id
                ])?;
                Ok(acb)
            })
            .await?;
        self.agents.put(&acb.agent_id, &acb);
        Ok(acb)
    }
}

// ---------------------------------------------------------------- sessions

fn scb_row(r: &Row<'_>) -> rusqlite::Result<ScbColumns> {
    Ok(ScbColumns {
        status: r.get(0)?,
        phase: r.get(1)?,
        revision: r.get(2)?,
        lease_id: r.get(3)?,
        lease_holder: r.get(4)?,
        lease_expires_at: r.get(5)?,
        message_count: r.get(6)?,
        last_message_seq: r.get(7)?,
        updated_at: r.get(8)?,
        archived_at: r.get(9)?,
        doc: r.get(10)?,
    })
}

fn session_load(c: &Connection, session_id: &str) -> Result<Scb> {
    let cols = c
        .prepare_cached(&format!(
            "SELECT {SCB_COLUMNS} FROM sessions WHERE session_id = ?1"
        ))?
        .query_row([session_id], scb_row)
        .optional()?;
    cols.ok_or_else(|| not_found("session", session_id))?
        .into_scb()
}

fn kv_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KvEntry> {
    Ok(KvEntry {
        key: r.get(0)?,
        value: r.get(1)?,
        revision: r.get(2)?,
        updated_at: r.get(3)?,
    })
}

fn sessions_where(c: &Connection, filter: &str, args: impl rusqlite::Params) -> Result<Vec<Scb>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {SCB_COLUMNS} FROM sessions WHERE {filter}"
    ))?;
    let rows = stmt.query_map(args, scb_row)?;
    rows.map(|r| r?.into_scb()).collect()
}

impl SqliteStore {
    pub(crate) async fn session_insert(&self, scb: Scb) -> Result<()> {
        self.write(move |t| {
            t.prepare_cached(
                "INSERT INTO sessions (session_id, agent_id, status, phase, revision, lease_id, lease_holder, lease_expires_at, message_count, last_message_seq, created_at, updated_at, archived_at, doc) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                scb.session_id, scb.agent_id, scb.status.as_str(), scb.phase.as_str(), scb.revision,
                scb.lease_id, scb.lease_holder, scb.lease_expires_at, scb.message_count,
                scb.last_message_seq, scb.created_at, scb.updated_at, scb.archived_at,
                serde_json::to_string(&scb)?
            ])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn session_get(&self, session_id: String) -> Result<Scb> {
        self.read_now(|c| session_load(c, &session_id))
    }

    pub(crate) async fn session_list(&self, q: SessionQuery) -> Result<Vec<Scb>> {
        const FILTER: &str = "(?1 = '' OR agent_id = ?1) AND (?2 = '' OR status = ?2) \
            AND (?5 = '' OR instr(session_id, ?5) = 1 OR instr(agent_id, ?5) = 1 \
                 OR instr(aos_lower(coalesce(json_extract(doc, '$.title'), '')), ?6) > 0)";
        let sql = if q.newest_first {
            format!("{FILTER} AND (?3 = '' OR session_id < ?3) ORDER BY session_id DESC LIMIT ?4")
        } else {
            format!("{FILTER} AND session_id > ?3 ORDER BY session_id LIMIT ?4")
        };
        let text = q.text.unwrap_or_default();
        let lower = text.to_lowercase();
        self.read(move |c| {
            sessions_where(
                c,
                &sql,
                params![
                    q.agent_id.unwrap_or_default(),
                    q.status.map_or("", SessionStatus::as_str),
                    q.after.unwrap_or_default(),
                    q.limit,
                    text,
                    lower
                ],
            )
        })
        .await
    }

    pub(crate) async fn sessions_to_recover(&self) -> Result<Vec<Scb>> {
        self.read(|c| {
            sessions_where(
                c,
                "status = 'initializing' OR (status = 'ready' AND phase NOT IN ('idle', 'interrupted'))",
                [],
            )
        })
        .await
    }

    pub(crate) async fn expired_leases(&self, now: String) -> Result<Vec<Scb>> {
        self.read(move |c| sessions_where(c, crate::common::EXPIRED_LEASES, params![now]))
            .await
    }

    pub(crate) async fn session_update(
        &self,
        session_id: String,
        expected: Option<i64>,
        f: impl FnOnce(&mut Scb) -> Result<()> + Send + 'static,
    ) -> Result<Scb> {
        self.write(move |t| {
            let mut scb = session_load(t, &session_id)?;
            check_revision("session", expected, scb.revision)?;
            let before = scb.clone();
            f(&mut scb)?;
            crate::common::lease_term(&before, &mut scb);
            bump(&mut scb.revision, &mut scb.updated_at);
            t.prepare_cached(
                "UPDATE sessions SET status = ?1, phase = ?2, revision = ?3, lease_id = ?4, lease_holder = ?5, lease_expires_at = ?6, updated_at = ?7, archived_at = ?8, doc = ?9 WHERE session_id = ?10",
            )?
            .execute(params![
                scb.status.as_str(), scb.phase.as_str(), scb.revision, scb.lease_id, scb.lease_holder,
                scb.lease_expires_at, scb.updated_at, scb.archived_at, serde_json::to_string(&scb)?, session_id
            ])?;
            Ok(scb)
        })
        .await
    }
}

// ---------------------------------------------------------------- history

fn message_rows<T: serde::de::DeserializeOwned>(
    c: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<T>> {
    let mut stmt = c.prepare_cached(sql)?;
    let docs = stmt.query_map(args, |r| r.get::<_, String>(0))?;
    docs.map(|d| Ok(serde_json::from_str(&d?)?)).collect()
}

impl SqliteStore {
    pub(crate) async fn append(
        &self,
        session_id: String,
        fence: Fence,
        messages: Vec<NewMessage>,
        log: Option<NewLogEntry>,
    ) -> Result<(Vec<Message>, Scb)> {
        let Fence { expected, lease } = fence;
        self.write(move |t| {
            let n = messages.len() as i64;
            let time = now();
            let cols = t
                .prepare_cached(&format!(
                    "UPDATE sessions SET last_message_seq = COALESCE(last_message_seq, 0) + ?1, message_count = message_count + ?1, revision = revision + 1, updated_at = ?2 \
                     WHERE session_id = ?3 AND status <> 'archived' AND (?4 IS NULL OR revision = ?4) AND (?5 IS NULL OR lease_id = ?5) RETURNING {SCB_COLUMNS}"
                ))?
                .query_row(params![n, time, session_id, expected, lease], scb_row)
                .optional()?;
            let Some(cols) = cols else {
                return Err(append_refusal(session_load(t, &session_id), &session_id, expected, lease.as_deref()));
            };
            let scb = cols.into_scb()?;
            let first = scb.last_message_seq.unwrap_or(n) - n + 1;
            let mut insert = t.prepare_cached("INSERT INTO messages (session_id, seq, message_id, doc) VALUES (?1, ?2, ?3, ?4)")?;
            let mut out = Vec::with_capacity(messages.len());
            for (i, m) in messages.into_iter().enumerate() {
                let msg = build_message(m, first + i as i64, &time);
                insert.execute(params![session_id, msg.metadata.seq, msg.id, serde_json::to_string(&msg)?])?;
                out.push(msg);
            }
            if let Some(e) = log {
                t.prepare_cached("INSERT INTO runtime_log (time, level, op, agent_id, session_id, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
                    .execute(params![time, e.level, e.op, e.agent_id, e.session_id, log_doc(&e)])?;
            }
            Ok((out, scb))
        })
        .await
    }

    pub(crate) async fn history<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        session_id: String,
        q: HistoryQuery,
    ) -> Result<Vec<T>> {
        let page = move |c: &Connection| {
            message_rows(
                c,
                "SELECT doc FROM messages WHERE session_id = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq LIMIT ?4",
                params![
                    session_id,
                    q.from_seq,
                    q.to_seq.unwrap_or(i64::MAX),
                    q.limit
                ],
            )
        };
        // A short page costs less than the hop to a blocking thread.
        if q.limit <= SHORT_PAGE {
            self.read_now(page)
        } else {
            self.read(page).await
        }
    }

    pub(crate) async fn message_get(
        &self,
        session_id: String,
        message_id: String,
    ) -> Result<Message> {
        self.read_now(|c| {
            message_rows(
                c,
                "SELECT doc FROM messages WHERE session_id = ?1 AND message_id = ?2",
                params![session_id, message_id],
            )?
            .pop()
            .ok_or_else(|| not_found("message", &message_id))
        })
    }
}

// ---------------------------------------------------------------- runtime log, content

impl SqliteStore {
    pub(crate) async fn log_append(&self, e: NewLogEntry) -> Result<i64> {
        self.write(move |t| {
            let id = t
                .prepare_cached("INSERT INTO runtime_log (time, level, op, agent_id, session_id, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id")?
                .query_row(params![now(), e.level, e.op, e.agent_id, e.session_id, log_doc(&e)], |r| r.get(0))?;
            Ok(id)
        })
        .await
    }

    pub(crate) async fn log_list(&self, q: LogQuery) -> Result<Vec<RuntimeLogEntry>> {
        let page = if q.newest_first {
            "(?1 = 0 OR id < ?1) ORDER BY id DESC"
        } else {
            "id > ?1 ORDER BY id"
        };
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT id, time, level, op, agent_id, session_id, doc FROM runtime_log \
                 WHERE (?2 = '' OR agent_id = ?2) AND (?3 = '' OR session_id = ?3) AND (?4 = '' OR op = ?4) AND (?5 = '' OR level = ?5) \
                 AND {page} LIMIT ?6"
            ))?;
            let rows = stmt.query_map(
                params![
                    q.after.unwrap_or(0), q.agent_id.unwrap_or_default(), q.session_id.unwrap_or_default(),
                    q.op.unwrap_or_default(), q.level.unwrap_or_default(), q.limit
                ],
                |r| {
                    Ok(LogRow {
                        id: r.get(0)?,
                        time: r.get(1)?,
                        level: r.get(2)?,
                        op: r.get(3)?,
                        agent_id: r.get(4)?,
                        session_id: r.get(5)?,
                        doc: r.get(6)?,
                    })
                },
            )?;
            rows.map(|r| r?.into_entry()).collect()
        })
        .await
    }

    pub(crate) async fn content_put(&self, meta: ContentMeta, body: String) -> Result<()> {
        self.write(move |t| {
            t.prepare_cached("INSERT INTO content (content_id, session_id, size_chars, line_count, created_at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
                .execute(params![meta.content_id, meta.session_id, meta.size_chars, meta.line_count, meta.created_at, body])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn content_get(&self, content_id: String) -> Result<(ContentMeta, String)> {
        self.read(move |c| {
            c.prepare_cached("SELECT session_id, size_chars, line_count, created_at, body FROM content WHERE content_id = ?1")?
                .query_row([&content_id], |r| {
                    Ok((
                        ContentMeta {
                            schema_version: SCHEMA_VERSION.into(),
                            content_id: content_id.clone(),
                            session_id: r.get(0)?,
                            size_chars: r.get(1)?,
                            line_count: r.get(2)?,
                            created_at: r.get(3)?,
                        },
                        r.get(4)?,
                    ))
                })
                .optional()?
                .ok_or_else(|| not_found("content", &content_id))
        })
        .await
    }

    pub(crate) async fn inbox_push(&self, e: InboxEntry) -> Result<()> {
        self.write(move |t| {
            t.prepare_cached("INSERT INTO dispatch_inbox (dispatch_id, session_id, node_id, created_at, doc) VALUES (?1, ?2, ?3, ?4, ?5)")?
                .execute(params![e.dispatch_id, e.session_id, e.node_id, e.created_at, serde_json::to_string(&e)?])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn inbox_remove(&self, dispatch_id: String) -> Result<bool> {
        self.write(move |t| {
            Ok(
                t.prepare_cached("DELETE FROM dispatch_inbox WHERE dispatch_id = ?1")?
                    .execute([dispatch_id])?
                    > 0,
            )
        })
        .await
    }

    pub(crate) async fn inbox_list(&self, node_id: String) -> Result<Vec<InboxEntry>> {
        self.read(move |c| {
            let mut q = c.prepare_cached(
                "SELECT doc FROM dispatch_inbox WHERE node_id = ?1 ORDER BY position",
            )?;
            let docs = q.query_map([node_id], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for d in docs {
                out.push(serde_json::from_str(&d?)?);
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn inbox_adopt(&self, from: String, to: String) -> Result<Vec<InboxEntry>> {
        self.write(move |t| {
            let mut q = t.prepare_cached(
                "UPDATE dispatch_inbox SET node_id = ?2 WHERE node_id = ?1 RETURNING position, doc",
            )?;
            let rows = q.query_map(params![from, to], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut docs = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            docs.sort();
            let mut out = Vec::with_capacity(docs.len());
            for (_, d) in docs {
                let mut e: InboxEntry = serde_json::from_str(&d)?;
                e.node_id.clone_from(&to);
                out.push(e);
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn content_exists(&self, content_id: String) -> Result<bool> {
        self.read(move |c| {
            Ok(
                c.prepare_cached("SELECT 1 FROM content WHERE content_id = ?1")?
                    .exists([content_id])?,
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::Cached;

    #[test]
    fn a_cached_block_only_moves_to_newer_revisions() {
        let c: Cached<(i64, &str)> = Cached::new(|v| v.0);
        c.put("a", &(2, "second write"));
        c.put(
            "a",
            &(
                1,
                "a read that raced it, or an earlier write finishing late",
            ),
        );
        assert_eq!(c.get("a"), Some((2, "second write")));
        c.put("a", &(3, "third"));
        assert_eq!(c.get("a"), Some((3, "third")));
        let loaded = c.get_or("b", || Ok((7, "from the file")));
        assert_eq!(loaded.ok(), Some((7, "from the file")));
        let cached = c.get_or("b", || panic!("must not read the file again"));
        assert_eq!(cached.ok(), Some((7, "from the file")));
    }
}
