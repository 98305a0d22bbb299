//! The web console (issue 20): the `aos-frontend` skill's assets served at
//! `/ui/` only while that skill is installed and enabled, and the console
//! itself driven in a real headless Chromium against the real daemon with
//! the scripted LLM. Each view's screenshot lands in
//! `target/ui-screenshots/`.

mod common;

use aos_testkit::{Reply, ScriptedLlm};
use common::Daemon;
use common::browser::Browser;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// GET `path` on the daemon, raw (no client-side path normalisation):
/// (status, content type, body).
fn get(d: &Daemon, path: &str) -> (u16, String, String) {
    let addr = d.url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, ctype, body.to_string())
}

#[test]
fn the_ui_is_served_only_while_its_skill_is_installed_and_enabled() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::start(&tmp.path().join("home"), None);
    let (status, ctype, body) = get(&d, "/ui/");
    assert_eq!(status, 200, "{body}");
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert!(body.contains("js/main.js"), "{body}");
    let (status, ctype, _) = get(&d, "/ui/js/main.js");
    assert_eq!((status, ctype.starts_with("text/javascript")), (200, true));
    assert_eq!(get(&d, "/ui").0, 308, "/ui redirects to /ui/");
    // Paths are resolved before they are trusted.
    for bad in [
        "/ui/%2e%2e/%2e%2e/aoscb.json",
        "/ui/..%2f..%2fSKILL.md",
        "/ui/.hidden",
        "/ui/js/../../SKILL.md",
        "/ui/%00",
        "/ui/nope.js",
    ] {
        let (status, _, body) = get(&d, bad);
        assert_eq!(status, 404, "{bad}: {body}");
    }
    // Disabled in the AOSCB — by `"start": "disable"`, or by no rule at
    // all: gone, and the answer says how to enable it.
    let (cb, _) = d.call("system.get", json!({}));
    let rules: Vec<Value> = cb["data"]["defaultSkills"]
        .as_array()
        .expect("rules")
        .iter()
        .filter(|r| r["name"] != "aos-frontend")
        .cloned()
        .collect();
    let mut disabled = rules.clone();
    disabled.push(json!({"name": "aos-frontend", "start": "disable"}));
    let (r, code) = d.call("system.update", json!({ "defaultSkills": disabled }));
    assert_eq!(code, 0, "{r}");
    assert_eq!(get(&d, "/ui/").0, 404, "start: disable turns it off");
    let (r, code) = d.call("system.update", json!({ "defaultSkills": rules }));
    assert_eq!(code, 0, "{r}");
    let (status, _, body) = get(&d, "/ui/");
    assert_eq!(status, 404);
    assert!(body.contains("defaultSkills"), "{body}");
}

#[test]
fn without_the_skill_there_is_no_ui_and_nothing_else_changes() {
    // A root of built-ins without aos-frontend (a root holding the built-in
    // skills replaces the binary's own); a copy of it with a symlink that
    // points out of its web/ (never followed out).
    let tmp = tempfile::tempdir().expect("tmp");
    let plain = tmp.path().join("plain");
    copy_dir(
        &aos_testkit::builtin_skills().join("aos"),
        &plain.join("aos"),
    );
    let d = Daemon::start_with_skills(
        &tmp.path().join("home"),
        &format!(
            "{}:{}",
            plain.display(),
            aos_testkit::third_party_skills().display()
        ),
    );
    let (status, _, body) = get(&d, "/ui/");
    assert_eq!(status, 404);
    assert!(body.contains("not installed"), "{body}");
    let (_, sid) = common::new_session(&d);
    assert!(sid.starts_with("se_"), "the API is unchanged");
    drop(d);

    let root = tmp.path().join("root");
    copy_dir(
        &aos_testkit::builtin_skills().join("aos"),
        &root.join("aos"),
    );
    let copy = root.join("aos-frontend");
    copy_dir(&aos_testkit::builtin_skills().join("aos-frontend"), &copy);
    std::os::unix::fs::symlink(tmp.path().join("home/token"), copy.join("web/leak.txt"))
        .expect("symlink");
    std::os::unix::fs::symlink("/etc", copy.join("web/etc")).expect("symlink");
    let d = Daemon::start_with_skills(&tmp.path().join("home2"), &root.display().to_string());
    assert_eq!(get(&d, "/ui/").0, 200);
    assert_eq!(get(&d, "/ui/leak.txt").0, 404, "a symlink out of web/");
    assert_eq!(get(&d, "/ui/etc/passwd").0, 404, "a symlinked directory");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// The console under test: a browser, and a daemon with the scripted LLM
/// (fields drop in order: the browser first, the home last).
struct Console {
    b: Browser,
    d: Daemon,
    llm: ScriptedLlm,
    _rt: tokio::runtime::Runtime,
    _tmp: tempfile::TempDir,
}

fn console(replies: Vec<Reply>) -> Console {
    console_with(&common::skill_roots(), replies)
}

/// [`console`] with the skill roots `roots`.
fn console_with(roots: &str, replies: Vec<Reply>) -> Console {
    let rt = common::runtime();
    let llm = rt.block_on(ScriptedLlm::start(replies));
    let tmp = tempfile::tempdir().expect("tmp");
    let d = Daemon::launch_env(
        &tmp.path().join("home"),
        None,
        roots,
        &[("AOS_LLM_BASE_URL", &llm.url())],
    );
    Console {
        b: Browser::start(),
        d,
        llm,
        _rt: rt,
        _tmp: tmp,
    }
}

fn titled_session(d: &Daemon, title: &str) -> String {
    let a = d.ok(&["agent", "create"]);
    let aid = a["data"]["agentId"].as_str().expect("agent");
    let s = d.ok(&["session", "create", "--agent", aid, "--title", title]);
    s["data"]["sessionId"]
        .as_str()
        .expect("session")
        .to_string()
}

#[test]
fn an_operator_logs_in_finds_sessions_and_opens_one_by_link() {
    let c = console(Vec::new());
    let (b, d) = (&c.b, &c.d);
    let nightly = titled_session(d, "Nightly deploy");
    let other = titled_session(d, "Refactor the parser");

    // A wrong token in the fragment: the form, with the error.
    b.goto(&format!("{}/ui/#token=not-the-token", d.url));
    b.wait_text("That token was refused");
    assert!(!b.url().contains("not-the-token"), "{}", b.url());
    b.screenshot("login-wrong-token");

    // The form, with the right one: the sessions, newest first.
    b.find("#login-token").type_text(&d.token());
    b.find("#login-submit").click();
    b.wait_text("Nightly deploy");
    b.wait_text("Refactor the parser");
    let rows = b.js(
        "return [...document.querySelectorAll('#session-rows tr')].map(r => r.dataset.session)",
        json!([]),
    );
    assert_eq!(rows, json!([other, nightly]), "newest first");
    b.screenshot("sessions");

    // Search by title.
    b.find("#session-search").type_text("NIGHTLY");
    b.wait("one match", || {
        let rows = b.js(
            "return document.querySelectorAll('#session-rows tr').length",
            json!([]),
        );
        (rows == json!(1)).then_some(())
    });
    assert!(b.text().contains("Nightly deploy") && !b.text().contains("Refactor the parser"));

    // A deep link with the token in the fragment, in a fresh tab state.
    b.js("sessionStorage.clear()", json!([]));
    b.goto(&format!(
        "{}/ui/#token={}&session={nightly}",
        d.url,
        d.token()
    ));
    b.wait("the session's title", || {
        let t = b.try_find("#session-title")?.text();
        (t == "Nightly deploy").then_some(())
    });
    let url = b.url();
    assert!(
        !url.contains(&d.token()),
        "the token leaves the address bar: {url}"
    );
    assert!(url.contains(&format!("session={nightly}")), "{url}");
    b.wait_text("skill loaded: aos");
    b.screenshot("session-bootstrap");

    // A message from another agent arrives while the session is open.
    let (from_agent, from_session) = common::new_session(d);
    let a2a = json!({"sessionId": nightly, "message": {"role": "user", "parts": [
        {"type": "data-a2a", "data": {"mode": "silent", "fromAgentId": from_agent, "fromSessionId": from_session}},
        {"type": "text", "text": "fyi: the build is green"}]}});
    let (r, code) = d.call("session.append", a2a);
    assert_eq!(code, 0, "{r}");
    b.wait_text(&format!("a2a silent from {from_agent}"));
    b.wait_text("fyi: the build is green");
}

/// Records when each command element appears: `window.shownAt[callId]`.
const WATCH_CALLS: &str = "window.shownAt = {}; new MutationObserver(() => {
    for (const el of document.querySelectorAll('.tool-call')) {
        window.shownAt[el.dataset.call] ??= Date.now();
    }
}).observe(document.body, {childList: true, subtree: true});";

#[test]
fn a_message_from_the_console_runs_live_and_a_command_can_be_interrupted() {
    let c = console(vec![
        Reply::bash("c1", "echo HELLO-FROM-BASH"),
        Reply::text("**All done**, said hello."),
        Reply::bash("c2", "seq 1 20000"),
        Reply::text("counted"),
        Reply::bash("c3", "sleep 30; echo NEVER-PRINTED"),
        // The interrupted dispatch ends at once; this answers the queued one.
        Reply::text("and the queued one ran"),
        Reply::text("The summary of it all."),
    ]);
    let (b, d, llm) = (&c.b, &c.d, &c.llm);
    let sid = titled_session(d, "Live");
    b.goto(&format!("{}/ui/#token={}&session={sid}", d.url, d.token()));
    b.wait("the session", || b.try_find("#session-title"));
    b.js(WATCH_CALLS, json!([]));
    let send = |text: &str| {
        b.find("#composer-text").type_text(text);
        b.find("#send").click();
    };
    send("say hello");
    b.wait_text("HELLO-FROM-BASH");
    b.wait("the answer in markdown", || {
        b.js(
            "return [...document.querySelectorAll('.msg strong')].map(e => e.textContent)",
            json!([]),
        )
        .as_array()
        .is_some_and(|a| a.contains(&json!("All done")))
        .then_some(())
    });
    b.screenshot("session-live");

    // A large output is folded: its preview, size, and the whole on request.
    send("count");
    b.wait_text("counted");
    let folded = b.find(".folded").text();
    assert!(folded.contains("Read the output"), "{folded}");
    assert!(
        b.text().contains("folded · 106.3 KB · 20000 lines"),
        "{}",
        b.text()
    );
    // Read page by page (1 000 lines a click) to the end.
    b.find(".folded button.read").click();
    b.wait_for("the last page", Duration::from_secs(30), || {
        let range = b.find(".folded .range").text();
        if range == "lines 19001–20000 of 20000" {
            return Some(());
        }
        if range.starts_with("lines") {
            b.find(".folded button.read").click();
        }
        None
    });
    let page = b.js(
        "return document.querySelector('.folded pre.out').textContent",
        json!([]),
    );
    let page = page.as_str().expect("text");
    assert!(
        page.starts_with("19001\n") && page.trim_end().ends_with("\n20000"),
        "{page}"
    );
    b.screenshot("session-folded");

    // A running command, a message queued behind it, the interrupt.
    send("now sleep");
    b.wait("the running command", || b.try_find(".tool-call.running"));
    b.find("#composer-queue").click();
    send("after the sleep");
    b.wait_text("queued as");
    b.screenshot("session-running");
    b.find("#interrupt").click();
    b.wait_text("interrupted: interrupted from the web console");
    b.wait_text("and the queued one ran");
    let printed = b.js(
        "return [...document.querySelectorAll('pre.out')].some(e => e.textContent.includes('NEVER-PRINTED'))",
        json!([]),
    );
    assert_eq!(printed, json!(false), "the command was killed");
    b.screenshot("session-interrupted");
    let h = common::history(d, &sid);
    assert!(
        h.iter().any(|m| m["parts"][0]["type"] == "data-interrupt"),
        "the interrupt is in the durable history"
    );
    // A compaction asked for elsewhere: its marker and the summary, live.
    let (c, code) = d.call("session.compact", json!({"sessionId": sid}));
    assert_eq!(code, 0, "{c}");
    b.wait_text("compacted: messages");
    b.wait_text("The summary of it all.");
    b.screenshot("session-compacted");
    assert_eq!(llm.requests().len(), 7);
    // How long after its message was written each command appeared.
    let shown = b.js("return window.shownAt", json!([]));
    for m in &h {
        let p = &m["parts"][0];
        if p["type"] == "tool-bash" && p["state"] == "input-available" {
            let written = b
                .js(
                    "return Date.parse(arguments[0])",
                    json!([m["metadata"]["createdAt"]]),
                )
                .as_i64()
                .expect("time");
            let at = shown[p["toolCallId"].as_str().expect("id")].as_i64();
            let at = at.expect("every command was shown live");
            println!(
                "command {} shown {} ms after it was written",
                p["toolCallId"],
                at - written
            );
        }
    }
}

#[test]
fn skills_start_restart_and_stop_and_the_log_and_system_views_show() {
    let roots = format!(
        "{}:{}",
        common::skill_roots(),
        aos_testkit::broken_skills().display()
    );
    let c = console_with(&roots, Vec::new());
    let (b, d) = (&c.b, &c.d);
    b.goto(&format!("{}/ui/#token={}&view=skills", d.url, d.token()));
    // An invalid skill, with the error that makes it so.
    let bad = b.find(r#".skill.invalid[data-skill="bad-yaml"]"#).text();
    assert!(bad.contains("invalid"), "{bad}");
    b.find(r#".skill[data-skill="my-guard"] button.start"#)
        .click();
    let running = || -> Vec<String> {
        let ids = b.js(
            "return [...document.querySelectorAll('#service-rows tr[data-skill=\"my-guard\"]')].filter(r => r.innerText.includes('running')).map(r => r.dataset.instance)",
            json!([]),
        );
        serde_json::from_value(ids).unwrap_or_default()
    };
    let first = b.wait("my-guard running", || running().pop());
    assert!(
        b.text().contains("tool.before"),
        "its capabilities are shown"
    );
    b.screenshot("skills");
    let row = format!(r#"#service-rows tr[data-instance="{first}"]"#);
    b.find(&format!("{row} button.restart")).click();
    let second = b.wait("my-guard restarted", || {
        running().into_iter().find(|i| *i != first)
    });
    assert!(!running().contains(&first), "the first instance stopped");
    let row = format!(r#"#service-rows tr[data-instance="{second}"]"#);
    b.find(&format!("{row} button.stop")).click();
    b.wait("my-guard stopped", || running().is_empty().then_some(()));
    let (v, _) = d.call(
        "service.list",
        json!({"skillName": "my-guard", "state": "running"}),
    );
    assert_eq!(v["data"]["services"], json!([]), "{v}");

    // The RuntimeLog, filtered by op.
    b.goto(&format!("{}/ui/#view=log", d.url));
    b.wait_text("skill.start");
    b.find("#log-op").type_text("skill.stop\u{E007}"); // Enter submits
    b.wait("only skill.stop entries", || {
        let ops = b.js(
            "return [...document.querySelectorAll('#log-rows tr')].map(r => r.children[2]?.innerText)",
            json!([]),
        );
        let ops: Vec<String> = serde_json::from_value(ops).ok()?;
        (ops.len() == 2 && ops.iter().all(|o| o == "skill.stop")).then_some(())
    });
    b.screenshot("runtime-log");
    b.goto(&format!("{}/ui/#view=system", d.url));
    b.wait("the AOSCB in its editor", || {
        let v = b.js(
            "return document.getElementById('aoscb-edit')?.value ?? ''",
            json!([]),
        );
        v.as_str()?.contains("autoFoldThreshold").then_some(())
    });
    b.wait_text("bash sandbox");
    b.screenshot("system");
}

#[test]
fn a_session_of_ten_thousand_messages_opens_at_its_end_and_scrolls() {
    let c = console(Vec::new());
    let (b, d) = (&c.b, &c.d);
    let sid = titled_session(d, "Ten thousand");
    let start = d.ok(&["session", "get", &sid])["data"]["lastMessageSeq"]
        .as_i64()
        .expect("seq");
    append_many(d, &sid, 10_000);
    let last = start + 10_000;
    let opened = Instant::now();
    b.goto(&format!("{}/ui/#token={}&session={sid}", d.url, d.token()));
    b.wait_for("the newest message", Duration::from_secs(30), || {
        b.text().contains("line number 10000.").then_some(())
    });
    let open_ms = opened.elapsed().as_millis();
    let count = |b: &Browser| b.js("return document.querySelectorAll('.msg').length", json!([]));
    let rendered = count(b).as_u64().expect("count");
    assert!(
        rendered < 400,
        "only what is near the viewport is rendered: {rendered}"
    );
    b.screenshot("session-10000");
    // Scroll to the very beginning, a screen at a time from the end.
    let scrolled = Instant::now();
    b.wait_for("the first message", Duration::from_secs(60), || {
        b.js(
            "document.getElementById('history').scrollTop -= 4000",
            json!([]),
        );
        b.text().contains("line number 1.").then_some(())
    });
    let rendered = count(b).as_u64().expect("count");
    assert!(
        rendered < 400,
        "still bounded after scrolling through: {rendered}"
    );
    println!(
        "10 000-message session: opened in {open_ms} ms, scrolled to its start in {} ms, {rendered} messages in the DOM (last seq {last})",
        scrolled.elapsed().as_millis()
    );
}

/// Appends `n` user messages "line number i." in order, over one
/// keep-alive connection.
fn append_many(d: &Daemon, sid: &str, n: usize) {
    let (agent, token) = (ureq::AgentBuilder::new().build(), d.token());
    for i in 1..=n {
        let body = json!({"op": "session.append", "sessionId": sid,
            "message": {"role": "user", "parts": [{"type": "text", "text": format!("line number {i}.")}]}});
        agent
            .post(&format!("{}/v1/syscall", d.url))
            .set("Authorization", &format!("Bearer {token}"))
            .send_json(body)
            .expect("append");
    }
}
