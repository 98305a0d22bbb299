//! What an operator waits for and pays, measured on the real binary: the
//! time from `aos daemon start` on a fresh home (and on a warm one) to an
//! answering `/health` (`start`), and the daemon's resident memory per idle
//! session, from 1 000 sessions created over the API (`memory`).

use crate::{Result, ms};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A daemon of the running `aos` binary on its own home (killed when
/// dropped).
pub(crate) struct Daemon {
    pub(crate) child: Child,
    pub(crate) addr: String,
    token: String,
}

/// The address and operator token in `home`'s `daemon.json`, once the
/// daemon `pid` wrote it.
fn listening(home: &Path, pid: u32) -> Option<(String, String)> {
    let f: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("daemon.json")).ok()?).ok()?;
    if f["pid"] != pid {
        return None;
    }
    let addr = f["url"].as_str()?.trim_start_matches("http://").to_string();
    let token = std::fs::read_to_string(f["tokenFile"].as_str()?).ok()?;
    Some((addr, token.trim().to_string()))
}

/// Whether `GET /health` at `addr` answers 200.
fn healthy(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut out = String::new();
    write!(
        s,
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .is_ok()
        && s.read_to_string(&mut out).is_ok()
        && out.starts_with("HTTP/1.1 200")
}

impl Daemon {
    /// Starts one on `home`; returns it once `/health` answers, and the time
    /// that took.
    fn start(home: &Path, skills: &Path) -> Result<(Daemon, Duration)> {
        Self::launch(home, skills, &[], &[])
    }

    /// [`Daemon::start`] with more arguments and environment variables.
    pub(crate) fn launch(
        home: &Path,
        skills: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<(Daemon, Duration)> {
        let exe = std::env::current_exe()?;
        let started = Instant::now();
        let mut child = Command::new(exe)
            .args(["daemon", "start", "--port", "0", "--home"])
            .arg(home)
            .arg("--skills")
            .arg(skills)
            .args(args)
            .env("AOS_LOG", "error")
            .env_remove("AOS_DB_URL")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = started + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                return Err(fail!("the daemon exited during start-up ({status})"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(fail!("the daemon did not answer /health within 60 s"));
            }
            if let Some((addr, token)) = listening(home, child.id())
                && healthy(&addr)
            {
                let took = started.elapsed();
                return Ok((Daemon { child, addr, token }, took));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The operator token.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// One HTTP/1.1 request; the whole response as text.
    fn http(&self, method: &str, path: &str, body: Option<&Value>) -> Result<String> {
        let mut s = TcpStream::connect(&self.addr)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let body = body.map(Value::to_string).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            self.token,
            body.len()
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }

    /// A syscall's `data`.
    pub(crate) fn call(&self, req: Value) -> Result<Value> {
        let r = self.http("POST", "/v1/syscall", Some(&req))?;
        let body = r.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let doc: Value = serde_json::from_str(body).map_err(|e| fail!("{e}: {body}"))?;
        if doc["ok"] != true {
            return Err(fail!("{req} failed: {doc}"));
        }
        Ok(doc["data"].clone())
    }

    /// Resident memory, KiB (`VmRSS`).
    fn rss_kb(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| fail!("no VmRSS in /proc/{}/status", self.child.id()))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `start`: a fresh home to `/health`, three times, then a warm one (the
/// compiled components cached).
pub fn start_figures(tmp: &Path, skills: &Path) -> Result<Value> {
    let mut fresh = Vec::new();
    let mut warm = Vec::new();
    for i in 0..3 {
        let home = tmp.join(format!("start-{i}"));
        let (d, took) = Daemon::start(&home, skills)?;
        fresh.push(took);
        drop(d);
        let _ = std::fs::remove_file(home.join("daemon.json"));
        let (d, took) = Daemon::start(&home, skills)?;
        warm.push(took);
        drop(d);
    }
    fresh.sort();
    warm.sort();
    Ok(json!({
        "freshHomeMs": ms(fresh[1]),
        "freshHomeMinMs": ms(fresh[0]),
        "warmHomeMs": ms(warm[1]),
        "aimFreshHomeMs": 150,
    }))
}

/// `memory`: the daemon's resident memory per idle session — after 1 000
/// sessions were created (each bootstrapped) and left idle, against before.
pub fn memory_figures(tmp: &Path, skills: &Path) -> Result<Value> {
    const SESSIONS: u64 = 1_000;
    let home = tmp.join("memory");
    let (d, _) = Daemon::start(&home, skills)?;
    let agent = d.call(json!({ "op": "agent.create", "displayName": "bench" }))?;
    let agent = agent["agentId"].as_str().unwrap_or_default().to_string();
    // A few first, so what is made once (caches, pools) is not counted.
    for _ in 0..20 {
        d.call(json!({ "op": "session.create", "agentId": agent }))?;
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = d.rss_kb()?;
    for _ in 0..SESSIONS {
        d.call(json!({ "op": "session.create", "agentId": agent }))?;
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = d.rss_kb()?;
    let per = (after.saturating_sub(before) as f64) / SESSIONS as f64;
    Ok(json!({
        "sessions": SESSIONS,
        "rssBeforeKb": before,
        "rssAfterKb": after,
        "idleSessionKb": (per * 10.0).round() / 10.0,
        "aimIdleSessionKb": 8,
    }))
}
