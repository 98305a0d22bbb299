//! Hook semantics through real components: allow / rewrite / reject / error /
//! timeout per kind, ordering across owners, last-wins, scope filtering,
//! registration bounds.

mod common;

use aos_types::hook;
use common::{Env, guest};
use serde_json::json;
use std::time::{Duration, Instant};

const ALL_HOOKS: &str = "  hooks: [tool.before, tool.after, compute.before, context.assemble, session.started, agent.started, aos.started, session.system.transform]\n  limits: { hookTimeoutMs: 200 }";

async fn env() -> Env {
    Env::new(|root| {
        guest(root, "g", ALL_HOOKS);
        guest(root, "h", ALL_HOOKS);
        guest(root, "shy", "  hooks: []");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_allows_rewrites_and_rejects() {
    let e = env().await;
    let out = json!({"args": {"command": "ls"}});
    assert_eq!(
        e.admit(hook::TOOL_BEFORE, None, None, out.clone())
            .await
            .expect("no handler: allowed"),
        out
    );

    let id = e
        .start(
            "g",
            "system",
            json!({"hooks": ["tool.before"], "tag": "G", "do": {"tool.before": "rewrite"}}),
        )
        .await;
    let v = e
        .admit(hook::TOOL_BEFORE, None, None, out.clone())
        .await
        .expect("allowed");
    assert_eq!(v["rewrittenBy"], "G");
    assert_eq!(v["args"]["command"], "ls", "the rest of the output is kept");
    e.ok(json!({"op": "skill.stop", "instanceId": id})).await;
    assert_eq!(
        e.admit(hook::TOOL_BEFORE, None, None, out.clone())
            .await
            .expect("stopped"),
        out
    );

    e.start(
        "g",
        "system",
        json!({"hooks": ["tool.before"], "tag": "G", "do": {"tool.before": "reject"}}),
    )
    .await;
    let err = e
        .admit(hook::TOOL_BEFORE, None, None, out.clone())
        .await
        .expect_err("rejected");
    assert_eq!(err.code.as_str(), "hook.rejected");
    assert!(
        err.message.contains("rejected by g") && err.message.contains("G says no"),
        "{}",
        err.message
    );
    let d = err.details.expect("details");
    assert_eq!(
        (d["hook"].as_str(), d["skill"].as_str()),
        (Some("tool.before"), Some("g"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_handlers_follow_the_rules_of_their_kind() {
    let e = env().await;
    let id = e
        .start("g", "system", json!({"hooks": ["tool.before", "tool.after"], "do": {"tool.before": "trap", "tool.after": "error"}}))
        .await;
    // Admission: a trap rejects the operation.
    let err = e
        .admit(hook::TOOL_BEFORE, None, None, json!({}))
        .await
        .expect_err("rejected");
    assert!(err.message.contains("handler failed"), "{}", err.message);
    // Transform: an error passes the data through unchanged.
    let data = json!({"result": "raw"});
    assert_eq!(
        e.transform(hook::TOOL_AFTER, None, None, data.clone())
            .await,
        data
    );
    let failures = e.log("hook.failed").await;
    assert_eq!(failures.len(), 2, "every failure is in the RuntimeLog");
    assert_eq!(failures[0]["data"]["skill"], "g");
    assert_eq!(e.service(&id).await["consecutiveFailures"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_past_its_deadline_is_interrupted() {
    let e = env().await;
    let id = e
        .start(
            "g",
            "system",
            json!({"hooks": ["tool.before", "compute.before"], "do": {"tool.before": "loop"}}),
        )
        .await;
    let t = Instant::now();
    let err = e
        .admit(hook::TOOL_BEFORE, None, None, json!({}))
        .await
        .expect_err("timed out");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "interrupted at its deadline, took {:?}",
        t.elapsed()
    );
    assert!(err.message.contains("deadline"), "{}", err.message);
    // The instance is revived for the next call.
    e.admit(hook::COMPUTE_BEFORE, None, None, json!({}))
        .await
        .expect("the service answers again");
    assert_eq!(e.service(&id).await["state"], "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_run_system_then_agent_then_session_within_scope() {
    let e = env().await;
    let (agent, session) = e.session().await;
    let (_, other_session) = e.session().await;
    let cfg = |tag: &str| json!({"hooks": ["tool.before", "session.system.transform"], "tag": tag, "do": {"*": "tag"}});
    // Registered out of level order on purpose.
    e.start("g", &format!("session:{session}"), cfg("E")).await;
    e.start("g", &format!("agent:{agent}"), cfg("A")).await;
    e.start("g", "system", cfg("S1")).await;
    e.start("h", "system", cfg("S2")).await;
    let v = e
        .admit(hook::TOOL_BEFORE, Some(&agent), Some(&session), json!({}))
        .await
        .expect("allowed");
    assert_eq!(v["trail"], json!(["S1", "S2", "A", "E"]));
    let v = e
        .transform(
            hook::SESSION_SYSTEM_TRANSFORM,
            Some(&agent),
            Some(&session),
            json!({}),
        )
        .await;
    assert_eq!(
        v["trail"],
        json!(["S1", "S2", "A", "E"]),
        "transforms chain in the same order"
    );
    // Another agent's session sees only the system handlers.
    let other_agent = e
        .ok(json!({"op": "session.get", "sessionId": other_session}))
        .await["agentId"]
        .clone();
    let v = e
        .admit(
            hook::TOOL_BEFORE,
            other_agent.as_str(),
            Some(&other_session),
            json!({}),
        )
        .await
        .expect("allowed");
    assert_eq!(v["trail"], json!(["S1", "S2"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_most_specific_engine_wins_an_algorithm_hook() {
    let e = env().await;
    let (agent, session) = e.session().await;
    let (other_agent, other_session) = e.session().await;
    let cfg = |tag: &str| json!({"hooks": ["context.assemble"], "tag": tag, "do": {"*": "tag"}});
    e.start("g", "system", cfg("SYSTEM")).await;
    e.start("h", &format!("session:{session}"), cfg("SESSION"))
        .await;
    let v = e
        .transform(
            hook::CONTEXT_ASSEMBLE,
            Some(&agent),
            Some(&session),
            json!({"messages": []}),
        )
        .await;
    assert_eq!(
        v["trail"],
        json!(["SESSION"]),
        "the session engine replaces the system one"
    );
    let v = e
        .transform(
            hook::CONTEXT_ASSEMBLE,
            Some(&other_agent),
            Some(&other_session),
            json!({"messages": []}),
        )
        .await;
    assert_eq!(
        v["trail"],
        json!(["SYSTEM"]),
        "the system engine still serves other sessions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_outside_capabilities_or_owner_bounds_are_refused() {
    let e = env().await;
    let (_, session) = e.session().await;
    let r = e
        .call(json!({"op": "skill.start", "name": "shy", "config": {"hooks": ["tool.before"]}}))
        .await;
    assert_eq!(r["error"]["code"], "permission.denied", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("add \"tool.before\" to capabilities.hooks"),
        "{r}"
    );
    let r = e
        .call(json!({"op": "skill.start", "name": "g", "owner": format!("session:{session}"), "config": {"events": ["aos.started"]}}))
        .await;
    assert_eq!(
        r["error"]["code"], "permission.denied",
        "a session service may not hear system events: {r}"
    );
    let r = e
        .call(json!({"op": "skill.start", "name": "g", "config": {"hooks": ["agent.started"]}}))
        .await;
    assert_eq!(
        r["error"]["code"], "request.invalid",
        "an event registered as a hook: {r}"
    );
    let running = e
        .ok(json!({"op": "service.list", "state": "running"}))
        .await;
    assert_eq!(running["services"], json!([]), "nothing was left running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_subscribed_services_in_scope() {
    let e = env().await;
    e.start(
        "g",
        "system",
        json!({"events": ["agent.started", "session.started"]}),
    )
    .await;
    let (_, _) = e.session().await;
    let mut seen = serde_json::Value::Null;
    for _ in 0..50 {
        let r = e.invoke("g", &["events"]).await;
        seen =
            serde_json::from_str(r["data"]["stdout"].as_str().unwrap_or("[]")).unwrap_or_default();
        if seen.as_array().is_some_and(|a| a.len() >= 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, json!(["agent.started", "session.started"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_put_a_service_in_error() {
    let e = env().await;
    let (_, mut rx) = e.k.events().subscribe(None);
    let id = e
        .start(
            "g",
            "system",
            json!({"hooks": ["tool.before"], "do": {"tool.before": "trap"}}),
        )
        .await;
    for _ in 0..3 {
        e.admit(hook::TOOL_BEFORE, None, None, json!({}))
            .await
            .expect_err("trap rejects");
    }
    let s = e.service(&id).await;
    assert_eq!(s["state"], "error");
    assert!(s["error"].as_str().expect("error").contains("trapped"));
    assert_eq!(
        e.admit(hook::TOOL_BEFORE, None, None, json!({"x": 1}))
            .await
            .expect("unregistered"),
        json!({"x": 1})
    );
    let mut got = false;
    while let Ok(Ok(ev)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
        if ev.name == "service.error" {
            assert_eq!(ev.payload_value()["instanceId"], id.as_str());
            got = true;
            break;
        }
    }
    assert!(got, "service.error was emitted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_context_engine_keeps_the_last_context() {
    let e = env().await;
    let (_, sid) = e.session().await;
    let msg = json!([{"wire": {"role": "user", "content": "kept"}, "aos": {"kind": "user-input"}}]);
    let id = e
        .start("g", "system", json!({"hooks": ["context.assemble"], "do": {"context.assemble": "set"},
                                      "set": {"context.assemble": {"messages": msg, "estimatedTokens": 1}}}))
        .await;
    let ctx = e
        .ok(json!({"op": "session.context.rebuild", "sessionId": sid}))
        .await;
    assert_eq!(ctx["messages"], msg);
    e.ok(json!({"op": "skill.stop", "instanceId": id})).await;
    e.start(
        "g",
        "system",
        json!({"hooks": ["context.assemble"], "do": {"context.assemble": "error"}}),
    )
    .await;
    let ctx = e
        .ok(json!({"op": "session.context.rebuild", "sessionId": sid}))
        .await;
    assert_eq!(
        ctx["messages"], msg,
        "the failure did not empty the context"
    );
    assert_eq!(e.log("hook.failed").await.len(), 1);
}
