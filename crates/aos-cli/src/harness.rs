//! Commands answered by the default harness's services rather than by one
//! syscall: `aos skill list|search|load` (the `aos-skill` service) and
//! `aos a2a send` (`aos-a2a`). Each runs the service's command with
//! `skill.invoke` and prints its JSON answer as the command's own document.

use crate::client::Client;
use anyhow::Result;
use aos_types::requests::{Op, SkillInvoke};
use serde_json::{Value, json};

/// Runs `args` on `skill`'s service for `session`; returns the document to
/// print and whether it succeeded.
pub fn run(skill: &str, args: Vec<String>, session: Option<String>) -> Result<(Value, bool)> {
    let op = format!("{skill} {}", args.first().map_or("", String::as_str));
    let req = SkillInvoke {
        name: skill.to_string(),
        args,
        stdin: None,
        session_id: session,
    };
    let doc = Client::discover()?.call(&req.call())?;
    if doc["ok"] != true {
        return Ok((missing_service_hint(doc, skill), false));
    }
    let data = &doc["data"];
    let parse = |k: &str| serde_json::from_str::<Value>(data[k].as_str().unwrap_or_default());
    if data["exitCode"] == 0 {
        let answer = parse("stdout").unwrap_or_else(|_| data["stdout"].clone());
        return Ok((json!({ "ok": true, "op": op, "data": answer }), true));
    }
    let error = match parse("stderr") {
        Ok(e) if e["code"].is_string() => e,
        _ => json!({ "code": "service.failed", "message": data["stderr"] }),
    };
    Ok((json!({ "ok": false, "op": op, "error": error }), false))
}

/// Says how to do without a harness service that is not installed.
fn missing_service_hint(mut doc: Value, skill: &str) -> Value {
    if doc["error"]["code"] == "skill.not_found" && doc["error"]["details"]["name"] == skill {
        doc["error"]["message"] = json!(format!(
            "this command needs the `{skill}` skill, which is not in the skill roots; \
             use the syscalls directly (`aos call …`)"
        ));
    }
    doc
}
