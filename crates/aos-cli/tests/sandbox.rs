//! The agent's bash sandbox end to end: real dispatches of the real `aos`
//! binary, driven by a scripted LLM, try to escape — the operator token,
//! the store, the daemon's environment and signals, skill roots, the
//! configuration, paths outside the work dir, another session, the network,
//! processes left running — and each attempt must be refused with a clear
//! message and have no effect, checked from the test's side. Ordinary work
//! (files, pipes, python, git, a skill's script, `mktemp`, the `aos` CLI)
//! must still run; session tokens see their own agent only; a kernel too old
//! for the sandbox refuses dispatches unless the operator opts out; the home
//! is private.

mod common;

use aos_testkit::{Reply, ScriptedLlm};
use common::{AOS, Daemon, history, processes_of, skill_roots, tool_parts};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The skill written into the extra (writable by the test) skill root.
const SKILL: &str = "sbx-hello";

/// Tool call ids, unique across the whole file.
static CALLS: AtomicUsize = AtomicUsize::new(0);

/// A value unique to this test run (for paths outside any temp dir).
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        CALLS.fetch_add(1, Ordering::Relaxed)
    )
}

/// One bash tool result as SessionHistory records it.
#[derive(Debug)]
struct Out {
    /// The command (shown when an assertion fails).
    #[allow(dead_code)]
    command: String,
    /// `output.exitCode` (`None` when the part is an error: not run).
    exit: Option<i64>,
    /// `output.visibleResult`, or `errorText`.
    text: String,
}

impl Out {
    /// Refused by the sandbox: a non-zero exit and the kernel's refusal in
    /// the output.
    fn assert_denied(&self) {
        assert!(
            self.exit.is_some_and(|c| c != 0)
                && (self.text.contains("Permission denied")
                    || self.text.contains("Operation not permitted")),
            "expected a refusal (non-zero exit, \"Permission denied\" or \"Operation not permitted\"): {self:#?}"
        );
    }

    /// Refused, and the result carries the sandbox's note naming the
    /// permission that would grant more.
    fn assert_denied_with_note(&self) {
        self.assert_denied();
        assert!(
            self.text.contains("[sandbox:") && self.text.contains("permissions.network"),
            "the refusal carries the sandbox's note: {self:#?}"
        );
    }

    /// Ran to exit code 0 and printed `expected`.
    fn assert_ok(&self, expected: &str) {
        assert!(
            self.exit == Some(0) && self.text.contains(expected),
            "expected exit 0 and {expected:?} in the output: {self:#?}"
        );
    }

    /// The first JSON document of the output (an `aos` CLI answer).
    fn json(&self) -> Value {
        serde_json::Deserializer::from_str(&self.text)
            .into_iter::<Value>()
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("not a JSON answer: {self:#?}"))
    }

    /// The number printed after `key=` (e.g. `ms=12`).
    fn number(&self, key: &str) -> u64 {
        let at = self
            .text
            .find(&format!("{key}="))
            .unwrap_or_else(|| panic!("no {key}= in {self:#?}"));
        self.text[at + key.len() + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or_else(|_| panic!("no number after {key}= in {self:#?}"))
    }
}

/// A daemon on a temp home with the scripted LLM and an extra skill root
/// holding [`SKILL`] (a `SKILL.md` and an executable `scripts/hello.sh`).
/// Fields drop in order: the daemon first, the temp dir last.
struct Fx {
    d: Daemon,
    llm: ScriptedLlm,
    _rt: tokio::runtime::Runtime,
    home: PathBuf,
    extra: PathBuf,
    envs: Vec<(String, String)>,
    _tmp: tempfile::TempDir,
}

impl Fx {
    fn start(envs: &[(&str, &str)]) -> Fx {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let llm = rt.block_on(ScriptedLlm::start(Vec::new()));
        let tmp = tempfile::tempdir().expect("tmp");
        let home = tmp.path().join("home");
        let extra = tmp.path().join("extra");
        let skill = extra.join(SKILL);
        std::fs::create_dir_all(skill.join("scripts")).expect("mkdir skill");
        std::fs::write(
            skill.join("SKILL.md"),
            format!(
                "---\nname: {SKILL}\ndescription: A skill with a script, for the sandbox tests.\n---\n# Hello\n\nRun `scripts/hello.sh`.\n"
            ),
        )
        .expect("SKILL.md");
        let script = skill.join("scripts/hello.sh");
        std::fs::write(&script, format!("#!/bin/sh\necho \"hello from {SKILL}\"\n"))
            .expect("hello.sh");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .expect("chmod hello.sh");
        let mut envs: Vec<(String, String)> = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        envs.push(("AOS_LLM_BASE_URL".into(), llm.url()));
        let d = launch(&home, &extra, &envs);
        Fx {
            d,
            llm,
            _rt: rt,
            home,
            extra,
            envs,
            _tmp: tmp,
        }
    }

    /// SIGKILLs the daemon (and reaps it).
    fn kill_daemon(&mut self) {
        self.d.child.kill().expect("SIGKILL");
        self.d.child.wait().expect("reap");
    }

    /// Kills the daemon and starts a new one on the same home with `envs`
    /// (the LLM's URL is kept).
    fn restart(&mut self, envs: &[(&str, &str)]) {
        self.kill_daemon();
        self.restart_after_kill(envs);
    }

    /// Starts a new daemon on the same home after [`Fx::kill_daemon`].
    fn restart_after_kill(&mut self, envs: &[(&str, &str)]) {
        self.envs = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.envs.push(("AOS_LLM_BASE_URL".into(), self.llm.url()));
        self.d = launch(&self.home, &self.extra, &self.envs);
    }

    fn agent(&self) -> String {
        let (doc, code) = self
            .d
            .call("agent.create", json!({"displayName": "sandboxed"}));
        assert_eq!(code, 0, "agent.create: {doc}");
        doc["data"]["agentId"]
            .as_str()
            .expect("agentId")
            .to_string()
    }

    fn session(&self, agent: &str) -> String {
        let (doc, code) = self.d.call("session.create", json!({"agentId": agent}));
        assert_eq!(code, 0, "session.create: {doc}");
        doc["data"]["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string()
    }

    fn set_network(&self, agent: &str, network: Value) {
        let (doc, code) = self.d.call(
            "agent.update",
            json!({"agentId": agent, "permissions": {"network": network}}),
        );
        assert_eq!(code, 0, "agent.update: {doc}");
    }

    /// Scripts one bash call per command, then a final text; returns the
    /// call ids.
    fn script(&self, commands: &[String]) -> Vec<String> {
        let ids: Vec<String> = commands
            .iter()
            .map(|_| format!("sbx{}", CALLS.fetch_add(1, Ordering::Relaxed)))
            .collect();
        let mut replies: Vec<Reply> = ids
            .iter()
            .zip(commands)
            .map(|(id, c)| Reply::bash(id, c))
            .collect();
        replies.push(Reply::text("done"));
        self.llm.push(replies);
        ids
    }

    fn dispatch(&self, sid: &str, text: &str) -> String {
        let (doc, code) = self.d.call(
            "session.dispatch",
            json!({"sessionId": sid, "message": {"role": "user", "content": text}}),
        );
        assert_eq!(code, 0, "session.dispatch: {doc}");
        doc["data"]["dispatchId"]
            .as_str()
            .expect("dispatchId")
            .to_string()
    }

    fn wait(&self, dispatch: &str) -> Value {
        let (doc, code) = self.d.call(
            "session.wait",
            json!({"dispatchId": dispatch, "timeoutMs": 90_000}),
        );
        assert_eq!(code, 0, "session.wait: {doc}");
        doc["data"].clone()
    }

    /// The results of the calls `ids` in the session's history, in order.
    fn results(&self, sid: &str, ids: &[String], commands: &[String]) -> Vec<Out> {
        let parts = tool_parts(&history(&self.d, sid));
        ids.iter()
            .zip(commands)
            .map(|(id, command)| {
                let p = parts
                    .iter()
                    .find(|p| p["toolCallId"] == id.as_str() && p["state"] != "input-available")
                    .unwrap_or_else(|| panic!("no result for {command:?} ({id}): {parts:#?}"));
                Out {
                    command: command.clone(),
                    exit: p["output"]["exitCode"].as_i64(),
                    text: p["output"]["visibleResult"]
                        .as_str()
                        .or(p["errorText"].as_str())
                        .unwrap_or_default()
                        .to_string(),
                }
            })
            .collect()
    }

    /// One dispatch whose model runs `commands` one bash call each; waits
    /// for it to complete and returns the results.
    fn run(&self, sid: &str, commands: &[String]) -> Vec<Out> {
        let ids = self.script(commands);
        let dispatch = self.dispatch(sid, "run the commands");
        let w = self.wait(&dispatch);
        assert_eq!(w["status"], "completed", "the dispatch ended: {w}");
        self.results(sid, &ids, commands)
    }

    fn work(&self, sid: &str) -> PathBuf {
        self.home.join("sessions").join(sid).join("work")
    }
}

fn launch(home: &Path, extra: &Path, envs: &[(String, String)]) -> Daemon {
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let roots = format!("{}:{}", skill_roots(), extra.display());
    Daemon::launch_env(home, None, &roots, &envs)
}

fn strings(commands: &[&str]) -> Vec<String> {
    commands.iter().map(|c| c.to_string()).collect()
}

/// The whole session's history as text (to look for leaked secrets in
/// every tool output at once).
fn history_text(d: &Daemon, sid: &str) -> String {
    serde_json::to_string(&history(d, sid)).expect("history JSON")
}

/// Pids of running `sleep ARG` processes (zombies have no command line).
fn sleepers(arg: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let argv: Vec<&[u8]> = raw.split(|b| *b == 0).filter(|a| !a.is_empty()).collect();
            argv.len() == 2 && argv[0].ends_with(b"sleep") && argv[1] == arg.as_bytes()
        })
        .collect()
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Kills, when a test ends (passing or not), the `sleep ARG` processes it
/// may have left, so a failure does not leave them for the next run.
struct Reaper(&'static [&'static str]);

impl Drop for Reaper {
    fn drop(&mut self) {
        for arg in self.0 {
            for pid in sleepers(arg) {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
            }
        }
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn health(d: &Daemon) -> bool {
    ureq::get(&format!("{}/health", d.url)).call().is_ok()
}

/// A loopback listener counting the connections it accepts.
fn listener() -> (u16, Arc<AtomicUsize>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            if conn.is_ok() {
                count.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (port, accepted)
}

// ---------------------------------------------------------------------------
// Escapes: each refused with a clear message, and without effect.
// ---------------------------------------------------------------------------

#[test]
fn the_operator_token_the_store_and_the_config_are_out_of_reach() {
    let fx = Fx::start(&[]);
    let agent = fx.agent();
    let sid = fx.session(&agent);
    let home = fx.home.display().to_string();
    let token = fx.d.token();
    assert!(token.len() >= 16, "a real token: {token:?}");
    let config = fx.home.join("config.toml");
    let config_before = std::fs::read(&config).ok();
    assert!(
        fx.home.join("aos.db").is_file() && fx.home.join("aos.db-wal").is_file(),
        "the store's files exist, so a refusal is the sandbox's, not a missing file"
    );

    let commands = vec![
        "cat $HOME/../../../token".to_string(),
        format!("cat {home}/token"),
        "ln -s $HOME/../../../token $HOME/token-link && cat $HOME/token-link".to_string(),
        "cp $HOME/../../../token $HOME/token-copy".to_string(),
        "ls -a $HOME/../../..".to_string(),
        format!("head -c 64 {home}/aos.db"),
        format!("head -c 64 {home}/aos.db-wal"),
        "cp $HOME/../../../aos.db $HOME/copy.db".to_string(),
        "echo port=1 >> $HOME/../../../config.toml".to_string(),
        format!("echo port=1 >> {home}/config.toml"),
        format!("cat {home}/daemon.json"),
    ];
    let out = fx.run(&sid, &commands);
    for o in &out {
        o.assert_denied();
        assert!(!o.text.contains(&token), "the token leaked: {o:#?}");
        assert!(
            !o.text.contains("SQLite format"),
            "the store leaked: {o:#?}"
        );
    }
    out[0].assert_denied_with_note();
    // A hard link into the work dir would carry the work dir's rights to
    // the token: Landlock refuses it with EXDEV ("Invalid cross-device
    // link"), not EACCES; the sandbox's note explains it all the same.
    let hard = "ln $HOME/../../../token $HOME/token-hardlink; cat $HOME/token-hardlink".to_string();
    let hard = fx.run(&sid, std::slice::from_ref(&hard));
    let o = &hard[0];
    assert!(
        o.exit.is_some_and(|c| c != 0) && !o.text.contains(&token),
        "the hard link failed: {o:#?}"
    );
    assert!(
        o.text.contains("[sandbox:"),
        "the refusal is explained: {o:#?}"
    );
    assert!(
        !fx.work(&sid).join("token-hardlink").exists(),
        "no hard link to the token"
    );
    assert!(
        !history_text(&fx.d, &sid).contains(&token),
        "the operator token appears nowhere in the session"
    );
    let work = fx.work(&sid);
    assert!(
        !work.join("token-copy").exists() && !work.join("copy.db").exists(),
        "nothing was copied out"
    );
    assert_eq!(
        std::fs::read(&config).ok(),
        config_before,
        "config.toml is unchanged"
    );
    assert_eq!(fx.d.token(), token, "the token file is unchanged");
}

#[test]
fn the_daemon_can_be_neither_read_nor_signalled() {
    let marker = format!("sk-secret-marker-{}", unique());
    let mut fx = Fx::start(&[("AOS_LLM_API_KEY", &marker)]);
    let pid = fx.d.child.id();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("daemon environ");
    assert!(
        String::from_utf8_lossy(&environ).contains(&marker),
        "the secret is in the daemon's environment"
    );
    let agent = fx.agent();
    let sid = fx.session(&agent);
    let home = fx.home.display().to_string();
    // The descriptor the daemon holds its store open on.
    let db = fx.home.join("aos.db");
    let db_fd = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("daemon fds")
        .filter_map(Result::ok)
        .find(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == db))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .expect("the daemon holds aos.db open");

    let commands = vec![
        format!("cat /proc/{pid}/environ"),
        format!("tr '\\0' '\\n' < /proc/{pid}/environ"),
        format!("cat /proc/{pid}/root{home}/token"),
        format!("head -c 64 /proc/{pid}/fd/{db_fd}"),
        format!("readlink -v /proc/{pid}/fd/{db_fd}"),
        format!(
            "python3 -c \"import ctypes, os, sys; c = ctypes.CDLL(None, use_errno=True); \
             r = c.ptrace(0x4206, {pid}, 0, 0); print(r, os.strerror(ctypes.get_errno())); sys.exit(r != 0)\""
        ),
        "unshare -Ur cat /proc/self/uid_map".to_string(),
        format!("kill -STOP {pid}; echo stop=$?; kill -CONT {pid}"),
        format!("kill -TERM {pid}"),
        format!("python3 -c 'import os; os.kill({pid}, 9)'"),
        format!("kill -9 {pid}"),
    ];
    let out = fx.run(&sid, &commands);
    for o in &out {
        o.assert_denied();
        assert!(!o.text.contains(&marker), "the secret leaked: {o:#?}");
        assert!(
            !o.text.contains("SQLite format"),
            "the store leaked: {o:#?}"
        );
    }
    out[0].assert_denied_with_note();
    assert!(
        out[7].text.contains("stop=1"),
        "kill -STOP failed: {:#?}",
        out[7]
    );
    // The command's own environment does not carry it either.
    let env = fx.run(&sid, &strings(&["env"]));
    env[0].assert_ok("AOS_SESSION_ID=");
    assert!(!env[0].text.contains(&marker), "{:#?}", env[0]);
    assert!(
        !history_text(&fx.d, &sid).contains(&marker),
        "the secret appears nowhere in the session"
    );

    assert!(
        fx.d.child.try_wait().expect("try_wait").is_none(),
        "the daemon runs"
    );
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let state = stat.rsplit(')').next().unwrap_or_default().trim_start();
    assert!(!state.starts_with('T'), "the daemon is not stopped: {stat}");
    assert!(health(&fx.d), "the daemon still answers /health");
}

#[test]
fn skill_roots_and_everything_outside_the_work_dir_are_read_only() {
    let fx = Fx::start(&[]);
    let agent = fx.agent();
    let sid = fx.session(&agent);
    let extra = fx.extra.display().to_string();
    let u = unique();
    let hello = fx.extra.join(SKILL).join("scripts/hello.sh");
    let hello_before = std::fs::read(&hello).expect("hello.sh");

    let commands = vec![
        format!(
            "mkdir -p {extra}/evil && printf -- '---\\nname: evil\\ndescription: x\\n---\\n' > {extra}/evil/SKILL.md"
        ),
        format!("echo 'echo pwned' >> {extra}/{SKILL}/scripts/hello.sh"),
        format!("touch {extra}/{SKILL}/scripts/evil.sh"),
        format!("echo x > /tmp/aos-escape-{u}"),
        format!("echo x > /etc/aos-escape-{u}"),
        format!("echo x > $HOME/../escape-{u}"),
        format!("echo x > $TMPDIR/../escape-tmp-{u}"),
        "printf '%12s' 1 > $HOME/../running/command.pid".to_string(),
    ];
    let out = fx.run(&sid, &commands);
    for o in &out {
        o.assert_denied();
    }
    out[0].assert_denied_with_note();
    assert!(!fx.extra.join("evil").exists(), "no new skill");
    assert!(
        !fx.extra.join(SKILL).join("scripts/evil.sh").exists(),
        "no new file in a skill"
    );
    assert_eq!(
        std::fs::read(&hello).expect("hello.sh"),
        hello_before,
        "the skill's script is unchanged"
    );
    for p in [
        PathBuf::from(format!("/tmp/aos-escape-{u}")),
        PathBuf::from(format!("/etc/aos-escape-{u}")),
        fx.home
            .join("sessions")
            .join(&sid)
            .join(format!("escape-{u}")),
        fx.home
            .join("sessions")
            .join(&sid)
            .join(format!("escape-tmp-{u}")),
    ] {
        assert!(!p.exists(), "{} was created", p.display());
    }
}

#[test]
fn another_sessions_work_dir_is_out_of_reach() {
    let fx = Fx::start(&[]);
    let agent = fx.agent();
    let a = fx.session(&agent);
    let b = fx.session(&agent);
    let secret = format!("topsecret-{}", unique());

    let out = fx.run(
        &b,
        &[format!(
            "echo {secret} > $HOME/secret.txt && cat $HOME/secret.txt"
        )],
    );
    out[0].assert_ok(&secret);
    let file = fx.work(&b).join("secret.txt");
    assert_eq!(
        std::fs::read_to_string(&file).expect("B's secret").trim(),
        secret
    );

    let home = fx.home.display().to_string();
    let commands = vec![
        format!("cat $HOME/../../{b}/work/secret.txt"),
        format!("cat {home}/sessions/{b}/work/secret.txt"),
        format!("ls $HOME/../../{b}/work"),
        "ls $HOME/../..".to_string(),
        format!("echo planted > $HOME/../../{b}/work/planted.txt"),
        format!("echo overwritten > $HOME/../../{b}/work/secret.txt"),
        format!("ln -s $HOME/../../{b}/work/secret.txt $HOME/link && cat $HOME/link"),
    ];
    let out = fx.run(&a, &commands);
    for o in &out {
        o.assert_denied();
        assert!(!o.text.contains(&secret), "B's secret leaked: {o:#?}");
    }
    assert!(!fx.work(&b).join("planted.txt").exists(), "nothing planted");
    assert_eq!(
        std::fs::read_to_string(&file).expect("B's secret").trim(),
        secret,
        "B's file is unchanged"
    );
}

#[test]
fn the_network_follows_the_agents_permission() {
    let fx = Fx::start(&[]);
    let agent = fx.agent();
    let sid = fx.session(&agent);
    let (port, accepted) = listener();
    let (other, other_accepted) = listener();
    let tcp = |p: u16| {
        format!(
            "t0=$(date +%s%N); (exec 3<>/dev/tcp/127.0.0.1/{p} && echo connected); rc=$?; \
             echo \"rc=$rc ms=$(( ($(date +%s%N) - t0) / 1000000 ))\"; exit $rc"
        )
    };
    let py = |p: u16| {
        format!(
            "python3 -c \"import socket; socket.create_connection(('127.0.0.1', {p}), timeout=10); print('connected')\""
        )
    };
    let udp = "python3 -c \"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM); print('udp-ok')\"".to_string();
    let settle = |counter: &AtomicUsize, n: usize, what: &str| {
        wait_until(what, 10, || counter.load(Ordering::SeqCst) >= n);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(counter.load(Ordering::SeqCst), n, "{what}");
    };

    // Default ("none"): the port is refused at once, UDP too.
    let out = fx.run(&sid, &[tcp(port), py(port), udp.clone()]);
    out[0].assert_denied_with_note();
    assert!(
        out[0].number("ms") < 3000,
        "refused at once, not timed out: {:#?}",
        out[0]
    );
    assert!(!out[0].text.contains("connected"), "{:#?}", out[0]);
    out[1].assert_denied_with_note();
    assert!(!out[1].text.contains("connected"), "{:#?}", out[1]);
    out[2].assert_denied_with_note();
    assert!(!out[2].text.contains("udp-ok"), "{:#?}", out[2]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "nothing reached the port"
    );

    // [port]: that port connects, another does not.
    fx.set_network(&agent, json!([port]));
    let out = fx.run(&sid, &[tcp(port), py(port), tcp(other)]);
    out[0].assert_ok("connected");
    out[1].assert_ok("connected");
    out[2].assert_denied_with_note();
    assert!(!out[2].text.contains("connected"), "{:#?}", out[2]);
    settle(&accepted, 2, "both connections to the granted port arrive");
    assert_eq!(other_accepted.load(Ordering::SeqCst), 0);

    // "all": any port.
    fx.set_network(&agent, json!("all"));
    let out = fx.run(&sid, &[tcp(port), tcp(other)]);
    out[0].assert_ok("connected");
    out[1].assert_ok("connected");
    settle(&accepted, 3, "the granted port");
    settle(&other_accepted, 1, "the other port");

    // Back to "none": revoked at the next dispatch; UDP refused.
    fx.set_network(&agent, json!("none"));
    let out = fx.run(&sid, &[tcp(port), udp.clone()]);
    out[0].assert_denied_with_note();
    assert!(!out[0].text.contains("connected"), "{:#?}", out[0]);
    out[1].assert_denied_with_note();
    assert!(!out[1].text.contains("udp-ok"), "{:#?}", out[1]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(accepted.load(Ordering::SeqCst), 3, "no new connection");
}

#[test]
fn processes_left_running_die_with_the_dispatch_and_on_interrupt() {
    let _reaper = Reaper(&["3117", "3118", "3119", "3129"]);
    let fx = Fx::start(&[]);
    let agent = fx.agent();
    let sid = fx.session(&agent);

    let out = fx.run(
        &sid,
        &strings(&[
            "setsid sleep 3117 >/dev/null 2>&1 < /dev/null & echo started",
            "( (sleep 3118 &) & ) >/dev/null 2>&1 < /dev/null; echo forked",
            "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done 2>/dev/null | grep '^sleep 311[78] $' | sort",
        ]),
    );
    out[0].assert_ok("started");
    out[1].assert_ok("forked");
    assert_eq!(
        (out[2].exit, out[2].text.as_str()),
        (Some(0), "sleep 3117 \nsleep 3118 \n"),
        "both outlived their command: {:#?}",
        out[2]
    );
    assert_eq!(sleepers("3117"), Vec::<u32>::new(), "setsid child gone");
    assert_eq!(
        sleepers("3118"),
        Vec::<u32>::new(),
        "double-forked child gone"
    );
    assert_eq!(processes_of(&sid), 0, "nothing of the session runs");

    // Interrupted mid-command: the command and its setsid child die.
    let ids = fx.script(&strings(&[
        "setsid sleep 3119 >/dev/null 2>&1 < /dev/null & sleep 3129",
    ]));
    let dispatch = fx.dispatch(&sid, "sleep a while");
    wait_until("both sleeps run", 20, || {
        !sleepers("3119").is_empty() && !sleepers("3129").is_empty()
    });
    let (doc, code) = fx.d.call("session.interrupt", json!({"sessionId": sid}));
    assert_eq!(code, 0, "session.interrupt: {doc}");
    let w = fx.wait(&dispatch);
    assert_eq!(w["status"], "interrupted", "{w}");
    assert_eq!(sleepers("3119"), Vec::<u32>::new(), "setsid child gone");
    assert_eq!(sleepers("3129"), Vec::<u32>::new(), "the command gone");
    assert_eq!(processes_of(&sid), 0, "nothing of the session runs");
    let parts = tool_parts(&history(&fx.d, &sid));
    assert!(
        parts
            .iter()
            .any(|p| p["toolCallId"] == ids[0].as_str() && p["state"] == "output-error"),
        "the interrupted command is recorded: {parts:#?}"
    );
}

#[test]
fn processes_left_running_by_a_crashed_daemon_die_at_restart() {
    let _reaper = Reaper(&["3120", "3121"]);
    let mut fx = Fx::start(&[]);
    let agent = fx.agent();
    let sid = fx.session(&agent);
    fx.script(&strings(&[
        "setsid sleep 3120 >/dev/null 2>&1 < /dev/null & sleep 3121",
    ]));
    fx.dispatch(&sid, "sleep a while");
    wait_until("both sleeps run", 20, || {
        !sleepers("3120").is_empty() && !sleepers("3121").is_empty()
    });
    fx.kill_daemon();
    assert!(
        !sleepers("3120").is_empty() && !sleepers("3121").is_empty(),
        "the command outlives the killed daemon"
    );
    let envs: Vec<(String, String)> = fx
        .envs
        .iter()
        .filter(|(k, _)| k != "AOS_LLM_BASE_URL")
        .cloned()
        .collect();
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    fx.restart_after_kill(&envs);
    wait_until("the restarted daemon kills the leftovers", 10, || {
        sleepers("3120").is_empty() && sleepers("3121").is_empty()
    });
    assert_eq!(processes_of(&sid), 0, "nothing of the session runs");
    assert_eq!(
        fx.d.ok(&["session", "get", &sid])["data"]["phase"],
        "idle",
        "the session is free again"
    );
}

// ---------------------------------------------------------------------------
// Ordinary work still runs.
// ---------------------------------------------------------------------------

#[test]
fn ordinary_work_runs_in_the_sandbox() {
    let fx = Fx::start(&[]);
    let agent = fx.agent();
    let sid = fx.session(&agent);
    let extra = fx.extra.display().to_string();
    let commands = vec![
        "echo hi > f && cat f".to_string(),
        "seq 100 | wc -l".to_string(),
        "python3 -c 'print(6*7)'".to_string(),
        "git init -q && git -c user.email=a@b -c user.name=a commit -q --allow-empty -m x && git log --oneline | wc -l".to_string(),
        format!("head -n 3 {extra}/{SKILL}/SKILL.md && {extra}/{SKILL}/scripts/hello.sh"),
        "f=$(mktemp) && echo tmpdata > \"$f\" && cat \"$f\" && echo \"file=$f\"".to_string(),
        "mkdir -p d1 d2 && echo moved > d1/x && mv d1/x d2/y && t=$(mktemp) && echo across > \"$t\" && mv \"$t\" d2/z && cat d2/y d2/z".to_string(),
        "aos session get $AOS_SESSION_ID".to_string(),
        "test -r /etc/passwd && ls /usr/bin > /dev/null && uname -s".to_string(),
    ];
    let out = fx.run(&sid, &commands);
    out[0].assert_ok("hi");
    out[1].assert_ok("100");
    out[2].assert_ok("42");
    out[3].assert_ok("1");
    assert_eq!(out[3].text.trim(), "1", "{:#?}", out[3]);
    out[4].assert_ok(&format!("name: {SKILL}"));
    out[4].assert_ok(&format!("hello from {SKILL}"));
    out[5].assert_ok("tmpdata");
    let tmp = fx.home.join("sessions").join(&sid).join("tmp");
    assert!(
        out[5].text.contains(&format!("file={}/", tmp.display())),
        "mktemp uses the session's TMPDIR {}: {:#?}",
        tmp.display(),
        out[5]
    );
    out[6].assert_ok("moved\nacross");
    out[7].assert_ok("\"ok\":true");
    assert_eq!(
        out[7].json()["data"]["sessionId"],
        sid.as_str(),
        "{:#?}",
        out[7]
    );
    out[8].assert_ok("Linux");

    let work = fx.work(&sid);
    assert_eq!(std::fs::read_to_string(work.join("f")).expect("f"), "hi\n");
    assert!(
        work.join(".git").is_dir(),
        "the repository is in the work dir"
    );
    assert_eq!(
        std::fs::read_to_string(work.join("d2/z")).expect("d2/z"),
        "across\n"
    );
}

#[test]
fn a_session_token_sees_its_own_agent_only() {
    let fx = Fx::start(&[]);
    let agent_a = fx.agent();
    let sid_a = fx.session(&agent_a);
    let agent_b = fx.agent();
    let sid_b = fx.session(&agent_b);
    fx.llm.push([Reply::text("b answered")]);
    let dispatch_b = fx.dispatch(&sid_b, "hello b");
    assert_eq!(fx.wait(&dispatch_b)["status"], "completed");

    let commands = vec![
        format!("aos call agent.get --payload '{{\"agentId\":\"{agent_b}\"}}'"),
        "aos call agent.list".to_string(),
        "aos call session.list".to_string(),
        format!("aos call session.list --payload '{{\"agentId\":\"{agent_b}\"}}'"),
        format!(
            "aos call session.wait --payload '{{\"dispatchId\":\"{dispatch_b}\",\"timeoutMs\":1000}}'"
        ),
        format!("aos call session.get --payload '{{\"sessionId\":\"{sid_b}\"}}'"),
        // Granting itself the network, directly or through a new agent.
        format!(
            "aos call agent.update --payload '{{\"agentId\":\"{agent_a}\",\"permissions\":{{\"network\":\"all\"}}}}'"
        ),
        "aos call agent.create --payload '{\"permissions\":{\"network\":\"all\"}}'".to_string(),
    ];
    let out = fx.run(&sid_a, &commands);
    for i in [0, 3, 4, 5, 6, 7] {
        let doc = out[i].json();
        assert!(
            out[i].exit.is_some_and(|c| c != 0)
                && doc["ok"] == false
                && doc["error"]["code"] == "permission.denied",
            "{:#?}",
            out[i]
        );
        assert!(
            !out[i].text.contains("b answered"),
            "B's dispatch leaked: {:#?}",
            out[i]
        );
    }
    out[1].assert_ok("\"ok\":true");
    let listed_agents = out[1].json();
    let agents: Vec<&str> = listed_agents["data"]["agents"]
        .as_array()
        .unwrap_or_else(|| panic!("agents: {:#?}", out[1]))
        .iter()
        .filter_map(|a| a["agentId"].as_str())
        .collect();
    assert_eq!(agents, [agent_a.as_str()], "{:#?}", out[1]);
    out[2].assert_ok("\"ok\":true");
    let listed = out[2].json();
    let sessions = listed["data"]["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("sessions: {:#?}", out[2]));
    assert!(
        sessions.iter().all(|s| s["agentId"] == agent_a.as_str())
            && sessions.iter().any(|s| s["sessionId"] == sid_a.as_str())
            && !sessions.iter().any(|s| s["sessionId"] == sid_b.as_str()),
        "only agent A's sessions: {:#?}",
        out[2]
    );
    // The operator sees both agents, no third one, and A's grant unchanged.
    let (all, _) = fx.d.call("agent.list", json!({}));
    assert_eq!(
        all["data"]["agents"].as_array().map(Vec::len),
        Some(2),
        "{all}"
    );
    let (a, code) = fx.d.call("agent.get", json!({"agentId": agent_a}));
    assert_eq!(code, 0, "{a}");
    assert!(
        a["data"]["permissions"]["network"].is_null(),
        "A's network grant is unchanged: {a}"
    );
}

// ---------------------------------------------------------------------------
// Fail closed; the operator's opt-out.
// ---------------------------------------------------------------------------

#[test]
fn a_kernel_without_landlock_abi_6_refuses_dispatches_unless_opted_out() {
    let mut fx = Fx::start(&[("AOS_LANDLOCK_ABI", "5")]);
    let (h, code) = fx.d.call("system.health", json!({}));
    assert_eq!(code, 0, "{h}");
    let sb = &h["data"]["bashSandbox"];
    assert_eq!(
        (
            sb["mode"].as_str(),
            sb["ready"].as_bool(),
            sb["landlockAbi"].as_i64()
        ),
        (Some("on"), Some(false), Some(5)),
        "{h}"
    );
    let agent = fx.agent();
    let sid = fx.session(&agent);
    let ids = fx.script(&strings(&["touch $HOME/ran && echo ran"]));
    let before = history(&fx.d, &sid).len();
    let (doc, code) = fx.d.call(
        "session.dispatch",
        json!({"sessionId": sid, "message": {"role": "user", "content": "run it"}}),
    );
    assert_eq!(
        (code, doc["error"]["code"].as_str()),
        (1, Some("unavailable")),
        "{doc}"
    );
    assert!(
        doc["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("bashSandbox")),
        "the refusal names the opt-out: {doc}"
    );
    assert!(fx.llm.requests().is_empty(), "the model was never asked");
    assert_eq!(history(&fx.d, &sid).len(), before, "nothing was written");
    assert!(!fx.work(&sid).join("ran").exists(), "nothing ran");
    assert_eq!(fx.d.ok(&["session", "get", &sid])["data"]["phase"], "idle");

    // The operator opts out: the same dispatch runs, unconfined.
    fx.restart(&[("AOS_LANDLOCK_ABI", "5"), ("AOS_BASH_SANDBOX", "off")]);
    let (h, code) = fx.d.call("system.health", json!({}));
    assert_eq!(code, 0, "{h}");
    assert_eq!(h["data"]["bashSandbox"]["mode"], "off", "{h}");
    let dispatch = fx.dispatch(&sid, "run it");
    assert_eq!(fx.wait(&dispatch)["status"], "completed");
    let out = fx.results(&sid, &ids, &strings(&["touch $HOME/ran && echo ran"]));
    out[0].assert_ok("ran");
    assert!(fx.work(&sid).join("ran").exists(), "the command ran");
}

// ---------------------------------------------------------------------------
// The home is private.
// ---------------------------------------------------------------------------

#[test]
fn the_home_is_private_and_narrowed_again_at_restart() {
    let mut fx = Fx::start(&[]);
    let token = fx.d.token();
    assert_eq!(mode(&fx.home), 0o700, "AOS_HOME");
    assert_eq!(mode(&fx.home.join("token")), 0o600, "token");
    assert_eq!(mode(&fx.home.join("aos.db")), 0o600, "aos.db");

    fx.kill_daemon();
    for (p, m) in [
        (fx.home.clone(), 0o755),
        (fx.home.join("token"), 0o644),
        (fx.home.join("aos.db"), 0o644),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).expect("chmod");
    }
    fx.restart_after_kill(&[]);
    assert_eq!(mode(&fx.home), 0o700, "AOS_HOME after restart");
    assert_eq!(mode(&fx.home.join("token")), 0o600, "token after restart");
    assert_eq!(mode(&fx.home.join("aos.db")), 0o600, "aos.db after restart");
    assert_eq!(fx.d.token(), token, "the same token");
}

// ---------------------------------------------------------------------------
// A configured user.
// ---------------------------------------------------------------------------

#[test]
fn commands_run_as_the_configured_user_and_still_only_in_their_session() {
    let fx = Fx::start(&[("AOS_BASH_USER", "nobody")]);
    let agent = fx.agent();
    let sid = fx.session(&agent);
    let token_path = fx.home.join("token");
    let commands = strings(&[
        "id -u",
        "echo mine > f && cat f && mktemp >/dev/null && echo tmp-ok",
        &format!("cat {}", token_path.display()),
        "ls $HOME/../..",
    ]);
    let out = fx.run(&sid, &commands);
    out[0].assert_ok("65534");
    out[1].assert_ok("tmp-ok");
    out[2].assert_denied();
    assert!(out[3].exit.is_some_and(|c| c != 0), "{:?}", out[3]);
    assert!(!history_text(&fx.d, &sid).contains(&fx.d.token()));
    assert_eq!(
        mode(&fx.home) & 0o777,
        0o711,
        "the home lets the user through, no more"
    );
    assert_eq!(mode(&token_path) & 0o777, 0o600);
}

// ---------------------------------------------------------------------------
// A command that times out, and a daemon that stops, leave nothing running.
// ---------------------------------------------------------------------------

#[test]
fn processes_left_running_die_after_a_timeout_and_at_daemon_stop() {
    let _reaper = Reaper(&["3122", "3123", "3124"]);
    let fx = Fx::start(&[]);
    let agent = fx.agent();
    let sid = fx.session(&agent);
    // The model asks for a 300 ms timeout: the command is killed, its
    // setsid child lives until the dispatch ends.
    fx.llm.push([
        Reply::ToolCalls(vec![(
            "sbx-timeout".into(),
            "bash".into(),
            json!({"command": "setsid sleep 3122 >/dev/null 2>&1 < /dev/null & sleep 3123",
                   "timeoutMs": 300})
            .to_string(),
        )]),
        Reply::text("done"),
    ]);
    let dispatch = fx.dispatch(&sid, "time out");
    assert_eq!(fx.wait(&dispatch)["status"], "completed");
    assert_eq!(sleepers("3122"), Vec::<u32>::new(), "setsid child gone");
    assert_eq!(sleepers("3123"), Vec::<u32>::new(), "the command gone");

    // `aos daemon stop` while a command runs.
    let ids = fx.script(&strings(&[
        "setsid sleep 3124 >/dev/null 2>&1 < /dev/null & sleep 30",
    ]));
    let _dispatch = fx.dispatch(&sid, "sleep");
    wait_until("the sleep runs", 20, || !sleepers("3124").is_empty());
    let out = Command::new(AOS)
        .args(["daemon", "stop", "--home"])
        .arg(&fx.home)
        .output()
        .expect("aos daemon stop");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    wait_until("the setsid child is gone", 20, || {
        sleepers("3124").is_empty()
    });
    assert_eq!(processes_of(&sid), 0, "nothing of the session runs");
    drop(ids);
}

// ---------------------------------------------------------------------------
// `aos sandbox check`.
// ---------------------------------------------------------------------------

#[test]
fn sandbox_check_reports_the_daemon_and_the_machine() {
    let fx = Fx::start(&[]);
    let doc = fx.d.ok(&["sandbox", "check"]);
    let data = &doc["data"];
    assert_eq!(data["source"], "daemon", "{doc}");
    assert_eq!(
        (data["mode"].as_str(), data["ready"].as_bool()),
        (Some("on"), Some(true))
    );
    assert!(
        data["landlockAbi"].as_i64().is_some_and(|a| a >= 6),
        "{doc}"
    );
    assert!(
        data["enforced"].as_array().is_some_and(|e| !e.is_empty()),
        "{doc}"
    );

    // No daemon, a kernel that lacks the ABI: refused, exit 1.
    let empty = tempfile::tempdir().expect("tmp");
    let out = Command::new(AOS)
        .args(["sandbox", "check"])
        .env("AOS_HOME", empty.path())
        .env("AOS_LANDLOCK_ABI", "5")
        .env_remove("AOS_API_URL")
        .env_remove("AOS_API_TOKEN")
        .output()
        .expect("aos sandbox check");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(out.status.code(), Some(1), "{doc}");
    assert_eq!(doc["data"]["ready"], false, "{doc}");
    assert_eq!(doc["data"]["landlockAbi"], 5, "{doc}");
    assert!(
        doc["data"]["missing"][0]
            .as_str()
            .is_some_and(|m| m.contains("ABI 5")),
        "{doc}"
    );
}

// ---------------------------------------------------------------------------
// Limits from the agent's permissions.
// ---------------------------------------------------------------------------

#[test]
fn limits_follow_the_agents_permissions() {
    let fx = Fx::start(&[]);
    let agent = fx.agent();
    let sid = fx.session(&agent);
    let show = strings(&["echo $(ulimit -n) $(ulimit -f) $(ulimit -t)"]);
    let out = fx.run(&sid, &show);
    // Defaults: 1024 files, 1024 MiB (in 1 KiB blocks), 600 s.
    out[0].assert_ok("1024 1048576 600");
    let (doc, code) = fx.d.call(
        "agent.update",
        json!({"agentId": agent, "permissions": {"limits":
            {"openFiles": 64, "fileSizeMb": 1, "cpuSeconds": 5, "processes": 16}}}),
    );
    assert_eq!(code, 0, "{doc}");
    let out = fx.run(
        &sid,
        &strings(&[
            "echo $(ulimit -n) $(ulimit -f) $(ulimit -t)",
            "head -c 2000000 /dev/zero > big; echo status=$?; stat -c %s big",
            "for i in $(seq 40); do sleep 1 & done 2>&1 | grep -c 'fork' ; wait",
        ]),
    );
    out[0].assert_ok("64 1024 5");
    assert!(
        out[1].text.contains("1048576") && !out[1].text.contains("status=0"),
        "the file stops at 1 MiB: {:#?}",
        out[1]
    );
    assert!(
        out[2].text.trim().parse::<u32>().is_ok_and(|n| n > 0),
        "forks beyond 16 processes fail: {:#?}",
        out[2]
    );
    // A bad limit is refused and changes nothing.
    let (doc, code) = fx.d.call(
        "agent.update",
        json!({"agentId": agent, "permissions": {"limits": {"openFiles": 0}}}),
    );
    assert_eq!(
        (code, doc["error"]["code"].as_str()),
        (1, Some("request.invalid")),
        "{doc}"
    );
    let acb = fx.d.ok(&["agent", "get", &agent]);
    assert_eq!(
        acb["data"]["permissions"]["limits"]["openFiles"], 64,
        "{acb}"
    );
}
