//! The error codes of `kernel.md` §3 and the error half of the response.

use serde::Serialize;
use serde_json::Value;

/// Every error code a syscall can answer with. The string form is the wire
/// name (`session.busy`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is malformed: bad JSON, wrong types, missing or unknown fields.
    RequestInvalid,
    /// The request body exceeds the size limit.
    RequestTooLarge,
    /// No such syscall.
    OpUnknown,
    /// No token, or a token the daemon does not know.
    AuthRequired,
    /// The caller's token does not grant this call.
    PermissionDenied,
    /// The object does not exist (`details.kind` names its kind).
    NotFound,
    /// The session runs a dispatch.
    SessionBusy,
    /// The session is not ready.
    SessionNotReady,
    /// The session is archived.
    SessionArchived,
    /// The agent is archived.
    AgentArchived,
    /// No such skill in the index.
    SkillNotFound,
    /// `expectedRevision` did not match.
    RevisionConflict,
    /// The lease has expired.
    LeaseExpired,
    /// An admission hook rejected the operation.
    HookRejected,
    /// No such content blob.
    ContentNotFound,
    /// No context engine is running to serve the request.
    ContextEngineUnavailable,
    /// The LLM call failed.
    LlmError,
    /// The syscall exists but its machinery is not built in this version.
    NotImplemented,
    /// The kernel is shutting down and refuses new work.
    Unavailable,
    /// A skill service failed to start or to answer.
    ServiceFailed,
    /// The store's disk is full: nothing was written.
    StoreFull,
    /// A bug or an infrastructure failure.
    Internal,
}

impl ErrorCode {
    /// The wire name of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::RequestInvalid => "request.invalid",
            ErrorCode::RequestTooLarge => "request.too_large",
            ErrorCode::OpUnknown => "op.unknown",
            ErrorCode::AuthRequired => "auth.required",
            ErrorCode::PermissionDenied => "permission.denied",
            ErrorCode::NotFound => "not_found",
            ErrorCode::SessionBusy => "session.busy",
            ErrorCode::SessionNotReady => "session.not_ready",
            ErrorCode::SessionArchived => "session.archived",
            ErrorCode::AgentArchived => "agent.archived",
            ErrorCode::SkillNotFound => "skill.not_found",
            ErrorCode::RevisionConflict => "revision.conflict",
            ErrorCode::LeaseExpired => "lease.expired",
            ErrorCode::HookRejected => "hook.rejected",
            ErrorCode::ContentNotFound => "content.not_found",
            ErrorCode::ContextEngineUnavailable => "context.engine_unavailable",
            ErrorCode::LlmError => "llm.error",
            ErrorCode::NotImplemented => "not_implemented",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::ServiceFailed => "service.failed",
            ErrorCode::StoreFull => "store.full",
            ErrorCode::Internal => "internal",
        }
    }

    /// Every code.
    pub const ALL: [ErrorCode; 22] = [
        ErrorCode::RequestInvalid,
        ErrorCode::RequestTooLarge,
        ErrorCode::OpUnknown,
        ErrorCode::AuthRequired,
        ErrorCode::PermissionDenied,
        ErrorCode::NotFound,
        ErrorCode::SessionBusy,
        ErrorCode::SessionNotReady,
        ErrorCode::SessionArchived,
        ErrorCode::AgentArchived,
        ErrorCode::SkillNotFound,
        ErrorCode::RevisionConflict,
        ErrorCode::LeaseExpired,
        ErrorCode::HookRejected,
        ErrorCode::ContentNotFound,
        ErrorCode::ContextEngineUnavailable,
        ErrorCode::LlmError,
        ErrorCode::NotImplemented,
        ErrorCode::Unavailable,
        ErrorCode::ServiceFailed,
        ErrorCode::StoreFull,
        ErrorCode::Internal,
    ];

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<ErrorCode> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The HTTP status of `interfaces.md` §1 for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::RequestInvalid | ErrorCode::OpUnknown => 400,
            ErrorCode::AuthRequired => 401,
            ErrorCode::PermissionDenied => 403,
            ErrorCode::NotFound | ErrorCode::SkillNotFound | ErrorCode::ContentNotFound => 404,
            ErrorCode::SessionBusy
            | ErrorCode::SessionNotReady
            | ErrorCode::SessionArchived
            | ErrorCode::AgentArchived
            | ErrorCode::RevisionConflict
            | ErrorCode::LeaseExpired
            | ErrorCode::HookRejected => 409,
            ErrorCode::RequestTooLarge => 413,
            ErrorCode::NotImplemented => 501,
            ErrorCode::Unavailable | ErrorCode::ContextEngineUnavailable => 503,
            ErrorCode::LlmError | ErrorCode::ServiceFailed => 502,
            ErrorCode::StoreFull => 507,
            ErrorCode::Internal => 500,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A failed syscall: `{code, message, details?}`.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SyscallError {
    /// The precise code.
    pub code: ErrorCode,
    /// A human sentence saying what went wrong and, where possible, the fix.
    pub message: String,
    /// Structured detail (`kind` for `not_found`, `hook` for `hook.rejected`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl SyscallError {
    /// An error with no details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        SyscallError {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// `request.invalid` with a message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::RequestInvalid, message)
    }

    /// `not_found` for an object of `kind` with `id`.
    pub fn not_found(kind: &str, id: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{kind} {id:?} does not exist"))
            .with_details(serde_json::json!({ "kind": kind, "id": id }))
    }

    /// `internal` wrapping an infrastructure failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_statuses() {
        assert_eq!(ErrorCode::RequestInvalid.http_status(), 400);
        assert_eq!(ErrorCode::AuthRequired.http_status(), 401);
        assert_eq!(ErrorCode::PermissionDenied.http_status(), 403);
        assert_eq!(ErrorCode::NotFound.http_status(), 404);
        assert_eq!(ErrorCode::SessionBusy.http_status(), 409);
        assert_eq!(ErrorCode::RequestTooLarge.http_status(), 413);
        assert_eq!(ErrorCode::Internal.http_status(), 500);
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(c.as_str()), Some(c));
        }
        let e = SyscallError::not_found("agent", "ag_x");
        let v = serde_json::to_value(&e).expect("serialize");
        assert_eq!(v["code"], "not_found");
        assert_eq!(v["details"]["kind"], "agent");
    }
}
