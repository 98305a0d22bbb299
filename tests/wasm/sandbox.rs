//! The malicious-guest suite: every escape attempt is contained with a clear
//! error, and the daemon keeps serving other sessions meanwhile.

mod common;

use aos_types::hook;
use common::{Env, guest, skill};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn stdout(r: &Value) -> &str {
    r["data"]["stdout"].as_str().unwrap_or("")
}

fn exit(r: &Value) -> i64 {
    r["data"]["exitCode"].as_i64().unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filesystem_is_only_the_preopened_directories() {
    let e = Env::new(|root| {
        let dir = guest(
            root,
            "fs",
            "  fs:\n    - { host: \"$SKILL_DIR/data\", guest: /data, mode: ro }\n    - { host: \"$SKILL_DATA\", guest: /state, mode: rw }",
        );
        std::fs::create_dir_all(dir.join("data")).expect("mkdir");
        std::fs::write(dir.join("data/hello.txt"), "hello from data").expect("write");
        std::fs::write(dir.join("secret.txt"), "outside the preopen").expect("write");
    })
    .await;
    let r = e.invoke("fs", &["read", "/data/hello.txt"]).await;
    assert_eq!((exit(&r), stdout(&r)), (0, "hello from data"));
    for path in [
        "/etc/passwd",
        "/data/../secret.txt",
        "../secret.txt",
        "/state/../../../etc/passwd",
    ] {
        let r = e.invoke("fs", &["read", path]).await;
        assert_eq!(exit(&r), 1, "{path} must not be readable: {r}");
    }
    let r = e.invoke("fs", &["write", "/data/new.txt", "x"]).await;
    assert_eq!(exit(&r), 1, "a read-only preopen refuses writes: {r}");
    assert!(!e.root.path().join("fs/data/new.txt").exists());
    let r = e.invoke("fs", &["write", "/state/note.txt", "kept"]).await;
    assert_eq!(exit(&r), 0, "{r}");
    let written = std::fs::read_to_string(e.home.path().join("skill-data/fs/system/note.txt"))
        .expect("written");
    assert_eq!(written, "kept");
}

/// The error of starting `name` for the system.
async fn start_error(e: &Env, name: &str) -> String {
    let r = e
        .call(json!({"op": "skill.start", "name": name, "owner": "system"}))
        .await;
    assert_eq!(r["ok"], false, "{name} must not start: {r}");
    r["error"]["message"].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_grants_are_resolved_and_refused_when_a_symlink_leads_out() {
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("victim.txt"), "outside").expect("write");
    let out = outside.path().to_path_buf();
    let e = Env::new(|root| {
        // A read-only grant that is a symlink to `/`, and one to a tree
        // outside the skill.
        let dir = guest(
            root,
            "to-root",
            "  fs:\n    - { host: \"$SKILL_DIR/data\", guest: /data, mode: ro }",
        );
        std::os::unix::fs::symlink("/", dir.join("data")).expect("symlink");
        let dir = guest(
            root,
            "to-out",
            "  fs:\n    - { host: \"$SKILL_DIR/data\", guest: /data, mode: ro }",
        );
        std::os::unix::fs::symlink(&out, dir.join("data")).expect("symlink");
        // A symlink to a directory inside the skill is fine; one inside a
        // granted tree cannot be followed out of it.
        let dir = guest(
            root,
            "inside",
            "  fs:\n    - { host: \"$SKILL_DIR/data\", guest: /data, mode: ro }",
        );
        std::fs::create_dir_all(dir.join("real")).expect("mkdir");
        std::fs::write(dir.join("real/ok.txt"), "inside").expect("write");
        std::os::unix::fs::symlink(dir.join("real"), dir.join("data")).expect("symlink");
        std::os::unix::fs::symlink("/etc", dir.join("real/etc")).expect("symlink");
        std::os::unix::fs::symlink(&out, dir.join("real/out")).expect("symlink");
        // A writable data subdirectory that is a symlink elsewhere.
        guest(
            root,
            "data-out",
            "  fs:\n    - { host: \"$SKILL_DATA/out\", guest: /out, mode: rw }",
        );
    })
    .await;
    for name in ["to-root", "to-out"] {
        let msg = start_error(&e, name).await;
        assert!(
            msg.contains("outside") && msg.contains("capabilities.fs[0]"),
            "{name}: {msg}"
        );
        let r = e.invoke(name, &["read", "/data/etc/passwd"]).await;
        assert_eq!(r["ok"], false, "a transient instance is refused too: {r}");
    }
    let r = e.invoke("inside", &["read", "/data/ok.txt"]).await;
    assert_eq!((exit(&r), stdout(&r)), (0, "inside"), "{r}");
    for path in ["/data/etc/passwd", "/data/out/victim.txt"] {
        let r = e.invoke("inside", &["read", path]).await;
        assert_eq!(exit(&r), 1, "{path} leads out of the preopen: {r}");
    }
    let data = e.home.path().join("skill-data/data-out/system");
    std::fs::create_dir_all(&data).expect("mkdir");
    std::os::unix::fs::symlink(outside.path(), data.join("out")).expect("symlink");
    let msg = start_error(&e, "data-out").await;
    assert!(msg.contains("outside"), "{msg}");
    assert_eq!(
        std::fs::read_to_string(outside.path().join("victim.txt")).expect("read"),
        "outside"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skill_data_is_per_owner_and_the_skill_dir_is_read_only() {
    let e = Env::new(|root| {
        guest(
            root,
            "notes",
            "  fs:\n    - { host: \"$SKILL_DATA\", guest: /state, mode: rw }\n    - { host: \"$SKILL_DIR\", guest: /me, mode: ro }",
        );
    })
    .await;
    let (agent, session) = e.session().await;
    let r = e
        .invoke("notes", &["write", "/state/n.txt", "system's"])
        .await;
    assert_eq!(exit(&r), 0, "{r}");
    let r = e
        .call(json!({"op": "skill.invoke", "name": "notes", "sessionId": session, "args": ["write", "/state/n.txt", "session's"]}))
        .await;
    assert_eq!(r["data"]["exitCode"], 0, "{r}");
    let base = e.home.path().join("skill-data/notes");
    let read = |p: &str| std::fs::read_to_string(base.join(p)).expect("read");
    assert_eq!(read("system/n.txt"), "system's");
    assert_eq!(read(&format!("session-{session}/n.txt")), "session's");
    let r = e
        .call(json!({"op": "skill.invoke", "name": "notes", "sessionId": session, "args": ["read", "/state/../system/n.txt"]}))
        .await;
    assert_eq!(
        r["data"]["exitCode"], 1,
        "another owner's data is out of reach: {r}"
    );
    e.start("notes", &format!("agent:{agent}"), json!({})).await;
    let r = e
        .invoke(
            "notes",
            &["write", "/me/SKILL.md", "---\nname: notes\n---\n"],
        )
        .await;
    assert_eq!(exit(&r), 1, "the skill's own directory is read-only: {r}");
    assert!(
        std::fs::read_to_string(e.root.path().join("notes/SKILL.md"))
            .expect("read")
            .contains("test skill notes")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_is_only_the_declared_addresses() {
    let allowed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let denied = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (a, d) = (
        allowed.local_addr().expect("addr"),
        denied.local_addr().expect("addr"),
    );
    let e = Env::new(|root| {
        guest(root, "net", &format!("  net: [\"{a}\"]"));
    })
    .await;
    let r = e.invoke("net", &["connect", &a.to_string()]).await;
    assert_eq!((exit(&r), stdout(&r)), (0, "connected"), "{r}");
    let r = e.invoke("net", &["connect", &d.to_string()]).await;
    assert_eq!(exit(&r), 1, "an undeclared address is refused: {r}");
    let mut denial = Vec::new();
    for _ in 0..50 {
        denial = e.log("capability.denied").await;
        if !denial.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fix = denial
        .first()
        .map(|d| d["data"]["fix"].as_str().unwrap_or("").to_string())
        .unwrap_or_default();
    assert!(
        fix.contains(&format!("add \"{d}\" to capabilities.net")),
        "the RuntimeLog names the fix: {denial:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn net_entries_carry_their_protocol_and_names_resolve_only_when_declared() {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let (t, u) = (
        tcp.local_addr().expect("addr"),
        udp.local_addr().expect("addr"),
    );
    let e = Env::new(|root| {
        guest(root, "tcp-only", &format!("  net: [\"{t}\"]"));
        guest(root, "udp-too", &format!("  net: [\"{t}\", \"udp://{u}\"]"));
    })
    .await;
    // A datagram to an address declared for TCP is refused.
    let r = e.invoke("tcp-only", &["udp", &t.to_string()]).await;
    assert_eq!(exit(&r), 1, "{r}");
    let r = e.invoke("udp-too", &["udp", &t.to_string()]).await;
    assert_eq!(exit(&r), 1, "udp to the TCP entry: {r}");
    let r = e.invoke("udp-too", &["udp", &u.to_string()]).await;
    assert_eq!((exit(&r), stdout(&r)), (0, "sent"), "{r}");
    // Only addresses declared: no name lookup at all.
    let r = e
        .invoke("tcp-only", &["connect", &format!("localhost:{}", t.port())])
        .await;
    assert_eq!(exit(&r), 1, "{r}");
    let r = e.invoke("tcp-only", &["connect", &t.to_string()]).await;
    assert_eq!((exit(&r), stdout(&r)), (0, "connected"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_declared_names_resolve() {
    use std::net::ToSocketAddrs;
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = tcp.local_addr().expect("addr").port();
    // A second name this machine resolves to the listener: its hostname.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("hostname")
        .trim()
        .to_string();
    let resolves = (host.as_str(), port)
        .to_socket_addrs()
        .is_ok_and(|mut a| a.any(|a| a.ip().is_loopback()));
    assert!(
        resolves,
        "the test needs {host} in /etc/hosts as a loopback address"
    );
    let e = Env::new(|root| {
        guest(
            root,
            "named",
            &format!("  net: [\"localhost:{port}\", \"{host}:1\"]"),
        );
        guest(root, "one-name", &format!("  net: [\"localhost:{port}\"]"));
    })
    .await;
    let r = e
        .invoke("one-name", &["connect", &format!("localhost:{port}")])
        .await;
    assert_eq!(
        (exit(&r), stdout(&r)),
        (0, "connected"),
        "a declared name: {r}"
    );
    let r = e
        .invoke("one-name", &["connect", &format!("{host}:{port}")])
        .await;
    assert_eq!(exit(&r), 1, "an undeclared name does not even resolve: {r}");
    assert!(stdout(&r).is_empty());
    // Declared (for another port), it resolves; the connect is then checked.
    let r = e
        .invoke("named", &["connect", &format!("{host}:{port}")])
        .await;
    assert_eq!(exit(&r), 0, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_skill_md_never_widens_a_running_service_and_the_next_start_shows_the_diff() {
    let e = Env::new(|root| {
        guest(root, "widening", "  syscalls: [session.read]");
    })
    .await;
    let id = e.start("widening", "system", json!({})).await;
    let md = e.root.path().join("widening/SKILL.md");
    let text = std::fs::read_to_string(&md).expect("read");
    std::fs::write(
        &md,
        text.replace("[session.read]", "[session.read, system.write]"),
    )
    .expect("write");
    e.ok(json!({"op": "skill.index.refresh"})).await;
    let update = json!({"maxTurns": 3}).to_string();
    let r = e
        .invoke("widening", &["syscall", "system.update", &update])
        .await;
    assert_eq!(
        r["data"]["stderr"], "permission.denied",
        "the running service keeps its grant: {r}"
    );
    e.ok(json!({"op": "skill.stop", "instanceId": id})).await;
    e.start("widening", "system", json!({})).await;
    let changed = e.log("skill.grants.changed").await;
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(
        changed[0]["data"]["diff"]["added"]["syscalls"],
        json!(["system.write"]),
        "{changed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skill_copied_in_just_now_starts_at_once() {
    // Issue 19, item 11: `cp -r … skills/ && aos skill start …` with no
    // watcher run in between.
    let e = Env::new(|_| {}).await;
    guest(e.root.path(), "fresh", "  syscalls: []");
    let id = e.start("fresh", "system", json!({})).await;
    assert_eq!(e.service(&id).await["state"], "running");
    let r = e
        .call(json!({"op": "skill.start", "name": "never-there", "owner": "system"}))
        .await;
    assert_eq!(r["error"]["code"], "skill.not_found", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_listed_environment_variables_are_visible() {
    // cargo sets these for every test process.
    let e = Env::new(|root| {
        guest(root, "env", "  env: [CARGO_PKG_NAME]");
    })
    .await;
    let r = e.invoke("env", &["env", "CARGO_PKG_NAME"]).await;
    assert_eq!((exit(&r), stdout(&r)), (0, env!("CARGO_PKG_NAME")), "{r}");
    for hidden in ["CARGO_MANIFEST_DIR", "PATH", "HOME"] {
        let r = e.invoke("env", &["env", hidden]).await;
        assert_eq!(exit(&r), 1, "{hidden} must not leak: {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syscalls_are_limited_to_the_declared_ones_and_the_owner_scope() {
    let e = Env::new(|root| {
        guest(root, "nosys", "  syscalls: []");
        guest(root, "reader", "  syscalls: [session.read]");
    })
    .await;
    let (_, session) = e.session().await;
    let (_, other) = e.session().await;
    let payload = json!({"sessionId": session}).to_string();
    let r = e
        .invoke("nosys", &["syscall", "session.get", &payload])
        .await;
    assert_eq!(
        (exit(&r), r["data"]["stderr"].as_str()),
        (2, Some("permission.denied")),
        "{r}"
    );
    let denied = e.log("session.get").await;
    let msg = denied[0]["data"]["error"]["message"]
        .as_str()
        .expect("message");
    assert!(
        msg.contains("add \"session.get\" to capabilities.syscalls"),
        "{msg}"
    );
    let r = e
        .invoke("reader", &["syscall", "session.get", &payload])
        .await;
    assert_eq!(exit(&r), 0, "a group grant covers the op: {r}");
    let r = e
        .invoke("reader", &["syscall", "session.append", &payload])
        .await;
    assert_eq!(
        r["data"]["stderr"], "permission.denied",
        "session.read does not grant writes"
    );
    // Scope: a session-owned instance may only touch its own session.
    e.start("reader", &format!("session:{session}"), json!({}))
        .await;
    let r = e
        .call(
            json!({"op": "skill.invoke", "name": "reader", "sessionId": session,
                     "args": ["syscall", "session.get", json!({"sessionId": other}).to_string()]}),
        )
        .await;
    assert_eq!(r["data"]["stderr"], "permission.denied", "{r}");
    let r = e
        .call(json!({"op": "skill.invoke", "name": "reader", "sessionId": session, "args": ["syscall", "session.get", payload]}))
        .await;
    assert_eq!(r["data"]["exitCode"], 0, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_service_cannot_start_above_or_stop_outside_its_scope() {
    let e = Env::new(|root| {
        guest(
            root,
            "climber",
            "  syscalls: [skill.write, skill.read, content.read, session.read]",
        );
    })
    .await;
    let (_, session) = e.session().await;
    let (_, other) = e.session().await;
    let ctx = e.start("aos-context", "system", json!({})).await;
    e.start("climber", &format!("session:{session}"), json!({}))
        .await;
    let run = |args: Value| {
        e.call(json!({"op": "skill.invoke", "name": "climber", "sessionId": session, "args": args}))
    };
    let secret = e
        .ok(json!({"op": "content.put", "sessionId": other, "content": "other agent's secret"}))
        .await;
    let attempts = [
        ("skill.start", json!({"name": "climber", "owner": "system"})),
        ("skill.stop", json!({"instanceId": ctx})),
        ("skill.restart", json!({"instanceId": ctx})),
        ("service.get", json!({"instanceId": ctx})),
        ("content.read", json!({"contentId": secret["contentId"]})),
        ("session.list", json!({})),
    ];
    for (op, payload) in attempts {
        let r = run(json!(["syscall", op, payload.to_string()])).await;
        let denied = r["data"]["stderr"] == "permission.denied";
        let empty = op == "session.list" && !r["data"]["stdout"].to_string().contains(&other);
        assert!(denied || empty, "{op} {payload}: {r}");
    }
    assert_eq!(
        e.service(&ctx).await["state"],
        "running",
        "the system service still runs"
    );
    let r = run(json!([
        "syscall",
        "skill.start",
        json!({"name": "climber", "owner": format!("session:{session}")}).to_string()
    ]))
    .await;
    assert_eq!(r["data"]["exitCode"], 0, "its own level is fine: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loops_and_memory_bombs_are_stopped_while_others_are_served() {
    let e = Env::new(|root| {
        guest(root, "bad", "  hooks: [tool.before, compute.before]\n  limits: { memoryMb: 16, hookTimeoutMs: 1500 }");
    })
    .await;
    let (_, session) = e.session().await;
    e.start("bad", "system", json!({"hooks": ["tool.before", "compute.before"], "do": {"tool.before": "loop", "compute.before": "bomb"}})).await;
    // While a guest spins, another session is served.
    let spinning = {
        let k = e.k.clone();
        tokio::spawn(async move {
            let scope = aos_kernel::hooks::HookScope::default();
            k.hooks()
                .admit(hook::TOOL_BEFORE, scope, &json!({}), json!({}))
                .await
        })
    };
    // Let the guest start spinning.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    e.ok(json!({"op": "session.append", "sessionId": session,
                "message": {"role": "user", "parts": [{"type": "text", "text": "still here"}]}}))
        .await;
    assert!(
        !spinning.is_finished(),
        "served while the guest still spins (append took {:?})",
        t.elapsed()
    );
    let err = spinning
        .await
        .expect("join")
        .expect_err("the loop is interrupted");
    assert!(err.message.contains("deadline"), "{}", err.message);
    let err = e
        .admit(hook::COMPUTE_BEFORE, None, None, json!({}))
        .await
        .expect_err("the bomb is stopped");
    assert!(err.message.contains("memory"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_blocked_in_a_host_call_ends_at_its_deadline() {
    let e = Env::new(|root| {
        guest(
            root,
            "sleeper",
            "  hooks: [tool.before]\n  limits: { hookTimeoutMs: 300 }",
        );
    })
    .await;
    let (agent, session) = e.session().await;
    let bound = Duration::from_secs(10);
    // init blocked in a WASI timer: the start fails in time.
    let t = Instant::now();
    let r = e
        .call(json!({"op": "skill.start", "name": "sleeper", "config": {"do": {"init": "sleep"}}}))
        .await;
    assert_eq!(r["ok"], false, "{r}");
    assert!(t.elapsed() < bound, "skill.start took {:?}", t.elapsed());
    // A hook blocked: the call times out, the instance is replaced.
    let id = e
        .start(
            "sleeper",
            "system",
            json!({"hooks": ["tool.before"], "do": {"tool.before": "sleep", "shutdown": "sleep"}}),
        )
        .await;
    let t = Instant::now();
    let r = e
        .admit(
            hook::TOOL_BEFORE,
            Some(&agent),
            Some(&session),
            json!({"command": "ls"}),
        )
        .await;
    assert!(
        t.elapsed() < bound,
        "the hook took {:?}: {r:?}",
        t.elapsed()
    );
    // shutdown blocked: the stop ends in time.
    let t = Instant::now();
    let r = e.call(json!({"op": "skill.stop", "instanceId": id})).await;
    assert_eq!(r["ok"], true, "{r}");
    assert!(t.elapsed() < bound, "skill.stop took {:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrite_obeys_the_size_limits_of_its_op() {
    let e = Env::new(|root| {
        guest(
            root,
            "inflater",
            "  hooks: [session.message.beforeWrite]\n  limits: { memoryMb: 512, hookTimeoutMs: 5000 }",
        );
    })
    .await;
    let (_, session) = e.session().await;
    e.start(
        "inflater",
        "system",
        json!({"hooks": ["session.message.beforeWrite"], "do": {"session.message.beforeWrite": "inflate"}}),
    )
    .await;
    let r = e
        .call(json!({"op": "session.append", "sessionId": session,
                     "message": {"role": "user", "parts": [{"type": "text", "text": "small"}]}}))
        .await;
    assert_eq!(r["error"]["code"], "hook.rejected", "{r}");
    let msg = r["error"]["message"].as_str().unwrap_or("");
    assert!(msg.contains("8 MiB"), "{msg}");
    let h = e
        .ok(json!({"op": "session.history.list", "sessionId": session, "limit": 100}))
        .await;
    assert!(
        !h.to_string().contains("xxxxxxxx"),
        "nothing of it was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_whose_writes_cause_its_event_stops_at_the_depth_limit() {
    let e = Env::new(|root| {
        guest(
            root,
            "echoer",
            "  hooks: [context.ingest]\n  syscalls: [session.write]",
        );
    })
    .await;
    let (_, session) = e.session().await;
    e.start(
        "echoer",
        "system",
        json!({"events": ["context.ingest"], "do": {"context.ingest": "append"}}),
    )
    .await;
    let count = || async {
        let h = e
            .ok(json!({"op": "session.history.list", "sessionId": session, "limit": 1000}))
            .await;
        h["messages"].as_array().map_or(0, Vec::len)
    };
    let before = count().await;
    e.ok(json!({"op": "session.append", "sessionId": session,
                "message": {"role": "user", "parts": [{"type": "text", "text": "start"}]}}))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = count().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(count().await, settled, "the echo stopped");
    let limit = aos_kernel::hooks::MAX_EVENT_DEPTH as usize;
    let added = settled - before;
    assert!(
        (2..=1 + limit).contains(&added),
        "{added} messages from one append (depth limit {limit})"
    );
}

/// Counts the lines written to it.
#[derive(Clone, Default)]
struct Lines(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.iter().filter(|b| **b == b'\n').count();
        self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread: the subscriber below is this thread's, and so is every task.
#[tokio::test(flavor = "current_thread")]
async fn a_log_flood_is_cut_to_the_rate() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let e = Env::new(|root| {
        guest(root, "spammer", "  limits: { hookTimeoutMs: 5000 }");
    })
    .await;
    let before = lines.0.load(std::sync::atomic::Ordering::Relaxed);
    let r = e.invoke("spammer", &["spam", "20000"]).await;
    assert_eq!(stdout(&r), "logged 20000", "{r}");
    let logged = lines.0.load(std::sync::atomic::Ordering::Relaxed) - before;
    let rate = aos_kernel::services::LINES_PER_SECOND as usize;
    // One call within a few seconds: a few windows' worth, not 20 000.
    assert!(
        logged >= rate / 2 && logged < rate * 10,
        "{logged} lines logged of 20 000"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_in_every_export_is_contained() {
    let caps =
        "  hooks: [tool.before, tool.after, agent.started]\n  limits: { hookTimeoutMs: 300 }";
    let e = Env::new(|root| {
        guest(root, "t", caps);
    })
    .await;
    let r = e
        .call(json!({"op": "skill.start", "name": "t", "config": {"do": {"init": "trap"}}}))
        .await;
    assert_eq!(r["error"]["code"], "service.failed", "init: {r}");
    let r = e
        .call(json!({"op": "skill.start", "name": "t", "config": {"do": {"init": "error"}}}))
        .await;
    assert!(
        r["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("refuses to start"),
        "{r}"
    );
    let id = e
        .start("t", "system", json!({"hooks": ["tool.before", "tool.after"], "events": ["agent.started"], "do": {"*": "trap", "init": "allow"}}))
        .await;
    assert!(
        e.admit(hook::TOOL_BEFORE, None, None, json!({}))
            .await
            .is_err(),
        "admit"
    );
    assert_eq!(
        e.transform(hook::TOOL_AFTER, None, None, json!({"v": 1}))
            .await,
        json!({"v": 1}),
        "transform"
    );
    e.ok(json!({"op": "agent.create"})).await; // on-event traps in the background
    let r = e.invoke("t", &["trap"]).await;
    assert_eq!(r["error"]["code"], "service.failed", "invoke: {r}");
    // Four failures in a row: the service is put in error, its hooks gone.
    assert_eq!(e.service(&id).await["state"], "error");
    let r = e.call(json!({"op": "skill.stop", "instanceId": id})).await;
    assert_eq!(r["error"]["code"], "request.invalid", "{r}");
    // A trap in shutdown still stops the service.
    let id = e
        .start("t", "system", json!({"do": {"shutdown": "trap"}}))
        .await;
    let r = e.ok(json!({"op": "skill.stop", "instanceId": id})).await;
    assert_eq!(r["state"], "stopped", "{r}");
    e.ok(json!({"op": "system.health"})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_guard_blocks_destructive_commands() {
    let e = Env::new(|root| {
        skill(
            root,
            "guard",
            aos_test_artifacts::MY_GUARD,
            "  hooks: [tool.before]",
        );
    })
    .await;
    e.start("guard", "system", json!({})).await;
    let call = |cmd: &str| json!({"args": {"command": cmd}});
    e.admit(hook::TOOL_BEFORE, None, None, call("ls -la"))
        .await
        .expect("ls is fine");
    for bad in ["rm -rf /", "psql -c 'DROP TABLE users'", ":(){ :|:& };:"] {
        let err = e
            .admit(hook::TOOL_BEFORE, None, None, call(bad))
            .await
            .expect_err(bad);
        assert!(err.message.contains("blocked:"), "{bad}: {}", err.message);
    }
}
