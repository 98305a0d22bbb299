//! Typed parameters of the syscalls a client builds most: the kernel decodes
//! them with these types (unknown fields refused) and the CLI writes them
//! with the same types, so a renamed field cannot drift between the two.
//! [`Op::call`] gives the JSON body of `POST /v1/syscall`.

use crate::SkillDefaultRule;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The parameters of one syscall.
pub trait Op: Serialize {
    /// The op's name.
    const OP: &'static str;

    /// The request body: the parameters and `op`.
    fn call(&self) -> Value {
        let mut v =
            serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Default::default()));
        if let Value::Object(m) = &mut v {
            m.insert("op".into(), Value::String(Self::OP.into()));
        }
        v
    }
}

/// `agent.create`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentCreate {
    /// Shown in lists and the console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Skill rules of the agent's sessions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_skills: Vec<SkillDefaultRule>,
    /// Tool results longer than this are folded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_fold_threshold: Option<i64>,
    /// The agent's model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// What the agent's bash may reach (`network`, `limits`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Value>,
}

impl Op for AgentCreate {
    const OP: &'static str = "agent.create";
}

/// `session.create`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionCreate {
    /// The agent the session belongs to.
    pub agent_id: String,
    /// Shown in lists and the console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Skill rules of this session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_skills: Vec<SkillDefaultRule>,
    /// Tool results longer than this are folded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_fold_threshold: Option<i64>,
}

impl Op for SessionCreate {
    const OP: &'static str = "session.create";
}

/// The message of a dispatch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserMessage {
    /// Always `user`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl UserMessage {
    /// A user message with `content`.
    pub fn user(content: impl Into<String>) -> UserMessage {
        UserMessage {
            role: "user".into(),
            content: content.into(),
        }
    }
}

/// How a message from another agent reaches its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum A2aMode {
    /// Written, no dispatch started.
    Silent,
    /// Written; the agent sees it on its next turn.
    Notify,
    /// Written and dispatched.
    Wake,
}

/// The sender of a message from another agent (`data-a2a`): set by the a2a
/// service or the operator, never by an agent's own token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct A2aFrom {
    /// The delivery mode.
    pub mode: A2aMode,
    /// The sending agent.
    pub from_agent_id: String,
    /// The sending session.
    pub from_session_id: String,
    /// Ties an answer to its question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// `session.dispatch`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionDispatch {
    /// The session.
    pub session_id: String,
    /// The user message.
    pub message: UserMessage,
    /// Wait in the session's inbox when it is busy, instead of failing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub queue: bool,
    /// The sender, for a message from another agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a2a: Option<A2aFrom>,
    /// Sending twice with one key starts one dispatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl Op for SessionDispatch {
    const OP: &'static str = "session.dispatch";
}

/// `session.wait`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionWait {
    /// The dispatch.
    pub dispatch_id: String,
    /// How long to wait (default 600 000, at most 3 600 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl Op for SessionWait {
    const OP: &'static str = "session.wait";
}

/// `session.interrupt`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionInterrupt {
    /// The session.
    pub session_id: String,
    /// Written into the interrupt fact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Op for SessionInterrupt {
    const OP: &'static str = "session.interrupt";
}

/// `skill.invoke`: runs a command of a skill's service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SkillInvoke {
    /// The skill.
    pub name: String,
    /// The command's arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The command's standard input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// The session the command runs for (its agent's instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

impl Op for SkillInvoke {
    const OP: &'static str = "skill.invoke";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall_info;

    #[test]
    fn every_typed_request_names_an_op_of_the_table() {
        for op in [
            AgentCreate::OP,
            SessionCreate::OP,
            SessionDispatch::OP,
            SessionWait::OP,
            SessionInterrupt::OP,
            SkillInvoke::OP,
        ] {
            assert!(syscall_info(op).is_some(), "{op} is not in the op table");
        }
    }

    #[test]
    fn a_call_is_the_parameters_and_the_op_and_reads_back() {
        let d = SessionDispatch {
            session_id: "se_1".into(),
            message: UserMessage::user("hi"),
            queue: false,
            a2a: None,
            idempotency_key: None,
        };
        let v = d.call();
        assert_eq!(
            v,
            serde_json::json!({ "op": "session.dispatch", "sessionId": "se_1",
                                "message": { "role": "user", "content": "hi" } })
        );
        let mut params = v.as_object().cloned().unwrap_or_default();
        params.remove("op");
        let back: SessionDispatch =
            serde_json::from_value(Value::Object(params)).expect("reads back");
        assert_eq!(back.message.content, "hi");
    }

    #[test]
    fn an_unknown_field_is_refused() {
        let bad = serde_json::json!({ "dispatchId": "ds_1", "timeout": 5 });
        let e = serde_json::from_value::<SessionWait>(bad).expect_err("refused");
        assert!(e.to_string().contains("unknown field `timeout`"), "{e}");
    }
}
