//! What both backends share: building messages, revision checks, the SCB
//! column overlay, RuntimeLog documents, content metadata.

use crate::StoreError;
use crate::store::{NewLogEntry, NewMessage};
use aos_types::{
    ContentMeta, IdKind, Message, MessageMetadata, RuntimeLogEntry, SCHEMA_VERSION, Scb,
    SessionPhase, SessionStatus, new_id, now,
};
use serde_json::Value;

pub(crate) type Result<T> = std::result::Result<T, StoreError>;

/// The SCB fields that live in their own columns (authoritative over `doc`).
pub(crate) struct ScbColumns {
    pub status: String,
    pub phase: String,
    pub revision: i64,
    pub lease_id: Option<String>,
    pub lease_holder: Option<String>,
    pub lease_expires_at: Option<String>,
    pub message_count: i64,
    pub last_message_seq: Option<i64>,
    pub updated_at: String,
    pub archived_at: Option<String>,
    pub doc: String,
}

/// Sessions held under a lease that expired before `?1` (a time), oldest
/// expiry first, at most 64 at a time.
pub(crate) const EXPIRED_LEASES: &str = "status = 'ready' AND phase IN ('dispatched', 'compacting') \
     AND lease_expires_at IS NOT NULL AND lease_expires_at < ?1 ORDER BY lease_expires_at LIMIT 64";

/// Upserts a heartbeat: `?1`…`?6` are id, url, version, started_at,
/// heartbeat_at, period_ms.
pub(crate) const NODE_BEAT: &str = "INSERT INTO nodes (node_id, url, version, started_at, heartbeat_at, period_ms, stopped_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL) ON CONFLICT (node_id) DO UPDATE SET url = excluded.url, version = excluded.version, \
     started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, period_ms = excluded.period_ms, stopped_at = NULL";
/// Marks `?1` stopped at `?2`.
pub(crate) const NODE_STOPPED: &str = "UPDATE nodes SET stopped_at = ?2 WHERE node_id = ?1";
/// Forgets the nodes that last beat before `?1` and queue nothing.
pub(crate) const NODES_FORGET: &str = "DELETE FROM nodes WHERE heartbeat_at < ?1 \
     AND NOT EXISTS (SELECT 1 FROM dispatch_inbox i WHERE i.node_id = nodes.node_id)";
/// Every node.
pub(crate) const NODES: &str = "SELECT node_id, url, version, started_at, heartbeat_at, period_ms, stopped_at FROM nodes ORDER BY node_id";

/// One key's entry: `?1` namespace, `?2` key.
pub(crate) const KV_GET: &str =
    "SELECT key, value, revision, updated_at FROM kv WHERE namespace = ?1 AND key = ?2";
/// Keys of `?1` after `?2` starting with `?3`, `?4` at most.
pub(crate) const KV_LIST: &str = "SELECT key, value, revision, updated_at FROM kv \
     WHERE namespace = ?1 AND key > ?2 AND substr(key, 1, length(?3)) = ?3 ORDER BY key LIMIT ?4";
/// How many keys `?1` holds.
pub(crate) const KV_COUNT: &str = "SELECT count(*) FROM kv WHERE namespace = ?1";
/// Writes `?3` (revision `?4`, time `?5`) under `?1`/`?2`.
pub(crate) const KV_PUT: &str = "INSERT INTO kv (namespace, key, value, revision, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, revision = excluded.revision, updated_at = excluded.updated_at";
/// Deletes `?1`/`?2`.
pub(crate) const KV_DELETE: &str = "DELETE FROM kv WHERE namespace = ?1 AND key = ?2";

/// Agents and sessions by status, for [`crate::Store::counts`].
pub(crate) const COUNTS_SQL: &str = "SELECT 'agents', status, count(*) FROM agents GROUP BY status \
     UNION ALL SELECT 'sessions', status, count(*) FROM sessions GROUP BY status";

/// The column list matching [`ScbColumns`], in order.
pub(crate) const SCB_COLUMNS: &str = "status, phase, revision, lease_id, lease_holder, lease_expires_at, message_count, last_message_seq, updated_at, archived_at, doc";

impl ScbColumns {
    /// The SCB: the doc, overlaid with the columns.
    pub fn into_scb(self) -> Result<Scb> {
        let mut scb: Scb = serde_json::from_str(&self.doc)?;
        scb.status = SessionStatus::parse(&self.status)
            .ok_or_else(|| StoreError::Corrupt(format!("session status {:?}", self.status)))?;
        scb.phase = SessionPhase::parse(&self.phase)
            .ok_or_else(|| StoreError::Corrupt(format!("session phase {:?}", self.phase)))?;
        scb.revision = self.revision;
        scb.lease_id = self.lease_id;
        scb.lease_holder = self.lease_holder;
        scb.lease_expires_at = self.lease_expires_at;
        scb.message_count = self.message_count;
        scb.last_message_seq = self.last_message_seq;
        scb.updated_at = self.updated_at;
        scb.archived_at = self.archived_at;
        Ok(scb)
    }
}

/// Fails with a conflict when `expected` is given and differs.
pub(crate) fn check_revision(kind: &'static str, expected: Option<i64>, actual: i64) -> Result<()> {
    match expected {
        Some(e) if e != actual => Err(StoreError::RevisionConflict {
            kind,
            expected: e,
            actual,
        }),
        _ => Ok(()),
    }
}

/// The revision a `kv_put` writes, given the entry's current one (`None`:
/// absent) and the caller's `expected` (0: absent), and the key count.
pub(crate) fn kv_next(
    key: &str,
    current: Option<i64>,
    expected: Option<i64>,
    keys: i64,
) -> Result<i64> {
    if let Some(e) = expected {
        check_revision("kv entry", Some(e), current.unwrap_or(0))?;
    }
    if current.is_none() && keys >= crate::KV_MAX_KEYS {
        return Err(StoreError::Rejected {
            code: "limit.exceeded",
            message: format!(
                "the namespace holds {} keys, the most it may; delete some before writing {key:?}",
                crate::KV_MAX_KEYS
            ),
        });
    }
    Ok(current.unwrap_or(0) + 1)
}

/// Bumps a control block's revision and time after a change.
/// Gives `after` its lease term: the next one if its lease is a new one,
/// else `before`'s — whatever the update's closure set.
pub(crate) fn lease_term(before: &Scb, after: &mut Scb) {
    let taken = after.lease_id.is_some() && after.lease_id != before.lease_id;
    after.lease_term = before.lease_term + i64::from(taken);
}

pub(crate) fn bump(revision: &mut i64, updated_at: &mut String) -> i64 {
    let old = *revision;
    *revision += 1;
    *updated_at = now();
    old
}

/// Builds the stored message for `m` at `seq`, filling empty part ids.
pub(crate) fn build_message(m: NewMessage, seq: i64, time: &str) -> Message {
    let mut parts = m.parts;
    for p in &mut parts {
        if p.id().is_empty() {
            *p.id_mut() = new_id(IdKind::Part);
        }
    }
    Message {
        id: m.extra.id.unwrap_or_else(|| new_id(IdKind::Message)),
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

/// The stored document of a log entry (the columns hold the rest).
pub(crate) fn log_doc(e: &NewLogEntry) -> String {
    serde_json::json!({
        "ownerType": e.owner_type, "ownerId": e.owner_id, "refs": e.refs, "data": e.data,
    })
    .to_string()
}

/// Column values of a RuntimeLog row.
pub(crate) struct LogRow {
    pub id: i64,
    pub time: String,
    pub level: String,
    pub op: String,
    pub agent_id: Option<String>,
    pub session_id: Option<String>,
    pub doc: String,
}

impl LogRow {
    /// The entry.
    pub fn into_entry(self) -> Result<RuntimeLogEntry> {
        let doc: Value = serde_json::from_str(&self.doc)?;
        let opt = |k: &str| doc.get(k).filter(|v| !v.is_null()).cloned();
        Ok(RuntimeLogEntry {
            schema_version: SCHEMA_VERSION.into(),
            id: self.id,
            time: self.time,
            level: self.level,
            op: self.op,
            owner_type: doc["ownerType"].as_str().unwrap_or("system").to_string(),
            owner_id: opt("ownerId").and_then(|v| v.as_str().map(String::from)),
            agent_id: self.agent_id,
            session_id: self.session_id,
            refs: opt("refs"),
            data: opt("data"),
        })
    }
}

/// Metadata of a new blob.
pub(crate) fn content_meta(session_id: &str, content: &str) -> ContentMeta {
    ContentMeta {
        schema_version: SCHEMA_VERSION.into(),
        content_id: new_id(IdKind::Content),
        session_id: session_id.to_string(),
        size_chars: content.chars().count() as i64,
        line_count: if content.is_empty() {
            0
        } else {
            content.lines().count() as i64
        },
        created_at: now(),
    }
}

/// The error for an append that matched no session row.
pub(crate) fn append_refusal(
    scb: Result<Scb>,
    session_id: &str,
    expected: Option<i64>,
    lease: Option<&str>,
) -> StoreError {
    match scb {
        Err(e) => e,
        Ok(scb) if scb.status == SessionStatus::Archived => StoreError::Rejected {
            code: "session.archived",
            message: format!("session {session_id} is archived"),
        },
        Ok(scb) if lease.is_some() && scb.lease_id.as_deref() != lease => StoreError::Rejected {
            code: "lease.expired",
            message: format!(
                "the lease {} on session {session_id} is no longer held (now {}); a write under it is refused",
                lease.unwrap_or_default(),
                match (&scb.lease_id, &scb.lease_holder) {
                    (Some(l), Some(h)) => format!("{l}, term {}, held by node {h}", scb.lease_term),
                    _ => "free".to_string(),
                }
            ),
        },
        Ok(scb) => StoreError::RevisionConflict {
            kind: "session",
            expected: expected.unwrap_or(-1),
            actual: scb.revision,
        },
    }
}

/// `NotFound` for a kind and id.
pub(crate) fn not_found(kind: &'static str, id: &str) -> StoreError {
    StoreError::NotFound {
        kind,
        id: id.to_string(),
    }
}
