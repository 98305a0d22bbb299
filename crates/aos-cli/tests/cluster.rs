//! Several daemons on one PostgreSQL database (issue 23), each a real `aos`
//! process against a fresh database of the test's own.

mod common;

use common::Daemon;
use serde_json::{Value, json};
use std::time::Duration;

/// A short lease, so a node that stops answering loses its sessions soon.
const TTL_MS: &str = "1500";

fn node(dir: &std::path::Path, name: &str, db: &str, llm: &str) -> Daemon {
    Daemon::launch_env(
        &dir.join(name),
        Some(db),
        &common::skill_roots(),
        &[
            ("AOS_LLM_BASE_URL", llm),
            ("AOS_LEASE_TTL_MS", TTL_MS),
            ("AOS_NODE_ID", name),
        ],
    )
}

fn signal(d: &Daemon, sig: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(d.child.id() as i32);
    nix::sys::signal::kill(pid, sig).expect("signal");
}

/// Polls `f` every 50 ms until it is true or `secs` passed.
fn until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends "run it" to `sid` on node `d` (its model answers with command
/// `c1`) and returns the dispatch's id once the command runs there (its
/// call is in the history).
fn command_running(d: &Daemon, sid: &str) -> String {
    let started = d.ok(&["send", sid, "run it", "--detach"]);
    let id = started["data"]["dispatchId"].as_str().expect("dispatchId");
    until(20, "the node's command runs", || {
        common::tool_parts(&common::history(d, sid))
            .iter()
            .any(|p| p["toolCallId"] == "c1")
    });
    id.to_string()
}

/// A node paused past its lease (SIGSTOP) while its command ran, and the
/// session taken over by another node: when it wakes (SIGCONT), its late
/// write — the command's result — is refused with `lease.expired`, its
/// dispatch fails, and the history shows nothing of it after the takeover.
#[test]
fn a_node_paused_past_its_lease_cannot_write_after_the_takeover() {
    let rt = common::runtime();
    let db = rt.block_on(aos_testkit::fresh_pg_database());
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![
        aos_testkit::Reply::bash("c1", "sleep 2; echo $((6 * 7))-late"),
        aos_testkit::Reply::text("node b answered"),
    ]));
    let tmp = tempfile::tempdir().expect("tmp");
    let a = node(tmp.path(), "node-a", &db, &llm.url());
    let b = node(tmp.path(), "node-b", &db, &llm.url());
    let (_, sid) = common::new_session(&a);

    let dispatch = command_running(&a, &sid);
    signal(&a, nix::sys::signal::Signal::SIGSTOP);
    std::thread::sleep(Duration::from_millis(2_200));

    // Node b takes the session: node a's lease expired.
    let out = b.ok(&["send", &sid, "take over"]);
    assert_eq!(out["data"]["status"], "completed", "{out}");
    let taken_at = common::history(&b, &sid).len();

    signal(&a, nix::sys::signal::Signal::SIGCONT);
    let (ended, _) = a.call(
        "session.wait",
        json!({ "dispatchId": dispatch, "timeoutMs": 30_000 }),
    );
    let outcome = &ended["data"];
    assert_eq!(outcome["status"], "failed", "{ended}");
    assert!(
        outcome["error"].to_string().contains("lease.expired"),
        "{ended}"
    );
    let after: Vec<Value> = common::history(&b, &sid);
    assert_eq!(
        after.len(),
        taken_at,
        "node a wrote after the takeover: {:#?}",
        &after[taken_at.min(after.len())..]
    );
    assert!(
        !serde_json::to_string(&after)
            .expect("json")
            .contains("42-late"),
        "the late result is not in the history"
    );
    let seqs: Vec<i64> = after
        .iter()
        .map(|m| m["metadata"]["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, (1..=after.len() as i64).collect::<Vec<_>>());
}

/// kill -9 of the node running a dispatch: another node takes the session
/// over once the lease expired, without being asked — the open tool call
/// gets an honest unknown-outcome result, the interrupt fact says `node
/// lost`, seq stays gap-free — and the message that node queued meanwhile
/// runs right after (one inbox for the cluster).
#[test]
fn a_killed_nodes_session_is_taken_over_and_the_queue_runs_elsewhere() {
    let rt = common::runtime();
    let db = rt.block_on(aos_testkit::fresh_pg_database());
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![
        aos_testkit::Reply::bash("c1", "sleep 4"),
        aos_testkit::Reply::text("queued one answered"),
    ]));
    let tmp = tempfile::tempdir().expect("tmp");
    let a = node(tmp.path(), "node-a", &db, &llm.url());
    let b = node(tmp.path(), "node-b", &db, &llm.url());
    let (_, sid) = common::new_session(&a);
    command_running(&a, &sid);
    let queued = b.ok(&["send", &sid, "after you", "--queue", "--detach"]);
    assert_eq!(queued["data"]["queued"], true, "{queued}");
    let dispatch = queued["data"]["dispatchId"]
        .as_str()
        .expect("id")
        .to_string();

    let killed = std::time::Instant::now();
    a.kill9();
    let (ended, _) = b.call(
        "session.wait",
        json!({ "dispatchId": dispatch, "timeoutMs": 30_000 }),
    );
    assert_eq!(ended["data"]["status"], "completed", "{ended}");
    // The lease TTL is 1.5 s; the sweep runs every 0.5 s.
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "{:?}",
        killed.elapsed()
    );

    let h = common::history(&b, &sid);
    let c1: Vec<Value> = common::tool_parts(&h)
        .into_iter()
        .filter(|p| p["toolCallId"] == "c1")
        .collect();
    assert_eq!(c1.len(), 2, "the call and its closing: {c1:?}");
    assert_eq!(c1[1]["state"], "output-error");
    assert!(
        c1[1]["errorText"]
            .as_str()
            .expect("text")
            .contains("unknown")
    );
    let fact = h
        .iter()
        .position(|m| m["parts"][0]["type"] == "data-interrupt")
        .expect("the interrupt fact");
    assert_eq!(h[fact]["parts"][0]["data"]["reason"], "node lost");
    let queued_at = h
        .iter()
        .position(|m| m["parts"][0]["text"] == "after you")
        .expect("the queued message");
    assert!(
        fact < queued_at,
        "the queued message runs after the takeover"
    );
    let seqs: Vec<i64> = h
        .iter()
        .map(|m| m["metadata"]["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, (1..=h.len() as i64).collect::<Vec<_>>());
    assert_eq!(b.ok(&["session", "get", &sid])["data"]["phase"], "idle");
}

/// A message queued on one node while another ran the session starts as
/// soon as that node frees it — not only after a later dispatch on the
/// node that queued it.
#[test]
fn a_message_queued_on_one_node_runs_when_another_frees_the_session() {
    let rt = common::runtime();
    let db = rt.block_on(aos_testkit::fresh_pg_database());
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![
        aos_testkit::Reply::bash("c1", "sleep 1"),
        aos_testkit::Reply::text("first done"),
        aos_testkit::Reply::text("second done"),
    ]));
    let tmp = tempfile::tempdir().expect("tmp");
    let a = node(tmp.path(), "node-a", &db, &llm.url());
    let b = node(tmp.path(), "node-b", &db, &llm.url());
    let (_, sid) = common::new_session(&a);
    let first = a.ok(&["send", &sid, "first", "--detach"]);
    let first = first["data"]["dispatchId"]
        .as_str()
        .expect("id")
        .to_string();
    until(20, "the first dispatch runs", || {
        a.ok(&["session", "get", &sid])["data"]["phase"] == "dispatched"
    });
    let queued = b.ok(&["send", &sid, "second", "--queue", "--detach"]);
    assert_eq!(queued["data"]["queued"], true, "{queued}");
    let second = queued["data"]["dispatchId"]
        .as_str()
        .expect("id")
        .to_string();
    let (done, _) = a.call(
        "session.wait",
        json!({ "dispatchId": first, "timeoutMs": 30_000 }),
    );
    assert_eq!(done["data"]["status"], "completed", "{done}");
    let (done, _) = b.call(
        "session.wait",
        json!({ "dispatchId": second, "timeoutMs": 10_000 }),
    );
    assert_eq!(done["data"]["status"], "completed", "{done}");
    assert_eq!(done["data"]["finalText"], "second done", "{done}");
}

/// The SSE events of `d` (`/v1/events?…`), one `(id, name, data)` per
/// event, on a channel, read by a thread of their own.
fn events(
    d: &Daemon,
    query: &str,
    last_id: Option<u64>,
) -> std::sync::mpsc::Receiver<(u64, String, Value)> {
    let mut req = ureq::get(&format!("{}/v1/events?{query}", d.url))
        .set("Authorization", &format!("Bearer {}", d.token()));
    if let Some(id) = last_id {
        req = req.set("Last-Event-ID", &id.to_string());
    }
    let reader = req.call().expect("events").into_reader();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let (mut id, mut name) = (0, String::new());
        for line in std::io::BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse().unwrap_or(0);
            } else if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                let data = serde_json::from_str(v.trim()).unwrap_or(Value::Null);
                if tx.send((id, name.clone(), data)).is_err() {
                    break;
                }
            }
        }
    });
    rx
}

/// Collects events from `rx` until `done` says so (10 s at most).
fn collect(
    rx: &std::sync::mpsc::Receiver<(u64, String, Value)>,
    mut done: impl FnMut(&[(u64, String, Value)]) -> bool,
) -> Vec<(u64, String, Value)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while !done(&seen) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(e) => seen.push(e),
            Err(_) => panic!("timed out; seen: {seen:#?}"),
        }
    }
    seen
}

/// What happens on one node shows on every node's `/v1/events`, with the
/// same ids in the same order, and `Last-Event-ID` taken from one node
/// resumes on another.
#[test]
fn events_on_one_node_show_on_every_node_with_one_order() {
    let rt = common::runtime();
    let db = rt.block_on(aos_testkit::fresh_pg_database());
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![
        aos_testkit::Reply::text("hello from a"),
    ]));
    let tmp = tempfile::tempdir().expect("tmp");
    let a = node(tmp.path(), "node-a", &db, &llm.url());
    let b = node(tmp.path(), "node-b", &db, &llm.url());
    let c = node(tmp.path(), "node-c", &db, &llm.url());
    let on_b = events(&b, "scope=session", None);
    let on_c = events(&c, "scope=session", None);
    let (_, sid) = common::new_session(&a);
    let out = a.ok(&["send", &sid, "hi"]);
    assert_eq!(out["data"]["status"], "completed", "{out}");

    let ended = |seen: &[(u64, String, Value)]| {
        seen.iter()
            .any(|(_, n, d)| n == "dispatch.done" && d["sessionId"] == sid.as_str())
    };
    let mine = |v: Vec<(u64, String, Value)>| -> Vec<(u64, String)> {
        v.into_iter()
            .filter(|(_, _, d)| d["sessionId"] == sid.as_str())
            .map(|(id, n, _)| (id, n))
            .collect()
    };
    let seen_b = mine(collect(&on_b, ended));
    let seen_c = mine(collect(&on_c, ended));
    let names: Vec<&str> = seen_b.iter().map(|(_, n)| n.as_str()).collect();
    for want in ["session.started", "context.ingest", "dispatch.done"] {
        assert!(names.contains(&want), "{want} on node b: {names:?}");
    }
    assert_eq!(seen_b, seen_c, "the same events, ids and order on b and c");
    assert!(seen_b.windows(2).all(|w| w[0].0 < w[1].0), "{seen_b:?}");

    // Resume on node a from an id node b showed: what followed it, no more.
    let (mid, _) = seen_b[seen_b.len() / 2].clone();
    let on_a = events(&a, "scope=session", Some(mid));
    let resumed = mine(collect(&on_a, ended));
    assert_eq!(resumed[..], seen_b[seen_b.len() / 2 + 1..]);
}

/// The node registry: `aos daemon status` lists every daemon sharing the
/// store — alive, lost (`kill -9`: three heartbeats missed) or stopped (a
/// clean stop) — and `/health` answers 200 while the node takes traffic.
#[test]
fn every_node_is_listed_alive_lost_or_stopped() {
    let rt = common::runtime();
    let db = rt.block_on(aos_testkit::fresh_pg_database());
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![]));
    let tmp = tempfile::tempdir().expect("tmp");
    let a = node(tmp.path(), "node-a", &db, &llm.url());
    let b = node(tmp.path(), "node-b", &db, &llm.url());
    let c = node(tmp.path(), "node-c", &db, &llm.url());
    let states = || -> Vec<(String, String, bool)> {
        let status = a.ok(&["daemon", "status"]);
        let mut v: Vec<_> = status["data"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("nodes in {status}"))
            .iter()
            .map(|n| {
                (
                    n["nodeId"].as_str().unwrap_or_default().to_string(),
                    n["state"].as_str().unwrap_or_default().to_string(),
                    n["self"] == true,
                )
            })
            .collect();
        v.sort();
        v
    };
    let row = |id: &str, state: &str, me: bool| (id.to_string(), state.to_string(), me);
    assert_eq!(
        states(),
        vec![
            row("node-a", "alive", true),
            row("node-b", "alive", false),
            row("node-c", "alive", false)
        ]
    );
    b.kill9();
    let (doc, code) = c.aos(&["daemon", "stop"]);
    assert_eq!(code, 0, "{doc}");
    until(15, "node b lost and node c stopped", || {
        states()
            == vec![
                row("node-a", "alive", true),
                row("node-b", "lost", false),
                row("node-c", "stopped", false),
            ]
    });
    let health = ureq::get(&format!("{}/health", a.url))
        .call()
        .expect("health");
    assert_eq!(health.status(), 200);
    let health: Value = health.into_json().expect("json");
    assert_eq!(health["status"], "ok");
}

/// A kill -9 campaign across nodes: writers append to both nodes while each
/// node in turn is killed and restarted on its home; every append that was
/// acknowledged is in the history exactly once, and seq stays gap-free.
#[test]
fn a_kill_9_campaign_across_nodes_loses_no_acknowledged_fact() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let rt = common::runtime();
    let db = rt.block_on(aos_testkit::fresh_pg_database());
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![]));
    let tmp = tempfile::tempdir().expect("tmp");
    let mut nodes = [
        Some(node(tmp.path(), "node-a", &db, &llm.url())),
        Some(node(tmp.path(), "node-b", &db, &llm.url())),
    ];
    let running = |n: &Option<Daemon>| -> (String, String) {
        let d = n.as_ref().expect("running");
        (d.url.clone(), d.token())
    };
    let (_, sid) = common::new_session(nodes[0].as_ref().expect("a"));
    let targets: Arc<Mutex<Vec<(String, String)>>> =
        Arc::new(Mutex::new(nodes.iter().map(running).collect()));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (targets, acked, stop, sid) =
                (targets.clone(), acked.clone(), stop.clone(), sid.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let text = format!("w{w}-{i}");
                    let (url, token) = targets.lock().expect("targets")[(w + i) % 2].clone();
                    let body = json!({ "op": "session.append", "sessionId": sid,
                        "message": { "role": "user", "parts": [{ "type": "text", "text": text }] } });
                    let answer = ureq::post(&format!("{url}/v1/syscall"))
                        .timeout(Duration::from_secs(5))
                        .set("Authorization", &format!("Bearer {token}"))
                        .send_json(body)
                        .ok()
                        .and_then(|r| r.into_json::<Value>().ok());
                    match answer {
                        Some(a) if a["ok"] == true => acked.lock().expect("acked").push(text),
                        // The node is down or restarting: not acknowledged.
                        _ => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        })
        .collect();
    for round in 0..4 {
        std::thread::sleep(Duration::from_millis(400));
        let victim = round % 2;
        let name = ["node-a", "node-b"][victim];
        let killed = nodes[victim].take().expect("running");
        let home = killed.home.clone();
        killed.kill9();
        let _ = std::fs::remove_file(home.join("daemon.json"));
        let back = node(tmp.path(), name, &db, &llm.url());
        targets.lock().expect("targets")[victim] = (back.url.clone(), back.token());
        nodes[victim] = Some(back);
    }
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    let acked = acked.lock().expect("acked").clone();
    assert!(acked.len() > 20, "the writers got through: {}", acked.len());
    let h = common::history(nodes[0].as_ref().expect("a"), &sid);
    let seqs: Vec<i64> = h
        .iter()
        .map(|m| m["metadata"]["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, (1..=h.len() as i64).collect::<Vec<_>>(), "gap-free");
    let texts: Vec<&str> = h
        .iter()
        .filter_map(|m| m["parts"][0]["text"].as_str())
        .collect();
    for t in &acked {
        assert_eq!(
            texts.iter().filter(|x| *x == t).count(),
            1,
            "{t} once in the history"
        );
    }
}

/// A message queued on a node that then dies (`kill -9`) is not left
/// waiting for that node's return: once its heartbeats stop, another node
/// adopts it and runs it when the session is free.
#[test]
fn a_dead_nodes_queued_message_is_adopted_and_runs() {
    let rt = common::runtime();
    let db = rt.block_on(aos_testkit::fresh_pg_database());
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![
        aos_testkit::Reply::bash("c1", "sleep 2"),
        aos_testkit::Reply::text("first done"),
        aos_testkit::Reply::text("adopted one answered"),
    ]));
    let tmp = tempfile::tempdir().expect("tmp");
    let a = node(tmp.path(), "node-a", &db, &llm.url());
    let b = node(tmp.path(), "node-b", &db, &llm.url());
    let (_, sid) = common::new_session(&a);
    let first = a.ok(&["send", &sid, "first", "--detach"]);
    let first = first["data"]["dispatchId"]
        .as_str()
        .expect("id")
        .to_string();
    until(20, "the first dispatch runs", || {
        a.ok(&["session", "get", &sid])["data"]["phase"] == "dispatched"
    });
    let queued = b.ok(&["send", &sid, "queued on b", "--queue", "--detach"]);
    assert_eq!(queued["data"]["queued"], true, "{queued}");
    b.kill9();
    let (done, _) = a.call(
        "session.wait",
        json!({ "dispatchId": first, "timeoutMs": 30_000 }),
    );
    assert_eq!(done["data"]["status"], "completed", "{done}");
    until(15, "the adopted message ran", || {
        let h = common::history(&a, &sid);
        h.iter().any(|m| m["parts"][0]["text"] == "queued on b")
            && h.iter()
                .any(|m| m["parts"][0]["text"] == "adopted one answered")
    });
}

/// A test component's skill with `capabilities.kv` in a root of its own.
fn kv_skill(root: &std::path::Path) {
    let dir = root.join("kvprobe");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(aos_test_artifacts::TEST_GUEST, dir.join("service.wasm")).expect("component");
    std::fs::write(
        dir.join("SKILL.md"),
        "---\nname: kvprobe\ndescription: writes and reads its key-value store\nservice: ./service.wasm\ncapabilities:\n  kv: true\n---\nA probe.\n",
    )
    .expect("SKILL.md");
}

/// `kv.*` called by the kvprobe service on node `d` (`skill.invoke` of the
/// test component's `syscall OP JSON`): its answer's `data`, or the code.
fn kv(d: &Daemon, op: &str, payload: Value) -> Result<Value, String> {
    let args = json!(["syscall", op, payload.to_string()]);
    let (doc, _) = d.call("skill.invoke", json!({ "name": "kvprobe", "args": args }));
    let data = &doc["data"];
    if data["exitCode"] == 0 {
        Ok(serde_json::from_str(data["stdout"].as_str().unwrap_or("null")).unwrap_or(Value::Null))
    } else {
        Err(data["stderr"].as_str().unwrap_or_default().to_string())
    }
}

/// Shared skill state (`capabilities.kv`): what a skill's service writes on
/// one node, the same skill's service for the same owner reads on another
/// node, and after that node restarts; a conditional write that lost the
/// race is refused.
#[test]
fn a_skills_key_value_store_is_shared_across_nodes_and_restarts() {
    let rt = common::runtime();
    let db = rt.block_on(aos_testkit::fresh_pg_database());
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![]));
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    kv_skill(&root);
    let roots = format!("{}:{}", common::skill_roots(), root.display());
    let start = |name: &str| {
        let d = Daemon::launch_env(
            &tmp.path().join(name),
            Some(&db),
            &roots,
            &[
                ("AOS_LLM_BASE_URL", &llm.url()),
                ("AOS_LEASE_TTL_MS", TTL_MS),
                ("AOS_NODE_ID", name),
            ],
        );
        d.ok(&["skill", "start", "kvprobe"]);
        d
    };
    let a = start("node-a");
    let b = start("node-b");
    let put = |d: &Daemon, n: i64, expected: i64| {
        kv(
            d,
            "kv.put",
            json!({ "key": "chain/se_1", "value": { "hops": n }, "expectedRevision": expected }),
        )
    };
    assert_eq!(put(&a, 1, 0).expect("first write")["revision"], 1);
    let got = kv(&b, "kv.get", json!({ "key": "chain/se_1" })).expect("read on b");
    assert_eq!(got["value"], json!({ "hops": 1 }), "{got}");
    assert_eq!(put(&b, 2, 1).expect("b's update")["revision"], 2);
    assert_eq!(
        put(&a, 3, 1).expect_err("a's stale update"),
        "revision.conflict"
    );

    drop(a);
    let _ = std::fs::remove_file(tmp.path().join("node-a").join("daemon.json"));
    let a = start("node-a");
    let got = kv(&a, "kv.get", json!({ "key": "chain/se_1" })).expect("read after restart");
    assert_eq!(got["value"], json!({ "hops": 2 }), "{got}");
}

/// A wake sent from one node is answered on another: the sender's node
/// queued the wake for a session busy on node b and then died; node b adopts
/// the queued wake, runs it, and — finding the chain in `aos-a2a`'s
/// key-value store — sends the answer back to the sender's session.
#[test]
fn a_wake_sent_on_one_node_is_answered_on_another() {
    let rt = common::runtime();
    let db = rt.block_on(aos_testkit::fresh_pg_database());
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![]));
    let tmp = tempfile::tempdir().expect("tmp");
    let a = node(tmp.path(), "node-a", &db, &llm.url());
    let b = node(tmp.path(), "node-b", &db, &llm.url());
    let (_, sa) = common::agent_with_model(&a, "model-a");
    let (_, sb) = common::agent_with_model(&a, "model-b");
    llm.push_for(
        "model-b",
        [
            aos_testkit::Reply::bash("b1", "sleep 3"),
            aos_testkit::Reply::text("b first done"),
            aos_testkit::Reply::text("6 times 7 is 42"),
        ],
    );
    b.ok(&["send", &sb, "work a while", "--detach"]);
    until(20, "b is busy on node b", || {
        common::tool_parts(&common::history(&b, &sb))
            .iter()
            .any(|p| p["toolCallId"] == "b1")
    });
    llm.push_for(
        "model-a",
        [
            aos_testkit::Reply::bash(
                "w1",
                &format!("aos a2a send --to {sb} --wake 'what is 6*7?'"),
            ),
            aos_testkit::Reply::text("asked b"),
            aos_testkit::Reply::text("b says 42"),
        ],
    );
    let out = a.ok(&["send", &sa, "ask b for 6*7"]);
    assert_eq!(out["data"]["finalText"], "asked b", "{out}");
    a.kill9();
    until(30, "a is woken on node b with b's answer", || {
        let h = common::history(&b, &sa);
        h.iter().any(|m| m["parts"][0]["text"] == "b says 42")
    });
    let h = common::history(&b, &sa);
    assert!(
        serde_json::to_string(&h)
            .expect("json")
            .contains("6 times 7 is 42"),
        "the answer is in the sender's session"
    );
}

/// A dispatch running on one node can be followed from another:
/// `session.wait` on node b answers when node a's dispatch ends, and
/// `/v1/dispatch/ID/stream` on node b replays and follows it (its command,
/// the result, the end) through the cluster's event log.
#[test]
fn a_dispatch_on_one_node_streams_from_another() {
    let rt = common::runtime();
    let db = rt.block_on(aos_testkit::fresh_pg_database());
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![
        aos_testkit::Reply::bash("c1", "sleep 1; echo streamed-$((6 * 7))"),
        aos_testkit::Reply::text("done on a"),
    ]));
    let tmp = tempfile::tempdir().expect("tmp");
    let a = node(tmp.path(), "node-a", &db, &llm.url());
    let b = node(tmp.path(), "node-b", &db, &llm.url());
    let (_, sid) = common::new_session(&a);
    let id = command_running(&a, &sid);
    // Waited on from node b: answered when node a's dispatch ends.
    let (ended, _) = b.call(
        "session.wait",
        json!({ "dispatchId": id, "timeoutMs": 20_000 }),
    );
    assert_eq!(ended["data"]["status"], "completed", "{ended}");
    let body = ureq::get(&format!("{}/v1/dispatch/{id}/stream", b.url))
        .set("Authorization", &format!("Bearer {}", b.token()))
        .call()
        .expect("the stream on node b")
        .into_string()
        .expect("text");
    let events: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("event:").map(str::trim))
        .collect();
    assert!(events.contains(&"tool_call"), "{body}");
    assert!(events.contains(&"tool_result"), "{body}");
    assert_eq!(events.last(), Some(&"done"), "{body}");
    assert!(body.contains("streamed-42"), "{body}");
    let (missing, _) = (
        ureq::get(&format!("{}/v1/dispatch/ds_nope/stream", b.url))
            .set("Authorization", &format!("Bearer {}", b.token()))
            .call(),
        (),
    );
    assert!(matches!(missing, Err(ureq::Error::Status(404, _))));
}

/// An acknowledged fact's event is on every node even when its node dies
/// right after the acknowledgement: the append answers only once the event
/// is in the cluster's log.
#[test]
fn an_acknowledged_facts_event_survives_its_node() {
    let rt = common::runtime();
    let db = rt.block_on(aos_testkit::fresh_pg_database());
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![]));
    let tmp = tempfile::tempdir().expect("tmp");
    let a = node(tmp.path(), "node-a", &db, &llm.url());
    let b = node(tmp.path(), "node-b", &db, &llm.url());
    let (_, sid) = common::new_session(&a);
    let on_b = events(&b, &format!("sessionId={sid}"), None);
    let (url, token) = (a.url.clone(), a.token());
    let markers: Vec<String> = (0..5).map(|i| format!("fact-{i}-{sid}")).collect();
    for m in &markers {
        let body = json!({ "op": "session.append", "sessionId": sid,
            "message": { "role": "user", "parts": [{ "type": "text", "text": m }] } });
        let r: Value = ureq::post(&format!("{url}/v1/syscall"))
            .set("Authorization", &format!("Bearer {token}"))
            .send_json(body)
            .expect("append")
            .into_json()
            .expect("json");
        assert_eq!(r["ok"], true, "{r}");
    }
    a.kill9();
    collect(&on_b, |seen| {
        markers.iter().all(|m| {
            seen.iter()
                .any(|(_, n, d)| n == "context.ingest" && d.to_string().contains(m.as_str()))
        })
    });
}

/// Every fact in a session's history has its event on every node — also a
/// fact committed an instant before its node was killed, whose writer never
/// got the answer: the event is written in the fact's own transaction. Eight
/// writers append through node a without pause while it is killed; every
/// message the history holds then shows as `context.ingest` on node b.
#[test]
fn every_committed_fact_has_its_event_though_its_node_died() {
    let rt = common::runtime();
    let db = rt.block_on(aos_testkit::fresh_pg_database());
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![]));
    let tmp = tempfile::tempdir().expect("tmp");
    let a = node(tmp.path(), "node-a", &db, &llm.url());
    let b = node(tmp.path(), "node-b", &db, &llm.url());
    let (_, sid) = common::new_session(&a);
    let on_b = events(&b, &format!("sessionId={sid}"), None);
    let ids = |h: Vec<Value>| -> std::collections::BTreeSet<String> {
        h.iter()
            .map(|m| m["id"].as_str().expect("id").to_string())
            .collect()
    };
    // The bootstrap's messages came before the stream.
    let before = ids(common::history(&a, &sid));
    let (url, token) = (a.url.clone(), a.token());
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (url, token, sid) = (url.clone(), token.clone(), sid.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    let body = json!({ "op": "session.append", "sessionId": sid,
                        "message": { "role": "user", "parts": [{ "type": "text", "text": format!("w{w}-{i}") }] } });
                    let sent = ureq::post(&format!("{url}/v1/syscall"))
                        .set("Authorization", &format!("Bearer {token}"))
                        .send_json(body);
                    if sent.is_err() {
                        return i;
                    }
                }
                unreachable!()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    a.kill9();
    let sent: usize = writers.into_iter().map(|w| w.join().expect("writer")).sum();
    assert!(sent > 50, "the writers were appending ({sent})");
    let history = ids(common::history(&b, &sid));
    let mut missing: std::collections::BTreeSet<String> =
        history.difference(&before).cloned().collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !missing.is_empty() && std::time::Instant::now() < deadline {
        if let Ok((_, name, data)) = on_b.recv_timeout(Duration::from_millis(200))
            && name == "context.ingest"
        {
            let id = data["payload"]["message"]["id"].as_str();
            missing.remove(id.unwrap_or_default());
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} facts have no event: {missing:?}",
        missing.len(),
        history.len()
    );
}

/// A dispatch followed from another node ends when its node dies: the
/// takeover closes the session, and the follower's stream gets `done`,
/// status `interrupted`, instead of keep-alives for ever.
#[test]
fn a_followed_dispatch_ends_when_its_node_dies() {
    let rt = common::runtime();
    let db = rt.block_on(aos_testkit::fresh_pg_database());
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![
        aos_testkit::Reply::bash("c1", "sleep 60"),
    ]));
    let tmp = tempfile::tempdir().expect("tmp");
    let a = node(tmp.path(), "node-a", &db, &llm.url());
    let b = node(tmp.path(), "node-b", &db, &llm.url());
    let (_, sid) = common::new_session(&a);
    let id = command_running(&a, &sid);
    let (url, token) = (b.url.clone(), b.token());
    let follower = std::thread::spawn(move || {
        ureq::get(&format!("{url}/v1/dispatch/{id}/stream"))
            .timeout(Duration::from_secs(30))
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .expect("the stream on node b")
            .into_string()
            .expect("the stream ends")
    });
    std::thread::sleep(Duration::from_millis(300));
    a.kill9();
    let body = follower.join().expect("follower");
    let events: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("event:").map(str::trim))
        .collect();
    assert!(events.contains(&"tool_call"), "{body}");
    assert_eq!(events.last(), Some(&"done"), "{body}");
    let done = body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .next_back()
        .expect("done's data");
    let done: Value = serde_json::from_str(done.trim()).expect("json");
    assert_eq!(done["status"], "interrupted", "{done}");
    assert_eq!(done["error"]["code"], "node.lost", "{done}");
}

/// `session.interrupt` on any node stops a dispatch another node runs (a
/// load balancer sends Ctrl-C of `aos send` anywhere): asked through the
/// cluster's event log, confirmed by the dispatch's end.
#[test]
fn an_interrupt_on_one_node_stops_a_dispatch_on_another() {
    let rt = common::runtime();
    let db = rt.block_on(aos_testkit::fresh_pg_database());
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![
        aos_testkit::Reply::bash("c1", "sleep 60"),
    ]));
    let tmp = tempfile::tempdir().expect("tmp");
    let a = node(tmp.path(), "node-a", &db, &llm.url());
    let b = node(tmp.path(), "node-b", &db, &llm.url());
    let (_, sid) = common::new_session(&a);
    let id = command_running(&a, &sid);
    let asked = std::time::Instant::now();
    let r = b.ok(&["session", "interrupt", &sid]);
    assert_eq!(r["data"]["interrupted"], true, "{r}");
    assert_eq!(r["data"]["nodeId"], "node-a", "{r}");
    assert_eq!(r["data"]["dispatchId"], id.as_str(), "{r}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    let (ended, _) = a.call(
        "session.wait",
        json!({ "dispatchId": id, "timeoutMs": 10_000 }),
    );
    assert_eq!(ended["data"]["status"], "interrupted", "{ended}");
    let h = common::history(&b, &sid);
    assert!(
        h.iter().any(|m| m["parts"][0]["type"] == "data-interrupt"),
        "the interrupt fact"
    );
    until(10, "the session is free", || {
        b.ok(&["session", "get", &sid])["data"]["phase"] == "idle"
    });
    // Nobody runs it now: the same answer as on one node.
    let (again, _) = b.call("session.interrupt", json!({ "sessionId": sid }));
    assert_eq!(again["ok"], false, "{again}");
}
