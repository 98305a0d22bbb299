//! Stopping a dispatch from the terminal: Ctrl-C on `aos run` and on
//! `aos send` (waiting or streaming) interrupts the dispatch — its command
//! is killed, the interrupt fact written — and exits 130 with the outcome;
//! the session id is on stderr before anything runs. `aos session interrupt`
//! does the same from another terminal.

mod common;

use common::{AOS, Daemon, history, processes_of, tool_parts};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `aos args` against `d`, its output piped, not waited for.
fn spawn(d: &Daemon, args: &[&str]) -> Child {
    Command::new(AOS)
        .args(args)
        .env("AOS_HOME", &d.home)
        .env_remove("AOS_API_URL")
        .env_remove("AOS_API_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("aos")
}

/// Waits until the session's command `call` runs (its intent written and
/// a process of the session alive).
fn wait_for_command(d: &Daemon, sid: &str, call: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(tool_parts(&history(d, sid))
        .iter()
        .any(|p| p["toolCallId"] == call)
        && processes_of(sid) > 0)
    {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGINT to `child` and collects it: (status, stdout document, stderr).
fn ctrl_c(child: Child) -> (i32, Value, String) {
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on our own child.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(rc, 0);
    let out = child.wait_with_output().expect("output");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), doc, err)
}

/// The interrupt fact and the killed command, in the session's history.
fn assert_interrupted(d: &Daemon, sid: &str, call: &str) {
    let h = history(d, sid);
    let result = tool_parts(&h)
        .into_iter()
        .find(|p| p["toolCallId"] == call && p["state"] != "input-available")
        .expect("the command has its result");
    assert_eq!(result["state"], "output-error", "{result}");
    let fact = h
        .iter()
        .flat_map(|m| m["parts"].as_array().cloned().unwrap_or_default())
        .find(|p| p["type"] == "data-interrupt")
        .expect("the interrupt fact");
    assert!(
        fact["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Ctrl-C") || r.contains("by hand")),
        "{fact}"
    );
    assert_eq!(processes_of(sid), 0, "the command was killed");
}

#[test]
fn ctrl_c_interrupts_the_dispatch_and_exits_130() {
    let rt = common::runtime();
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![
        aos_testkit::Reply::bash("c1", "sleep 60"),
    ]));
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let d = Daemon::start_with_llm(&home, &llm.url());

    // `aos run`: the session is named first; Ctrl-C stops the command.
    let run = spawn(&d, &["run", "sleep a minute"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let sid = loop {
        let sessions = d.ok(&["session", "list"]);
        if let Some(s) = sessions["data"]["sessions"]
            .as_array()
            .and_then(|s| s.first())
        {
            break s["sessionId"].as_str().expect("id").to_string();
        }
        assert!(Instant::now() < deadline, "no session");
        std::thread::sleep(Duration::from_millis(50));
    };
    wait_for_command(&d, &sid, "c1");
    let (code, doc, err) = ctrl_c(run);
    assert_eq!(code, 130, "{doc} {err}");
    assert_eq!(doc["data"]["status"], "interrupted", "{doc}");
    assert_eq!(doc["error"]["code"], "interrupted", "{doc}");
    let first = err.lines().next().unwrap_or_default();
    assert!(first.contains(&sid), "the session comes first: {err}");
    assert_interrupted(&d, &sid, "c1");

    // `aos send --stream` and plain `aos send` alike.
    for (i, extra) in [&["--stream"][..], &[]].iter().enumerate() {
        let call = format!("s{i}");
        llm.push([aos_testkit::Reply::bash(&call, "sleep 60")]);
        let mut args = vec!["send", sid.as_str(), "again"];
        args.extend_from_slice(extra);
        let send = spawn(&d, &args);
        wait_for_command(&d, &sid, &call);
        let (code, doc, err) = ctrl_c(send);
        assert_eq!(
            (code, &doc["data"]["status"]),
            (130, &"interrupted".into()),
            "{doc} {err}"
        );
        assert_eq!(processes_of(&sid), 0, "the command was killed");
    }
}

#[test]
fn session_interrupt_stops_a_dispatch_from_another_terminal() {
    let rt = common::runtime();
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![
        aos_testkit::Reply::bash("c1", "sleep 60"),
        aos_testkit::Reply::text("never"),
    ]));
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let d = Daemon::start_with_llm(&home, &llm.url());
    let (_, sid) = common::new_session(&d);
    let (doc, code) = d.aos(&["send", &sid, "sleep", "--detach"]);
    assert_eq!(code, 0, "{doc}");
    wait_for_command(&d, &sid, "c1");
    let doc = d.ok(&["session", "interrupt", &sid, "--reason", "stopped by hand"]);
    assert_eq!(doc["data"]["interrupted"], true, "{doc}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.ok(&["session", "get", &sid])["data"]["phase"] != "idle" {
        assert!(Instant::now() < deadline, "the session was not freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_interrupted(&d, &sid, "c1");
    // Nothing runs: a clear error, exit 1.
    let (doc, code) = d.aos(&["session", "interrupt", &sid]);
    assert_eq!(
        (code, &doc["error"]["code"]),
        (1, &"session.not_ready".into()),
        "{doc}"
    );
}
