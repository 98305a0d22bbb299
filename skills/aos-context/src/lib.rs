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

use aos_sdk::{Input, Owner, Registration, Service, Value, json, syscall_as};
use project::{Ctx, Msg, Pairing, Ref};
use std::collections::HashMap;
use std::sync::Mutex;

/// What this instance remembers of one session.
#[derive(Default)]
struct Session {
    /// History from the start of the context (the latest completed summary).
    raw: Vec<Msg>,
    /// Seq of the last message read.
    last_seq: i64,
    /// `raw[..projected]` projected, with the fold state `key`, and paired
    /// (its final part serialised) — what the kernel was sent.
    projected: usize,
    key: String,
    pairing: Pairing,
    /// The kernel's context after the last answer: its revision and its
    /// length, and how many of those messages were final.
    answered: Option<Answered>,
    /// When it was last assembled (a tick of [`Sessions`]), for eviction.
    used: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Answered {
    revision: u64,
    len: usize,
    fixed: usize,
}

/// Sessions whose state this instance keeps; past it the least recently
/// assembled one is dropped (its next assembly reads its history again and
/// answers the whole context). An idle session costs this instance nothing.
const MAX_SESSIONS: usize = 64;

/// The sessions this instance remembers, and a tick for their last use.
#[derive(Default)]
struct Sessions {
    by_id: HashMap<String, Session>,
    tick: u64,
}

impl Sessions {
    /// The state of `sid`, made (evicting the least recently used one
    /// when full) if this instance has none.
    fn get(&mut self, sid: &str) -> &mut Session {
        self.tick += 1;
        if !self.by_id.contains_key(sid) && self.by_id.len() >= MAX_SESSIONS {
            let oldest = self
                .by_id
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.by_id.remove(&k);
            }
        }
        let s = self.by_id.entry(sid.to_string()).or_default();
        s.used = self.tick;
        s
    }
}

static SESSIONS: Mutex<Option<Sessions>> = Mutex::new(None);

/// Preview length of a stored output, in characters.
const PREVIEW_CHARS: usize = 500;
/// Threshold when the kernel passes none.
const DEFAULT_FOLD: usize = 16_384;

const SUMMARY_PROMPT: &str = "Summarise the conversation below so that the work can go on from your summary alone. Keep: the user's goals and preferences, decisions taken and why, file paths, commands and their important results, errors met and how they were solved, and the open tasks with their next step. Leave out pleasantries and anything already superseded. Write plain text, at most 400 words.";

struct ContextEngine;

impl Service for ContextEngine {
    fn init(_owner: &Owner, _config: &Value) -> Result<(Self, Registration), String> {
        let registration =
            Registration::hooks(["context.assemble", "context.compact", "tool.after"])
                .with_events(["context.ingest"]);
        Ok((Self, registration))
    }

    fn transform(&mut self, hook: &str, input: &Input, output: Value) -> Result<Value, String> {
        match hook {
            "tool.after" => fold_large(input, output),
            "context.compact" => Ok(compact(output)),
            _ => Ok(output),
        }
    }

    /// The context is written as JSON text from the messages serialised
    /// when they became final: no tree is built or copied per answer.
    fn transform_json(
        &mut self,
        hook: &str,
        input: &Input,
        _output: &str,
    ) -> Option<Result<String, String>> {
        (hook == "context.assemble").then(|| assemble(input))
    }

    fn on_event(&mut self, _name: &str, _payload: &Value) {
        // The next assembly reads what was appended; nothing to keep here.
    }
}

fn assemble(input: &Value) -> Result<String, String> {
    let sid = input["sessionId"]
        .as_str()
        .ok_or("context.assemble without sessionId")?;
    let mut guard = SESSIONS.lock().map_err(|_| "state poisoned")?;
    let s = guard.get_or_insert_with(Sessions::default).get(sid);
    if input["trigger"] == "rebuild" {
        *s = Session {
            used: s.used,
            ..Session::default()
        };
    }
    let key = format!("{}{}", input["foldedRefs"], input["unfoldedRefs"]);
    let read_from = s.raw.len();
    if read_new(sid, s)? || key != s.key || s.raw[read_from..].iter().any(project::unloads) {
        // A new compaction start, other folds, or a skill unloaded (which
        // removes earlier output): project everything again.
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
    // An unload among these messages removes what a load earlier among them
    // produced; anything before them was projected again from the start.
    let mut out = Vec::new();
    for m in &s.raw[s.projected..] {
        project::project(m, &ctx, &mut out);
    }
    s.projected = s.raw.len();
    for c in out {
        s.pairing.feed(c);
    }
    Ok(answer(s, input))
}

/// The whole context, or only its change when the kernel holds exactly what
/// this instance answered last and that is still a prefix; as JSON text.
fn answer(s: &mut Session, input: &Value) -> String {
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
    let (head, from) = match same {
        Some(a) => (format!(r#"{{"keep":{},"append":["#, a.fixed), a.fixed),
        None => (r#"{"messages":["#.to_string(), 0),
    };
    let size: usize = fixed[from..].iter().map(|m| m.get().len() + 1).sum();
    let mut text = String::with_capacity(head.len() + size + 64);
    text.push_str(&head);
    let mut first = true;
    let mut add = |item: &str| {
        if !std::mem::take(&mut first) {
            text.push(',');
        }
        text.push_str(item);
    };
    for m in &fixed[from..] {
        add(m.get());
    }
    for t in &tail {
        add(&aos_sdk::serde_json::to_string(t).unwrap_or_default());
    }
    text.push_str(&format!(r#"],"estimatedTokens":{tokens}}}"#));
    text
}

/// Reads the messages written since `s.last_seq`, keeping history from the
/// latest completed compaction summary on; whether that start moved.
fn read_new(sid: &str, s: &mut Session) -> Result<bool, String> {
    /// The part of a `session.history.list` page this engine reads.
    #[derive(serde::Deserialize)]
    struct Page {
        messages: Vec<Msg>,
    }
    let from = s.raw.len();
    loop {
        let q = json!({ "sessionId": sid, "fromSeq": s.last_seq + 1, "limit": 1000 });
        let page: Page = syscall_as("session.history.list", q).map_err(|e| e.to_string())?;
        let Some(last) = page.messages.last() else {
            break;
        };
        s.last_seq = last.metadata.seq.max(s.last_seq + 1);
        let full = page.messages.len() == 1000;
        s.raw.extend(page.messages);
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
        let page = aos_sdk::ops::content_read(cid, read, 1000).ok()?;
        if page.line_count == 0 {
            break;
        }
        pages.push(page.content);
        read += page.line_count;
        if read >= page.total_lines {
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
    let stored = aos_sdk::ops::content_put(sid, text).map_err(|e| e.to_string())?;
    let preview: String = text.chars().take(PREVIEW_CHARS).collect();
    Ok(json!({ "result": {
        "visibleResult": null, "contentId": stored.content_id,
        "sizeChars": stored.size_chars, "lineCount": stored.line_count, "preview": preview,
    } }))
}

fn compact(mut output: Value) -> Value {
    output["mode"] = json!("instruct");
    output["summaryPrompt"] = json!(SUMMARY_PROMPT);
    output["reinjectSkills"] = json!(true);
    output
}

aos_sdk::export!(ContextEngine);
