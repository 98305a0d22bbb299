//! Real bash under a real confinement: what a command can and cannot reach.

use aos_sandbox::{Cgroups, Confinement, Network, Policy, effective_abi};
use std::path::Path;

struct Dirs {
    _root: tempfile::TempDir,
    work: std::path::PathBuf,
    secret: std::path::PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().expect("tempdir");
    let work = root.path().join("work");
    std::fs::create_dir(&work).expect("work");
    let secret = root.path().join("token");
    std::fs::write(&secret, "operator-secret").expect("secret");
    Dirs {
        work,
        secret,
        _root: root,
    }
}

fn policy(d: &Dirs) -> Policy {
    Policy {
        read_write: vec![d.work.clone()],
        ..Policy::new()
    }
}

async fn run(policy: &Policy, cwd: &Path, script: &str) -> (i32, String) {
    use tokio::io::AsyncReadExt;
    let c = Confinement::prepare(policy, effective_abi(), &Cgroups::none("test"), "se_test")
        .expect("prepare");
    let env = [(
        "PATH".to_string(),
        "/usr/local/bin:/usr/bin:/bin".to_string(),
    )];
    let spec = aos_sandbox::SpawnSpec {
        program: Path::new("/bin/bash"),
        args: &["bash", "-c", script],
        env: &env,
        cwd,
    };
    let mut s = aos_sandbox::spawn(&spec, &c).expect("spawn");
    let mut text = String::new();
    for fd in [s.stdout, s.stderr] {
        let mut r = tokio::net::unix::pipe::Receiver::from_owned_fd(fd).expect("pipe");
        r.read_to_string(&mut text).await.expect("read");
    }
    let status = s.child.wait().await.expect("wait");
    (status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn files_outside_the_grant_are_denied_and_the_work_dir_is_writable() {
    let d = dirs();
    let p = policy(&d);
    let (code, out) = run(&p, &d.work, &format!("cat {}", d.secret.display())).await;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("Permission denied"), "{out}");
    let (code, out) = run(&p, &d.work, "echo hi > f && cat f && ls /usr/bin/env").await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("hi"), "{out}");
    let (code, out) = run(&p, &d.work, "echo x > /etc/aos-escape").await;
    assert_ne!(code, 0, "{out}");
}

#[tokio::test]
async fn the_parent_cannot_be_signalled_or_traced() {
    let d = dirs();
    let p = policy(&d);
    let me = std::process::id();
    let (code, out) = run(&p, &d.work, &format!("kill -0 {me}")).await;
    assert_ne!(code, 0, "{out}");
    let (code, out) = run(&p, &d.work, &format!("cat /proc/{me}/environ")).await;
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("Permission denied"), "{out}");
}

#[tokio::test]
async fn tcp_follows_the_network_rule() {
    let d = dirs();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected");
    let (code, out) = run(&policy(&d), &d.work, &script).await;
    assert_ne!(code, 0, "none: {out}");
    let all = Policy {
        network: Network::All,
        ..policy(&d)
    };
    let (code, out) = run(&all, &d.work, &script).await;
    assert_eq!(code, 0, "all: {out}");
    let ports = Policy {
        network: Network::Ports([port].into()),
        ..policy(&d)
    };
    let (code, out) = run(&ports, &d.work, &script).await;
    assert_eq!(code, 0, "ports: {out}");
    let api = Policy {
        api_port: Some(port),
        ..policy(&d)
    };
    let (code, out) = run(&api, &d.work, &script).await;
    assert_eq!(code, 0, "api port: {out}");
}

#[tokio::test]
async fn private_system_files_and_devices_stay_closed_to_the_daemon_user() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let d = dirs();
    let p = policy(&d);
    let (code, out) = run(
        &p,
        &d.work,
        "head -c 10 /etc/passwd >/dev/null && echo readable",
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let private =
        std::fs::metadata("/etc/shadow").is_ok_and(|m| m.permissions().mode() & 0o004 == 0);
    assert!(private, "the test needs a private /etc/shadow");
    let (code, out) = run(&p, &d.work, "cat /etc/shadow").await;
    assert_ne!(code, 0, "/etc/shadow: {out}");
    let disk = std::fs::read_dir("/dev")
        .expect("/dev")
        .flatten()
        .find(|e| e.file_type().is_ok_and(|t| t.is_block_device()))
        .expect("a block device");
    let (code, out) = run(&p, &d.work, &format!("head -c 1 {}", disk.path().display())).await;
    assert_ne!(code, 0, "{}: {out}", disk.path().display());
    assert!(out.contains("Permission denied"), "{out}");
}

#[test]
fn readable_parts_leave_out_what_others_may_not_read() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    std::fs::create_dir_all(r.join("open/deep")).expect("dirs");
    std::fs::create_dir_all(r.join("mixed")).expect("dirs");
    for f in ["open/a", "open/deep/b", "mixed/public", "mixed/key", "top"] {
        std::fs::write(r.join(f), "x").expect("file");
        std::fs::set_permissions(r.join(f), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    std::fs::set_permissions(r.join("mixed/key"), std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    for d in [
        r.to_path_buf(),
        r.join("open"),
        r.join("open/deep"),
        r.join("mixed"),
    ] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let mut parts = aos_sandbox::readable_parts(r);
    parts.sort();
    assert_eq!(
        parts,
        vec![r.join("mixed/public"), r.join("open"), r.join("top")]
    );
    std::fs::set_permissions(r.join("mixed/key"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    assert_eq!(aos_sandbox::readable_parts(r), vec![r.to_path_buf()]);
}

#[tokio::test]
async fn commands_can_run_as_another_user_without_privileges() {
    let d = dirs();
    let (uid, gid) = aos_sandbox::lookup_user("nobody").expect("the nobody user");
    std::os::unix::fs::chown(&d.work, Some(uid), Some(gid)).expect("chown");
    let p = Policy {
        run_as: Some((uid, gid)),
        ..policy(&d)
    };
    let (code, out) = run(&p, &d.work, "id -u; id -G; echo x > mine && cat mine").await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.lines().take(2).collect::<Vec<_>>(),
        vec![uid.to_string(), gid.to_string()]
    );
    assert_no_capability(&p, &d.work).await;
}

#[tokio::test]
async fn a_root_command_keeps_no_capability() {
    let d = dirs();
    assert_no_capability(&policy(&d), &d.work).await;
}

/// Every capability set of a confined command (`/proc/self/status`) is empty.
async fn assert_no_capability(p: &Policy, cwd: &Path) {
    let (code, out) = run(p, cwd, "grep Cap /proc/self/status").await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().count(), 5, "{out}");
    for line in out.lines() {
        assert!(
            line.ends_with("0000000000000000"),
            "a capability is left: {out}"
        );
    }
}

#[tokio::test]
async fn a_child_that_cannot_start_reports_why() {
    let d = dirs();
    let c = Confinement::prepare(
        &policy(&d),
        effective_abi(),
        &Cgroups::none("test"),
        "se_test",
    )
    .expect("prepare");
    let spec = aos_sandbox::SpawnSpec {
        program: Path::new("/bin/bash"),
        args: &["bash", "-c", "true"],
        env: &[],
        cwd: &d.work.join("missing"),
    };
    let e = aos_sandbox::spawn(&spec, &c).err().expect("no such cwd");
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
    let spec = aos_sandbox::SpawnSpec {
        program: Path::new("/nonexistent/bash"),
        cwd: &d.work,
        ..spec
    };
    let e = aos_sandbox::spawn(&spec, &c)
        .err()
        .expect("no such program");
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
}
