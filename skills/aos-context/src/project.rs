//! SessionHistory → SessionContext: each history message becomes zero or
//! more context messages `{wire, aos: {sourceMessageId, sourcePartId?,
//! kind}}` (`kernel.md` §2.3). History is read into lenient typed messages
//! ([`Msg`]: unknown fields and part types are ignored, never an error) and
//! context messages are typed ([`Cm`]) and serialised once: no `Value` tree
//! is built per message. Pure functions, so they are tested natively.

use aos_sdk::serde_json::value::RawValue;
use aos_sdk::{Value, serde_json};
use serde::{Deserialize, Serialize};

/// A history message, as far as the projection reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Msg {
    /// Message id.
    pub id: String,
    /// `user`, `assistant` or `system`.
    pub role: String,
    /// Its parts.
    pub parts: Vec<Part>,
    /// `seq`, and whether it is a finished compaction summary.
    pub metadata: Meta,
}

/// The metadata the projection reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Meta {
    /// Position in the session.
    pub seq: i64,
    /// A compaction summary.
    pub summary: Option<bool>,
    /// `completed` once the summary is finished.
    pub finish: Option<String>,
}

/// A part, as far as the projection reads it.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Part {
    /// `text`, `tool-bash`, `data-*`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Part id.
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    /// The call's arguments as stored (sent to the model as they are).
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
}

impl Part {
    fn data_str(&self, key: &str) -> Option<&str> {
        self.data.as_ref()?.get(key)?.as_str()
    }
}

/// A tool result's output, as far as the projection reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Output {
    visible_result: Option<String>,
    exit_code: Option<i64>,
    content_id: Option<String>,
    size_chars: Option<i64>,
    line_count: Option<i64>,
    preview: Option<String>,
}

/// A context message: what the model is sent (`wire`) and where it comes
/// from (`aos`).
#[derive(Debug, Clone, Serialize)]
pub struct Cm {
    /// The OpenAI chat message.
    pub wire: Wire,
    /// Its source and kind.
    pub aos: Aos,
}

/// An OpenAI chat message.
#[derive(Debug, Clone, Serialize)]
pub struct Wire {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: &'static str,
    /// The text (`null` for a call message without text).
    pub content: Option<String>,
    /// The calls of an assistant message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<Call>>,
    /// The call a tool message answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

/// A function call of the model.
#[derive(Debug, Clone, Serialize)]
pub struct Call {
    /// The call id.
    pub id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    function: Function,
}

#[derive(Debug, Clone, Serialize)]
struct Function {
    name: &'static str,
    arguments: String,
}

/// Where a context message comes from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Aos {
    #[serde(skip_serializing_if = "Option::is_none")]
    source_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_part_id: Option<String>,
    /// `user-input`, `tool-bash-call`, `skill-load`, …
    pub kind: &'static str,
}

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
pub fn start(msgs: &[Msg]) -> usize {
    start_after(msgs, 0).unwrap_or(0)
}

/// The latest completed compaction summary at index `from` or later (its
/// marker may come before `from`), if any: where the projection must start
/// again after `msgs[from..]` were read.
pub fn start_after(msgs: &[Msg], from: usize) -> Option<usize> {
    (from.max(1)..msgs.len())
        .rev()
        .find(|&i| is_summary(&msgs[i]) && is_marker(&msgs[i - 1]))
}

/// A completed compaction summary.
pub fn is_summary(m: &Msg) -> bool {
    m.metadata.summary == Some(true) && m.metadata.finish.as_deref() == Some("completed")
}

fn is_marker(m: &Msg) -> bool {
    m.parts.first().is_some_and(|p| p.kind == "data-compaction")
}

/// Whether `m` unloads a skill.
pub fn unloads(m: &Msg) -> bool {
    m.parts.iter().any(|p| p.kind == "data-skill-unload")
}

fn wire(role: &'static str, content: Option<String>) -> Wire {
    Wire {
        role,
        content,
        tool_calls: None,
        tool_call_id: None,
    }
}

fn tool_wire(call: &str, content: String) -> Wire {
    Wire {
        tool_call_id: Some(call.to_string()),
        ..wire("tool", Some(content))
    }
}

fn cm(wire: Wire, m: &Msg, part: Option<&Part>, kind: &'static str) -> Cm {
    Cm {
        wire,
        aos: Aos {
            source_message_id: Some(m.id.clone()),
            source_part_id: part.and_then(|p| p.id.clone()),
            kind,
        },
    }
}

/// Projects one history message onto `out`.
pub fn project(m: &Msg, ctx: &Ctx, out: &mut Vec<Cm>) {
    if is_summary(m) {
        let text = texts(&m.parts).join("\n");
        let w = wire(
            "user",
            Some(format!("[Summary of the conversation so far]\n{text}")),
        );
        out.push(cm(w, m, None, "compaction-summary"));
        return;
    }
    if ctx
        .folded
        .iter()
        .any(|r| r.message == m.id && r.part.is_none())
    {
        folded(m, ctx, out);
        return;
    }
    let mut text = texts(&m.parts);
    for p in &m.parts {
        match p.kind.as_str() {
            "data-skill-load" => {
                let name = p.data_str("name").unwrap_or("");
                let body = p.data_str("skillText").unwrap_or("");
                let w = wire("system", Some(format!("[[AOS-SKILL {name}]]\n{body}")));
                out.push(cm(w, m, Some(p), "skill-load"));
            }
            "data-skill-unload" => {
                let tag = format!("[[AOS-SKILL {}]]\n", p.data_str("name").unwrap_or(""));
                out.retain(|c| {
                    !(c.aos.kind == "skill-load"
                        && c.wire
                            .content
                            .as_deref()
                            .is_some_and(|s| s.starts_with(&tag)))
                });
            }
            "data-interrupt" => {
                let reason = p.data_str("reason").unwrap_or("interrupted");
                let w = wire("system", Some(format!("[interrupted: {reason}]")));
                out.push(cm(w, m, Some(p), "interrupt"));
            }
            "data-a2a" => {
                let correlation = p
                    .data_str("correlationId")
                    .map_or_else(String::new, |c| format!(", correlation {c}"));
                let from = format!(
                    "[message from agent {} (session {}, {}{correlation})]",
                    p.data_str("fromAgentId").unwrap_or("?"),
                    p.data_str("fromSessionId").unwrap_or("?"),
                    p.data_str("mode").unwrap_or("notify")
                );
                let body = std::mem::take(&mut text).join("\n");
                let w = wire("user", Some(format!("{from}\n{body}")));
                out.push(cm(w, m, Some(p), "a2a"));
            }
            _ => {}
        }
    }
    let calls = calls(&m.parts);
    if !text.is_empty() || !calls.is_empty() {
        let content = (!text.is_empty()).then(|| text.join("\n"));
        let (w, kind) = match m.role.as_str() {
            "user" => (wire("user", content), "user-input"),
            "assistant" if !calls.is_empty() => (
                Wire {
                    tool_calls: Some(calls),
                    ..wire("assistant", content)
                },
                "tool-bash-call",
            ),
            "assistant" => (wire("assistant", content), "assistant-output"),
            _ => (wire("system", content), "assistant-output"),
        };
        out.push(cm(w, m, None, kind));
    }
    for p in m.parts.iter().filter(|p| is_result(p)) {
        let (content, kind) = result_text(p, ctx, &m.id, p.id.as_deref());
        let w = tool_wire(p.tool_call_id.as_deref().unwrap_or(""), content);
        out.push(cm(w, m, Some(p), kind));
    }
}

/// A message folded by request: a placeholder; its calls keep their pairing.
fn folded(m: &Msg, ctx: &Ctx, out: &mut Vec<Cm>) {
    let seq = m.metadata.seq;
    let size: usize = m
        .parts
        .iter()
        .map(|p| serde_json::to_string(p).map_or(0, |s| s.len()))
        .sum();
    let assistant = m.role == "assistant";
    let text = format!(
        "[message {seq} folded: about {size} characters. Read: aos session history {} --from {seq} --limit 1 · Unfold: {}]",
        ctx.session_id,
        unfold_cmd(ctx.session_id, &m.id, None)
    );
    let calls = calls(&m.parts);
    let w = Wire {
        tool_calls: (!calls.is_empty() && assistant).then_some(calls),
        ..wire(
            if m.role == "user" {
                "user"
            } else {
                "assistant"
            },
            Some(text),
        )
    };
    out.push(cm(w, m, None, "message-folded"));
    if assistant {
        for p in m.parts.iter().filter(|p| is_result(p)) {
            let w = tool_wire(p.tool_call_id.as_deref().unwrap_or(""), "[folded]".into());
            out.push(cm(w, m, Some(p), "tool-bash-folded"));
        }
    }
}

fn texts(parts: &[Part]) -> Vec<String> {
    parts
        .iter()
        .filter(|p| p.kind == "text")
        .filter_map(|p| p.text.clone())
        .collect()
}

fn is_result(p: &Part) -> bool {
    p.kind == "tool-bash" && p.state.as_deref() != Some("input-available")
}

fn calls(parts: &[Part]) -> Vec<Call> {
    parts
        .iter()
        .filter(|p| p.kind == "tool-bash" && p.state.as_deref() == Some("input-available"))
        .map(|p| Call {
            id: p.tool_call_id.clone().unwrap_or_default(),
            kind: "function",
            function: Function {
                name: "bash",
                arguments: p.input.as_ref().map_or("null", |i| i.get()).to_string(),
            },
        })
        .collect()
}

fn unfold_cmd(session: &str, message: &str, part: Option<&str>) -> String {
    let mut payload = aos_sdk::json!({ "sessionId": session, "messageId": message });
    if let Some(p) = part {
        payload["partId"] = aos_sdk::json!(p);
    }
    format!("aos call session.context.unfold --payload '{payload}'")
}

/// A tool result's visible text and kind.
fn result_text(p: &Part, ctx: &Ctx, message: &str, part: Option<&str>) -> (String, &'static str) {
    if let Some(e) = &p.error_text {
        return (e.clone(), "tool-bash-result");
    }
    let raw = p.output.as_ref().map_or("null", |o| o.get());
    let o: Output = serde_json::from_str(raw).unwrap_or_default();
    let exit = o.exit_code.unwrap_or(-1);
    if Ref::hits(ctx.folded, message, part) {
        let text = format!(
            "[result folded: about {} characters, exit code {exit}. Unfold: {}]",
            raw.len(),
            unfold_cmd(ctx.session_id, message, part)
        );
        return (text, "tool-bash-folded");
    }
    if let Some(cid) = &o.content_id {
        if let Some(full) = Ref::hits(ctx.unfolded, message, part)
            .then(|| (ctx.fetch)(cid))
            .flatten()
        {
            return (full, "tool-bash-result");
        }
        let text = format!(
            "[output stored, not shown: {} characters, {} lines, exit code {exit}; content {cid}]\npreview:\n{}\nRead:   aos content read {cid} --offset 0 --limit 100\nSearch: aos content search {cid} 'PATTERN'\nShow here: {}",
            o.size_chars.unwrap_or(0),
            o.line_count.unwrap_or(0),
            o.preview.as_deref().unwrap_or(""),
            unfold_cmd(ctx.session_id, message, part)
        );
        return (text, "tool-bash-folded");
    }
    match o.visible_result {
        Some(v) => (v, "tool-bash-result"),
        None => (raw.to_string(), "tool-bash-result"),
    }
}

/// Makes the wire valid for OpenAI-compatible servers: every tool call is
/// followed by its result (a missing one is said to be missing) and no
/// result stands without its call. (The engine streams it: [`Pairing`].)
#[cfg(test)]
pub fn paired(out: &[Cm]) -> Vec<Value> {
    let mut p = Pairing::default();
    for c in out {
        p.feed(c.clone());
    }
    let mut fixed: Vec<Value> = p.fixed.iter().map(|r| parse(r)).collect();
    fixed.extend(p.tail().iter().map(to_value));
    fixed
}

/// A serialised context message as a value (tests).
#[cfg(test)]
pub fn parse(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).expect("valid JSON")
}

/// A context message as a value (tests).
#[cfg(test)]
pub fn to_value(c: &Cm) -> Value {
    serde_json::to_value(c).expect("serialisable")
}

/// [`paired`] as a stream: what has been fed is final (`fixed`) except the
/// calls still waiting for their result and what arrived meanwhile, which
/// only the end of the stream decides ([`Pairing::tail`]). A message that
/// is not the assistant's (a human's message, another agent's, a skill
/// loaded from the agent's own bash) arriving while a call runs is placed
/// after that call's result, so the model sees each call answered. A final
/// message is serialised once, when it becomes final: answers are then
/// written by concatenation. Also counts the characters of `fixed` for the
/// token estimate.
#[derive(Default)]
pub struct Pairing {
    /// Final messages, as JSON.
    pub fixed: Vec<Box<RawValue>>,
    /// Calls without a result yet.
    open: Vec<String>,
    /// Messages that arrived while calls were open, for after their results.
    deferred: Vec<Cm>,
    /// Characters of `fixed` (see [`chars`]).
    chars: usize,
}

impl Pairing {
    /// Feeds the next projected message.
    pub fn feed(&mut self, c: Cm) {
        if c.wire.role == "tool" {
            let id = c.wire.tool_call_id.as_deref().unwrap_or("");
            if let Some(i) = self.open.iter().position(|o| o == id) {
                self.open.remove(i);
                self.push(&c);
                if self.open.is_empty() {
                    self.flush_deferred();
                }
            }
            return;
        }
        if !self.open.is_empty() && c.wire.role != "assistant" {
            self.deferred.push(c);
            return;
        }
        // The assistant moved on: calls still open will get no result.
        for p in Self::placeholders(&std::mem::take(&mut self.open)) {
            self.push(&p);
        }
        self.flush_deferred();
        if let Some(calls) = &c.wire.tool_calls {
            self.open.extend(calls.iter().map(|t| t.id.clone()));
        }
        self.push(&c);
    }

    fn flush_deferred(&mut self) {
        for d in std::mem::take(&mut self.deferred) {
            self.push(&d);
        }
    }

    fn push(&mut self, c: &Cm) {
        self.chars += chars(c);
        // Plain structs of strings always serialise.
        if let Ok(raw) = serde_json::value::to_raw_value(c) {
            self.fixed.push(raw);
        }
    }

    fn placeholders(open: &[String]) -> Vec<Cm> {
        open.iter()
            .map(|id| Cm {
                wire: tool_wire(id, "(no result was recorded for this call)".into()),
                aos: Aos {
                    source_message_id: None,
                    source_part_id: None,
                    kind: "tool-bash-result",
                },
            })
            .collect()
    }

    /// What follows `fixed` for now: a placeholder per call still open, then
    /// what arrived while they were.
    pub fn tail(&self) -> Vec<Cm> {
        let mut tail = Self::placeholders(&self.open);
        tail.extend(self.deferred.iter().cloned());
        tail
    }

    /// The token estimate of `fixed` followed by `tail`.
    pub fn estimate(&self, tail: &[Cm]) -> i64 {
        ((self.chars + tail.iter().map(chars).sum::<usize>()) / 4) as i64
    }
}

/// Characters of one context message's content and tool-call arguments
/// (each call as its JSON).
fn chars(c: &Cm) -> usize {
    c.wire.content.as_ref().map_or(0, String::len)
        + c.wire.tool_calls.as_ref().map_or(0, |a| {
            a.iter()
                .map(|t| serde_json::to_string(t).map_or(0, |s| s.len()))
                .sum()
        })
}

/// Characters / 4 over contents and tool-call arguments.
#[cfg(test)]
pub fn estimate(out: &[Value]) -> i64 {
    let chars = |w: &Value| {
        w["content"].as_str().map_or(0, str::len)
            + w["tool_calls"]
                .as_array()
                .map_or(0, |a| a.iter().map(|t| t.to_string().len()).sum())
    };
    (out.iter().map(|c| chars(&c["wire"])).sum::<usize>() / 4) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use aos_sdk::json;

    fn typed(m: &Value) -> Msg {
        serde_json::from_str(&m.to_string()).expect("a message")
    }

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
        let msgs: Vec<Msg> = msgs.iter().map(typed).collect();
        let mut out = Vec::new();
        for m in &msgs[start(&msgs)..] {
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
    fn a_message_arriving_while_a_command_runs_follows_its_result() {
        // Issue 19, item 1: a human's append, an a2a --silent message and a
        // skill loaded from the agent's own bash, each while `ls` runs.
        let interleaved = [
            msg(
                4,
                "user",
                json!([{ "type": "text", "id": "pt_h", "text": "human says hi" }]),
            ),
            msg(
                4,
                "user",
                json!([{ "type": "data-a2a", "id": "pt_x", "data": { "mode": "silent", "fromAgentId": "ag_2", "fromSessionId": "se_2", "text": "fyi" } }, { "type": "text", "id": "pt_y", "text": "[message from agent ag_2] fyi" }]),
            ),
            msg(
                4,
                "system",
                json!([{ "type": "data-skill-load", "id": "pt_l", "data": { "name": "pdf", "skillText": "use pdf" } }]),
            ),
        ];
        for between in interleaved {
            let mut h = history();
            let result = h.remove(3);
            h.insert(3, between.clone());
            h.insert(4, result);
            let out = all(&h, &ctx(&[], &[]));
            let text = serde_json::to_string(&out).expect("json");
            assert!(
                !text.contains("no result was recorded"),
                "{between}: {text}"
            );
            let call = out
                .iter()
                .position(|c| c["wire"]["tool_calls"].is_array())
                .expect("call");
            assert_eq!(
                out[call + 1]["wire"]["tool_call_id"],
                "c1",
                "the result right after its call: {text}"
            );
            assert!(
                out[call + 2..]
                    .iter()
                    .any(|c| c["aos"]["source_message_id"].is_string()
                        || c["wire"]["role"] != "tool"),
                "{text}"
            );
        }
        // Still open at the end: the placeholder, then what arrived.
        let mut h = history();
        h.truncate(3);
        h.push(msg(
            4,
            "user",
            json!([{ "type": "text", "id": "pt_h", "text": "still there?" }]),
        ));
        let out = all(&h, &ctx(&[], &[]));
        let n = out.len();
        assert_eq!(out[n - 2]["wire"]["tool_call_id"], "c1");
        assert_eq!(out[n - 1]["wire"]["content"], "still there?");
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
            project(&typed(m), &c, &mut out);
            for x in &out[n..] {
                p.feed(x.clone());
            }
            let mut whole: Vec<Value> = p.fixed.iter().map(|r| parse(r)).collect();
            whole.extend(p.tail().iter().map(to_value));
            assert_eq!(whole, paired(&out), "after {}", m["id"]);
            assert_eq!(p.estimate(&p.tail()), estimate(&whole));
            assert!(p.fixed.len() >= fixed, "final messages stay final");
            fixed = p.fixed.len();
        }
    }
}
