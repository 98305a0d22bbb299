//! End-to-end: the real `aos` binary on a temp home and a free port, driven
//! with the CLI and raw HTTP, killed with SIGKILL and restarted.

use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

mod common;

use common::{AOS, Daemon, history, processes_of, skill_roots, tool_parts};

fn post(url: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = ureq::post(&format!("{url}/v1/syscall")).set("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let resp = match req.send_string(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport: {e}"),
    };
    let status = resp.status();
    (status, resp.into_json().expect("json"))
}

/// Sends the head of a syscall POST declaring `len` bytes, and a first
/// chunk of them only; returns the server's raw answer.
fn oversized_post(url: &str, token: &str, len: usize) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST /v1/syscall HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).expect("head");
    let _ = tcp.write_all(&vec![b'x'; 64 * 1024]);
    let mut answer = vec![0u8; 4096];
    let n = tcp.read(&mut answer).expect("answer");
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

fn concurrent_appends(daemons: &[&Daemon], sid: &str, n: usize) {
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let home = daemons[i % daemons.len()].home.clone();
            let sid = sid.to_string();
            std::thread::spawn(move || {
                let payload = json!({"sessionId": sid, "message": {"role": "user", "parts": [{"type": "text", "text": format!("m{i}")}]}});
                let out = Command::new(AOS)
                    .args(["call", "session.append", "--payload", &payload.to_string()])
                    .env("AOS_HOME", &home)
                    .env_remove("AOS_API_URL")
                    .env_remove("AOS_API_TOKEN")
                    .output()
                    .expect("run");
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
            })
        })
        .collect();
    for h in handles {
        h.join().expect("join");
    }
}

#[test]
fn a_user_session_on_sqlite_survives_kill_9() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let d = Daemon::start(&home, None);

    let agent = d.ok(&["agent", "create", "--name", "alice"])["data"]["agentId"]
        .as_str()
        .expect("id")
        .to_string();
    let s = d.ok(&["session", "create", "--agent", &agent, "--title", "first"]);
    let sid = s["data"]["sessionId"].as_str().expect("id").to_string();
    assert_eq!(s["data"]["status"], "ready");
    let h = history(&d, &sid);
    assert_eq!(h[0]["parts"][0]["type"], "data-bootstrap");
    assert_eq!(h[1]["parts"][0]["data"]["name"], "aos");
    assert_eq!(h.last().expect("last")["parts"][0]["data"]["phase"], "done");
    let boot = h.len();

    concurrent_appends(&[&d], &sid, 60);
    let h = history(&d, &sid);
    let seqs: Vec<i64> = h
        .iter()
        .map(|m| m["metadata"]["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        (1..=(boot as i64 + 60)).collect::<Vec<_>>(),
        "seq 1..N with no gap"
    );

    // Bad input: clear error, exit 1, nothing changed.
    let before = d.ok(&["session", "get", &sid])["data"].clone();
    for (op, payload, code) in [
        (
            "session.append",
            json!({"sessionId": sid}),
            "request.invalid",
        ),
        (
            "session.append",
            json!({"sessionId": "../x", "message": {"role": "user", "parts": [{"type": "text", "text": "x"}]}}),
            "request.invalid",
        ),
        (
            "session.append",
            json!({"sessionId": sid, "message": {"role": "user", "parts": [{"type": "text", "text": "x"}]}, "expectedRevision": 1}),
            "revision.conflict",
        ),
        ("agent.get", json!({"agentId": "ag_missing"}), "not_found"),
        (
            "skill.load",
            json!({"name": "../../etc", "sessionId": sid}),
            "request.invalid",
        ),
        ("nope.nope", json!({}), "op.unknown"),
    ] {
        let (doc, code_out) = d.call(op, payload);
        assert_eq!(
            (code_out, doc["error"]["code"].as_str()),
            (1, Some(code)),
            "{op}: {doc}"
        );
    }
    assert_eq!(d.ok(&["session", "get", &sid])["data"], before);

    // Raw HTTP: statuses, auth, body limit, metrics.
    let token = d.token();
    assert_eq!(post(&d.url, None, r#"{"op":"system.get"}"#).0, 401);
    assert_eq!(post(&d.url, Some("wrong"), r#"{"op":"system.get"}"#).0, 401);
    assert_eq!(post(&d.url, Some(&token), r#"{"op":"system.get"}"#).0, 200);
    assert_eq!(post(&d.url, Some(&token), "not json").0, 400);
    assert_eq!(
        post(
            &d.url,
            Some(&token),
            r#"{"op":"agent.get","agentId":"ag_x"}"#
        )
        .0,
        404
    );
    let (st, doc) = post(
        &d.url,
        Some(&token),
        &format!(
            r#"{{"op":"session.append","sessionId":"{sid}","message":{{"role":"user","parts":[{{"type":"text","text":"x"}}]}},"expectedRevision":1}}"#
        ),
    );
    assert_eq!(
        (st, doc["error"]["code"].as_str()),
        (409, Some("revision.conflict"))
    );
    // A body over 8 MiB is refused from its declared length, before it is
    // read (a client still sending it may see the connection close).
    let answer = oversized_post(&d.url, &token, 9 * 1024 * 1024);
    assert!(
        answer.starts_with("HTTP/1.1 413") && answer.contains("request.too_large"),
        "{answer}"
    );
    let metrics = ureq::get(&format!("{}/metrics", d.url))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .expect("metrics")
        .into_string()
        .expect("text");
    assert!(
        metrics.contains("aos_syscalls_total{op=\"session.append\",code=\"ok\"} 60"),
        "{metrics}"
    );
    assert!(
        ureq::get(&format!("{}/metrics", d.url)).call().is_err(),
        "metrics need the token"
    );

    // kill -9, restart: identical history, the session still works.
    let before = history(&d, &sid);
    d.kill9();
    let d = Daemon::start(&home, None);
    assert_eq!(history(&d, &sid), before, "nothing acknowledged is lost");
    let r = d.call("session.append", json!({"sessionId": sid, "message": {"role": "user", "parts": [{"type": "text", "text": "after"}]}}));
    assert_eq!(r.1, 0);
    assert_eq!(r.0["data"]["seq"], before.len() as i64 + 1);

    // A second daemon on the same SQLite file refuses to start.
    let other_home = tmp.path().join("other");
    std::fs::create_dir_all(&other_home).expect("mkdir");
    let db = format!("sqlite://{}/aos.db", home.display());
    let out = Command::new(AOS)
        .args(["daemon", "start", "--port", "0", "--home"])
        .arg(&other_home)
        .args(["--db", &db, "--skills", &skill_roots()])
        .env("AOS_LOG", "error")
        .output()
        .expect("second daemon");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("already in use by another daemon"), "{text}");
}

#[test]
fn two_daemons_share_one_postgres() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let db = rt.block_on(aos_testkit::fresh_pg_database());
    let tmp = tempfile::tempdir().expect("tmp");
    let a = Daemon::start(&tmp.path().join("a"), Some(&db));
    let b = Daemon::start(&tmp.path().join("b"), Some(&db));
    let agent = a.ok(&["agent", "create"])["data"]["agentId"]
        .as_str()
        .expect("id")
        .to_string();
    let sid = b.ok(&["session", "create", "--agent", &agent])["data"]["sessionId"]
        .as_str()
        .expect("id")
        .to_string();
    let boot = history(&a, &sid).len() as i64;
    concurrent_appends(&[&a, &b], &sid, 40);
    let seqs: Vec<i64> = history(&a, &sid)
        .iter()
        .map(|m| m["metadata"]["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, (1..=boot + 40).collect::<Vec<_>>());
    a.kill9();
    assert_eq!(
        history(&b, &sid).len() as i64,
        boot + 40,
        "the other daemon serves on"
    );
}

#[test]
fn detach_status_stop_and_events() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let run = |args: &[&str]| {
        let out = Command::new(AOS)
            .args(args)
            .env("AOS_HOME", &home)
            .env("AOS_LOG", "warn")
            .env_remove("AOS_API_TOKEN")
            .env_remove("AOS_API_URL")
            .output()
            .expect("run");
        let doc: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)));
        (doc, out.status.code().unwrap_or(-1))
    };
    let (doc, code) = run(&[
        "daemon",
        "start",
        "--detach",
        "--port",
        "0",
        "--skills",
        &skill_roots(),
    ]);
    assert_eq!(code, 0, "{doc}");
    let url = doc["data"]["url"].as_str().expect("url").to_string();
    let (st, code) = run(&["daemon", "status"]);
    assert_eq!((code, &st["data"]["running"]), (0, &json!(true)));
    let token = std::fs::read_to_string(home.join("token")).expect("token");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(home.join("token"))
            .expect("meta")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the token file is private");

    // Events: subscribe, make an agent, see agent.started.
    let reader = ureq::get(&format!("{url}/v1/events?scope=agent"))
        .set("Authorization", &format!("Bearer {}", token.trim()))
        .call()
        .expect("events")
        .into_reader();
    let (agent_doc, _) = run(&["agent", "create", "--name", "ev"]);
    let agent = agent_doc["data"]["agentId"]
        .as_str()
        .expect("id")
        .to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut saw = false;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        if line.starts_with("data:") && line.contains("agent.started") && line.contains(&agent) {
            saw = true;
            break;
        }
    }
    assert!(saw, "agent.started arrives on /v1/events");

    // A syscall the daemon refuses inside `send`/`run`: its code, exit 1.
    for args in [
        &["send", "se_nope", "x", "--wait"][..],
        &["run", "x", "--agent", "ag_nope"][..],
    ] {
        let (doc, code) = run(args);
        assert_eq!(
            (code, doc["ok"].as_bool(), doc["error"]["code"].as_str()),
            (1, Some(false), Some("not_found")),
            "{args:?}: {doc}"
        );
    }

    let (doc, code) = run(&["daemon", "stop"]);
    assert_eq!(code, 0, "{doc}");
    assert!(!home.join("daemon.json").exists());
    let (st, code) = run(&["daemon", "status"]);
    assert_eq!(
        (code, &st["ok"]),
        (3, &json!(false)),
        "no daemon: exit 3, as for any command that finds none"
    );
    let (doc, code) = run(&["agent", "list"]);
    assert_eq!(
        (code, doc["ok"].as_bool()),
        (3, Some(false)),
        "no daemon: exit 3 with a JSON error"
    );
}

#[test]
fn a_new_skill_from_a_template_runs_in_the_daemon() {
    let tmp = tempfile::tempdir().expect("tmp");
    let skills = tmp.path().join("skills");
    std::fs::create_dir_all(&skills).expect("mkdir");
    let home = tmp.path().join("home");
    let out = Command::new(AOS)
        .args(["skill", "new", "notes", "--template", "command"])
        .current_dir(&skills)
        .env("AOS_HOME", &home)
        .output()
        .expect("new");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The skill depends on the SDK installed once under the home, by path;
    // no copy of the SDK is in the skill.
    let sdk = home.join(format!("sdk/aos-sdk-{}", env!("CARGO_PKG_VERSION")));
    assert!(sdk.join("wit/since_v0.2/kernel.wit").is_file());
    assert!(!skills.join("notes/aos-sdk").exists());
    let manifest = std::fs::read_to_string(skills.join("notes/Cargo.toml")).expect("manifest");
    assert!(
        manifest.contains(&format!("path = {:?}", sdk.display().to_string())),
        "{manifest}"
    );
    // The build goes outside the skill (here: the cache of a test XDG home).
    let cache = aos_testkit::repo_root().join("target/xdg-cache");
    let built = Command::new(skills.join("notes/build.sh"))
        .env_remove("CARGO_TARGET_DIR")
        .env("XDG_CACHE_HOME", &cache)
        .output()
        .expect("build.sh");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    assert!(skills.join("notes/service.wasm").is_file());
    assert!(
        !skills.join("notes/target").exists(),
        "no build output in the skill"
    );
    assert!(
        cache
            .join("aos/skill-builds/notes/wasm32-wasip2/release/notes.wasm")
            .is_file()
    );

    let home = tmp.path().join("home");
    let mut cmd_roots = skills.display().to_string();
    cmd_roots.push(':');
    cmd_roots.push_str(&aos_testkit::builtin_skills().display().to_string());
    let d = Daemon::start_with_skills(&home, &cmd_roots);
    let (doc, code) = d.aos(&["skill", "run", "--json", "notes", "add", "remember", "this"]);
    assert_eq!(
        (code, doc["data"]["stdout"].as_str()),
        (0, Some("noted\n")),
        "{doc}"
    );
    let (doc, _) = d.aos(&["skill", "run", "--json", "notes", "list"]);
    assert_eq!(doc["data"]["stdout"], "remember this\n");
    let (doc, code) = d.aos(&["skill", "run", "--json", "notes", "bogus"]);
    assert_eq!(code, 2, "the command's exit status comes through: {doc}");
    // Without --json: stdin in, the command's own output and status out.
    let (code, out, err) = skill_run_raw(&d, &["notes", "add"], "piped in\n");
    assert_eq!((code, out.as_str(), err.as_str()), (0, "noted\n", ""));
    let (code, out, _) = skill_run_raw(&d, &["notes", "list"], "");
    assert_eq!((code, out.as_str()), (0, "remember this\npiped in\n"));
    let (code, out, err) = skill_run_raw(&d, &["notes", "bogus"], "");
    assert_eq!(
        (code, out.as_str(), err.trim_end()),
        (2, "", "usage: add TEXT | list | clear")
    );

    let started = d.ok(&["skill", "start", "my-guard"]);
    let id = started["data"]["instanceId"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(started["data"]["hooks"], json!(["tool.before"]));
    let list = d.ok(&["call", "service.list"]);
    let mut names: Vec<&str> = list["data"]["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s["skillName"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["aos-a2a", "aos-context", "aos-skill", "my-guard"],
        "the default harness runs from the start: {list}"
    );
    let stopped = d.ok(&["skill", "stop", &id]);
    assert_eq!(stopped["data"]["state"], "stopped");
    let (doc, code) = d.aos(&["skill", "start", "notes", "--owner", "agent:ag_missing"]);
    assert_eq!(
        (code, doc["error"]["code"].as_str()),
        (1, Some("not_found"))
    );
}

#[test]
fn an_agent_works_through_bash_and_survives_a_crash() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![
        aos_testkit::Reply::bash("c1", "aos session get $AOS_SESSION_ID"),
        aos_testkit::Reply::bash("c2", "aos call system.update --payload '{\"maxTurns\": 3}'"),
        aos_testkit::Reply::bash("c3", "rm -rf / --no-preserve-root"),
        aos_testkit::Reply::text("all done"),
    ]));
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let d = Daemon::start_with_llm(&home, &llm.url());
    d.ok(&["skill", "start", "my-guard"]);
    let out = Command::new(AOS)
        .args(["run", "do three things"])
        .env("AOS_HOME", &home)
        .env_remove("AOS_API_URL")
        .env_remove("AOS_API_TOKEN")
        .output()
        .expect("aos run");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(out.status.success(), "{doc}");
    assert_eq!(
        (
            doc["data"]["status"].as_str(),
            doc["data"]["finalText"].as_str()
        ),
        (Some("completed"), Some("all done"))
    );
    let streamed = String::from_utf8_lossy(&out.stderr);
    assert!(
        streamed.contains("$ rm -rf /") && streamed.contains("all done"),
        "the answer streams to stderr: {streamed}"
    );
    let sid = doc["data"]["sessionId"]
        .as_str()
        .expect("session")
        .to_string();
    let tools = tool_parts(&history(&d, &sid));
    let results: Vec<&Value> = tools
        .iter()
        .filter(|p| p["state"] != "input-available")
        .collect();
    let visible = |i: usize| {
        results[i]["output"]["visibleResult"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(
        visible(0).contains("\"ok\":true") && visible(0).contains(&sid),
        "the session token reaches its own session: {}",
        visible(0)
    );
    assert!(
        visible(1).contains("permission.denied"),
        "but not system.update: {}",
        visible(1)
    );
    assert_eq!(
        results[2]["errorText"],
        "rejected by my-guard: blocked: rm -rf /"
    );
    assert_eq!(llm.requests().len(), 4);
    // The default harness: aos-context assembled the context from history.
    let first = llm.requests()[0]["messages"].to_string();
    assert!(
        first.contains("[[AOS-SKILL aos]]") && first.contains("[[AOS-SKILL aos-context]]"),
        "{first}"
    );
    // A late subscriber to the dispatch's stream gets the replay, ending with `done`.
    let token = d.token();
    let sse = ureq::get(&format!(
        "{}/v1/dispatch/{}/stream",
        d.url,
        doc["data"]["dispatchId"].as_str().expect("id")
    ))
    .set("Authorization", &format!("Bearer {token}"))
    .call()
    .expect("stream")
    .into_string()
    .expect("text");
    assert!(
        sse.contains("event: tool_call") && sse.contains("event: tool_result"),
        "{sse}"
    );
    assert!(sse.contains("event: done"), "{sse}");

    // kill -9 in the middle of a command; the restart closes it honestly.
    llm.push([aos_testkit::Reply::bash("c4", "sleep 30")]);
    let (doc, code) = d.aos(&["send", &sid, "sleep now", "--detach"]);
    assert_eq!(code, 0, "{doc}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !tool_parts(&history(&d, &sid))
        .iter()
        .any(|p| p["toolCallId"] == "c4")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    // A message acknowledged as queued behind it is not lost with the daemon.
    let (doc, code) = d.aos(&["send", &sid, "queued behind", "--queue", "--detach"]);
    assert_eq!((code, &doc["data"]["queued"]), (0, &json!(true)), "{doc}");
    llm.push([aos_testkit::Reply::text("queued answer")]);
    assert!(processes_of(&sid) > 0, "the command runs");
    d.kill9();
    assert!(processes_of(&sid) > 0, "and outlives the daemon");
    let d = Daemon::start_with_llm(&home, &llm.url());
    assert_eq!(
        processes_of(&sid),
        0,
        "the restarted daemon killed what was left running"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let h = loop {
        let h = history(&d, &sid);
        if h.iter().any(|m| m["parts"][0]["text"] == "queued answer") {
            break h;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the queued message never ran: {h:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let queued: Vec<&Value> = h
        .iter()
        .filter(|m| m["parts"][0]["text"] == "queued behind")
        .collect();
    assert_eq!(queued.len(), 1, "written once");
    assert_eq!(queued[0]["role"], "user");
    let c4: Vec<Value> = tool_parts(&h)
        .into_iter()
        .filter(|p| p["toolCallId"] == "c4")
        .collect();
    assert_eq!(c4.len(), 2, "{c4:?}");
    assert_eq!(c4[1]["state"], "output-error");
    assert!(
        c4[1]["errorText"]
            .as_str()
            .expect("text")
            .contains("unknown")
    );
    let fact = h
        .iter()
        .rposition(|m| m["parts"][0]["type"] == "data-interrupt")
        .expect("fact");
    assert_eq!(h[fact]["parts"][0]["data"]["reason"], "daemon restart");
    let queued_at = h
        .iter()
        .position(|m| m["parts"][0]["text"] == "queued behind")
        .expect("queued");
    assert!(fact < queued_at, "the queued message runs after recovery");
    assert_eq!(d.ok(&["session", "get", &sid])["data"]["phase"], "idle");
    llm.push([aos_testkit::Reply::text("recovered")]);
    let (doc, code) = d.aos(&["send", &sid, "still there?"]);
    assert_eq!(
        (code, doc["data"]["finalText"].as_str()),
        (0, Some("recovered")),
        "{doc}"
    );
}

#[test]
fn an_agent_compacts_its_own_session_when_the_turn_ends() {
    // Issue 19, item 12: `aos call session.compact` from the agent's bash, as
    // the `aos` skill advises, was always `session.busy`.
    let rt = common::runtime();
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![
        aos_testkit::Reply::bash(
            "c1",
            "aos call session.compact --payload \"{\\\"sessionId\\\": \\\"$AOS_SESSION_ID\\\", \\\"reason\\\": \\\"agent asked\\\"}\"",
        ),
        aos_testkit::Reply::text("THE SUMMARY OF EVERYTHING"),
        aos_testkit::Reply::text("compacted and done"),
    ]));
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let d = Daemon::start_with_llm(&home, &llm.url());
    let (_, sid) = common::new_session(&d);
    let (doc, code) = d.aos(&["send", &sid, "tidy up your context"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["data"]["finalText"], "compacted and done", "{doc}");
    let h = common::history(&d, &sid);
    let text = serde_json::to_string(&h).expect("json");
    assert!(
        text.contains(r#"\"scheduled\":true"#),
        "the command's answer: {text}"
    );
    assert!(
        text.contains(r#""auto":false"#),
        "a requested compaction: {text}"
    );
    assert!(
        text.contains("THE SUMMARY OF EVERYTHING"),
        "the compaction ran: {text}"
    );
    assert!(!text.contains("session.busy"), "{text}");
}

#[test]
fn a_command_result_reaches_the_model_whatever_arrives_while_it_runs() {
    command_result_reaches_the_model(None);
}

#[test]
fn a_command_result_reaches_the_model_whatever_arrives_while_it_runs_on_postgres() {
    let rt = common::runtime();
    let db = rt.block_on(aos_testkit::fresh_pg_database());
    command_result_reaches_the_model(Some(&db));
}

fn command_result_reaches_the_model(db: Option<&str>) {
    // Issue 19, item 1, its three paths: a skill loaded from the agent's own
    // bash; while a later command runs, a human's message appended and
    // another agent's `aos a2a send --silent`.
    let rt = common::runtime();
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(Vec::new()));
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let d = Daemon::launch_env(
        &home,
        db,
        &common::skill_roots(),
        &[("AOS_LLM_BASE_URL", &llm.url())],
    );
    let (_, sid) = common::agent_with_model(&d, "model-a");
    let (_, other) = common::agent_with_model(&d, "model-b");
    llm.push_for(
        "model-a",
        [
            aos_testkit::Reply::bash(
                "c1",
                "aos skill load aos-skill >/dev/null && echo LOADED-OK",
            ),
            aos_testkit::Reply::bash("c2", "sleep 2; echo SLEPT-OK"),
            aos_testkit::Reply::text("done"),
        ],
    );
    llm.push_for(
        "model-b",
        [
            aos_testkit::Reply::bash(
                "b1",
                &format!("aos a2a send --to {sid} --silent 'fyi from b'"),
            ),
            aos_testkit::Reply::text("told a"),
        ],
    );
    let of_a = || -> Vec<Value> {
        llm.requests()
            .into_iter()
            .filter(|r| r["model"] == "model-a")
            .collect()
    };
    let (doc, code) = d.aos(&["send", &sid, "go", "--detach"]);
    assert_eq!(code, 0, "{doc}");
    let dispatch = doc["data"]["dispatchId"]
        .as_str()
        .expect("dispatch")
        .to_string();
    // While `sleep` runs (the second request was made once c1 answered).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while of_a().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no second request");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let msg = json!({"sessionId": sid, "message": {"role": "user", "parts": [{"type": "text", "text": "a human drops in"}]}});
    let (r, code) = d.call("session.append", msg);
    assert_eq!(code, 0, "{r}");
    let (told, code) = d.aos(&["send", &other, "tell a"]);
    assert_eq!(
        (code, told["data"]["finalText"].as_str()),
        (0, Some("told a")),
        "{told}"
    );
    let (w, _) = d.call(
        "session.wait",
        json!({"dispatchId": dispatch, "timeoutMs": 20000}),
    );
    assert_eq!(w["data"]["status"], "completed", "{w}");
    let requests = of_a();
    assert_eq!(requests.len(), 3, "{requests:?}");
    let tool = |req: &Value, id: &str| {
        req["messages"]
            .as_array()
            .and_then(|m| m.iter().find(|x| x["tool_call_id"] == id).cloned())
            .unwrap_or(Value::Null)
    };
    let c1 = tool(&requests[1], "c1").to_string();
    assert!(c1.contains("LOADED-OK"), "{c1}");
    let c2 = tool(&requests[2], "c2").to_string();
    assert!(
        c2.contains("SLEPT-OK"),
        "the sleep ended after both arrived: {c2}"
    );
    let last = requests[2]["messages"].to_string();
    assert!(!last.contains("no result was recorded"), "{last}");
    assert!(last.contains("a human drops in"), "{last}");
    assert!(last.contains("fyi from b"), "{last}");
}

#[test]
fn a_write_whose_answer_was_lost_is_not_repeated_by_its_retry() {
    // Issue 19, item 3: the write commits, the client never gets the answer
    // (its connection dropped, then the daemon was killed); the retry with
    // the same key answers the first result and writes nothing.
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let d = Daemon::start(&home, None);
    let (_, sid) = common::new_session(&d);
    let body = json!({"op": "session.append", "sessionId": sid, "idempotencyKey": "retry-me",
                      "message": {"role": "user", "parts": [{"type": "text", "text": "exactly once"}]}})
    .to_string();
    {
        use std::io::Write;
        let addr = d.url.trim_start_matches("http://").to_string();
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        write!(
            s,
            "POST /v1/syscall HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            d.token(),
            body.len()
        )
        .expect("send");
        // Hang up without reading the answer (after the write had time to
        // commit: a request cut off earlier is cancelled before it writes).
        std::thread::sleep(Duration::from_millis(300));
    }
    let count = |d: &Daemon| {
        common::history(d, &sid)
            .iter()
            .filter(|m| m.to_string().contains("exactly once"))
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count(&d) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first write committed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    d.kill9();
    let d = Daemon::start(&home, None);
    let payload: Value = serde_json::from_str(&body).expect("json");
    let (r, code) = d.call("session.append", payload);
    assert_eq!((code, &r["data"]["replayed"]), (0, &json!(true)), "{r}");
    assert_eq!(count(&d), 1, "written once");
    // The CLI's own writes carry a key of their own: each invocation writes.
    let msg = json!({"sessionId": sid, "message": {"role": "user", "parts": [{"type": "text", "text": "twice on purpose"}]}});
    for _ in 0..2 {
        let (r, code) = d.call("session.append", msg.clone());
        assert_eq!(code, 0, "{r}");
        assert!(r["data"]["replayed"].is_null(), "{r}");
    }
}

/// `aos skill run ARGS` with `stdin` piped in: (status, stdout, stderr).
fn skill_run_raw(d: &Daemon, args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(AOS)
        .args(["skill", "run"])
        .args(args)
        .env("AOS_HOME", &d.home)
        .env_remove("AOS_API_URL")
        .env_remove("AOS_API_TOKEN")
        .env_remove("AOS_SESSION_ID")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("aos");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
