//! The PostgreSQL server tests use: `AOS_TEST_PG_URL`; else a server on
//! 127.0.0.1:5432; else a throwaway cluster of the test process's own, made
//! from the installed server binaries (`initdb`, `postgres`, `pg_ctl`) in a
//! temporary directory on a free port, and stopped (its directory removed)
//! when the process exits. With no server binaries at all the tests fail at
//! once, naming the package to install — PostgreSQL is never skipped.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The default server's address.
const DEFAULT: &str = "127.0.0.1:5432";

/// Where the URL comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    /// `AOS_TEST_PG_URL`.
    Env(String),
    /// A server answering on 127.0.0.1:5432.
    Default,
    /// None: start a cluster of our own.
    Own,
}

/// Chooses the server: the variable when set, else the default address when
/// something listens there, else our own.
pub fn choose(env: Option<String>, default_answers: impl FnOnce() -> bool) -> Source {
    match env.filter(|s| !s.trim().is_empty()) {
        Some(url) => Source::Env(url),
        None if default_answers() => Source::Default,
        None => Source::Own,
    }
}

/// The URL of the server tests use (see the module's documentation).
pub fn url() -> String {
    static OWN: OnceLock<Cluster> = OnceLock::new();
    let answers = || {
        let addr: SocketAddr = DEFAULT.parse().expect("address");
        TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
    };
    match choose(std::env::var("AOS_TEST_PG_URL").ok(), answers) {
        Source::Env(url) => url,
        Source::Default => format!("postgres://postgres@{DEFAULT}/postgres"),
        Source::Own => OWN
            .get_or_init(|| Cluster::start().unwrap_or_else(|e| panic!("{e}")))
            .url
            .clone(),
    }
}

/// The newest PostgreSQL server installed (Debian: `/usr/lib/postgresql/N/bin`),
/// or why there is none.
pub fn server_bin() -> Result<PathBuf, String> {
    let missing = "no PostgreSQL server for the tests: set AOS_TEST_PG_URL, start one on \
                   127.0.0.1:5432, or install the server binaries (Debian: apt-get install \
                   postgresql) so the test kit can start its own";
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| missing.to_string())?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| missing.into())
}

/// A throwaway cluster: stopped and removed when the process that started
/// it exits (a watcher process does it), or when dropped.
#[derive(Debug)]
pub struct Cluster {
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub url: String,
    dir: PathBuf,
    bin: PathBuf,
}

/// Runs `bin/tool args` as `postgres` when we are root (the server refuses
/// to run as root), else as ourselves.
fn as_server_user(bin: &Path, tool: &str) -> Command {
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

impl Cluster {
    /// Makes and starts a cluster in a new temporary directory.
    pub fn start() -> Result<Cluster, String> {
        let bin = server_bin()?;
        let dir = std::env::temp_dir().join(format!(
            "aos-test-pg-{}-{}",
            std::process::id(),
            aos_types::new_id(aos_types::IdKind::Agent).trim_start_matches("ag_")
        ));
        let data = dir.join("data");
        std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        let mut cluster = Cluster {
            url: String::new(),
            dir: dir.clone(),
            bin: bin.clone(),
        };
        // The server user must own its directory.
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .stderr(Stdio::null())
            .status();
        let init = as_server_user(&bin, "initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !init.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&init.stderr)
            ));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
            data.display()
        );
        let started = as_server_user(&bin, "pg_ctl")
            .args(["start", "-w", "-t", "30", "-l"])
            .arg(dir.join("server.log"))
            .args(["-D"])
            .arg(&data)
            .args(["-o", &opts])
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("pg_ctl start: {e}"))?;
        if !started.status.success() {
            return Err(format!(
                "pg_ctl start failed: {} (log: {})",
                String::from_utf8_lossy(&started.stderr),
                dir.join("server.log").display()
            ));
        }
        cluster.url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        cluster.watch_parent()?;
        cluster.wait_ready(port)?;
        Ok(cluster)
    }

    /// Waits until the server accepts connections.
    fn wait_ready(&self, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr: SocketAddr = format!("127.0.0.1:{port}")
            .parse()
            .map_err(|e| format!("{e}"))?;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err("the test kit's PostgreSQL did not start within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// A process that stops the cluster and removes its directory once this
    /// process has exited (statics are never dropped).
    fn watch_parent(&self) -> Result<(), String> {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            stop = self.stop_command(),
            dir = self.dir.display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(drop)
            .map_err(|e| format!("cannot watch the test process: {e}"))
    }

    fn stop_command(&self) -> String {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.dir.join("data");
        // SAFETY: geteuid has no preconditions.
        #[allow(unsafe_code)]
        let root = unsafe { libc::geteuid() } == 0;
        let run_as = if root { "runuser -u postgres -- " } else { "" };
        format!(
            "{run_as}'{}' stop -m immediate -D '{}'",
            pg_ctl.display(),
            data.display()
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .args(["-c", &self.stop_command()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_wins_then_the_default_server_then_our_own() {
        let never = || panic!("not asked when the variable is set");
        assert_eq!(
            choose(Some("postgres://x/y".into()), never),
            Source::Env("postgres://x/y".into())
        );
        assert_eq!(choose(Some("  ".into()), || true), Source::Default);
        assert_eq!(choose(None, || true), Source::Default);
        assert_eq!(choose(None, || false), Source::Own);
    }
}
