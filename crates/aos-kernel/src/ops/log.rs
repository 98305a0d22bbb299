//! `runtime.log.list` (operators only).

use crate::kernel::{Done, Kernel, OpResult};
use crate::params::{self, StoreResult, decode};
use aos_store::LogQuery;
use aos_types::SyscallError;
use serde::Deserialize;
use serde_json::{Map, Value, json};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct List {
    agent_id: Option<String>,
    session_id: Option<String>,
    /// Filter by op (named so because `op` is the envelope's field).
    operation: Option<String>,
    level: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
    #[serde(default)]
    order: Order,
}

/// Oldest first (the default), or newest first.
#[derive(Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Order {
    #[default]
    Asc,
    Desc,
}

pub(crate) async fn list(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let q: List = decode("runtime.log.list", params)?;
    for (f, v) in [("agentId", &q.agent_id), ("sessionId", &q.session_id)] {
        if let Some(v) = v {
            params::id(f, v)?;
        }
    }
    if let Some(l) = &q.level
        && !["info", "warn", "error"].contains(&l.as_str())
    {
        return Err(SyscallError::invalid("`level` is one of info, warn, error"));
    }
    let after = match &q.cursor {
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| SyscallError::invalid("`cursor` must come from a previous page"))?,
        ),
        None => None,
    };
    let limit = params::limit(q.limit, 100)?;
    let entries = k
        .store()
        .log_list(&LogQuery {
            agent_id: q.agent_id,
            session_id: q.session_id,
            op: q.operation,
            level: q.level,
            after,
            limit,
            newest_first: q.order == Order::Desc,
        })
        .await
        .sys()?;
    let next = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(Done::data(
        json!({ "entries": entries, "nextCursor": next }),
    ))
}
