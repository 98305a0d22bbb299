//! `kv.get`, `kv.list`, `kv.put`, `kv.delete`: a service's key-value store
//! (`capabilities.kv`), in the kernel's store — so the instances of one skill
//! for one owner share it on every node and across restarts. The namespace
//! is the calling service's skill and owner: no parameter names another.

use crate::Principal;
use crate::kernel::{Done, Kernel, OpResult};
use crate::params::{StoreResult, decode};
use aos_store::KvEntry;
use aos_types::{ErrorCode, SyscallError};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Longest key, bytes.
const MAX_KEY: usize = 256;
/// Largest value, bytes of JSON text.
const MAX_VALUE: usize = 64 * 1024;
/// Most entries one `kv.list` returns.
const MAX_LIST: i64 = 1_000;

/// The caller's namespace: `skill/owner`.
fn namespace(p: &Principal) -> Result<String, SyscallError> {
    match p {
        Principal::Service(g) => Ok(format!(
            "{}/{}",
            g.skill,
            crate::authz::owner_text(&g.owner)
        )),
        _ => Err(SyscallError::new(
            ErrorCode::PermissionDenied,
            "the key-value store belongs to a skill's service (capabilities.kv): its namespace is the service's skill and owner",
        )),
    }
}

fn key(k: &str) -> Result<&str, SyscallError> {
    if k.is_empty() || k.len() > MAX_KEY {
        return Err(SyscallError::invalid(format!(
            "key must be 1 to {MAX_KEY} bytes, not {}",
            k.len()
        )));
    }
    Ok(k)
}

fn entry(e: &KvEntry) -> Value {
    let value: Value = serde_json::from_str(&e.value).unwrap_or(Value::Null);
    json!({ "key": e.key, "value": value, "revision": e.revision, "updatedAt": e.updated_at })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Key {
    key: String,
}

pub(crate) async fn get(k: &Kernel, p: &Principal, params: Map<String, Value>) -> OpResult {
    let q: Key = decode("kv.get", params)?;
    let ns = namespace(p)?;
    match k.store().kv_get(&ns, key(&q.key)?).await.sys()? {
        Some(e) => Ok(Done::data(entry(&e))),
        None => Err(SyscallError::new(
            ErrorCode::NotFound,
            format!("no key {:?} in this service's store", q.key),
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct List {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    after: String,
    limit: Option<i64>,
}

pub(crate) async fn list(k: &Kernel, p: &Principal, params: Map<String, Value>) -> OpResult {
    let q: List = decode("kv.list", params)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIST).contains(&limit) {
        return Err(SyscallError::invalid(format!(
            "limit must be 1 to {MAX_LIST}"
        )));
    }
    let ns = namespace(p)?;
    let entries = k
        .store()
        .kv_list(&ns, &q.prefix, &q.after, limit)
        .await
        .sys()?;
    let next = (entries.len() as i64 == limit).then(|| entries.last().map(|e| e.key.clone()));
    Ok(Done::data(json!({
        "entries": entries.iter().map(entry).collect::<Vec<_>>(),
        "nextAfter": next.flatten(),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Put {
    key: String,
    value: Value,
    expected_revision: Option<i64>,
}

pub(crate) async fn put(k: &Kernel, p: &Principal, params: Map<String, Value>) -> OpResult {
    let q: Put = decode("kv.put", params)?;
    let text = q.value.to_string();
    if text.len() > MAX_VALUE {
        return Err(SyscallError::new(
            ErrorCode::RequestTooLarge,
            format!("value is {} bytes of JSON; at most {MAX_VALUE}", text.len()),
        ));
    }
    let ns = namespace(p)?;
    let e = k
        .store()
        .kv_put(&ns, key(&q.key)?, &text, q.expected_revision)
        .await
        .sys()?;
    Ok(Done::data(json!({ "key": e.key, "revision": e.revision })))
}

pub(crate) async fn delete(k: &Kernel, p: &Principal, params: Map<String, Value>) -> OpResult {
    let q: Key = decode("kv.delete", params)?;
    let ns = namespace(p)?;
    let deleted = k.store().kv_delete(&ns, key(&q.key)?).await.sys()?;
    Ok(Done::data(json!({ "key": q.key, "deleted": deleted })))
}
