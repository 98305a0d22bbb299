//! The typed outputs of the hooks whose answers the kernel reads back
//! (`docs/hooks.md`), one struct per hook — typed once, next to the WIT
//! that carries them as JSON, and compiled into both sides: the SDK
//! (`aos_sdk::payloads`, for the skills that write them) and the kernel
//! (`aos_types::payloads`, which reads them). Only `serde` and `serde_json`
//! may be used here. Read field by field and
//! leniently: a field a handler dropped, or gave the wrong type, is `None`
//! (the kernel then keeps its own value) while the other fields still count
//! — a guard that rewrites `command` and sends a bad `timeoutMs` still has
//! its command run, never the original.

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A field's value, or `None` when it is missing or of another type.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}

/// Reads a hook's output as `T`; an output that is not an object reads as
/// `T::default()`.
pub fn read<T: DeserializeOwned + Default>(output: &Value) -> T {
    T::deserialize(output).unwrap_or_default()
}

/// The arguments of a `bash` call (`tool.before`'s `args`, `tool.env`'s
/// input).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BashArgs {
    /// The command line.
    #[serde(default, deserialize_with = "lenient")]
    pub command: Option<String>,
    /// Its timeout.
    #[serde(default, deserialize_with = "lenient")]
    pub timeout_ms: Option<u64>,
}

/// `tool.before`'s output: the call about to run, as admitted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolBefore {
    /// Its arguments.
    #[serde(default, deserialize_with = "lenient")]
    pub args: Option<BashArgs>,
}

/// `tool.env`'s output: variables added to the command's environment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolEnv {
    /// Name → value.
    #[serde(default, deserialize_with = "lenient")]
    pub env: Option<Map<String, Value>>,
}

/// `tool.after`'s output: what the model sees of the result — text, or an
/// object (a folded output's placeholder fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolAfter {
    /// The result.
    #[serde(default, deserialize_with = "lenient")]
    pub result: Option<ToolResult>,
}

/// A result as `tool.after` gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ToolResult {
    /// Shown as it is.
    Text(String),
    /// Fields of the output (`visibleResult`, `contentId`, …).
    Fields(Map<String, Value>),
}

/// `session.system.transform`'s output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemPrompt {
    /// The system prompt; none when empty.
    #[serde(default, deserialize_with = "lenient")]
    pub system: Option<String>,
}

/// `compute.params.transform`'s output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelParams {
    /// Request parameters (temperature, …).
    #[serde(default, deserialize_with = "lenient")]
    pub params: Option<Map<String, Value>>,
}

/// `compute.model.resolve`'s output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelChoice {
    /// The model.
    #[serde(default, deserialize_with = "lenient")]
    pub model: Option<String>,
    /// Another OpenAI-compatible endpoint for this call.
    #[serde(default, deserialize_with = "lenient")]
    pub base_url: Option<String>,
    /// Parameters added to the request.
    #[serde(default, deserialize_with = "lenient")]
    pub params: Option<Map<String, Value>>,
}

/// `context.compact`'s output: the engine's compaction plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompactPlan {
    /// `instruct`, `managed` or `skip`.
    #[serde(default, deserialize_with = "lenient")]
    pub mode: Option<String>,
    /// The prompt of the summary call (`instruct`).
    #[serde(default, deserialize_with = "lenient")]
    pub summary_prompt: Option<String>,
    /// The summary itself (`managed`).
    #[serde(default, deserialize_with = "lenient")]
    pub summary_text: Option<String>,
    /// `false`: none; a list: those; else the kernel's plan.
    #[serde(default, deserialize_with = "lenient")]
    pub reinject_skills: Option<Reinject>,
    /// The first message to compact.
    #[serde(default, deserialize_with = "lenient")]
    pub from_seq: Option<i64>,
    /// The last message to compact.
    #[serde(default, deserialize_with = "lenient")]
    pub to_seq: Option<i64>,
}

/// Which skills to load again after a compaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reinject {
    /// `true`: the planned ones; `false`: none.
    All(bool),
    /// These names.
    Names(Vec<Value>),
}

/// `session.compaction.before`'s output: the range to compact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeqRange {
    /// The first message.
    #[serde(default, deserialize_with = "lenient")]
    pub from_seq: Option<i64>,
    /// The last message.
    #[serde(default, deserialize_with = "lenient")]
    pub to_seq: Option<i64>,
}

/// The details of a `hook.rejected` error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    /// The hook point.
    #[serde(default, deserialize_with = "lenient")]
    pub hook: Option<String>,
    /// The skill whose handler rejected.
    #[serde(default, deserialize_with = "lenient")]
    pub skill: Option<String>,
    /// Its instance.
    #[serde(default, deserialize_with = "lenient")]
    pub instance_id: Option<String>,
    /// Its reason.
    #[serde(default, deserialize_with = "lenient")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_field_falls_back_alone() {
        let t: ToolBefore = read(&json!({"args": {"command": "ls", "timeoutMs": "soon"}}));
        let args = t.args.unwrap_or_default();
        assert_eq!(args.command.as_deref(), Some("ls"), "the rewrite counts");
        assert_eq!(args.timeout_ms, None, "the bad timeout does not");
        let t: ToolBefore = read(&json!({"args": 3}));
        assert_eq!(t.args, None);
        assert_eq!(read::<ToolBefore>(&json!(null)), ToolBefore::default());
        let m: ModelChoice = read(&json!({"model": "m", "baseUrl": 7, "params": {"t": 1}}));
        assert_eq!((m.model.as_deref(), m.base_url), (Some("m"), None));
        let p: CompactPlan = read(&json!({"mode": "skip", "reinjectSkills": false}));
        assert_eq!(p.reinject_skills, Some(Reinject::All(false)));
    }
}
