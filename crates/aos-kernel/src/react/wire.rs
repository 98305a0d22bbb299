//! SessionHistory → OpenAI chat wire messages, for the kernel's own minimal
//! context when no context engine is registered: the current dispatch only
//! (its user message, then the assistant's tool calls and their results), so
//! the loop can work without any skill. The full projection of a whole
//! session is the context engine's job (`aos-context`). After a compaction
//! inside the dispatch, the summary stands for everything before it.
//!
//! [`transcript`] renders messages as plain text for the compaction summary
//! call.

use aos_types::{Message, Part, Role, ToolState};
use serde_json::{Value, json};

/// The visible text of a tool result part.
fn result_text(output: Option<&Value>, error: Option<&String>) -> String {
    if let Some(e) = error {
        return e.clone();
    }
    match output {
        Some(o) => match o.get("visibleResult").and_then(Value::as_str) {
            Some(v) => v.to_string(),
            None => o.to_string(),
        },
        None => String::new(),
    }
}

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
                Part::ToolBash { tool_call_id, output, error_text, .. } => results.push(json!({
                    "role": "tool", "tool_call_id": tool_call_id,
                    "content": result_text(output.as_ref(), error_text.as_ref()),
                })),
                _ => {}
            }
        }
        let content = (!text.is_empty()).then(|| text.join("\n"));
        if crate::compaction::is_summary(m) {
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

/// Messages as a plain transcript (`user: …`, `assistant: …`, `$ command`,
/// results cut at `max_result` chars); markers, skill loads and bootstrap
/// facts are left out, an earlier summary is kept as such.
pub(crate) fn transcript(messages: &[Message], max_result: usize) -> String {
    let mut out = String::new();
    for m in messages {
        let who = match m.role {
            _ if crate::compaction::is_summary(m) => "summary of earlier conversation",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
        };
        for p in &m.parts {
            match p {
                Part::Text { text, .. } => out.push_str(&format!("{who}: {text}\n")),
                Part::ToolBash {
                    state: ToolState::InputAvailable,
                    input,
                    ..
                } => {
                    out.push_str(&format!("assistant ran: $ {}\n", input.command));
                }
                Part::ToolBash {
                    output, error_text, ..
                } => {
                    let mut r = result_text(output.as_ref(), error_text.as_ref());
                    if r.chars().count() > max_result {
                        r = r.chars().take(max_result).collect::<String>() + " […cut]";
                    }
                    out.push_str(&format!("result: {r}\n"));
                }
                Part::DataInterrupt { data, .. } => {
                    out.push_str(&format!(
                        "(interrupted: {})\n",
                        data["reason"].as_str().unwrap_or("")
                    ));
                }
                _ => {}
            }
        }
    }
    out
}
