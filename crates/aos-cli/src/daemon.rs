//! `aos daemon start|stop|status`.

use crate::cli::StartArgs;
use crate::client;
use crate::config::{DaemonConfig, DaemonFile, default_home, pid_alive, refuse_if_running};
use anyhow::{Context, Result, anyhow, bail};
use aos_kernel::Kernel;
use aos_server::Metrics;
use aos_store::{Store, StoreError};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a stopping daemon may drain before it exits anyway.
const GRACE: Duration = Duration::from_secs(10);

/// Our crates: a bare level in `AOS_LOG` (`debug`) applies to them only,
/// the rest (wasmtime, cranelift, hyper…) staying at `warn`.
const OUR_CRATES: &[&str] = &[
    "aos",
    "aos_kernel",
    "aos_react",
    "aos_server",
    "aos_store",
    "aos_extension",
    "aos_wasm_host",
    "aos_uds_shim",
    "aos_llm",
    "aos_bash",
    "aos_sandbox",
    "aos_manifest",
];

/// The log filter of `AOS_LOG`: a bare level is ours only; a full filter
/// (`info,wasmtime=debug`) is taken as written.
fn log_filter(value: Option<&str>) -> String {
    let v = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or("info");
    if v.contains('=') || v.contains(',') {
        return v.to_string();
    }
    let ours: Vec<String> = OUR_CRATES.iter().map(|c| format!("{c}={v}")).collect();
    format!("warn,{}", ours.join(","))
}

fn init_tracing() {
    let value = std::env::var("AOS_LOG").ok();
    let filter = tracing_subscriber::EnvFilter::try_new(log_filter(value.as_deref()))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(log_filter(None)));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if std::env::var("AOS_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs the daemon in the foreground until SIGTERM/SIGINT.
pub fn start_foreground(args: &StartArgs) -> Result<()> {
    init_tracing();
    let cfg = DaemonConfig::resolve(args)?;
    refuse_if_running(&cfg.home)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(cfg))
}

/// The longest the daemon waits for its services to stop.
const STOP_SERVICES: Duration = Duration::from_secs(15);

async fn serve(cfg: DaemonConfig) -> Result<()> {
    // The port first: a start that cannot listen changes nothing.
    let listener = tokio::net::TcpListener::bind((cfg.bind.as_str(), cfg.port))
        .await
        .map_err(|e| bind_error(&cfg, e))?;
    let store = match Store::open(&cfg.db_url).await {
        Ok(s) => s,
        Err(e @ StoreError::Locked { .. }) => bail!("{e}"),
        Err(e) => {
            return Err(anyhow!(
                "cannot open the store {}: {e}",
                redact(&cfg.db_url)
            ));
        }
    };
    let wasm = aos_wasm_host::WasmHost::new(aos_wasm_host::WasmHostConfig {
        cache_dir: cfg.home.join("cache"),
        pooling: std::env::var("AOS_WASM_POOLING").is_ok_and(|v| v == "1"),
        direct_calls: std::env::var("AOS_WASM_DIRECT").map_or(true, |v| v != "0"),
        precompiled: aos_builtins::PRECOMPILED,
    })
    .map_err(|e| anyhow!("cannot start the WASM engine: {e:#}"))?;
    let drivers: Vec<Arc<dyn aos_kernel::services::ServiceDriver>> =
        vec![Arc::new(wasm), Arc::new(aos_uds_shim::UdsDriver::default())];
    let runner = aos_react::ReactUnit::runner(cfg.llm.clone())
        .map_err(|e| anyhow!("cannot set up the LLM client: {e}"))?;
    let kernel = Kernel::start(store.clone(), cfg.kernel.clone(), drivers, runner)
        .await
        .map_err(|e| anyhow!("kernel start failed: {e}"))?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");
    kernel.listening(&url).await;
    let pid = std::process::id();
    DaemonFile {
        pid,
        url: url.clone(),
        token_file: cfg.token_file.clone(),
        node_id: kernel.node_id().to_string(),
        started_at: aos_types::now(),
    }
    .write(&cfg.home)?;
    tracing::info!(%url, home = %cfg.home.display(), db = %redact(&cfg.db_url), "daemon listening");
    let app = aos_server::app(
        kernel.clone(),
        cfg.token.clone(),
        Arc::new(Metrics::default()),
    );
    match kernel.resume_inbox().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(queued = n, "dispatch inbox resumed"),
        Err(e) => tracing::error!(error = %e, "cannot resume the dispatch inbox"),
    }
    let k = kernel.clone();
    let served = aos_server::serve(listener, app, cfg.connections, async move {
        let reason = shutdown_signal().await;
        tracing::info!(reason, "stopping");
        k.begin_shutdown(reason);
    });
    // Streams (SSE) never end by themselves: bound the drain.
    tokio::select! {
        () = served => {}
        () = async {
            kernel.stopped().await;
            tokio::time::sleep(GRACE).await;
        } => {}
    }
    kernel.drain_dispatches(Duration::from_secs(5)).await;
    // Every call into a service is bounded; so is the whole stop.
    if tokio::time::timeout(STOP_SERVICES, kernel.stop_services())
        .await
        .is_err()
    {
        tracing::warn!(after = ?STOP_SERVICES, "services did not all stop in time; exiting anyway");
    }
    store.close().await;
    DaemonFile::remove_if_pid(&cfg.home, pid);
    tracing::info!("stopped");
    Ok(())
}

/// Why the daemon cannot listen, and what to do about it.
fn bind_error(cfg: &DaemonConfig, e: std::io::Error) -> anyhow::Error {
    let fix = match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "; another process (another daemon?) listens there: choose another port with --port PORT, or --port 0 for a free one"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "; this machine has no such address: check --bind (127.0.0.1 by default)"
        }
        std::io::ErrorKind::PermissionDenied => {
            "; ports below 1024 need privileges: choose a port above 1023"
        }
        _ => "",
    };
    anyhow!("cannot listen on {}:{}: {e}{fix}", cfg.bind, cfg.port)
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return "never";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

/// Starts the daemon in the background and waits until it answers `/health`.
pub fn start_detached(args: &StartArgs) -> Result<Value> {
    let home = std::path::absolute(args.home.clone().unwrap_or_else(default_home))?;
    crate::config::secure_home(&home)?;
    std::fs::create_dir_all(home.join("logs"))
        .with_context(|| format!("cannot create {}", home.join("logs").display()))?;
    refuse_if_running(&home)?;
    let log_path = home.join("logs").join("daemon.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot write {}", log_path.display()))?;
    // This attempt's lines start here: a failure reports only them.
    let from = log.metadata().map_or(0, |m| m.len());
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("daemon").arg("start").arg("--home").arg(&home);
    if let Some(p) = args.port {
        cmd.arg("--port").arg(p.to_string());
    }
    for (flag, v) in [
        ("--bind", &args.bind),
        ("--db", &args.db),
        ("--skills", &args.skills),
    ] {
        if let Some(v) = v {
            cmd.arg(flag).arg(v);
        }
    }
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot spawn the daemon")?;
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Err(start_failure(status, &log_path, from));
        }
        if let Ok(f) = DaemonFile::read(&home)
            && f.pid == pid
            && client::health(&f.url).is_some()
        {
            return Ok(json!({ "ok": true, "op": "daemon.start", "data": {
                "pid": pid, "url": f.url, "home": home, "tokenFile": f.token_file, "log": log_path,
            }}));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!(
        "the daemon did not become healthy within 60 s; see {}",
        log_path.display()
    )
}

/// A detached start that ended: the error this attempt's daemon printed
/// (its JSON document's message, as text), with the log to read for more;
/// bad usage (exit 2) stays bad usage.
fn start_failure(status: std::process::ExitStatus, log: &Path, from: u64) -> anyhow::Error {
    let text = std::fs::read(log)
        .ok()
        .and_then(|b| {
            b.get(from as usize..)
                .map(|b| String::from_utf8_lossy(b).into_owned())
        })
        .unwrap_or_default();
    let message = text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|doc| doc["error"]["message"].as_str().map(String::from))
        .map(|m| {
            m.trim_start_matches("the daemon could not start: ")
                .to_string()
        })
        .unwrap_or_else(|| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(5)..].join("\n")
        });
    let message = format!(
        "{message} (daemon exited with {status}; log: {})",
        log.display()
    );
    if status.code() == Some(2) {
        anyhow::Error::new(crate::exit::Usage(message))
    } else {
        anyhow!(message)
    }
}

fn resolve_home(home: Option<PathBuf>) -> PathBuf {
    home.unwrap_or_else(default_home)
}

/// Sends SIGTERM and waits for the process to exit.
pub fn stop(home: Option<PathBuf>) -> Result<(Value, bool)> {
    let home = resolve_home(home);
    let Ok(f) = DaemonFile::read(&home) else {
        return Ok((not_running("daemon.stop", &home), false));
    };
    if !pid_alive(f.pid) {
        let _ = std::fs::remove_file(home.join("daemon.json"));
        return Ok((not_running("daemon.stop", &home), false));
    }
    signal_term(f.pid)?;
    let deadline = Instant::now() + GRACE + Duration::from_secs(20);
    while pid_alive(f.pid) {
        if Instant::now() > deadline {
            bail!("daemon pid {} did not stop within {:?}", f.pid, deadline);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((
        json!({ "ok": true, "op": "daemon.stop", "data": { "pid": f.pid, "stopped": true } }),
        true,
    ))
}

/// Reports whether the daemon runs and its health.
pub fn status(home: Option<PathBuf>) -> (Value, bool) {
    let home = resolve_home(home);
    match DaemonFile::read(&home) {
        Ok(f) if pid_alive(f.pid) => {
            let health = client::health(&f.url);
            let running = health.is_some();
            // Every daemon sharing the store (one, on SQLite).
            let nodes = client::Client::of(&f)
                .and_then(|c| c.call(&json!({ "op": "system.nodes" })))
                .ok()
                .map(|d| d["data"]["nodes"].clone());
            (
                json!({ "ok": running, "op": "daemon.status", "data": {
                    "running": running, "pid": f.pid, "url": f.url, "nodeId": f.node_id,
                    "startedAt": f.started_at, "health": health, "nodes": nodes,
                }}),
                running,
            )
        }
        _ => (not_running("daemon.status", &home), false),
    }
}

fn not_running(op: &str, home: &Path) -> Value {
    json!({ "ok": false, "op": op, "error": {
        "code": "daemon.not_running",
        "message": format!("no daemon runs for {}", home.display()),
    }})
}

#[allow(unsafe_code)]
fn signal_term(pid: u32) -> Result<()> {
    let pid = i32::try_from(pid).context("pid out of range")?;
    // SAFETY: kill(2) with a valid signal number has no memory-safety
    // preconditions; the pid comes from our own daemon.json.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error()).context("cannot signal the daemon")
    }
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn a_bare_level_raises_our_crates_only() {
        let f = log_filter(Some("debug"));
        assert!(f.starts_with("warn,aos=debug,aos_kernel=debug"), "{f}");
        assert!(!f.contains("cranelift"), "{f}");
        assert_eq!(
            log_filter(Some("info,wasmtime=debug")),
            "info,wasmtime=debug"
        );
        assert!(log_filter(None).starts_with("warn,aos=info"));
    }
}
