//! A minimal context engine: on `context.assemble` it reads the session's
//! history (`session.history.list`) and projects it to chat messages — user
//! and assistant text as such, skill loads as system text. Start it for one
//! session (`--owner session:ID`) or an agent to replace the system engine
//! there: for `context.assemble` the most specific engine wins.

use aos_sdk::{Input, Owner, Registration, Service, Value, json, syscall};

struct Engine;

/// One history message → zero or one chat message.
fn project(m: &Value) -> Option<Value> {
    let role = m["role"].as_str()?;
    let mut texts = Vec::new();
    for p in m["parts"].as_array()? {
        match p["type"].as_str()? {
            "text" => texts.push(p["text"].as_str()?.to_string()),
            "data-skill-load" => texts.push(format!(
                "[[AOS-SKILL {}]]\n{}",
                p["data"]["name"].as_str()?,
                p["data"]["skillText"].as_str()?
            )),
            _ => {}
        }
    }
    if texts.is_empty() {
        return None;
    }
    let wire_role = if role == "assistant" { "assistant" } else if role == "user" { "user" } else { "system" };
    Some(json!({
        "wire": { "role": wire_role, "content": texts.join("\n\n") },
        "aos": { "sourceMessageId": m["id"], "kind": if role == "user" { "user-input" } else if role == "assistant" { "assistant-output" } else { "skill-load" } },
    }))
}

impl Service for Engine {
    fn init(_owner: &Owner, _config: &Value) -> Result<(Self, Registration), String> {
        Ok((Self, Registration::hooks(["context.assemble"])))
    }

    fn transform(&mut self, _hook: &str, input: &Input, _output: Value) -> Result<Value, String> {
        let session = input["sessionId"].as_str().ok_or("no sessionId")?;
        let mut messages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = json!({ "sessionId": session, "limit": 1000 });
            if let Some(c) = &cursor {
                q["cursor"] = json!(c);
            }
            let page = syscall("session.history.list", q).map_err(|e| e.to_string())?;
            messages.extend(page["messages"].as_array().into_iter().flatten().filter_map(project));
            match page["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let chars: usize = messages.iter().map(|m| m["wire"]["content"].as_str().map_or(0, str::len)).sum();
        Ok(json!({ "messages": messages, "estimatedTokens": chars / 4 }))
    }
}

aos_sdk::export!(Engine);
