//! The fixed catalogue of the kernel's syscalls (`kernel.md` §3). One source
//! of truth for the manifest validator, the kernel's router and the docs; the
//! hook points are in [`crate::hooks`].

/// Command (changes state, logged) or query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallKind {
    /// Changes state; passes admission hooks; written to the RuntimeLog.
    Command,
    /// Reads only.
    Query,
}

/// How the kernel finds the owner of what an op touches: authorization is
/// decided on that owner, never on a parameter's name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Nothing owned: skills, system settings read, health.
    Global,
    /// Changes what every owner sees: system level only.
    System,
    /// `agentId`, read or changed.
    Agent {
        /// Changed, not only read.
        write: bool,
    },
    /// `sessionId` (required).
    Session,
    /// Optional `agentId` and `sessionId`.
    AgentOrSession,
    /// `dispatchId` → its session.
    Dispatch,
    /// `contentId` → its session.
    Content,
    /// `instanceId` → the instance's owner.
    Instance,
    /// `owner` of a service to start (default `system`).
    StartOwner,
    /// `ownerType`/`ownerId` of a catalog preview.
    CatalogOwner,
    /// `skill.invoke`: optional `sessionId`; without one the command runs
    /// for the system, which only the system level may ask.
    Invoke,
    /// A list, filtered to the caller's scope.
    List,
    /// The calling service's own key-value namespace (its skill and owner).
    Kv,
}

/// One syscall of `kernel.md` §3: the op table the router, the
/// authorization and the manifest validator all read.
#[derive(Debug, Clone, Copy)]
pub struct SyscallInfo {
    /// The op name.
    pub op: &'static str,
    /// Command or query.
    pub kind: SyscallKind,
    /// The capability group it belongs to (`session.read`, …).
    pub group: &'static str,
    /// How the owner of what it touches is found.
    pub target: Target,
    /// Whether the agent's bash (a session token) may call it, within its
    /// own agent.
    pub session_token: bool,
}

const BASH: bool = true;
const NOT_BASH: bool = false;

const fn op(
    op: &'static str,
    kind: SyscallKind,
    group: &'static str,
    target: Target,
    session_token: bool,
) -> SyscallInfo {
    SyscallInfo {
        op,
        kind,
        group,
        target,
        session_token,
    }
}

use SyscallKind::{Command, Query};
use Target::{
    Agent, AgentOrSession, CatalogOwner, Content, Dispatch, Global, Instance, Invoke, Kv, List,
    Session, StartOwner, System,
};

/// Every syscall.
pub const SYSCALLS: &[SyscallInfo] = &[
    op("system.update", Command, "system.write", System, NOT_BASH),
    op("system.get", Query, "system.read", Global, BASH),
    op("system.health", Query, "system.read", Global, BASH),
    op("system.nodes", Query, "system.read", Global, NOT_BASH),
    op("kv.get", Query, "kv", Kv, NOT_BASH),
    op("kv.list", Query, "kv", Kv, NOT_BASH),
    op("kv.put", Command, "kv", Kv, NOT_BASH),
    op("kv.delete", Command, "kv", Kv, NOT_BASH),
    op(
        "skill.index.refresh",
        Command,
        "skill.write",
        System,
        NOT_BASH,
    ),
    op(
        "skill.catalog.refresh",
        Command,
        "skill.write",
        System,
        NOT_BASH,
    ),
    op("skill.load", Command, "skill.write", Session, BASH),
    op("skill.unload", Command, "skill.write", Session, BASH),
    op("skill.start", Command, "skill.write", StartOwner, NOT_BASH),
    op("skill.stop", Command, "skill.write", Instance, NOT_BASH),
    op("skill.restart", Command, "skill.write", Instance, NOT_BASH),
    op("skill.invoke", Command, "skill.write", Invoke, BASH),
    op("skill.list", Query, "skill.read", Global, BASH),
    op("skill.get", Query, "skill.read", Global, BASH),
    op(
        "skill.catalog.preview",
        Query,
        "skill.read",
        CatalogOwner,
        BASH,
    ),
    op(
        "skill.default.resolve",
        Query,
        "skill.read",
        AgentOrSession,
        BASH,
    ),
    op("agent.create", Command, "agent.write", System, NOT_BASH),
    op(
        "agent.update",
        Command,
        "agent.write",
        Agent { write: true },
        NOT_BASH,
    ),
    op(
        "agent.archive",
        Command,
        "agent.write",
        Agent { write: true },
        NOT_BASH,
    ),
    op(
        "agent.get",
        Query,
        "agent.read",
        Agent { write: false },
        BASH,
    ),
    op("agent.list", Query, "agent.read", List, BASH),
    op(
        "session.create",
        Command,
        "session.write",
        Agent { write: true },
        BASH,
    ),
    op("session.dispatch", Command, "session.write", Session, BASH),
    op("session.append", Command, "session.write", Session, BASH),
    op("session.interrupt", Command, "session.write", Session, BASH),
    op("session.compact", Command, "session.write", Session, BASH),
    op("session.update", Command, "session.write", Session, BASH),
    op(
        "session.archive",
        Command,
        "session.write",
        Session,
        NOT_BASH,
    ),
    op("session.get", Query, "session.read", Session, BASH),
    op("session.list", Query, "session.read", List, BASH),
    op("session.wait", Query, "session.read", Dispatch, BASH),
    op(
        "session.context.fold",
        Command,
        "session.write",
        Session,
        BASH,
    ),
    op(
        "session.context.unfold",
        Command,
        "session.write",
        Session,
        BASH,
    ),
    op("session.context.get", Query, "session.read", Session, BASH),
    op(
        "session.context.rebuild",
        Query,
        "session.read",
        Session,
        BASH,
    ),
    op("session.history.list", Query, "session.read", Session, BASH),
    op("session.history.get", Query, "session.read", Session, BASH),
    op("service.list", Query, "skill.read", List, BASH),
    op("service.get", Query, "skill.read", Instance, BASH),
    op(CALLER_OP, Query, "skill.read", Global, NOT_BASH),
    op("content.put", Command, "content.write", Session, BASH),
    op("content.read", Query, "content.read", Content, BASH),
    op("content.search", Query, "content.read", Content, BASH),
    op("runtime.log.list", Query, "log.read", List, NOT_BASH),
];

/// The syscall a service makes while one of its commands runs, to learn who
/// ran it; answered by the service runtime, never by the kernel's router.
pub const CALLER_OP: &str = "service.caller";

/// Looks a syscall up by op name.
pub fn syscall_info(op: &str) -> Option<&'static SyscallInfo> {
    SYSCALLS.iter().find(|s| s.op == op)
}

/// Whether `name` is a syscall capability group (`session.read`, …).
pub fn is_syscall_group(name: &str) -> bool {
    SYSCALLS.iter().any(|s| s.group == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_bash_reaches_no_system_wide_op() {
        for s in SYSCALLS {
            let wide = matches!(
                s.target,
                Target::System | Target::StartOwner | Target::Instance
            );
            let admin = s.op == "runtime.log.list" || s.op == CALLER_OP;
            if (wide && s.op != "service.get")
                || admin
                || s.op.starts_with("agent.") && s.kind == SyscallKind::Command
            {
                assert!(!s.session_token, "{} must not be callable from bash", s.op);
            }
        }
        assert_eq!(SYSCALLS.len(), 48);
        assert!(syscall_info("session.append").is_some_and(|s| s.session_token));
    }

    #[test]
    fn the_catalogue_answers_by_name_and_group() {
        assert!(syscall_info("session.append").is_some());
        assert!(is_syscall_group("session.read"));
        assert!(!is_syscall_group("session.append"));
    }
}
