//! A scripted OpenAI-compatible server: it answers `POST /v1/chat/completions`
//! with the next scripted reply in the real wire format (streamed SSE chunks
//! or a whole JSON answer), and records every request so tests can assert on
//! exactly what the model was sent.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A final text answer.
    Text(String),
    /// One `bash` tool call with this command (arguments split across chunks).
    Bash {
        /// The call id.
        id: String,
        /// The command.
        command: String,
    },
    /// Raw tool calls: (id, function name, arguments text).
    ToolCalls(Vec<(String, String, String)>),
    /// An error status, optionally with `Retry-After` (seconds).
    Status {
        /// HTTP status.
        code: u16,
        /// `Retry-After` header.
        retry_after: Option<u64>,
    },
    /// An error status with the provider's own message (e.g. a 400 saying
    /// the context is too long).
    Refusal {
        /// HTTP status.
        code: u16,
        /// `error.message`.
        message: String,
    },
    /// Starts a tool call, then ends the stream mid-way.
    CutStream,
    /// A chunk that is not JSON.
    Malformed,
    /// A stream with no choices at all.
    NoChoices,
    /// Waits, then answers.
    Slow(Duration, Box<Reply>),
}

impl Reply {
    /// Shorthand for [`Reply::Bash`].
    pub fn bash(id: &str, command: &str) -> Reply {
        Reply::Bash {
            id: id.into(),
            command: command.into(),
        }
    }

    /// Shorthand for [`Reply::Text`].
    pub fn text(t: &str) -> Reply {
        Reply::Text(t.into())
    }
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    /// Replies for requests naming one model (one agent each, in tests of
    /// several agents), served before the shared ones.
    by_model: HashMap<String, VecDeque<Reply>>,
    /// Request bodies as received (parsed only when a test asks: the
    /// server stands in for a remote one, so it costs the caller little).
    requests: Vec<axum::body::Bytes>,
}

/// A running scripted server.
#[derive(Clone)]
pub struct ScriptedLlm {
    url: String,
    script: Arc<Mutex<Script>>,
}

impl ScriptedLlm {
    /// Starts on a free loopback port.
    pub async fn start(replies: Vec<Reply>) -> ScriptedLlm {
        let script = Arc::new(Mutex::new(Script {
            replies: replies.into(),
            by_model: HashMap::new(),
            requests: Vec::new(),
        }));
        let app = Router::new()
            .route("/v1/chat/completions", post(handle))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ScriptedLlm {
            url: format!("http://{addr}/v1"),
            script,
        }
    }

    /// The base URL (`http://127.0.0.1:PORT/v1`).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// A client configuration for this server: `attempts` tries with short
    /// backoffs (10 ms doubling, `Retry-After` capped at 1 s), streaming.
    pub fn config(&self, attempts: u32) -> aos_llm::LlmConfig {
        aos_llm::LlmConfig {
            base_url: self.url(),
            api_key: None,
            timeout: Duration::from_secs(20),
            retry: aos_llm::RetryPolicy {
                attempts,
                base: Duration::from_millis(10),
                max: Duration::from_secs(1),
            },
            stream: true,
        }
    }

    /// Appends replies to the script.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        if let Ok(mut s) = self.script.lock() {
            s.replies.extend(replies);
        }
    }

    /// Appends replies for requests whose `model` is `model` (give each
    /// agent its own model to script several agents independently).
    pub fn push_for(&self, model: &str, replies: impl IntoIterator<Item = Reply>) {
        if let Ok(mut s) = self.script.lock() {
            s.by_model
                .entry(model.to_string())
                .or_default()
                .extend(replies);
        }
    }

    /// Every request body received so far.
    pub fn requests(&self) -> Vec<Value> {
        let bodies = self
            .script
            .lock()
            .map(|s| s.requests.clone())
            .unwrap_or_default();
        bodies
            .iter()
            .map(|b| serde_json::from_slice(b).unwrap_or(Value::Null))
            .collect()
    }
}

/// What the server reads of a request to answer it; parsing it checks
/// the whole body is JSON.
#[derive(serde::Deserialize)]
struct Head {
    #[serde(default)]
    model: String,
    #[serde(default)]
    stream: bool,
}

async fn handle(State(script): State<Arc<Mutex<Script>>>, body: axum::body::Bytes) -> Response {
    let Ok(head) = serde_json::from_slice::<Head>(&body) else {
        return (StatusCode::BAD_REQUEST, "the body is not a JSON request").into_response();
    };
    let reply = {
        let Ok(mut s) = script.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        s.requests.push(body);
        s.by_model
            .get_mut(&head.model)
            .and_then(VecDeque::pop_front)
            .or_else(|| s.replies.pop_front())
            .unwrap_or_else(|| Reply::text("(the script is over)"))
    };
    answer(reply, head.stream).await
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let c = json!({"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": "scripted",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

fn usage_chunk() -> String {
    let u = json!({"id": "chatcmpl-test", "object": "chat.completion.chunk", "choices": [],
                   "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}});
    format!("data: {u}\n\n")
}

fn sse(events: Vec<String>) -> Response {
    let stream = futures::stream::iter(events.into_iter().map(Ok::<_, std::convert::Infallible>));
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r
}

fn calls_of(reply: &Reply) -> Vec<(String, String, String)> {
    match reply {
        Reply::Bash { id, command } => {
            vec![(
                id.clone(),
                "bash".into(),
                json!({ "command": command }).to_string(),
            )]
        }
        Reply::ToolCalls(c) => c.clone(),
        _ => Vec::new(),
    }
}

fn answer(reply: Reply, stream: bool) -> futures::future::BoxFuture<'static, Response> {
    Box::pin(async move {
        match reply {
            Reply::Slow(d, inner) => {
                tokio::time::sleep(d).await;
                answer(*inner, stream).await
            }
            Reply::Status { code, retry_after } => {
                let mut r = (
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    Json(json!({"error": {"message": format!("scripted failure {code}"), "type": "test"}})),
                )
                    .into_response();
                if let Some(s) = retry_after {
                    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
                }
                r
            }
            Reply::Refusal { code, message } => (
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
                Json(json!({"error": {"message": message, "type": "invalid_request_error", "code": "context_length_exceeded"}})),
            )
                .into_response(),
            Reply::Malformed => sse(vec!["data: {not json\n\n".into()]),
            Reply::NoChoices => sse(vec![usage_chunk(), "data: [DONE]\n\n".into()]),
            Reply::CutStream => sse(vec![chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_cut", "type": "function", "function": {"name": "bash", "arguments": "{\"comm"}}]}),
                None,
            )]),
            Reply::Text(t) if !stream => Json(json!({
                "id": "chatcmpl-test", "object": "chat.completion", "model": "scripted",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
            }))
            .into_response(),
            Reply::Text(t) => {
                let mut ev: Vec<String> = t
                    .as_bytes()
                    .chunks(5)
                    .map(|c| chunk(json!({"content": String::from_utf8_lossy(c)}), None))
                    .collect();
                ev.push(chunk(json!({}), Some("stop")));
                ev.push(usage_chunk());
                ev.push("data: [DONE]\n\n".into());
                sse(ev)
            }
            r @ (Reply::Bash { .. } | Reply::ToolCalls(_)) => {
                let calls = calls_of(&r);
                if !stream {
                    let tc: Vec<Value> = calls
                        .iter()
                        .map(|(id, n, a)| json!({"id": id, "type": "function", "function": {"name": n, "arguments": a}}))
                        .collect();
                    return Json(json!({
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": tc}, "finish_reason": "tool_calls"}],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
                    }))
                    .into_response();
                }
                let mut ev = Vec::new();
                for (i, (id, name, args)) in calls.iter().enumerate() {
                    let (a, b) = args.split_at(args.len() / 2);
                    ev.push(chunk(json!({"tool_calls": [{"index": i, "id": id, "type": "function", "function": {"name": name, "arguments": a}}]}), None));
                    ev.push(chunk(json!({"tool_calls": [{"index": i, "function": {"arguments": b}}]}), None));
                }
                ev.push(chunk(json!({}), Some("tool_calls")));
                ev.push(usage_chunk());
                ev.push("data: [DONE]\n\n".into());
                sse(ev)
            }
        }
    })
}
