//! The HTTP client: one `POST {base}/chat/completions` per call, streamed,
//! retried with backoff while nothing has been streamed yet.

use crate::LlmError;
use crate::sse::{Assembler, SseLines, parse_whole, provider_message, truncate};
use crate::types::{ChatRequest, ChatResponse, Delta};
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

/// Retry behaviour.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// First backoff; doubled each time, with ±50 % jitter.
    pub base: Duration,
    /// Longest wait (also caps `Retry-After`).
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(500),
            max: Duration::from_secs(20),
        }
    }
}

/// Where and how to call.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// Base URL, e.g. `https://openrouter.ai/api/v1` or `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// Bearer key, if the provider wants one.
    pub api_key: Option<String>,
    /// Whole-call timeout (connect to last chunk).
    pub timeout: Duration,
    /// Retries.
    pub retry: RetryPolicy,
    /// Stream answers (default) or ask for whole ones.
    pub stream: bool,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            base_url: "https://openrouter.ai/api/v1".into(),
            api_key: None,
            timeout: Duration::from_secs(300),
            retry: RetryPolicy::default(),
            stream: true,
        }
    }
}

/// The client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    config: LlmConfig,
}

impl LlmClient {
    /// A client for `config`.
    pub fn new(config: LlmConfig) -> Result<LlmClient, LlmError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| LlmError::Connect {
                url: config.base_url.clone(),
                message: e.to_string(),
            })?;
        Ok(LlmClient { http, config })
    }

    /// The configuration.
    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// One chat completion, with retries. `base_url` overrides the
    /// configured endpoint for this call (from `compute.model.resolve`).
    pub async fn chat(
        &self,
        req: &ChatRequest,
        base_url: Option<&str>,
        mut on_delta: impl FnMut(Delta) + Send,
    ) -> Result<ChatResponse, LlmError> {
        let policy = &self.config.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut streamed = false;
            let mut forward = |d| {
                streamed = true;
                on_delta(d)
            };
            let call = self.once(req, base_url, &mut forward);
            let result = match tokio::time::timeout(self.config.timeout, call).await {
                Ok(r) => r,
                Err(_) => Err((LlmError::Timeout(self.config.timeout), None)),
            };
            match result {
                Ok(r) => return Ok(r),
                Err((e, retry_after)) => {
                    if streamed || !e.retryable() || attempt >= policy.attempts {
                        return Err(e);
                    }
                    let wait = retry_after
                        .unwrap_or_else(|| backoff(policy, attempt))
                        .min(policy.max);
                    tracing::warn!(attempt, error = %e, ?wait, "LLM call failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn once(
        &self,
        req: &ChatRequest,
        base_url: Option<&str>,
        on_delta: &mut (impl FnMut(Delta) + Send),
    ) -> Result<ChatResponse, (LlmError, Option<Duration>)> {
        let base = base_url
            .unwrap_or(&self.config.base_url)
            .trim_end_matches('/');
        let url = format!("{base}/chat/completions");
        let body =
            body(req, self.config.stream).map_err(|e| (LlmError::Protocol(e.to_string()), None))?;
        let mut rb = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(k) = &self.config.api_key {
            rb = rb.bearer_auth(k);
        }
        let resp = rb.send().await.map_err(|e| {
            (
                LlmError::Connect {
                    url: url.clone(),
                    message: e.to_string(),
                },
                None,
            )
        })?;
        let status = resp.status();
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .map(Duration::from_secs_f64);
            let text = resp.text().await.unwrap_or_default();
            let message = serde_json::from_str::<Value>(&text)
                .map(|v| provider_message(&v["error"]).to_string())
                .unwrap_or_else(|_| truncate(&text));
            return Err((
                LlmError::Status {
                    status: status.as_u16(),
                    message,
                },
                retry_after,
            ));
        }
        let is_sse = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/event-stream"));
        if !is_sse {
            let v: Value = resp
                .json()
                .await
                .map_err(|e| (LlmError::Protocol(e.to_string()), None))?;
            let r = parse_whole(&v).map_err(|e| (e, None))?;
            if !r.content.is_empty() {
                on_delta(Delta::Text(r.content.clone()));
            }
            return Ok(r);
        }
        let mut lines = SseLines::default();
        let mut asm = Assembler::default();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let bytes =
                chunk.map_err(|e| (LlmError::Protocol(format!("the stream broke: {e}")), None))?;
            for data in lines.push(&bytes) {
                asm.apply(&data, on_delta).map_err(|e| (e, None))?;
            }
            if asm.done {
                break;
            }
        }
        asm.finish().map_err(|e| (e, None))
    }
}

/// Exponential backoff with ±50 % jitter.
fn backoff(p: &RetryPolicy, attempt: u32) -> Duration {
    let exp = p.base.saturating_mul(1u32 << (attempt - 1).min(16));
    let jitter: f64 = rand::random::<f64>() + 0.5;
    exp.mul_f64(jitter)
}

/// The request body: the request as it is (its messages are JSON text,
/// written without a tree), with the streaming fields when streaming.
fn body(req: &ChatRequest, stream: bool) -> serde_json::Result<Vec<u8>> {
    #[derive(serde::Serialize)]
    struct Streamed<'a> {
        #[serde(flatten)]
        req: &'a ChatRequest,
        stream: bool,
        stream_options: Value,
    }
    let own = |k: &str| req.params.contains_key(k);
    if !stream {
        serde_json::to_vec(req)
    } else if own("stream") || own("stream_options") {
        // Parameters that name the streaming fields are overridden.
        let mut v = serde_json::to_value(req)?;
        v["stream"] = json!(true);
        v["stream_options"] = json!({ "include_usage": true });
        serde_json::to_vec(&v)
    } else {
        serde_json::to_vec(&Streamed {
            req,
            stream: true,
            stream_options: json!({ "include_usage": true }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(params: Value) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![crate::message(&json!({"role": "user", "content": "hi"}))],
            tools: Vec::new(),
            params: params.as_object().cloned().unwrap_or_default(),
        }
    }

    fn sent(req: &ChatRequest, stream: bool) -> Value {
        serde_json::from_slice(&body(req, stream).expect("a body")).expect("JSON")
    }

    #[test]
    fn bodies_carry_the_messages_params_and_streaming_fields() {
        let r = req(json!({"temperature": 0.5}));
        assert_eq!(
            sent(&r, true),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.5,
                   "stream": true, "stream_options": {"include_usage": true}})
        );
        assert_eq!(
            sent(&r, false),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.5})
        );
        let own = req(json!({"stream": false, "stream_options": {}}));
        let v = sent(&own, true);
        assert_eq!(
            (&v["stream"], &v["stream_options"]["include_usage"]),
            (&json!(true), &json!(true))
        );
    }
}
