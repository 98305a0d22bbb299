//! The CLI's exit statuses (`interfaces.md` §2): 0 success, 1 the command
//! failed, 2 bad usage, 3 no daemon reachable or the daemon could not start
//! — each with its JSON error on stdout.

mod common;

use common::Daemon;
use serde_json::Value;

/// Runs `aos args` with `home` as `AOS_HOME`: (exit status, stdout document).
fn aos(home: &std::path::Path, args: &[&str]) -> (i32, Value) {
    let out = common::run_aos(home, args);
    let text = String::from_utf8_lossy(&out.stdout);
    let doc = serde_json::from_str(text.trim()).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), doc)
}

#[test]
fn each_kind_of_failure_has_its_exit_status() {
    let tmp = tempfile::tempdir().expect("tmp");
    // No daemon: 3.
    let nowhere = tmp.path().join("nowhere");
    let (code, doc) = aos(&nowhere, &["agent", "list"]);
    assert_eq!(
        (code, &doc["error"]["code"]),
        (3, &"cli.unreachable".into()),
        "{doc}"
    );
    // `daemon status|stop` with no daemon: 3 as well.
    for cmd in ["status", "stop"] {
        let (code, doc) = aos(
            &nowhere,
            &["daemon", cmd, "--home", &nowhere.display().to_string()],
        );
        assert_eq!(
            (code, &doc["error"]["code"]),
            (3, &"daemon.not_running".into()),
            "daemon {cmd}: {doc}"
        );
    }
    // A daemon that cannot start (its home is a file): 3, naming the cause.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").expect("file");
    let (code, doc) = aos(
        &file,
        &[
            "daemon",
            "start",
            "--port",
            "0",
            "--home",
            &file.display().to_string(),
        ],
    );
    assert_eq!(code, 3, "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("could not start")),
        "{doc}"
    );

    let home = tmp.path().join("home");
    let d = Daemon::start(&home, None);
    // Bad usage: 2, and nothing was sent.
    for args in [
        &["call", "agent.create", "--payload", "{not json"][..],
        &["call", "agent.create", "--payload", "[1]"],
        &["bench", "--only", "everything"],
        &["skill", "new", "Bad_Name"],
        &["skill", "new", "fine", "--template", "nonesuch"],
    ] {
        let (code, doc) = aos(&home, args);
        assert_eq!(
            (code, &doc["error"]["code"]),
            (2, &"cli.usage".into()),
            "{args:?}: {doc}"
        );
    }
    let (list, _) = d.call("agent.list", serde_json::json!({}));
    assert_eq!(
        list["data"]["agents"],
        serde_json::json!([]),
        "nothing was created"
    );
    // The syscall failed: 1, with the kernel's error.
    let (code, doc) = aos(&home, &["agent", "get", "ag_00000000000000000000000000"]);
    assert_eq!(
        (code, &doc["error"]["code"]),
        (1, &"not_found".into()),
        "{doc}"
    );
    // A message to a session that does not exist: the daemon's not_found, 1
    // (waiting, streaming or not).
    for extra in [&[][..], &["--stream"], &["--detach"]] {
        let mut args = vec!["send", "se_00000000000000000000000000", "hello"];
        args.extend_from_slice(extra);
        let (code, doc) = aos(&home, &args);
        assert_eq!(
            (code, &doc["error"]["code"]),
            (1, &"not_found".into()),
            "{args:?}: {doc}"
        );
    }
    // Success: 0.
    let (code, doc) = aos(&home, &["agent", "list"]);
    assert_eq!((code, &doc["ok"]), (0, &true.into()), "{doc}");
}
