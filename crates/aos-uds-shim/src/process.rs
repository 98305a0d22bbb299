//! The service process: how it is started (interpreter by extension, a
//! clean environment, its own process group and cgroup, killed with the
//! daemon), its stderr and stdout routed into the daemon's log within a
//! line length and a rate, and everything it started killed.

use crate::frame::{Frame, FrameReader};
use aos_extension::{LINES_PER_SECOND, LogRate};
use aos_sandbox::{Cgroups, Child, Confinement, Joiner, SpawnSpec};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Daemon environment variables a service process inherits besides its
/// declared `capabilities.env` ones.
const BASE_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ",
];

/// Lines of output kept to explain a failed start.
const TAIL_LINES: usize = 8;

/// The program and arguments that run `service` (`skills.md` §4).
pub fn command_for(service: &Path) -> (String, Vec<String>) {
    let path = service.display().to_string();
    match service.extension().and_then(|e| e.to_str()) {
        Some("py") => ("python3".into(), vec![path]),
        Some("js" | "mjs" | "cjs") => ("node".into(), vec![path]),
        Some("ts") => ("npx".into(), vec!["tsx".into(), path]),
        _ => (path, Vec::new()),
    }
}

/// What a process is started with.
pub struct Launch<'a> {
    /// The service file.
    pub service: &'a Path,
    /// Working directory (the skill directory).
    pub cwd: &'a Path,
    /// Declared environment names passed through.
    pub pass_env: &'a [String],
    /// `AOS_*` and other variables set for it.
    pub set_env: Vec<(String, String)>,
    /// Skill name, for log lines.
    pub skill: &'a str,
    /// Instance id, for log lines and the cgroup's name.
    pub instance: &'a str,
    /// Longest output line logged.
    pub max_line: usize,
}

/// A started process: the child, its group, and the tail of its output.
pub struct Spawned {
    /// The child (for `wait`).
    pub child: Child,
    /// Its pid, which is also its process group id.
    pub pid: u32,
    /// The last lines it printed.
    pub tail: Tail,
    /// Its cgroup, which holds whatever it starts (a `setsid` child too).
    pub group: Group,
}

/// The cgroup of one service instance (`svc-<instance id>`), where the
/// machine has a writable cgroup v2; else nothing beyond the process group.
pub struct Group {
    name: String,
}

impl Group {
    /// Kills the process group and every process left in the cgroup, and
    /// removes the cgroup. Returns how many processes the cgroup still held.
    pub async fn kill(&self, pid: u32) -> usize {
        kill_group(pid);
        cgroups().release(&self.name).await
    }
}

/// The daemon's cgroups, found once.
fn cgroups() -> &'static Cgroups {
    static CGROUPS: OnceLock<Cgroups> = OnceLock::new();
    CGROUPS.get_or_init(Cgroups::detect)
}

/// Processes and threads one service may have alive at once.
const MAX_PROCESSES: u64 = 256;

/// The last lines a process printed (stdout and stderr).
#[derive(Clone, Default)]
pub struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    fn push(&self, line: &str) {
        if let Ok(mut t) = self.0.lock() {
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(line.chars().take(500).collect());
        }
    }

    /// The kept lines, joined, or an empty string.
    pub fn text(&self) -> String {
        self.0
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join(" | "))
            .unwrap_or_default()
    }
}

/// `program` as a path: itself if it names one, else found on `PATH`.
fn which(program: &str) -> std::io::Result<PathBuf> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{program} is not on PATH"),
            )
        })
}

/// Starts the process in its own process group and its own cgroup (where
/// there is one), with a clean environment and stdin on `/dev/null`.
pub fn spawn(l: Launch<'_>) -> std::io::Result<Spawned> {
    let (program, args) = command_for(l.service);
    let path = which(&program)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot run {program}: {e}")))?;
    let mut env: Vec<(String, String)> = BASE_ENV
        .iter()
        .copied()
        .chain(l.pass_env.iter().map(String::as_str))
        .filter_map(|name| std::env::var(name).ok().map(|v| (name.to_string(), v)))
        .collect();
    env.extend(l.set_env.iter().cloned());
    let argv: Vec<&str> = std::iter::once(program.as_str())
        .chain(args.iter().map(String::as_str))
        .collect();
    let group = Group {
        name: format!("svc-{}", l.instance),
    };
    let joiner = if cgroups().available() {
        cgroups().join_handles(&group.name, MAX_PROCESSES)?
    } else {
        Joiner::default()
    };
    let spawned = aos_sandbox::spawn(
        &SpawnSpec {
            program: &path,
            args: &argv,
            env: &env,
            cwd: l.cwd,
        },
        &Confinement::cgroup_only(joiner),
    )
    .map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot run {program} {}: {e}", args.join(" ")),
        )
    })?;
    let pid = spawned.child.id();
    let tail = Tail::default();
    pump(spawned.stdout, "stdout", &l, tail.clone())?;
    pump(spawned.stderr, "stderr", &l, tail.clone())?;
    Ok(Spawned {
        child: spawned.child,
        pid,
        tail,
        group,
    })
}

/// Copies a process's output into the daemon's log, line by line: a line
/// over `max_output_line` bytes is dropped, and at most
/// [`LINES_PER_SECOND`] lines a second are logged; what is dropped is
/// counted and reported once a second.
fn pump(fd: OwnedFd, name: &'static str, l: &Launch<'_>, tail: Tail) -> std::io::Result<()> {
    let stream = tokio::net::unix::pipe::Receiver::from_owned_fd(fd)?;
    let (skill, instance, max) = (l.skill.to_string(), l.instance.to_string(), l.max_line);
    tokio::spawn(async move {
        let mut frames = FrameReader::new(stream, max);
        let mut rate = LogRate::default();
        while let Ok(Some(frame)) = frames.next().await {
            let line = match frame {
                Frame::Line(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Frame::TooLong => {
                    rate.too_long();
                    continue;
                }
            };
            tail.push(&line);
            if rate.admit() {
                tracing::info!(target: "aos::service", skill = %skill, instance = %instance, stream = name, "{line}");
            }
            if let Some((dropped, long)) = rate.report() {
                tracing::warn!(target: "aos::service", skill = %skill, instance = %instance, stream = name, dropped, long, "output lines dropped (over {LINES_PER_SECOND}/s, or over {max} bytes)");
            }
        }
    });
    Ok(())
}

/// Kills the whole process group (the service and whatever it forked).
pub fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // ESRCH (already gone) is the normal case after an exit.
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Whether a process (or zombie) with this pid exists.
pub fn alive(pid: u32) -> bool {
    i32::try_from(pid).is_ok_and(|p| nix::sys::signal::kill(Pid::from_raw(p), None).is_ok())
}

#[cfg(test)]
mod tests {
    use super::command_for;
    use std::path::Path;

    #[test]
    fn interpreters_by_extension() {
        let run = |p: &str| command_for(Path::new(p));
        assert_eq!(
            run("/s/service.py"),
            ("python3".into(), vec!["/s/service.py".into()])
        );
        assert_eq!(
            run("/s/service.js"),
            ("node".into(), vec!["/s/service.js".into()])
        );
        assert_eq!(
            run("/s/service.ts"),
            ("npx".into(), vec!["tsx".into(), "/s/service.ts".into()])
        );
        assert_eq!(run("/s/service"), ("/s/service".into(), vec![]));
        assert_eq!(run("/s/run.sh"), ("/s/run.sh".into(), vec![]));
    }
}
