//! The service process: how it is started (interpreter by extension, a
//! clean environment, its own process group, killed with the daemon), its
//! stderr and stdout routed into the daemon's log, and the group killed.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

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
    /// Instance id, for log lines.
    pub instance: &'a str,
}

/// A started process: the child, its group, and the tail of its output.
pub struct Spawned {
    /// The child (for `wait`).
    pub child: Child,
    /// Its pid, which is also its process group id.
    pub pid: u32,
    /// The last lines it printed.
    pub tail: Tail,
}

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

/// Starts the process in its own process group, with a clean environment.
pub fn spawn(l: Launch<'_>) -> std::io::Result<Spawned> {
    let (program, args) = command_for(l.service);
    let mut cmd = Command::new(&program);
    cmd.args(&args)
        .current_dir(l.cwd)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for name in BASE_ENV
        .iter()
        .copied()
        .chain(l.pass_env.iter().map(String::as_str))
    {
        if let Some(v) = std::env::var_os(name) {
            cmd.env(name, v);
        }
    }
    for (k, v) in &l.set_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot run {program} {}: {e}", args.join(" ")),
        )
    })?;
    let pid = child
        .id()
        .ok_or_else(|| std::io::Error::other("the process ended before it could be watched"))?;
    let tail = Tail::default();
    if let Some(out) = child.stdout.take() {
        pump(out, "stdout", &l, tail.clone());
    }
    if let Some(err) = child.stderr.take() {
        pump(err, "stderr", &l, tail.clone());
    }
    Ok(Spawned { child, pid, tail })
}

/// Copies a process's output into the daemon's log, line by line.
fn pump(
    stream: impl AsyncRead + Unpin + Send + 'static,
    name: &'static str,
    l: &Launch<'_>,
    tail: Tail,
) {
    let (skill, instance) = (l.skill.to_string(), l.instance.to_string());
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tail.push(&line);
            tracing::info!(target: "aos::service", skill = %skill, instance = %instance, stream = name, "{line}");
        }
    });
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
