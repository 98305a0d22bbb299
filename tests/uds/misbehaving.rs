//! Services that misbehave, each contained: the daemon keeps serving, the
//! failure is recorded, the process (and what it forked) is gone.

mod common;

use aos_types::hook;
use common::{Env, alive, wait_gone};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

const RAW: &str = include_str!("services/raw.py");

/// A raw-protocol service misbehaving as `mode`.
fn raw(root: &Path, name: &str, mode: &str, caps: &str) {
    let dir = common::python(root, name, RAW, caps);
    std::fs::write(dir.join("mode"), mode).expect("mode");
}

/// A deadline no loaded CI machine misses for a Python answer.
const GUARD: &str = "  hooks: [tool.before]\n  limits: { hookTimeoutMs: 5000 }";
/// A short deadline, for the tests about deadlines.
const SHORT: &str = "  hooks: [tool.before]\n  limits: { hookTimeoutMs: 500 }";

async fn env(mode: &str) -> Env {
    Env::new(|root| raw(root, "svc", mode, GUARD)).await
}

async fn env_short(mode: &str) -> Env {
    Env::new(|root| raw(root, "svc", mode, SHORT)).await
}

/// `skill.start` fails with `service.failed`; returns the message.
async fn start_fails(e: &Env) -> String {
    let r = e.call(json!({"op": "skill.start", "name": "svc"})).await;
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"]["code"], "service.failed", "{r}");
    let none = e.ok(json!({"op": "service.list"})).await;
    assert_eq!(none["services"], json!([]), "nothing is left registered");
    r["error"]["message"].as_str().unwrap_or("").to_string()
}

/// The daemon still serves: a session can be created and read.
async fn still_serves(e: &Env) {
    let (_, sid) = e.session().await;
    e.ok(json!({"op": "session.get", "sessionId": sid})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_never_registers_is_killed_at_the_deadline() {
    for mode in ["never-connects", "never-registers"] {
        let e = env(mode).await;
        let t = Instant::now();
        let msg = start_fails(&e).await;
        assert!(msg.contains("within 3s"), "{mode}: {msg}");
        assert!(
            t.elapsed() < Duration::from_secs(6),
            "{mode}: {:?}",
            t.elapsed()
        );
        still_serves(&e).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_outside_the_grant_or_the_owner_level_stop_the_start() {
    // Not declared in capabilities.hooks.
    let e = Env::new(|root| raw(root, "svc", "out-of-scope", GUARD)).await;
    let r = e.call(json!({"op": "skill.start", "name": "svc"})).await;
    assert_eq!(r["error"]["code"], "permission.denied", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("capabilities.hooks"),
        "{r}"
    );
    // Declared, but only a system-owned service may gate the skill index.
    let caps = "  hooks: [tool.before, skill.index.refresh.before]";
    let e = Env::new(|root| raw(root, "svc", "out-of-scope", caps)).await;
    let (_, sid) = e.session().await;
    let r = e
        .call(json!({"op": "skill.start", "name": "svc", "owner": format!("session:{sid}")}))
        .await;
    assert_eq!(r["error"]["code"], "permission.denied", "{r}");
    assert_eq!(
        e.ok(json!({"op": "service.list"})).await["services"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_lines_are_answered_with_errors_and_the_service_keeps_serving() {
    let e = env("garbage").await;
    let v = e.start("svc", "system").await;
    let (agent, sid) = e.session().await;
    for _ in 0..3 {
        let out = e
            .admit(
                hook::TOOL_BEFORE,
                (&agent, &sid),
                json!({"args": {"command": "ls"}}),
            )
            .await;
        assert!(out.is_ok(), "{out:?}");
    }
    // Nine malformed lines so far: under the limit of 16.
    assert_eq!(
        e.service(v["instanceId"].as_str().expect("id")).await["state"],
        "running"
    );
    // Past the limit, the service is killed.
    for _ in 0..3 {
        let _ = e
            .admit(
                hook::TOOL_BEFORE,
                (&agent, &sid),
                json!({"args": {"command": "ls"}}),
            )
            .await;
    }
    let v = e
        .wait_state(v["instanceId"].as_str().expect("id"), "error")
        .await;
    assert!(
        v["error"].as_str().unwrap_or("").contains("malformed"),
        "{v}"
    );
    still_serves(&e).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_line_kills_the_service_with_bounded_memory() {
    let e = env("huge-line").await;
    let v = e.start("svc", "system").await;
    let id = v["instanceId"].as_str().expect("id");
    let v = e.wait_state(id, "error").await;
    assert!(
        v["error"].as_str().unwrap_or("").contains("byte limit"),
        "{v}"
    );
    wait_gone(v["pid"].as_u64().expect("pid")).await;
    let exited = e.log("service.exited").await;
    assert_eq!(exited.len(), 1, "{exited:?}");
    still_serves(&e).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_with_a_wrong_id_or_after_the_deadline_is_dropped() {
    let e = env_short("wrong-id").await;
    e.start("svc", "system").await;
    let (agent, sid) = e.session().await;
    let t = Instant::now();
    let err = e
        .admit(
            hook::TOOL_BEFORE,
            (&agent, &sid),
            json!({"args": {"command": "ls"}}),
        )
        .await
        .expect_err("no answer for the call");
    assert!(
        t.elapsed() >= Duration::from_millis(450),
        "{:?}",
        t.elapsed()
    );
    assert!(err.message.contains("deadline"), "{}", err.message);
    assert!(
        !err.message.contains("wrong"),
        "the stray answer was used: {}",
        err.message
    );

    let e = env_short("late").await;
    let v = e.start("svc", "system").await;
    let (agent, sid) = e.session().await;
    let err = e
        .admit(
            hook::TOOL_BEFORE,
            (&agent, &sid),
            json!({"args": {"command": "ls"}}),
        )
        .await
        .expect_err("late");
    assert!(err.message.contains("deadline"), "{}", err.message);
    // The late rejection arrives while nothing waits for it: dropped.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let out = e
        .admit(
            hook::TOOL_BEFORE,
            (&agent, &sid),
            json!({"args": {"command": "ls"}}),
        )
        .await;
    assert!(out.is_ok(), "{out:?}");
    assert_eq!(
        e.service(v["instanceId"].as_str().expect("id")).await["state"],
        "running"
    );
    assert_eq!(e.log("hook.failed").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_forks_and_dies_leaves_nothing_running() {
    let e = env("fork-and-die").await;
    let v = e.start("svc", "system").await;
    let id = v["instanceId"].as_str().expect("id");
    let v = e.wait_state(id, "error").await;
    assert!(
        v["error"].as_str().unwrap_or("").contains("exit status: 7"),
        "{v}"
    );
    let child: u64 = std::fs::read_to_string(e.root.path().join("svc/child.pid"))
        .expect("child pid")
        .trim()
        .parse()
        .expect("pid");
    wait_gone(child).await;
    // Its hooks were unregistered and `service.error` fired.
    let (agent, sid) = e.session().await;
    assert!(
        e.admit(
            hook::TOOL_BEFORE,
            (&agent, &sid),
            json!({"args": {"command": "ls"}})
        )
        .await
        .is_ok()
    );
    still_serves(&e).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_exiting_during_a_hook_fails_the_call_at_once() {
    let caps = "  hooks: [tool.before]\n  limits: { hookTimeoutMs: 8000 }";
    let e = Env::new(|root| raw(root, "svc", "exit-in-hook", caps)).await;
    let v = e.start("svc", "system").await;
    let (agent, sid) = e.session().await;
    let t = Instant::now();
    let err = e
        .admit(
            hook::TOOL_BEFORE,
            (&agent, &sid),
            json!({"args": {"command": "ls"}}),
        )
        .await
        .expect_err("exited");
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "not at the deadline: {:?}",
        t.elapsed()
    );
    assert!(!err.message.contains("deadline"), "{}", err.message);
    assert_eq!(err.code.as_str(), "hook.rejected");
    let v = e
        .wait_state(v["instanceId"].as_str().expect("id"), "error")
        .await;
    assert!(
        v["error"].as_str().unwrap_or("").contains("exit status: 3"),
        "{v}"
    );
    assert_eq!(v["restarts"], 0);
    // Recorded even though the failed call marked it `error` first.
    let mut exited = Vec::new();
    for _ in 0..100 {
        exited = e.log("service.exited").await;
        if !exited.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(exited.len(), 1, "{exited:?}");
    // No restart policy: it stays down.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let running = e
        .ok(json!({"op": "service.list", "state": "running"}))
        .await;
    assert_eq!(running["services"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_on_failure_starts_a_successor_up_to_the_limit() {
    let caps = "  hooks: [tool.before]\n  limits: { hookTimeoutMs: 500, restart: on-failure, maxRestarts: 2 }";
    let e = Env::new(|root| raw(root, "svc", "crash-restart", caps)).await;
    e.start("svc", "system").await;
    let (agent, sid) = e.session().await;
    for restarts in 1..=2 {
        let _ = e
            .admit(
                hook::TOOL_BEFORE,
                (&agent, &sid),
                json!({"args": {"command": "ls"}}),
            )
            .await;
        let mut found = None;
        for _ in 0..100 {
            let r = e
                .ok(json!({"op": "service.list", "state": "running"}))
                .await;
            if let Some(s) = r["services"].as_array().and_then(|s| s.first()).cloned()
                && s["restarts"] == restarts
            {
                found = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(found.is_some(), "no successor #{restarts}");
    }
    // The third crash is past maxRestarts: nothing runs.
    let _ = e
        .admit(
            hook::TOOL_BEFORE,
            (&agent, &sid),
            json!({"args": {"command": "ls"}}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let r = e.ok(json!({"op": "service.list"})).await;
    let states: Vec<_> = r["services"]
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["state"].clone())
        .collect();
    assert_eq!(states, vec![json!("error"); 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_ignores_shutdown_is_killed_after_the_grace() {
    let e = env("ignores-shutdown").await;
    let v = e.start("svc", "system").await;
    let pid = v["pid"].as_u64().expect("pid");
    let t = Instant::now();
    let stopped = e
        .ok(json!({"op": "skill.stop", "instanceId": v["instanceId"]}))
        .await;
    // The test grace is 1 s.
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(stopped["state"], "stopped");
    assert!(!alive(pid));
    assert!(e.log("service.exited").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_hangs_up_but_keeps_running_is_killed() {
    let e = env("closes-socket").await;
    let v = e.start("svc", "system").await;
    let v = e
        .wait_state(v["instanceId"].as_str().expect("id"), "error")
        .await;
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("closed its socket but kept running"),
        "{v}"
    );
    wait_gone(v["pid"].as_u64().expect("pid")).await;
    still_serves(&e).await;
}

/// This process's resident memory, in MiB.
fn rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

async fn pid_in(e: &Env) -> u64 {
    let path = e.root.path().join("svc/child.pid");
    for _ in 0..200 {
        if let Ok(t) = std::fs::read_to_string(&path)
            && let Ok(pid) = t.trim().parse()
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no child.pid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setsid_child_dies_with_its_service() {
    let e = env("setsid-child").await;
    let v = e.start("svc", "system").await;
    let child = pid_in(&e).await;
    assert!(alive(child), "the setsid child runs while the service does");
    let id = v["instanceId"].as_str().expect("id");
    e.ok(json!({"op": "skill.stop", "instanceId": id})).await;
    wait_gone(child).await;
    still_serves(&e).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syscall_flood_that_reads_no_answer_is_bounded_and_killed() {
    let config = aos_uds_shim::UdsConfig {
        write_deadline: Duration::from_secs(2),
        ..common::quick()
    };
    let e = Env::with(
        |root| {
            raw(
                root,
                "svc",
                "syscall-flood",
                "  hooks: [tool.before]\n  syscalls: [skill.read]",
            )
        },
        config,
        Default::default(),
    )
    .await;
    let before = rss_mb();
    let v = e.start("svc", "system").await;
    let id = v["instanceId"].as_str().expect("id");
    let v = e.wait_state(id, "error").await;
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("read nothing from its socket"),
        "{v}"
    );
    let grown = rss_mb().saturating_sub(before);
    assert!(grown < 300, "{grown} MiB more for an unread flood");
    still_serves(&e).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_without_newlines_is_dropped_not_kept() {
    let e = env("stdout-flood").await;
    let before = rss_mb();
    let v = e.start("svc", "system").await;
    let (agent, sid) = e.session().await;
    // It answers hooks after writing 300 MiB without a newline.
    let mut answered = false;
    for _ in 0..100 {
        if e.admit(
            hook::TOOL_BEFORE,
            (&agent, &sid),
            json!({"args": {"command": "ls"}}),
        )
        .await
        .is_ok()
        {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered, "the service kept serving");
    let grown = rss_mb().saturating_sub(before);
    assert!(
        grown < 150,
        "{grown} MiB more for 300 MiB of output without a newline"
    );
    assert_eq!(
        e.service(v["instanceId"].as_str().expect("id")).await["state"],
        "running"
    );
}
