//! SessionHistory → OpenAI chat wire messages, for the kernel's own minimal
//! context when no context engine is registered: the current dispatch only
//! (its user message, then the assistant's tool calls and their results), so
//! the loop can work without any skill. The full projection of a whole
//! session is the context engine's job (`aos-context`). After a compaction
//! inside the dispatch, the summary stands for everything before it.

use aos_types::{Message, Part, Role, ToolState};
use serde_json::{Value, json};

/// Converts messages (in seq order) to wire messages.
pub(crate) fn to_wire(messages: &[Message]) -> Vec<Value> {
    let mut out = Vec::new();
    for m in messages {
        let mut text = Vec::new();
        let mut calls = Vec::new();
        let mut results = Vec::new();
        for p in &m.parts {
            match p {
                Part::Text { text: t, .. } => text.push(t.clone()),
                Part::ToolBash { tool_call_id, state: ToolState::InputAvailable, input, .. } => calls.push(json!({
                    "id": tool_call_id, "type": "function",
                    "function": { "name": "bash", "arguments": serde_json::to_string(input).unwrap_or_default() },
                })),
                Part::ToolBash { tool_call_id, .. } => results.push(json!({
                    "role": "tool", "tool_call_id": tool_call_id,
                    "content": p.result_text().unwrap_or_default(),
                })),
                _ => {}
            }
        }
        let content = (!text.is_empty()).then(|| text.join("\n"));
        if m.is_summary() {
            out.push(json!({ "role": "user", "content":
                format!("[Summary of the conversation so far]\n{}", content.unwrap_or_default()) }));
            continue;
        }
        match m.role {
            Role::User => {
                out.push(json!({ "role": "user", "content": content.unwrap_or_default() }))
            }
            Role::Assistant if !calls.is_empty() => {
                out.push(json!({ "role": "assistant", "content": content, "tool_calls": calls }))
            }
            Role::Assistant if content.is_some() => {
                out.push(json!({ "role": "assistant", "content": content }))
            }
            _ => {}
        }
        out.extend(results);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_wire;
    use aos_types::{BashInput, Message, MessageMetadata, Origin, Part, Role, ToolState};
    use serde_json::json;

    fn message(seq: i64, role: Role, parts: Vec<Part>) -> Message {
        Message {
            id: format!("msg_{seq}"),
            role,
            parts,
            metadata: MessageMetadata {
                seq,
                created_at: String::new(),
                origin: Origin::Aos,
                from_agent_id: None,
                parent_id: None,
                summary: None,
                finish: None,
                error: None,
            },
        }
    }

    fn bash(id: &str, state: ToolState, output: Option<serde_json::Value>) -> Part {
        Part::ToolBash {
            id: String::new(),
            tool_call_id: id.into(),
            state,
            input: BashInput {
                command: "ls".into(),
                cwd: None,
                timeout_ms: None,
            },
            output,
            error_text: None,
        }
    }

    #[test]
    fn a_call_and_its_result_become_an_assistant_turn_and_a_tool_message() {
        let wire = to_wire(&[
            message(1, Role::User, vec![Part::text("list")]),
            message(
                2,
                Role::Assistant,
                vec![
                    Part::text("looking"),
                    bash("c1", ToolState::InputAvailable, None),
                ],
            ),
            message(
                3,
                Role::Assistant,
                vec![bash(
                    "c1",
                    ToolState::OutputAvailable,
                    Some(json!({ "visibleResult": "a b", "exitCode": 0 })),
                )],
            ),
        ]);
        assert_eq!(wire.len(), 3, "{wire:?}");
        assert_eq!(wire[0], json!({ "role": "user", "content": "list" }));
        assert_eq!(wire[1]["content"], "looking");
        assert_eq!(wire[1]["tool_calls"][0]["id"], "c1");
        assert_eq!(
            wire[1]["tool_calls"][0]["function"]["arguments"],
            r#"{"command":"ls"}"#
        );
        assert_eq!(
            wire[2],
            json!({ "role": "tool", "tool_call_id": "c1", "content": "a b" })
        );
    }

    #[test]
    fn a_summary_is_a_user_message_and_system_facts_are_left_out() {
        let mut summary = message(2, Role::Assistant, vec![Part::text("they listed files")]);
        summary.metadata.summary = Some(true);
        summary.metadata.finish = Some("completed".into());
        let wire = to_wire(&[
            message(1, Role::System, vec![Part::text("a fact")]),
            summary,
        ]);
        assert_eq!(
            wire,
            vec![json!({ "role": "user", "content":
                "[Summary of the conversation so far]\nthey listed files" })]
        );
    }

    #[test]
    fn an_unfinished_summary_is_an_ordinary_assistant_message() {
        let mut summary = message(2, Role::Assistant, vec![Part::text("half")]);
        summary.metadata.summary = Some(true);
        let wire = to_wire(&[summary]);
        assert_eq!(
            wire,
            vec![json!({ "role": "assistant", "content": "half" })]
        );
    }
}
