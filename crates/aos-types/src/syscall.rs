//! The syscall envelope: `{op, ...params}` in, `{ok, op, revision?, data}` or
//! `{ok: false, op, error}` out.

use crate::{ErrorCode, SyscallError};
use serde::Serialize;
use serde_json::{Map, Value};

/// A decoded request: the op name and the remaining fields as parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The syscall name, e.g. `session.append`.
    pub op: String,
    /// Every field but `op`.
    pub params: Map<String, Value>,
}

impl Request {
    /// Decodes a request body. The body must be a JSON object whose `op` is a
    /// string; everything else is left for the op's own validation.
    pub fn decode(body: &[u8]) -> Result<Request, SyscallError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| SyscallError::invalid(format!("request body is not valid JSON: {e}")))?;
        Self::from_value(value)
    }

    /// As [`Request::decode`], from an already parsed value.
    pub fn from_value(value: Value) -> Result<Request, SyscallError> {
        let Value::Object(mut params) = value else {
            return Err(SyscallError::invalid(
                "request must be a JSON object like {\"op\": \"system.get\"}",
            ));
        };
        match params.remove("op") {
            Some(Value::String(op)) if !op.is_empty() && op.len() <= 128 => {
                Ok(Request { op, params })
            }
            Some(_) => Err(SyscallError::invalid(
                "field `op` must be a non-empty string",
            )),
            None => Err(SyscallError::invalid("field `op` is missing")),
        }
    }
}

/// A syscall response.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Response {
    /// Success.
    Ok {
        /// Always true.
        ok: bool,
        /// The op answered.
        op: String,
        /// New revision of the changed control block, for commands.
        #[serde(skip_serializing_if = "Option::is_none")]
        revision: Option<i64>,
        /// The result.
        data: Value,
    },
    /// Failure.
    Err {
        /// Always false.
        ok: bool,
        /// The op answered.
        op: String,
        /// What went wrong.
        error: SyscallError,
    },
}

impl Response {
    /// A success response.
    pub fn ok(op: impl Into<String>, revision: Option<i64>, data: Value) -> Response {
        Response::Ok {
            ok: true,
            op: op.into(),
            revision,
            data,
        }
    }

    /// A failure response.
    pub fn err(op: impl Into<String>, error: SyscallError) -> Response {
        Response::Err {
            ok: false,
            op: op.into(),
            error,
        }
    }

    /// The error code, if this is a failure.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Response::Ok { .. } => None,
            Response::Err { error, .. } => Some(error.code),
        }
    }

    /// The HTTP status for this response.
    pub fn http_status(&self) -> u16 {
        self.error_code().map_or(200, ErrorCode::http_status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_splits_op_from_params() {
        let r = Request::decode(br#"{"op":"agent.get","agentId":"ag_1"}"#).expect("decode");
        assert_eq!(r.op, "agent.get");
        assert_eq!(r.params["agentId"], "ag_1");
        assert!(!r.params.contains_key("op"));
    }

    #[test]
    fn decode_rejects_bad_envelopes() {
        for body in [
            &b"not json"[..],
            b"[]",
            b"{}",
            br#"{"op":3}"#,
            br#"{"op":""}"#,
            b"\xff\xfe",
        ] {
            let e = Request::decode(body).expect_err("must fail");
            assert_eq!(e.code, ErrorCode::RequestInvalid);
        }
    }

    #[test]
    fn responses_serialize_as_spec() {
        let v =
            serde_json::to_value(Response::ok("system.get", Some(2), Value::Null)).expect("ser");
        assert_eq!(v["ok"], true);
        assert_eq!(v["revision"], 2);
        let e = Response::err("x", SyscallError::new(ErrorCode::OpUnknown, "no"));
        assert_eq!(e.http_status(), 400);
        let v = serde_json::to_value(e).expect("ser");
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"]["code"], "op.unknown");
    }
}
