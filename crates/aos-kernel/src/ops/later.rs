//! Syscalls whose machinery arrives with later issues: the ReActUnit
//! (dispatch, interrupt, compact, wait), the context engine (fold, unfold) and
//! the skill host (start, stop, invoke, services). They validate what they can
//! and answer a clear error — never a fake success.

use crate::kernel::{Done, Kernel, OpResult};
use crate::ops::session::load;
use aos_types::{ErrorCode, SyscallError};
use serde_json::{Map, Value, json};

pub(crate) async fn not_yet(k: &Kernel, op: &str, params: Map<String, Value>) -> OpResult {
    if let Some(sid) = params.get("sessionId") {
        let sid = sid
            .as_str()
            .ok_or_else(|| SyscallError::invalid(format!("{op}: `sessionId` must be a string")))?;
        load(k, sid).await?;
    }
    if op.starts_with("session.context.") {
        return Err(SyscallError::new(
            ErrorCode::ContextEngineUnavailable,
            format!("{op} needs a context engine (the aos-context skill) and none is running"),
        ));
    }
    let what = match op {
        "session.dispatch" | "session.interrupt" | "session.compact" | "session.wait" => {
            "the ReActUnit (LLM + bash loop)"
        }
        _ => "the skill service host",
    };
    Err(SyscallError::new(
        ErrorCode::NotImplemented,
        format!("{op} is not available in this build: it needs {what}, which is not built yet"),
    ))
}

/// No service host yet, so no service runs: the list is truthfully empty.
pub(crate) fn service_list(params: Map<String, Value>) -> OpResult {
    crate::params::decode::<Empty>("service.list", params)?;
    Ok(Done::data(json!({ "services": [] })))
}

pub(crate) fn service_get(params: Map<String, Value>) -> OpResult {
    let q: InstanceId = crate::params::decode("service.get", params)?;
    crate::params::id("instanceId", &q.instance_id)?;
    Err(SyscallError::not_found("service", &q.instance_id))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InstanceId {
    instance_id: String,
}
