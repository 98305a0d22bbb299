//! What the running kernel offers the sandbox: its Landlock ABI, a cgroup
//! hierarchy to contain a session's processes in, whether capabilities can
//! be dropped. [`Report`] is what `aos sandbox check` and `system.health`
//! show.

use crate::cgroup::Cgroups;
use serde::Serialize;

/// The Landlock ABI the policy needs: filesystem rights with `refer` and
/// `truncate` (1–3), TCP ports (4), device ioctls (5), signal and
/// abstract-socket scoping (6).
pub const REQUIRED_ABI: i32 = 6;

/// The ABI that also scopes pathname Unix sockets (`resolve_unix`); below it,
/// seccomp refuses `socket(AF_UNIX)` instead.
pub const UNIX_SOCKET_ABI: i32 = 9;

/// The ABI that checks UDP ports; below it, seccomp refuses UDP sockets
/// unless the network is `all`.
pub const UDP_ABI: i32 = 10;

/// The kernel's Landlock ABI version: 0 when Landlock is missing or off.
pub fn kernel_abi() -> i32 {
    // SAFETY: `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`
    // reads no memory and returns the ABI version or -1.
    #[allow(unsafe_code)]
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    };
    i32::try_from(v).unwrap_or(0).max(0)
}

/// The kernel's ABI, lowered by `AOS_LANDLOCK_ABI` when set (to try the
/// fail-closed path on a kernel that has more; it never raises it).
pub fn effective_abi() -> i32 {
    let real = kernel_abi();
    std::env::var("AOS_LANDLOCK_ABI")
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok())
        .map_or(real, |v| v.clamp(0, real))
}

/// What the sandbox can enforce on this machine.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `on`, or `off` when the operator opted out.
    pub mode: String,
    /// The kernel's Landlock ABI (0: none).
    pub landlock_abi: i32,
    /// The ABI the policy needs.
    pub required_abi: i32,
    /// Commands can run (the ABI suffices, or the sandbox is off).
    pub ready: bool,
    /// What each confined command gets.
    pub enforced: Vec<String>,
    /// What this machine cannot enforce, and what that leaves open.
    pub missing: Vec<String>,
}

impl Report {
    /// Probes the machine. `on` is whether the operator left the sandbox on.
    pub fn probe(on: bool, cgroups: &Cgroups) -> Report {
        let abi = effective_abi();
        let mut enforced = Vec::new();
        let mut missing = Vec::new();
        if abi >= REQUIRED_ABI {
            enforced.push(format!(
                "landlock ABI {abi}: files (read/exec on system paths, read on skill roots, \
                 read-write on the work and temp dirs only), TCP ports, signal and abstract-socket scoping"
            ));
        } else {
            missing.push(format!(
                "landlock ABI {abi} < {REQUIRED_ABI}: commands are refused while the sandbox is on"
            ));
        }
        if abi >= UNIX_SOCKET_ABI {
            enforced.push("pathname Unix sockets scoped by landlock".into());
        } else {
            enforced.push(format!(
                "seccomp refuses socket(AF_UNIX) (landlock ABI {UNIX_SOCKET_ABI} would scope them instead)"
            ));
        }
        if abi >= UDP_ABI {
            enforced.push("UDP ports checked by landlock".into());
        } else {
            enforced.push(format!(
                "seccomp refuses UDP sockets unless permissions.network is \"all\" (landlock ABI {UDP_ABI} checks UDP ports)"
            ));
        }
        enforced.push(
            "seccomp: no ptrace, process_vm_*, mount, namespaces, bpf, perf, keyrings, modules, io_uring".into(),
        );
        enforced.push("no_new_privs; every capability dropped when the daemon is root".into());
        enforced.push("rlimits: open files, file size, CPU time".into());
        match cgroups.describe() {
            Ok(what) => enforced.push(what),
            Err(why) => missing.push(why),
        }
        Report {
            mode: if on { "on" } else { "off" }.into(),
            landlock_abi: abi,
            required_abi: REQUIRED_ABI,
            ready: !on || abi >= REQUIRED_ABI,
            enforced,
            missing,
        }
    }
}
