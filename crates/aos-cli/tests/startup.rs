//! A start that cannot succeed fails at once, says why in plain words with
//! the fix, and changes nothing: a busy port, a missing SQLite directory, a
//! PostgreSQL that refuses, a skill root that is not there — in the
//! foreground and with `--detach` (which reports only its own attempt).

mod common;

use common::{AOS, skill_roots};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// `aos daemon start … --home home`: (exit status, the error message).
fn start(home: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(AOS)
        .args(["daemon", "start", "--home"])
        .arg(home)
        .args(extra)
        .env_remove("AOS_SKILL_ROOT")
        .env_remove("AOS_DB_URL")
        .env("AOS_LOG", "warn")
        .output()
        .expect("aos");
    let text = String::from_utf8_lossy(&out.stdout);
    let doc: Value = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    let message = doc["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (out.status.code().unwrap_or(-1), message)
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn a_busy_port_fails_before_the_store_is_touched() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let (code, message) = start(&home, &["--port", &port, "--skills", &skill_roots()]);
    assert_eq!(code, 3, "{message}");
    assert!(
        message.contains(&format!("cannot listen on 127.0.0.1:{port}"))
            && message.contains("--port 0"),
        "{message}"
    );
    assert!(!home.join("aos.db").exists(), "the store was not created");
    assert!(!home.join("daemon.json").exists());
}

#[test]
fn a_sqlite_path_in_a_missing_directory_is_refused_and_not_created() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let dir = tmp.path().join("no").join("dir");
    let db = format!("sqlite://{}/aos.db", dir.display());
    let (code, message) = start(
        &home,
        &["--port", "0", "--skills", &skill_roots(), "--db", &db],
    );
    assert_eq!(code, 3, "{message}");
    assert!(
        message.contains(&format!("the directory {} does not exist", dir.display())),
        "{message}"
    );
    assert!(!dir.exists(), "the directory was not created");
    assert!(!tmp.path().join("no").exists());
}

#[test]
fn a_postgres_that_refuses_is_named_with_the_os_reason_at_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let port = free_port();
    let db = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let started = Instant::now();
    let (code, message) = start(
        &home,
        &["--port", "0", "--skills", &skill_roots(), "--db", &db],
    );
    let took = started.elapsed();
    assert_eq!(code, 3, "{message}");
    assert!(
        message.contains(&format!("cannot reach PostgreSQL at 127.0.0.1:{port}"))
            && message.contains("Connection refused"),
        "{message}"
    );
    // Not the pool's 30 s timeout: a refused connection is reported as such.
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn a_skill_root_that_is_not_there_stops_the_start_as_bad_usage() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let missing = tmp.path().join("missing-skills");
    let roots = format!("{}:{}", skill_roots(), missing.display());
    let (code, message) = start(&home, &["--port", "0", "--skills", &roots]);
    assert_eq!(code, 2, "{message}");
    assert!(
        message.contains(&format!("skill root {} cannot be read", missing.display()))
            && message.contains("No such file or directory"),
        "{message}"
    );
    assert!(!home.join("aos.db").exists(), "nothing was started");
    // A file is not a root either.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").expect("file");
    let (code, message) = start(
        &home,
        &["--port", "0", "--skills", &file.display().to_string()],
    );
    assert_eq!(code, 2, "{message}");
    assert!(message.contains("Not a directory"), "{message}");
}

#[test]
fn a_detached_start_reports_only_its_own_attempt_in_plain_words() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let missing = tmp.path().join("missing-skills").display().to_string();
    let (code, first) = start(&home, &["--detach", "--port", "0", "--skills", &missing]);
    assert_eq!(code, 2, "bad usage stays bad usage: {first}");
    assert!(
        first.contains("cannot be read") && !first.contains("{\""),
        "{first}"
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let (code, second) = start(
        &home,
        &["--detach", "--port", &port, "--skills", &skill_roots()],
    );
    assert_eq!(code, 3, "{second}");
    assert!(second.contains("cannot listen on"), "{second}");
    assert!(
        !second.contains("cannot be read") && !second.contains("{\""),
        "only this attempt, as text: {second}"
    );
    assert!(second.contains("daemon.log"), "names the log: {second}");
}

/// Starts `aos daemon start --port 0 --home home [extra]` in `cwd`; returns
/// it once it wrote its `daemon.json` (it answers then).
fn start_in(cwd: &Path, home: &Path, extra: &[&str]) -> std::process::Child {
    let mut child = Command::new(AOS)
        .current_dir(cwd)
        .args(["daemon", "start", "--port", "0", "--home"])
        .arg(home)
        .args(extra)
        .env_remove("AOS_SKILL_ROOT")
        .env_remove("AOS_BUILTIN_SKILLS")
        .env_remove("AOS_DB_URL")
        .env("AOS_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("aos");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !home.join("daemon.json").is_file() {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the daemon exited"
        );
        assert!(Instant::now() < deadline, "the daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn client(home: &Path, args: &[&str]) -> Value {
    let out = common::run_aos(home, args);
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn skill_names(home: &Path) -> Vec<String> {
    let list = client(home, &["call", "skill.list"]);
    list["data"]["skills"]
        .as_array()
        .expect("skills")
        .iter()
        .filter_map(|s| s["name"].as_str().map(String::from))
        .collect()
}

#[test]
fn the_daemon_starts_anywhere_with_the_built_in_skills_inside_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    let home = tmp.path().join("home");
    let mut d = start_in(&elsewhere, &home, &[]);
    let names = skill_names(&home);
    for builtin in [
        "aos",
        "aos-context",
        "aos-skill",
        "aos-a2a",
        "aos-frontend",
        "my-guard",
    ] {
        assert!(names.iter().any(|n| n == builtin), "{builtin} in {names:?}");
    }
    assert!(
        home.join("builtin-skills").is_dir(),
        "written under the home"
    );
    // Sessions bootstrap with them: the aos skill is loaded first.
    let agent = client(&home, &["agent", "create"]);
    let agent = agent["data"]["agentId"]
        .as_str()
        .expect("agent")
        .to_string();
    let s = client(&home, &["session", "create", "--agent", &agent]);
    let sid = s["data"]["sessionId"]
        .as_str()
        .expect("session")
        .to_string();
    let h = client(&home, &["session", "history", &sid]);
    let loads: Vec<String> = h["data"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .flat_map(|m| m["parts"].as_array().cloned().unwrap_or_default())
        .filter(|p| p["type"] == "data-skill-load")
        .filter_map(|p| p["data"]["name"].as_str().map(String::from))
        .collect();
    assert_eq!(loads.first().map(String::as_str), Some("aos"), "{h}");
    // Their services run from the code compiled when the binary was built:
    // nothing was compiled into the new home's cache.
    let running = client(&home, &["call", "service.list"]);
    let running: Vec<&str> = running["data"]["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s["skillName"].as_str())
        .collect();
    assert!(running.contains(&"aos-context"), "{running:?}");
    let compiled: Vec<_> = std::fs::read_dir(home.join("cache"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(compiled.is_empty(), "compiled at start: {compiled:?}");
    // The node registry shows where this node answers as soon as it does
    // (not a heartbeat later: 5 s with the default lease).
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let st = client(&home, &["daemon", "status"]);
        let url = &st["data"]["url"];
        if st["data"]["nodes"][0]["url"] == *url {
            break;
        }
        assert!(Instant::now() < deadline, "the node's url in {st}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = d.kill();
    let _ = d.wait();

    // A root of my own comes first; the built-ins are still there.
    let mine = tmp.path().join("mine");
    std::fs::create_dir_all(mine.join("jot")).expect("mkdir");
    std::fs::write(
        mine.join("jot/SKILL.md"),
        "---\nname: jot\ndescription: A note pad\n---\nx\n",
    )
    .expect("SKILL.md");
    let _ = std::fs::remove_file(home.join("daemon.json"));
    let mut d = start_in(
        &elsewhere,
        &home,
        &["--skills", &mine.display().to_string()],
    );
    let names = skill_names(&home);
    assert!(names.iter().any(|n| n == "jot"), "{names:?}");
    assert!(names.iter().any(|n| n == "aos"), "{names:?}");
    let _ = d.kill();
    let _ = d.wait();
}
