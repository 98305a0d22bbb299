//! SessionHistory → SessionContext: each history message becomes zero or
//! more context messages `{wire, aos: {sourceMessageId, sourcePartId?,
//! kind}}` (`kernel.md` §2.3). Pure functions over JSON, so they are tested
//! natively.

use aos_sdk::serde_json::value::RawValue;
use aos_sdk::{Value, json};

/// A folded or unfolded item: a whole message, or one part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// `historyMessageId`.
    pub message: String,
    /// `historyPartId`.
    pub part: Option<String>,
}

impl Ref {
    /// Reads `[{historyMessageId, historyPartId?}]`.
    pub fn list(v: &Value) -> Vec<Ref> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                Some(Ref {
                    message: r["historyMessageId"].as_str()?.to_string(),
                    part: r["historyPartId"].as_str().map(String::from),
                })
            })
            .collect()
    }

    fn hits(refs: &[Ref], message: &str, part: Option<&str>) -> bool {
        refs.iter()
            .any(|r| r.message == message && (r.part.is_none() || r.part.as_deref() == part))
    }
}

/// What the projection needs besides the messages.
pub struct Ctx<'a> {
    /// The session (for the commands in placeholders).
    pub session_id: &'a str,
    /// Folded by request (`session.context.fold`).
    pub folded: &'a [Ref],
    /// Stored outputs shown in full by request (`session.context.unfold`).
    pub unfolded: &'a [Ref],
    /// Reads a stored content's text (for unfolded outputs).
    pub fetch: &'a dyn Fn(&str) -> Option<String>,
}

/// Index of the message the projection starts at: the summary of the latest
/// *completed* compaction (a marker followed by its finished summary), else 0.
#[cfg(test)]
pub fn start(msgs: &[Value]) -> usize {
    start_after(msgs, 0).unwrap_or(0)
}

/// The latest completed compaction summary at index `from` or later (its
/// marker may come before `from`), if any: where the projection must start
/// again after `msgs[from..]` were read.
pub fn start_after(msgs: &[Value], from: usize) -> Option<usize> {
    (from.max(1)..msgs.len())
        .rev()
        .find(|&i| is_summary(&msgs[i]) && is_marker(&msgs[i - 1]))
}

/// A completed compaction summary.
pub fn is_summary(m: &Value) -> bool {
    m["metadata"]["summary"] == true && m["metadata"]["finish"] == "completed"
}

fn is_marker(m: &Value) -> bool {
    m["parts"][0]["type"] == "data-compaction"
}

fn cm(wire: Value, m: &Value, part: Option<&Value>, kind: &str) -> Value {
    let mut aos = json!({ "sourceMessageId": m["id"], "kind": kind });
    if let Some(p) = part {
        aos["sourcePartId"] = p["id"].clone();
    }
    json!({ "wire": wire, "aos": aos })
}

/// Projects one history message onto `out`.
pub fn project(m: &Value, ctx: &Ctx, out: &mut Vec<Value>) {
    let id = m["id"].as_str().unwrap_or("");
    let seq = m["metadata"]["seq"].as_i64().unwrap_or(0);
    let role = m["role"].as_str().unwrap_or("system");
    let parts = m["parts"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if is_summary(m) {
        let text = texts(parts).join("\n");
        let wire = json!({ "role": "user", "content": format!("[Summary of the conversation so far]\n{text}") });
        out.push(cm(wire, m, None, "compaction-summary"));
        return;
    }
    if ctx
        .folded
        .iter()
        .any(|r| r.message == id && r.part.is_none())
    {
        let size: usize = parts.iter().map(|p| p.to_string().len()).sum();
        let wire_role = if role == "user" { "user" } else { "assistant" };
        let text = format!(
            "[message {seq} folded: about {size} characters. Read: aos session history {} --from {seq} --limit 1 · Unfold: {}]",
            ctx.session_id,
            unfold_cmd(ctx.session_id, id, None)
        );
        // Tool calls keep their pairing: a folded call message still lists them.
        let mut wire = json!({ "role": wire_role, "content": text });
        let calls = calls(parts);
        if !calls.is_empty() && role == "assistant" {
            wire["tool_calls"] = json!(calls);
        }
        out.push(cm(wire, m, None, "message-folded"));
        if role == "assistant" {
            for p in parts.iter().filter(|p| is_result(p)) {
                let wire = json!({ "role": "tool", "tool_call_id": p["toolCallId"], "content": "[folded]" });
                out.push(cm(wire, m, Some(p), "tool-bash-folded"));
            }
        }
        return;
    }
    let mut text = texts(parts);
    for p in parts {
        match p["type"].as_str().unwrap_or("") {
            "data-skill-load" => {
                let name = p["data"]["name"].as_str().unwrap_or("");
                let body = p["data"]["skillText"].as_str().unwrap_or("");
                let wire =
                    json!({ "role": "system", "content": format!("[[AOS-SKILL {name}]]\n{body}") });
                out.push(cm(wire, m, Some(p), "skill-load"));
            }
            "data-skill-unload" => {
                let tag = format!(
                    "[[AOS-SKILL {}]]\n",
                    p["data"]["name"].as_str().unwrap_or("")
                );
                out.retain(|c| {
                    !(c["aos"]["kind"] == "skill-load"
                        && c["wire"]["content"]
                            .as_str()
                            .is_some_and(|s| s.starts_with(&tag)))
                });
            }
            "data-interrupt" => {
                let reason = p["data"]["reason"].as_str().unwrap_or("interrupted");
                let wire =
                    json!({ "role": "system", "content": format!("[interrupted: {reason}]") });
                out.push(cm(wire, m, Some(p), "interrupt"));
            }
            "data-a2a" => {
                let d = &p["data"];
                let correlation = d["correlationId"]
                    .as_str()
                    .map_or_else(String::new, |c| format!(", correlation {c}"));
                let from = format!(
                    "[message from agent {} (session {}, {}{correlation})]",
                    d["fromAgentId"].as_str().unwrap_or("?"),
                    d["fromSessionId"].as_str().unwrap_or("?"),
                    d["mode"].as_str().unwrap_or("notify")
                );
                let body = std::mem::take(&mut text).join("\n");
                let wire = json!({ "role": "user", "content": format!("{from}\n{body}") });
                out.push(cm(wire, m, Some(p), "a2a"));
            }
            _ => {}
        }
    }
    let calls = calls(parts);
    if !text.is_empty() || !calls.is_empty() {
        let content = (!text.is_empty()).then(|| text.join("\n"));
        let (wire, kind) = match role {
            "user" => (json!({ "role": "user", "content": content }), "user-input"),
            "assistant" if !calls.is_empty() => (
                json!({ "role": "assistant", "content": content, "tool_calls": calls }),
                "tool-bash-call",
            ),
            "assistant" => (
                json!({ "role": "assistant", "content": content }),
                "assistant-output",
            ),
            _ => (
                json!({ "role": "system", "content": content }),
                "assistant-output",
            ),
        };
        out.push(cm(wire, m, None, kind));
    }
    for p in parts.iter().filter(|p| is_result(p)) {
        let pid = p["id"].as_str();
        let (content, kind) = result_text(p, ctx, id, pid);
        let wire = json!({ "role": "tool", "tool_call_id": p["toolCallId"], "content": content });
        out.push(cm(wire, m, Some(p), kind));
    }
}

fn texts(parts: &[Value]) -> Vec<String> {
    parts
        .iter()
        .filter(|p| p["type"] == "text")
        .filter_map(|p| p["text"].as_str().map(String::from))
        .collect()
}

fn is_result(p: &Value) -> bool {
    p["type"] == "tool-bash" && p["state"] != "input-available"
}

fn calls(parts: &[Value]) -> Vec<Value> {
    parts
        .iter()
        .filter(|p| p["type"] == "tool-bash" && p["state"] == "input-available")
        .map(|p| {
            json!({ "id": p["toolCallId"], "type": "function",
                    "function": { "name": "bash", "arguments": p["input"].to_string() } })
        })
        .collect()
}

fn unfold_cmd(session: &str, message: &str, part: Option<&str>) -> String {
    let mut payload = json!({ "sessionId": session, "messageId": message });
    if let Some(p) = part {
        payload["partId"] = json!(p);
    }
    format!("aos call session.context.unfold --payload '{payload}'")
}

/// A tool result's visible text and kind.
fn result_text(p: &Value, ctx: &Ctx, message: &str, part: Option<&str>) -> (String, &'static str) {
    if let Some(e) = p["errorText"].as_str() {
        return (e.to_string(), "tool-bash-result");
    }
    let o = &p["output"];
    let exit = o["exitCode"].as_i64().unwrap_or(-1);
    if Ref::hits(ctx.folded, message, part) {
        let size = o.to_string().len();
        let text = format!(
            "[result folded: about {size} characters, exit code {exit}. Unfold: {}]",
            unfold_cmd(ctx.session_id, message, part)
        );
        return (text, "tool-bash-folded");
    }
    if let Some(cid) = o["contentId"].as_str() {
        if let Some(full) = Ref::hits(ctx.unfolded, message, part)
            .then(|| (ctx.fetch)(cid))
            .flatten()
        {
            return (full, "tool-bash-result");
        }
        let text = format!(
            "[output stored, not shown: {} characters, {} lines, exit code {exit}; content {cid}]\npreview:\n{}\nRead:   aos content read {cid} --offset 0 --limit 100\nSearch: aos content search {cid} 'PATTERN'\nShow here: {}",
            o["sizeChars"].as_i64().unwrap_or(0),
            o["lineCount"].as_i64().unwrap_or(0),
            o["preview"].as_str().unwrap_or(""),
            unfold_cmd(ctx.session_id, message, part)
        );
        return (text, "tool-bash-folded");
    }
    match o["visibleResult"].as_str() {
        Some(v) => (v.to_string(), "tool-bash-result"),
        None => (o.to_string(), "tool-bash-result"),
    }
}

/// Makes the wire valid for OpenAI-compatible servers: every tool call is
/// followed by its result (a missing one is said to be missing) and no
/// result stands without its call. (The engine streams it: [`Pairing`].)
#[cfg(test)]
pub fn paired(out: &[Value]) -> Vec<Value> {
    let mut p = Pairing::default();
    for c in out {
        p.feed(c.clone());
    }
    let mut fixed: Vec<Value> = p.fixed.iter().map(|r| parse(r)).collect();
    fixed.extend(Pairing::placeholders(&p.open));
    fixed
}

/// A serialised context message as a value (tests).
#[cfg(test)]
pub fn parse(raw: &RawValue) -> Value {
    aos_sdk::serde_json::from_str(raw.get()).expect("valid JSON")
}

/// [`paired`] as a stream: what has been fed is final (`fixed`) except the
/// placeholders for calls still waiting for their result, which only the end
/// of the stream decides ([`Pairing::tail`]). A final message is serialised
/// once, when it becomes final: answers are then written by concatenation.
/// Also counts the characters of `fixed` for the token estimate.
#[derive(Default)]
pub struct Pairing {
    /// Final messages, as JSON.
    pub fixed: Vec<Box<RawValue>>,
    /// Calls without a result yet.
    open: Vec<String>,
    /// Characters of `fixed` (see [`estimate`]).
    chars: usize,
}

impl Pairing {
    /// Feeds the next projected message.
    pub fn feed(&mut self, c: Value) {
        let w = &c["wire"];
        if w["role"] == "tool" {
            let id = w["tool_call_id"].as_str().unwrap_or("");
            if let Some(i) = self.open.iter().position(|o| o == id) {
                self.open.remove(i);
                self.push(&c);
            }
            return;
        }
        for p in Self::placeholders(&std::mem::take(&mut self.open)) {
            self.push(&p);
        }
        if let Some(calls) = w["tool_calls"].as_array() {
            self.open.extend(
                calls
                    .iter()
                    .filter_map(|t| t["id"].as_str().map(String::from)),
            );
        }
        self.push(&c);
    }

    fn push(&mut self, c: &Value) {
        self.chars += chars(c);
        // A `Value` always serialises.
        if let Ok(raw) = aos_sdk::serde_json::value::to_raw_value(c) {
            self.fixed.push(raw);
        }
    }

    fn placeholders(open: &[String]) -> Vec<Value> {
        open.iter()
            .map(|id| {
                let wire = json!({ "role": "tool", "tool_call_id": id, "content": "(no result was recorded for this call)" });
                json!({ "wire": wire, "aos": { "kind": "tool-bash-result" } })
            })
            .collect()
    }

    /// What follows `fixed` for now: a placeholder per call still open.
    pub fn tail(&self) -> Vec<Value> {
        Self::placeholders(&self.open)
    }

    /// The token estimate of `fixed` followed by `tail`.
    pub fn estimate(&self, tail: &[Value]) -> i64 {
        ((self.chars + tail.iter().map(chars).sum::<usize>()) / 4) as i64
    }
}

/// Characters of one context message's content and tool-call arguments.
fn chars(c: &Value) -> usize {
    let w = &c["wire"];
    w["content"].as_str().map_or(0, str::len)
        + w["tool_calls"]
            .as_array()
            .map_or(0, |a| a.iter().map(|t| t.to_string().len()).sum())
}

/// Characters / 4 over contents and tool-call arguments.
#[cfg(test)]
pub fn estimate(out: &[Value]) -> i64 {
    (out.iter().map(chars).sum::<usize>() / 4) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: i64, role: &str, parts: Value) -> Value {
        json!({ "id": format!("msg_{seq}"), "role": role, "parts": parts, "metadata": { "seq": seq } })
    }

    fn ctx<'a>(folded: &'a [Ref], unfolded: &'a [Ref]) -> Ctx<'a> {
        Ctx {
            session_id: "se_1",
            folded,
            unfolded,
            fetch: &|id| Some(format!("full text of {id}")),
        }
    }

    fn all(msgs: &[Value], c: &Ctx) -> Vec<Value> {
        let mut out = Vec::new();
        for m in &msgs[start(msgs)..] {
            project(m, c, &mut out);
        }
        paired(&out)
    }

    fn history() -> Vec<Value> {
        vec![
            msg(
                1,
                "system",
                json!([{ "type": "data-skill-load", "id": "pt_s", "data": { "name": "aos", "skillText": "use aos" } }]),
            ),
            msg(
                2,
                "user",
                json!([{ "type": "text", "id": "pt_u", "text": "list files" }]),
            ),
            msg(
                3,
                "assistant",
                json!([{ "type": "tool-bash", "id": "pt_c", "toolCallId": "c1", "state": "input-available", "input": { "command": "ls" } }]),
            ),
            msg(
                4,
                "assistant",
                json!([{ "type": "tool-bash", "id": "pt_r", "toolCallId": "c1", "state": "output-available", "input": { "command": "ls" },
                "output": { "visibleResult": null, "exitCode": 0, "contentId": "ct_1", "sizeChars": 400000, "lineCount": 9000, "preview": "a\nb" } }]),
            ),
            msg(
                5,
                "assistant",
                json!([{ "type": "text", "id": "pt_a", "text": "done" }]),
            ),
        ]
    }

    #[test]
    fn history_becomes_wire_messages_with_placeholders() {
        let out = all(&history(), &ctx(&[], &[]));
        let roles: Vec<&str> = out
            .iter()
            .map(|c| c["wire"]["role"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(roles, ["system", "user", "assistant", "tool", "assistant"]);
        assert!(
            out[0]["wire"]["content"]
                .as_str()
                .unwrap_or("")
                .starts_with("[[AOS-SKILL aos]]")
        );
        assert_eq!(out[2]["wire"]["tool_calls"][0]["id"], "c1");
        let placeholder = out[3]["wire"]["content"].as_str().unwrap_or("");
        assert!(
            placeholder.contains("400000 characters, 9000 lines"),
            "{placeholder}"
        );
        assert!(placeholder.contains("aos content read ct_1 --offset 0 --limit 100"));
        assert!(placeholder.contains("aos content search ct_1"));
        assert!(placeholder.contains("session.context.unfold"));
        assert_eq!(out[3]["aos"]["kind"], "tool-bash-folded");
        assert_eq!(out[3]["aos"]["sourcePartId"], "pt_r");
    }

    #[test]
    fn folds_and_unfolds_change_what_is_shown() {
        let unfolded = [Ref {
            message: "msg_4".into(),
            part: Some("pt_r".into()),
        }];
        let out = all(&history(), &ctx(&[], &unfolded));
        assert_eq!(out[3]["wire"]["content"], "full text of ct_1");
        let folded = [Ref {
            message: "msg_2".into(),
            part: None,
        }];
        let out = all(&history(), &ctx(&folded, &[]));
        let text = out[1]["wire"]["content"].as_str().unwrap_or("");
        assert!(text.starts_with("[message 2 folded"), "{text}");
        assert_eq!(out[1]["aos"]["kind"], "message-folded");
    }

    #[test]
    fn the_latest_completed_compaction_starts_the_context() {
        let mut h = history();
        h.push(msg(6, "system", json!([{ "type": "data-compaction", "id": "pt_m", "data": { "auto": false, "fromSeq": 1, "toSeq": 5 } }])));
        let mut s = msg(
            7,
            "assistant",
            json!([{ "type": "text", "id": "pt_x", "text": "S1" }]),
        );
        s["metadata"]["summary"] = json!(true);
        s["metadata"]["finish"] = json!("completed");
        h.push(s);
        h.push(msg(
            8,
            "user",
            json!([{ "type": "text", "id": "pt_y", "text": "next" }]),
        ));
        // A marker whose summary never completed does not count.
        h.push(msg(
            9,
            "system",
            json!([{ "type": "data-compaction", "id": "pt_n", "data": {} }]),
        ));
        let out = all(&h, &ctx(&[], &[]));
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(
            out[0]["wire"]["content"],
            "[Summary of the conversation so far]\nS1"
        );
        assert_eq!(out[1]["wire"]["content"], "next");
    }

    #[test]
    fn calls_and_results_are_always_paired() {
        let mut h = history();
        h.truncate(3); // the call, no result yet
        h.insert(0, msg(0, "assistant", json!([{ "type": "tool-bash", "id": "pt_o", "toolCallId": "orphan", "state": "output-available", "output": { "visibleResult": "x", "exitCode": 0 } }])));
        let out = all(&h, &ctx(&[], &[]));
        assert!(
            out.iter().all(|c| c["wire"]["tool_call_id"] != "orphan"),
            "no result without its call"
        );
        let last = out.last().expect("last");
        assert_eq!(
            (
                last["wire"]["role"].as_str(),
                last["wire"]["tool_call_id"].as_str()
            ),
            (Some("tool"), Some("c1"))
        );
        assert!(estimate(&out) > 0);
    }

    #[test]
    fn an_unloaded_skill_leaves_the_context() {
        let mut h = history();
        h.push(msg(
            6,
            "system",
            json!([{ "type": "data-skill-unload", "id": "pt_z", "data": { "name": "aos" } }]),
        ));
        let out = all(&h, &ctx(&[], &[]));
        assert!(out.iter().all(|c| c["aos"]["kind"] != "skill-load"));
    }

    #[test]
    fn pairing_as_a_stream_equals_the_whole_at_every_step_and_only_grows() {
        let mut h = history();
        h.insert(0, msg(0, "assistant", json!([{ "type": "tool-bash", "id": "pt_o", "toolCallId": "orphan", "state": "output-available", "output": { "visibleResult": "x", "exitCode": 0 } }])));
        h.push(msg(
            7,
            "user",
            json!([{ "type": "text", "id": "pt_u", "text": "and now?" }]),
        ));
        let c = ctx(&[], &[]);
        let (mut out, mut p, mut fixed) = (Vec::new(), Pairing::default(), 0);
        for m in &h {
            let n = out.len();
            project(m, &c, &mut out);
            for x in &out[n..] {
                p.feed(x.clone());
            }
            let mut whole: Vec<Value> = p.fixed.iter().map(|r| parse(r)).collect();
            whole.extend(p.tail());
            assert_eq!(whole, paired(&out), "after {}", m["id"]);
            assert_eq!(p.estimate(&p.tail()), estimate(&whole));
            assert!(p.fixed.len() >= fixed, "final messages stay final");
            fixed = p.fixed.len();
        }
    }
}
