//! Confinement of the agent's bash. Every command a ReActUnit runs is
//! confined in the child between `clone` and `exec` ([`spawn`]: a vfork,
//! not a copy of the daemon) — no wrapper process:
//! it joins its session's cgroup, gets its rlimits, loses every capability
//! (when the daemon is root) and optionally its user, then Landlock
//! (`no_new_privs`, files, TCP ports, signal and abstract-socket scoping)
//! and a seccomp filter restrict it and everything it starts.
//!
//! The parent does all the work that allocates or reads files
//! ([`Prepared`], once per dispatch; [`Prepared::confinement`], per
//! command); the child only makes system calls.
//!
//! This is the one crate of the workspace with `unsafe` code: the vfork
//! spawn and the raw system calls of the child.
#![allow(unsafe_code)]

mod caps;
mod cgroup;
mod grants;
mod leftover;
mod policy;
mod probe;
mod rules;
mod seccomp;
mod spawn;

pub use cgroup::{Cgroups, Joiner};
pub use grants::{Grants, MAX_PORTS};
pub use leftover::kill_leftover;
pub use policy::{
    DEFAULT_SYSTEM_PATHS, Limits, Network, Policy, WALKED_PATHS, WRITABLE_DEVICES, lookup_user,
    readable_parts, system_rules,
};
pub use probe::{REQUIRED_ABI, Report, UDP_ABI, UNIX_SOCKET_ABI, effective_abi, kernel_abi};
pub use spawn::{Child, SpawnSpec, Spawned, spawn};

use landlock::RulesetCreated;

/// Why a command cannot be confined.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SandboxError {
    /// The kernel lacks what the policy needs.
    #[error(
        "the bash sandbox needs Landlock ABI {required} ({what}); this kernel offers ABI {kernel}. \
         Commands are refused rather than run unconfined. Run on Linux >= 6.12 with Landlock enabled \
         (lsm=landlock), or opt out explicitly with bashSandbox: \"off\" in aoscb.json or AOS_BASH_SANDBOX=off"
    )]
    Unsupported {
        /// The kernel's ABI.
        kernel: i32,
        /// The ABI the policy needs.
        required: i32,
        /// What needs it.
        what: &'static str,
    },
    /// Building the confinement failed.
    #[error("cannot set up the bash sandbox: {0}")]
    Setup(String),
}

/// A policy compiled for this kernel: the Landlock ruleset, the seccomp
/// filter, the limits. Built once (per dispatch); each command gets a
/// [`Confinement`] from it.
#[derive(Debug)]
pub struct Prepared {
    ruleset: RulesetCreated,
    filter: seccomp::Filter,
    rlimits: Vec<(libc::__rlimit_resource_t, u64)>,
    drop_caps: Option<u32>,
    run_as: Option<(u32, u32)>,
    processes: u64,
}

/// A command's confinement, prepared in the parent and entered by the child.
#[derive(Debug)]
pub struct Confinement {
    ruleset: Option<std::os::fd::OwnedFd>,
    filter: Option<seccomp::Filter>,
    joiner: Joiner,
    rlimits: Vec<(libc::__rlimit_resource_t, u64)>,
    drop_caps: Option<u32>,
    run_as: Option<(u32, u32)>,
}

impl Prepared {
    /// Builds the Landlock ruleset and picks the seccomp filter for
    /// `policy` on a kernel of Landlock ABI `abi`.
    pub fn new(policy: &Policy, abi: i32) -> Result<Prepared, SandboxError> {
        if abi < REQUIRED_ABI {
            return Err(SandboxError::Unsupported {
                kernel: abi,
                required: REQUIRED_ABI,
                what: "files, TCP ports, signal and abstract-socket scoping",
            });
        }
        let ruleset = rules::ruleset(policy, abi)?;
        let allow_udp = policy.network == Network::All || abi >= UDP_ABI;
        let filter = seccomp::filter(allow_udp, abi >= UNIX_SOCKET_ABI)?;
        let l = &policy.limits;
        let rlimits = vec![
            (libc::RLIMIT_NOFILE, l.open_files),
            (libc::RLIMIT_FSIZE, l.file_size_mb.saturating_mul(1 << 20)),
            (libc::RLIMIT_CPU, l.cpu_seconds),
            (libc::RLIMIT_CORE, 0),
        ];
        // SAFETY: geteuid(2) cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        Ok(Prepared {
            ruleset,
            filter,
            rlimits,
            drop_caps: root.then(caps::last_cap),
            run_as: policy.run_as,
            processes: l.processes,
        })
    }

    /// One command's confinement: the ruleset shared (a duplicated fd), the
    /// session's cgroups (`session` names them) opened for the child to join.
    pub fn confinement(
        &self,
        cgroups: &Cgroups,
        session: &str,
    ) -> Result<Confinement, SandboxError> {
        let joiner = if cgroups.available() {
            cgroups
                .join_handles(session, self.processes)
                .map_err(|e| SandboxError::Setup(format!("session cgroup: {e}")))?
        } else {
            Joiner::default()
        };
        let ruleset = self
            .ruleset
            .try_clone()
            .map_err(|e| SandboxError::Setup(format!("landlock ruleset: {e}")))?;
        let ruleset: Option<std::os::fd::OwnedFd> = ruleset.into();
        if ruleset.is_none() {
            return Err(SandboxError::Setup("landlock gave no ruleset".into()));
        }
        Ok(Confinement {
            ruleset,
            filter: Some(self.filter.clone()),
            joiner,
            rlimits: self.rlimits.clone(),
            drop_caps: self.drop_caps,
            run_as: self.run_as,
        })
    }
}

impl Confinement {
    /// Only a cgroup to join: for processes the daemon starts that run
    /// their own code unconfined (legacy skill services) but must not
    /// outlive their owner — a `setsid` child stays in the cgroup.
    pub fn cgroup_only(joiner: Joiner) -> Confinement {
        Confinement {
            ruleset: None,
            filter: None,
            joiner,
            rlimits: Vec::new(),
            drop_caps: None,
            run_as: None,
        }
    }

    /// [`Prepared::new`] and [`Prepared::confinement`] in one step.
    pub fn prepare(
        policy: &Policy,
        abi: i32,
        cgroups: &Cgroups,
        session: &str,
    ) -> Result<Confinement, SandboxError> {
        Prepared::new(policy, abi)?.confinement(cgroups, session)
    }

    /// Runs in the child before `exec`: only system calls, no allocation
    /// (the child may share the daemon's memory); fails with an errno.
    fn enter(&self) -> Result<(), libc::c_int> {
        use spawn::{errno_of, last_errno};
        use std::os::fd::AsRawFd;
        for fd in &self.joiner.fds {
            // SAFETY: writes two bytes from a static buffer to an open fd.
            if unsafe { libc::write(fd.as_raw_fd(), b"0\n".as_ptr().cast(), 2) } < 0 {
                return Err(last_errno());
            }
        }
        for (resource, value) in &self.rlimits {
            let lim = libc::rlimit {
                rlim_cur: *value,
                rlim_max: *value,
            };
            // SAFETY: setrlimit(2) with a valid struct.
            errno_of(unsafe { libc::setrlimit(*resource, &lim) })?;
        }
        let errno = |e: std::io::Error| e.raw_os_error().unwrap_or(libc::EPERM);
        if let Some(last) = self.drop_caps {
            caps::drop_bounding(last).map_err(errno)?;
        }
        if let Some((uid, gid)) = self.run_as {
            caps::switch_user(uid, gid).map_err(errno)?;
        }
        if self.drop_caps.is_some() {
            caps::clear().map_err(errno)?;
        }
        // SAFETY: prctl(2), landlock_restrict_self(2) and seccomp(2) with a
        // ruleset fd and a filter prepared by the parent.
        unsafe {
            if let Some(fd) = &self.ruleset {
                errno_of(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
                if libc::syscall(libc::SYS_landlock_restrict_self, fd.as_raw_fd(), 0) < 0 {
                    return Err(last_errno());
                }
            }
            if let Some(filter) = &self.filter {
                let filter = filter.instructions();
                let prog = libc::sock_fprog {
                    len: u16::try_from(filter.len()).map_err(|_| libc::E2BIG)?,
                    filter: filter.as_ptr().cast_mut(),
                };
                if libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    &prog as *const libc::sock_fprog,
                ) < 0
                {
                    return Err(last_errno());
                }
            }
        }
        Ok(())
    }
}
