//! The fixed catalogues of the kernel: the 46 hook points of `hooks.md` §3 and
//! the syscalls of `kernel.md` §3. One source of truth for the manifest
//! validator, the hook engine, the kernel's router and the docs.

/// The three hook kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// Admission: synchronous, may reject or rewrite the operation's parameters.
    Admission,
    /// Transform: synchronous, rewrites the data flowing through.
    Transform,
    /// Event: asynchronous, fire-and-forget.
    Event,
}

/// Which owner levels may register a hook point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookOwners {
    /// System-level services only.
    System,
    /// System and agent.
    SystemAgent,
    /// System, agent and session.
    All,
}

/// One hook point.
#[derive(Debug, Clone, Copy)]
pub struct HookPoint {
    /// Its name, e.g. `tool.before`.
    pub name: &'static str,
    /// Its kind.
    pub kind: HookKind,
    /// Who may own a handler.
    pub owners: HookOwners,
}

const fn hp(name: &'static str, kind: HookKind, owners: HookOwners) -> HookPoint {
    HookPoint { name, kind, owners }
}

use HookKind::{Admission as AH, Event as RE, Transform as TH};
use HookOwners::{All, System, SystemAgent};

/// Every hook point.
pub const HOOK_POINTS: &[HookPoint] = &[
    hp("skill.index.refresh.before", AH, System),
    hp("skill.discovery.before", AH, All),
    hp("skill.default.resolve.before", AH, All),
    hp("skill.load.before", AH, All),
    hp("skill.start.before", AH, All),
    hp("skill.stop.before", AH, All),
    hp("skill.invoke.before", AH, All),
    hp("session.dispatch.before", AH, All),
    hp("session.bootstrap.before", AH, All),
    hp("session.reinject.before", AH, All),
    hp("session.message.beforeWrite", AH, All),
    hp("session.compaction.before", AH, All),
    hp("compute.before", AH, All),
    hp("tool.before", AH, All),
    hp("session.system.transform", TH, All),
    hp("session.messages.transform", TH, All),
    hp("compute.params.transform", TH, All),
    hp("compute.model.resolve", TH, All),
    hp("tool.env", TH, All),
    hp("tool.after", TH, All),
    hp("context.assemble", TH, All),
    hp("context.compact", TH, All),
    hp("skill.discovery.resolve", TH, All),
    hp("aos.started", RE, System),
    hp("aos.stopping", RE, System),
    hp("skill.index.refresh.after", RE, System),
    hp("skill.discovery.after", RE, All),
    hp("skill.default.resolve.after", RE, All),
    hp("skill.load.after", RE, All),
    hp("skill.start.after", RE, All),
    hp("skill.stop.after", RE, All),
    hp("skill.invoke.after", RE, All),
    hp("agent.started", RE, SystemAgent),
    hp("agent.archived", RE, SystemAgent),
    hp("session.started", RE, All),
    hp("session.archived", RE, All),
    hp("session.dispatch.after", RE, All),
    hp("session.bootstrap.after", RE, All),
    hp("session.reinject.after", RE, All),
    hp("session.compaction.after", RE, All),
    hp("session.error", RE, All),
    hp("session.interrupted", RE, All),
    hp("context.ingest", RE, All),
    hp("context.afterTurn", RE, All),
    hp("compute.after", RE, All),
    hp("service.error", RE, All),
];

/// Looks a hook point up by name.
pub fn hook_point(name: &str) -> Option<&'static HookPoint> {
    HOOK_POINTS.iter().find(|h| h.name == name)
}

/// Command (changes state, logged) or query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallKind {
    /// Changes state; passes admission hooks; written to the RuntimeLog.
    Command,
    /// Reads only.
    Query,
}

/// One syscall of `kernel.md` §3.
#[derive(Debug, Clone, Copy)]
pub struct SyscallInfo {
    /// The op name.
    pub op: &'static str,
    /// Command or query.
    pub kind: SyscallKind,
    /// The capability group it belongs to (`session.read`, …), if any.
    pub group: &'static str,
}

const fn cmd(op: &'static str, group: &'static str) -> SyscallInfo {
    SyscallInfo {
        op,
        kind: SyscallKind::Command,
        group,
    }
}

const fn qry(op: &'static str, group: &'static str) -> SyscallInfo {
    SyscallInfo {
        op,
        kind: SyscallKind::Query,
        group,
    }
}

/// Every syscall.
pub const SYSCALLS: &[SyscallInfo] = &[
    cmd("system.update", "system.write"),
    qry("system.get", "system.read"),
    qry("system.health", "system.read"),
    cmd("skill.index.refresh", "skill.write"),
    cmd("skill.catalog.refresh", "skill.write"),
    cmd("skill.load", "skill.write"),
    cmd("skill.unload", "skill.write"),
    cmd("skill.start", "skill.write"),
    cmd("skill.stop", "skill.write"),
    cmd("skill.invoke", "skill.write"),
    qry("skill.list", "skill.read"),
    qry("skill.get", "skill.read"),
    qry("skill.catalog.preview", "skill.read"),
    qry("skill.default.resolve", "skill.read"),
    cmd("agent.create", "agent.write"),
    cmd("agent.update", "agent.write"),
    cmd("agent.archive", "agent.write"),
    qry("agent.get", "agent.read"),
    qry("agent.list", "agent.read"),
    cmd("session.create", "session.write"),
    cmd("session.dispatch", "session.write"),
    cmd("session.append", "session.write"),
    cmd("session.interrupt", "session.write"),
    cmd("session.compact", "session.write"),
    cmd("session.update", "session.write"),
    cmd("session.archive", "session.write"),
    qry("session.get", "session.read"),
    qry("session.list", "session.read"),
    qry("session.wait", "session.read"),
    cmd("session.context.fold", "session.write"),
    cmd("session.context.unfold", "session.write"),
    qry("session.context.get", "session.read"),
    qry("session.context.rebuild", "session.read"),
    qry("session.history.list", "session.read"),
    qry("session.history.get", "session.read"),
    qry("service.list", "skill.read"),
    qry("service.get", "skill.read"),
    qry(CALLER_OP, "skill.read"),
    cmd("content.put", "content.write"),
    qry("content.read", "content.read"),
    qry("content.search", "content.read"),
    qry("runtime.log.list", "log.read"),
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
    fn the_catalogue_matches_the_spec_counts() {
        let count = |k| HOOK_POINTS.iter().filter(|h| h.kind == k).count();
        assert_eq!(HOOK_POINTS.len(), 46);
        assert_eq!((count(AH), count(TH), count(RE)), (14, 9, 23));
        let mut names: Vec<_> = HOOK_POINTS.iter().map(|h| h.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 46, "hook names are unique");
        assert!(syscall_info("session.append").is_some());
        assert!(is_syscall_group("session.read"));
        assert!(!is_syscall_group("session.append"));
    }
}
