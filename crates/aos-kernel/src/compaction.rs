//! Compaction (`kernel.md` §4.5): the kernel proposes a range of
//! SessionHistory, the context engine (`context.compact`) says how to
//! summarise it, the kernel asks the LLM when told to, and then writes the
//! marker, the summary and the re-injected skill loads in **one** append — so
//! a compaction is either wholly in SessionHistory or not at all. The caller
//! owns the session's lease and its phase.
//!
//! With no `context.compact` handler compaction does nothing (`hooks.md` §4).

use crate::bootstrap::{resolve_for, skill_load_message};
use crate::hooks::HookScope;
use crate::kernel::{Kernel, Write};
use crate::params::StoreResult;
use crate::skills::{AOS_SKILL, planned_loads};
use aos_store::{HistoryQuery, MessageExtra, NewLogEntry, NewMessage};
use aos_types::{ErrorCode, Message, Origin, Part, Role, Scb, SyscallError, Usage};
use aos_types::{hook, payloads};
use serde::Serialize;
use serde_json::{Value, json};

/// Why a compaction runs.
#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    /// Started by the loop (threshold or overflow), not by `session.compact`.
    pub auto: bool,
    /// The provider refused the context as too long.
    pub overflow: bool,
    /// Free text handed to `context.compact` as `reason`.
    pub reason: String,
}

/// What a finished compaction wrote.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Compacted {
    /// `instruct` or `managed`.
    pub mode: String,
    /// First compacted seq.
    pub from_seq: i64,
    /// Last compacted seq.
    pub to_seq: i64,
    /// Seq of the `data-compaction` marker.
    pub marker_seq: i64,
    /// Seq of the summary message.
    pub summary_seq: i64,
    /// Skills re-injected after the summary.
    pub reinjected: Vec<String>,
    /// Tokens the summary call used (zero when the engine gave the text).
    pub usage: Usage,
    /// The session after the append.
    #[serde(skip)]
    pub scb: Scb,
    /// The messages written (marker, summary, skill loads).
    #[serde(skip)]
    pub messages: Vec<Message>,
}

/// How a compaction ended without writing anything.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Declined {
    /// Why nothing was written.
    pub reason: String,
}

/// The context engine's answer to `context.compact`.
struct Plan {
    mode: String,
    from_seq: i64,
    to_seq: i64,
    summary_prompt: Option<String>,
    summary_text: Option<String>,
    reinject: Option<Vec<String>>,
}

/// A tool result longer than this is cut in the summariser's transcript.
const TRANSCRIPT_RESULT_CHARS: usize = 2_000;

/// Whether a `context.compact` handler serves this session.
pub(crate) fn available(k: &Kernel, scb: &Scb) -> bool {
    k.hooks().has_handler(hook::CONTEXT_COMPACT, scope(scb))
}

fn scope(scb: &Scb) -> HookScope<'_> {
    HookScope {
        agent_id: Some(&scb.agent_id),
        session_id: Some(&scb.session_id),
    }
}

/// Runs one compaction of `scb` (whose lease the caller holds). `Ok(Err(_))`
/// is a compaction that was declined and wrote nothing; `Err` a failure that
/// also wrote nothing.
pub(crate) async fn run(
    k: &Kernel,
    scb: &Scb,
    trigger: &Trigger,
) -> Result<Result<Compacted, Declined>, SyscallError> {
    let result = attempt(k, scb, trigger).await;
    let (level, data) = match &result {
        Ok(Ok(c)) => ("info", json!({ "compacted": c, "auto": trigger.auto })),
        Ok(Err(d)) => (
            "info",
            json!({ "declined": d.reason, "auto": trigger.auto }),
        ),
        Err(e) => ("warn", json!({ "error": e, "auto": trigger.auto })),
    };
    log(k, scb, level, data).await;
    if let Err(e) = &result {
        k.emit(
            hook::SESSION_ERROR,
            scope(scb),
            json!({ "source": "compaction", "recoverable": true, "code": e.code, "message": e.message }),
        );
    }
    result
}

async fn attempt(
    k: &Kernel,
    scb: &Scb,
    trigger: &Trigger,
) -> Result<Result<Compacted, Declined>, SyscallError> {
    let last = scb.last_message_seq.unwrap_or(0);
    if last < 1 {
        return Ok(Err(Declined {
            reason: "the session has no history to compact".into(),
        }));
    }
    let ids = json!({ "agentId": scb.agent_id, "sessionId": scb.session_id });
    let mut before = ids.clone();
    before["fromSeq"] = json!(1);
    before["toSeq"] = json!(last);
    let admitted = k
        .hooks()
        .admit(
            hook::SESSION_COMPACTION_BEFORE,
            scope(scb),
            &before,
            before.clone(),
        )
        .await?;
    let asked: payloads::SeqRange = payloads::read(&admitted);
    let (from, to) = range(
        (asked.from_seq.unwrap_or(1), asked.to_seq.unwrap_or(last)),
        last,
    )?;
    let Some(plan) = ask_engine(k, scb, trigger, (from, to), last).await? else {
        return Ok(Err(Declined {
            reason: "the context engine chose not to compact (mode skip)".into(),
        }));
    };
    let (summary, usage) = summarise(k, scb, &plan).await?;
    let reinject = reinject_plan(k, scb, plan.reinject.clone()).await?;
    let mut batch = vec![
        marker(trigger, plan.from_seq, plan.to_seq),
        summary_message(summary),
    ];
    for name in &reinject {
        batch.push(skill_load_message(
            k,
            name,
            "reinject",
            ("session", Some(&scb.session_id)),
        )?);
    }
    // Under the caller's lease: refused if another node took the session.
    let write = scb
        .lease_id
        .as_deref()
        .map_or(Write::Expecting(None), Write::Leased);
    let (messages, after) = k.append_with(scb, write, batch, None).await?;
    let seq = |i: usize| messages.get(i).map_or(0, |m| m.metadata.seq);
    let done = Compacted {
        mode: plan.mode,
        from_seq: plan.from_seq,
        to_seq: plan.to_seq,
        marker_seq: seq(0),
        summary_seq: seq(1),
        reinjected: reinject,
        usage,
        scb: after,
        messages,
    };
    finish(k, &done).await;
    Ok(Ok(done))
}

/// Reads `fromSeq`/`toSeq` from a hook's output (defaulting to `dflt`) and
/// checks `1 ≤ from ≤ to ≤ last`.
fn range((from, to): (i64, i64), last: i64) -> Result<(i64, i64), SyscallError> {
    if from < 1 || from > to || to > last {
        return Err(SyscallError::new(
            ErrorCode::ContextEngineUnavailable,
            format!("compaction range [{from}, {to}] is not within the history [1, {last}]"),
        ));
    }
    Ok((from, to))
}

/// `context.compact`: `None` when the engine says `skip` (or no engine runs).
async fn ask_engine(
    k: &Kernel,
    scb: &Scb,
    trigger: &Trigger,
    (from, to): (i64, i64),
    last: i64,
) -> Result<Option<Plan>, SyscallError> {
    let input = json!({ "sessionId": scb.session_id, "agentId": scb.agent_id, "reason": trigger.reason,
                        "auto": trigger.auto, "overflow": trigger.overflow,
                        "proposedFromSeq": from, "proposedToSeq": to });
    let dflt = json!({ "mode": "skip", "fromSeq": from, "toSeq": to, "reinjectSkills": true });
    let out = k
        .hooks()
        .transform(hook::CONTEXT_COMPACT, scope(scb), &input, dflt)
        .await;
    let plan: payloads::CompactPlan = payloads::read(&out);
    let mode = plan.mode.unwrap_or_else(|| "skip".into());
    let text = |t: Option<String>| t.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let (summary_prompt, summary_text) = (text(plan.summary_prompt), text(plan.summary_text));
    match mode.as_str() {
        "skip" => return Ok(None),
        "instruct" if summary_prompt.is_none() && summary_text.is_none() => {
            return Err(engine_error(
                "context.compact answered mode instruct without summaryPrompt or summaryText",
            ));
        }
        "instruct" | "managed" => {}
        other => {
            return Err(engine_error(&format!(
                "context.compact answered mode {other:?}; expected instruct, managed or skip"
            )));
        }
    }
    let asked = (plan.from_seq.unwrap_or(from), plan.to_seq.unwrap_or(to));
    let (from_seq, to_seq) = range(asked, last)?;
    let reinject = match plan.reinject_skills {
        Some(payloads::Reinject::All(false)) => Some(Vec::new()),
        Some(payloads::Reinject::Names(a)) => Some(
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        ),
        _ => None,
    };
    Ok(Some(Plan {
        mode,
        from_seq,
        to_seq,
        summary_prompt,
        summary_text,
        reinject,
    }))
}

fn engine_error(message: &str) -> SyscallError {
    SyscallError::new(ErrorCode::ContextEngineUnavailable, message.to_string())
}

/// The summary text: the engine's own, or the LLM's answer to its prompt.
async fn summarise(k: &Kernel, scb: &Scb, plan: &Plan) -> Result<(String, Usage), SyscallError> {
    if let Some(t) = &plan.summary_text {
        return Ok((t.clone(), Usage::default()));
    }
    let prompt = match (&plan.summary_prompt, plan.mode.as_str()) {
        (Some(p), "instruct") => p,
        _ => {
            let text = format!(
                "[Messages {}–{} are managed by the context engine and no longer shown in full.]",
                plan.from_seq, plan.to_seq
            );
            return Ok((text, Usage::default()));
        }
    };
    let transcript = transcript_of(k, scb, plan.from_seq, plan.to_seq).await?;
    let (model, base_url) = summary_model(k, scb).await?;
    let call = crate::SummaryCall {
        model: &model,
        base_url: base_url.as_deref(),
        prompt: format!("{prompt}\n\n<conversation>\n{transcript}</conversation>"),
    };
    let (text, usage) = k.runner().summarize(call).await?;
    let text = text.trim();
    if text.is_empty() {
        return Err(SyscallError::new(
            ErrorCode::LlmError,
            "the summary call returned no text",
        ));
    }
    Ok((text.to_string(), usage))
}

/// The model for the summary call: `compute.model.resolve` with
/// `requestType: "compaction"`, else the agent's, else the system's.
async fn summary_model(k: &Kernel, scb: &Scb) -> Result<(String, Option<String>), SyscallError> {
    let system = k.store().aoscb_get().await.sys()?;
    let agent = k.store().agent_get(&scb.agent_id).await.sys()?;
    let dflt = agent.model.unwrap_or(system.model);
    let input = json!({ "agentId": scb.agent_id, "sessionId": scb.session_id, "requestType": "compaction" });
    let out = k
        .hooks()
        .transform(
            hook::COMPUTE_MODEL_RESOLVE,
            scope(scb),
            &input,
            json!({ "model": dflt }),
        )
        .await;
    let choice: payloads::ModelChoice = payloads::read(&out);
    Ok((choice.model.unwrap_or(dflt), choice.base_url))
}

/// The range as a plain transcript. A completed earlier summary inside the
/// range stands for everything it summarised, so history is never re-read
/// past the last compaction.
async fn transcript_of(k: &Kernel, scb: &Scb, from: i64, to: i64) -> Result<String, SyscallError> {
    let mut messages = Vec::new();
    let mut next = from;
    while next <= to {
        let q = HistoryQuery {
            from_seq: next,
            to_seq: Some(to),
            limit: 1000,
        };
        let page = k.store().history(&scb.session_id, &q).await.sys()?;
        let Some(last) = page.last() else { break };
        next = last.metadata.seq + 1;
        messages.extend(page);
    }
    if let Some(i) = messages.iter().rposition(Message::is_summary) {
        messages.drain(..i);
    }
    Ok(crate::transcript::transcript(
        &messages,
        TRANSCRIPT_RESULT_CHARS,
    ))
}

/// The skills to re-inject: the engine's list, else the session's default
/// loads (`aos` first), through `session.reinject.before`.
async fn reinject_plan(
    k: &Kernel,
    scb: &Scb,
    asked: Option<Vec<String>>,
) -> Result<Vec<String>, SyscallError> {
    let planned = match asked {
        Some(names) => names,
        None => {
            let resolved = resolve_for(k, &scb.agent_id, &scb.default_skills).await?;
            let mut names = planned_loads(&resolved);
            if !names.iter().any(|n| n == AOS_SKILL) {
                names.insert(0, AOS_SKILL.into());
            }
            names
        }
    };
    if planned.is_empty() {
        return Ok(planned);
    }
    let input =
        json!({ "agentId": scb.agent_id, "sessionId": scb.session_id, "plannedNames": planned });
    let out = k
        .hooks()
        .admit(
            hook::SESSION_REINJECT_BEFORE,
            scope(scb),
            &input,
            input.clone(),
        )
        .await?;
    let names: Vec<String> = out
        .get("plannedNames")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or(planned);
    let index = k.skills().snapshot();
    Ok(names
        .into_iter()
        .filter(|n| index.get(n).is_some())
        .collect())
}

fn marker(trigger: &Trigger, from: i64, to: i64) -> NewMessage {
    let mut data = json!({ "auto": trigger.auto, "fromSeq": from, "toSeq": to });
    if trigger.overflow {
        data["overflow"] = json!(true);
    }
    NewMessage {
        role: Role::System,
        parts: vec![Part::DataCompaction {
            id: String::new(),
            data,
        }],
        origin: Origin::Aos,
        extra: MessageExtra::default(),
    }
}

fn summary_message(text: String) -> NewMessage {
    NewMessage {
        role: Role::Assistant,
        parts: vec![Part::text(text)],
        origin: Origin::Aos,
        extra: MessageExtra {
            summary: Some(true),
            finish: Some("completed".into()),
            ..Default::default()
        },
    }
}

/// After the append: `session.reinject.after`, the rebuilt context,
/// `session.compaction.after`.
async fn finish(k: &Kernel, c: &Compacted) {
    let scb = &c.scb;
    if !c.reinjected.is_empty() {
        k.emit(
            hook::SESSION_REINJECT_AFTER,
            scope(scb),
            json!({ "agentId": scb.agent_id, "sessionId": scb.session_id, "injectedNames": c.reinjected }),
        );
    }
    if let Err(e) = crate::context::assemble(k, scb, "rebuild").await {
        tracing::warn!(session = %scb.session_id, error = %e, "context rebuild after compaction failed");
    }
    k.emit(
        hook::SESSION_COMPACTION_AFTER,
        scope(scb),
        json!({ "agentId": scb.agent_id, "sessionId": scb.session_id, "compactionSeq": c.marker_seq }),
    );
}

async fn log(k: &Kernel, scb: &Scb, level: &'static str, data: Value) {
    let entry = NewLogEntry {
        level,
        op: "session.compaction".into(),
        owner_type: "session".into(),
        owner_id: Some(scb.session_id.clone()),
        agent_id: Some(scb.agent_id.clone()),
        session_id: Some(scb.session_id.clone()),
        refs: None,
        data: Some(data),
    };
    if let Err(e) = k.store().log_append(entry).await {
        tracing::error!(error = %e, "cannot write the RuntimeLog");
    }
}
