//! `aos-context`, the default context engine (`skills.md` §5), written with
//! the project's guest SDK:
//! - `context.assemble` projects SessionHistory onto the model's context from
//!   the latest completed compaction on ([`project`]); history is read once
//!   and then incrementally, per session, in this instance's memory;
//! - `tool.after` stores a result longer than the effective
//!   `autoFoldThreshold` with `content.put` and shows a reference instead;
//! - `context.compact` asks for a summary (`instruct`) that keeps what the
//!   work needs;
//! - `context.ingest` notes new messages (the next assembly reads them).

mod project;

use aos_sdk::{Owner, Registration, Service, Value, json, syscall};
use project::{Ctx, Pairing, Ref};
use std::collections::HashMap;
use std::sync::Mutex;

/// What this instance remembers of one session.
#[derive(Default)]
struct Session {
    /// History from the start of the context (the latest completed summary).
    raw: Vec<Value>,
    /// Seq of the last message read.
    last_seq: i64,
    /// `raw[..projected]` projected, with the fold state `key`.
    out: Vec<Value>,
    projected: usize,
    key: String,
    /// `out` paired (final part) — what the kernel was sent.
    pairing: Pairing,
    /// The kernel's context after the last answer: its revision and its
    /// length, and how many of those messages were final.
    answered: Option<Answered>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Answered {
    revision: u64,
    len: usize,
    fixed: usize,
}

static SESSIONS: Mutex<Option<HashMap<String, Session>>> = Mutex::new(None);

/// Preview length of a stored output, in characters.
const PREVIEW_CHARS: usize = 500;
/// Threshold when the kernel passes none.
const DEFAULT_FOLD: usize = 16_384;

const SUMMARY_PROMPT: &str = "Summarise the conversation below so that the work can go on from your summary alone. Keep: the user's goals and preferences, decisions taken and why, file paths, commands and their important results, errors met and how they were solved, and the open tasks with their next step. Leave out pleasantries and anything already superseded. Write plain text, at most 400 words.";

struct ContextEngine;

impl Service for ContextEngine {
    fn register(_owner: &Owner, _config: &Value) -> Result<Registration, String> {
        Ok(
            Registration::hooks(["context.assemble", "context.compact", "tool.after"])
                .with_events(["context.ingest"]),
        )
    }

    fn transform(hook: &str, input: &Value, output: Value) -> Result<Value, String> {
        match hook {
            "context.assemble" => assemble(input),
            "tool.after" => fold_large(input, output),
            "context.compact" => Ok(compact(output)),
            _ => Ok(output),
        }
    }

    fn on_event(_name: &str, _payload: &Value) {
        // The next assembly reads what was appended; nothing to keep here.
    }
}

fn assemble(input: &Value) -> Result<Value, String> {
    let sid = input["sessionId"]
        .as_str()
        .ok_or("context.assemble without sessionId")?;
    let mut guard = SESSIONS.lock().map_err(|_| "state poisoned")?;
    let sessions = guard.get_or_insert_with(HashMap::new);
    let s = sessions.entry(sid.to_string()).or_default();
    if input["trigger"] == "rebuild" {
        *s = Session::default();
    }
    let key = format!("{}{}", input["foldedRefs"], input["unfoldedRefs"]);
    let read_from = s.raw.len();
    if read_new(sid, s)? || key != s.key || unloads(&s.raw[read_from..]) {
        // A new compaction start, other folds, or a skill unloaded (which
        // removes earlier output): project everything again.
        s.out.clear();
        s.projected = 0;
        s.pairing = Pairing::default();
        s.answered = None;
        s.key = key;
    }
    let folded = Ref::list(&input["foldedRefs"]);
    let unfolded = Ref::list(&input["unfoldedRefs"]);
    let fetch = |cid: &str| read_content(cid);
    let ctx = Ctx {
        session_id: sid,
        folded: &folded,
        unfolded: &unfolded,
        fetch: &fetch,
    };
    let fed = s.out.len();
    for m in &s.raw[s.projected..] {
        project::project(m, &ctx, &mut s.out);
    }
    s.projected = s.raw.len();
    for c in &s.out[fed..] {
        s.pairing.feed(c);
    }
    Ok(answer(s, input))
}

/// Whether `msgs` unload a skill (the projection then changes what it had
/// already produced).
fn unloads(msgs: &[Value]) -> bool {
    msgs.iter().any(|m| {
        m["parts"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["type"] == "data-skill-unload"))
    })
}

/// The whole context, or only its change when the kernel holds exactly what
/// this instance answered last and that is still a prefix.
fn answer(s: &mut Session, input: &Value) -> Value {
    let tail = s.pairing.tail();
    let tokens = s.pairing.estimate(&tail);
    let fixed = &s.pairing.fixed;
    let holds = Answered {
        revision: input["contextRevision"].as_u64().unwrap_or(0),
        len: input["messageCount"]
            .as_u64()
            .map_or(usize::MAX, |n| n as usize),
        fixed: 0,
    };
    let same = s
        .answered
        .filter(|a| a.revision == holds.revision && a.len == holds.len && a.fixed <= fixed.len());
    s.answered = Some(Answered {
        revision: holds.revision + 1,
        len: fixed.len() + tail.len(),
        fixed: fixed.len(),
    });
    match same {
        Some(a) => {
            let mut append = fixed[a.fixed..].to_vec();
            append.extend(tail);
            json!({ "keep": a.fixed, "append": append, "estimatedTokens": tokens })
        }
        None => {
            let mut messages = fixed.clone();
            messages.extend(tail);
            json!({ "messages": messages, "estimatedTokens": tokens })
        }
    }
}

/// Reads the messages written since `s.last_seq`, keeping history from the
/// latest completed compaction summary on; whether that start moved.
fn read_new(sid: &str, s: &mut Session) -> Result<bool, String> {
    let from = s.raw.len();
    loop {
        let q = json!({ "sessionId": sid, "fromSeq": s.last_seq + 1, "limit": 1000 });
        let mut page = syscall("session.history.list", q).map_err(|e| e.to_string())?;
        let msgs = match page["messages"].take() {
            Value::Array(m) => m,
            _ => Vec::new(),
        };
        let Some(last) = msgs.last() else { break };
        s.last_seq = last["metadata"]["seq"].as_i64().unwrap_or(s.last_seq + 1);
        let full = msgs.len() == 1000;
        s.raw.extend(msgs);
        if !full {
            break;
        }
    }
    match project::start_after(&s.raw, from) {
        Some(start) if start > 0 => {
            s.raw.drain(..start);
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// A stored content's whole text, read a page (1 000 lines) at a time.
fn read_content(cid: &str) -> Option<String> {
    let (mut pages, mut read) = (Vec::new(), 0_u64);
    loop {
        let q = json!({ "contentId": cid, "offset": read, "limit": 1000 });
        let page = syscall("content.read", q).ok()?;
        let n = page["lineCount"].as_u64().unwrap_or(0);
        if n == 0 {
            break;
        }
        pages.push(page["content"].as_str()?.to_string());
        read += n;
        if read >= page["totalLines"].as_u64().unwrap_or(0) {
            break;
        }
    }
    Some(pages.join("\n"))
}

/// A result over the threshold is stored; the context shows a reference.
fn fold_large(input: &Value, output: Value) -> Result<Value, String> {
    let Some(text) = output["result"].as_str() else {
        return Ok(output);
    };
    let threshold = input["autoFoldThreshold"]
        .as_u64()
        .map_or(DEFAULT_FOLD, |t| t as usize);
    if text.chars().count() <= threshold {
        return Ok(output);
    }
    let sid = input["sessionId"]
        .as_str()
        .ok_or("tool.after without sessionId")?;
    let stored = syscall("content.put", json!({ "sessionId": sid, "content": text }))
        .map_err(|e| e.to_string())?;
    let preview: String = text.chars().take(PREVIEW_CHARS).collect();
    Ok(json!({ "result": {
        "visibleResult": null, "contentId": stored["contentId"],
        "sizeChars": stored["sizeChars"], "lineCount": stored["lineCount"], "preview": preview,
    } }))
}

fn compact(mut output: Value) -> Value {
    output["mode"] = json!("instruct");
    output["summaryPrompt"] = json!(SUMMARY_PROMPT);
    output["reinjectSkills"] = json!(true);
    output
}

aos_sdk::export!(ContextEngine);
