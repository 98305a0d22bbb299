//! The client against the scripted OpenAI-compatible server, over real HTTP.

use aos_llm::{ChatRequest, Delta, LlmClient, LlmConfig, LlmError, RetryPolicy};
use aos_testkit::{Reply, ScriptedLlm};
use serde_json::json;
use std::time::Duration;

fn client(url: &str, stream: bool, attempts: u32, timeout: Duration) -> LlmClient {
    LlmClient::new(LlmConfig {
        base_url: url.into(),
        api_key: Some("sk-test".into()),
        timeout,
        retry: RetryPolicy {
            attempts,
            base: Duration::from_millis(10),
            max: Duration::from_secs(2),
        },
        stream,
    })
    .expect("client")
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "m".into(),
        messages: vec![aos_llm::message(&json!({"role": "user", "content": "hi"}))],
        tools: vec![json!({"type": "function", "function": {"name": "bash"}})],
        ..Default::default()
    }
}

#[tokio::test]
async fn streams_text_and_reassembles_split_tool_calls() {
    let llm = ScriptedLlm::start(vec![
        Reply::text("hello there, world"),
        Reply::bash("call_7", "ls -la"),
    ])
    .await;
    let c = client(&llm.url(), true, 1, Duration::from_secs(5));
    let mut deltas = Vec::new();
    let r = c
        .chat(&request(), None, |d| deltas.push(d))
        .await
        .expect("text");
    assert_eq!(r.content, "hello there, world");
    assert!(deltas.len() > 1, "text arrives in pieces: {deltas:?}");
    assert_eq!(
        (r.usage.total_tokens, r.finish_reason.as_deref()),
        (18, Some("stop"))
    );
    let r = c.chat(&request(), None, |_| {}).await.expect("tool call");
    assert_eq!(r.tool_calls.len(), 1);
    assert_eq!(
        (r.tool_calls[0].id.as_str(), r.tool_calls[0].name.as_str()),
        ("call_7", "bash")
    );
    let args: serde_json::Value =
        serde_json::from_str(&r.tool_calls[0].arguments).expect("JSON args");
    assert_eq!(args["command"], "ls -la");
    let sent = llm.requests();
    assert_eq!(sent[0]["stream"], true);
    assert_eq!(sent[0]["messages"][0]["content"], "hi");
    assert_eq!(sent[0]["tools"][0]["function"]["name"], "bash");
}

#[tokio::test]
async fn whole_answers_work_without_streaming() {
    let llm = ScriptedLlm::start(vec![Reply::text("whole")]).await;
    let c = client(&llm.url(), false, 1, Duration::from_secs(5));
    let r = c.chat(&request(), None, |_| {}).await.expect("answer");
    assert_eq!(r.content, "whole");
    assert!(llm.requests()[0].get("stream").is_none());
}

#[tokio::test]
async fn retries_429_and_5xx_honouring_retry_after() {
    let llm = ScriptedLlm::start(vec![
        Reply::Status {
            code: 429,
            retry_after: Some(1),
        },
        Reply::Status {
            code: 500,
            retry_after: None,
        },
        Reply::text("finally"),
    ])
    .await;
    let c = client(&llm.url(), true, 4, Duration::from_secs(5));
    let t = std::time::Instant::now();
    let r = c
        .chat(&request(), None, |_| {})
        .await
        .expect("after retries");
    assert_eq!(r.content, "finally");
    assert_eq!(llm.requests().len(), 3);
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "Retry-After: 1 was honoured: {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn gives_up_with_the_providers_message() {
    let llm = ScriptedLlm::start(vec![Reply::Status {
        code: 401,
        retry_after: None,
    }])
    .await;
    let c = client(&llm.url(), true, 4, Duration::from_secs(5));
    match c.chat(&request(), None, |_| {}).await {
        Err(LlmError::Status {
            status: 401,
            message,
        }) => assert!(message.contains("scripted failure 401"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(llm.requests().len(), 1, "401 is not retried");
    let llm = ScriptedLlm::start(vec![
        Reply::Status {
            code: 503,
            retry_after: None
        };
        3
    ])
    .await;
    let c = client(&llm.url(), true, 3, Duration::from_secs(5));
    assert!(matches!(
        c.chat(&request(), None, |_| {}).await,
        Err(LlmError::Status { status: 503, .. })
    ));
    assert_eq!(llm.requests().len(), 3, "bounded retries");
}

#[tokio::test]
async fn broken_streams_are_clear_errors() {
    let llm = ScriptedLlm::start(vec![Reply::CutStream, Reply::Malformed, Reply::NoChoices]).await;
    let c = client(&llm.url(), true, 1, Duration::from_secs(5));
    for what in ["cut", "malformed", "no choices"] {
        let mut deltas = Vec::new();
        let r = c.chat(&request(), None, |d| deltas.push(d)).await;
        assert!(matches!(r, Err(LlmError::Protocol(_))), "{what}: {r:?}");
        if what == "cut" {
            assert!(deltas.iter().all(|d| !matches!(d, Delta::Text(_))));
        }
    }
}

#[tokio::test]
async fn a_slow_provider_times_out() {
    let llm = ScriptedLlm::start(vec![Reply::Slow(
        Duration::from_secs(3),
        Box::new(Reply::text("late")),
    )])
    .await;
    let c = client(&llm.url(), true, 1, Duration::from_millis(300));
    assert!(matches!(
        c.chat(&request(), None, |_| {}).await,
        Err(LlmError::Timeout(_))
    ));
}
