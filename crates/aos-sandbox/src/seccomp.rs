//! The seccomp filters of a confined command, compiled once per variant with
//! `seccompiler`:
//! - system calls no agent command needs, that reach other processes or the
//!   kernel's configuration, fail with `EPERM`;
//! - so do sockets outside TCP/IP (and netlink route queries), UDP sockets
//!   unless the network is `all` or Landlock checks UDP ports, and `AF_UNIX`
//!   sockets unless Landlock scopes them;
//! - `clone3` fails with `ENOSYS` (its flags live in memory a filter cannot
//!   read; libc falls back to `clone`, whose namespace flags are checked).
//!
//! Two filters, not one per rule group: loading a filter (checking and
//! compiling it) is the largest part of a confined spawn's cost after `exec`
//! itself (docs/performance.md).

use crate::SandboxError;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// Compiled filters, applied in order.
pub(crate) type Filters = Arc<Vec<BpfProgram>>;

/// System calls refused outright.
const DENIED: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pidfd_getfd,
    libc::SYS_kcmp,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_fanotify_init,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_vhangup,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
];

/// `clone` flags that make new namespaces.
const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWCGROUP as u64,
];

fn cond(arg: u8, op: Op, value: u64) -> Result<SeccompCondition, SandboxError> {
    SeccompCondition::new(arg, Len::Dword, op, value).map_err(seccomp_err)
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, SandboxError> {
    SeccompRule::new(conditions).map_err(seccomp_err)
}

fn seccomp_err(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Setup(format!("seccomp filter: {e}"))
}

fn arch() -> Result<TargetArch, SandboxError> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(seccomp_err)
}

fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> Result<BpfProgram, SandboxError> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch()?,
    )
    .map_err(seccomp_err)?;
    filter.try_into().map_err(seccomp_err)
}

/// Everything refused with `EPERM`: the [`DENIED`] calls, `clone` with
/// namespace flags, and the sockets of [`socket_rules`].
fn denied_calls(allow_udp: bool, allow_unix: bool) -> Result<BpfProgram, SandboxError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|n| (*n, Vec::new())).collect();
    let clone = NAMESPACE_FLAGS
        .iter()
        .map(|f| rule(vec![cond(0, Op::MaskedEq(*f), *f)?]))
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_clone, clone);
    rules.insert(libc::SYS_socket, socket_rules(allow_udp, allow_unix)?);
    compile(rules, libc::EPERM)
}

fn no_clone3() -> Result<BpfProgram, SandboxError> {
    compile(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        libc::ENOSYS,
    )
}

/// Which `socket(domain, type, protocol)` calls fail.
fn socket_rules(allow_udp: bool, allow_unix: bool) -> Result<Vec<SeccompRule>, SandboxError> {
    const TYPE_MASK: u64 = 0xf;
    let (inet, inet6, netlink, unix) = (
        libc::AF_INET as u64,
        libc::AF_INET6 as u64,
        libc::AF_NETLINK as u64,
        libc::AF_UNIX as u64,
    );
    let (stream, dgram) = (libc::SOCK_STREAM as u64, libc::SOCK_DGRAM as u64);
    let mut socket = Vec::new();
    // Any other family.
    let mut other = vec![
        cond(0, Op::Ne, inet)?,
        cond(0, Op::Ne, inet6)?,
        cond(0, Op::Ne, netlink)?,
    ];
    if allow_unix {
        other.push(cond(0, Op::Ne, unix)?);
    }
    socket.push(rule(other)?);
    // Netlink: route queries only (getaddrinfo, `ip addr`).
    socket.push(rule(vec![
        cond(0, Op::Eq, netlink)?,
        cond(2, Op::Ne, libc::NETLINK_ROUTE as u64)?,
    ])?);
    for family in [inet, inet6] {
        // Types other than stream and datagram: raw, RDM, seqpacket (SCTP),
        // DCCP, packet (the others do not exist).
        for t in [3, 4, 5, 6, 10] {
            socket.push(rule(vec![
                cond(0, Op::Eq, family)?,
                cond(1, Op::MaskedEq(TYPE_MASK), t)?,
            ])?);
        }
        // Streams are TCP (protocol 0 or IPPROTO_TCP): Landlock checks
        // TCP ports, not MPTCP's or SCTP's.
        socket.push(rule(vec![
            cond(0, Op::Eq, family)?,
            cond(1, Op::MaskedEq(TYPE_MASK), stream)?,
            cond(2, Op::Ne, 0)?,
            cond(2, Op::Ne, libc::IPPROTO_TCP as u64)?,
        ])?);
        if !allow_udp {
            socket.push(rule(vec![
                cond(0, Op::Eq, family)?,
                cond(1, Op::MaskedEq(TYPE_MASK), dgram)?,
            ])?);
        }
    }
    Ok(socket)
}

/// The filters for a command: compiled once per variant, shared after.
pub(crate) fn filters(allow_udp: bool, allow_unix: bool) -> Result<Filters, SandboxError> {
    static CACHE: [OnceLock<Result<Filters, SandboxError>>; 4] = [const { OnceLock::new() }; 4];
    let slot = usize::from(allow_udp) * 2 + usize::from(allow_unix);
    CACHE[slot]
        .get_or_init(|| {
            Ok(Arc::new(vec![
                denied_calls(allow_udp, allow_unix)?,
                no_clone3()?,
            ]))
        })
        .clone()
}
