//! A client for any OpenAI-compatible `/chat/completions` endpoint
//! (OpenRouter, Ollama, LM Studio, vLLM, …).
//!
//! - Streaming (SSE): text deltas are handed to a callback as they arrive;
//!   tool calls whose `id`, name and JSON arguments arrive split across
//!   chunks are reassembled; usage comes from the last chunk.
//! - Retries with exponential backoff and jitter on 429, 5xx and connection
//!   errors, honouring `Retry-After`, as long as nothing was streamed yet.
//! - A per-call timeout; a clear [`LlmError`] carrying the provider's own
//!   message when it gives up.

mod client;
mod error;
mod model;
mod sse;
mod types;

pub use aos_types::Usage;
pub use client::{LlmClient, LlmConfig, RetryPolicy};
pub use error::LlmError;
pub use model::ChatModel;
pub use types::{ChatRequest, ChatResponse, Delta, ToolCall, message};
