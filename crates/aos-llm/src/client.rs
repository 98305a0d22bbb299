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
        let mut body =
            serde_json::to_value(req).map_err(|e| (LlmError::Protocol(e.to_string()), None))?;
        if self.config.stream {
            body["stream"] = json!(true);
            body["stream_options"] = json!({ "include_usage": true });
        }
        let mut rb = self.http.post(&url).json(&body);
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
