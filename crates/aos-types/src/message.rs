//! SessionHistory messages and their typed parts (`kernel.md` §2.2).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Author role of a message, in chat wire terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user (human or another agent).
    User,
    /// The model.
    Assistant,
    /// Kernel or skill facts.
    System,
}

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A human through the API.
    Human,
    /// The model.
    Assistant,
    /// The kernel itself.
    Aos,
    /// Another agent (a2a) or an agent's own bash.
    Agent,
}

/// Metadata the kernel fills on append.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageMetadata {
    /// Position in the session, strictly increasing from 1 with no gaps.
    pub seq: i64,
    /// Append time.
    pub created_at: String,
    /// Source.
    pub origin: Origin,
    /// Sending agent for a2a messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_agent_id: Option<String>,
    /// The message this one answers or continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Marks a compaction summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<bool>,
    /// `completed` once a summary or answer is whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish: Option<String>,
    /// Error the run ended with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// One SessionHistory message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Message id.
    pub id: String,
    /// Role.
    pub role: Role,
    /// Typed parts.
    pub parts: Vec<Part>,
    /// Kernel metadata.
    pub metadata: MessageMetadata,
}

impl Message {
    /// Whether this is a completed compaction summary (it stands for
    /// everything before it).
    pub fn is_summary(&self) -> bool {
        self.metadata.summary == Some(true) && self.metadata.finish.as_deref() == Some("completed")
    }
}

/// Input of a bash tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BashInput {
    /// The command line.
    pub command: String,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// A message part; the `type` field selects the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Part {
    /// Plain text.
    #[serde(rename = "text")]
    Text {
        /// Part id (filled by the kernel when empty).
        #[serde(default)]
        id: String,
        /// The text.
        text: String,
    },
    /// A bash tool call and its result.
    #[serde(rename = "tool-bash", rename_all = "camelCase")]
    ToolBash {
        /// Part id.
        #[serde(default)]
        id: String,
        /// The model's tool call id.
        tool_call_id: String,
        /// `input-available`, `output-available` or `output-error`.
        state: ToolState,
        /// The call.
        input: BashInput,
        /// The visible result.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
        /// Error text for `output-error`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_text: Option<String>,
    },
    /// A skill's text entering the session.
    #[serde(rename = "data-skill-load")]
    DataSkillLoad {
        /// Part id.
        #[serde(default)]
        id: String,
        /// `{cause, ownerType, ownerId?, name, skillText}`.
        data: Value,
    },
    /// A skill's text leaving the session's context (AgentOS-rs extension).
    #[serde(rename = "data-skill-unload")]
    DataSkillUnload {
        /// Part id.
        #[serde(default)]
        id: String,
        /// `{name}`.
        data: Value,
    },
    /// Compaction marker.
    #[serde(rename = "data-compaction")]
    DataCompaction {
        /// Part id.
        #[serde(default)]
        id: String,
        /// `{auto, overflow?, fromSeq, toSeq}`.
        data: Value,
    },
    /// Interrupt fact.
    #[serde(rename = "data-interrupt")]
    DataInterrupt {
        /// Part id.
        #[serde(default)]
        id: String,
        /// `{reason, payload?}`.
        data: Value,
    },
    /// Bootstrap marker.
    #[serde(rename = "data-bootstrap")]
    DataBootstrap {
        /// Part id.
        #[serde(default)]
        id: String,
        /// `{phase: begin|done, plannedNames?}`.
        data: Value,
    },
    /// Agent-to-agent envelope.
    #[serde(rename = "data-a2a")]
    DataA2a {
        /// Part id.
        #[serde(default)]
        id: String,
        /// `{mode, fromAgentId, fromSessionId, correlationId?}`.
        data: Value,
    },
}

/// State of a bash tool part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ToolState {
    /// The call is recorded, not yet run to completion.
    InputAvailable,
    /// The result is recorded.
    OutputAvailable,
    /// The call failed.
    OutputError,
}

impl Part {
    /// The visible text of a tool result part (its error, else its
    /// `visibleResult`, else its whole output); `None` for other parts and
    /// for a call still waiting for its result.
    pub fn result_text(&self) -> Option<String> {
        let Part::ToolBash {
            state,
            output,
            error_text,
            ..
        } = self
        else {
            return None;
        };
        if *state == ToolState::InputAvailable {
            return None;
        }
        if let Some(e) = error_text {
            return Some(e.clone());
        }
        Some(match output {
            Some(o) => match o.get("visibleResult").and_then(Value::as_str) {
                Some(v) => v.to_string(),
                None => o.to_string(),
            },
            None => String::new(),
        })
    }

    /// The part's id.
    pub fn id(&self) -> &str {
        match self {
            Part::Text { id, .. }
            | Part::ToolBash { id, .. }
            | Part::DataSkillLoad { id, .. }
            | Part::DataSkillUnload { id, .. }
            | Part::DataCompaction { id, .. }
            | Part::DataInterrupt { id, .. }
            | Part::DataBootstrap { id, .. }
            | Part::DataA2a { id, .. } => id,
        }
    }

    /// Mutable access to the part's id.
    pub fn id_mut(&mut self) -> &mut String {
        match self {
            Part::Text { id, .. }
            | Part::ToolBash { id, .. }
            | Part::DataSkillLoad { id, .. }
            | Part::DataSkillUnload { id, .. }
            | Part::DataCompaction { id, .. }
            | Part::DataInterrupt { id, .. }
            | Part::DataBootstrap { id, .. }
            | Part::DataA2a { id, .. } => id,
        }
    }

    /// The `data` payload of `data-*` parts.
    pub fn data(&self) -> Option<&Value> {
        match self {
            Part::DataSkillLoad { data, .. }
            | Part::DataSkillUnload { data, .. }
            | Part::DataCompaction { data, .. }
            | Part::DataInterrupt { data, .. }
            | Part::DataBootstrap { data, .. }
            | Part::DataA2a { data, .. } => Some(data),
            Part::Text { .. } | Part::ToolBash { .. } => None,
        }
    }

    /// A text part.
    pub fn text(text: impl Into<String>) -> Part {
        Part::Text {
            id: String::new(),
            text: text.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parts_round_trip_with_wire_names() {
        let p: Part = serde_json::from_value(json!({"type": "tool-bash", "toolCallId": "c1",
            "state": "input-available", "input": {"command": "ls", "timeoutMs": 5}}))
        .expect("parse");
        let v = serde_json::to_value(&p).expect("ser");
        assert_eq!(v["type"], "tool-bash");
        assert_eq!(v["toolCallId"], "c1");
        assert_eq!(v["input"]["timeoutMs"], 5);
        let b: Part = serde_json::from_value(
            json!({"type": "data-bootstrap", "id": "p", "data": {"phase": "begin"}}),
        )
        .expect("parse");
        assert_eq!(b.data().expect("data")["phase"], "begin");
    }

    #[test]
    fn unknown_part_types_and_fields_are_rejected() {
        assert!(serde_json::from_value::<Part>(json!({"type": "video", "url": "x"})).is_err());
        assert!(
            serde_json::from_value::<Part>(json!({"type": "text", "text": "a", "extra": 1}))
                .is_err()
        );
        assert!(serde_json::from_value::<Part>(json!({"type": "text"})).is_err());
    }
}

/// Token usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Both.
    pub total_tokens: u64,
}

impl Usage {
    /// Adds another call's usage.
    pub fn add(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
    }
}
