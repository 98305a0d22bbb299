//! The AgentOS data model shared by every layer: ids, times, control blocks,
//! SessionHistory messages, RuntimeLog entries, content metadata, the syscall
//! envelope and the error codes of `kernel.md` §3.
//!
//! JSON field names are camelCase and every persisted record carries
//! [`SCHEMA_VERSION`].

mod catalog;
mod error;
mod hooks;
mod ids;
mod message;
#[path = "../../aos-sdk/wit/since_v0.2/payloads.rs"]
pub mod payloads;
mod records;
pub mod requests;
mod syscall;

pub use catalog::{
    CALLER_OP, SYSCALLS, SyscallInfo, SyscallKind, Target, is_syscall_group, syscall_info,
};
pub use error::{ErrorCode, SyscallError};
pub use hooks::{
    Admission, Algorithm, Event, HOOK_POINTS, HookKind, HookOwners, HookPoint, Point, Transform,
    Transforming, hook, hook_point,
};
pub use ids::{IdKind, format_time, new_id, now, parse_time, validate_id};
pub use message::{BashInput, Message, MessageMetadata, Origin, Part, Role, ToolState, Usage};
pub use records::{
    Acb, AgentStatus, Aoscb, ContentMeta, CreatedBy, OwnerType, RuntimeLogEntry, Scb, SessionPhase,
    SessionStatus, SkillDefaultRule, Switch,
};
pub use syscall::{Data, Request, Response};

/// Schema tag written into every persisted record.
pub const SCHEMA_VERSION: &str = "aos/v1";
