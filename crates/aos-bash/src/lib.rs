//! The bash tool: `bash -c COMMAND` in a working directory, with a minimal
//! environment, in its own process group. Standard output and error are
//! captured together up to a cap (the rest is drained and counted, not kept);
//! on timeout or interrupt the whole process group is killed, so children a
//! command started die with it.
//!
//! While a command runs, its process group id can be kept in a pid file; a
//! daemon restarted after a crash kills the groups its predecessor left with
//! `aos_sandbox::kill_leftover`.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

/// What to run.
#[derive(Debug)]
pub struct BashSpec {
    /// The command line.
    pub command: String,
    /// Working directory.
    pub cwd: PathBuf,
    /// The whole environment (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Bytes of output kept.
    pub max_output: usize,
    /// Where the process group id is written while the command runs; it is
    /// blanked, not removed or truncated, when the command ends: rewritten
    /// in place by the next command, it costs no inode and no block
    /// allocation (ext4 flushes a truncated-and-rewritten file on close).
    pub pid_file: Option<PathBuf>,
    /// The sandbox the command enters between fork and exec (`None`:
    /// unconfined, the operator's opt-out).
    pub confinement: Option<aos_sandbox::Confinement>,
}

/// How it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BashResult {
    /// Exit status (`128 + signal` when killed by a signal, `-1` if unknown).
    pub exit_code: i32,
    /// stdout and stderr, interleaved as they arrived, up to the cap.
    pub output: String,
    /// Bytes produced in all (kept or not).
    pub total_bytes: usize,
    /// Output beyond the cap was dropped.
    pub truncated: bool,
    /// Killed at the timeout.
    pub timed_out: bool,
    /// Killed by an interrupt.
    pub interrupted: bool,
    /// How long it ran.
    pub elapsed: Duration,
}

#[derive(Default)]
struct Captured {
    kept: Vec<u8>,
    total: usize,
}

async fn drain(mut r: impl tokio::io::AsyncRead + Unpin, buf: Arc<Mutex<Captured>>, cap: usize) {
    let mut chunk = [0u8; 8192];
    while let Ok(n) = r.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        if let Ok(mut b) = buf.lock() {
            b.total += n;
            let room = cap.saturating_sub(b.kept.len());
            let take = room.min(n);
            b.kept.extend_from_slice(&chunk[..take]);
        }
    }
}

/// `bash` as an absolute path, found once on the daemon's `PATH`. With a
/// bare name and a `PATH` of the command's own, the standard library would
/// fork the whole daemon (its cost grows with the daemon's memory mappings,
/// large once a WASM host runs) instead of using `posix_spawn`.
fn bash_path() -> &'static Path {
    static BASH: OnceLock<PathBuf> = OnceLock::new();
    BASH.get_or_init(|| {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join("bash"))
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("/bin/bash"))
    })
}

/// Runs a command. `interrupt` turning `true` kills it.
pub async fn run(
    spec: BashSpec,
    mut interrupt: watch::Receiver<bool>,
) -> std::io::Result<BashResult> {
    let started = Instant::now();
    let (mut child, stdout, stderr) = start(&spec)?;
    let pgid = child.id().and_then(|p| i32::try_from(p).ok());
    let pid_file = match (&spec.pid_file, pgid) {
        (Some(f), Some(p)) => write_pid_file(f, p).ok(),
        _ => None,
    };
    let buf = Arc::new(Mutex::new(Captured::default()));
    let out = Some(tokio::spawn(drain(stdout, buf.clone(), spec.max_output)));
    let err = Some(tokio::spawn(drain(stderr, buf.clone(), spec.max_output)));
    let (mut timed_out, mut interrupted) = (false, false);
    let status = tokio::select! {
        s = child.wait() => Some(s?),
        () = tokio::time::sleep(spec.timeout) => { timed_out = true; None }
        _ = interrupt.wait_for(|i| *i) => { interrupted = true; None }
    };
    let status = match status {
        Some(s) => s,
        None => {
            kill_group(pgid);
            child.wait().await?
        }
    };
    // The group may hold the pipes open after bash exits (background jobs):
    // give the readers a moment, then kill the stragglers and stop reading.
    for task in [out, err].into_iter().flatten() {
        if tokio::time::timeout(Duration::from_millis(200), task)
            .await
            .is_err()
        {
            kill_group(pgid);
        }
    }
    if let Some(f) = pid_file {
        let _ = f.write_all_at(&PID_BLANK, 0);
    }
    let captured = buf
        .lock()
        .map(|b| (b.kept.clone(), b.total))
        .unwrap_or_default();
    use std::os::unix::process::ExitStatusExt;
    let exit_code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1);
    Ok(BashResult {
        exit_code,
        output: String::from_utf8_lossy(&captured.0).into_owned(),
        total_bytes: captured.1,
        truncated: captured.1 > captured.0.len(),
        timed_out,
        interrupted,
        elapsed: started.elapsed(),
    })
}

/// A running command: spawned by tokio (`posix_spawn`) when unconfined, by
/// the sandbox's vfork when confined.
enum Proc {
    Plain(tokio::process::Child),
    Confined(aos_sandbox::Child),
}

impl Proc {
    fn id(&self) -> Option<u32> {
        match self {
            Proc::Plain(c) => c.id(),
            Proc::Confined(c) => Some(c.id()),
        }
    }

    async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        match self {
            Proc::Plain(c) => c.wait().await,
            Proc::Confined(c) => c.wait().await,
        }
    }
}

type Output = Box<dyn tokio::io::AsyncRead + Unpin + Send>;

/// Starts `bash -c COMMAND` in its own process group, stdin on /dev/null,
/// stdout and stderr piped; killed if dropped before it ends.
fn start(spec: &BashSpec) -> std::io::Result<(Proc, Output, Output)> {
    let Some(confinement) = spec.confinement.as_ref() else {
        let mut child = tokio::process::Command::new(bash_path())
            .arg("-c")
            .arg(&spec.command)
            .current_dir(&spec.cwd)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let (out, err) = match (child.stdout.take(), child.stderr.take()) {
            (Some(o), Some(e)) => (o, e),
            _ => return Err(std::io::Error::other("bash started without its pipes")),
        };
        return Ok((Proc::Plain(child), Box::new(out), Box::new(err)));
    };
    let run = aos_sandbox::SpawnSpec {
        program: bash_path(),
        args: &["bash", "-c", &spec.command],
        env: &spec.env,
        cwd: &spec.cwd,
    };
    let s = aos_sandbox::spawn(&run, confinement)?;
    let out = tokio::net::unix::pipe::Receiver::from_owned_fd(s.stdout)?;
    let err = tokio::net::unix::pipe::Receiver::from_owned_fd(s.stderr)?;
    Ok((Proc::Confined(s.child), Box::new(out), Box::new(err)))
}

fn kill_group(pgid: Option<i32>) {
    if let Some(p) = pgid {
        // The group may already be gone.
        let _ = killpg(Pid::from_raw(p), Signal::SIGKILL);
    }
}

/// A pid record: the group id padded to a fixed width, so a record always
/// overwrites the previous one whole; blanks mean "no command running".
const PID_WIDTH: usize = 12;
const PID_BLANK: [u8; PID_WIDTH] = [b' '; PID_WIDTH];

/// Writes `pgid` at the start of `path` (created, with its directory, if
/// missing) and returns the open file for blanking it later.
fn write_pid_file(path: &Path, pgid: i32) -> std::io::Result<std::fs::File> {
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
    };
    let file = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            open()?
        }
        r => r?,
    };
    let record = format!("{pgid:<width$}", width = PID_WIDTH - 1) + "\n";
    file.write_all_at(record.as_bytes(), 0)?;
    Ok(file)
}
