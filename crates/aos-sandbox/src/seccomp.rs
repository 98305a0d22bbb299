//! The seccomp filter of a confined command, one classic BPF program
//! assembled here once per variant:
//! - system calls no agent command needs, that reach other processes or the
//!   kernel's configuration, fail with `EPERM`;
//! - so do sockets outside TCP/IP (and netlink other than route queries),
//!   UDP sockets unless the network is `all` or Landlock checks UDP ports,
//!   and `AF_UNIX` sockets unless Landlock scopes them; `clone` with a
//!   namespace flag too;
//! - `clone3` fails with `ENOSYS` (its flags live in memory a filter cannot
//!   read; libc falls back to `clone`, whose flags are checked);
//! - another architecture's calls (32-bit `int 0x80`) kill the process and
//!   x32 calls fail with `ENOSYS`: their numbers are not the ones checked.
//!
//! The program is a binary search on the call number, not a chain of
//! comparisons: when a filter is attached the kernel runs it once for every
//! call number to learn which are always allowed (the seccomp action cache),
//! so a filter's cost at every `exec` of a confined command grows with the
//! path a call takes through it. `seccompiler`'s linear 289-instruction
//! filter cost 200 µs a spawn; this one costs a tenth of it
//! (docs/performance.md, 2026-12-03).

use crate::SandboxError;
use std::sync::{Arc, OnceLock};

/// A compiled filter, shared by every command of a variant.
#[derive(Clone)]
pub(crate) struct Filter(Arc<[libc::sock_filter]>);

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Filter({} instructions)", self.0.len())
    }
}

impl Filter {
    /// The instructions.
    pub(crate) fn instructions(&self) -> &[libc::sock_filter] {
        &self.0
    }
}

#[cfg(not(target_endian = "little"))]
compile_error!(
    "the seccomp filter reads the low 32 bits of arguments as on little-endian machines"
);

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// x32 calls on x86_64 carry this bit.
const X32_BIT: u32 = 0x4000_0000;

/// System calls refused outright.
pub(crate) const DENIED: &[libc::c_long] = &[
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
pub(crate) const NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWCGROUP) as u32;

/// What the filter returns.
pub(crate) const RET_ALLOW: u32 = 0x7fff_0000;
pub(crate) const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;

pub(crate) const fn ret_errno(errno: i32) -> u32 {
    RET_ERRNO | (errno as u32 & 0xffff)
}

// Classic BPF opcodes.
const LD_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

/// Offsets in `struct seccomp_data`: the call number, the architecture and
/// the low 32 bits of an argument.
const NR: u32 = 0;
const ARCH: u32 = 4;
const fn arg(i: u32) -> u32 {
    16 + 8 * i
}

fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}
fn ld(offset: u32) -> libc::sock_filter {
    op(LD_ABS, 0, 0, offset)
}
fn ret(k: u32) -> libc::sock_filter {
    op(RET_K, 0, 0, k)
}
/// Skips `skip` instructions when the accumulator equals `k`.
fn skip_if_eq(k: u32, skip: u8) -> libc::sock_filter {
    op(JEQ_K, skip, 0, k)
}

/// What happens to one call number.
#[derive(Clone, Copy)]
enum Decision {
    Refuse(i32),
    Clone,
    Socket,
}

/// The instructions deciding `d` (ending in `ret`, the accumulator holding
/// the call number on entry).
fn decide(d: Decision, allow_udp: bool, allow_unix: bool) -> Vec<libc::sock_filter> {
    let eperm = ret(ret_errno(libc::EPERM));
    match d {
        Decision::Refuse(errno) => vec![ret(ret_errno(errno))],
        Decision::Clone => vec![
            ld(arg(0)),
            op(JSET_K, 0, 1, NAMESPACE_FLAGS),
            eperm,
            ret(RET_ALLOW),
        ],
        Decision::Socket => socket(allow_udp, allow_unix),
    }
}

/// `socket(domain, type, protocol)`: TCP/IP streams (TCP only), datagrams
/// when `allow_udp`, netlink route queries, `AF_UNIX` when `allow_unix`.
fn socket(allow_udp: bool, allow_unix: bool) -> Vec<libc::sock_filter> {
    let allow = ret(RET_ALLOW);
    let eperm = ret(ret_errno(libc::EPERM));
    let dgram = if allow_udp { allow } else { eperm };
    let unix = if allow_unix { allow } else { eperm };
    vec![
        ld(arg(0)),
        skip_if_eq(libc::AF_INET as u32, 9),
        skip_if_eq(libc::AF_INET6 as u32, 8),
        skip_if_eq(libc::AF_UNIX as u32, 2),
        skip_if_eq(libc::AF_NETLINK as u32, 2),
        eperm,
        unix,
        // Netlink: route queries only (getaddrinfo, `ip addr`).
        ld(arg(2)),
        op(JEQ_K, 0, 1, libc::NETLINK_ROUTE as u32),
        allow,
        eperm,
        // TCP/IP: streams whose protocol is TCP, datagrams; no raw, packet,
        // SCTP or MPTCP sockets (Landlock checks TCP ports, not theirs).
        ld(arg(1)),
        op(AND_K, 0, 0, 0xf),
        skip_if_eq(libc::SOCK_STREAM as u32, 3),
        op(JEQ_K, 0, 1, libc::SOCK_DGRAM as u32),
        dgram,
        eperm,
        ld(arg(2)),
        skip_if_eq(0, 2),
        skip_if_eq(libc::IPPROTO_TCP as u32, 1),
        eperm,
        allow,
    ]
}

/// A binary search over `table` (sorted by call number): each leaf tests
/// up to four numbers in turn, and everything else is allowed.
fn search(table: &[(u32, Decision)], allow_udp: bool, allow_unix: bool) -> Vec<libc::sock_filter> {
    if table.len() <= 4 {
        let mut code = Vec::new();
        for (nr, d) in table {
            let body = decide(*d, allow_udp, allow_unix);
            code.push(op(JEQ_K, 0, body.len() as u8, *nr));
            code.extend(body);
        }
        code.push(ret(RET_ALLOW));
        return code;
    }
    let (low, high) = table.split_at(table.len() / 2);
    let low = search(low, allow_udp, allow_unix);
    let high = search(high, allow_udp, allow_unix);
    // `ja` takes a 32-bit offset: subtrees of any size.
    let mut code = vec![
        op(JGE_K, 0, 1, high_first(table)),
        op(JA, 0, 0, low.len() as u32),
    ];
    code.extend(low);
    code.extend(high);
    code
}

fn high_first(table: &[(u32, Decision)]) -> u32 {
    table[table.len() / 2].0
}

/// Assembles the filter.
fn assemble(allow_udp: bool, allow_unix: bool) -> Result<Filter, SandboxError> {
    let mut table: Vec<(u32, Decision)> = DENIED
        .iter()
        .map(|nr| (*nr as u32, Decision::Refuse(libc::EPERM)))
        .collect();
    table.push((libc::SYS_clone3 as u32, Decision::Refuse(libc::ENOSYS)));
    table.push((libc::SYS_clone as u32, Decision::Clone));
    table.push((libc::SYS_socket as u32, Decision::Socket));
    table.sort_by_key(|(nr, _)| *nr);
    let mut code = vec![
        ld(ARCH),
        op(JEQ_K, 1, 0, AUDIT_ARCH),
        ret(RET_KILL_PROCESS),
        ld(NR),
        op(JGE_K, 0, 1, X32_BIT),
        ret(ret_errno(libc::ENOSYS)),
    ];
    code.extend(search(&table, allow_udp, allow_unix));
    if code.len() > usize::from(u16::MAX) {
        return Err(SandboxError::Setup("the seccomp filter is too long".into()));
    }
    Ok(Filter(code.into()))
}

/// The filter for a command: assembled once per variant, shared after.
pub(crate) fn filter(allow_udp: bool, allow_unix: bool) -> Result<Filter, SandboxError> {
    static CACHE: [OnceLock<Result<Filter, SandboxError>>; 4] = [const { OnceLock::new() }; 4];
    let slot = usize::from(allow_udp) * 2 + usize::from(allow_unix);
    CACHE[slot]
        .get_or_init(|| assemble(allow_udp, allow_unix))
        .clone()
}

#[cfg(test)]
mod tests;
