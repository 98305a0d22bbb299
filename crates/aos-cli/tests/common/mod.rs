//! The real `aos` binary on a temp home and a free port, for the end-to-end
//! suites.
#![allow(dead_code)]

pub mod browser;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const AOS: &str = env!("CARGO_BIN_EXE_aos");

/// `aos args` as a client of the daemon of `home` (no API URL or token from
/// the test's environment), run to its end.
pub fn run_aos(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(AOS)
        .args(args)
        .env("AOS_HOME", home)
        .env_remove("AOS_API_URL")
        .env_remove("AOS_API_TOKEN")
        .output()
        .expect("aos")
}

pub fn skill_roots() -> String {
    format!(
        "{}:{}",
        aos_testkit::builtin_skills().display(),
        aos_testkit::third_party_skills().display()
    )
}

/// A daemon started in the foreground as a child process.
pub struct Daemon {
    pub child: Child,
    pub home: PathBuf,
    pub url: String,
}

impl Daemon {
    pub fn start(home: &Path, db: Option<&str>) -> Daemon {
        Self::launch(home, db, &skill_roots())
    }

    pub fn start_with_skills(home: &Path, roots: &str) -> Daemon {
        Self::launch(home, None, roots)
    }

    pub fn start_with_llm(home: &Path, llm_url: &str) -> Daemon {
        Self::launch_env(home, None, &skill_roots(), &[("AOS_LLM_BASE_URL", llm_url)])
    }

    pub fn launch(home: &Path, db: Option<&str>, roots: &str) -> Daemon {
        Self::launch_env(home, db, roots, &[])
    }

    pub fn launch_env(home: &Path, db: Option<&str>, roots: &str, envs: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(AOS);
        // Quiet by default; a test may ask for more (`AOS_LOG` in `envs`).
        cmd.env("AOS_LOG", "warn").envs(envs.iter().copied());
        cmd.args([
            "daemon", "start", "--port", "0", "--skills", roots, "--home",
        ])
        .arg(home);
        if let Some(db) = db {
            cmd.args(["--db", db]);
        }
        let log = std::fs::File::create(home.with_extension("log")).expect("log");
        let child = cmd
            .env_remove("AOS_API_TOKEN")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn aos");
        let mut d = Daemon {
            child,
            home: home.to_path_buf(),
            url: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = d.child.try_wait().expect("wait") {
                panic!(
                    "daemon exited {status}: {}",
                    std::fs::read_to_string(home.with_extension("log")).unwrap_or_default()
                );
            }
            if let Ok(text) = std::fs::read_to_string(home.join("daemon.json")) {
                let f: Value = serde_json::from_str(&text).expect("daemon.json");
                if f["pid"] == d.child.id() {
                    let url = f["url"].as_str().expect("url").to_string();
                    if ureq::get(&format!("{url}/health")).call().is_ok() {
                        d.url = url;
                        return d;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("daemon did not become healthy");
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.home.join("token"))
            .expect("token")
            .trim()
            .to_string()
    }

    /// Runs the CLI against this daemon (found through `$AOS_HOME/daemon.json`).
    pub fn aos(&self, args: &[&str]) -> (Value, i32) {
        let out = Command::new(AOS)
            .args(args)
            .env("AOS_HOME", &self.home)
            .env_remove("AOS_API_URL")
            .env_remove("AOS_API_TOKEN")
            .output()
            .expect("run aos");
        let text = String::from_utf8_lossy(&out.stdout);
        let doc = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"));
        (doc, out.status.code().unwrap_or(-1))
    }

    pub fn ok(&self, args: &[&str]) -> Value {
        let (doc, code) = self.aos(args);
        assert_eq!((code, &doc["ok"]), (0, &json!(true)), "{args:?} -> {doc}");
        doc
    }

    pub fn call(&self, op: &str, payload: Value) -> (Value, i32) {
        self.aos(&["call", op, "--payload", &payload.to_string()])
    }

    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new agent and one of its sessions: (agentId, sessionId).
pub fn new_session(d: &Daemon) -> (String, String) {
    let a = d.ok(&["agent", "create"]);
    let aid = a["data"]["agentId"].as_str().expect("agent").to_string();
    let s = d.ok(&["session", "create", "--agent", &aid]);
    let sid = s["data"]["sessionId"]
        .as_str()
        .expect("session")
        .to_string();
    (aid, sid)
}

/// A new agent of `model` (also its display name) and a session of it:
/// (agent id, session id).
pub fn agent_with_model(d: &Daemon, model: &str) -> (String, String) {
    let (a, code) = d.call(
        "agent.create",
        json!({ "displayName": model, "model": model }),
    );
    assert_eq!(code, 0, "{a}");
    let aid = a["data"]["agentId"].as_str().expect("agent").to_string();
    let s = d.ok(&["session", "create", "--agent", &aid]);
    let sid = s["data"]["sessionId"].as_str().expect("session");
    (aid, sid.to_string())
}

/// A one-worker runtime for a test's scripted LLM server.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt")
}

pub fn history(d: &Daemon, sid: &str) -> Vec<Value> {
    let doc = d.ok(&["session", "history", sid, "--limit", "1000"]);
    doc["data"]["messages"]
        .as_array()
        .expect("messages")
        .clone()
}

pub fn tool_parts(h: &[Value]) -> Vec<Value> {
    h.iter()
        .flat_map(|m| m["parts"].as_array().cloned().unwrap_or_default())
        .filter(|p| p["type"] == "tool-bash")
        .collect()
}

/// Processes whose environment says they run for session `sid`.
pub fn processes_of(sid: &str) -> usize {
    let marker = format!("AOS_SESSION_ID={sid}");
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == marker.as_bytes()))
        })
        .count()
}
