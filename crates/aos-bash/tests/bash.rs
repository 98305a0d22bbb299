//! Real bash processes.

use aos_bash::{BashSpec, run};
use std::time::Duration;
use tokio::sync::watch;

fn spec(cmd: &str, dir: &std::path::Path) -> BashSpec {
    BashSpec {
        command: cmd.into(),
        cwd: dir.to_path_buf(),
        env: vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("GREETING".into(), "hi".into()),
        ],
        timeout: Duration::from_secs(10),
        max_output: 1000,
        pid_file: None,
        confinement: None,
    }
}

#[tokio::test]
async fn runs_in_its_directory_with_only_the_given_environment() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("f.txt"), "x").expect("write");
    let (_tx, rx) = watch::channel(false);
    let r = run(
        spec(
            "ls; echo $GREETING; echo ${HOME:-nohome}; echo err >&2; exit 3",
            dir.path(),
        ),
        rx,
    )
    .await
    .expect("run");
    assert_eq!(r.exit_code, 3);
    assert!(
        r.output.contains("f.txt")
            && r.output.contains("hi")
            && r.output.contains("nohome")
            && r.output.contains("err"),
        "{r:?}"
    );
    assert!(!r.truncated && !r.timed_out);
}

#[tokio::test]
async fn output_is_capped_but_counted() {
    let dir = tempfile::tempdir().expect("dir");
    let (_tx, rx) = watch::channel(false);
    let r = run(
        spec("head -c 100000000 /dev/zero | tr '\\0' a", dir.path()),
        rx,
    )
    .await
    .expect("run");
    assert_eq!(r.output.len(), 1000);
    assert_eq!(r.total_bytes, 100_000_000);
    assert!(r.truncated);
    assert_eq!(r.exit_code, 0);
}

#[tokio::test]
async fn a_timeout_kills_the_whole_group() {
    let dir = tempfile::tempdir().expect("dir");
    let marker = dir.path().join("survived");
    let mut s = spec(
        &format!("(sleep 2; touch {}) & sleep 30", marker.display()),
        dir.path(),
    );
    s.timeout = Duration::from_millis(300);
    let (_tx, rx) = watch::channel(false);
    let r = run(s, rx).await.expect("run");
    assert!(r.timed_out);
    assert!(r.elapsed < Duration::from_secs(2), "{:?}", r.elapsed);
    assert_eq!(r.exit_code, 128 + 9);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!marker.exists(), "the background child died with its group");
}

#[tokio::test]
async fn an_interrupt_kills_it() {
    let dir = tempfile::tempdir().expect("dir");
    let (tx, rx) = watch::channel(false);
    let h = tokio::spawn(run(spec("sleep 30", dir.path()), rx));
    tokio::time::sleep(Duration::from_millis(200)).await;
    tx.send_replace(true);
    let r = h.await.expect("join").expect("run");
    assert!(r.interrupted && !r.timed_out);
}

#[tokio::test]
async fn the_pid_file_lives_while_the_command_runs() {
    // The record is written just after the spawn: the command waits for it
    // (bounded) rather than racing the daemon.
    const READ: &str = "for i in $(seq 200); do read p 2>/dev/null < running/x.pid; [ -n \"$p\" ] && break; sleep 0.01; done; echo $p";
    let dir = tempfile::tempdir().expect("dir");
    let pid_file = dir.path().join("running/x.pid");
    let once = || {
        let mut sp = spec(READ, dir.path());
        sp.pid_file = Some(pid_file.clone());
        sp
    };
    let (_tx, rx) = watch::channel(false);
    let r = run(once(), rx.clone()).await.expect("run");
    let pgid: i32 = r.output.trim().parse().expect("a pid while running");
    assert!(pgid > 1);
    let after = std::fs::read_to_string(&pid_file).expect("kept for the next command");
    assert_eq!(after.trim(), "", "blanked at the end: {after:?}");
    // The next command rewrites it in place.
    let r = run(once(), rx).await.expect("run");
    let next: i32 = r.output.trim().parse().expect("the next pid");
    assert!(next > 1 && next != pgid);
}

/// A group left by a daemon that died is killed at restart — only when one of
/// its processes carries the marker.
#[test]
fn leftover_groups_are_killed_only_when_they_are_ours() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().expect("dir");
    let spawn = || {
        std::process::Command::new("bash")
            .args(["-c", "sleep 30 & sleep 30; wait"])
            .env("AOS_SESSION_ID", "se_mine")
            .process_group(0)
            .spawn()
            .expect("spawn")
    };
    let pid_file = dir.path().join("g.pid");

    let mut other = spawn();
    std::fs::write(&pid_file, other.id().to_string()).expect("write");
    assert!(!aos_sandbox::kill_leftover(
        &pid_file,
        "AOS_SESSION_ID=se_other"
    ));
    assert!(
        other.try_wait().expect("wait").is_none(),
        "not ours: left alone"
    );
    assert!(!pid_file.exists());
    other.kill().expect("kill");
    other.wait().expect("reap");

    let mut mine = spawn();
    std::fs::write(&pid_file, mine.id().to_string()).expect("write");
    std::thread::sleep(Duration::from_millis(100));
    assert!(aos_sandbox::kill_leftover(
        &pid_file,
        "AOS_SESSION_ID=se_mine"
    ));
    let status = mine.wait().expect("reaped");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "the whole group is killed");
    assert!(
        !aos_sandbox::kill_leftover(&pid_file, "AOS_SESSION_ID=se_mine"),
        "no file, nothing to do"
    );
}

#[tokio::test]
async fn a_confined_command_is_captured_and_killed_whole_at_its_timeout() {
    let dir = tempfile::tempdir().expect("tmp");
    let policy = aos_sandbox::Policy {
        read_write: vec![dir.path().to_path_buf()],
        ..aos_sandbox::Policy::new()
    };
    let confine = || {
        aos_sandbox::Confinement::prepare(
            &policy,
            aos_sandbox::effective_abi(),
            &aos_sandbox::Cgroups::none("test"),
            "se_bash_test",
        )
        .expect("prepare")
    };
    let (_tx, rx) = watch::channel(false);
    let mut s = spec(
        "echo out; echo err >&2; cat /etc/shadow; exit 3",
        dir.path(),
    );
    s.confinement = Some(confine());
    let r = run(s, rx).await.expect("run");
    assert_eq!(r.exit_code, 3);
    assert!(
        r.output.contains("out") && r.output.contains("err"),
        "{}",
        r.output
    );
    assert!(r.output.contains("Permission denied"), "{}", r.output);
    let (_tx, rx) = watch::channel(false);
    let mut s = spec("sleep 30 & sleep 31", dir.path());
    s.timeout = Duration::from_millis(300);
    s.confinement = Some(confine());
    let t = std::time::Instant::now();
    let r = run(s, rx).await.expect("run");
    assert!(r.timed_out && t.elapsed() < Duration::from_secs(5), "{r:?}");
}
