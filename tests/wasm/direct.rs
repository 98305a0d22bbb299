//! Direct calls: a component that imports nothing that can wait is called
//! on the caller's stack, with the same answers, limits and containment as
//! one called on a fiber; a component that can wait (a syscall import, a
//! 0.1.0 component) keeps its fiber. `service.list` says which is which.

mod common;

use aos_types::hook;
use common::{Env, guest, skill};
use serde_json::{Value, json};

const CAPS: &str = "  hooks: [tool.before, tool.after, session.started]\n  limits: { memoryMb: 16, hookTimeoutMs: 300 }";

async fn env() -> Env {
    Env::new(|root| {
        skill(root, "direct", aos_test_artifacts::TEST_GUEST_DIRECT, CAPS);
        skill(
            root,
            "guard",
            aos_test_artifacts::MY_GUARD,
            "  hooks: [tool.before]",
        );
        guest(
            root,
            "waits",
            "  hooks: [tool.before]\n  syscalls: [session.read]",
        );
        skill(
            root,
            "old",
            aos_test_artifacts::TEST_GUEST_V0_1,
            "  hooks: [tool.before, tool.after, session.started]\n  syscalls: [session.read]",
        );
    })
    .await
}

fn act(what: &str) -> Value {
    json!({"do": what})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_components_that_cannot_wait_are_called_directly() {
    let e = env().await;
    let mut runtime = std::collections::HashMap::new();
    for name in ["direct", "guard", "waits", "old"] {
        let id = e.start(name, "system", json!({})).await;
        runtime.insert(name, e.service(&id).await["runtime"].clone());
    }
    let expect = [
        ("direct", "0.2.0", "direct"),
        ("guard", "0.2.0", "direct"),
        ("waits", "0.2.0", "fiber"),
        ("old", "0.1.0", "fiber"),
    ];
    for (name, version, calls) in expect {
        let r = &runtime[name];
        assert_eq!(
            (&r["interface"], &r["calls"]),
            (&json!(format!("aos:kernel@{version}")), &json!(calls)),
            "{name}: {r}"
        );
        assert!(
            r["memoryBytes"].as_u64().is_some_and(|m| m > 0),
            "{name}: {r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_component_answers_every_kind_of_call() {
    let e = env().await;
    let id = e.start("direct", "system", json!({})).await;
    let (agent, session) = e.session().await;

    // Writes to stdout and stderr on the way (synchronous WASI streams).
    let v = e
        .admit(
            hook::TOOL_BEFORE,
            Some(&agent),
            Some(&session),
            act("allow"),
        )
        .await
        .expect("allowed");
    assert_eq!(v, act("allow"));
    let err = e
        .admit(hook::TOOL_BEFORE, None, None, act("reject"))
        .await
        .expect_err("rejected");
    assert!(err.message.contains("rejected directly"), "{}", err.message);
    let v = e
        .admit(
            hook::TOOL_BEFORE,
            Some(&agent),
            Some(&session),
            act("input"),
        )
        .await
        .expect("rewritten");
    assert_eq!(
        v["input"]["sessionId"], session,
        "the input reached it: {v}"
    );

    let v = e
        .transform(hook::TOOL_AFTER, None, None, json!({"result": 1}))
        .await;
    assert_eq!(v, json!({"result": 1, "direct": true}));

    let r = e.invoke("direct", &["stdin"]).await;
    assert_eq!(r["data"]["stdout"], "read 0 bytes", "{r}");
    let r = e.invoke("direct", &["clock"]).await;
    assert_eq!(r["data"]["stdout"], "ok", "{r}");
    let r = e.invoke("direct", &["nonsense"]).await;
    assert_eq!(r["data"]["exitCode"], 1, "{r}");
    assert_eq!(r["data"]["stderr"], "unknown command [\"nonsense\"]", "{r}");

    // `e.session()` started a session after the service: the event arrives
    // asynchronously.
    let mut events = String::new();
    for _ in 0..100 {
        let r = e.invoke("direct", &["events"]).await;
        events = r["data"]["stdout"].as_str().unwrap_or_default().to_string();
        if events == "1" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(events, "1", "one session.started");

    let r = e.ok(json!({"op": "skill.stop", "instanceId": id})).await;
    assert_eq!(r["state"], "stopped", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_component_that_traps_spins_or_hoards_is_contained_and_revived() {
    let e = env().await;
    let id = e.start("direct", "system", json!({})).await;
    for (what, says) in [("trap", "trap"), ("loop", "deadline"), ("bomb", "memory")] {
        let err = e
            .admit(hook::TOOL_BEFORE, None, None, act(what))
            .await
            .expect_err(what);
        assert!(err.message.contains(says), "{what}: {}", err.message);
        // The next call runs on a fresh instance.
        e.admit(hook::TOOL_BEFORE, None, None, act("allow"))
            .await
            .unwrap_or_else(|err| panic!("after {what}: {}", err.message));
    }
    let s = e.service(&id).await;
    assert_eq!(s["state"], "running", "{s}");
    assert_eq!(s["runtime"]["calls"], "direct", "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_finds_the_direct_instance_busy_waits_its_turn() {
    let e = env().await;
    e.start("direct", "system", json!({})).await;
    // One call spins until its deadline, holding the instance ...
    let spinning = {
        let k = e.k.clone();
        tokio::spawn(async move {
            let scope = aos_kernel::hooks::HookScope::default();
            k.hooks()
                .admit(hook::TOOL_BEFORE, scope, &json!({}), act("loop"))
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    // ... the next one cannot run at once: it waits for the instance, which
    // the deadline frees (and revives), and is then answered.
    let v = e
        .admit(hook::TOOL_BEFORE, None, None, act("allow"))
        .await
        .expect("answered after the spinning call");
    assert_eq!(v, act("allow"));
    let err = spinning
        .await
        .expect("join")
        .expect_err("the spinning call hit its deadline");
    assert!(err.message.contains("deadline"), "{}", err.message);
}
