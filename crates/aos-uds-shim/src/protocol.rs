//! The wire protocol: JSON-RPC 2.0 messages, one per line, both ways
//! (`docs/legacy-services.md`). Parsing what a service sends, and reading
//! its answers in every shape the original project's services use.

use aos_extension::{AdmitReply, InvokeReply, Registration};
use serde_json::{Map, Value, json};

/// JSON-RPC error codes the shim answers with.
pub mod codes {
    /// The line is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// JSON, but not a JSON-RPC message.
    pub const INVALID_REQUEST: i64 = -32600;
    /// A method the kernel does not take from a service.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Bad parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// A syscall failed; `data` holds `{code, details}`.
    pub const SYSCALL_FAILED: i64 = -32000;
}

/// A message from a service.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A request (`register`, `syscall`) with its id.
    Request {
        /// Echoed in the answer.
        id: Value,
        /// The method.
        method: String,
        /// Its parameters (an object; absent parameters are `{}`).
        params: Map<String, Value>,
    },
    /// A notification (no id): the shim takes none, but ignores them.
    Notification {
        /// The method.
        method: String,
    },
    /// An answer to one of the kernel's requests.
    Response {
        /// The kernel's request id.
        id: Value,
        /// The result, or the handler's error message.
        result: Result<Value, String>,
    },
}

/// Why a line is not a message; answered with a JSON-RPC error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ProtocolError {
    /// JSON-RPC error code.
    pub code: i64,
    /// What is wrong.
    pub message: String,
    /// The request id, when the line had one.
    pub id: Value,
}

fn invalid(id: Value, message: impl Into<String>) -> ProtocolError {
    ProtocolError {
        code: codes::INVALID_REQUEST,
        message: message.into(),
        id,
    }
}

/// Parses one line.
pub fn parse(line: &[u8]) -> Result<Incoming, ProtocolError> {
    let v: Value = serde_json::from_slice(line).map_err(|e| ProtocolError {
        code: codes::PARSE_ERROR,
        message: format!("not JSON: {e}"),
        id: Value::Null,
    })?;
    let Value::Object(mut m) = v else {
        return Err(invalid(Value::Null, "a message is a JSON object"));
    };
    let id = m.remove("id").unwrap_or(Value::Null);
    if !matches!(id, Value::Null | Value::Number(_) | Value::String(_)) {
        return Err(invalid(Value::Null, "`id` is a number or a string"));
    }
    if let Some(method) = m.remove("method") {
        let Value::String(method) = method else {
            return Err(invalid(id, "`method` is a string"));
        };
        let params = match m.remove("params") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(p)) => p,
            Some(_) => {
                return Err(ProtocolError {
                    code: codes::INVALID_PARAMS,
                    message: "`params` is an object".into(),
                    id,
                });
            }
        };
        return Ok(if id.is_null() {
            Incoming::Notification { method }
        } else {
            Incoming::Request { id, method, params }
        });
    }
    if id.is_null() {
        return Err(invalid(id, "a message has a `method` or answers an `id`"));
    }
    let result = match (m.remove("result"), m.remove("error")) {
        (Some(r), None) => Ok(r),
        (None, Some(e)) => Err(error_text(&e)),
        _ => {
            return Err(invalid(
                id,
                "an answer has exactly one of `result` and `error`",
            ));
        }
    };
    Ok(Incoming::Response { id, result })
}

fn error_text(e: &Value) -> String {
    match e {
        Value::String(s) => s.clone(),
        _ => e
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| e.to_string(), str::to_string),
    }
}

/// A request line from the kernel. `params` is JSON text.
pub fn request(id: u64, method: &str, params: &str) -> Vec<u8> {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#).into_bytes()
}

/// A notification line from the kernel.
pub fn notification(method: &str, params: &Value) -> Vec<u8> {
    json!({ "jsonrpc": "2.0", "method": method, "params": params })
        .to_string()
        .into_bytes()
}

/// A result line; `result` displays as JSON (a `Value` or a syscall's
/// `Data`, written as it is: no parse, no copy of a tree).
pub fn result(id: &Value, result: &impl std::fmt::Display) -> Vec<u8> {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#).into_bytes()
}

/// An error line.
pub fn error(id: &Value, code: i64, message: &str, data: Option<Value>) -> Vec<u8> {
    let mut e = json!({ "code": code, "message": message });
    if let Some(d) = data {
        e["data"] = d;
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": e })
        .to_string()
        .into_bytes()
}

/// Reads `register`'s parameters: `{hooks: [...], events?: [...]}`. The
/// original project's form, `hooks` as an object of name → anything, is
/// taken too.
pub fn registration(params: &Map<String, Value>) -> Result<Registration, String> {
    let names = |key: &str| -> Result<Vec<String>, String> {
        match params.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|n| {
                    n.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("`{key}` lists hook names (strings)"))
                })
                .collect(),
            Some(Value::Object(o)) => Ok(o.keys().cloned().collect()),
            Some(_) => Err(format!("`{key}` is a list of hook names")),
        }
    };
    Ok(Registration {
        hooks: names("hooks")?,
        events: names("events")?,
    })
}

/// Whether `m` has `key` set to one of `values` and no keys outside `allowed`.
fn shaped(m: &Map<String, Value>, key: &str, values: &[&str], allowed: &[&str]) -> bool {
    m.get(key)
        .and_then(Value::as_str)
        .is_some_and(|v| values.contains(&v))
        && m.keys().all(|k| allowed.contains(&k.as_str()))
}

/// An admission answer: `{action: allow|reject, reason?, output?}`,
/// `{verdict: allow|reject, reason?, output?}`, `null` (allow unchanged), or
/// any other value: the new output (the original project's bare form).
pub fn admit_reply(v: Value, skill: &str) -> AdmitReply {
    let Value::Object(mut m) = v else {
        return match v {
            Value::Null => AdmitReply::Allow(None),
            other => AdmitReply::Allow(Some(other.to_string())),
        };
    };
    for key in ["action", "verdict"] {
        if shaped(&m, key, &["allow", "reject"], &[key, "reason", "output"]) {
            let reject = m.get(key).and_then(Value::as_str) == Some("reject");
            if reject {
                let reason = m
                    .remove("reason")
                    .and_then(|r| r.as_str().map(str::to_string))
                    .unwrap_or_else(|| format!("rejected by {skill}"));
                return AdmitReply::Reject(reason);
            }
            return AdmitReply::Allow(m.remove("output").map(|o| o.to_string()));
        }
    }
    AdmitReply::Allow(Some(Value::Object(m).to_string()))
}

/// A transform answer: `{output}`, `null` (unchanged), or a bare value that
/// is the new output. `None` means unchanged.
pub fn transform_reply(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Object(mut m) if m.len() == 1 && m.contains_key("output") => {
            m.remove("output").map(|o| o.to_string())
        }
        other => Some(other.to_string()),
    }
}

/// A command's answer: `{exitCode, stdout?, stderr?}`, a string (its
/// standard output, exit 0), or `null` (exit 0, no output).
pub fn invoke_reply(v: Value) -> Result<InvokeReply, String> {
    match v {
        Value::Null => Ok(InvokeReply {
            exit_code: 0,
            stdout: String::new(),
            stderr: String::new(),
        }),
        Value::String(s) => Ok(InvokeReply {
            exit_code: 0,
            stdout: s,
            stderr: String::new(),
        }),
        Value::Object(m) => {
            let text = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let code = m
                .get("exitCode")
                .or_else(|| m.get("exit_code"))
                .map_or(Some(0), Value::as_i64)
                .and_then(|c| i32::try_from(c).ok())
                .ok_or("`exitCode` is a 32-bit integer")?;
            Ok(InvokeReply {
                exit_code: code,
                stdout: text("stdout"),
                stderr: text("stderr"),
            })
        }
        _ => Err("a command answers {exitCode, stdout, stderr}, a string or null".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_messages() {
        let r = parse(
            br#"{"jsonrpc":"2.0","id":1,"method":"register","params":{"hooks":["tool.before"]}}"#,
        );
        assert!(matches!(r, Ok(Incoming::Request { ref method, .. }) if method == "register"));
        let n = parse(br#"{"jsonrpc":"2.0","method":"log"}"#);
        assert_eq!(
            n,
            Ok(Incoming::Notification {
                method: "log".into()
            })
        );
        let a = parse(br#"{"jsonrpc":"2.0","id":7,"result":{"action":"allow"}}"#);
        assert!(matches!(a, Ok(Incoming::Response { result: Ok(_), .. })));
        let e = parse(br#"{"id":7,"error":{"code":-1,"message":"boom"}}"#);
        assert!(matches!(e, Ok(Incoming::Response { result: Err(ref m), .. }) if m == "boom"));
        assert_eq!(
            parse(b"garbage").map_err(|e| e.code),
            Err(codes::PARSE_ERROR)
        );
        assert_eq!(
            parse(b"[1]").map_err(|e| e.code),
            Err(codes::INVALID_REQUEST)
        );
        assert_eq!(
            parse(br#"{"id":{}}"#).map_err(|e| e.code),
            Err(codes::INVALID_REQUEST)
        );
        assert_eq!(
            parse(br#"{"id":1}"#).map_err(|e| e.code),
            Err(codes::INVALID_REQUEST)
        );
        assert_eq!(
            parse(br#"{"id":1,"method":"x","params":[1]}"#).map_err(|e| e.code),
            Err(codes::INVALID_PARAMS)
        );
    }

    #[test]
    fn every_admission_shape() {
        let out = json!({"args": {"command": "ls"}});
        assert_eq!(
            admit_reply(json!({"action": "allow"}), "s"),
            AdmitReply::Allow(None)
        );
        assert_eq!(
            admit_reply(json!({"action": "reject", "reason": "no"}), "s"),
            AdmitReply::Reject("no".into())
        );
        assert_eq!(
            admit_reply(
                json!({"verdict": "reject", "reason": "blocked: rm -rf /"}),
                "s"
            ),
            AdmitReply::Reject("blocked: rm -rf /".into())
        );
        assert_eq!(
            admit_reply(json!({"verdict": "reject"}), "s"),
            AdmitReply::Reject("rejected by s".into())
        );
        assert_eq!(
            admit_reply(json!({"action": "allow", "output": out}), "s"),
            AdmitReply::Allow(Some(out.to_string()))
        );
        // The original project's bare form: the output itself.
        assert_eq!(
            admit_reply(out.clone(), "s"),
            AdmitReply::Allow(Some(out.to_string()))
        );
        assert_eq!(admit_reply(Value::Null, "s"), AdmitReply::Allow(None));
        // An output that merely has an `action` field is an output.
        let odd = json!({"action": "deploy", "target": "x"});
        assert_eq!(
            admit_reply(odd.clone(), "s"),
            AdmitReply::Allow(Some(odd.to_string()))
        );
    }

    #[test]
    fn transform_and_invoke_shapes() {
        assert_eq!(
            transform_reply(json!({"output": {"result": "x"}})),
            Some(r#"{"result":"x"}"#.into())
        );
        assert_eq!(
            transform_reply(json!({"result": "x"})),
            Some(r#"{"result":"x"}"#.into())
        );
        assert_eq!(transform_reply(Value::Null), None);
        let r = invoke_reply(json!({"exitCode": 2, "stderr": "bad"})).ok();
        assert_eq!(r.map(|r| (r.exit_code, r.stderr)), Some((2, "bad".into())));
        assert_eq!(
            invoke_reply(json!("hi")).ok().map(|r| r.stdout),
            Some("hi".into())
        );
        assert!(invoke_reply(json!({"exitCode": "x"})).is_err());
        assert!(invoke_reply(json!(3)).is_err());
    }

    #[test]
    fn registration_forms() {
        let p = |v: Value| v.as_object().cloned().unwrap_or_default();
        let r = registration(&p(
            json!({"hooks": ["tool.before"], "events": ["session.dispatch.after"]}),
        ));
        assert_eq!(
            r.map(|r| (r.hooks, r.events)),
            Ok((
                vec!["tool.before".into()],
                vec!["session.dispatch.after".into()]
            ))
        );
        let r = registration(&p(json!({"hooks": {"tool.before": "guard"}})));
        assert_eq!(r.map(|r| r.hooks), Ok(vec!["tool.before".into()]));
        assert!(registration(&p(json!({"hooks": [1]}))).is_err());
        assert!(registration(&p(json!({"hooks": "tool.before"}))).is_err());
    }
}
