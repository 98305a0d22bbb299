//! Control blocks (AOSCB, ACB, SCB), default-skill rules, RuntimeLog entries
//! and content metadata (`kernel.md` §2).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `enable` / `disable` in a [`SkillDefaultRule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    /// Turn it on.
    Enable,
    /// Turn it off.
    Disable,
}

/// One default-skill rule. Rules resolve system → agent → session; a later
/// layer overrides an earlier one per field; a missing field says nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SkillDefaultRule {
    /// Skill name.
    pub name: String,
    /// Whether the skill text is loaded at bootstrap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<Switch>,
    /// Whether the skill's service is started for the owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Switch>,
}

/// The system control block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Aoscb {
    /// Always `aos/v1`.
    pub schema_version: String,
    /// The system's name.
    pub name: String,
    /// The skill root(s), `:`-separated.
    pub skill_root: String,
    /// Revision, from 1.
    pub revision: i64,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// System-level default-skill rules.
    pub default_skills: Vec<SkillDefaultRule>,
    /// Default model id.
    pub model: String,
    /// Results longer than this many characters are folded.
    pub auto_fold_threshold: i64,
    /// Context size, in tokens, that triggers compaction.
    pub compaction_threshold: i64,
    /// Turns a ReActUnit may take in one dispatch.
    pub max_turns: i64,
}

/// Lifecycle status of an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    /// Usable.
    Active,
    /// Read-only; history kept.
    Archived,
}

/// Who created an object: `human` or an agent id.
pub type CreatedBy = String;

/// The agent control block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Acb {
    /// Always `aos/v1`.
    pub schema_version: String,
    /// The agent's id.
    pub agent_id: String,
    /// Status.
    pub status: AgentStatus,
    /// Display name.
    pub display_name: String,
    /// Revision, from 1.
    pub revision: i64,
    /// `human` or the creating agent's id.
    pub created_by: CreatedBy,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// Set when archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<String>,
    /// Agent-level default-skill rules.
    pub default_skills: Vec<SkillDefaultRule>,
    /// Agent override of the fold threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_fold_threshold: Option<i64>,
    /// Agent override of the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Permissions granted to the agent (shape owned by the skills that read it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Value>,
}

/// Lifecycle status of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    /// Bootstrap not finished.
    Initializing,
    /// Usable.
    Ready,
    /// Read-only.
    Archived,
}

/// What a session is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionPhase {
    /// Default skills are being injected.
    Bootstrapping,
    /// Nothing runs.
    Idle,
    /// A ReActUnit holds the lease.
    Dispatched,
    /// Compaction runs.
    Compacting,
    /// The last run was interrupted.
    Interrupted,
}

impl SessionStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Initializing => "initializing",
            SessionStatus::Ready => "ready",
            SessionStatus::Archived => "archived",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "initializing" => SessionStatus::Initializing,
            "ready" => SessionStatus::Ready,
            "archived" => SessionStatus::Archived,
            _ => return None,
        })
    }
}

impl SessionPhase {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionPhase::Bootstrapping => "bootstrapping",
            SessionPhase::Idle => "idle",
            SessionPhase::Dispatched => "dispatched",
            SessionPhase::Compacting => "compacting",
            SessionPhase::Interrupted => "interrupted",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "bootstrapping" => SessionPhase::Bootstrapping,
            "idle" => SessionPhase::Idle,
            "dispatched" => SessionPhase::Dispatched,
            "compacting" => SessionPhase::Compacting,
            "interrupted" => SessionPhase::Interrupted,
            _ => return None,
        })
    }
}

impl AgentStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Active => "active",
            AgentStatus::Archived => "archived",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(AgentStatus::Active),
            "archived" => Some(AgentStatus::Archived),
            _ => None,
        }
    }
}

/// The session control block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scb {
    /// Always `aos/v1`.
    pub schema_version: String,
    /// The session's id.
    pub session_id: String,
    /// The owning agent.
    pub agent_id: String,
    /// Status.
    pub status: SessionStatus,
    /// Phase.
    pub phase: SessionPhase,
    /// Lease id while dispatched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<String>,
    /// Node holding the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_holder: Option<String>,
    /// When the lease becomes void.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<String>,
    /// The lease's term: how many leases the session has had, this one
    /// included. Every take (a dispatch, a compaction, a takeover) makes a new
    /// lease with the next term; the store sets it, never the caller.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lease_term: i64,
    /// Optional title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Revision, from 1.
    pub revision: i64,
    /// `human` or the creating agent's id.
    pub created_by: CreatedBy,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// Set when archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<String>,
    /// Session-level default-skill rules.
    pub default_skills: Vec<SkillDefaultRule>,
    /// Session override of the fold threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_fold_threshold: Option<i64>,
    /// Messages in SessionHistory.
    pub message_count: i64,
    /// Seq of the newest message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_seq: Option<i64>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// The kind of owner of a service, rule or log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OwnerType {
    /// The system.
    System,
    /// An agent.
    Agent,
    /// A session.
    Session,
}

impl OwnerType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerType::System => "system",
            OwnerType::Agent => "agent",
            OwnerType::Session => "session",
        }
    }
}

/// One RuntimeLog entry: one per command, including denied ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeLogEntry {
    /// Always `aos/v1`.
    pub schema_version: String,
    /// Entry id (monotonic per store; also the paging cursor).
    pub id: i64,
    /// When.
    pub time: String,
    /// `info`, `warn` or `error`.
    pub level: String,
    /// The syscall or internal operation.
    pub op: String,
    /// Who issued it.
    pub owner_type: String,
    /// Owner id, if not the system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// Agent concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Session concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Related ids (message ids, content ids, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refs: Option<Value>,
    /// Free-form data (the error for denied commands, raw bash results, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// Metadata of an immutable ContentStore blob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentMeta {
    /// Always `aos/v1`.
    pub schema_version: String,
    /// The blob's id.
    pub content_id: String,
    /// The session it belongs to.
    pub session_id: String,
    /// Length in characters.
    pub size_chars: i64,
    /// Number of lines.
    pub line_count: i64,
    /// When stored.
    pub created_at: String,
}
