//! Compaction (`kernel.md` §4.5) with a real context engine component, a
//! scripted OpenAI-compatible server over real HTTP, real bash and SQLite:
//! `session.compact` and the loop's own compaction (threshold and provider
//! overflow), the marker + summary pair, re-injection, and all-or-nothing on
//! failure.

mod common;

use aos_testkit::{Reply, ScriptedLlm};
use common::{Env, guest};
use serde_json::{Value, json};
use std::time::Duration;

const ENGINE_CAPS: &str = "  hooks: [context.compact, session.compaction.before, session.reinject.before, session.compaction.after, session.reinject.after, session.error]";

struct T {
    e: Env,
    llm: ScriptedLlm,
    /// The running engine instance.
    engine: std::sync::Mutex<Option<String>>,
}

async fn env() -> T {
    let llm = ScriptedLlm::start(vec![]).await;
    let e = Env::with_llm(
        |root| drop(guest(root, "engine", ENGINE_CAPS)),
        llm.config(2),
    )
    .await;
    T {
        e,
        llm,
        engine: Default::default(),
    }
}

/// (Re)starts the engine at system level: `compact` is what
/// `context.compact` answers; `extra` adds more `do` actions.
async fn engine(t: &T, compact: Value, extra: Value) {
    let old = t.engine.lock().expect("lock").take();
    if let Some(id) = old {
        t.e.ok(json!({"op": "skill.stop", "instanceId": id})).await;
    }
    let mut actions = json!({"context.compact": "set"});
    for (k, v) in extra.as_object().into_iter().flatten() {
        actions[k] = v.clone();
    }
    let id = t.e.start(
        "engine",
        "system",
        json!({"hooks": ["context.compact", "session.compaction.before", "session.reinject.before"],
               "events": ["session.compaction.after", "session.reinject.after", "session.error"],
               "do": actions, "set": {"context.compact": compact}}),
    )
    .await;
    *t.engine.lock().expect("lock") = Some(id);
}

async fn history(e: &Env, sid: &str) -> Vec<Value> {
    e.ok(json!({"op": "session.history.list", "sessionId": sid, "limit": 1000}))
        .await["messages"]
        .as_array()
        .expect("messages")
        .clone()
}

fn part_type(m: &Value) -> &str {
    m["parts"][0]["type"].as_str().unwrap_or("")
}

/// The events the engine has received, once it has all of `expected` (they
/// are delivered asynchronously), sorted.
async fn events(e: &Env, expected: &[&str]) -> Vec<String> {
    for _ in 0..100 {
        let out = e.invoke("engine", &["events"]).await;
        let mut got: Vec<String> =
            serde_json::from_str(out["data"]["stdout"].as_str().expect("stdout")).expect("json");
        if expected.iter().all(|x| got.iter().any(|g| g == x)) {
            got.sort();
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the engine never received all of {expected:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_compact_writes_marker_summary_and_reinjects_defaults() {
    let t = env().await;
    engine(
        &t,
        json!({"mode": "instruct", "summaryText": "FIRST SUMMARY: the user said hello."}),
        json!({}),
    )
    .await;
    let (_, sid) = t.e.session().await;
    t.e.ok(json!({"op": "session.append", "sessionId": sid,
                "message": {"role": "user", "parts": [{"type": "text", "text": "hello there"}]}}))
        .await;
    let before = t.e.ok(json!({"op": "session.get", "sessionId": sid})).await;
    let r =
        t.e.call(json!({"op": "session.compact", "sessionId": sid}))
            .await;
    assert_eq!(r["ok"], true, "{r}");
    let d = &r["data"];
    assert_eq!(d["compacted"], true);
    assert_eq!(d["mode"], "instruct");
    assert_eq!(
        (d["fromSeq"].as_i64(), d["toSeq"].as_i64()),
        (Some(1), before["lastMessageSeq"].as_i64())
    );
    assert_eq!(d["reinjected"], json!(["aos"]));
    let scb = t.e.ok(json!({"op": "session.get", "sessionId": sid})).await;
    assert_eq!(
        r["revision"], scb["revision"],
        "the revision after the lease is released"
    );
    assert_eq!(
        scb["messageCount"].as_i64(),
        Some(before["messageCount"].as_i64().expect("n") + 3),
        "marker, summary, one skill load"
    );
    assert!(
        t.llm.requests().is_empty(),
        "the engine gave the text: no LLM call"
    );

    let h = history(&t.e, &sid).await;
    let n = h.len();
    let (marker, summary, load) = (&h[n - 3], &h[n - 2], &h[n - 1]);
    assert_eq!(part_type(marker), "data-compaction");
    assert_eq!(
        marker["parts"][0]["data"],
        json!({"auto": false, "fromSeq": 1, "toSeq": d["toSeq"]})
    );
    assert_eq!(marker["metadata"]["seq"], d["markerSeq"]);
    assert_eq!(summary["role"], "assistant");
    assert_eq!(summary["metadata"]["summary"], true);
    assert_eq!(summary["metadata"]["finish"], "completed");
    assert_eq!(
        summary["parts"][0]["text"],
        "FIRST SUMMARY: the user said hello."
    );
    assert_eq!(part_type(load), "data-skill-load");
    assert_eq!(load["parts"][0]["data"]["cause"], "reinject");
    assert_eq!(load["parts"][0]["data"]["name"], "aos");
    let scb = t.e.ok(json!({"op": "session.get", "sessionId": sid})).await;
    assert_eq!(scb["phase"], "idle");
    assert!(scb["leaseId"].is_null());
    let ev = events(
        &t.e,
        &["session.reinject.after", "session.compaction.after"],
    )
    .await;
    assert_eq!(ev, ["session.compaction.after", "session.reinject.after"]);

    // A second compaction summarises from the first summary on: the raw
    // history before it is not sent again.
    engine(
        &t,
        json!({"mode": "instruct", "summaryPrompt": "Summarise what matters.", "reinjectSkills": false}),
        json!({}),
    )
    .await;
    t.llm.push([Reply::text("SECOND SUMMARY")]);
    t.e.ok(json!({"op": "session.append", "sessionId": sid,
                "message": {"role": "user", "parts": [{"type": "text", "text": "and now goodbye"}]}}))
        .await;
    let d =
        t.e.ok(json!({"op": "session.compact", "sessionId": sid, "reason": "tidy"}))
            .await;
    assert_eq!(d["reinjected"], json!([]));
    let reqs = t.llm.requests();
    assert_eq!(reqs.len(), 1);
    assert!(
        reqs[0]["tools"].is_null(),
        "the summary call offers no tools"
    );
    let prompt = reqs[0]["messages"][0]["content"].as_str().expect("content");
    assert!(prompt.starts_with("Summarise what matters."), "{prompt}");
    assert!(
        prompt.contains("FIRST SUMMARY") && prompt.contains("user: and now goodbye"),
        "{prompt}"
    );
    assert!(
        !prompt.contains("hello there"),
        "compacted history is not re-read: {prompt}"
    );
    let h = history(&t.e, &sid).await;
    assert_eq!(
        h.last().expect("last")["parts"][0]["text"],
        "SECOND SUMMARY"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_compaction_writes_nothing() {
    let t = env().await;
    engine(
        &t,
        json!({"mode": "instruct", "summaryPrompt": "Summarise."}),
        json!({}),
    )
    .await;
    let (_, sid) = t.e.session().await;
    let before = t.e.ok(json!({"op": "session.get", "sessionId": sid})).await;
    t.llm.push([
        Reply::Status {
            code: 500,
            retry_after: None,
        },
        Reply::Status {
            code: 500,
            retry_after: None,
        },
    ]);
    let r =
        t.e.call(json!({"op": "session.compact", "sessionId": sid}))
            .await;
    assert_eq!(r["error"]["code"], "llm.error", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("summary call failed"),
        "{r}"
    );
    let after = t.e.ok(json!({"op": "session.get", "sessionId": sid})).await;
    assert_eq!(
        after["lastMessageSeq"], before["lastMessageSeq"],
        "nothing written"
    );
    assert_eq!(after["messageCount"], before["messageCount"]);
    assert_eq!(
        (&after["phase"], &after["leaseId"]),
        (&json!("idle"), &Value::Null)
    );
    let log = t.e.log("session.compaction").await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["level"], "warn");
    assert_eq!(log[0]["data"]["error"]["code"], "llm.error");
    events(&t.e, &["session.error"]).await;

    // An empty answer is a failure too.
    t.llm.push([Reply::text("   ")]);
    let r =
        t.e.call(json!({"op": "session.compact", "sessionId": sid}))
            .await;
    assert_eq!(r["error"]["code"], "llm.error", "{r}");
    let again = t.e.ok(json!({"op": "session.get", "sessionId": sid})).await;
    assert_eq!(again["lastMessageSeq"], before["lastMessageSeq"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_refused_and_bad_requests_change_nothing() {
    let t = env().await;
    let (_, sid) = t.e.session().await;
    let before = t.e.ok(json!({"op": "session.get", "sessionId": sid})).await;

    // No engine: compaction has nobody to ask.
    let r =
        t.e.call(json!({"op": "session.compact", "sessionId": sid}))
            .await;
    assert_eq!(r["error"]["code"], "context.engine_unavailable", "{r}");

    for (bad, code) in [
        (json!({"op": "session.compact"}), "request.invalid"),
        (
            json!({"op": "session.compact", "sessionId": sid, "extra": 1}),
            "request.invalid",
        ),
        (
            json!({"op": "session.compact", "sessionId": 7}),
            "request.invalid",
        ),
        (
            json!({"op": "session.compact", "sessionId": "se_nope"}),
            "not_found",
        ),
    ] {
        let r = t.e.call(bad.clone()).await;
        assert_eq!(r["error"]["code"], code, "{bad} -> {r}");
    }
    let untouched = t.e.ok(json!({"op": "session.get", "sessionId": sid})).await;
    assert_eq!(
        untouched["revision"], before["revision"],
        "refused before anything is taken"
    );

    // The engine says skip.
    engine(&t, json!({"mode": "skip"}), json!({})).await;
    let d =
        t.e.ok(json!({"op": "session.compact", "sessionId": sid}))
            .await;
    assert_eq!(d["compacted"], false);
    assert!(d["reason"].as_str().expect("reason").contains("skip"));

    // The engine answers nonsense.
    engine(&t, json!({"mode": "instruct"}), json!({})).await;
    let r =
        t.e.call(json!({"op": "session.compact", "sessionId": sid}))
            .await;
    assert_eq!(r["error"]["code"], "context.engine_unavailable", "{r}");
    engine(
        &t,
        json!({"mode": "instruct", "summaryText": "x", "fromSeq": 5, "toSeq": 2}),
        json!({}),
    )
    .await;
    let r =
        t.e.call(json!({"op": "session.compact", "sessionId": sid}))
            .await;
    assert_eq!(r["error"]["code"], "context.engine_unavailable", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .expect("m")
            .contains("[5, 2]"),
        "{r}"
    );

    // session.compaction.before rejects.
    engine(
        &t,
        json!({"mode": "instruct", "summaryText": "x"}),
        json!({"session.compaction.before": "reject"}),
    )
    .await;
    let r =
        t.e.call(json!({"op": "session.compact", "sessionId": sid}))
            .await;
    assert_eq!(r["error"]["code"], "hook.rejected", "{r}");

    let after = t.e.ok(json!({"op": "session.get", "sessionId": sid})).await;
    assert_eq!(
        after["lastMessageSeq"], before["lastMessageSeq"],
        "nothing written"
    );
    assert_eq!(
        (&after["phase"], &after["leaseId"]),
        (&json!("idle"), &Value::Null)
    );
}

async fn dispatch(e: &Env, sid: &str, text: &str) -> Value {
    let d = e
        .ok(json!({"op": "session.dispatch", "sessionId": sid, "message": {"role": "user", "content": text}}))
        .await;
    e.ok(json!({"op": "session.wait", "dispatchId": d["dispatchId"], "timeoutMs": 30_000}))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_compacts_over_the_threshold_and_goes_on() {
    let t = env().await;
    engine(
        &t,
        json!({"mode": "instruct", "summaryPrompt": "Summarise the work so far."}),
        json!({}),
    )
    .await;
    t.e.ok(json!({"op": "system.update", "compactionThreshold": 60}))
        .await;
    let (_, sid) = t.e.session().await;
    t.llm.push([
        Reply::bash("call_1", "printf 'x%.0s' $(seq 400)"),
        Reply::text("SUMMARY: printed 400 x"),
        Reply::text("all done"),
    ]);
    let w = dispatch(&t.e, &sid, "go").await;
    assert_eq!(w["status"], "completed", "{w}");
    assert_eq!(w["finalText"], "all done");

    let reqs = t.llm.requests();
    assert_eq!(reqs.len(), 3, "tool turn, summary call, next turn");
    assert!(reqs[1]["tools"].is_null());
    let summary_in = reqs[1]["messages"][0]["content"].as_str().expect("c");
    assert!(
        summary_in.contains("assistant ran: $ printf") && summary_in.contains("user: go"),
        "{summary_in}"
    );
    let next = reqs[2]["messages"].to_string();
    assert!(
        next.contains("[Summary of the conversation so far]\\nSUMMARY: printed 400 x"),
        "{next}"
    );
    assert!(
        !next.contains("xxxxxxxxxx"),
        "the raw result is gone from the context: {next}"
    );

    let h = history(&t.e, &sid).await;
    let kinds: Vec<&str> = h.iter().map(part_type).collect();
    let at = kinds
        .iter()
        .position(|k| *k == "data-compaction")
        .expect("a marker");
    let marker = &h[at]["parts"][0]["data"];
    assert_eq!(marker["auto"], true);
    assert!(marker.get("overflow").is_none());
    assert_eq!(
        marker["toSeq"].as_i64(),
        Some(at as i64),
        "everything before the marker"
    );
    assert_eq!(h[at + 1]["metadata"]["summary"], true);
    assert_eq!(kinds[at + 2], "data-skill-load");
    assert_eq!(h.last().expect("last")["parts"][0]["text"], "all done");
    let scb = t.e.ok(json!({"op": "session.get", "sessionId": sid})).await;
    assert_eq!(scb["phase"], "idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_context_overflow_compacts_and_retries_once() {
    let t = env().await;
    engine(
        &t,
        json!({"mode": "instruct", "summaryPrompt": "Summarise."}),
        json!({}),
    )
    .await;
    let (_, sid) = t.e.session().await;
    let too_long = || {
        Reply::Refusal {
        code: 400,
        message: "This model's maximum context length is 128000 tokens. However, you requested 200000 tokens.".into(),
    }
    };
    t.llm.push([
        Reply::bash("call_1", "echo hi"),
        too_long(),
        Reply::text("S"),
        Reply::text("fine now"),
    ]);
    let w = dispatch(&t.e, &sid, "go").await;
    assert_eq!(w["status"], "completed", "{w}");
    let h = history(&t.e, &sid).await;
    let marker = h
        .iter()
        .find(|m| part_type(m) == "data-compaction")
        .expect("marker");
    assert_eq!(marker["parts"][0]["data"]["overflow"], true);
    assert_eq!(marker["parts"][0]["data"]["auto"], true);

    // Refused again right after compacting: the run fails with the provider's words.
    t.llm.push([
        Reply::bash("call_2", "echo hi"),
        too_long(),
        Reply::text("S2"),
        too_long(),
    ]);
    let w = dispatch(&t.e, &sid, "again").await;
    assert_eq!(w["status"], "failed", "{w}");
    assert!(
        w["error"]["message"]
            .as_str()
            .expect("m")
            .contains("maximum context length"),
        "{w}"
    );
    let scb = t.e.ok(json!({"op": "session.get", "sessionId": sid})).await;
    assert_eq!(scb["phase"], "idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_dispatch_makes_compaction_wait_its_turn() {
    let t = env().await;
    engine(
        &t,
        json!({"mode": "instruct", "summaryText": "S"}),
        json!({}),
    )
    .await;
    let (_, sid) = t.e.session().await;
    t.llm.push([Reply::Slow(
        Duration::from_millis(600),
        Box::new(Reply::text("slow answer")),
    )]);
    let d = t
        .e
        .ok(json!({"op": "session.dispatch", "sessionId": sid, "message": {"role": "user", "content": "hi"}}))
        .await;
    let r =
        t.e.call(json!({"op": "session.compact", "sessionId": sid}))
            .await;
    assert_eq!(r["error"]["code"], "session.busy", "{r}");
    t.e.ok(json!({"op": "session.wait", "dispatchId": d["dispatchId"]}))
        .await;
    let d =
        t.e.ok(json!({"op": "session.compact", "sessionId": sid}))
            .await;
    assert_eq!(d["compacted"], true);
}
