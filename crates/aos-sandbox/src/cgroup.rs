//! A cgroup per session holds every process its commands start — also
//! double-forked and `setsid` ones, which leave the command's process group —
//! so the kernel can kill them all when the dispatch ends, is interrupted, or
//! after a crash. cgroup v2 (`cgroup.kill`, pure or hybrid mount) does the
//! killing; a v1 `pids` hierarchy, where mounted, caps the process count.
//!
//! Layout: `<hierarchy>/<the daemon's own cgroup>/aos-bash/<session id>`.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DIR: &str = "aos-bash";

/// The cgroup hierarchies this daemon can create session cgroups in.
#[derive(Debug, Clone, Default)]
pub struct Cgroups {
    /// `<cgroup2 mount>/<own path>/aos-bash`, when writable.
    v2: Option<PathBuf>,
    /// `<v1 pids mount>/<own path>/aos-bash`, when writable.
    pids_v1: Option<PathBuf>,
    /// Why neither is usable.
    unavailable: Option<String>,
}

/// A mount of `/proc/self/mounts`: (mount point, fs type, options).
fn mounts() -> Vec<(PathBuf, String, String)> {
    let text = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, at, kind, opts) = (f.next()?, f.next()?, f.next()?, f.next()?);
            Some((PathBuf::from(at), kind.to_string(), opts.to_string()))
        })
        .collect()
}

/// This process's cgroup path in the hierarchy whose `/proc/self/cgroup`
/// controller list is `controllers` (`""` for v2).
fn own_path(controllers: &str) -> PathBuf {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let path = text
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, c, p) = (f.next()?, f.next()?, f.next()?);
            (c == controllers || c.split(',').any(|x| x == controllers && !x.is_empty()))
                .then_some(p)
        })
        .next()
        .unwrap_or("/");
    PathBuf::from(path.trim_start_matches('/'))
}

fn prepare(base: PathBuf) -> Result<PathBuf, String> {
    std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    Ok(base)
}

impl Cgroups {
    /// Finds writable hierarchies and creates `aos-bash` in them.
    pub fn detect() -> Cgroups {
        let all = mounts();
        let v2 = all
            .iter()
            .find(|(_, kind, _)| kind == "cgroup2")
            .map(|(at, ..)| prepare(at.join(own_path("")).join(DIR)));
        let pids = all
            .iter()
            .find(|(_, kind, opts)| kind == "cgroup" && opts.split(',').any(|o| o == "pids"))
            .map(|(at, ..)| prepare(at.join(own_path("pids")).join(DIR)));
        let mut why = Vec::new();
        let v2 = match v2 {
            Some(Ok(p)) if p.join("cgroup.kill").exists() => Some(p),
            Some(Ok(p)) => {
                why.push(format!(
                    "{} has no cgroup.kill (kernel < 5.14)",
                    p.display()
                ));
                None
            }
            Some(Err(e)) => {
                why.push(format!("cgroup v2 not writable: {e}"));
                None
            }
            None => {
                why.push("no cgroup v2 hierarchy is mounted".into());
                None
            }
        };
        if let Some(base) = &v2 {
            // Lets session cgroups count their processes where the
            // hierarchy allows it; a hybrid mount has no controllers.
            let _ = std::fs::write(base.join("cgroup.subtree_control"), "+pids");
        }
        let pids_v1 = pids.and_then(Result::ok);
        let unavailable = v2.is_none().then(|| why.join("; "));
        Cgroups {
            v2,
            pids_v1,
            unavailable,
        }
    }

    /// No cgroups (tests of the fallback, machines without them).
    pub fn none(why: &str) -> Cgroups {
        Cgroups {
            unavailable: Some(why.into()),
            ..Cgroups::default()
        }
    }

    /// What containment this machine gets, or why there is none.
    pub fn describe(&self) -> Result<String, String> {
        match (&self.v2, &self.unavailable) {
            (Some(p), _) => Ok(format!(
                "every process of a session in cgroup {}/<session>, killed whole (cgroup.kill) when its dispatch ends{}",
                p.display(),
                if self.pids_v1.is_some() || p.join("pids.max").exists() {
                    "; processes capped by pids.max"
                } else {
                    ""
                }
            )),
            (None, why) => Err(format!(
                "no per-session cgroup ({}): a command's processes are killed by process group only, \
                 so a setsid or double-forked child can outlive its dispatch",
                why.as_deref().unwrap_or("unknown")
            )),
        }
    }

    /// Whether sessions get a cgroup.
    pub fn available(&self) -> bool {
        self.v2.is_some()
    }

    fn dirs(&self, session: &str) -> Vec<PathBuf> {
        if session.is_empty() || session.contains(['/', '\0']) || session.starts_with('.') {
            return Vec::new();
        }
        [&self.v2, &self.pids_v1]
            .into_iter()
            .flatten()
            .map(|b| b.join(session))
            .collect()
    }

    /// Creates the session's cgroups (if missing) with `max_processes`, and
    /// opens their `cgroup.procs` for a child to join before it runs.
    pub fn join_handles(&self, session: &str, max_processes: u64) -> std::io::Result<Joiner> {
        let mut fds = Vec::new();
        for dir in self.dirs(session) {
            if let Err(e) = std::fs::create_dir(&dir)
                && e.kind() != std::io::ErrorKind::AlreadyExists
            {
                return Err(e);
            }
            let pids = dir.join("pids.max");
            if pids.exists() {
                std::fs::write(&pids, max_processes.to_string())?;
            }
            let f = OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))?;
            fds.push(OwnedFd::from(f));
        }
        Ok(Joiner { fds })
    }

    /// Kills every process in the session's cgroups and removes them.
    /// Returns how many processes were still there.
    pub async fn release(&self, session: &str) -> usize {
        let mut found = 0;
        for dir in self.dirs(session) {
            if !dir.exists() {
                continue;
            }
            found += procs(&dir).len();
            kill_all(&dir);
            let deadline = Instant::now() + Duration::from_secs(2);
            while std::fs::remove_dir(&dir).is_err() && Instant::now() < deadline {
                if !dir.exists() {
                    break;
                }
                kill_all(&dir);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        found
    }
}

fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// `cgroup.kill` where there is one; else SIGKILL to each member (the pids
/// limit bounds how many a fork loop can add meanwhile).
fn kill_all(dir: &Path) {
    let kill = dir.join("cgroup.kill");
    if kill.exists()
        && OpenOptions::new()
            .write(true)
            .open(&kill)
            .and_then(|mut f| f.write_all(b"1"))
            .is_ok()
    {
        return;
    }
    for pid in procs(dir) {
        if pid > 1 {
            // SAFETY: kill(2) with a pid read from the session's cgroup.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(pid, libc::SIGKILL)
            };
        }
    }
}

/// Open `cgroup.procs` files a child writes `0` to, joining the session's
/// cgroups before it runs anything.
#[derive(Debug, Default)]
pub struct Joiner {
    pub(crate) fds: Vec<OwnedFd>,
}
