//! Messages rendered as plain text for the compaction summary call.

use aos_types::{Message, Part, Role, ToolState};

/// Messages as a plain transcript (`user: …`, `assistant: …`, `$ command`,
/// results cut at `max_result` chars); markers, skill loads and bootstrap
/// facts are left out, an earlier summary is kept as such.
pub(crate) fn transcript(messages: &[Message], max_result: usize) -> String {
    let mut out = String::new();
    for m in messages {
        let who = match m.role {
            _ if m.is_summary() => "summary of earlier conversation",
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
                Part::ToolBash { .. } => {
                    let mut r = p.result_text().unwrap_or_default();
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
