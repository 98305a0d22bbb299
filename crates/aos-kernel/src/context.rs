//! SessionContext: the messages the next LLM call will see, rebuilt from
//! SessionHistory through the `context.assemble` hook and cached in memory
//! (never persisted). With no context engine registered the context is empty,
//! as `hooks.md` §4 specifies.

use crate::Kernel;
use crate::hooks::HookScope;
use aos_types::{Scb, SyscallError};
use serde::Serialize;
use serde_json::{Value, json};

/// The cached context of one session.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext {
    /// Session id.
    pub session_id: String,
    /// Bumped on every assembly.
    pub context_revision: u64,
    /// `{wire, aos}` context messages.
    pub messages: Vec<Value>,
    /// `{historyMessageId, historyPartId?}` of folded parts.
    pub folded_refs: Vec<Value>,
    /// The engine's token estimate.
    pub estimated_tokens: i64,
}

/// Runs `context.assemble` for `trigger` and caches the result.
pub(crate) async fn assemble(
    k: &Kernel,
    scb: &Scb,
    trigger: &str,
) -> Result<SessionContext, SyscallError> {
    let budget = k
        .inner
        .store
        .aoscb_get()
        .await
        .map(|cb| cb.compaction_threshold)
        .unwrap_or(0);
    let scope = HookScope {
        agent_id: Some(&scb.agent_id),
        session_id: Some(&scb.session_id),
    };
    let input = json!({
        "sessionId": scb.session_id, "agentId": scb.agent_id,
        "tokenBudget": budget, "trigger": trigger,
    });
    let out = k
        .inner
        .hooks
        .transform(
            "context.assemble",
            scope,
            &input,
            json!({ "messages": [], "estimatedTokens": 0 }),
        )
        .await;
    let messages = out
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let estimated_tokens = out
        .get("estimatedTokens")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut cache = k
        .inner
        .contexts
        .lock()
        .map_err(|_| SyscallError::internal("context cache poisoned"))?;
    let revision = cache.get(&scb.session_id).map_or(0, |c| c.context_revision) + 1;
    let ctx = SessionContext {
        session_id: scb.session_id.clone(),
        context_revision: revision,
        messages,
        folded_refs: Vec::new(),
        estimated_tokens,
    };
    cache.insert(scb.session_id.clone(), ctx.clone());
    Ok(ctx)
}

/// The cached context, assembling it (trigger `rebuild`) when absent.
pub(crate) async fn get(k: &Kernel, scb: &Scb) -> Result<SessionContext, SyscallError> {
    let cached = k
        .inner
        .contexts
        .lock()
        .map_err(|_| SyscallError::internal("context cache poisoned"))?
        .get(&scb.session_id)
        .cloned();
    match cached {
        Some(c) => Ok(c),
        None => assemble(k, scb, "rebuild").await,
    }
}
