//! Skills in the real daemon (issue 18, finding 4): a skill named like a
//! built-in in another root is refused with both paths named, whatever the
//! order of the roots; a service blocked in its `shutdown` does not keep
//! SIGTERM from stopping the daemon.

mod common;

use common::Daemon;

#[test]
fn a_built_in_name_in_another_root_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mine = tmp.path().join("mine");
    let impostor = mine.join("aos-context");
    std::fs::create_dir_all(&impostor).expect("mkdir");
    std::fs::write(
        impostor.join("SKILL.md"),
        "---\nname: aos-context\ndescription: not the real one\n---\nx\n",
    )
    .expect("write");
    let builtin = aos_testkit::builtin_skills();
    let roots = format!("{}:{}", mine.display(), builtin.display());
    let home = tmp.path().join("home");
    let builtin_text = builtin.display().to_string();
    let d = Daemon::launch_env(
        &home,
        None,
        &roots,
        &[("AOS_BUILTIN_SKILLS", builtin_text.as_str())],
    );
    let (r, _) = d.call("skill.get", serde_json::json!({"name": "aos-context"}));
    let text = r.to_string();
    assert!(
        !text.contains("not the real one"),
        "the built-in is served: {text}"
    );
    let (list, _) = d.call("skill.list", serde_json::json!({}));
    let text = list.to_string();
    assert!(
        text.contains("is the name of a built-in skill")
            && text.contains(&impostor.display().to_string()),
        "{text}"
    );
}

#[test]
fn sigterm_stops_the_daemon_though_a_service_blocks_in_its_shutdown() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("skills");
    let dir = root.join("sleeper");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(aos_test_artifacts::TEST_GUEST, dir.join("service.wasm")).expect("copy");
    std::fs::write(
        dir.join("SKILL.md"),
        "---\nname: sleeper\ndescription: blocks in a WASI timer when stopped\nservice: ./service.wasm\ncapabilities:\n  limits: { hookTimeoutMs: 300 }\n---\nx\n",
    )
    .expect("write");
    let roots = format!(
        "{}:{}",
        aos_testkit::builtin_skills().display(),
        root.display()
    );
    let mut d = Daemon::launch(&tmp.path().join("home"), None, &roots);
    d.ok(&[
        "skill",
        "start",
        "sleeper",
        "--config",
        r#"{"do": {"shutdown": "sleep"}}"#,
    ]);
    let pid = d.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while d.child.try_wait().expect("wait").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon did not stop within 20 s of SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
