//! Legacy services in the real daemon: the seed README's `my-guard`
//! (Python, verbatim) started with `aos skill start` and rejecting
//! `rm -rf /` in an agent's dispatch; a service reaching the HTTP API with
//! its own `AOS_API_TOKEN` (exactly its grant); the processes gone after
//! `aos daemon stop`-style SIGTERM.

mod common;

use aos_testkit::{Reply, ScriptedLlm};
use common::{Daemon, history, tool_parts};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// A service whose command calls the HTTP API with its own token.
const API_USER: &str = r#"
import json, os, urllib.request, urllib.error
from aos_sdk import define_service

def call(payload):
    req = urllib.request.Request(
        os.environ['AOS_API_URL'] + '/v1/syscall',
        data=json.dumps(payload).encode(),
        headers={'Authorization': 'Bearer ' + os.environ['AOS_API_TOKEN'],
                 'Content-Type': 'application/json'})
    try:
        return json.loads(urllib.request.urlopen(req).read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())

@define_service
def service():
    def commands(args, stdin):
        listed = call({'op': 'session.list'})
        created = call({'op': 'agent.create'})
        return json.dumps({'list': listed.get('ok'), 'create': created.get('error', {}).get('code')})
    return {'hooks': {}, 'commands': commands}
"#;

/// A service whose command follows the dispatch stream named by its
/// argument with its own token, and prints the outcome.
const STREAM_FOLLOWER: &str = r#"
import json, os, urllib.request, urllib.error
from aos_sdk import define_service

@define_service
def service():
    def commands(args, stdin):
        req = urllib.request.Request(
            os.environ['AOS_API_URL'] + '/v1/dispatch/' + args[0] + '/stream',
            headers={'Authorization': 'Bearer ' + os.environ['AOS_API_TOKEN']})
        try:
            body = urllib.request.urlopen(req, timeout=10).read().decode()
            return 'followed' if 'event: done' in body else 'incomplete'
        except urllib.error.HTTPError as e:
            return json.loads(e.read()).get('error', {}).get('code', 'error')
    return {'hooks': {}, 'commands': commands}
"#;

fn write_skill(root: &Path, name: &str, source: &str, caps: &str) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("service.py"), source).expect("service");
    let md = format!(
        "---\nname: {name}\ndescription: {name}\nservice: ./service.py\ncapabilities:\n{caps}\n---\nText.\n"
    );
    std::fs::write(dir.join("SKILL.md"), md).expect("SKILL.md");
}

fn pid_alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn legacy_services_run_in_the_daemon_with_their_grant_only() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let llm = rt.block_on(ScriptedLlm::start(vec![
        Reply::bash("c1", "rm -rf / --no-preserve-root"),
        Reply::bash("c2", "echo survived"),
        Reply::text("done"),
    ]));
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("skills");
    write_skill(
        &root,
        "my-guard-py",
        aos_uds_shim::python::SEED_MY_GUARD,
        "  hooks: [tool.before]",
    );
    write_skill(&root, "api-user", API_USER, "  syscalls: [session.read]");
    let roots = format!(
        "{}:{}",
        aos_testkit::builtin_skills().display(),
        root.display()
    );
    let home = tmp.path().join("home");
    let d = Daemon::launch_env(&home, None, &roots, &[("AOS_LLM_BASE_URL", &llm.url())]);

    let started = d.ok(&["skill", "start", "my-guard-py"]);
    assert_eq!(started["data"]["kind"], "legacy", "{started}");
    let guard_pid = started["data"]["pid"].as_u64().expect("pid");
    let agent = d.ok(&["agent", "create"]);
    let aid = agent["data"]["agentId"].as_str().expect("agent");
    let s = d.ok(&["session", "create", "--agent", aid]);
    let sid = s["data"]["sessionId"].as_str().expect("session");
    let (doc, code) = d.aos(&["send", sid, "clean the disk"]);
    assert_eq!(
        (code, doc["data"]["status"].as_str()),
        (0, Some("completed")),
        "{doc}"
    );
    let parts = tool_parts(&history(&d, sid));
    let first = parts
        .iter()
        .rfind(|p| p["toolCallId"] == "c1")
        .expect("c1")
        .to_string();
    assert!(first.contains("blocked: rm -rf /"), "{first}");
    let second = parts
        .iter()
        .rfind(|p| p["toolCallId"] == "c2")
        .expect("c2")
        .to_string();
    assert!(second.contains("survived"), "{second}");

    // The API token of a legacy service carries its grant, no more.
    let (r, code) = d.aos(&["skill", "run", "--json", "api-user"]);
    assert_eq!(code, 0, "{r}");
    let out: Value =
        serde_json::from_str(r["data"]["stdout"].as_str().expect("stdout")).expect("json");
    assert_eq!(out, json!({"list": true, "create": "permission.denied"}));

    // The socket directory is private.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(home.join("run"))
            .expect("run")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o700);

    // SIGTERM: the daemon stops its services' processes before it exits.
    let mut d = d;
    let pid = i32::try_from(d.child.id()).expect("pid");
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    let deadline = Instant::now() + Duration::from_secs(20);
    while d.child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "daemon did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !pid_alive(guard_pid),
        "the service process outlived the daemon"
    );
}

#[test]
fn a_legacy_token_follows_only_its_own_agents_dispatches() {
    let rt = common::runtime();
    let llm = rt.block_on(ScriptedLlm::start(vec![
        Reply::text("answer for a"),
        Reply::text("answer for b"),
    ]));
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("skills");
    write_skill(
        &root,
        "follower",
        STREAM_FOLLOWER,
        "  syscalls: [session.read]",
    );
    let roots = format!(
        "{}:{}",
        aos_testkit::builtin_skills().display(),
        root.display()
    );
    let home = tmp.path().join("home");
    let d = Daemon::launch_env(&home, None, &roots, &[("AOS_LLM_BASE_URL", &llm.url())]);
    let session_of = |d: &Daemon| {
        let a = d.ok(&["agent", "create"]);
        let aid = a["data"]["agentId"].as_str().expect("agent").to_string();
        let s = d.ok(&["session", "create", "--agent", &aid]);
        (
            aid,
            s["data"]["sessionId"]
                .as_str()
                .expect("session")
                .to_string(),
        )
    };
    let (a, sa) = session_of(&d);
    let (_, sb) = session_of(&d);
    let dispatch = |sid: &str| {
        let (doc, code) = d.aos(&["send", sid, "hello"]);
        assert_eq!(code, 0, "{doc}");
        doc["data"]["dispatchId"]
            .as_str()
            .expect("dispatch")
            .to_string()
    };
    let (da, db) = (dispatch(&sa), dispatch(&sb));
    d.ok(&[
        "skill",
        "start",
        "follower",
        "--owner",
        &format!("agent:{a}"),
    ]);
    let run = |dispatch: &str| {
        let (r, code) = d.call(
            "skill.invoke",
            json!({"name": "follower", "sessionId": sa, "args": [dispatch]}),
        );
        assert_eq!(code, 0, "{r}");
        r["data"]["stdout"].as_str().unwrap_or("").to_string()
    };
    assert_eq!(run(&da), "followed", "its own agent's dispatch");
    assert_eq!(run(&db), "permission.denied", "another agent's dispatch");
}
