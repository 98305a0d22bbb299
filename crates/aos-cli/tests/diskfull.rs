//! A full disk under the store (issue 19, items 2 and 9): a write answers
//! `store.full` naming the file and changes nothing; the daemon serves again
//! once there is room; a start on a full disk names the file it could not
//! write; a session stranded by the failure frees itself. A real tmpfs of a
//! few MiB (the tests run as root, as in CI) — under the SQLite file, and
//! under the data directory of a PostgreSQL server of the test's own.

mod common;

use common::{AOS, Daemon};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// A small tmpfs, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).expect("mkdir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount")
            .success();
        assert!(ok, "mounting a tmpfs needs root (CI runs as root)");
        Tmpfs(at.to_path_buf())
    }

    /// Fills the filesystem with `name`; returns its path.
    fn fill(&self, name: &str) -> PathBuf {
        let path = self.0.join(name);
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=64k"])
            .arg(format!("of={}", path.display()))
            .output();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A PostgreSQL server of the test's own (the machine's binaries, run as
/// user `postgres`) whose data directory is on a small disk. Its WAL stays on
/// the ordinary disk: a full data disk is then an error the server answers
/// (SQLSTATE 53100), as on a real server whose tablespace fills, not a WAL
/// PANIC that stops it.
struct PrivatePg {
    child: Child,
    data: PathBuf,
    url: String,
}

impl PrivatePg {
    fn start(data: &Path, wal: &Path) -> PrivatePg {
        let bin = postgres_bin();
        for dir in [data, wal] {
            std::fs::create_dir_all(dir).expect("mkdir");
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown to postgres (the tests run as root, as in CI)");
        }
        let initdb = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(data)
            .arg("--waldir")
            .arg(wal)
            .output()
            .expect("initdb");
        assert!(
            initdb.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("postgres"))
            .arg("-D")
            .arg(data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(data)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("postgres");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(
                std::time::Instant::now() < deadline,
                "postgres did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        PrivatePg {
            child,
            data: data.to_path_buf(),
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        }
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(postgres_bin().join("pg_ctl"))
            .args(["stop", "-m", "immediate", "-D"])
            .arg(&self.data)
            .output();
        let _ = self.child.wait();
    }
}

/// The newest PostgreSQL server installed.
fn postgres_bin() -> PathBuf {
    aos_testkit::pg::server_bin().unwrap_or_else(|e| panic!("{e}"))
}

/// A tmp dir others may enter (the PostgreSQL server runs as `postgres`).
fn open_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    tmp
}

/// POSTs a syscall; (HTTP status, body).
fn post(d: &Daemon, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let r = ureq::post(&format!("{}/v1/syscall", d.url))
        .set("Authorization", &format!("Bearer {}", d.token()))
        .send_json(body.clone());
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let status = resp.status();
    (status, resp.into_json().expect("json"))
}

/// A write too large for what is left answers 507 `store.full` naming
/// `names`, writes nothing, and succeeds once there is room.
fn refuses_then_serves(d: &Daemon, fs: &Tmpfs, names: &str) {
    let (_, sid) = common::new_session(d);
    let filler = fs.fill("filler");
    let big = "x".repeat(400_000);
    let msg = json!({"op": "session.append", "sessionId": sid, "message": {"role": "user", "parts": [{"type": "text", "text": big}]}});
    let (status, r) = post(d, &msg);
    assert_eq!(
        (status, r["error"]["code"].as_str()),
        (507, Some("store.full")),
        "{r}"
    );
    let text = r["error"]["message"].as_str().unwrap_or("");
    assert!(text.contains(names), "names {names}: {text}");
    std::fs::remove_file(&filler).expect("free space");
    let (h, _) = d.call(
        "session.history.list",
        json!({"sessionId": sid, "limit": 1000}),
    );
    assert!(!h.to_string().contains("xxxxxxxxxx"), "nothing was written");
    let (status, r) = post(d, &msg);
    assert_eq!(status, 200, "it serves again once there is room: {r}");
}

#[test]
fn a_full_disk_is_store_full_naming_the_file_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fs = Tmpfs::mount(&tmp.path().join("fs"), "16m");
    // The store on the small disk; the home (and the daemon's log) beside it.
    let home = tmp.path().join("home");
    let db = fs.0.join("aos.db");
    let url = format!("sqlite://{}", db.display());
    let d = Daemon::launch(&home, Some(&url), &common::skill_roots());
    refuses_then_serves(&d, &fs, &db.display().to_string());
    drop(d);

    // A start on a full disk names the file it could not write.
    let filler = fs.fill("filler2");
    let other = fs.0.join("other-home");
    let out = Command::new(AOS)
        .args([
            "daemon",
            "start",
            "--port",
            "0",
            "--skills",
            &common::skill_roots(),
            "--home",
        ])
        .arg(&other)
        .env_remove("AOS_API_TOKEN")
        .output()
        .expect("aos daemon start");
    assert!(!out.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains(&other.display().to_string()),
        "names the file: {said}"
    );
    assert!(
        said.to_lowercase().contains("no space") || said.contains("full"),
        "{said}"
    );
    drop(filler);
}

#[test]
fn a_full_postgresql_disk_is_store_full_naming_the_file_and_changes_nothing() {
    let tmp = open_tempdir();
    let fs = Tmpfs::mount(&tmp.path().join("fs"), "96m");
    let pg = PrivatePg::start(&fs.0.join("data"), &tmp.path().join("wal"));
    let d = Daemon::launch(
        &tmp.path().join("home"),
        Some(&pg.url),
        &common::skill_roots(),
    );
    // The server names the relation file it could not extend.
    refuses_then_serves(&d, &fs, "could not extend file");
}

/// Queues `msg` on session `sid` (there is room again), waits for it to
/// answer "the queued one ran", and returns the session's history as text,
/// which holds the open call's honest result.
fn queued_runs_and_the_open_call_is_closed(
    d: &Daemon,
    sid: &str,
    msg: &serde_json::Value,
) -> String {
    let (status, q) = post(d, msg);
    assert_eq!(status, 200, "{q}");
    let queued = q["data"]["dispatchId"]
        .as_str()
        .expect("queued")
        .to_string();
    let (w, _) = d.call(
        "session.wait",
        json!({"dispatchId": queued, "timeoutMs": 30000}),
    );
    assert_eq!(
        (
            w["data"]["status"].as_str(),
            w["data"]["finalText"].as_str()
        ),
        (Some("completed"), Some("the queued one ran")),
        "{w}"
    );
    let (h, _) = d.call(
        "session.history.list",
        json!({"sessionId": sid, "limit": 1000}),
    );
    let text = h.to_string();
    assert!(
        text.contains("the store failed while this command ran"),
        "the open call's honest result: {text}"
    );
    text
}

/// Starts a dispatch on `sid` and fills `fs` once the model was asked (its
/// command runs): the filler, and the dispatch's id.
fn fill_while_it_runs(
    d: &Daemon,
    llm: &aos_testkit::ScriptedLlm,
    sid: &str,
    fs: &Tmpfs,
) -> (PathBuf, String) {
    let (doc, code) = d.aos(&["send", sid, "go", "--detach"]);
    assert_eq!(code, 0, "{doc}");
    let first = doc["data"]["dispatchId"].as_str().expect("id").to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while llm.requests().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no request");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (fs.fill("filler"), first)
}

#[test]
fn a_session_stranded_by_a_full_disk_frees_itself_and_runs_what_was_queued() {
    // Issue 19, item 2: the disk fills while a command runs; the dispatch
    // fails, its lease release fails too — and once there is room again the
    // session is closed honestly and freed, and a queued message runs,
    // without a restart.
    let rt = common::runtime();
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![
        aos_testkit::Reply::bash("c1", "sleep 1.5; echo SLEPT"),
        aos_testkit::Reply::text("the queued one ran"),
    ]));
    let tmp = tempfile::tempdir().expect("tmp");
    let fs = Tmpfs::mount(&tmp.path().join("fs"), "16m");
    let home = tmp.path().join("home");
    let url = format!("sqlite://{}", fs.0.join("aos.db").display());
    let d = Daemon::launch_env(
        &home,
        Some(&url),
        &common::skill_roots(),
        &[("AOS_LLM_BASE_URL", &llm.url())],
    );
    let (_, sid) = common::new_session(&d);
    let (filler, first) = fill_while_it_runs(&d, &llm, &sid, &fs);
    let (w, _) = d.call(
        "session.wait",
        json!({"dispatchId": first, "timeoutMs": 20000}),
    );
    assert_eq!(w["data"]["status"], "failed", "{w}");
    // Nothing can be acknowledged while the disk is full…
    let msg = json!({"op": "session.dispatch", "sessionId": sid, "queue": true,
                     "message": {"role": "user", "content": "then this"}});
    let (status, q) = post(&d, &msg);
    assert_eq!(
        (status, q["error"]["code"].as_str()),
        (507, Some("store.full")),
        "{q}"
    );
    // …and once there is room, a message queued on the stranded session runs.
    std::fs::remove_file(&filler).expect("free space");
    queued_runs_and_the_open_call_is_closed(&d, &sid, &msg);
}

#[test]
fn a_dispatch_failed_by_a_full_postgresql_disk_closes_its_open_call_and_runs_what_is_queued() {
    // Issue 19, item 2 on PostgreSQL: the server's data disk fills while a
    // command runs; its 300 KB output cannot be stored and the dispatch
    // fails `store.full`. The command gets its honest result and the session
    // is freed (at once if the server takes the small writes, else once
    // there is room), and a queued message runs — without a restart.
    let rt = common::runtime();
    let llm = rt.block_on(aos_testkit::ScriptedLlm::start(vec![
        aos_testkit::Reply::bash("c1", "sleep 1.5; head -c 300000 /dev/zero | tr '\\0' y"),
        aos_testkit::Reply::text("the queued one ran"),
    ]));
    let tmp = open_tempdir();
    let fs = Tmpfs::mount(&tmp.path().join("fs"), "96m");
    let pg = PrivatePg::start(&fs.0.join("data"), &tmp.path().join("wal"));
    let d = Daemon::launch_env(
        &tmp.path().join("home"),
        Some(&pg.url),
        &common::skill_roots(),
        &[("AOS_LLM_BASE_URL", &llm.url())],
    );
    let (_, sid) = common::new_session(&d);
    let (filler, first) = fill_while_it_runs(&d, &llm, &sid, &fs);
    let (w, _) = d.call(
        "session.wait",
        json!({"dispatchId": first, "timeoutMs": 20000}),
    );
    assert_eq!(
        (
            w["data"]["status"].as_str(),
            w["data"]["error"]["code"].as_str()
        ),
        (Some("failed"), Some("store.full")),
        "{w}"
    );
    std::fs::remove_file(&filler).expect("free space");
    let msg = json!({"op": "session.dispatch", "sessionId": sid, "queue": true,
                     "message": {"role": "user", "content": "then this"}});
    let text = queued_runs_and_the_open_call_is_closed(&d, &sid, &msg);
    assert!(
        !text.contains("yyyyyyyyyy"),
        "nothing of the refused output"
    );
    drop(d);
    drop(pg);
}
