//! `session.history.list`, `session.history.get`.

use crate::kernel::{Done, Kernel, OpResult};
use crate::params::{self, StoreResult, decode};
use crate::sessions::load;
use aos_store::HistoryQuery;
use aos_types::SyscallError;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct List {
    session_id: String,
    from_seq: Option<i64>,
    to_seq: Option<i64>,
    cursor: Option<String>,
    limit: Option<i64>,
}

pub(crate) async fn list(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let q: List = decode("session.history.list", params)?;
    let limit = params::limit(q.limit, 100)?;
    let from = match &q.cursor {
        Some(c) => c.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            SyscallError::invalid("`cursor` must be a cursor returned by a previous page")
        })?,
        None => q.from_seq.unwrap_or(1),
    };
    if from < 1 || q.to_seq.is_some_and(|t| t < 1) {
        return Err(SyscallError::invalid("`fromSeq` and `toSeq` start at 1"));
    }
    let scb = load(k, &q.session_id).await?;
    let bound = q
        .to_seq
        .unwrap_or(i64::MAX)
        .min(scb.last_message_seq.unwrap_or(0));
    // No more than the session holds now: the store then knows a page is
    // short (read at once) — a later append is not part of this answer.
    let limit = limit.min((bound - from + 1).max(1));
    let query = HistoryQuery {
        from_seq: from,
        to_seq: q.to_seq,
        limit,
    };
    // The stored documents go out as they are, checked but never parsed.
    let messages = k
        .store()
        .history_json(&scb.session_id, &query)
        .await
        .sys()?;
    let last = match messages.last() {
        Some(m) => Some(seq_of(m)?),
        None => None,
    };
    let next = last
        .filter(|l| messages.len() as i64 == limit && *l < bound)
        .map(|l| (l + 1).to_string());
    let page = Page {
        session_id: &scb.session_id,
        messages: &messages,
        next_cursor: next,
    };
    let json = serde_json::value::to_raw_value(&page)
        .map_err(|e| SyscallError::internal(format!("cannot write a history page: {e}")))?;
    Ok(Done::json(json))
}

/// A page of `session.history.list`, written around the stored documents.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page<'a> {
    session_id: &'a str,
    messages: &'a [Box<RawValue>],
    next_cursor: Option<String>,
}

/// The `metadata.seq` of a stored message document.
fn seq_of(doc: &RawValue) -> Result<i64, SyscallError> {
    #[derive(Deserialize)]
    struct Doc {
        metadata: Meta,
    }
    #[derive(Deserialize)]
    struct Meta {
        seq: i64,
    }
    serde_json::from_str::<Doc>(doc.get())
        .map(|d| d.metadata.seq)
        .map_err(|e| SyscallError::internal(format!("a stored message has no seq: {e}")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Get {
    session_id: String,
    message_id: Option<String>,
    seq: Option<i64>,
}

pub(crate) async fn get(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let q: Get = decode("session.history.get", params)?;
    let scb = load(k, &q.session_id).await?;
    let msg = match (q.message_id, q.seq) {
        (Some(id), None) => {
            params::id("messageId", &id)?;
            k.store().message_get(&scb.session_id, &id).await.sys()?
        }
        (None, Some(seq)) => {
            let page = k
                .store()
                .history(
                    &scb.session_id,
                    &HistoryQuery {
                        from_seq: seq,
                        to_seq: Some(seq),
                        limit: 1,
                    },
                )
                .await
                .sys()?;
            page.into_iter()
                .next()
                .ok_or_else(|| SyscallError::not_found("message", &format!("seq {seq}")))?
        }
        _ => {
            return Err(SyscallError::invalid(
                "give exactly one of `messageId` or `seq`",
            ));
        }
    };
    Ok(Done::data(json!(msg)))
}
