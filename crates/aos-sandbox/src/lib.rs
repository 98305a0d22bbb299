//! Confinement of the agent's bash. Every command a ReActUnit runs is
//! confined in the child between `fork` and `exec` — no wrapper process:
//! it joins its session's cgroup, gets its rlimits, loses every capability
//! (when the daemon is root) and optionally its user, then Landlock
//! (`no_new_privs`, files, TCP ports, signal and abstract-socket scoping)
//! and seccomp filters restrict it and everything it starts.
//!
//! The parent does all the work that allocates or reads files
//! ([`Confinement::prepare`]); the child only makes system calls.
//!
//! This is the one crate of the workspace with `unsafe` code: `pre_exec`
//! and the raw system calls it makes.
#![allow(unsafe_code)]

mod caps;
mod cgroup;
mod grants;
mod policy;
mod probe;
mod rules;
mod seccomp;

pub use cgroup::{Cgroups, Joiner};
pub use grants::{Grants, MAX_PORTS};
pub use policy::{DEFAULT_SYSTEM_PATHS, Limits, Network, Policy, WRITABLE_DEVICES};
pub use probe::{REQUIRED_ABI, Report, UDP_ABI, UNIX_SOCKET_ABI, effective_abi, kernel_abi};

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

/// A command's confinement, prepared in the parent and entered by the child.
#[derive(Debug)]
pub struct Confinement {
    ruleset: Option<RulesetCreated>,
    filters: seccomp::Filters,
    joiner: Joiner,
    rlimits: Vec<(libc::__rlimit_resource_t, u64)>,
    drop_caps: Option<u32>,
    run_as: Option<(u32, u32)>,
}

impl Confinement {
    /// Builds the Landlock ruleset and picks the seccomp filters for
    /// `policy` on a kernel of Landlock ABI `abi`, and opens the session's
    /// cgroups (`session` names them) for the child to join.
    pub fn prepare(
        policy: &Policy,
        abi: i32,
        cgroups: &Cgroups,
        session: &str,
    ) -> Result<Confinement, SandboxError> {
        if abi < REQUIRED_ABI {
            return Err(SandboxError::Unsupported {
                kernel: abi,
                required: REQUIRED_ABI,
                what: "files, TCP ports, signal and abstract-socket scoping",
            });
        }
        let ruleset = rules::ruleset(policy, abi)?;
        let allow_udp = policy.network == Network::All || abi >= UDP_ABI;
        let filters = seccomp::filters(allow_udp, abi >= UNIX_SOCKET_ABI)?;
        let joiner = if cgroups.available() {
            cgroups
                .join_handles(session, policy.limits.processes)
                .map_err(|e| SandboxError::Setup(format!("session cgroup: {e}")))?
        } else {
            Joiner::default()
        };
        let l = &policy.limits;
        let mut rlimits = vec![
            (libc::RLIMIT_NOFILE, l.open_files),
            (libc::RLIMIT_FSIZE, l.file_size_mb.saturating_mul(1 << 20)),
            (libc::RLIMIT_CPU, l.cpu_seconds),
            (libc::RLIMIT_CORE, 0),
        ];
        if policy.run_as.is_some() {
            rlimits.push((libc::RLIMIT_NPROC, l.processes));
        }
        // SAFETY: geteuid(2) cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        Ok(Confinement {
            ruleset: Some(ruleset),
            filters,
            joiner,
            rlimits,
            drop_caps: root.then(caps::last_cap),
            run_as: policy.run_as,
        })
    }

    /// Installs the confinement on `cmd`: the child enters it after `fork`,
    /// before `exec`. A failure there fails the spawn with its error.
    pub fn install(mut self, cmd: &mut tokio::process::Command) {
        // SAFETY: `enter` makes only system calls (no locks, no allocation
        // on its success path), as a forked child of a threaded process
        // must; its state was prepared by the parent.
        unsafe {
            cmd.pre_exec(move || self.enter());
        }
    }

    /// Runs in the child.
    fn enter(&mut self) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        for fd in &self.joiner.fds {
            // SAFETY: writes two bytes from a static buffer to an open fd.
            if unsafe { libc::write(fd.as_raw_fd(), b"0\n".as_ptr().cast(), 2) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        for (resource, value) in &self.rlimits {
            let lim = libc::rlimit {
                rlim_cur: *value,
                rlim_max: *value,
            };
            // SAFETY: setrlimit(2) with a valid struct.
            if unsafe { libc::setrlimit(*resource, &lim) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        if let Some(last) = self.drop_caps {
            caps::drop_bounding(last)?;
        }
        if let Some((uid, gid)) = self.run_as {
            caps::switch_user(uid, gid)?;
        }
        if self.drop_caps.is_some() {
            caps::clear()?;
        }
        if let Some(ruleset) = self.ruleset.take() {
            ruleset
                .restrict_self()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        for filter in self.filters.iter() {
            seccompiler::apply_filter(filter).map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        Ok(())
    }
}
