//! The skill author's loop against the real daemon: a running service says
//! when its files changed on disk (`stale`), `aos skill restart NAME` starts
//! it again from them, `aos skill stop NAME` stops every instance of a
//! skill, `aos skill unload` takes a skill's text out of a session, and
//! `aos skill build` runs the skill's build.

mod common;

use common::Daemon;
use serde_json::{Value, json};

fn services(d: &Daemon, skill: &str) -> Vec<Value> {
    let (doc, code) = d.call("service.list", json!({ "skillName": skill }));
    assert_eq!(code, 0, "{doc}");
    doc["data"]["services"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn running(d: &Daemon, skill: &str) -> Vec<Value> {
    services(d, skill)
        .into_iter()
        .filter(|s| s["state"] == "running")
        .collect()
}

#[test]
fn a_changed_skill_is_stale_until_restarted_and_stops_by_name() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("skills");
    let dir = root.join("pad");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(aos_test_artifacts::TEST_GUEST, dir.join("service.wasm")).expect("copy");
    let manifest = "---\nname: pad\ndescription: a pad\nservice: ./service.wasm\n---\nx\n";
    std::fs::write(dir.join("SKILL.md"), manifest).expect("write");
    let roots = format!("{}:{}", common::skill_roots(), root.display());
    let d = Daemon::launch(&tmp.path().join("home"), None, &roots);
    let first = d.ok(&["skill", "start", "pad"]);
    let first_id = first["data"]["instanceId"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(running(&d, "pad")[0]["stale"], false);

    // A rebuilt component (or an edited SKILL.md) on disk: stale.
    let mut wasm = std::fs::read(dir.join("service.wasm")).expect("read");
    wasm.extend_from_slice(&[0, 0, 0]);
    std::fs::write(dir.join("service.wasm"), &wasm[..wasm.len() - 3]).expect("rewrite");
    std::fs::write(dir.join("SKILL.md"), format!("{manifest}more text\n")).expect("edit");
    let now = running(&d, "pad");
    assert_eq!(now[0]["stale"], true, "{now:?}");

    // Restart by name: a new instance from the files as they are, not stale.
    let r = d.ok(&["skill", "restart", "pad"]);
    let restarted = &r["data"]["services"][0];
    assert_eq!(restarted["previousInstanceId"], first_id.as_str(), "{r}");
    assert_eq!(restarted["stale"], false, "{r}");
    let now = running(&d, "pad");
    assert_eq!(now.len(), 1);
    assert_ne!(now[0]["instanceId"], first_id.as_str());
    // By id as well.
    let id = now[0]["instanceId"].as_str().expect("id").to_string();
    let r = d.ok(&["skill", "restart", &id]);
    assert_eq!(r["data"]["previousInstanceId"], id.as_str(), "{r}");

    // Stop every instance of the skill by name; then there is none to stop.
    d.ok(&["skill", "start", "pad"]);
    assert_eq!(running(&d, "pad").len(), 2);
    let stopped = d.ok(&["skill", "stop", "pad"]);
    assert_eq!(
        stopped["data"]["services"].as_array().map(Vec::len),
        Some(2),
        "{stopped}"
    );
    assert!(running(&d, "pad").is_empty());
    let (doc, code) = d.aos(&["skill", "stop", "pad"]);
    assert_eq!(
        (code, &doc["error"]["code"]),
        (1, &json!("not_found")),
        "{doc}"
    );
    let (doc, code) = d.aos(&["skill", "restart", "sv_00000000000000000000000000"]);
    assert_eq!(
        (code, &doc["error"]["code"]),
        (1, &json!("not_found")),
        "{doc}"
    );
}

#[test]
fn unload_takes_a_skill_out_of_a_session() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(&tmp.path().join("home"), None);
    let (_, sid) = common::new_session(&d);
    let (doc, code) = d.call("skill.load", json!({ "sessionId": sid, "name": "pdf" }));
    assert_eq!(code, 0, "{doc}");
    d.ok(&["skill", "unload", "pdf", "--session", &sid]);
    let h = common::history(&d, &sid);
    let last = h.last().expect("a message");
    assert_eq!(last["parts"][0]["type"], "data-skill-unload", "{last}");
    assert_eq!(last["parts"][0]["data"]["name"], "pdf", "{last}");
}

#[test]
fn build_runs_the_skills_build_and_keeps_stdout_for_its_answer() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let dir = tmp.path().join("mine");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let aos = |args: &[&str]| {
        let out = std::process::Command::new(common::AOS)
            .args(args)
            .env("AOS_HOME", &home)
            .output()
            .expect("aos");
        let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
        (
            out.status.code().unwrap_or(-1),
            doc,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let path = dir.display().to_string();
    let (code, doc, _) = aos(&["skill", "build", &path]);
    assert_eq!(
        (code, &doc["error"]["code"]),
        (2, &json!("cli.usage")),
        "no build.sh: {doc}"
    );
    std::fs::write(dir.join("build.sh"), "echo compiling\ntouch service.wasm\n").expect("write");
    let (code, doc, err) = aos(&["skill", "build", &path]);
    assert_eq!(code, 0, "{doc}");
    assert!(
        err.contains("compiling"),
        "the build's output on stderr: {err}"
    );
    assert!(
        doc["data"]["component"]
            .as_str()
            .is_some_and(|c| c.ends_with("service.wasm"))
    );
    std::fs::write(dir.join("build.sh"), "echo broken >&2\nexit 3\n").expect("write");
    let (code, doc, _) = aos(&["skill", "build", &path]);
    assert_eq!(
        (code, &doc["error"]["code"]),
        (1, &json!("build.failed")),
        "{doc}"
    );
}
