//! Syscalls served by the context engine, which arrives with the default
//! harness (`aos-context`): `session.context.fold` and `unfold`. They
//! validate the session and answer a clear error — never a fake success.

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
    Err(SyscallError::new(
        ErrorCode::ContextEngineUnavailable,
        format!("{op} needs a context engine (the aos-context skill) and none is running"),
    ))
}
