//! The ReActUnit (`kernel.md` §4.4): an OpenAI-compatible model plus one
//! tool, `bash`, in a loop — the kernel's [`Runner`]. The kernel hands it a
//! dispatch through a [`DispatchPort`] (session, hooks, append path, context
//! engine, compaction, command environment); this crate owns the model call,
//! the tool, the wire projection and the loop's policy (turn limits,
//! interrupts, overflow, the compaction threshold).
//!
//! The model is a [`ChatModel`]: the daemon's is the OpenAI-compatible
//! [`aos_llm::LlmClient`]; tests of the loop's policy use one of their own.

mod bash;
mod turn;
mod wire;

pub use bash::bash_tool;

use aos_kernel::{DispatchPort, Outcome, Runner, SummaryCall};
use aos_llm::{ChatModel, ChatRequest, LlmClient, LlmConfig, LlmError};
use aos_types::{ErrorCode, SyscallError, Usage};
use futures::future::BoxFuture;
use serde_json::json;
use std::sync::Arc;

/// The ReActUnit: runs every dispatch of a kernel with one chat model.
#[derive(Clone)]
pub struct ReactUnit {
    model: Arc<dyn ChatModel>,
}

impl std::fmt::Debug for ReactUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReactUnit").finish_non_exhaustive()
    }
}

impl ReactUnit {
    /// A ReActUnit calling `model`.
    pub fn new(model: Arc<dyn ChatModel>) -> ReactUnit {
        ReactUnit { model }
    }

    /// A ReActUnit calling the OpenAI-compatible endpoint of `config`.
    pub fn openai(config: LlmConfig) -> Result<ReactUnit, LlmError> {
        Ok(ReactUnit::new(Arc::new(LlmClient::new(config)?)))
    }

    /// [`ReactUnit::openai`] as the kernel's runner.
    pub fn runner(config: LlmConfig) -> Result<Arc<dyn Runner>, LlmError> {
        Ok(Arc::new(ReactUnit::openai(config)?))
    }
}

impl Runner for ReactUnit {
    fn run<'a>(&'a self, port: &'a mut dyn DispatchPort) -> BoxFuture<'a, Outcome> {
        Box::pin(turn::run(self.model.as_ref(), port))
    }

    fn summarize<'a>(
        &'a self,
        call: SummaryCall<'a>,
    ) -> BoxFuture<'a, Result<(String, Usage), SyscallError>> {
        Box::pin(async move {
            let req = ChatRequest {
                model: call.model.to_string(),
                messages: vec![aos_llm::message(
                    &json!({ "role": "user", "content": call.prompt }),
                )],
                tools: Vec::new(),
                params: Default::default(),
            };
            let resp = self
                .model
                .chat(&req, call.base_url, &mut |_| {})
                .await
                .map_err(|e| {
                    SyscallError::new(ErrorCode::LlmError, format!("the summary call failed: {e}"))
                })?;
            Ok((resp.content, resp.usage))
        })
    }
}
