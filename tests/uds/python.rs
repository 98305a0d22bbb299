//! Python services through the shim, on the real `aos_sdk`: the seed
//! README's `my-guard` verbatim inside a real dispatch, transform hooks,
//! events, syscalls from inside a hook (granted and denied), commands, a
//! `kill -9` mid-hook and a clean shutdown.

mod common;

use aos_testkit::{Reply, ScriptedLlm};
use aos_types::hook;
use common::{Env, SEED_MY_GUARD, python, quick};
use serde_json::{Value, json};
use std::time::Duration;

const SDK_SERVICE: &str = include_str!("services/sdk_service.py");
const SDK_CAPS: &str = "  hooks: [tool.before, tool.after, session.dispatch.after, service.error]\n  syscalls: [session.get]\n  limits: { hookTimeoutMs: 5000 }";

/// The tool results the model saw in its last request.
fn tool_results(llm: &ScriptedLlm) -> Vec<String> {
    let requests = llm.requests();
    let last = requests.last().expect("a request");
    last["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["role"] == "tool")
        .filter_map(|m| m["content"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn the_fixture_is_the_seed_readme_verbatim() {
    let seed =
        std::fs::read_to_string(aos_testkit::repo_root().join("../shared/seed/agentos-readme.txt"))
            .expect("the seed README beside the repository");
    let start = seed
        .find("from aos_sdk import define_service")
        .expect("start");
    let end_marker = "return {'hooks': {'tool.before': guard}}";
    let end = seed[start..].find(end_marker).expect("end") + start + end_marker.len();
    assert_eq!(SEED_MY_GUARD.trim_end(), &seed[start..end]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_my_guard_rejects_rm_rf_inside_a_real_dispatch() {
    let llm = ScriptedLlm::start(vec![
        Reply::bash("call_1", "rm -rf / --no-preserve-root"),
        Reply::bash("call_2", "echo still-here"),
        Reply::text("done"),
    ])
    .await;
    let e = Env::with(
        |root| {
            python(root, "my-guard", SEED_MY_GUARD, "  hooks: [tool.before]");
        },
        quick(),
        llm.config(1),
    )
    .await;
    let v = e.start("my-guard", "system").await;
    assert_eq!(v["kind"], "legacy");
    assert_eq!(v["state"], "running");
    assert_eq!(v["hooks"], json!(["tool.before"]));
    let (_, sid) = e.session().await;
    e.dispatch(&sid, "clean up").await;
    let results = tool_results(&llm);
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results[0].contains("blocked: rm -rf /"), "{}", results[0]);
    assert!(results[1].contains("still-here"), "{}", results[1]);
    assert_eq!(
        e.service(v["instanceId"].as_str().expect("id")).await["state"],
        "running"
    );
}

async fn sdk_env(llm: Option<&ScriptedLlm>) -> Env {
    Env::with(
        |root| {
            python(root, "py-svc", SDK_SERVICE, SDK_CAPS);
        },
        quick(),
        llm.map(|l| l.config(1)).unwrap_or_default(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_syscalls_events_and_commands() {
    let llm =
        ScriptedLlm::start(vec![Reply::bash("call_1", "echo hello"), Reply::text("ok")]).await;
    let e = sdk_env(Some(&llm)).await;
    let v = e.start("py-svc", "system").await;
    let id = v["instanceId"].as_str().expect("id").to_string();
    assert_eq!(v["hooks"], json!(["tool.before", "tool.after"]));
    assert_eq!(
        v["events"],
        json!(["session.dispatch.after", "service.error"])
    );
    assert!(v["pid"].as_u64().is_some(), "{v}");
    let (agent, sid) = e.session().await;
    let s = (agent.as_str(), sid.as_str());

    // A syscall from inside the hook, with the skill's own grant.
    let out = e
        .admit(hook::TOOL_BEFORE, s, json!({"args": {"command": "#title"}}))
        .await;
    assert_eq!(
        out.ok(),
        Some(json!({"args": {"command": "echo title: the test session"}}))
    );
    // One it was not granted: the service sees the denial, naming the fix.
    let err = e
        .admit(
            hook::TOOL_BEFORE,
            s,
            json!({"args": {"command": "#denied"}}),
        )
        .await;
    let err = err.expect_err("rejected");
    assert_eq!(err.code.as_str(), "hook.rejected");
    assert!(err.message.contains("permission.denied"), "{}", err.message);
    assert!(
        err.message.contains("capabilities.syscalls"),
        "{}",
        err.message
    );
    // `None` allows unchanged.
    let out = e
        .admit(hook::TOOL_BEFORE, s, json!({"args": {"command": "ls"}}))
        .await;
    assert_eq!(out.ok(), Some(json!({"args": {"command": "ls"}})));
    // A handler that raises fails the admission.
    let err = e
        .admit(hook::TOOL_BEFORE, s, json!({"args": {"command": "#raise"}}))
        .await;
    assert!(err.expect_err("raised").message.contains("asked to fail"));

    // A transform rewriting a tool result, inside a real dispatch.
    let dispatch = e.dispatch(&sid, "say hello").await;
    let results = tool_results(&llm);
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(results[0].starts_with("HELLO"), "{results:?}");

    // The dispatch's `session.dispatch.after` event reached the service.
    let mut events = String::new();
    for _ in 0..100 {
        let r = e
            .ok(json!({"op": "skill.invoke", "name": "py-svc", "args": ["events"]}))
            .await;
        events = r["stdout"].as_str().unwrap_or("").to_string();
        if events == dispatch {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(events, dispatch, "the events the service saw");

    // Commands: stdin, exit code, stderr; the caller.
    let r = e
        .ok(json!({"op": "skill.invoke", "name": "py-svc", "args": ["stdin"], "stdin": "piped"}))
        .await;
    assert_eq!(
        (
            r["exitCode"].clone(),
            r["stdout"].clone(),
            r["stderr"].clone()
        ),
        (json!(4), json!("piped"), json!("to stderr"))
    );
    let r = e
        .ok(json!({"op": "skill.invoke", "name": "py-svc", "args": ["caller"], "sessionId": sid}))
        .await;
    let caller: Value = serde_json::from_str(r["stdout"].as_str().expect("stdout")).expect("json");
    assert_eq!(caller["principal"], "operator");
    assert_eq!(caller["sessionId"], sid.as_str());
    assert_eq!(e.service(&id).await["state"], "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_hook_fails_the_call_and_marks_the_service_error() {
    let e = sdk_env(None).await;
    let v = e.start("py-svc", "system").await;
    let id = v["instanceId"].as_str().expect("id").to_string();
    let pid = v["pid"].as_u64().expect("pid");
    let (agent, sid) = e.session().await;
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("kill");
    });
    let started = std::time::Instant::now();
    let err = e
        .admit(
            hook::TOOL_BEFORE,
            (&agent, &sid),
            json!({"args": {"command": "#sleep 30"}}),
        )
        .await
        .expect_err("the service died");
    killer.await.expect("killer");
    // Failed when the process died, not at the 5 s deadline.
    assert!(!err.message.contains("deadline"), "{}", err.message);
    assert!(
        started.elapsed() < Duration::from_millis(4500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.code.as_str(), "hook.rejected");
    let v = e.wait_state(&id, "error").await;
    assert!(
        v["error"].as_str().unwrap_or("").contains("signal: 9"),
        "{v}"
    );
    // Its hooks are gone: the operation is no longer gated by it.
    let out = e
        .admit(
            hook::TOOL_BEFORE,
            (&agent, &sid),
            json!({"args": {"command": "#raise"}}),
        )
        .await;
    assert!(out.is_ok(), "{out:?}");
    // The exit is recorded when the process is reaped, which can come just
    // after the failed call marked the instance `error`.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while e.log("service.exited").await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no service.exited entry"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let errors = e.log("hook.failed").await;
    assert!(!errors.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_service_runs_its_shutdown_handler_and_exits() {
    let e = sdk_env(None).await;
    let marker = e.home.path().join("shutdown-marker");
    let v = e
        .ok(json!({"op": "skill.start", "name": "py-svc", "config": {"shutdownMarker": marker}}))
        .await;
    let pid = v["pid"].as_u64().expect("pid");
    let r = e
        .ok(json!({"op": "skill.invoke", "name": "py-svc", "args": ["config"]}))
        .await;
    assert!(
        r["stdout"]
            .as_str()
            .unwrap_or("")
            .contains("shutdownMarker"),
        "{r}"
    );
    let stopped = e
        .ok(json!({"op": "skill.stop", "instanceId": v["instanceId"]}))
        .await;
    assert_eq!(stopped["state"], "stopped");
    common::wait_gone(pid).await;
    assert_eq!(
        std::fs::read_to_string(&marker).ok().as_deref(),
        Some("clean")
    );
    assert!(
        e.log("service.exited").await.is_empty(),
        "a requested stop is no crash"
    );
    // The socket is gone from $AOS_HOME/run.
    let left: Vec<_> = std::fs::read_dir(e.home.path().join("run"))
        .expect("run")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_is_announced_as_service_error_to_subscribers() {
    let e = Env::new(|root| {
        python(root, "py-svc", SDK_SERVICE, SDK_CAPS);
        let dir = python(
            root,
            "crasher",
            include_str!("services/raw.py"),
            "  hooks: [tool.before]",
        );
        std::fs::write(dir.join("mode"), "exit-in-hook").expect("mode");
    })
    .await;
    e.start("py-svc", "system").await;
    let crasher = e.start("crasher", "system").await;
    let (agent, sid) = e.session().await;
    // py-svc answers first (same level, earlier registration) and allows.
    let err = e
        .admit(
            hook::TOOL_BEFORE,
            (&agent, &sid),
            json!({"args": {"command": "ls"}}),
        )
        .await;
    assert!(err.is_err(), "the crasher exited in the hook");
    e.wait_state(crasher["instanceId"].as_str().expect("id"), "error")
        .await;
    let mut seen = String::new();
    for _ in 0..100 {
        let r = e
            .ok(json!({"op": "skill.invoke", "name": "py-svc", "args": ["errors"]}))
            .await;
        seen = r["stdout"].as_str().unwrap_or("").to_string();
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen.starts_with("crasher: "), "{seen:?}");
    assert!(seen.contains("exit status: 3"), "{seen:?}");
}

/// The seed README's `my-guard/SKILL.md`, verbatim (no `capabilities:`).
fn seed_skill_md() -> String {
    let seed =
        std::fs::read_to_string(aos_testkit::repo_root().join("../shared/seed/agentos-readme.txt"))
            .expect("the seed README beside the repository");
    let start = seed.find("---\nname: my-guard").expect("start");
    let end_marker = "rejects destructive patterns.";
    let end = seed[start..].find(end_marker).expect("end") + start + end_marker.len();
    format!("{}\n", &seed[start..end])
}

fn seed_skill(root: &std::path::Path) {
    let dir = root.join("my-guard");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("service.py"), SEED_MY_GUARD).expect("service");
    std::fs::write(dir.join("SKILL.md"), seed_skill_md()).expect("SKILL.md");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_skill_runs_unchanged_and_is_told_what_to_declare() {
    // Issue 19, item 10: the original project's skill, both files verbatim.
    assert!(!seed_skill_md().contains("capabilities"));
    let e = Env::new(seed_skill).await;
    let v = e.start("my-guard", "system").await;
    assert_eq!(v["state"], "running", "{v}");
    let (agent, sid) = e.session().await;
    let r = e
        .admit(
            hook::TOOL_BEFORE,
            (&agent, &sid),
            json!({"args": {"command": "rm -rf / --no-preserve-root"}}),
        )
        .await;
    let err = r.expect_err("rejected");
    assert!(err.message.contains("blocked: rm -rf /"), "{}", err.message);
    let warned = e.log("skill.capabilities.missing").await;
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0]["data"]["add"]
            .as_str()
            .unwrap_or("")
            .contains("hooks: [tool.before]"),
        "{warned:?}"
    );
    // The operator's strict setting refuses it instead.
    let strict = aos_kernel::AoscbDefaults {
        legacy_services: Some("strict".into()),
        ..Default::default()
    };
    let e = Env::with_defaults(seed_skill, quick(), Default::default(), strict).await;
    let r = e
        .call(json!({"op": "skill.start", "name": "my-guard"}))
        .await;
    assert_eq!(r["error"]["code"], "permission.denied", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("legacyServices"),
        "{r}"
    );
}
