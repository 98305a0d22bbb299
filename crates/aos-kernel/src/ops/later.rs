//! Syscalls whose machinery arrives with later issues: compaction and the
//! context engine (fold, unfold). They validate what they can and answer a clear error — never a
//! fake success.

use crate::kernel::{Kernel, OpResult};
use crate::ops::session::load;
use aos_types::{ErrorCode, SyscallError};
use serde_json::{Map, Value};

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
    Err(SyscallError::new(
        ErrorCode::NotImplemented,
        format!(
            "{op} is not available in this build: it needs the ReActUnit (LLM + bash loop), which is not built yet"
        ),
    ))
}
