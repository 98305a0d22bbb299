//! The syscall envelope: `{op, ...params}` in, `{ok, op, revision?, data}` or
//! `{ok: false, op, error}` out.

use crate::{ErrorCode, SyscallError};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::fmt;

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

/// A response's `data`: a value built by the op, or JSON text passed on as
/// it is (stored documents a read returns without parsing them).
#[derive(Debug, Clone)]
pub enum Data {
    /// A built value.
    Value(Value),
    /// JSON text, already valid.
    Json(Box<RawValue>),
}

impl Data {
    /// The data as JSON text (no work for [`Data::Json`]).
    pub fn into_json(self) -> String {
        match self {
            Data::Value(v) => v.to_string(),
            Data::Json(j) => String::from(Box::<str>::from(j)),
        }
    }
}

impl Default for Data {
    fn default() -> Data {
        Data::Value(Value::Null)
    }
}

impl From<Value> for Data {
    fn from(v: Value) -> Data {
        Data::Value(v)
    }
}

impl Serialize for Data {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Data::Value(v) => v.serialize(s),
            Data::Json(j) => j.serialize(s),
        }
    }
}

impl fmt::Display for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Data::Value(v) => write!(f, "{v}"),
            Data::Json(j) => f.write_str(j.get()),
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
        data: Data,
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
    pub fn ok(op: impl Into<String>, revision: Option<i64>, data: impl Into<Data>) -> Response {
        Response::Ok {
            ok: true,
            op: op.into(),
            revision,
            data: data.into(),
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
