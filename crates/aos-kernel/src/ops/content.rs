//! `content.put`, `content.read`, `content.search`.

use crate::kernel::{Done, Kernel, OpResult};
use crate::params::{self, StoreResult, decode};
use aos_store::StoreError;
use aos_types::{ErrorCode, SyscallError};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Largest blob, in bytes (the HTTP body limit is 8 MiB).
const MAX_CONTENT_BYTES: usize = 8 * 1024 * 1024;
/// Most matches one search returns.
const MAX_MATCHES: i64 = 1000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Put {
    session_id: String,
    content: String,
}

pub(crate) async fn put(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let p: Put = decode("content.put", params)?;
    if p.content.len() > MAX_CONTENT_BYTES {
        return Err(SyscallError::new(
            ErrorCode::RequestTooLarge,
            "`content` is larger than 8 MiB",
        ));
    }
    let scb = crate::sessions::not_archived(k, &p.session_id).await?;
    let meta = k
        .store()
        .content_put(&scb.session_id, &p.content)
        .await
        .sys()?;
    Ok(Done::data(json!(meta)).ids(Some(&scb.agent_id), Some(&scb.session_id)))
}

async fn fetch(
    k: &Kernel,
    content_id: &str,
) -> Result<(aos_types::ContentMeta, String), SyscallError> {
    params::id("contentId", content_id)?;
    k.store()
        .content_get(content_id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound { .. } => SyscallError::new(
                ErrorCode::ContentNotFound,
                format!("content {content_id:?} does not exist"),
            ),
            other => params::store_err(other),
        })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Read {
    content_id: String,
    offset: Option<i64>,
    limit: Option<i64>,
}

pub(crate) async fn read(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let r: Read = decode("content.read", params)?;
    let offset = r.offset.unwrap_or(0);
    if offset < 0 {
        return Err(SyscallError::invalid(
            "`offset` is 0-based and must not be negative",
        ));
    }
    let limit = params::limit(r.limit, 200)?;
    let (meta, body) = fetch(k, &r.content_id).await?;
    let lines: Vec<&str> = body
        .lines()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    Ok(Done::data(json!({
        "contentId": meta.content_id,
        "content": lines.join("\n"),
        "offset": offset,
        "lineCount": lines.len(),
        "totalLines": meta.line_count,
        "totalChars": meta.size_chars,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Search {
    content_id: String,
    pattern: String,
    limit: Option<i64>,
}

pub(crate) async fn search(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let s: Search = decode("content.search", params)?;
    let limit = params::limit(s.limit, 100)?.min(MAX_MATCHES);
    let re = regex::RegexBuilder::new(&s.pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| SyscallError::invalid(format!("`pattern` is not a valid regex: {e}")))?;
    let (meta, body) = fetch(k, &s.content_id).await?;
    let matches: Vec<Value> = body
        .lines()
        .enumerate()
        .filter(|(_, l)| re.is_match(l))
        .take(limit as usize)
        .map(|(i, l)| json!({ "lineNumber": i + 1, "text": l }))
        .collect();
    Ok(Done::data(
        json!({ "contentId": meta.content_id, "matches": matches }),
    ))
}
