//! What a confined command may do: the files it reads, writes and runs, the
//! network it reaches, the resources it uses. A [`Policy`] is plain data; the
//! other modules turn it into Landlock rules, a seccomp filter and limits.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The network a confined command reaches besides the daemon's API port.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Network {
    /// Only the daemon's API port (TCP). No UDP.
    #[default]
    None,
    /// Everything the daemon itself reaches.
    All,
    /// TCP connect and bind on these ports (and the API port). UDP follows
    /// the same rule where the kernel can check a datagram's port (Landlock
    /// ABI 10); on older kernels UDP sockets are refused.
    Ports(BTreeSet<u16>),
}

impl Network {
    /// The value as written in `permissions.network`.
    pub fn describe(&self) -> String {
        match self {
            Network::None => "\"none\"".into(),
            Network::All => "\"all\"".into(),
            Network::Ports(p) => format!(
                "[{}]",
                p.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// Resource limits of one command (each process it starts gets them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// Open file descriptors per process (`RLIMIT_NOFILE`).
    #[serde(default = "Limits::default_open_files")]
    pub open_files: u64,
    /// Processes and threads alive at once in the session's sandbox (the
    /// cgroup's `pids.max`).
    #[serde(default = "Limits::default_processes")]
    pub processes: u64,
    /// Largest file a process may write, in MiB (`RLIMIT_FSIZE`).
    #[serde(default = "Limits::default_file_size_mb")]
    pub file_size_mb: u64,
    /// CPU seconds per process (`RLIMIT_CPU`).
    #[serde(default = "Limits::default_cpu_seconds")]
    pub cpu_seconds: u64,
}

impl Limits {
    fn default_open_files() -> u64 {
        1024
    }
    fn default_processes() -> u64 {
        512
    }
    fn default_file_size_mb() -> u64 {
        1024
    }
    fn default_cpu_seconds() -> u64 {
        600
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            open_files: Limits::default_open_files(),
            processes: Limits::default_processes(),
            file_size_mb: Limits::default_file_size_mb(),
            cpu_seconds: Limits::default_cpu_seconds(),
        }
    }
}

/// The system directories a command reads and runs by default. Missing ones
/// are skipped.
pub const DEFAULT_SYSTEM_PATHS: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/opt",
    "/proc",
    "/sys",
    "/run/systemd/resolve",
];

/// The device files a command may use (read, write, `ioctl`) — nothing else
/// of `/dev`: a disk's device file is the daemon user's to read.
pub const WRITABLE_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
    "/dev/shm",
];

/// Everything one command's confinement needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Read and execute (system directories, the `aos` binary's directory).
    pub read_exec: Vec<PathBuf>,
    /// Read only (skill roots).
    pub read_only: Vec<PathBuf>,
    /// Read, write, create, remove, execute (the work dir, the temp dir).
    pub read_write: Vec<PathBuf>,
    /// Network beyond the API port.
    pub network: Network,
    /// The daemon's API port, always reachable over TCP.
    pub api_port: Option<u16>,
    /// Per-command limits.
    pub limits: Limits,
    /// Run as this user and group instead of the daemon's.
    pub run_as: Option<(u32, u32)>,
}

impl Policy {
    /// A policy with the default system paths and nothing else.
    pub fn new() -> Policy {
        let system: Vec<PathBuf> = DEFAULT_SYSTEM_PATHS.iter().map(PathBuf::from).collect();
        Policy {
            read_exec: system_rules(&system),
            read_only: Vec::new(),
            read_write: Vec::new(),
            network: Network::None,
            api_port: None,
            limits: Limits::default(),
            run_as: None,
        }
    }

    /// The TCP ports a command may connect to and bind, or `None` for all.
    pub fn tcp_ports(&self) -> Option<BTreeSet<u16>> {
        let mut ports = match &self.network {
            Network::All => return None,
            Network::None => BTreeSet::new(),
            Network::Ports(p) => p.clone(),
        };
        ports.extend(self.api_port);
        Some(ports)
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::new()
    }
}

/// Most entries looked at under one system path by [`readable_parts`].
const WALK_BUDGET: usize = 20_000;

/// The parts of `root` a command may read when it runs with the daemon's
/// user: every world-readable file and directory, without the entries that
/// are not (`/etc/shadow`, private keys, `pg_hba.conf`…) — which a root
/// daemon's bash would otherwise read by owner rights. A tree larger than
/// the walk's budget is granted whole. Symbolic links need no rule (Landlock
/// checks their target).
pub fn readable_parts(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut budget = WALK_BUDGET;
    if walk(root, &mut out, &mut budget) || budget == 0 {
        return vec![root.to_path_buf()];
    }
    out
}

/// Whether `p` is readable as a whole; if not, its readable parts are in
/// `out`.
fn walk(p: &Path, out: &mut Vec<PathBuf>, budget: &mut usize) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(p) else {
        return false;
    };
    if meta.file_type().is_symlink() {
        return true;
    }
    if meta.permissions().mode() & 0o004 == 0 {
        return false;
    }
    if !meta.is_dir() {
        return true;
    }
    let Ok(entries) = std::fs::read_dir(p) else {
        return false;
    };
    let mut clean = Vec::new();
    let mut all = true;
    for e in entries.flatten() {
        if *budget == 0 {
            return true;
        }
        *budget -= 1;
        let child = e.path();
        if walk(&child, out, budget) {
            if !e.file_type().is_ok_and(|t| t.is_symlink()) {
                clean.push(child);
            }
        } else {
            all = false;
        }
    }
    if !all {
        out.extend(clean);
    }
    all
}

/// System paths whose trees are walked for entries other users may not read
/// ([`readable_parts`]); the rest are granted whole (`/proc` and `/sys`
/// change as processes come and go; `/usr` is too large to walk).
pub const WALKED_PATHS: &[&str] = &["/etc", "/opt"];

/// The read rules of `paths`: each walked path split into its readable
/// parts, the others as they are.
pub fn system_rules(paths: &[PathBuf]) -> Vec<PathBuf> {
    paths
        .iter()
        .flat_map(|p| {
            if WALKED_PATHS.iter().any(|w| p == Path::new(w)) {
                readable_parts(p)
            } else {
                vec![p.clone()]
            }
        })
        .collect()
}

/// A user's uid and primary gid, by name or number, from `/etc/passwd`.
pub fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let (user, uid, gid) = (f.first()?, f.get(2)?, f.get(3)?);
        (*user == name || *uid == name).then(|| Some((uid.parse().ok()?, gid.parse().ok()?)))?
    })
}
