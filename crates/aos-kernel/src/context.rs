//! SessionContext: the messages the next LLM call will see, rebuilt from
//! SessionHistory through the `context.assemble` hook and cached in memory
//! (never persisted). With no context engine registered the context is empty,
//! as `hooks.md` §4 specifies.
//!
//! Folds made by request (`session.context.fold`) and stored outputs shown in
//! full (`session.context.unfold`) are runtime state of the cached context:
//! the engine gets them with every assembly, and a rebuild forgets them
//! (stored outputs, which are in SessionHistory, stay folded).
//!
//! An engine may answer with the whole context (`messages`) or, when it
//! knows the context the kernel holds (`contextRevision` and `messageCount`
//! of its input are those of its own last answer), with a change: `keep` the
//! first N messages and `append` the rest. The cached messages are shared
//! (`Arc`), so an assembly that appends copies nothing, and kept as the JSON
//! text the engine wrote ([`ContextMessage`]): the LLM request is written
//! from them without a `Value` tree.

use crate::Kernel;
use crate::hooks::HookScope;
use crate::params::{self, StoreResult, decode};
use crate::session_context::{ContextMessage, SessionContext, Slot};
use aos_types::hook;
use aos_types::{ErrorCode, Part, Scb, SyscallError};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// An engine's answer to `context.assemble`: the whole context, or `keep`
/// the first N messages and `append` these.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    messages: Option<Vec<ContextMessage>>,
    keep: Option<u64>,
    append: Option<Vec<ContextMessage>>,
    estimated_tokens: Option<Value>,
}

/// Runs `context.assemble` for `trigger` and caches the result.
pub(crate) async fn assemble(
    k: &Kernel,
    scb: &Scb,
    trigger: &str,
) -> Result<SessionContext, SyscallError> {
    assemble_with(k, scb, trigger, None, |_| {}).await
}

fn slot(k: &Kernel, session_id: &str) -> Result<Slot, SyscallError> {
    k.contexts().slot(session_id)
}

/// [`assemble`] with the trigger's data and a change to the fold state made
/// first (a rebuild clears it).
async fn assemble_with(
    k: &Kernel,
    scb: &Scb,
    trigger: &str,
    trigger_data: Option<Value>,
    change: impl FnOnce(&mut SessionContext),
) -> Result<SessionContext, SyscallError> {
    let system = k.store().aoscb_get().await.sys()?;
    let slot = slot(k, &scb.session_id)?;
    let mut state = slot.lock().await;
    if trigger == "rebuild" {
        state.folded_refs.clear();
        state.unfolded_refs.clear();
    }
    change(&mut state);
    let scope = HookScope {
        agent_id: Some(&scb.agent_id),
        session_id: Some(&scb.session_id),
    };
    let mut input = json!({
        "sessionId": scb.session_id, "agentId": scb.agent_id,
        "tokenBudget": system.compaction_threshold, "trigger": trigger,
        "foldedRefs": state.folded_refs, "unfoldedRefs": state.unfolded_refs,
        "autoFoldThreshold": fold_threshold(k, scb, Some(&system)).await?,
        "contextRevision": state.context_revision, "messageCount": state.messages.len(),
    });
    if let Some(d) = trigger_data {
        input["triggerData"] = d;
    }
    let answer: Option<Answer> = k
        .hooks()
        .algorithm(
            hook::CONTEXT_ASSEMBLE,
            scope,
            &input,
            &json!({ "messages": null, "estimatedTokens": 0 }),
        )
        .await;
    state.session_id = scb.session_id.clone();
    if answer.is_some_and(|a| apply(&mut state, a)) {
        state.context_revision += 1;
        state.assembled = true;
    } else if !k.hooks().has_handler(hook::CONTEXT_ASSEMBLE, scope) {
        // No engine at all: the context is empty.
        state.messages = Arc::default();
        state.estimated_tokens = 0;
        state.context_revision += 1;
        state.assembled = true;
    }
    // Else the engine failed: the last context and its revision stay, so an
    // engine that did answer after all (too late) answers in full next time.
    Ok(state.clone())
}

/// Applies an engine's answer (whole or `keep` + `append`); false when it
/// holds neither (the last context is then kept rather than none).
fn apply(state: &mut SessionContext, a: Answer) -> bool {
    let keep = a.keep.and_then(|n| usize::try_from(n).ok());
    match (a.messages, keep, a.append) {
        (Some(m), _, _) => state.messages = Arc::new(m),
        (None, Some(keep), Some(add)) if keep <= state.messages.len() => {
            let messages = Arc::make_mut(&mut state.messages);
            messages.truncate(keep);
            messages.extend(add);
        }
        _ => return false,
    }
    let tokens = a
        .estimated_tokens
        .as_ref()
        .and_then(|t| t.as_i64().or_else(|| t.as_f64().map(|f| f as i64)));
    state.estimated_tokens = tokens.unwrap_or(0);
    true
}

/// The cached context, assembling it (trigger `rebuild`) when absent.
pub(crate) async fn get(k: &Kernel, scb: &Scb) -> Result<SessionContext, SyscallError> {
    let cached = {
        let slot = slot(k, &scb.session_id)?;
        let state = slot.lock().await;
        state.assembled.then(|| state.clone())
    };
    match cached {
        Some(c) => Ok(c),
        None => assemble(k, scb, "rebuild").await,
    }
}

/// The effective `autoFoldThreshold`: session, else agent, else system
/// (`system` when the caller already read the AOSCB).
pub(crate) async fn fold_threshold(
    k: &Kernel,
    scb: &Scb,
    system: Option<&aos_types::Aoscb>,
) -> Result<i64, SyscallError> {
    if let Some(t) = scb.auto_fold_threshold {
        return Ok(t);
    }
    let agent = k.store().agent_get(&scb.agent_id).await.sys()?;
    if let Some(t) = agent.auto_fold_threshold {
        return Ok(t);
    }
    match system {
        Some(s) => Ok(s.auto_fold_threshold),
        None => Ok(k.store().aoscb_get().await.sys()?.auto_fold_threshold),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FoldReq {
    session_id: String,
    message_id: String,
    part_id: Option<String>,
}

/// `session.context.fold` (`fold: true`) and `session.context.unfold`.
pub(crate) async fn fold(
    k: &Kernel,
    params: Map<String, Value>,
    fold: bool,
) -> crate::kernel::OpResult {
    let op = if fold {
        "session.context.fold"
    } else {
        "session.context.unfold"
    };
    let r: FoldReq = decode(op, params)?;
    params::id("messageId", &r.message_id)?;
    let scb = crate::sessions::load(k, &r.session_id).await?;
    if !k.hooks().has_handler(
        hook::CONTEXT_ASSEMBLE,
        HookScope {
            agent_id: Some(&scb.agent_id),
            session_id: Some(&scb.session_id),
        },
    ) {
        return Err(SyscallError::new(
            ErrorCode::ContextEngineUnavailable,
            format!(
                "{op} needs a context engine (the aos-context skill) and none serves session {}",
                scb.session_id
            ),
        ));
    }
    let msg = k
        .store()
        .message_get(&scb.session_id, &r.message_id)
        .await
        .sys()?;
    if let Some(p) = r
        .part_id
        .as_ref()
        .filter(|p| !msg.parts.iter().any(|x: &Part| x.id() == p.as_str()))
    {
        return Err(SyscallError::not_found("part", p));
    }
    let mut item = json!({ "historyMessageId": r.message_id });
    if let Some(p) = &r.part_id {
        item["historyPartId"] = json!(p);
    }
    let data = item.clone();
    let trigger = if fold { "fold" } else { "unfold" };
    let ctx = assemble_with(k, &scb, trigger, Some(data), move |s| {
        s.folded_refs.retain(|x| x != &item);
        s.unfolded_refs.retain(|x| x != &item);
        if fold {
            s.folded_refs.push(item);
        } else {
            s.unfolded_refs.push(item);
        }
    })
    .await?;
    Ok(crate::kernel::Done::data(json!(ctx)).ids(Some(&scb.agent_id), Some(&scb.session_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_messages_keep_the_engines_text() {
        let a: Answer = serde_json::from_str(
            r#"{"messages":[{"wire":{"role":"user","content":"a"},"aos":{"kind":"user-input"}},{"role":"tool","content":"bare"},7],"estimatedTokens":2}"#,
        )
        .expect("an answer");
        let m = a.messages.expect("messages");
        assert_eq!(m[0].wire.get(), r#"{"role":"user","content":"a"}"#);
        assert_eq!(m[1].wire.get(), r#"{"role":"tool","content":"bare"}"#);
        assert!(m[1].aos.is_none());
        assert_eq!(m[2].wire.get(), "7");
        assert_eq!(
            serde_json::to_value(&m[0]).expect("ser"),
            json!({"wire": {"role": "user", "content": "a"}, "aos": {"kind": "user-input"}})
        );
    }

    #[test]
    fn a_change_applies_only_to_a_prefix_it_knows() {
        let answer = |t: &str| serde_json::from_str::<Answer>(t).expect("an answer");
        let mut s = SessionContext::default();
        assert!(apply(
            &mut s,
            answer(r#"{"messages":[1,2,3],"estimatedTokens":9.7}"#)
        ));
        assert_eq!((s.messages.len(), s.estimated_tokens), (3, 9));
        assert!(apply(&mut s, answer(r#"{"keep":2,"append":[4]}"#)));
        let wires: Vec<&str> = s.messages.iter().map(|m| m.wire.get()).collect();
        assert_eq!(wires, ["1", "2", "4"]);
        assert!(
            !apply(&mut s, answer(r#"{"keep":9,"append":[5]}"#)),
            "longer than held"
        );
        assert!(!apply(&mut s, answer(r#"{"keep":1}"#)), "nothing to append");
        assert!(!apply(&mut s, answer(r#"{"messages":null}"#)));
        assert_eq!(s.messages.len(), 3);
    }
}
