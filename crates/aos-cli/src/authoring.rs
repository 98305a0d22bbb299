//! The skill author's commands around the daemon: stop or restart a
//! skill's services by name (or one instance by id), and build a skill.

use crate::client::Client;
use crate::exit::Usage;
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::path::Path;

/// Runs `op` (`skill.stop`, `skill.restart`) on one instance (`sv_…`) or on
/// every running instance of the skill named `target`; the document lists
/// each answer, and fails if any failed.
pub fn each_instance(op: &str, target: &str) -> Result<(Value, bool)> {
    let c = Client::discover()?;
    if target.starts_with("sv_") {
        let doc = c.call(&json!({ "op": op, "instanceId": target }))?;
        let ok = doc["ok"] == true;
        return Ok((doc, ok));
    }
    let list = c.call(&json!({ "op": "service.list", "skillName": target, "state": "running" }))?;
    if list["ok"] != true {
        return Ok((list, false));
    }
    let ids: Vec<String> = list["data"]["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["instanceId"].as_str().map(String::from))
        .collect();
    if ids.is_empty() {
        let doc = json!({ "ok": false, "op": op, "error": { "code": "not_found",
            "message": format!("no running service of skill {target:?}; start one with `aos skill start {target}`") } });
        return Ok((doc, false));
    }
    let mut answers = Vec::new();
    let mut ok = true;
    for id in ids {
        let doc = c.call(&json!({ "op": op, "instanceId": id }))?;
        ok &= doc["ok"] == true;
        answers.push(if doc["ok"] == true {
            doc["data"].clone()
        } else {
            doc
        });
    }
    Ok((
        json!({ "ok": ok, "op": op, "data": { "services": answers } }),
        ok,
    ))
}

/// `aos skill build [DIR]`: runs the skill's `build.sh` (its output on
/// stderr) and reports the component it left.
pub fn build(dir: &Path) -> Result<(Value, bool)> {
    let script = dir.join("build.sh");
    if !script.is_file() {
        return Err(Usage(format!(
            "{} has no build.sh: run this in a skill made by `aos skill new`, or give its directory",
            dir.display()
        ))
        .into());
    }
    let status = std::process::Command::new("sh")
        .arg(&script)
        .stdout(std::process::Stdio::from(std::io::stderr()))
        .status()
        .with_context(|| format!("cannot run {}", script.display()))?;
    let dir = std::path::absolute(dir)?;
    let ok = status.success();
    let doc = if ok {
        json!({ "ok": true, "op": "skill.build", "data": { "dir": dir,
                "component": dir.join("service.wasm"),
                "next": "aos skill restart NAME (a running service keeps its old code until then)" } })
    } else {
        json!({ "ok": false, "op": "skill.build", "error": { "code": "build.failed",
                "message": format!("{} exited with {status}", script.display()) } })
    };
    Ok((doc, ok))
}
