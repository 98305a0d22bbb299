//! The skill templates, built as their README says, run as real services.

mod common;

use aos_types::hook;
use common::{Env, skill};
use serde_json::json;

const GUARD_CAPS: &str = "  hooks: [tool.before]";
const ENGINE_CAPS: &str =
    "  hooks: [context.assemble]\n  syscalls: [session.read]\n  limits: { hookTimeoutMs: 2000 }";
const COMMAND_CAPS: &str = "  fs:\n    - { host: \"$SKILL_DATA\", guest: /state, mode: rw }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_template_rejects_configured_patterns() {
    let e = Env::new(|root| {
        skill(
            root,
            "guard",
            aos_test_artifacts::TEMPLATE_GUARD,
            GUARD_CAPS,
        );
    })
    .await;
    e.start("guard", "system", json!({"blocked": ["sudo "]}))
        .await;
    let call = |c: &str| json!({"args": {"command": c}});
    let err = e
        .admit(hook::TOOL_BEFORE, None, None, call("sudo reboot"))
        .await
        .expect_err("blocked");
    assert!(err.message.contains("blocked: sudo"), "{}", err.message);
    e.admit(hook::TOOL_BEFORE, None, None, call("rm -rf /"))
        .await
        .expect("config replaced the defaults");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_context_engine_template_projects_history() {
    let e = Env::new(|root| {
        skill(
            root,
            "context-engine",
            aos_test_artifacts::TEMPLATE_CONTEXT_ENGINE,
            ENGINE_CAPS,
        );
    })
    .await;
    let (agent, session) = e.session().await;
    e.ok(json!({"op": "session.append", "sessionId": session,
                "message": {"role": "user", "parts": [{"type": "text", "text": "hello engine"}]}}))
        .await;
    e.start("context-engine", &format!("session:{session}"), json!({}))
        .await;
    let ctx = e
        .ok(json!({"op": "session.context.rebuild", "sessionId": session}))
        .await;
    let msgs = ctx["messages"].as_array().expect("messages");
    let last = msgs.last().expect("a message");
    assert_eq!(
        (
            last["wire"]["role"].as_str(),
            last["wire"]["content"].as_str()
        ),
        (Some("user"), Some("hello engine"))
    );
    assert!(
        msgs[0]["wire"]["content"]
            .as_str()
            .expect("text")
            .starts_with("[[AOS-SKILL aos]]"),
        "{ctx}"
    );
    assert!(ctx["estimatedTokens"].as_i64().expect("tokens") > 0);
    // Another session of the same agent has no engine: empty context.
    let s2 = e
        .ok(json!({"op": "session.create", "agentId": agent}))
        .await;
    let ctx = e
        .ok(json!({"op": "session.context.rebuild", "sessionId": s2["sessionId"]}))
        .await;
    assert_eq!(ctx["messages"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_template_keeps_notes_in_its_own_directory() {
    let e = Env::new(|root| {
        skill(
            root,
            "command",
            aos_test_artifacts::TEMPLATE_COMMAND,
            COMMAND_CAPS,
        );
    })
    .await;
    let r = e.invoke("command", &["add", "first", "note"]).await;
    assert_eq!(r["data"]["stdout"], "noted\n", "{r}");
    e.invoke("command", &["add", "second"]).await;
    let r = e.invoke("command", &["list"]).await;
    assert_eq!(r["data"]["stdout"], "first note\nsecond\n");
    let on_disk =
        std::fs::read_to_string(e.home.path().join("skill-data/command/system/notes.txt"))
            .expect("notes");
    assert_eq!(on_disk, "first note\nsecond\n");
    let r = e.invoke("command", &["bogus"]).await;
    assert_eq!(r["data"]["exitCode"], 2);
}
