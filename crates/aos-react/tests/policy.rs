//! The ReAct loop's policy against an in-process chat model of our own (the
//! one stand-in the project allows): turn limits, interrupts while the model
//! thinks, context overflow, usage — with a real store and real bash.

use aos_kernel::{AoscbDefaults, Kernel, KernelConfig, Principal};
use aos_llm::{ChatModel, ChatRequest, ChatResponse, Delta, LlmError, ToolCall, Usage};
use aos_types::Request;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// One answer of the model.
enum Step {
    /// A final text.
    Text(&'static str),
    /// A `bash` call.
    Bash(&'static str),
    /// Waits until notified, then calls `bash` with this command.
    HoldThenBash(Arc<Notify>, &'static str),
    /// The provider refuses the context as too long.
    Overflow,
}

/// Answers from a script, one step per call (the last step repeats);
/// counts its calls.
struct Model {
    steps: Mutex<VecDeque<Step>>,
    calls: Mutex<usize>,
}

fn usage() -> Usage {
    Usage {
        prompt_tokens: 10,
        completion_tokens: 5,
        total_tokens: 15,
    }
}

fn answer(content: &str, calls: Vec<ToolCall>) -> ChatResponse {
    ChatResponse {
        content: content.into(),
        finish_reason: Some(
            if calls.is_empty() {
                "stop"
            } else {
                "tool_calls"
            }
            .into(),
        ),
        tool_calls: calls,
        usage: usage(),
    }
}

fn bash(n: usize, command: &str) -> ChatResponse {
    let call = ToolCall {
        id: format!("c{n}"),
        name: "bash".into(),
        arguments: json!({ "command": command }).to_string(),
    };
    answer("", vec![call])
}

impl ChatModel for Model {
    fn chat<'a>(
        &'a self,
        _req: &'a ChatRequest,
        _base_url: Option<&'a str>,
        on_delta: &'a mut (dyn FnMut(Delta) + Send),
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(async move {
            let n = {
                let mut c = self.calls.lock().expect("calls");
                *c += 1;
                *c
            };
            let step = {
                let mut s = self.steps.lock().expect("steps");
                if s.len() > 1 { s.pop_front() } else { None }
            };
            let step = match step {
                Some(s) => s,
                None => match self.steps.lock().expect("steps").front() {
                    Some(Step::Bash(c)) => Step::Bash(c),
                    Some(Step::Text(t)) => Step::Text(t),
                    _ => Step::Text("done"),
                },
            };
            match step {
                Step::Text(t) => {
                    on_delta(Delta::Text(t.into()));
                    Ok(answer(t, Vec::new()))
                }
                Step::Bash(c) => Ok(bash(n, c)),
                Step::HoldThenBash(until, c) => {
                    until.notified().await;
                    Ok(bash(n, c))
                }
                Step::Overflow => Err(LlmError::Status {
                    status: 400,
                    message: "This model's maximum context length is 8192 tokens".into(),
                }),
            }
        })
    }
}

struct Env {
    k: Kernel,
    model: Arc<Model>,
    _home: tempfile::TempDir,
    _db: tempfile::TempDir,
}

async fn env(steps: Vec<Step>, max_turns: i64) -> Env {
    let (store, db) = aos_testkit::sqlite_store().await;
    let home = tempfile::tempdir().expect("home");
    let config = KernelConfig {
        home: home.path().to_path_buf(),
        skill_roots: vec![aos_testkit::builtin_skills()],
        builtin_skills: None,
        node_id: "policy-test".into(),
        system_name: "test".into(),
        defaults: AoscbDefaults {
            max_turns,
            ..AoscbDefaults::default()
        },
        lease_ttl_ms: 60_000,
        watch_skills: false,
        bin_dir: None,
        bash_sandbox: Default::default(),
    };
    let model = Arc::new(Model {
        steps: Mutex::new(steps.into()),
        calls: Mutex::new(0),
    });
    let runner = Arc::new(aos_react::ReactUnit::new(model.clone()));
    let k = Kernel::start(store, config, vec![], runner)
        .await
        .expect("kernel");
    Env {
        k,
        model,
        _home: home,
        _db: db,
    }
}

impl Env {
    async fn ok(&self, req: Value) -> Value {
        let r = serde_json::to_value(
            self.k
                .syscall(
                    &Principal::Operator,
                    Request::from_value(req.clone()).expect("req"),
                )
                .await,
        )
        .expect("ser");
        assert_eq!(r["ok"], true, "{req} -> {r}");
        r["data"].clone()
    }

    /// A session, and a dispatch of `text` on it.
    async fn dispatch(&self, text: &str) -> (String, String) {
        let a = self.ok(json!({"op": "agent.create"})).await;
        let s = self
            .ok(json!({"op": "session.create", "agentId": a["agentId"]}))
            .await;
        let sid = s["sessionId"].as_str().expect("sid").to_string();
        let d = self
            .ok(json!({"op": "session.dispatch", "sessionId": sid, "message": {"role": "user", "content": text}}))
            .await;
        (sid, d["dispatchId"].as_str().expect("dispatch").to_string())
    }

    async fn wait(&self, id: &str) -> Value {
        self.ok(json!({"op": "session.wait", "dispatchId": id, "timeoutMs": 20000}))
            .await
    }

    fn calls(&self) -> usize {
        *self.model.calls.lock().expect("calls")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_keeps_calling_tools_is_stopped_at_max_turns() {
    let e = env(vec![Step::Bash("true")], 3).await;
    let (_, id) = e.dispatch("loop forever").await;
    let w = e.wait(&id).await;
    assert_eq!(w["status"], "max_turns", "{w}");
    assert_eq!(e.calls(), 3, "one model call per turn");
    assert_eq!(
        w["usage"]["totalTokens"], 45,
        "usage summed over the turns: {w}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_answer_ends_the_dispatch_with_its_usage() {
    let e = env(vec![Step::Bash("echo hi"), Step::Text("all done")], 8).await;
    let (_, id) = e.dispatch("say hi").await;
    let w = e.wait(&id).await;
    assert_eq!(
        (w["status"].as_str(), w["finalText"].as_str()),
        (Some("completed"), Some("all done")),
        "{w}"
    );
    assert_eq!(w["usage"]["totalTokens"], 30, "{w}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_while_the_model_thinks_runs_nothing_it_then_asks_for() {
    let go = Arc::new(Notify::new());
    let e = env(
        vec![
            Step::HoldThenBash(go.clone(), "touch ran"),
            Step::Text("late"),
        ],
        8,
    )
    .await;
    let (sid, id) = e.dispatch("think").await;
    while e.calls() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    e.ok(json!({"op": "session.interrupt", "sessionId": sid, "reason": "stop thinking"}))
        .await;
    go.notify_one();
    let w = e.wait(&id).await;
    assert_eq!(w["status"], "interrupted", "{w}");
    assert_eq!(e.calls(), 1, "no call after the interrupt");
    let h = e
        .ok(json!({"op": "session.history.list", "sessionId": sid, "limit": 100}))
        .await;
    let text = h.to_string();
    assert!(
        text.contains("not run: the dispatch was interrupted"),
        "{text}"
    );
    assert!(text.contains("stop thinking"), "the interrupt fact: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_context_overflow_without_an_engine_fails_the_dispatch_once() {
    let e = env(vec![Step::Overflow, Step::Text("never")], 8).await;
    let (_, id) = e.dispatch("a long story").await;
    let w = e.wait(&id).await;
    assert_eq!(
        (w["status"].as_str(), w["error"]["code"].as_str()),
        (Some("failed"), Some("llm.error")),
        "{w}"
    );
    assert_eq!(e.calls(), 1, "no retry without a compaction: {w}");
}
