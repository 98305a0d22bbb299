//! [`Store`]: the one API the kernel sees, delegating to the SQLite or the
//! PostgreSQL backend.

use crate::StoreError;
use crate::common::Result;
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use aos_types::{
    Acb, AgentStatus, Aoscb, ContentMeta, Message, Origin, Part, Role, RuntimeLogEntry, Scb,
    SessionStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

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
    /// PostgreSQL pool size; 16 when `None`.
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
    /// Extra metadata fields.
    pub extra: MessageExtra,
}

/// A message waiting in a session's dispatch inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxEntry {
    /// The dispatch it will run as.
    pub dispatch_id: String,
    /// Its session.
    pub session_id: String,
    /// The daemon that acknowledged it (and will run it).
    pub node_id: String,
    /// When it was queued.
    pub created_at: String,
    /// The user message's text.
    pub message: String,
    /// `human` or `agent`.
    pub origin: Origin,
    /// The `data-a2a` envelope of a message from another agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a2a: Option<Value>,
}

/// Optional metadata of a [`NewMessage`].
#[derive(Debug, Clone, Default)]
pub struct MessageExtra {
    /// The message id to use instead of a fresh one (a dispatch's user
    /// message has an id derived from the dispatch id, so it is written once).
    pub id: Option<String>,
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
    /// `system`, `operator`, `session`, `skill`…
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
    /// Entries past this id (greater; smaller when `newest_first`).
    pub after: Option<i64>,
    /// Page size.
    pub limit: i64,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
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

/// A page of `session.list`: sessions in id (creation) order, or newest
/// first, optionally of one agent, status and/or matching a search text.
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    /// Only this agent's sessions.
    pub agent_id: Option<String>,
    /// Only sessions in this status.
    pub status: Option<SessionStatus>,
    /// Only sessions whose title contains it (case-insensitive), or whose
    /// session or agent id starts with it.
    pub text: Option<String>,
    /// The last id of the previous page.
    pub after: Option<String>,
    /// Page size.
    pub limit: i64,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
}

/// One entry of a service's key-value namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    /// The key.
    pub key: String,
    /// The value, JSON text.
    pub value: String,
    /// 1 when first written, +1 on each write.
    pub revision: i64,
    /// When last written.
    pub updated_at: String,
}

/// Keys one namespace may hold.
pub const KV_MAX_KEYS: i64 = 10_000;

/// A daemon of the cluster, as its last heartbeat left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// `AOS_NODE_ID`.
    pub node_id: String,
    /// Its API URL.
    pub url: String,
    /// Its version.
    pub version: String,
    /// When it started.
    pub started_at: String,
    /// Its last heartbeat.
    pub heartbeat_at: String,
    /// How often it beats, ms: it is lost after three beats missed.
    pub period_ms: i64,
    /// When it stopped cleanly (`None` while it runs, or if it died).
    pub stopped_at: Option<String>,
}

/// An event to add to the cluster's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Hook name, e.g. `session.started`.
    pub name: String,
    /// When it happened, on the node that published it.
    pub time: String,
    /// `system`, `agent` or `session`.
    pub scope: String,
    /// Agent concerned.
    pub agent_id: Option<String>,
    /// Session concerned.
    pub session_id: Option<String>,
    /// The payload, JSON text.
    pub payload: String,
}

/// The payload of a fact's event, as JSON text, for a message appended to a
/// session.
pub type FactPayload = dyn Fn(&aos_types::Scb, &aos_types::Message) -> String + Send + Sync;

/// How appends write their facts' events to the cluster's log, in the facts'
/// own transactions (PostgreSQL): set once by the kernel, which owns the
/// event's name and payload ([`Store::log_facts`]).
pub struct FactLog {
    /// The node writing.
    pub node_id: String,
    /// The event of a message appended, e.g. `context.ingest`.
    pub name: String,
    /// Its payload as JSON text, for a message appended to a session.
    pub payload: Box<FactPayload>,
}

impl std::fmt::Debug for FactLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactLog")
            .field("node_id", &self.node_id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A page of the cluster's log ([`Store::events_after`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventPage {
    /// Events in order, every one settled: none can be committed before them.
    pub events: Vec<StoredEvent>,
    /// Events follow that a transaction still running could still precede:
    /// read again shortly.
    pub unsettled: bool,
    /// The page was full: read on at once.
    pub more: bool,
}

/// An event of the cluster's log, numbered in one order for every node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Position in the log (the SSE `id` on every node).
    pub id: i64,
    /// The node that published it.
    pub node_id: String,
    /// The event.
    pub event: NewEvent,
}

/// What an append must find to be made: the session's revision, its lease.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fence {
    pub expected: Option<i64>,
    pub lease: Option<String>,
}

/// Rows by status: `(kind, status, count)` with `kind` `agents` or
/// `sessions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(pub Vec<(String, String, i64)>);

enum Inner {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// The store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish()
    }
}

/// The cluster event log on SQLite: there is one node, and its events stay
/// in its memory.
fn one_node() -> StoreError {
    StoreError::Rejected {
        code: "store.unsupported",
        message: "events are shared through PostgreSQL only; a SQLite store has one node".into(),
    }
}

/// Wakes a tailer of the event log when another node added events.
pub struct EventWake(pub(crate) sqlx::postgres::PgListener);

impl EventWake {
    /// Waits for a wake-up, at most `timeout`; `false` when the connection
    /// failed (the caller reads the log anyway and listens again).
    pub async fn wait(&mut self, timeout: std::time::Duration) -> bool {
        match tokio::time::timeout(timeout, self.0.recv()).await {
            Ok(Ok(_)) | Err(_) => true,
            Ok(Err(_)) => false,
        }
    }
}

/// Calls the same method on whichever backend is in use.
macro_rules! delegate {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &*$self.inner {
            Inner::Sqlite(s) => s.$method($($arg),*).await,
            Inner::Postgres(p) => p.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Opens (creating and migrating as needed) the database at `url`:
    /// `sqlite:///abs/path.db`, `sqlite://rel.db` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Store> {
        Self::open_with(url, StoreOptions::default()).await
    }

    /// As [`Store::open`] with options.
    pub async fn open_with(url: &str, opts: StoreOptions) -> Result<Store> {
        let inner = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Inner::Postgres(PgStore::open(url, &opts).await?)
        } else if let Some(rest) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = rest.split('?').next().unwrap_or(rest);
            if path.is_empty() || path.starts_with(":memory:") {
                return Err(StoreError::BadUrl {
                    url: url.to_string(),
                    reason: "expected sqlite://PATH to a database file".into(),
                });
            }
            Inner::Sqlite(SqliteStore::open(path.into()).await?)
        } else {
            return Err(StoreError::BadUrl {
                url: url.to_string(),
                reason: "use sqlite://PATH or postgres://USER@HOST:PORT/DB".into(),
            });
        };
        Ok(Store {
            inner: Arc::new(inner),
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match &*self.inner {
            Inner::Sqlite(_) => Backend::Sqlite,
            Inner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes the store: pending writes finish, connections close, and (for
    /// SQLite) the daemon lock is released.
    pub async fn close(&self) {
        delegate!(self.close())
    }

    /// A cheap liveness probe.
    pub async fn ping(&self) -> Result<()> {
        delegate!(self.ping())
    }

    /// Moves the queued messages of node `from` (lost, or stopped) to node
    /// `to`, returning them in their order; none twice, whichever nodes
    /// adopt at once.
    pub async fn inbox_adopt(&self, from: &str, to: &str) -> Result<Vec<InboxEntry>> {
        delegate!(self.inbox_adopt(from.to_string(), to.to_string()))
    }

    /// The entry of `key` in `namespace`, if any.
    pub async fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<KvEntry>> {
        delegate!(self.kv_get(namespace.to_string(), key.to_string()))
    }

    /// Up to `limit` entries of `namespace` whose key starts with `prefix`,
    /// after key `after`, in key order.
    pub async fn kv_list(
        &self,
        namespace: &str,
        prefix: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<KvEntry>> {
        delegate!(self.kv_list(
            namespace.to_string(),
            prefix.to_string(),
            after.to_string(),
            limit
        ))
    }

    /// Writes `value` under `key`: only if its revision is `expected` when
    /// given (0: only if absent), else `revision.conflict`; a new key past
    /// [`KV_MAX_KEYS`] is refused (`limit.exceeded`). The entry after.
    pub async fn kv_put(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expected: Option<i64>,
    ) -> Result<KvEntry> {
        delegate!(self.kv_put(
            namespace.to_string(),
            key.to_string(),
            value.to_string(),
            expected
        ))
    }

    /// Deletes `key`; whether it was there.
    pub async fn kv_delete(&self, namespace: &str, key: &str) -> Result<bool> {
        delegate!(self.kv_delete(namespace.to_string(), key.to_string()))
    }

    /// Records `node`'s heartbeat (`heartbeat_at` now; `stopped_at` cleared).
    pub async fn node_beat(&self, node: &NodeRecord) -> Result<()> {
        delegate!(self.node_beat(node.clone()))
    }

    /// Marks `node_id` stopped (a clean stop).
    pub async fn node_stopped(&self, node_id: &str) -> Result<()> {
        delegate!(self.node_stopped(node_id.to_string()))
    }

    /// Forgets the nodes whose last heartbeat is older than `before` (stopped
    /// or lost long ago) and that have no queued message left to adopt.
    pub async fn nodes_forget(&self, before: &str) -> Result<u64> {
        delegate!(self.nodes_forget(before.to_string()))
    }

    /// Every node that has beaten and is not forgotten, by id.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        delegate!(self.nodes())
    }

    /// From now on, every append also writes its messages' events to the
    /// cluster's log, in its own transaction (PostgreSQL; `false` on SQLite or
    /// when already set): a fact committed is a fact whose event every node
    /// will read.
    pub fn log_facts(&self, f: FactLog) -> bool {
        match &*self.inner {
            Inner::Postgres(p) => p.log_facts(f),
            Inner::Sqlite(_) => false,
        }
    }

    /// Whether appends write their facts' events ([`Store::log_facts`]).
    pub fn logs_facts(&self) -> bool {
        match &*self.inner {
            Inner::Postgres(p) => p.logs_facts(),
            Inner::Sqlite(_) => false,
        }
    }

    /// Adds events to the cluster's log (PostgreSQL), in one transaction, and
    /// wakes the nodes tailing it. Positions follow commit order: every event
    /// of a transaction that commits later is read after these.
    pub async fn events_append(&self, node_id: &str, events: Vec<NewEvent>) -> Result<()> {
        match &*self.inner {
            Inner::Postgres(p) => p.events_append(node_id, events).await,
            Inner::Sqlite(_) => Err(one_node()),
        }
    }

    /// Up to `limit` events of the log after position `after`, in order —
    /// only settled ones: an event is returned once no transaction still
    /// running can add one before it, so a reader that goes on from the last
    /// position returned never misses one committed late.
    pub async fn events_after(&self, after: i64, limit: i64) -> Result<EventPage> {
        match &*self.inner {
            Inner::Postgres(p) => p.events_after(after, limit).await,
            Inner::Sqlite(_) => Err(one_node()),
        }
    }

    /// The position of the log's last settled event (0 when empty).
    pub async fn events_last_id(&self) -> Result<i64> {
        match &*self.inner {
            Inner::Postgres(p) => p.events_last_id().await,
            Inner::Sqlite(_) => Err(one_node()),
        }
    }

    /// Drops all but the log's last `keep` events (the log is bounded).
    pub async fn events_trim(&self, keep: i64) -> Result<u64> {
        match &*self.inner {
            Inner::Postgres(p) => p.events_trim(keep).await,
            Inner::Sqlite(_) => Err(one_node()),
        }
    }

    /// A connection that wakes when another node added events: `wait`
    /// returns at the next wake-up or after `timeout`, whichever is first.
    pub async fn events_listen(&self) -> Result<EventWake> {
        match &*self.inner {
            Inner::Postgres(p) => p.events_listen().await,
            Inner::Sqlite(_) => Err(one_node()),
        }
    }

    /// How many agents and sessions the store holds, by status (`/metrics`).
    pub async fn counts(&self) -> Result<Counts> {
        delegate!(self.counts())
    }

    /// Creates the AOSCB from `initial` if there is none; otherwise refreshes
    /// `name` and `skillRoot` (bumping the revision only if they changed).
    pub async fn aoscb_init(&self, initial: &Aoscb) -> Result<Aoscb> {
        delegate!(self.aoscb_init(initial.clone()))
    }

    /// The AOSCB.
    pub async fn aoscb_get(&self) -> Result<Aoscb> {
        delegate!(self.aoscb_get())
    }

    /// Changes the AOSCB through `f`, bumping the revision.
    pub async fn aoscb_update(
        &self,
        expected: Option<i64>,
        f: impl FnOnce(&mut Aoscb) -> Result<()> + Send + 'static,
    ) -> Result<Aoscb> {
        delegate!(self.aoscb_update(expected, f))
    }

    /// Inserts a new agent.
    pub async fn agent_insert(&self, acb: &Acb) -> Result<()> {
        delegate!(self.agent_insert(acb.clone()))
    }

    /// One agent.
    pub async fn agent_get(&self, agent_id: &str) -> Result<Acb> {
        delegate!(self.agent_get(agent_id.to_string()))
    }

    /// Agents in id (creation) order, optionally by status, after a cursor.
    pub async fn agent_list(
        &self,
        status: Option<AgentStatus>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Acb>> {
        delegate!(self.agent_list(status, after.unwrap_or("").to_string(), limit))
    }

    /// Changes an agent through `f`, bumping the revision.
    pub async fn agent_update(
        &self,
        agent_id: &str,
        expected: Option<i64>,
        f: impl FnOnce(&mut Acb) -> Result<()> + Send + 'static,
    ) -> Result<Acb> {
        delegate!(self.agent_update(agent_id.to_string(), expected, f))
    }

    /// Inserts a new session.
    pub async fn session_insert(&self, scb: &Scb) -> Result<()> {
        delegate!(self.session_insert(scb.clone()))
    }

    /// One session.
    pub async fn session_get(&self, session_id: &str) -> Result<Scb> {
        delegate!(self.session_get(session_id.to_string()))
    }

    /// A page of sessions (see [`SessionQuery`]).
    pub async fn session_list(&self, q: &SessionQuery) -> Result<Vec<Scb>> {
        delegate!(self.session_list(q.clone()))
    }

    /// Sessions that need recovery: initializing, or ready but not at rest.
    pub async fn sessions_to_recover(&self) -> Result<Vec<Scb>> {
        delegate!(self.sessions_to_recover())
    }

    /// Sessions whose lease expired before `now` while they were dispatched
    /// or compacting: their holder stopped renewing (it died, was paused or
    /// cut off), so any node may take them over. At most 64, oldest first.
    pub async fn expired_leases(&self, now: &str) -> Result<Vec<Scb>> {
        delegate!(self.expired_leases(now.to_string()))
    }

    /// Changes a session through `f`, bumping the revision. Lease columns
    /// change atomically with the rest of the row.
    pub async fn session_update(
        &self,
        session_id: &str,
        expected: Option<i64>,
        f: impl FnOnce(&mut Scb) -> Result<()> + Send + 'static,
    ) -> Result<Scb> {
        delegate!(self.session_update(session_id.to_string(), expected, f))
    }

    /// Appends messages to a session in one transaction. Seqs continue the
    /// session's sequence with no gap; the session's revision goes up by one.
    /// Fails with [`StoreError::Rejected`] (`session.archived`) on an archived
    /// session and with [`StoreError::RevisionConflict`] when `expected` does
    /// not match.
    pub async fn append(
        &self,
        session_id: &str,
        expected: Option<i64>,
        messages: Vec<NewMessage>,
    ) -> Result<(Vec<Message>, Scb)> {
        if messages.is_empty() {
            return Ok((Vec::new(), self.session_get(session_id).await?));
        }
        let fence = Fence {
            expected,
            lease: None,
        };
        delegate!(self.append(session_id.to_string(), fence, messages, None))
    }

    /// Appends under the session's lease `lease` (a dispatch's or a
    /// compaction's writes), with `log` in the same transaction when given:
    /// refused with `lease.expired`, writing nothing, unless the session's
    /// lease is still `lease` at commit — so a holder that was paused past
    /// its lease (and lost it to another node) never interleaves with the
    /// new holder. The lease id is the lease's term: each take makes a new one.
    pub async fn append_fenced(
        &self,
        session_id: &str,
        lease: &str,
        messages: Vec<NewMessage>,
        log: Option<NewLogEntry>,
    ) -> Result<(Vec<Message>, Scb)> {
        let fence = Fence {
            expected: None,
            lease: Some(lease.to_string()),
        };
        delegate!(self.append(session_id.to_string(), fence, messages, log))
    }

    /// [`Store::append`] and a RuntimeLog entry in one transaction (a tool
    /// result and its raw output).
    pub async fn append_logged(
        &self,
        session_id: &str,
        messages: Vec<NewMessage>,
        log: NewLogEntry,
    ) -> Result<(Vec<Message>, Scb)> {
        delegate!(self.append(
            session_id.to_string(),
            Fence::default(),
            messages,
            Some(log)
        ))
    }

    /// A page of history in seq order.
    pub async fn history(&self, session_id: &str, q: &HistoryQuery) -> Result<Vec<Message>> {
        delegate!(self.history(session_id.to_string(), q.clone()))
    }

    /// [`Store::history`] as the stored JSON documents, for callers that
    /// pass messages on as JSON (checked, never parsed into a tree).
    pub async fn history_json(
        &self,
        session_id: &str,
        q: &HistoryQuery,
    ) -> Result<Vec<Box<serde_json::value::RawValue>>> {
        delegate!(self.history(session_id.to_string(), q.clone()))
    }

    /// One message by id, within a session.
    pub async fn message_get(&self, session_id: &str, message_id: &str) -> Result<Message> {
        delegate!(self.message_get(session_id.to_string(), message_id.to_string()))
    }

    /// Writes a RuntimeLog entry; returns its id.
    pub async fn log_append(&self, e: NewLogEntry) -> Result<i64> {
        delegate!(self.log_append(e))
    }

    /// A page of the RuntimeLog, oldest first.
    pub async fn log_list(&self, q: &LogQuery) -> Result<Vec<RuntimeLogEntry>> {
        delegate!(self.log_list(q.clone()))
    }

    /// Queues a message in its session's dispatch inbox (durably).
    pub async fn inbox_push(&self, e: &InboxEntry) -> Result<()> {
        delegate!(self.inbox_push(e.clone()))
    }

    /// Removes a dispatch from the inbox; whether it was there.
    pub async fn inbox_remove(&self, dispatch_id: &str) -> Result<bool> {
        delegate!(self.inbox_remove(dispatch_id.to_string()))
    }

    /// The inbox entries acknowledged by `node_id`, oldest first.
    pub async fn inbox_list(&self, node_id: &str) -> Result<Vec<InboxEntry>> {
        delegate!(self.inbox_list(node_id.to_string()))
    }

    /// Stores an immutable blob for a session.
    pub async fn content_put(&self, session_id: &str, content: &str) -> Result<ContentMeta> {
        let meta = crate::common::content_meta(session_id, content);
        delegate!(self.content_put(meta.clone(), content.to_string()))?;
        Ok(meta)
    }

    /// A blob and its metadata.
    pub async fn content_get(&self, content_id: &str) -> Result<(ContentMeta, String)> {
        delegate!(self.content_get(content_id.to_string()))
    }

    /// Whether a blob exists.
    pub async fn content_exists(&self, content_id: &str) -> Result<bool> {
        delegate!(self.content_exists(content_id.to_string()))
    }
}
