//! The default context engine (`aos-context`, a real component built with the
//! guest SDK) end to end: a scripted OpenAI-compatible server over real HTTP,
//! real bash, SQLite. Auto-folding of a large output, reading it back by
//! lines and by regex, fold/unfold changing what the model is sent, rebuild,
//! compaction through the engine's prompt, and a replacement engine winning.

mod common;

use aos_testkit::{Reply, ScriptedLlm};
use common::{Env, skill};
use serde_json::{Value, json};

async fn env() -> (Env, ScriptedLlm) {
    let llm = ScriptedLlm::start(vec![]).await;
    let config = llm.config(1);
    let manifest =
        std::fs::read_to_string(aos_testkit::builtin_skills().join("aos-context/SKILL.md"))
            .expect("the built-in SKILL.md");
    let e = Env::with_llm(
        |root| {
            let dir = skill(
                root,
                "ctx-engine",
                aos_test_artifacts::AOS_CONTEXT,
                "  hooks: []",
            );
            let text = manifest.replace("name: aos-context", "name: ctx-engine");
            std::fs::write(dir.join("SKILL.md"), text).expect("SKILL.md");
            common::guest(root, "broken-engine", "  hooks: [context.assemble]");
            common::guest(root, "rewriter", "  hooks: [session.messages.transform]");
            skill(
                root,
                "replacement",
                aos_test_artifacts::TEMPLATE_CONTEXT_ENGINE,
                "  hooks: [context.assemble]\n  syscalls: [session.read]",
            );
        },
        config,
    )
    .await;
    (e, llm)
}

async fn dispatch(e: &Env, sid: &str, text: &str) -> Value {
    let d = e
        .ok(json!({"op": "session.dispatch", "sessionId": sid, "message": {"role": "user", "content": text}}))
        .await;
    e.ok(json!({"op": "session.wait", "dispatchId": d["dispatchId"], "timeoutMs": 60_000}))
        .await
}

fn tool_message(req: &Value) -> String {
    req["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .rfind(|m| m["role"] == "tool")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_context_engine_folds_reads_back_and_compacts() {
    let (e, llm) = env().await;
    e.start("ctx-engine", "system", json!({})).await;
    // Unfolding 400 KB must not trigger the loop's own compaction here.
    e.ok(json!({"op": "system.update", "compactionThreshold": 10_000_000}))
        .await;
    let (_, sid) = e.session().await;
    e.ok(json!({"op": "session.update", "sessionId": sid, "autoFoldThreshold": 20_000}))
        .await;
    llm.push([Reply::bash("c1", "seq 1 70000"), Reply::text("counted")]);
    let w = dispatch(&e, &sid, "count to seventy thousand").await;
    assert_eq!(w["status"], "completed", "{w}");

    // The result is stored, and the model was sent the placeholder.
    let h = e
        .ok(json!({"op": "session.history.list", "sessionId": sid, "limit": 100}))
        .await["messages"]
        .as_array()
        .expect("messages")
        .clone();
    let result = h
        .iter()
        .find(|m| m["parts"][0]["state"] == "output-available")
        .expect("the result");
    let out = &result["parts"][0]["output"];
    assert!(out["visibleResult"].is_null(), "{out}");
    assert_eq!(
        (out["lineCount"].as_i64(), out["exitCode"].as_i64()),
        (Some(70_000), Some(0))
    );
    assert!(out["sizeChars"].as_i64().expect("size") > 400_000);
    let cid = out["contentId"].as_str().expect("contentId").to_string();
    let reqs = llm.requests();
    let sent = tool_message(&reqs[1]);
    assert!(
        sent.len() < 3_000,
        "a placeholder, not the output: {} chars",
        sent.len()
    );
    assert!(
        sent.contains(&format!("aos content read {cid}")) && sent.starts_with("[output stored"),
        "{sent}"
    );
    assert!(
        reqs[0]["messages"][0]["content"]
            .as_str()
            .expect("system")
            .starts_with("[[AOS-SKILL aos]]"),
        "skill loads are system text: {}",
        reqs[0]["messages"][0]
    );

    // Read back by lines and by regex.
    let page = e
        .ok(json!({"op": "content.read", "contentId": cid, "offset": 100, "limit": 3}))
        .await;
    assert_eq!(page["content"], "101\n102\n103");
    let found = e
        .ok(json!({"op": "content.search", "contentId": cid, "pattern": "^6999[89]$"}))
        .await;
    assert_eq!(
        found["matches"],
        json!([{"lineNumber": 69998, "text": "69998"}, {"lineNumber": 69999, "text": "69999"}])
    );

    // Unfold shows the output in full next time; a manual fold hides a message.
    let (mid, pid) = (
        result["id"].as_str().expect("id"),
        result["parts"][0]["id"].as_str().expect("pid"),
    );
    e.ok(
        json!({"op": "session.context.unfold", "sessionId": sid, "messageId": mid, "partId": pid}),
    )
    .await;
    let user = h.iter().find(|m| m["role"] == "user").expect("user");
    let ctx = e
        .ok(json!({"op": "session.context.fold", "sessionId": sid, "messageId": user["id"]}))
        .await;
    assert_eq!(ctx["foldedRefs"], json!([{"historyMessageId": user["id"]}]));
    llm.push([Reply::text("seen")]);
    dispatch(&e, &sid, "look again").await;
    let req = llm.requests().pop().expect("request");
    let shown = tool_message(&req);
    assert!(
        shown.len() > 400_000,
        "unfolded: the whole output was sent, got {}",
        &shown[..shown.len().min(600)]
    );
    let text = req.to_string();
    assert!(
        text.contains("folded: about") && !text.contains("count to seventy thousand"),
        "the folded message is a placeholder"
    );

    // A rebuild forgets manual folds and unfolds; the stored output stays folded.
    let ctx = e
        .ok(json!({"op": "session.context.rebuild", "sessionId": sid}))
        .await;
    assert_eq!(ctx["foldedRefs"], json!([]));
    let all = ctx["messages"].to_string();
    assert!(
        all.contains("count to seventy thousand") && all.contains("[output stored"),
        "{all}"
    );

    // Compaction: the engine's prompt, then the context starts at the summary.
    llm.push([Reply::text("SUMMARY: counted to 70000; output stored.")]);
    let c = e
        .ok(json!({"op": "session.compact", "sessionId": sid}))
        .await;
    assert_eq!(
        (c["compacted"].as_bool(), c["mode"].as_str()),
        (Some(true), Some("instruct")),
        "{c}"
    );
    let prompt = llm.requests().pop().expect("summary call")["messages"][0]["content"]
        .as_str()
        .expect("c")
        .to_string();
    assert!(
        prompt.starts_with("Summarise the conversation below"),
        "{prompt}"
    );
    let ctx = e
        .ok(json!({"op": "session.context.get", "sessionId": sid}))
        .await;
    let kinds: Vec<&str> = ctx["messages"]
        .as_array()
        .expect("m")
        .iter()
        .map(|m| m["aos"]["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["compaction-summary", "skill-load"], "{ctx}");

    // An engine started for the session replaces the system one there.
    e.start("replacement", &format!("session:{sid}"), json!({}))
        .await;
    let ctx = e
        .ok(json!({"op": "session.context.rebuild", "sessionId": sid}))
        .await;
    let all = ctx["messages"].to_string();
    assert!(
        all.contains("count to seventy thousand") && !all.contains("compaction-summary"),
        "the template projects the whole history, not from the summary: {all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fold_requests_are_checked() {
    let (e, _llm) = env().await;
    let (_, sid) = e.session().await;
    let r = e
        .call(json!({"op": "session.context.fold", "sessionId": sid, "messageId": "msg_x"}))
        .await;
    assert_eq!(r["error"]["code"], "context.engine_unavailable", "{r}");
    e.start("ctx-engine", "system", json!({})).await;
    for (bad, code) in [
        (
            json!({"op": "session.context.fold", "sessionId": sid}),
            "request.invalid",
        ),
        (
            json!({"op": "session.context.fold", "sessionId": sid, "messageId": "msg_nope"}),
            "not_found",
        ),
        (
            json!({"op": "session.context.unfold", "sessionId": "se_nope", "messageId": "msg_x"}),
            "not_found",
        ),
    ] {
        let r = e.call(bad.clone()).await;
        assert_eq!(r["error"]["code"], code, "{bad} -> {r}");
    }
    let h = e
        .ok(json!({"op": "session.history.list", "sessionId": sid}))
        .await;
    let first = &h["messages"][0];
    let r = e
        .call(json!({"op": "session.context.fold", "sessionId": sid, "messageId": first["id"], "partId": "pt_nope"}))
        .await;
    assert_eq!(r["error"]["code"], "not_found", "{r}");
}

/// The context the kernel holds after turns answered incrementally (the
/// engine sends only the change) is the context a rebuild makes, also across
/// a skill load and unload and another writer's append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_assembly_equals_a_rebuild() {
    let (e, llm) = env().await;
    e.start("ctx-engine", "system", json!({})).await;
    let (_, sid) = e.session().await;
    llm.push([
        Reply::bash("c1", "echo one"),
        Reply::bash("c2", "echo two; echo three"),
        Reply::text("first done"),
    ]);
    dispatch(&e, &sid, "run two commands").await;
    // What the kernel holds was assembled before the last LLM call: the
    // rebuild has it, then the final answer.
    let same = |held: &Value, rebuilt: &Value| {
        let (h, r) = (
            held["messages"].as_array().expect("held"),
            rebuilt["messages"].as_array().expect("rebuilt"),
        );
        assert_eq!(
            h[..],
            r[..h.len()],
            "the held context is the rebuild's start"
        );
        assert_eq!(r.len(), h.len() + 1, "and the final answer follows");
    };
    let get = json!({"op": "session.context.get", "sessionId": sid});
    let rebuild = json!({"op": "session.context.rebuild", "sessionId": sid});
    let incremental = e.ok(get.clone()).await;
    assert_eq!(
        incremental["messages"].as_array().expect("messages").len(),
        6
    );
    same(&incremental, &e.ok(rebuild.clone()).await);

    e.ok(json!({"op": "skill.load", "name": "my-guard", "sessionId": sid}))
        .await;
    let msg = json!({"role": "user", "parts": [{"type": "text", "text": "a note from elsewhere"}]});
    e.ok(json!({"op": "session.append", "sessionId": sid, "message": msg}))
        .await;
    llm.push([Reply::bash("c3", "echo four"), Reply::text("second done")]);
    dispatch(&e, &sid, "once more").await;
    let incremental = e.ok(get.clone()).await;
    let text = incremental["messages"].to_string();
    assert!(text.contains("[[AOS-SKILL my-guard]]") && text.contains("a note from elsewhere"));
    same(&incremental, &e.ok(rebuild.clone()).await);

    e.ok(json!({"op": "skill.unload", "name": "my-guard", "sessionId": sid}))
        .await;
    llm.push([Reply::text("third done")]);
    dispatch(&e, &sid, "and again").await;
    let incremental = e.ok(get).await;
    assert!(
        !incremental["messages"]
            .to_string()
            .contains("[[AOS-SKILL my-guard]]")
    );
    same(&incremental, &e.ok(rebuild).await);
}

/// The engine keeps the state of its most recently assembled sessions only:
/// sessions created and left idle past that do not grow its instance (each
/// bootstrap assembles a context), and a session whose state was dropped is
/// assembled again from its history — the model is sent all of it, and what
/// the kernel holds equals a rebuild.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_do_not_grow_the_engine() {
    let (e, llm) = env().await;
    let id = e.start("ctx-engine", "system", json!({})).await;
    let (agent, first) = e.session().await;
    llm.push([
        Reply::bash("c1", "echo one-output"),
        Reply::text("first done"),
    ]);
    dispatch(&e, &first, "run a command").await;
    let create = |n: usize| {
        let (e, agent) = (&e, agent.clone());
        async move {
            for _ in 0..n {
                e.ok(json!({"op": "session.create", "agentId": agent}))
                    .await;
            }
        }
    };
    let memory = |v: Value| v["runtime"]["memoryBytes"].as_u64().expect("memoryBytes");
    create(100).await;
    let after_100 = memory(e.service(&id).await);
    create(200).await;
    let after_300 = memory(e.service(&id).await);
    assert!(after_100 > 0, "the instance reports its memory");
    assert!(
        after_300 <= after_100 + 256 * 1024,
        "200 more idle sessions grew the engine from {after_100} to {after_300} bytes"
    );

    // The first session's state was dropped long ago.
    llm.push([Reply::text("second done")]);
    dispatch(&e, &first, "once more").await;
    let sent = llm.requests().last().expect("a request")["messages"].to_string();
    for said in [
        "run a command",
        "echo one-output",
        "first done",
        "once more",
    ] {
        assert!(sent.contains(said), "{said:?} sent to the model: {sent}");
    }
    let held = e
        .ok(json!({"op": "session.context.get", "sessionId": first}))
        .await;
    let rebuilt = e
        .ok(json!({"op": "session.context.rebuild", "sessionId": first}))
        .await;
    let held = held["messages"].as_array().expect("held");
    assert_eq!(
        held[..],
        rebuilt["messages"].as_array().expect("rebuilt")[..held.len()]
    );
}

/// An engine that fails leaves the last context, and its revision, as they
/// were: the next engine to answer in full or by change starts from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_engine_keeps_the_last_context() {
    let (e, _llm) = env().await;
    e.start("ctx-engine", "system", json!({})).await;
    let (agent, sid) = e.session().await;
    let rebuild = json!({"op": "session.context.rebuild", "sessionId": sid});
    let good = e.ok(rebuild.clone()).await;
    assert!(!good["messages"].as_array().expect("messages").is_empty());
    let broken = e
        .start(
            "broken-engine",
            &format!("agent:{agent}"),
            json!({"hooks": ["context.assemble"], "do": {"context.assemble": "error"}}),
        )
        .await;
    let kept = e.ok(rebuild.clone()).await;
    assert_eq!(
        (&kept["messages"], &kept["contextRevision"]),
        (&good["messages"], &good["contextRevision"])
    );
    e.ok(json!({"op": "skill.stop", "instanceId": broken}))
        .await;
    let again = e.ok(rebuild).await;
    assert_eq!(again["messages"], good["messages"]);
    assert_eq!(
        again["contextRevision"].as_u64(),
        good["contextRevision"].as_u64().map(|r| r + 1)
    );
}

/// An engine may answer bare wire messages (no `{wire, aos}`), with a
/// fractional estimate; a `session.messages.transform` handler rewrites what
/// the model is sent. Both reach the real HTTP request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_engine_answers_and_the_messages_transform_reach_the_model() {
    let (e, llm) = env().await;
    let (agent, sid) = e.session().await;
    let bare = json!({"role": "user", "content": "from a bare engine"});
    e.start(
        "broken-engine",
        &format!("agent:{agent}"),
        json!({"hooks": ["context.assemble"], "do": {"context.assemble": "set"},
               "set": {"context.assemble": {"messages": [bare], "estimatedTokens": 4.5}}}),
    )
    .await;
    let ctx = e
        .ok(json!({"op": "session.context.rebuild", "sessionId": sid}))
        .await;
    assert_eq!(ctx["messages"], json!([{ "wire": bare }]));
    assert_eq!(ctx["estimatedTokens"], 4);
    llm.push([Reply::text("ok")]);
    dispatch(&e, &sid, "hi").await;
    let sent = llm.requests().last().expect("a request")["messages"].clone();
    assert_eq!(
        sent.as_array().and_then(|m| m.last()),
        Some(&bare),
        "{sent}"
    );

    let rewritten = json!({"role": "user", "content": "rewritten by a skill"});
    e.start(
        "rewriter",
        &format!("agent:{agent}"),
        json!({"hooks": ["session.messages.transform"], "do": {"session.messages.transform": "set"},
               "set": {"session.messages.transform": {"messages": [rewritten]}}}),
    )
    .await;
    llm.push([Reply::text("ok")]);
    dispatch(&e, &sid, "again").await;
    let sent = llm.requests().last().expect("a request")["messages"].clone();
    let sent = sent.as_array().expect("messages");
    assert_eq!(sent.last(), Some(&rewritten));
    assert!(
        sent.iter().all(|m| m != &bare),
        "the transform's output replaced the engine's messages: {sent:?}"
    );
}
