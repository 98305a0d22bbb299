//! [`ChatModel`]: what the ReAct loop and compaction need of a model — one
//! chat completion, streaming its deltas. The OpenAI-compatible
//! [`LlmClient`] is the one the daemon uses; the loop's unit tests put an
//! in-process model of their own behind the same trait.

use crate::{ChatRequest, ChatResponse, Delta, LlmClient, LlmError};
use futures::future::BoxFuture;

/// A chat model.
pub trait ChatModel: Send + Sync {
    /// One chat completion; `base_url` overrides the endpoint for this call
    /// (from `compute.model.resolve`); `on_delta` sees the text and tool
    /// calls as they stream.
    fn chat<'a>(
        &'a self,
        req: &'a ChatRequest,
        base_url: Option<&'a str>,
        on_delta: &'a mut (dyn FnMut(Delta) + Send),
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>>;
}

impl ChatModel for LlmClient {
    fn chat<'a>(
        &'a self,
        req: &'a ChatRequest,
        base_url: Option<&'a str>,
        on_delta: &'a mut (dyn FnMut(Delta) + Send),
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(LlmClient::chat(self, req, base_url, on_delta))
    }
}
