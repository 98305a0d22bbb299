//! The CLI's habits for people: `aos call --list` (the op table, no daemon
//! needed), shell completions, and a session's history as text.

mod common;

use common::Daemon;
use serde_json::Value;

/// `aos args` with `home` as `AOS_HOME`: (status, stdout, stderr).
fn aos(home: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = common::run_aos(home, args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn call_list_prints_the_op_table_without_a_daemon() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (code, out, err) = aos(&tmp.path().join("none"), &["call", "--list"]);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).expect("JSON");
    let ops = doc["data"]["ops"].as_array().expect("ops");
    assert_eq!(ops.len(), aos_types::SYSCALLS.len());
    let dispatch = ops
        .iter()
        .find(|o| o["op"] == "session.dispatch")
        .expect("session.dispatch");
    assert_eq!(dispatch["kind"], "command", "{dispatch}");
    let update = ops
        .iter()
        .find(|o| o["op"] == "system.update")
        .expect("system.update");
    assert_eq!(update["agentBash"], false, "operator only: {update}");
    // Neither an op nor --list: bad usage.
    let (code, _, _) = aos(tmp.path(), &["call"]);
    assert_eq!(code, 2);
    let (code, _, _) = aos(tmp.path(), &["call", "agent.list", "--list"]);
    assert_eq!(code, 2, "an op and --list conflict");
}

#[test]
fn completions_are_printed_for_each_shell() {
    let tmp = tempfile::tempdir().expect("tmp");
    for (shell, mark) in [
        ("bash", "complete -F _aos"),
        ("zsh", "#compdef aos"),
        ("fish", "complete -c aos"),
    ] {
        let (code, out, err) = aos(tmp.path(), &["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(
            out.contains(mark),
            "{shell}: {}",
            &out[..out.len().min(300)]
        );
        assert!(out.contains("interrupt"), "{shell} knows the subcommands");
    }
    let (code, _, _) = aos(tmp.path(), &["completions", "tcsh"]);
    assert_eq!(code, 2);
}

#[test]
fn a_sessions_history_reads_as_text() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let d = Daemon::start(&home, None);
    let (_, sid) = common::new_session(&d);
    let (doc, code) = d.call(
        "session.append",
        serde_json::json!({ "sessionId": sid, "message": { "role": "user",
            "parts": [{ "type": "text", "text": "hello there" }] } }),
    );
    assert_eq!(code, 0, "{doc}");
    let (code, out, err) = aos(&home, &["session", "history", &sid, "--format", "text"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("── #1 "), "{out}");
    assert!(
        out.contains("user (human)") && out.contains("hello there\n"),
        "{out}"
    );
    assert!(out.contains("[data-"), "facts are named by kind: {out}");
    assert!(
        out.contains("[data-skill-load: aos]"),
        "and by skill: {out}"
    );
    // The JSON default is unchanged; an unknown session is the daemon's error.
    let (code, out, _) = aos(&home, &["session", "history", &sid]);
    assert_eq!(code, 0);
    assert!(serde_json::from_str::<Value>(&out).is_ok(), "{out}");
    let (code, out, _) = aos(
        &home,
        &[
            "session",
            "history",
            "se_00000000000000000000000000",
            "--format",
            "text",
        ],
    );
    let doc: Value = serde_json::from_str(&out).expect("JSON error");
    assert_eq!(
        (code, &doc["error"]["code"]),
        (1, &"not_found".into()),
        "{doc}"
    );
}

#[test]
fn help_has_examples_exit_statuses_and_the_environment() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (code, out, _) = aos(tmp.path(), &["--help"]);
    assert_eq!(code, 0);
    for needle in [
        "Examples:",
        "aos run",
        "Exit status",
        "AOS_DB_URL",
        "AOS_LLM_BASE_URL",
        "AOS_LOG",
    ] {
        assert!(out.contains(needle), "{needle} in aos --help:\n{out}");
    }
    let (code, out, _) = aos(tmp.path(), &["daemon", "start", "--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Examples:") && out.contains("--port 0"),
        "{out}"
    );
}
