//! The PostgreSQL backend (sqlx). Several daemons may share one database: the
//! `UPDATE … RETURNING` of the session row is both the `seq` counter and the
//! row lock that orders appenders; control-block updates are
//! compare-and-set on `revision`.

use crate::StoreError;
use crate::common::{
    LogRow, Result, SCB_COLUMNS, ScbColumns, append_refusal, build_message, bump, check_revision,
    lease_term, log_doc, not_found,
};
use crate::schema;
use crate::store::{
    EventPage, FactLog, Fence, HistoryQuery, InboxEntry, KvEntry, LogQuery, NewEvent, NewLogEntry,
    NewMessage, NodeRecord, SessionQuery, StoreOptions, StoredEvent,
};
use aos_types::{
    Acb, AgentStatus, Aoscb, ContentMeta, Message, RuntimeLogEntry, SCHEMA_VERSION, Scb,
    SessionStatus, now,
};
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row, Transaction};

pub(crate) struct PgStore {
    pool: PgPool,
    /// The NOTIFY channel of this schema's event log.
    channel: String,
    /// Wakes the nodes tailing the event log (a NOTIFY sent after the
    /// commit, by [`notifier`]; a full channel means one is already due).
    wake: tokio::sync::mpsc::Sender<()>,
    /// Set when appends write their facts' events (`Store::log_facts`).
    facts: std::sync::OnceLock<FactLog>,
}

fn kv_entry((key, value, revision, updated_at): (String, String, i64, String)) -> KvEntry {
    KvEntry {
        key,
        value,
        revision,
        updated_at,
    }
}

/// SQLite's `?N` placeholders as PostgreSQL's `$N`.
fn pg(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// An event's position: its transaction's id, 16 bits up, plus `r`, its rank
/// in the transaction (1 to [`MAX_EVENTS_PER_TX`]: a transaction writes its
/// events in one statement).
const EVENT_POS: &str = "((pg_current_xact_id()::text::bigint << 16) | r)";
/// The most events one transaction can write.
const MAX_EVENTS_PER_TX: usize = 65_535;
/// The first position a transaction still running could write: every event
/// below it is committed (or never will be), so a tailer that has read up to
/// it never sees an earlier position appear later.
const HORIZON: &str = "(pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 16)";

/// Sends one NOTIFY on `channel` per wake-up asked for (those asked while one
/// is sent make one more), until the store is dropped. After the commit, never
/// in it: a NOTIFY in a transaction serialises every committing transaction.
async fn notifier(pool: PgPool, channel: String, mut rx: tokio::sync::mpsc::Receiver<()>) {
    while rx.recv().await.is_some() {
        if let Err(e) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(&channel)
            .execute(&pool)
            .await
        {
            tracing::debug!(error = %e, "cannot wake the event log's tailers; they read it within a second");
        }
    }
}

/// The statement adding events to the log, its parameters numbered from
/// `first`: the node, then the events' columns ([`bind_events`]). A
/// transaction runs it once: the positions rank its events.
fn events_insert(first: usize) -> String {
    let p: Vec<String> = (first..first + 7).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO events (pos, node_id, name, time, scope, agent_id, session_id, payload) \
         SELECT {EVENT_POS}, {}, n, t, s, a, se, p FROM UNNEST({}::TEXT[], {}::TEXT[], {}::TEXT[], {}::TEXT[], {}::TEXT[], {}::TEXT[]) \
         WITH ORDINALITY AS x(n, t, s, a, se, p, r)",
        p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    )
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// Binds the parameters of [`events_insert`].
fn bind_events<'q>(q: PgQuery<'q>, node_id: &'q str, events: &[NewEvent]) -> Result<PgQuery<'q>> {
    if events.len() > MAX_EVENTS_PER_TX {
        return Err(StoreError::Rejected {
            code: "request.invalid",
            message: format!(
                "{} events in one transaction; at most {MAX_EVENTS_PER_TX}",
                events.len()
            ),
        });
    }
    let col = |f: fn(&NewEvent) -> Option<String>| events.iter().map(f).collect::<Vec<_>>();
    Ok(q.bind(node_id)
        .bind(col(|e| Some(e.name.clone())))
        .bind(col(|e| Some(e.time.clone())))
        .bind(col(|e| Some(e.scope.clone())))
        .bind(col(|e| e.agent_id.clone()))
        .bind(col(|e| e.session_id.clone()))
        .bind(col(|e| Some(e.payload.clone()))))
}

fn scb_row(r: &PgRow) -> Result<Scb> {
    ScbColumns {
        status: r.try_get("status")?,
        phase: r.try_get("phase")?,
        revision: r.try_get("revision")?,
        lease_id: r.try_get("lease_id")?,
        lease_holder: r.try_get("lease_holder")?,
        lease_expires_at: r.try_get("lease_expires_at")?,
        message_count: r.try_get("message_count")?,
        last_message_seq: r.try_get("last_message_seq")?,
        updated_at: r.try_get("updated_at")?,
        archived_at: r.try_get("archived_at")?,
        doc: r.try_get("doc")?,
    }
    .into_scb()
}

fn doc<T: serde::de::DeserializeOwned>(r: &PgRow) -> Result<T> {
    Ok(serde_json::from_str(&r.try_get::<String, _>("doc")?)?)
}

/// A compare-and-set that matched nothing: someone else changed the row.
fn lost_race(kind: &'static str, old: i64, rows: u64) -> Result<()> {
    if rows == 1 {
        Ok(())
    } else {
        Err(StoreError::RevisionConflict {
            kind,
            expected: old,
            actual: old + 1,
        })
    }
}

/// How long opening the store waits for PostgreSQL to answer.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// One connection to `url`, at once, before any pool: a server that refuses
/// or is not there is reported with the OS's reason within
/// [`CONNECT_TIMEOUT`], not as a pool timing out after half a minute.
async fn reach(url: &str) -> Result<()> {
    use sqlx::Connection;
    let opts: sqlx::postgres::PgConnectOptions = url.parse().map_err(|e| StoreError::BadUrl {
        url: redacted(url),
        reason: format!("{e}"),
    })?;
    let where_ = format!("{}:{}", opts.get_host(), opts.get_port());
    match tokio::time::timeout(CONNECT_TIMEOUT, sqlx::PgConnection::connect_with(&opts)).await {
        Ok(Ok(c)) => {
            let _ = c.close().await;
            Ok(())
        }
        Ok(Err(sqlx::Error::Io(e))) => Err(StoreError::Unreachable(format!(
            "cannot reach PostgreSQL at {where_}: {e}; is the server running, and is the address right?"
        ))),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(StoreError::Unreachable(format!(
            "PostgreSQL at {where_} did not answer within {} s; check the address and any firewall between",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// `url` without its password.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

impl PgStore {
    pub(crate) async fn open(url: &str, opts: &StoreOptions) -> Result<PgStore> {
        reach(url).await?;
        let schema = opts.pg_schema.clone();
        if let Some(s) = &schema {
            if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(StoreError::BadUrl {
                    url: url.to_string(),
                    reason: format!("schema name {s:?} must be letters, digits and _"),
                });
            }
            let setup = PgPoolOptions::new().max_connections(1).connect(url).await?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{s}\""))
                .execute(&setup)
                .await?;
            setup.close().await;
        }
        let pool = PgPoolOptions::new()
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
        schema::migrate_postgres(&pool).await?;
        let channel = format!(
            "aos_events_{}",
            opts.pg_schema.as_deref().unwrap_or("public")
        );
        let (wake, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(notifier(pool.clone(), channel.clone(), rx));
        Ok(PgStore {
            pool,
            channel,
            wake,
            facts: std::sync::OnceLock::new(),
        })
    }

    pub(crate) fn log_facts(&self, f: FactLog) -> bool {
        self.facts.set(f).is_ok()
    }

    pub(crate) fn logs_facts(&self) -> bool {
        self.facts.get().is_some()
    }

    /// Asks for a wake-up of the event log's tailers.
    fn woken(&self) {
        let _ = self.wake.try_send(());
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub(crate) async fn events_append(&self, node_id: &str, events: Vec<NewEvent>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let sql = events_insert(1);
        bind_events(sqlx::query(&sql), node_id, &events)?
            .execute(&self.pool)
            .await?;
        self.woken();
        Ok(())
    }

    pub(crate) async fn events_after(&self, after: i64, limit: i64) -> Result<EventPage> {
        let rows = sqlx::query(&format!(
            "SELECT pos, node_id, name, time, scope, agent_id, session_id, payload, {HORIZON} AS horizon \
             FROM events WHERE pos > $1 ORDER BY pos LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut page = EventPage::default();
        for r in &rows {
            let pos: i64 = r.try_get("pos")?;
            if pos >= r.try_get::<i64, _>("horizon")? {
                page.unsettled = true;
                break;
            }
            page.events.push(StoredEvent {
                id: pos,
                node_id: r.try_get("node_id")?,
                event: NewEvent {
                    name: r.try_get("name")?,
                    time: r.try_get("time")?,
                    scope: r.try_get("scope")?,
                    agent_id: r.try_get("agent_id")?,
                    session_id: r.try_get("session_id")?,
                    payload: r.try_get("payload")?,
                },
            });
        }
        page.more = !page.unsettled && rows.len() as i64 == limit;
        Ok(page)
    }

    pub(crate) async fn events_last_id(&self) -> Result<i64> {
        let (id,): (Option<i64>,) = sqlx::query_as(&format!(
            "SELECT max(pos) FROM events WHERE pos < {HORIZON}"
        ))
        .fetch_one(&self.pool)
        .await?;
        Ok(id.unwrap_or(0))
    }

    pub(crate) async fn events_trim(&self, keep: i64) -> Result<u64> {
        // By position (commit order), not by the insert's id: ids are drawn
        // before commit, so they do not follow it.
        let r = sqlx::query(
            "DELETE FROM events WHERE pos < (SELECT min(pos) FROM (SELECT pos FROM events ORDER BY pos DESC LIMIT $1) k)",
        )
            .bind(keep)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    pub(crate) async fn events_listen(&self) -> Result<crate::EventWake> {
        let mut l = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        l.listen(&self.channel).await?;
        Ok(crate::EventWake(l))
    }

    pub(crate) async fn kv_get(&self, ns: String, key: String) -> Result<Option<KvEntry>> {
        let row: Option<(String, String, i64, String)> = sqlx::query_as(&pg(crate::common::KV_GET))
            .bind(ns)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(kv_entry))
    }

    pub(crate) async fn kv_list(
        &self,
        ns: String,
        prefix: String,
        after: String,
        limit: i64,
    ) -> Result<Vec<KvEntry>> {
        let rows: Vec<(String, String, i64, String)> = sqlx::query_as(&pg(crate::common::KV_LIST))
            .bind(ns)
            .bind(after)
            .bind(prefix)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(kv_entry).collect())
    }

    pub(crate) async fn kv_put(
        &self,
        ns: String,
        key: String,
        value: String,
        expected: Option<i64>,
    ) -> Result<KvEntry> {
        let mut tx = self.begin().await?;
        // One writer per namespace at a time: the count and the check hold.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(&ns)
            .execute(&mut *tx)
            .await?;
        let current: Option<(i64,)> =
            sqlx::query_as("SELECT revision FROM kv WHERE namespace = $1 AND key = $2")
                .bind(&ns)
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await?;
        let (keys,): (i64,) = sqlx::query_as(&pg(crate::common::KV_COUNT))
            .bind(&ns)
            .fetch_one(&mut *tx)
            .await?;
        let revision = crate::common::kv_next(&key, current.map(|c| c.0), expected, keys)?;
        let updated_at = now();
        sqlx::query(&pg(crate::common::KV_PUT))
            .bind(&ns)
            .bind(&key)
            .bind(&value)
            .bind(revision)
            .bind(&updated_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(KvEntry {
            key,
            value,
            revision,
            updated_at,
        })
    }

    pub(crate) async fn kv_delete(&self, ns: String, key: String) -> Result<bool> {
        let r = sqlx::query(&pg(crate::common::KV_DELETE))
            .bind(ns)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub(crate) async fn node_beat(&self, n: NodeRecord) -> Result<()> {
        sqlx::query(&pg(crate::common::NODE_BEAT))
            .bind(n.node_id)
            .bind(n.url)
            .bind(n.version)
            .bind(n.started_at)
            .bind(n.heartbeat_at)
            .bind(n.period_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn node_stopped(&self, node_id: String) -> Result<()> {
        sqlx::query(&pg(crate::common::NODE_STOPPED))
            .bind(node_id)
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn nodes_forget(&self, before: String) -> Result<u64> {
        let r = sqlx::query(&pg(crate::common::NODES_FORGET))
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    pub(crate) async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        let rows = sqlx::query(crate::common::NODES)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(NodeRecord {
                    node_id: r.try_get("node_id")?,
                    url: r.try_get("url")?,
                    version: r.try_get("version")?,
                    started_at: r.try_get("started_at")?,
                    heartbeat_at: r.try_get("heartbeat_at")?,
                    period_ms: r.try_get("period_ms")?,
                    stopped_at: r.try_get("stopped_at")?,
                })
            })
            .collect()
    }

    pub(crate) async fn counts(&self) -> Result<crate::Counts> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(crate::common::COUNTS_SQL)
            .fetch_all(&self.pool)
            .await?;
        Ok(crate::Counts(rows))
    }

    // ------------------------------------------------------------ AOSCB

    pub(crate) async fn aoscb_init(&self, initial: Aoscb) -> Result<Aoscb> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO aoscb (id, revision, doc) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(initial.revision)
        .bind(serde_json::to_string(&initial)?)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT doc FROM aoscb WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *tx)
            .await?;
        let mut cb: Aoscb = doc(&row)?;
        if cb.name != initial.name || cb.skill_root != initial.skill_root {
            cb.name = initial.name;
            cb.skill_root = initial.skill_root;
            bump(&mut cb.revision, &mut cb.updated_at);
            sqlx::query("UPDATE aoscb SET revision = $1, doc = $2 WHERE id = 1")
                .bind(cb.revision)
                .bind(serde_json::to_string(&cb)?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(cb)
    }

    pub(crate) async fn aoscb_get(&self) -> Result<Aoscb> {
        let row = sqlx::query("SELECT doc FROM aoscb WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| not_found("aoscb", "1"))?;
        doc(&row)
    }

    pub(crate) async fn aoscb_update(
        &self,
        expected: Option<i64>,
        f: impl FnOnce(&mut Aoscb) -> Result<()> + Send + 'static,
    ) -> Result<Aoscb> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT doc FROM aoscb WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *tx)
            .await?;
        let mut cb: Aoscb = doc(&row)?;
        check_revision("system", expected, cb.revision)?;
        f(&mut cb)?;
        let old = bump(&mut cb.revision, &mut cb.updated_at);
        let done =
            sqlx::query("UPDATE aoscb SET revision = $1, doc = $2 WHERE id = 1 AND revision = $3")
                .bind(cb.revision)
                .bind(serde_json::to_string(&cb)?)
                .bind(old)
                .execute(&mut *tx)
                .await?;
        lost_race("system", old, done.rows_affected())?;
        tx.commit().await?;
        Ok(cb)
    }

    // ------------------------------------------------------------ agents

    pub(crate) async fn agent_insert(&self, acb: Acb) -> Result<()> {
        sqlx::query("INSERT INTO agents (agent_id, status, revision, created_at, doc) VALUES ($1, $2, $3, $4, $5)")
            .bind(&acb.agent_id)
            .bind(acb.status.as_str())
            .bind(acb.revision)
            .bind(&acb.created_at)
            .bind(serde_json::to_string(&acb)?)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn agent_get(&self, agent_id: String) -> Result<Acb> {
        let row = sqlx::query("SELECT doc FROM agents WHERE agent_id = $1")
            .bind(&agent_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| not_found("agent", &agent_id))?;
        doc(&row)
    }

    pub(crate) async fn agent_list(
        &self,
        status: Option<AgentStatus>,
        after: String,
        limit: i64,
    ) -> Result<Vec<Acb>> {
        let rows = sqlx::query(
            "SELECT doc FROM agents WHERE ($1 = '' OR status = $1) AND agent_id > $2 ORDER BY agent_id LIMIT $3",
        )
        .bind(status.map_or("", AgentStatus::as_str))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(doc).collect()
    }

    pub(crate) async fn agent_update(
        &self,
        agent_id: String,
        expected: Option<i64>,
        f: impl FnOnce(&mut Acb) -> Result<()> + Send + 'static,
    ) -> Result<Acb> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT doc FROM agents WHERE agent_id = $1 FOR UPDATE")
            .bind(&agent_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| not_found("agent", &agent_id))?;
        let mut acb: Acb = doc(&row)?;
        check_revision("agent", expected, acb.revision)?;
        f(&mut acb)?;
        let old = bump(&mut acb.revision, &mut acb.updated_at);
        let done = sqlx::query("UPDATE agents SET status = $1, revision = $2, doc = $3 WHERE agent_id = $4 AND revision = $5")
            .bind(acb.status.as_str())
            .bind(acb.revision)
            .bind(serde_json::to_string(&acb)?)
            .bind(&agent_id)
            .bind(old)
            .execute(&mut *tx)
            .await?;
        lost_race("agent", old, done.rows_affected())?;
        tx.commit().await?;
        Ok(acb)
    }

    // ------------------------------------------------------------ sessions

    pub(crate) async fn session_insert(&self, scb: Scb) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (session_id, agent_id, status, phase, revision, lease_id, lease_holder, lease_expires_at, message_count, last_message_seq, created_at, updated_at, archived_at, doc) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&scb.session_id)
        .bind(&scb.agent_id)
        .bind(scb.status.as_str())
        .bind(scb.phase.as_str())
        .bind(scb.revision)
        .bind(&scb.lease_id)
        .bind(&scb.lease_holder)
        .bind(&scb.lease_expires_at)
        .bind(scb.message_count)
        .bind(scb.last_message_seq)
        .bind(&scb.created_at)
        .bind(&scb.updated_at)
        .bind(&scb.archived_at)
        .bind(serde_json::to_string(&scb)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(crate) async fn session_get(&self, session_id: String) -> Result<Scb> {
        let row = sqlx::query(&format!(
            "SELECT {SCB_COLUMNS} FROM sessions WHERE session_id = $1"
        ))
        .bind(&session_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| not_found("session", &session_id))?;
        scb_row(&row)
    }

    pub(crate) async fn session_list(&self, q: SessionQuery) -> Result<Vec<Scb>> {
        let (bound, order) = if q.newest_first {
            ("($3 = '' OR session_id < $3)", "DESC")
        } else {
            ("session_id > $3", "ASC")
        };
        let text = to_pg_text(q.text.as_deref().unwrap_or_default()).into_owned();
        let lower = text.to_lowercase();
        let rows = sqlx::query(&format!(
            "SELECT {SCB_COLUMNS} FROM sessions WHERE ($1 = '' OR agent_id = $1) AND ($2 = '' OR status = $2) \
             AND ($5 = '' OR strpos(session_id, $5) = 1 OR strpos(agent_id, $5) = 1 \
                  OR strpos(lower(coalesce(doc::jsonb ->> 'title', '')), $6) > 0) \
             AND {bound} ORDER BY session_id {order} LIMIT $4"
        ))
        .bind(q.agent_id.unwrap_or_default())
        .bind(q.status.map_or("", SessionStatus::as_str))
        .bind(q.after.unwrap_or_default())
        .bind(q.limit)
        .bind(text)
        .bind(lower)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(scb_row).collect()
    }

    pub(crate) async fn sessions_to_recover(&self) -> Result<Vec<Scb>> {
        let rows = sqlx::query(&format!(
            "SELECT {SCB_COLUMNS} FROM sessions WHERE status = 'initializing' OR (status = 'ready' AND phase NOT IN ('idle', 'interrupted'))"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(scb_row).collect()
    }

    pub(crate) async fn expired_leases(&self, now: String) -> Result<Vec<Scb>> {
        let sql = pg(crate::common::EXPIRED_LEASES);
        let rows = sqlx::query(&format!("SELECT {SCB_COLUMNS} FROM sessions WHERE {sql}"))
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(scb_row).collect()
    }

    pub(crate) async fn session_update(
        &self,
        session_id: String,
        expected: Option<i64>,
        f: impl FnOnce(&mut Scb) -> Result<()> + Send + 'static,
    ) -> Result<Scb> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {SCB_COLUMNS} FROM sessions WHERE session_id = $1 FOR UPDATE"
        ))
        .bind(&session_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| not_found("session", &session_id))?;
        let mut scb = scb_row(&row)?;
        check_revision("session", expected, scb.revision)?;
        let before = scb.clone();
        f(&mut scb)?;
        lease_term(&before, &mut scb);
        let old = bump(&mut scb.revision, &mut scb.updated_at);
        let done = sqlx::query(
            "UPDATE sessions SET status = $1, phase = $2, revision = $3, lease_id = $4, lease_holder = $5, lease_expires_at = $6, updated_at = $7, archived_at = $8, doc = $9 \
             WHERE session_id = $10 AND revision = $11",
        )
        .bind(scb.status.as_str())
        .bind(scb.phase.as_str())
        .bind(scb.revision)
        .bind(&scb.lease_id)
        .bind(&scb.lease_holder)
        .bind(&scb.lease_expires_at)
        .bind(&scb.updated_at)
        .bind(&scb.archived_at)
        .bind(serde_json::to_string(&scb)?)
        .bind(&session_id)
        .bind(old)
        .execute(&mut *tx)
        .await?;
        lost_race("session", old, done.rows_affected())?;
        tx.commit().await?;
        Ok(scb)
    }

    // ------------------------------------------------------------ history

    pub(crate) async fn append(
        &self,
        session_id: String,
        fence: Fence,
        messages: Vec<NewMessage>,
        log: Option<NewLogEntry>,
    ) -> Result<(Vec<Message>, Scb)> {
        let Fence { expected, lease } = fence;
        let n = messages.len() as i64;
        let time = now();
        let mut tx = self.begin().await?;
        let row = sqlx::query(&format!(
            "UPDATE sessions SET last_message_seq = COALESCE(last_message_seq, 0) + $1, message_count = message_count + $1, revision = revision + 1, updated_at = $2 \
             WHERE session_id = $3 AND status <> 'archived' AND ($4::BIGINT IS NULL OR revision = $4) AND ($5::TEXT IS NULL OR lease_id = $5) RETURNING {SCB_COLUMNS}"
        ))
        .bind(n)
        .bind(&time)
        .bind(&session_id)
        .bind(expected)
        .bind(&lease)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            drop(tx);
            return Err(append_refusal(
                self.session_get(session_id.clone()).await,
                &session_id,
                expected,
                lease.as_deref(),
            ));
        };
        let scb = scb_row(&row)?;
        let first = scb.last_message_seq.unwrap_or(n) - n + 1;
        let out: Vec<Message> = messages
            .into_iter()
            .enumerate()
            .map(|(i, m)| build_message(m, first + i as i64, &time))
            .collect();
        let seqs: Vec<i64> = out.iter().map(|m| m.metadata.seq).collect();
        let ids: Vec<&str> = out.iter().map(|m| m.id.as_str()).collect();
        let docs = out
            .iter()
            .map(serde_json::to_string)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        // One statement for the whole batch — and its facts' events, when
        // the kernel asked for them.
        let events = self.fact_events(&scb, &out);
        let insert = "INSERT INTO messages (session_id, seq, message_id, doc) SELECT $1, s, i, d FROM UNNEST($2::BIGINT[], $3::TEXT[], $4::TEXT[]) AS t(s, i, d)";
        let sql = match &events {
            Some(_) => format!("WITH m AS ({insert}) {}", events_insert(5)),
            None => insert.to_string(),
        };
        let q = sqlx::query(&sql)
            .bind(&session_id)
            .bind(&seqs)
            .bind(&ids)
            .bind(&docs);
        match &events {
            Some((node, events)) => bind_events(q, node, events)?,
            None => q,
        }
        .execute(&mut *tx)
        .await?;
        if let Some(e) = log {
            sqlx::query("INSERT INTO runtime_log (time, level, op, agent_id, session_id, doc) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&time)
                .bind(e.level)
                .bind(&e.op)
                .bind(&e.agent_id)
                .bind(&e.session_id)
                .bind(log_doc(&e))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if events.is_some() {
            self.woken();
        }
        Ok((out, scb))
    }

    /// The node and events of facts `out`, appended to `scb`'s session — when
    /// the kernel asked for them.
    fn fact_events(&self, scb: &Scb, out: &[Message]) -> Option<(&str, Vec<NewEvent>)> {
        let f = self.facts.get()?;
        let events: Vec<NewEvent> = out
            .iter()
            .map(|m| NewEvent {
                name: f.name.clone(),
                time: m.metadata.created_at.clone(),
                scope: "session".into(),
                agent_id: Some(scb.agent_id.clone()),
                session_id: Some(scb.session_id.clone()),
                payload: (f.payload)(scb, m),
            })
            .collect();
        Some((&f.node_id, events))
    }

    pub(crate) async fn history<T: serde::de::DeserializeOwned>(
        &self,
        session_id: String,
        q: HistoryQuery,
    ) -> Result<Vec<T>> {
        let rows = sqlx::query(
            "SELECT doc FROM messages WHERE session_id = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq LIMIT $4",
        )
        .bind(session_id)
        .bind(q.from_seq)
        .bind(q.to_seq.unwrap_or(i64::MAX))
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(doc).collect()
    }

    pub(crate) async fn message_get(
        &self,
        session_id: String,
        message_id: String,
    ) -> Result<Message> {
        let row = sqlx::query("SELECT doc FROM messages WHERE session_id = $1 AND message_id = $2")
            .bind(session_id)
            .bind(&message_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| not_found("message", &message_id))?;
        doc(&row)
    }

    // ------------------------------------------------------------ runtime log, content

    pub(crate) async fn log_append(&self, e: NewLogEntry) -> Result<i64> {
        let id: i64 = sqlx::query(
            "INSERT INTO runtime_log (time, level, op, agent_id, session_id, doc) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(now())
        .bind(e.level)
        .bind(&e.op)
        .bind(&e.agent_id)
        .bind(&e.session_id)
        .bind(log_doc(&e))
        .fetch_one(&self.pool)
        .await?
        .try_get("id")?;
        Ok(id)
    }

    pub(crate) async fn log_list(&self, q: LogQuery) -> Result<Vec<RuntimeLogEntry>> {
        // PostgreSQL text holds no NUL, so no stored value has one: such a
        // filter matches nothing (as on SQLite) rather than failing.
        let filters = [&q.agent_id, &q.session_id, &q.op, &q.level];
        if filters
            .iter()
            .any(|f| f.as_deref().is_some_and(|v| v.contains('\0')))
        {
            return Ok(Vec::new());
        }
        let page = if q.newest_first {
            "($1 = 0 OR id < $1) ORDER BY id DESC"
        } else {
            "id > $1 ORDER BY id"
        };
        let rows = sqlx::query(&format!(
            "SELECT id, time, level, op, agent_id, session_id, doc FROM runtime_log \
             WHERE ($2 = '' OR agent_id = $2) AND ($3 = '' OR session_id = $3) AND ($4 = '' OR op = $4) AND ($5 = '' OR level = $5) \
             AND {page} LIMIT $6"
        ))
        .bind(q.after.unwrap_or(0))
        .bind(q.agent_id.unwrap_or_default())
        .bind(q.session_id.unwrap_or_default())
        .bind(q.op.unwrap_or_default())
        .bind(q.level.unwrap_or_default())
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                LogRow {
                    id: r.try_get("id")?,
                    time: r.try_get("time")?,
                    level: r.try_get("level")?,
                    op: r.try_get("op")?,
                    agent_id: r.try_get("agent_id")?,
                    session_id: r.try_get("session_id")?,
                    doc: r.try_get("doc")?,
                }
                .into_entry()
            })
            .collect()
    }

    pub(crate) async fn content_put(&self, meta: ContentMeta, body: String) -> Result<()> {
        sqlx::query(
            "INSERT INTO content (content_id, session_id, size_chars, line_count, created_at, body) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&meta.content_id)
        .bind(&meta.session_id)
        .bind(meta.size_chars)
        .bind(meta.line_count)
        .bind(&meta.created_at)
        .bind(to_pg_text(&body))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(crate) async fn content_get(&self, content_id: String) -> Result<(ContentMeta, String)> {
        let r = sqlx::query("SELECT session_id, size_chars, line_count, created_at, body FROM content WHERE content_id = $1")
            .bind(&content_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| not_found("content", &content_id))?;
        let meta = ContentMeta {
            schema_version: SCHEMA_VERSION.into(),
            content_id,
            session_id: r.try_get("session_id")?,
            size_chars: r.try_get("size_chars")?,
            line_count: r.try_get("line_count")?,
            created_at: r.try_get("created_at")?,
        };
        Ok((meta, from_pg_text(r.try_get("body")?)))
    }

    pub(crate) async fn inbox_push(&self, e: InboxEntry) -> Result<()> {
        sqlx::query("INSERT INTO dispatch_inbox (dispatch_id, session_id, node_id, created_at, doc) VALUES ($1, $2, $3, $4, $5)")
            .bind(&e.dispatch_id)
            .bind(&e.session_id)
            .bind(&e.node_id)
            .bind(&e.created_at)
            .bind(serde_json::to_string(&e)?)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(crate) async fn inbox_remove(&self, dispatch_id: String) -> Result<bool> {
        let r = sqlx::query("DELETE FROM dispatch_inbox WHERE dispatch_id = $1")
            .bind(dispatch_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub(crate) async fn inbox_list(&self, node_id: String) -> Result<Vec<InboxEntry>> {
        let rows =
            sqlx::query("SELECT doc FROM dispatch_inbox WHERE node_id = $1 ORDER BY position")
                .bind(node_id)
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(serde_json::from_str(&r.try_get::<String, _>("doc")?)?);
        }
        Ok(out)
    }

    pub(crate) async fn inbox_adopt(&self, from: String, to: String) -> Result<Vec<InboxEntry>> {
        let mut rows: Vec<(i64, String)> = sqlx::query_as(
            "UPDATE dispatch_inbox SET node_id = $2 WHERE node_id = $1 RETURNING position, doc",
        )
        .bind(from)
        .bind(&to)
        .fetch_all(&self.pool)
        .await?;
        rows.sort();
        let mut out = Vec::with_capacity(rows.len());
        for (_, d) in rows {
            let mut e: InboxEntry = serde_json::from_str(&d)?;
            e.node_id.clone_from(&to);
            out.push(e);
        }
        Ok(out)
    }

    pub(crate) async fn content_exists(&self, content_id: String) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 FROM content WHERE content_id = $1")
            .bind(content_id)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }
}

/// Marks a stored text that was escaped to carry NUL characters, which
/// PostgreSQL text cannot hold.
const ESCAPED: &str = "\u{1}aos-escaped:";

/// `text` as PostgreSQL can store it: unchanged, unless it holds a NUL (or
/// could be mistaken for escaped text) — then [`ESCAPED`] and the text with
/// `\` as `\\` and NUL as `\0`.
pub(crate) fn to_pg_text(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\0') && !text.starts_with(ESCAPED) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + ESCAPED.len() + 16);
    out.push_str(ESCAPED);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The text [`to_pg_text`] stored.
pub(crate) fn from_pg_text(stored: String) -> String {
    let Some(escaped) = stored.strip_prefix(ESCAPED) else {
        return stored;
    };
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod text_tests {
    use super::{ESCAPED, from_pg_text, to_pg_text};

    #[test]
    fn any_text_round_trips_and_plain_text_is_stored_as_is() {
        for t in [
            "plain",
            "a\0b",
            "\\0 not a nul",
            "\0",
            "",
            "x\\",
            &format!("{ESCAPED}tricky"),
            &format!("{ESCAPED}\0\\"),
        ] {
            let stored = to_pg_text(t);
            assert!(!stored.contains('\0'), "{t:?}");
            assert_eq!(from_pg_text(stored.into_owned()), t, "{t:?}");
        }
        assert_eq!(to_pg_text("plain \\ text"), "plain \\ text");
    }
}
