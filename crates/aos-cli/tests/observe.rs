//! What an operator sees of a dispatch: an info line when it starts and
//! ends, for each model call (model, tokens, latency), each command (its
//! head, exit, duration) and each hook rejection (skill, hook, reason) —
//! each also in the RuntimeLog and counted on `/metrics`; and
//! `AOS_LOG=debug` raises our crates only.

mod common;

use common::Daemon;
use serde_json::{Value, json};

fn log_ops(d: &Daemon) -> Vec<Value> {
    let (doc, code) = d.call("runtime.log.list", json!({ "limit": 500 }));
    assert_eq!(code, 0, "{doc}");
    doc["data"]["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_dispatch_leaves_lines_and_log_entries_for_each_step() {
    let rt = common::runtime();
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![
        aos_testkit::Reply::bash("c1", "echo hi"),
        aos_testkit::Reply::bash("c2", "rm -rf / --no-preserve-root"),
        aos_testkit::Reply::text("done"),
    ]));
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let d = Daemon::launch_env(
        &home,
        None,
        &common::skill_roots(),
        &[("AOS_LLM_BASE_URL", &llm.url()), ("AOS_LOG", "info")],
    );
    d.ok(&["skill", "start", "my-guard"]);
    let (_, sid) = common::new_session(&d);
    let out = d.ok(&["send", &sid, "go"]);
    assert_eq!(out["data"]["status"], "completed", "{out}");

    let lines = std::fs::read_to_string(home.with_extension("log")).expect("daemon log");
    let line = |what: &str, with: &[&str]| {
        lines
            .lines()
            .find(|l| l.contains(what) && with.iter().all(|w| l.contains(w)))
            .unwrap_or_else(|| panic!("no {what:?} line with {with:?} in:\n{lines}"))
            .to_string()
    };
    line("dispatch started", &[&sid]);
    line("dispatch ended", &[&sid, "status=completed"]);
    line("llm call", &["model=", "latency_ms=", "prompt_tokens="]);
    line("tool call", &["command=echo hi", "exit=0", "duration_ms="]);
    line(
        "hook rejected",
        &["skill=my-guard", "hook=\"tool.before\"", "rm -rf"],
    );

    let entries = log_ops(&d);
    let has = |op: &str| {
        entries
            .iter()
            .any(|e| e["op"] == op && e["sessionId"] == sid.as_str())
    };
    for op in ["dispatch.ended", "llm.call", "tool.bash"] {
        assert!(has(op), "{op} in the RuntimeLog: {entries:?}");
    }
    assert!(
        entries.iter().any(|e| e["op"] == "hook.rejected"
            && e["data"]["skill"] == "my-guard"
            && e["data"]["hook"] == "tool.before"),
        "{entries:?}"
    );
    let calls = entries.iter().filter(|e| e["op"] == "llm.call").count();
    assert_eq!(calls, 3, "one entry per model call");

    // The same run, counted on /metrics.
    let metrics = ureq::get(&format!("{}/metrics", d.url))
        .set("Authorization", &format!("Bearer {}", d.token()))
        .call()
        .expect("metrics")
        .into_string()
        .expect("text");
    for line in [
        "aos_dispatches_total{status=\"completed\"} 1",
        "aos_turns_total 3",
        "aos_llm_calls_total 3",
        "aos_tool_calls_total{exit=\"ok\"} 1",
        "aos_hook_outcomes_total{skill=\"my-guard\",hook=\"tool.before\",outcome=\"rejected\"} 1",
        "aos_services{state=\"running\"}",
        "aos_llm_call_duration_seconds_count 3",
        "aos_tool_duration_seconds_count 1",
        "aos_syscalls_total{op=\"session.dispatch\",code=\"ok\"} 1",
        // Each call of a hook handler, by skill and hook: the guard saw both
        // commands, the context engine the one that ran.
        "aos_hook_call_duration_seconds_count{skill=\"my-guard\",hook=\"tool.before\"} 2",
        "aos_hook_call_duration_seconds_bucket{skill=\"my-guard\",hook=\"tool.before\",le=\"+Inf\"} 2",
        "aos_hook_call_duration_seconds_count{skill=\"aos-context\",hook=\"tool.after\"} 1",
        // What the store holds.
        "aos_agents{status=\"active\"} 1",
        "aos_sessions{status=\"ready\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    let guard_calls = metrics
        .lines()
        .find(|l| l.starts_with("aos_service_calls_total{skill=\"my-guard\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        guard_calls.is_some_and(|n| n >= 2),
        "the guard's calls: {guard_calls:?}"
    );
    let assembled = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "aos_hook_call_duration_seconds_count{skill=\"aos-context\",hook=\"context.assemble\"} ",
            )
        })
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        assembled.is_some_and(|n| n >= 4),
        "assembled at bootstrap and for each of the 3 model calls: {assembled:?}"
    );
    let appends = metrics
        .lines()
        .find_map(|l| l.strip_prefix("aos_store_append_duration_seconds_count "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        appends.is_some_and(|n| n >= 6),
        "appends counted: {appends:?}"
    );
}

#[test]
fn aos_log_debug_raises_our_crates_only() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let d = Daemon::launch_env(&home, None, &common::skill_roots(), &[("AOS_LOG", "debug")]);
    d.ok(&["skill", "start", "my-guard"]);
    let lines = std::fs::read_to_string(home.with_extension("log")).expect("daemon log");
    assert!(
        lines
            .lines()
            .any(|l| l.contains("DEBUG") && l.contains("aos")),
        "{lines}"
    );
    let foreign = lines
        .lines()
        .filter(|l| l.contains("DEBUG") && (l.contains("cranelift") || l.contains("wasmtime")))
        .count();
    assert_eq!(foreign, 0, "no debug line from cranelift or wasmtime");
}
