//! Daemon configuration: flags > environment > `$AOS_HOME/config.toml` >
//! the repo's `aoscb.json` defaults (`interfaces.md` §3), and `daemon.json`.

use crate::cli::StartArgs;
use anyhow::{Context, Result, bail};
use aos_kernel::{AoscbDefaults, KernelConfig};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The repo's `aoscb.json`, compiled in.
pub(crate) const AOSCB_JSON: &str = include_str!("../../../aoscb.json");

/// `$AOS_HOME`, else `~/.aos`.
pub fn default_home() -> PathBuf {
    if let Some(h) = std::env::var_os("AOS_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".aos")
}

/// Makes `home` readable by its owner only: files this process creates from
/// now on are 0600 and directories 0700 (umask 077), and what an earlier
/// start left wider — the home and its directories, the token, the store
/// files, `config.toml`, `daemon.json`, logs — is narrowed now.
pub fn secure_home(home: &Path) -> Result<()> {
    use nix::sys::stat::{Mode, umask};
    umask(Mode::from_bits_truncate(0o077));
    std::fs::create_dir_all(home).with_context(|| format!("cannot create {}", home.display()))?;
    let narrow = |p: &Path, mode: u32| -> Result<()> {
        let meta = std::fs::symlink_metadata(p)?;
        if !meta.file_type().is_symlink() && meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("cannot make {} private", p.display()))?;
        }
        Ok(())
    };
    narrow(home, 0o700)?;
    for dir in [home.to_path_buf(), home.join("logs")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            narrow(&e.path(), if is_dir { 0o700 } else { 0o600 })?;
        }
    }
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// `$AOS_HOME/config.toml` (all fields optional).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
struct FileConfig {
    port: Option<u16>,
    bind: Option<String>,
    db: Option<String>,
    skills: Option<String>,
    model: Option<String>,
    node_id: Option<String>,
    lease_ttl_ms: Option<u64>,
    llm_base_url: Option<String>,
    bash_sandbox: Option<String>,
    bash_system_paths: Option<Vec<String>>,
    bash_user: Option<String>,
    max_connections: Option<usize>,
    builtin_skills: Option<String>,
}

/// Everything `aos daemon start` resolved.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The LLM endpoint ReActUnits call.
    pub llm: aos_llm::LlmConfig,
    /// State directory.
    pub home: PathBuf,
    /// Bind address.
    pub bind: String,
    /// Port (0: pick one).
    pub port: u16,
    /// Database URL.
    pub db_url: String,
    /// The operator token and the file it lives in.
    pub token: String,
    /// Where the token is.
    pub token_file: PathBuf,
    /// Kernel settings.
    pub kernel: KernelConfig,
    /// HTTP connections at once (`AOS_MAX_CONNECTIONS`, `max_connections`;
    /// default 256) and the request-head timeout (`AOS_HEADER_TIMEOUT_MS`,
    /// default 10 s).
    pub connections: aos_server::ConnLimits,
}

/// The root of the built-in skills, whose names no other root may take:
/// `AOS_BUILTIN_SKILLS` or `config.toml`'s `builtin_skills` (one of the
/// skill roots), else the default root `./skills` when it is one of them.
fn builtin_root(roots: &[PathBuf], file: Option<String>) -> Result<Option<PathBuf>> {
    if let Some(named) = env("AOS_BUILTIN_SKILLS").or(file) {
        let p = absolute(Path::new(&named));
        if !roots.contains(&p) {
            bail!(
                "builtin_skills {} is not one of the skill roots",
                p.display()
            );
        }
        return Ok(Some(p));
    }
    let default = absolute(Path::new("./skills"));
    Ok(roots.contains(&default).then_some(default))
}

/// `AOS_BASH_USER` or `config.toml`'s `bash_user`: the user the agent's
/// commands run as (a root daemon only).
fn bash_user(file: Option<String>) -> Result<Option<(u32, u32)>> {
    let Some(name) = env("AOS_BASH_USER").or(file) else {
        return Ok(None);
    };
    let ids = aos_sandbox::lookup_user(&name).with_context(|| {
        format!("bash_user {name:?} is not a user of this machine (/etc/passwd)")
    })?;
    if ids.0 == 0 {
        bail!("bash_user {name:?} is root: name an unprivileged user");
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("bash_user {name:?} needs the daemon to run as root (to switch users)");
    }
    Ok(Some(ids))
}

/// The bash sandbox: on unless `AOS_BASH_SANDBOX`, `config.toml`'s
/// `bash_sandbox` or `aoscb.json`'s `bashSandbox` (in that order) says `off`.
fn bash_sandbox(
    defaults: &AoscbDefaults,
    file: Option<String>,
    system_paths: Option<Vec<String>>,
) -> Result<aos_kernel::BashSandbox> {
    let enabled = match env("AOS_BASH_SANDBOX").or(file) {
        Some(v) => aos_kernel::parse_switch("AOS_BASH_SANDBOX / bash_sandbox", Some(&v))
            .map_err(anyhow::Error::msg)?,
        None => defaults.sandbox_enabled().map_err(anyhow::Error::msg)?,
    };
    let mut s = aos_kernel::BashSandbox {
        enabled,
        ..Default::default()
    };
    if let Some(paths) = system_paths {
        if let Some(p) = paths.iter().find(|p| !Path::new(p).is_absolute()) {
            bail!("bash_system_paths: {p:?} is not an absolute path");
        }
        s.system_paths = paths.into_iter().map(PathBuf::from).collect();
    }
    Ok(s)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl DaemonConfig {
    /// Resolves flags, environment, config file and defaults.
    pub fn resolve(args: &StartArgs) -> Result<DaemonConfig> {
        let home = absolute(&args.home.clone().unwrap_or_else(default_home));
        let file: FileConfig = match std::fs::read_to_string(home.join("config.toml")) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("invalid {}", home.join("config.toml").display()))?,
            Err(_) => FileConfig::default(),
        };
        let run_as = bash_user(file.bash_user.clone())?;
        secure_home(&home)?;
        for sub in ["run", "logs", "cache", "sessions"] {
            std::fs::create_dir_all(home.join(sub))
                .with_context(|| format!("cannot create {}", home.join(sub).display()))?;
        }
        if run_as.is_some() {
            // Commands of another user reach their work dirs through these
            // (traverse only: no listing; what lies in them stays 0600/0700).
            for dir in [home.clone(), home.join("sessions")] {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))
                    .with_context(|| format!("cannot open {} for traversal", dir.display()))?;
            }
        }
        let port = match (args.port, env("AOS_PORT")) {
            (Some(p), _) => p,
            (None, Some(p)) => p
                .parse()
                .with_context(|| format!("AOS_PORT={p} is not a port"))?,
            (None, None) => file.port.unwrap_or(8420),
        };
        let bind = args
            .bind
            .clone()
            .or_else(|| env("AOS_BIND"))
            .or(file.bind)
            .unwrap_or_else(|| "127.0.0.1".into());
        let db_url = args
            .db
            .clone()
            .or_else(|| env("AOS_DB_URL"))
            .or(file.db)
            .unwrap_or_else(|| format!("sqlite://{}", home.join("aos.db").display()));
        let (skill_roots, builtin_skills) = skill_roots(
            &home,
            args.skills
                .clone()
                .or_else(|| env("AOS_SKILL_ROOT"))
                .or(file.skills),
            file.builtin_skills.clone(),
        )?;
        let mut defaults = AoscbDefaults::from_json(AOSCB_JSON)
            .map_err(anyhow::Error::msg)
            .context("the built-in aoscb.json is invalid")?;
        if let Some(m) = env("AOS_MODEL").or(file.model) {
            defaults.model = m;
        }
        let node_id = env("AOS_NODE_ID")
            .or(file.node_id)
            .unwrap_or_else(|| default_node_id(&home));
        let lease_ttl_ms = match env("AOS_LEASE_TTL_MS") {
            Some(v) => v
                .parse()
                .with_context(|| format!("AOS_LEASE_TTL_MS={v} is not a number"))?,
            None => file.lease_ttl_ms.unwrap_or(1_800_000),
        };
        let mut bash_sandbox = bash_sandbox(&defaults, file.bash_sandbox, file.bash_system_paths)?;
        bash_sandbox.run_as = run_as;
        let (token, token_file) = operator_token(&home)?;
        let mut connections = aos_server::ConnLimits::default();
        if let Some(v) = env("AOS_MAX_CONNECTIONS") {
            connections.max_connections = v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| format!("AOS_MAX_CONNECTIONS={v} is not a positive number"))?;
        } else if let Some(n) = file.max_connections {
            connections.max_connections = n.max(1);
        }
        if let Some(v) = env("AOS_HEADER_TIMEOUT_MS") {
            let ms: u64 =
                v.parse().ok().filter(|n| *n > 0).with_context(|| {
                    format!("AOS_HEADER_TIMEOUT_MS={v} is not a positive number")
                })?;
            connections.header_read = Duration::from_millis(ms);
        }
        Ok(DaemonConfig {
            connections,
            llm: llm_config(file.llm_base_url.clone()),
            kernel: KernelConfig {
                home: home.clone(),
                skill_roots,
                builtin_skills,
                node_id,
                system_name: env("AOS_SYSTEM_NAME").unwrap_or_else(|| "agentos".into()),
                defaults,
                lease_ttl_ms,
                watch_skills: true,
                bin_dir: std::env::current_exe()
                    .ok()
                    .and_then(|p| p.parent().map(PathBuf::from)),
                bash_sandbox,
            },
            home,
            bind,
            port,
            db_url,
            token,
            token_file,
        })
    }
}

/// The LLM endpoint: `AOS_LLM_BASE_URL` / `OPENROUTER_BASE_URL` (else
/// config.toml, else OpenRouter), key from `AOS_LLM_API_KEY` /
/// `OPENROUTER_API_KEY`.
fn llm_config(file_url: Option<String>) -> aos_llm::LlmConfig {
    let base_url = env("AOS_LLM_BASE_URL")
        .or_else(|| env("OPENROUTER_BASE_URL"))
        .or(file_url)
        .unwrap_or_else(|| "https://openrouter.ai/api/v1".into());
    aos_llm::LlmConfig {
        base_url,
        api_key: env("AOS_LLM_API_KEY").or_else(|| env("OPENROUTER_API_KEY")),
        ..Default::default()
    }
}

/// `<hostname>-<hash of AOS_HOME>`: stable across restarts, so a restarted
/// daemon knows its own leases and its dispatch inbox, and distinct for two
/// daemons on one host (they cannot share a home).
fn default_node_id(home: &Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "node".into());
    // FNV-1a: stable across builds and platforms, unlike `DefaultHasher`.
    let hash = home
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{host}-{:08x}", hash as u32)
}

/// `AOS_API_TOKEN`, else `$AOS_HOME/token`, generated (mode 0600) at first start.
fn operator_token(home: &Path) -> Result<(String, PathBuf)> {
    let path = home.join("token");
    if let Some(t) = env("AOS_API_TOKEN") {
        write_private(&path, &t)?;
        return Ok((t, path));
    }
    if let Ok(t) = std::fs::read_to_string(&path) {
        let t = t.trim().to_string();
        if !t.is_empty() {
            return Ok((t, path));
        }
    }
    let bytes: [u8; 32] = rand::random();
    let token = format!(
        "aos_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    write_private(&path, &token)?;
    Ok((token, path))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// `$AOS_HOME/daemon.json`: how clients find the running daemon.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonFile {
    /// Daemon process id.
    pub pid: u32,
    /// Base URL.
    pub url: String,
    /// Path of the operator token file.
    pub token_file: PathBuf,
    /// Node id.
    pub node_id: String,
    /// When it started.
    pub started_at: String,
}

impl DaemonFile {
    /// Reads `daemon.json` of `home`.
    pub fn read(home: &Path) -> Result<DaemonFile> {
        let text = std::fs::read_to_string(home.join("daemon.json"))?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Writes it atomically (temp file + rename).
    pub fn write(&self, home: &Path) -> Result<()> {
        let tmp = home.join("daemon.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .and_then(|()| std::fs::rename(&tmp, home.join("daemon.json")))
            .with_context(|| format!("cannot write {}", home.join("daemon.json").display()))?;
        Ok(())
    }

    /// Removes it if it is ours.
    pub fn remove_if_pid(home: &Path, pid: u32) {
        if DaemonFile::read(home).is_ok_and(|f| f.pid == pid) {
            let _ = std::fs::remove_file(home.join("daemon.json"));
        }
    }
}

/// Whether a process with this pid exists (Linux `/proc`).
pub fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
}

/// Fails if `home` already has a live daemon.
pub fn refuse_if_running(home: &Path) -> Result<()> {
    if let Ok(f) = DaemonFile::read(home)
        && f.pid != std::process::id()
        && pid_alive(f.pid)
        && crate::client::health(&f.url).is_some()
    {
        bail!(
            "a daemon (pid {}) already runs for {} at {}; stop it with `aos daemon stop`",
            f.pid,
            home.display(),
            f.url
        );
    }
    Ok(())
}

/// Every skill root must be a directory the daemon can read: a missing or
/// unreadable one stops the start (bad usage), naming the path and the OS's
/// reason, rather than a daemon that runs without its skills.
fn check_roots(roots: &[PathBuf]) -> Result<()> {
    for root in roots {
        if let Err(e) = std::fs::read_dir(root) {
            return Err(anyhow::Error::new(crate::exit::Usage(format!(
                "skill root {} cannot be read: {e}",
                root.display()
            ))));
        }
    }
    Ok(())
}

/// The skill roots and the built-in root: the roots given (`--skills`,
/// `AOS_SKILL_ROOT`, `config.toml`), each checked; without any, `./skills`
/// when it holds the built-ins (the repository's, for their authors). When
/// no root holds the built-in skills, the binary's own come last, written
/// under `home` ([`crate::builtins`]).
fn skill_roots(
    home: &Path,
    given: Option<String>,
    builtin_file: Option<String>,
) -> Result<(Vec<PathBuf>, Option<PathBuf>)> {
    let mut roots: Vec<PathBuf> = given
        .as_deref()
        .unwrap_or_default()
        .split(':')
        .filter(|s| !s.is_empty())
        .map(|s| absolute(Path::new(s)))
        .collect();
    check_roots(&roots)?;
    let here = absolute(Path::new("./skills"));
    if given.is_none() && crate::builtins::holds_builtins(&here) {
        roots.push(here);
    }
    if roots.iter().any(|r| crate::builtins::holds_builtins(r)) {
        let builtin = builtin_root(&roots, builtin_file)?;
        return Ok((roots, builtin));
    }
    let own = crate::builtins::root(home)?;
    roots.push(own.clone());
    let builtin = builtin_root(&roots, builtin_file)?.or(Some(own));
    Ok((roots, builtin))
}
