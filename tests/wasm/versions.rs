//! Versions of the skill interface: a component built against
//! `aos:kernel@0.1.0` (wit-bindgen alone, hook name and input as parameters)
//! runs unchanged beside one built with the SDK against `0.2.0` (hook
//! index, input fetched on demand), in the same hook chains; a component
//! exporting no known version is refused by name.

mod common;

use aos_types::hook;
use common::{Env, guest, skill};
use serde_json::json;

const OLD_CAPS: &str =
    "  hooks: [tool.before, tool.after, session.started]\n  syscalls: [session.read]";
const NEW_CAPS: &str = "  hooks: [tool.before, tool.after]\n  syscalls: [session.read]";

async fn env() -> Env {
    Env::new(|root| {
        skill(root, "old", aos_test_artifacts::TEST_GUEST_V0_1, OLD_CAPS);
        guest(root, "new", NEW_CAPS);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v0_1_component_gets_hook_name_and_input_beside_a_v0_2_one() {
    let e = env().await;
    let (agent, session) = e.session().await;
    e.start("old", "system", json!({})).await;
    e.start(
        "new",
        "system",
        json!({"hooks": ["tool.before", "tool.after"], "tag": "N", "do": {"tool.before": "rewrite", "tool.after": "rewrite"}}),
    )
    .await;

    let out = |cmd: &str| json!({"args": {"command": cmd}});
    let err = e
        .admit(
            hook::TOOL_BEFORE,
            Some(&agent),
            Some(&session),
            out("forbidden"),
        )
        .await
        .expect_err("the v0.1 guard rejects");
    assert!(
        err.message
            .contains(&format!("v0.1 says no to tool.before in {session}")),
        "the hook's name and input reach a 0.1.0 component: {}",
        err.message
    );

    let v = e
        .admit(
            hook::TOOL_BEFORE,
            Some(&agent),
            Some(&session),
            out("rewrite"),
        )
        .await
        .expect("allowed");
    assert_eq!(v["seenBy"], "v0.1", "{v}");
    assert_eq!(v["rewrittenBy"], "N", "the 0.2.0 handler ran after it: {v}");

    let v = e
        .transform(
            hook::TOOL_AFTER,
            Some(&agent),
            Some(&session),
            json!({"result": "x"}),
        )
        .await;
    assert_eq!(v["transformedBy"], "v0.1", "{v}");
    assert_eq!(v["hook"], "tool.after", "{v}");
    assert_eq!(v["rewrittenBy"], "N", "{v}");
    assert_eq!(v["result"], "x", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v0_1_component_makes_syscalls_receives_events_and_runs_commands() {
    let e = env().await;
    e.start("old", "system", json!({})).await;
    let (agent, session) = e.session().await;
    let out = json!({"args": {"command": "syscall"}});
    e.admit(hook::TOOL_BEFORE, Some(&agent), Some(&session), out.clone())
        .await
        .expect("session.get on a real session succeeds");
    let err = e
        .admit(hook::TOOL_BEFORE, Some(&agent), Some("se_nope"), out)
        .await
        .expect_err("session.get on no session fails");
    assert!(err.message.contains("not_found"), "{}", err.message);

    let r = e.invoke("old", &["echo", "a", "b"]).await;
    assert_eq!(r["data"]["stdout"], "a b", "{r}");
    // Events arrive asynchronously.
    for _ in 0..100 {
        let r = e.invoke("old", &["events"]).await;
        if r["data"]["stdout"]
            .as_str()
            .is_some_and(|s| s.contains("session.started"))
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the 0.1.0 component never received session.started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v0_2_handler_fetches_the_input_when_it_reads_it() {
    let e = env().await;
    let (agent, session) = e.session().await;
    e.start(
        "new",
        "system",
        json!({"hooks": ["tool.before"], "do": {"tool.before": "syscall"}}),
    )
    .await;
    let out = json!({"args": {"command": "ls"}});
    e.admit(hook::TOOL_BEFORE, Some(&agent), Some(&session), out.clone())
        .await
        .expect("the handler read the sessionId of its input");
    let err = e
        .admit(hook::TOOL_BEFORE, Some(&agent), Some("se_nope"), out)
        .await
        .expect_err("another input, another answer");
    assert!(err.message.contains("not_found"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_of_no_known_version_is_refused_by_name() {
    let e = Env::new(|root| {
        // The smallest valid component (preamble only: component encoding
        // 0x0d, layer 1): it imports and exports nothing.
        let dir = root.join("alien");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("service.wasm"), b"\0asm\x0d\0\x01\0").expect("write");
        std::fs::write(
            dir.join("SKILL.md"),
            "---\nname: alien\ndescription: no service export\nservice: ./service.wasm\n---\nAlien.\n",
        )
        .expect("write");
    })
    .await;
    let r = e
        .call(json!({"op": "skill.start", "name": "alien", "owner": "system"}))
        .await;
    assert_eq!(r["ok"], false, "{r}");
    let msg = r["error"]["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("exports neither `aos:kernel/service@0.2.0` nor `aos:kernel/service@0.1.0`")
            && msg.contains("it exports: nothing"),
        "{msg}"
    );
}
