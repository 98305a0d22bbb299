//! The ReActUnit end to end in the kernel: a scripted OpenAI-compatible
//! server over real HTTP, real bash, real SQLite.

use aos_kernel::{AoscbDefaults, Kernel, KernelConfig, Principal};
use aos_testkit::{Reply, ScriptedLlm};
use aos_types::Request;
use serde_json::{Value, json};
use std::time::Duration;

struct Env {
    k: Kernel,
    llm: ScriptedLlm,
    _home: tempfile::TempDir,
    _db: tempfile::TempDir,
}

async fn env(replies: Vec<Reply>) -> Env {
    let (store, db) = aos_testkit::sqlite_store().await;
    env_on(replies, store, db).await
}

async fn env_on(replies: Vec<Reply>, store: aos_store::Store, db: tempfile::TempDir) -> Env {
    let llm = ScriptedLlm::start(replies).await;
    let home = tempfile::tempdir().expect("home");
    let config = KernelConfig {
        home: home.path().to_path_buf(),
        skill_roots: vec![aos_testkit::builtin_skills()],
        builtin_skills: None,
        node_id: "react-test".into(),
        system_name: "test".into(),
        defaults: AoscbDefaults {
            max_turns: 8,
            ..AoscbDefaults::default()
        },
        lease_ttl_ms: 60_000,
        watch_skills: false,
        bin_dir: None,
        bash_sandbox: Default::default(),
    };
    let runner = aos_react::ReactUnit::runner(llm.config(2)).expect("runner");
    let k = Kernel::start(store, config, vec![], runner)
        .await
        .expect("kernel");
    Env {
        k,
        llm,
        _home: home,
        _db: db,
    }
}

impl Env {
    async fn call(&self, req: Value) -> Value {
        serde_json::to_value(
            self.k
                .syscall(&Principal::Operator, Request::from_value(req).expect("req"))
                .await,
        )
        .expect("ser")
    }

    async fn ok(&self, req: Value) -> Value {
        let r = self.call(req.clone()).await;
        assert_eq!(r["ok"], true, "{req} -> {r}");
        r["data"].clone()
    }

    async fn session(&self) -> String {
        let a = self.ok(json!({"op": "agent.create"})).await;
        let s = self
            .ok(json!({"op": "session.create", "agentId": a["agentId"]}))
            .await;
        s["sessionId"].as_str().expect("id").to_string()
    }

    async fn send(&self, sid: &str, text: &str) -> String {
        let d = self.ok(json!({"op": "session.dispatch", "sessionId": sid, "message": {"role": "user", "content": text}})).await;
        d["dispatchId"].as_str().expect("dispatch").to_string()
    }

    async fn wait(&self, id: &str) -> Value {
        self.ok(json!({"op": "session.wait", "dispatchId": id, "timeoutMs": 20000}))
            .await
    }

    async fn history(&self, sid: &str) -> Vec<Value> {
        let h = self
            .ok(json!({"op": "session.history.list", "sessionId": sid, "limit": 1000}))
            .await;
        h["messages"].as_array().expect("messages").clone()
    }

    async fn phase(&self, sid: &str) -> String {
        self.ok(json!({"op": "session.get", "sessionId": sid}))
            .await["phase"]
            .as_str()
            .expect("phase")
            .to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_is_resumed_after_a_restart() {
    let (store, db) = aos_testkit::sqlite_store().await;
    let e = env_on(vec![Reply::text("resumed answer")], store.clone(), db).await;
    let sid = e.session().await;
    let entry = |id: &str, node: &str| aos_store::InboxEntry {
        dispatch_id: id.into(),
        session_id: sid.clone(),
        node_id: node.into(),
        created_at: aos_types::now(),
        message: format!("message of {id}"),
        origin: aos_types::Origin::Human,
        a2a: None,
    };
    // ds_ran's user message is in SessionHistory: it ran, and a crash ended it.
    let ran = aos_store::NewMessage {
        role: aos_types::Role::User,
        parts: vec![aos_types::Part::text("message of ds_ran")],
        origin: aos_types::Origin::Human,
        extra: aos_store::MessageExtra {
            id: Some("msg_ran".into()),
            ..Default::default()
        },
    };
    store.append(&sid, None, vec![ran]).await.expect("append");
    for (id, node) in [
        ("ds_ran", "react-test"),
        ("ds_next", "react-test"),
        ("ds_theirs", "elsewhere"),
    ] {
        store.inbox_push(&entry(id, node)).await.expect("push");
    }
    assert_eq!(e.k.resume_inbox().await.expect("resume"), 1);
    let w = e.wait("ds_next").await;
    assert_eq!(
        (w["status"].as_str(), w["finalText"].as_str()),
        (Some("completed"), Some("resumed answer")),
        "{w}"
    );
    let h = e.history(&sid).await;
    let count = |t: &str| h.iter().filter(|m| m["parts"][0]["text"] == t).count();
    assert_eq!(
        (count("message of ds_ran"), count("message of ds_next")),
        (1, 1)
    );
    let next = h
        .iter()
        .find(|m| m["parts"][0]["text"] == "message of ds_next")
        .expect("next");
    assert_eq!(next["id"], "msg_next", "the id derived from the dispatch");
    assert!(
        store
            .inbox_list("react-test")
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        store.inbox_list("elsewhere").await.expect("list").len(),
        1,
        "another node's entries are its own"
    );
    assert_eq!(e.llm.requests().len(), 1, "only ds_next ran");
}

fn parts_of_type<'a>(h: &'a [Value], t: &str) -> Vec<&'a Value> {
    h.iter()
        .flat_map(|m| m["parts"].as_array().into_iter().flatten())
        .filter(|p| p["type"] == t)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_answer_completes() {
    let e = env(vec![Reply::text("Hello from the model.")]).await;
    let sid = e.session().await;
    let id = e.send(&sid, "say hello").await;
    let w = e.wait(&id).await;
    assert_eq!(
        (w["status"].as_str(), w["finalText"].as_str()),
        (Some("completed"), Some("Hello from the model."))
    );
    assert_eq!(w["usage"]["totalTokens"], 18);
    let h = e.history(&sid).await;
    let last = h.last().expect("answer");
    assert_eq!(
        (last["role"].as_str(), last["metadata"]["finish"].as_str()),
        (Some("assistant"), Some("completed"))
    );
    assert_eq!(w["finalMessageSeq"], last["metadata"]["seq"]);
    let sent = &e.llm.requests()[0];
    assert_eq!(sent["tools"][0]["function"]["name"], "bash");
    let msgs = sent["messages"].as_array().expect("messages");
    assert_eq!(msgs.last().expect("user")["content"], "say hello", "{sent}");
    assert_eq!(e.phase(&sid).await, "idle", "the lease is released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bash_runs_and_its_result_goes_back_to_the_model() {
    let e = env(vec![
        Reply::bash("call_1", "echo hello; echo $AOS_SESSION_ID; pwd"),
        Reply::text("done"),
    ])
    .await;
    let sid = e.session().await;
    let w = e.wait(&e.send(&sid, "run it").await).await;
    assert_eq!(w["status"], "completed");
    let h = e.history(&sid).await;
    let tools = parts_of_type(&h, "tool-bash");
    assert_eq!(tools.len(), 2, "the intent, then the result");
    assert_eq!(
        (
            tools[0]["state"].as_str(),
            tools[0]["input"]["command"].as_str()
        ),
        (
            Some("input-available"),
            Some("echo hello; echo $AOS_SESSION_ID; pwd")
        )
    );
    assert_eq!(tools[1]["state"], "output-available");
    let visible = tools[1]["output"]["visibleResult"]
        .as_str()
        .expect("visible");
    assert!(visible.starts_with(&format!("hello\n{sid}\n")), "{visible}");
    assert!(
        visible.contains(&format!("sessions/{sid}/work")),
        "runs in the session's work dir: {visible}"
    );
    assert_eq!(tools[1]["output"]["exitCode"], 0);
    // The second LLM call carries the call and its result in wire format.
    let second = &e.llm.requests()[1];
    let msgs = second["messages"].as_array().expect("messages");
    let call = msgs
        .iter()
        .find(|m| m["tool_calls"].is_array())
        .expect("assistant tool call");
    assert_eq!(call["tool_calls"][0]["id"], "call_1");
    let result = msgs
        .iter()
        .find(|m| m["role"] == "tool")
        .expect("tool result");
    assert_eq!(result["tool_call_id"], "call_1");
    assert!(
        result["content"]
            .as_str()
            .expect("content")
            .starts_with("hello")
    );
    // The raw result is in the RuntimeLog.
    let log = e
        .ok(json!({"op": "runtime.log.list", "operation": "tool.bash", "sessionId": sid}))
        .await;
    assert_eq!(log["entries"][0]["data"]["exitCode"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tool_calls_are_reported_to_the_model_not_crashed() {
    let e = env(vec![
        Reply::ToolCalls(vec![
            ("c1".into(), "python".into(), "{}".into()),
            ("c2".into(), "bash".into(), "not json".into()),
        ]),
        Reply::text("ok"),
    ])
    .await;
    let sid = e.session().await;
    let w = e.wait(&e.send(&sid, "go").await).await;
    assert_eq!(w["status"], "completed");
    let h = e.history(&sid).await;
    let errors: Vec<&str> = parts_of_type(&h, "tool-bash")
        .iter()
        .filter_map(|p| p["errorText"].as_str())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].contains("unknown tool") && errors[1].contains("not valid JSON"),
        "{errors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_session_refuses_or_queues() {
    let e = env(vec![
        Reply::Slow(Duration::from_millis(800), Box::new(Reply::text("first"))),
        Reply::text("second"),
    ])
    .await;
    let sid = e.session().await;
    let first = e.send(&sid, "one").await;
    let busy = e.call(json!({"op": "session.dispatch", "sessionId": sid, "message": {"role": "user", "content": "two"}})).await;
    assert_eq!(busy["error"]["code"], "session.busy", "{busy}");
    let q = e.ok(json!({"op": "session.dispatch", "sessionId": sid, "queue": true, "message": {"role": "user", "content": "two"}})).await;
    assert_eq!(q["queued"], true);
    let second = q["dispatchId"].as_str().expect("id").to_string();
    // Issue 19, item 4: a wait that times out tells queued from running.
    let early = e
        .ok(json!({"op": "session.wait", "dispatchId": second, "timeoutMs": 10}))
        .await;
    assert_eq!(early["status"], "queued", "{early}");
    let early = e
        .ok(json!({"op": "session.wait", "dispatchId": first, "timeoutMs": 10}))
        .await;
    assert_eq!(early["status"], "running", "{early}");
    assert_eq!(e.wait(&first).await["finalText"], "first");
    assert_eq!(e.wait(&second).await["finalText"], "second");
    let h = e.history(&sid).await;
    let texts: Vec<&str> = parts_of_type(&h, "text")
        .iter()
        .filter_map(|p| p["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        ["one", "first", "two", "second"],
        "FIFO, one dispatch at a time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_kills_the_command_and_records_the_fact() {
    let e = env(vec![Reply::bash("c1", "sleep 30")]).await;
    let sid = e.session().await;
    let id = e.send(&sid, "wait a while").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    e.ok(json!({"op": "session.interrupt", "sessionId": sid, "reason": "user pressed stop"}))
        .await;
    let w = e.wait(&id).await;
    assert_eq!(w["status"], "interrupted");
    let h = e.history(&sid).await;
    let tools = parts_of_type(&h, "tool-bash");
    assert_eq!(tools[1]["state"], "output-error");
    let fact = parts_of_type(&h, "data-interrupt");
    assert_eq!(fact[0]["data"]["reason"], "user pressed stop");
    assert_eq!(e.phase(&sid).await, "idle");
    let again = e
        .call(json!({"op": "session.interrupt", "sessionId": sid}))
        .await;
    assert_eq!(again["error"]["code"], "session.not_ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_turns_ends_the_loop_with_a_reason() {
    let e = env((0..10)
        .map(|i| Reply::bash(&format!("c{i}"), "true"))
        .collect())
    .await;
    e.ok(json!({"op": "system.update", "maxTurns": 2})).await;
    let sid = e.session().await;
    let w = e.wait(&e.send(&sid, "loop").await).await;
    assert_eq!(w["status"], "max_turns");
    let h = e.history(&sid).await;
    assert_eq!(
        parts_of_type(&h, "data-interrupt")[0]["data"]["reason"],
        "max_turns"
    );
    assert_eq!(e.llm.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_error_fails_the_dispatch_readably() {
    let e = env(vec![Reply::Status {
        code: 401,
        retry_after: None,
    }])
    .await;
    let sid = e.session().await;
    let w = e.wait(&e.send(&sid, "hi").await).await;
    assert_eq!(
        (w["status"].as_str(), w["error"]["code"].as_str()),
        (Some("failed"), Some("llm.error"))
    );
    let h = e.history(&sid).await;
    let last = h.last().expect("error message");
    assert_eq!(last["metadata"]["error"]["code"], "llm.error");
    assert!(
        last["parts"][0]["text"]
            .as_str()
            .expect("text")
            .contains("401")
    );
    assert_eq!(e.phase(&sid).await, "idle", "never a hung lease");
    // The session is usable again.
    e.llm.push([Reply::text("back")]);
    assert_eq!(
        e.wait(&e.send(&sid, "again").await).await["status"],
        "completed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_input_is_validated() {
    let e = env(vec![]).await;
    let sid = e.session().await;
    for (req, code) in [
        (
            json!({"op": "session.dispatch", "sessionId": sid, "message": {"role": "assistant", "content": "x"}}),
            "request.invalid",
        ),
        (
            json!({"op": "session.dispatch", "sessionId": sid, "message": {"role": "user", "content": "  "}}),
            "request.invalid",
        ),
        (
            json!({"op": "session.dispatch", "sessionId": sid}),
            "request.invalid",
        ),
        (
            json!({"op": "session.dispatch", "sessionId": "se_nope", "message": {"role": "user", "content": "x"}}),
            "not_found",
        ),
        (
            json!({"op": "session.wait", "dispatchId": "ds_nope"}),
            "not_found",
        ),
    ] {
        let r = e.call(req.clone()).await;
        assert_eq!(r["error"]["code"], code, "{req} -> {r}");
    }
    assert_eq!(e.history(&sid).await.len(), 3, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_gets_the_whole_stream() {
    let e = env(vec![
        Reply::bash("c1", "echo streamed"),
        Reply::text("the end"),
    ])
    .await;
    let sid = e.session().await;
    let id = e.send(&sid, "stream it").await;
    e.wait(&id).await;
    let (session, past, _rx) = e.k.dispatch_stream(&id).expect("known dispatch");
    assert_eq!(session, sid);
    let kinds: Vec<&str> = past.iter().map(|ev| ev.event).collect();
    assert!(
        kinds.contains(&"tool_call") && kinds.contains(&"tool_result"),
        "{kinds:?}"
    );
    assert_eq!(*kinds.last().expect("events"), "done");
    let deltas: String = past
        .iter()
        .filter(|ev| ev.data["type"] == "delta")
        .filter_map(|ev| ev.data["text"].as_str())
        .collect();
    assert_eq!(deltas, "the end", "text deltas in order");
    let done = past.last().expect("done");
    assert_eq!(done.data["status"], "completed");
    let seqs: Vec<u64> = past.iter().map(|ev| ev.seq).collect();
    assert_eq!(seqs, (1..=past.len() as u64).collect::<Vec<_>>());
    // The same events are on the daemon's event bus (`/v1/events`).
    let (bus, _) = e.k.events().subscribe(Some(0));
    let on_bus: Vec<&str> = bus
        .iter()
        .filter(|ev| {
            ev.name.starts_with("dispatch.") && ev.payload_value()["dispatchId"] == id.as_str()
        })
        .map(|ev| ev.name.as_str())
        .collect();
    assert!(
        on_bus.contains(&"dispatch.tool_call") && on_bus.last() == Some(&"dispatch.done"),
        "{on_bus:?}"
    );
}

/// The same test on PostgreSQL (the SQLite run is `env`).
async fn env_pg(replies: Vec<Reply>) -> Env {
    let (store, _schema) = aos_testkit::pg_store().await;
    env_on(replies, store, tempfile::tempdir().expect("dir")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_frees_a_session_its_ended_dispatch_left_leased() {
    interrupt_frees_a_stranded_session(env(vec![Reply::text("after")]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_frees_a_session_its_ended_dispatch_left_leased_on_postgres() {
    interrupt_frees_a_stranded_session(env_pg(vec![Reply::text("after")]).await).await;
}

async fn interrupt_frees_a_stranded_session(e: Env) {
    // Issue 19, item 2: this daemon holds the lease, no dispatch runs (it
    // ended and could not free the session): `session.interrupt` frees it
    // at once, closing the command left open.
    let sid = e.session().await;
    e.ok(json!({"op": "session.append", "sessionId": sid, "message": {"role": "assistant",
        "parts": [{"type": "tool-bash", "toolCallId": "c9", "state": "input-available", "input": {"command": "make"}}]}}))
        .await;
    let node = e.k.node_id().to_string();
    e.k.store()
        .session_update(&sid, None, move |s| {
            s.phase = aos_types::SessionPhase::Dispatched;
            s.lease_id = Some("le_stranded".into());
            s.lease_holder = Some(node);
            s.lease_expires_at = Some("2999-01-01T00:00:00.000Z".into());
            Ok(())
        })
        .await
        .expect("strand it");
    let busy = e
        .call(json!({"op": "session.dispatch", "sessionId": sid, "message": {"role": "user", "content": "hi"}}))
        .await;
    assert_eq!(busy["error"]["code"], "session.busy", "{busy}");
    let r = e
        .ok(json!({"op": "session.interrupt", "sessionId": sid, "reason": "stuck"}))
        .await;
    assert_eq!(r["freed"], true, "{r}");
    let h = e.history(&sid).await;
    let text = serde_json::to_string(&h).expect("json");
    assert!(
        text.contains("without recording this command's result"),
        "{text}"
    );
    let id = e.send(&sid, "hi").await;
    assert_eq!(e.wait(&id).await["finalText"], "after");
    // A session nobody holds is still `session.not_ready` to interrupt.
    let idle = e
        .call(json!({"op": "session.interrupt", "sessionId": sid}))
        .await;
    assert_eq!(idle["error"]["code"], "session.not_ready", "{idle}");
}

fn keyed_replies() -> Vec<Reply> {
    vec![
        Reply::Slow(Duration::from_millis(400), Box::new(Reply::text("first"))),
        Reply::text("queued one"),
        Reply::text("never asked"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_retried_with_its_key_runs_once() {
    dispatch_with_key_runs_once(env(keyed_replies()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_retried_with_its_key_runs_once_on_postgres() {
    dispatch_with_key_runs_once(env_pg(keyed_replies()).await).await;
}

async fn dispatch_with_key_runs_once(e: Env) {
    // Issue 19, item 3.
    let sid = e.session().await;
    let req = json!({"op": "session.dispatch", "sessionId": sid, "idempotencyKey": "k1",
                     "message": {"role": "user", "content": "once"}});
    let first = e.ok(req.clone()).await;
    let again = e.ok(req.clone()).await;
    let id = first["dispatchId"].as_str().expect("id").to_string();
    assert_eq!(again["dispatchId"], id.as_str(), "{again}");
    assert_eq!(again["replayed"], true);
    // Queued with a key, retried: one queued dispatch.
    let q = json!({"op": "session.dispatch", "sessionId": sid, "idempotencyKey": "k2", "queue": true,
                   "message": {"role": "user", "content": "queued once"}});
    let queued = e.ok(q.clone()).await;
    let queued_again = e.ok(q).await;
    assert_eq!(
        queued_again["dispatchId"], queued["dispatchId"],
        "{queued_again}"
    );
    assert_eq!(e.wait(&id).await["finalText"], "first");
    let qid = queued["dispatchId"].as_str().expect("id").to_string();
    assert_eq!(e.wait(&qid).await["finalText"], "queued one");
    let h = e.history(&sid).await;
    let texts: Vec<&str> = parts_of_type(&h, "text")
        .iter()
        .filter_map(|p| p["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        ["once", "first", "queued once", "queued one"],
        "each written once"
    );
    // After it ended, the key still answers the same dispatch.
    let late = e.ok(req).await;
    assert_eq!(late["dispatchId"], id.as_str());
}
