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
    fn the_catalogue_answers_by_name_and_group() {
        assert!(syscall_info("session.append").is_some());
        assert!(is_syscall_group("session.read"));
        assert!(!is_syscall_group("session.append"));
    }
}
