//! Typed wrappers of the syscalls skills make most, so a skill does not
//! decode answers by hand: each builds the op's parameters and reads its
//! `data` straight into a struct (`docs/syscalls.md` documents every field).
//! Anything else: [`crate::syscall`] / [`crate::syscall_as`].

use crate::{SyscallError, json, syscall_as};
use serde::Deserialize;

/// A session (the fields skills use of `session.get`'s SCB).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Its id.
    pub session_id: String,
    /// Its agent.
    pub agent_id: String,
    /// `ready`, `archived`, …
    pub status: String,
    /// `idle`, `dispatched`, …
    pub phase: String,
    /// Its title.
    #[serde(default)]
    pub title: Option<String>,
    /// The seq of its last message.
    #[serde(default)]
    pub last_message_seq: Option<i64>,
}

/// `session.get`.
pub fn session_get(session_id: &str) -> Result<Session, SyscallError> {
    syscall_as("session.get", json!({ "sessionId": session_id }))
}

/// A page of sessions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sessions {
    /// The sessions.
    pub sessions: Vec<Session>,
    /// The cursor of the next page, if any.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// `session.list` of `agent_id`'s sessions (in `status`, when given),
/// newest first, `limit` of them.
pub fn session_list_newest(
    agent_id: &str,
    status: Option<&str>,
    limit: u32,
) -> Result<Sessions, SyscallError> {
    let mut params = json!({ "agentId": agent_id, "order": "desc", "limit": limit });
    if let Some(s) = status {
        params["status"] = json!(s);
    }
    syscall_as("session.list", params)
}

/// `session.create` for `agent_id`.
pub fn session_create(agent_id: &str, title: Option<&str>) -> Result<Session, SyscallError> {
    syscall_as(
        "session.create",
        json!({ "agentId": agent_id, "title": title }),
    )
}

/// What `content.put` stored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stored {
    /// Its id.
    pub content_id: String,
    /// Its length in characters.
    pub size_chars: u64,
    /// Its lines.
    pub line_count: u64,
}

/// `content.put`: `content` stored for `session_id`.
pub fn content_put(session_id: &str, content: &str) -> Result<Stored, SyscallError> {
    syscall_as(
        "content.put",
        json!({ "sessionId": session_id, "content": content }),
    )
}

/// A page of stored content.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentPage {
    /// The lines of this page, joined.
    pub content: String,
    /// The first line (0-based).
    pub offset: u64,
    /// Lines in this page.
    pub line_count: u64,
    /// Lines in all.
    pub total_lines: u64,
}

/// `content.read`: `limit` lines of `content_id` from line `offset` (0-based).
pub fn content_read(
    content_id: &str,
    offset: u64,
    limit: u64,
) -> Result<ContentPage, SyscallError> {
    syscall_as(
        "content.read",
        json!({ "contentId": content_id, "offset": offset, "limit": limit }),
    )
}

/// What `skill.load` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Loaded {
    /// The skill.
    pub name: String,
    /// The `data-skill-load` message.
    pub message_id: String,
    /// Its seq.
    pub seq: i64,
}

/// `skill.load` of `name` into `session_id`.
pub fn skill_load(name: &str, session_id: &str) -> Result<Loaded, SyscallError> {
    syscall_as(
        "skill.load",
        json!({ "name": name, "sessionId": session_id }),
    )
}
