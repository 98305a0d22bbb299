//! The Rust subprocess service through the shim: its guard, its transform,
//! a syscall from inside a hook, events, commands and its exit status, on
//! a real kernel over a real socket.

#[path = "../../../tests/uds/common/mod.rs"]
mod common;

use aos_types::hook;
use common::Env;
use serde_json::json;

const EXAMPLE: &str = env!("CARGO_BIN_EXE_aos-uds-example");

async fn env(caps: &str) -> Env {
    let binary = std::fs::read(EXAMPLE).expect("the example binary");
    let caps = caps.to_string();
    Env::new(move |root| {
        common::skill(root, "rs-svc", "service", &binary, &caps);
    })
    .await
}

const CAPS: &str =
    "  hooks: [tool.before, tool.after, session.dispatch.after]\n  syscalls: [session.get]";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_service_guards_transforms_and_calls_the_kernel() {
    let e = env(CAPS).await;
    let v = e.start("rs-svc", "system").await;
    assert_eq!(v["hooks"], json!(["tool.before", "tool.after"]));
    assert_eq!(v["events"], json!(["session.dispatch.after"]));
    let (agent, sid) = e.session().await;
    let s = (agent.as_str(), sid.as_str());

    let err = e
        .admit(
            hook::TOOL_BEFORE,
            s,
            json!({"args": {"command": "echo x; DROP TABLE users"}}),
        )
        .await
        .expect_err("blocked");
    assert!(
        err.message.contains("blocked: DROP TABLE"),
        "{}",
        err.message
    );
    let ok = e
        .admit(hook::TOOL_BEFORE, s, json!({"args": {"command": "ls"}}))
        .await;
    assert_eq!(ok.ok(), Some(json!({"args": {"command": "ls"}})));
    // `session.get` from inside the hook, with the skill's grant.
    let out = e
        .admit(
            hook::TOOL_BEFORE,
            s,
            json!({"args": {"command": "#whoami"}}),
        )
        .await;
    assert_eq!(
        out.ok(),
        Some(json!({"args": {"command": "echo session title: the test session"}}))
    );

    let out = e
        .transform(hook::TOOL_AFTER, s, json!({"result": "raw"}))
        .await;
    assert_eq!(out, json!({"result": "raw\n[checked by aos-uds-example]"}));

    let r = e
        .ok(json!({"op": "skill.invoke", "name": "rs-svc", "args": ["echo", "a", "b"]}))
        .await;
    assert_eq!(
        (r["exitCode"].clone(), r["stdout"].clone()),
        (json!(0), json!("a b"))
    );
    let r = e
        .ok(json!({"op": "skill.invoke", "name": "rs-svc", "args": ["fail"]}))
        .await;
    assert_eq!(
        (r["exitCode"].clone(), r["stderr"].clone()),
        (json!(3), json!("failed as asked"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_syscall_grant_the_hook_fails_and_names_the_fix() {
    let e = env("  hooks: [tool.before, tool.after, session.dispatch.after]").await;
    e.start("rs-svc", "system").await;
    let (agent, sid) = e.session().await;
    let err = e
        .admit(
            hook::TOOL_BEFORE,
            (&agent, &sid),
            json!({"args": {"command": "#whoami"}}),
        )
        .await
        .expect_err("denied");
    assert!(err.message.contains("permission.denied"), "{}", err.message);
    assert!(
        err.message.contains("capabilities.syscalls"),
        "{}",
        err.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_owned_instance_sees_only_its_session() {
    let e = env(CAPS).await;
    let (agent, sid) = e.session().await;
    let (_, other) = e.session().await;
    let v = e.start("rs-svc", &format!("session:{sid}")).await;
    assert_eq!(v["ownerType"], "session");
    // Its own session is guarded; another session is not.
    let rm = json!({"args": {"command": "rm -rf /"}});
    assert!(
        e.admit(hook::TOOL_BEFORE, (&agent, &sid), rm.clone())
            .await
            .is_err()
    );
    let other_agent = e.ok(json!({"op": "session.get", "sessionId": other})).await["agentId"]
        .as_str()
        .expect("agent")
        .to_string();
    assert!(
        e.admit(hook::TOOL_BEFORE, (&other_agent, &other), rm)
            .await
            .is_ok()
    );
    // Stopping it stops the process.
    let pid = v["pid"].as_u64().expect("pid");
    e.ok(json!({"op": "skill.stop", "instanceId": v["instanceId"]}))
        .await;
    common::wait_gone(pid).await;
}
