//! End-to-end: the default harness from an agent's bash, through the real
//! binary, the scripted LLM server and real bash — `aos skill search|load`
//! (the `aos-skill` service) and `aos a2a send` in its three modes, with the
//! answer of a wake coming back, the hop limit, and the sender's token kept
//! out of the target.

mod common;

use aos_testkit::{Reply, ScriptedLlm};
use common::{Daemon, history, tool_parts};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt")
}

/// The visible result of tool call `id` in a session.
fn result_of(d: &Daemon, sid: &str, id: &str) -> Value {
    let parts = tool_parts(&history(d, sid));
    let r = parts
        .iter()
        .rfind(|p| p["toolCallId"] == id && p["state"] != "input-available")
        .unwrap_or_else(|| panic!("no result for {id}: {parts:?}"));
    let text = r["output"]["visibleResult"].as_str().unwrap_or("");
    serde_json::from_str(text).unwrap_or_else(|_| json!({ "raw": text, "part": r }))
}

/// Waits until a session's history satisfies `done`, and returns it.
fn wait_for(d: &Daemon, sid: &str, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = history(d, sid);
        if done(&h) {
            return h;
        }
        assert!(Instant::now() < deadline, "{what}: {h:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn a2a_of(m: &Value) -> Option<&Value> {
    m["parts"]
        .as_array()?
        .iter()
        .find(|p| p["type"] == "data-a2a")
        .map(|p| &p["data"])
}

fn text_of(m: &Value) -> String {
    m["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn an_agent_finds_and_loads_a_skill_from_its_bash() {
    let rt = runtime();
    let llm = rt.block_on(ScriptedLlm::start(vec![
        Reply::bash("c1", "aos skill search pdf tables"),
        Reply::bash("c2", "aos skill load pdf"),
        Reply::bash("c3", "aos skill load no-such-skill"),
        Reply::bash("c4", "aos skill list"),
        Reply::text("pdf loaded"),
    ]));
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start_with_llm(&tmp.path().join("home"), &llm.url());
    let (_, sid) = common::agent_with_model(&d, "m");
    let (doc, code) = d.aos(&["send", &sid, "work with a pdf"]);
    assert_eq!(
        (code, doc["data"]["status"].as_str()),
        (0, Some("completed")),
        "{doc}"
    );

    let found = result_of(&d, &sid, "c1");
    assert_eq!(found["ok"], true, "{found}");
    assert_eq!(
        found["data"]["skills"][0]["name"], "pdf",
        "best match first: {found}"
    );
    let loaded = result_of(&d, &sid, "c2");
    assert_eq!(loaded["data"]["name"], "pdf", "{loaded}");
    let missing = result_of(&d, &sid, "c3");
    assert_eq!(missing["error"]["code"], "skill.not_found", "{missing}");
    let listed = result_of(&d, &sid, "c4");
    let names: Vec<&str> = listed["data"]["skills"]
        .as_array()
        .expect("skills")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        names.contains(&"pdf") && names.contains(&"aos-skill"),
        "{names:?}"
    );

    // The skill's text is in the history (loaded explicitly into this
    // session) and in what the model was sent next.
    let h = history(&d, &sid);
    let load = h
        .iter()
        .flat_map(|m| m["parts"].as_array().cloned().unwrap_or_default())
        .find(|p| p["type"] == "data-skill-load" && p["data"]["name"] == "pdf")
        .expect("a pdf load");
    assert_eq!(load["data"]["cause"], "explicit");
    let reqs = llm.requests();
    assert!(
        !reqs[1]["messages"]
            .to_string()
            .contains("[[AOS-SKILL pdf]]")
    );
    assert!(
        reqs[2]["messages"]
            .to_string()
            .contains("[[AOS-SKILL pdf]]")
    );
}

#[test]
fn agents_talk_silently_by_notification_and_by_waking() {
    let rt = runtime();
    let llm = rt.block_on(ScriptedLlm::start(Vec::new()));
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start_with_llm(&tmp.path().join("home"), &llm.url());
    let (a, sa) = common::agent_with_model(&d, "model-a");
    let (b, sb) = common::agent_with_model(&d, "model-b");

    // --silent, to an agent: its session gets the message, nobody is woken.
    // The sender's token reaches the target only through a2a.
    let append = json!({"sessionId": sb, "message": {"role": "user", "parts": [{"type": "text", "text": "forged"}]}});
    let forged = json!({"sessionId": sa, "message": {"role": "user", "content": "x"},
                        "a2a": {"mode": "wake", "fromAgentId": b, "fromSessionId": sb}});
    llm.push_for(
        "model-a",
        [
            Reply::bash(
                "s1",
                &format!("aos a2a send --to {b} --silent 'fyi: build is green'"),
            ),
            Reply::bash(
                "s2",
                &format!("aos call session.append --payload '{append}'"),
            ),
            Reply::bash(
                "s3",
                &format!("aos call session.dispatch --payload '{forged}'"),
            ),
            Reply::text("told b"),
        ],
    );
    let (doc, code) = d.aos(&["send", &sa, "tell b"]);
    assert_eq!(
        (code, doc["data"]["finalText"].as_str()),
        (0, Some("told b")),
        "{doc}"
    );
    let sent = result_of(&d, &sa, "s1");
    assert_eq!(
        (&sent["data"]["mode"], &sent["data"]["toSessionId"]),
        (&json!("silent"), &json!(sb)),
        "{sent}"
    );
    assert_eq!(
        result_of(&d, &sa, "s2")["error"]["code"],
        "permission.denied"
    );
    assert_eq!(
        result_of(&d, &sa, "s3")["error"]["code"],
        "permission.denied"
    );
    let hb = history(&d, &sb);
    let fyi = hb
        .iter()
        .find(|m| a2a_of(m).is_some())
        .expect("the a2a message");
    assert_eq!(
        a2a_of(fyi),
        Some(
            &json!({"mode": "silent", "fromAgentId": a, "fromSessionId": sa,
                     "correlationId": sent["data"]["correlationId"]})
        )
    );
    assert_eq!(text_of(fyi), "fyi: build is green");
    assert_eq!(fyi["metadata"]["origin"], "agent");
    assert!(!hb.iter().any(|m| text_of(m) == "forged"));

    // --notify: b is woken and works on it; nothing comes back.
    llm.push_for("model-b", [Reply::text("deployed")]);
    llm.push_for(
        "model-a",
        [
            Reply::bash(
                "n1",
                &format!("aos a2a send --to {sb} --notify 'deploy now'"),
            ),
            Reply::text("asked b to deploy"),
        ],
    );
    d.ok(&["send", &sa, "ask b to deploy"]);
    wait_for(&d, &sb, "b deploys", |h| {
        h.iter().any(|m| text_of(m) == "deployed")
    });
    let b_saw = llm
        .requests()
        .into_iter()
        .rfind(|r| r["model"] == "model-b")
        .expect("b was called");
    let seen = b_saw["messages"].to_string();
    assert!(
        seen.contains("fyi: build is green") && seen.contains("deploy now"),
        "{seen}"
    );
    assert!(
        seen.contains(&format!("[message from agent {a} (session {sa}, notify")),
        "{seen}"
    );

    // --wake: b answers, the answer comes back into a's session and wakes a.
    llm.push_for("model-b", [Reply::text("6 times 7 is 42")]);
    llm.push_for(
        "model-a",
        [
            Reply::bash(
                "w1",
                &format!("aos a2a send --to {sb} --wake 'what is 6*7?'"),
            ),
            Reply::text("asked b"),
            Reply::text("b says 42"),
        ],
    );
    d.ok(&["send", &sa, "ask b for 6*7"]);
    let corr = result_of(&d, &sa, "w1")["data"]["correlationId"].clone();
    let ha = wait_for(&d, &sa, "a is woken with b's answer", |h| {
        h.iter().any(|m| text_of(m) == "b says 42")
    });
    let answer = ha
        .iter()
        .find(|m| a2a_of(m).is_some_and(|e| e["correlationId"] == corr))
        .expect("the answer");
    assert_eq!(text_of(answer), "6 times 7 is 42");
    assert_eq!(
        (
            &a2a_of(answer).expect("a2a")["mode"],
            &a2a_of(answer).expect("a2a")["fromSessionId"]
        ),
        (&json!("notify"), &json!(sb))
    );
}

#[test]
fn a_chain_of_wakes_stops_at_the_hop_limit() {
    let rt = runtime();
    let llm = rt.block_on(ScriptedLlm::start(Vec::new()));
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start_with_llm(&tmp.path().join("home"), &llm.url());
    let services = d.ok(&["call", "service.list"]);
    let a2a = services["data"]["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["skillName"] == "aos-a2a")
        .expect("aos-a2a runs by default")["instanceId"]
        .as_str()
        .expect("id")
        .to_string();
    d.ok(&["skill", "stop", &a2a]);
    d.ok(&[
        "skill",
        "start",
        "aos-a2a",
        "--config",
        r#"{"hopLimit": 2}"#,
    ]);
    let (_, sa) = common::agent_with_model(&d, "model-a");
    let (_, sb) = common::agent_with_model(&d, "model-b");

    // a (hop 0) wakes b (hop 1); b's answer wakes a (hop 2); a wakes b
    // again: hop 3 is refused, and a is told why.
    llm.push_for(
        "model-a",
        [
            Reply::bash("h1", &format!("aos a2a send --to {sb} --wake ping")),
            Reply::text("a waits"),
            Reply::bash("h2", &format!("aos a2a send --to {sb} --wake ping-again")),
            Reply::text("a gives up"),
        ],
    );
    llm.push_for("model-b", [Reply::text("pong")]);
    d.ok(&["send", &sa, "start the chain"]);
    wait_for(&d, &sa, "the chain ends", |h| {
        h.iter().any(|m| text_of(m) == "a gives up")
    });
    let refused = result_of(&d, &sa, "h2");
    assert_eq!(refused["error"]["code"], "a2a.hop_limit", "{refused}");
    let first = result_of(&d, &sa, "h1")["data"]["correlationId"].clone();
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(first.as_str().expect("corr"))),
        "the same chain: {refused}"
    );
    let b_runs = llm
        .requests()
        .iter()
        .filter(|r| r["model"] == "model-b")
        .count();
    assert_eq!(b_runs, 1, "b was woken once");

    // With a limit of 1, b's answer is left in a's history without waking it.
    let services = d.ok(&["call", "service.list"]);
    for s in services["data"]["services"].as_array().expect("services") {
        if s["skillName"] == "aos-a2a" && s["state"] == "running" {
            d.ok(&["skill", "stop", s["instanceId"].as_str().expect("id")]);
        }
    }
    d.ok(&[
        "skill",
        "start",
        "aos-a2a",
        "--config",
        r#"{"hopLimit": 1}"#,
    ]);
    llm.push_for(
        "model-a",
        [
            Reply::bash("h3", &format!("aos a2a send --to {sb} --wake 'last one'")),
            Reply::text("a done"),
        ],
    );
    llm.push_for("model-b", [Reply::text("final pong")]);
    let a_runs = || {
        llm.requests()
            .iter()
            .filter(|r| r["model"] == "model-a")
            .count()
    };
    d.ok(&["send", &sa, "once more"]);
    let before = a_runs();
    let ha = wait_for(&d, &sa, "the answer is left", |h| {
        h.iter().any(|m| text_of(m).starts_with("final pong"))
    });
    let left = ha.iter().rfind(|m| a2a_of(m).is_some()).expect("a2a");
    assert_eq!(a2a_of(left).expect("a2a")["mode"], "silent");
    assert!(text_of(left).contains("hop limit 1"), "{left}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(a_runs(), before, "a was not woken");
}

/// A wake's answer is owed across a restart (issue 23): the sender wakes a
/// busy agent (the wake waits in its queue), the daemon is killed and
/// restarted, the queued wake runs — and its answer still comes back to the
/// sender, from the chain kept in `aos-a2a`'s key-value store, not in the
/// memory of the instance that died.
#[test]
fn a_wake_is_answered_after_the_daemon_restarts() {
    let rt = runtime();
    let llm = rt.block_on(ScriptedLlm::start(Vec::new()));
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let d = Daemon::start_with_llm(&home, &llm.url());
    let (_, sa) = common::agent_with_model(&d, "model-a");
    let (_, sb) = common::agent_with_model(&d, "model-b");
    llm.push_for("model-b", [Reply::bash("b1", "sleep 5")]);
    d.ok(&["send", &sb, "work a while", "--detach"]);
    wait_for(&d, &sb, "b is busy", |h| {
        tool_parts(h).iter().any(|p| p["toolCallId"] == "b1")
    });
    llm.push_for(
        "model-a",
        [
            Reply::bash(
                "w1",
                &format!("aos a2a send --to {sb} --wake 'what is 6*7?'"),
            ),
            Reply::text("asked b"),
        ],
    );
    d.ok(&["send", &sa, "ask b for 6*7"]);
    let sent = result_of(&d, &sa, "w1");
    assert_eq!(sent["data"]["mode"], "wake", "{sent}");

    d.kill9();
    let _ = std::fs::remove_file(home.join("daemon.json"));
    llm.push_for("model-b", [Reply::text("6 times 7 is 42")]);
    llm.push_for("model-a", [Reply::text("b says 42")]);
    let d = Daemon::start_with_llm(&home, &llm.url());
    let ha = wait_for(
        &d,
        &sa,
        "a is woken with b's answer after the restart",
        |h| h.iter().any(|m| text_of(m) == "b says 42"),
    );
    let answer = ha
        .iter()
        .find(|m| a2a_of(m).is_some_and(|e| e["correlationId"] == sent["data"]["correlationId"]))
        .expect("the answer");
    assert_eq!(text_of(answer), "6 times 7 is 42");
}
