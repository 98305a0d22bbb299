//! The kernel suite, run on SQLite and on a real PostgreSQL server: bootstrap,
//! commands and queries, bad input that changes nothing, archive rules,
//! skills, content, the RuntimeLog, recovery and events.

mod common;

use aos_kernel::{AoscbDefaults, Kernel, KernelConfig, Principal};
use aos_store::Store;
use aos_types::{Request, SkillDefaultRule, Switch};
use serde_json::{Value, json};
use std::path::PathBuf;

fn config(roots: Vec<PathBuf>, defaults: AoscbDefaults) -> KernelConfig {
    KernelConfig {
        home: std::env::temp_dir(),
        skill_roots: roots,
        builtin_skills: None,
        node_id: "test-node".into(),
        system_name: "test".into(),
        defaults,
        lease_ttl_ms: 60_000,
        watch_skills: false,
        bin_dir: None,
        bash_sandbox: Default::default(),
    }
}

async fn kernel(store: Store) -> Kernel {
    let defaults = AoscbDefaults {
        default_skills: vec![SkillDefaultRule {
            name: "minimal".into(),
            load: Some(Switch::Enable),
            start: None,
        }],
        ..AoscbDefaults::default()
    };
    let roots = vec![
        aos_testkit::builtin_skills(),
        aos_testkit::third_party_skills(),
        aos_testkit::broken_skills(),
    ];
    Kernel::start(
        store,
        config(roots, defaults),
        vec![],
        common::no_loop_runner(),
    )
    .await
    .expect("kernel start")
}

async fn call(k: &Kernel, req: Value) -> Value {
    let req = Request::from_value(req).expect("envelope");
    serde_json::to_value(k.syscall(&Principal::Operator, req).await).expect("serialize")
}

async fn ok(k: &Kernel, req: Value) -> Value {
    let r = call(k, req.clone()).await;
    assert_eq!(r["ok"], true, "{req} -> {r}");
    r
}

async fn err(k: &Kernel, req: Value, code: &str) -> Value {
    let r = call(k, req.clone()).await;
    assert_eq!(r["ok"], false, "{req} should fail");
    assert_eq!(r["error"]["code"], code, "{req} -> {r}");
    r
}

async fn new_session(k: &Kernel) -> (String, String) {
    let a = ok(k, json!({"op": "agent.create", "displayName": "a"})).await;
    let agent = a["data"]["agentId"].as_str().expect("agentId").to_string();
    let s = ok(k, json!({"op": "session.create", "agentId": agent})).await;
    (
        agent,
        s["data"]["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string(),
    )
}

async fn history(k: &Kernel, sid: &str) -> Vec<Value> {
    let r = ok(
        k,
        json!({"op": "session.history.list", "sessionId": sid, "limit": 1000}),
    )
    .await;
    r["data"]["messages"].as_array().expect("messages").clone()
}

fn text(t: &str) -> Value {
    json!({"role": "user", "parts": [{"type": "text", "text": t}]})
}

async fn bootstrap_writes_its_facts(store: Store) {
    let k = kernel(store).await;
    let (_, sid) = new_session(&k).await;
    let h = history(&k, &sid).await;
    let kinds: Vec<String> = h
        .iter()
        .map(|m| m["parts"][0]["type"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "data-bootstrap",
            "data-skill-load",
            "data-skill-load",
            "data-bootstrap"
        ]
    );
    assert_eq!(h[0]["parts"][0]["data"]["phase"], "begin");
    assert_eq!(
        h[0]["parts"][0]["data"]["plannedNames"],
        json!(["aos", "minimal"])
    );
    assert_eq!(
        h[1]["parts"][0]["data"]["name"], "aos",
        "aos is always first"
    );
    assert!(
        h[1]["parts"][0]["data"]["skillText"]
            .as_str()
            .expect("text")
            .contains("aos")
    );
    assert_eq!(h[2]["parts"][0]["data"]["name"], "minimal");
    assert_eq!(h[3]["parts"][0]["data"]["phase"], "done");
    let seqs: Vec<i64> = h
        .iter()
        .map(|m| m["metadata"]["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let s = ok(&k, json!({"op": "session.get", "sessionId": sid})).await;
    assert_eq!(
        (s["data"]["status"].as_str(), s["data"]["phase"].as_str()),
        (Some("ready"), Some("idle"))
    );
    assert_eq!(s["data"]["messageCount"], 4);
}

async fn default_rules_resolve_per_level(store: Store) {
    let k = kernel(store).await;
    let a = ok(&k, json!({"op": "agent.create", "defaultSkills": [{"name": "minimal", "load": "disable"}, {"name": "pdf", "load": "enable"}]})).await;
    let agent = a["data"]["agentId"].as_str().expect("id");
    let s = ok(&k, json!({"op": "session.create", "agentId": agent, "defaultSkills": [{"name": "docx-tools", "load": "enable"}]})).await;
    let sid = s["data"]["sessionId"].as_str().expect("id");
    let r = ok(&k, json!({"op": "skill.default.resolve", "sessionId": sid})).await;
    assert_eq!(
        r["data"]["plannedNames"],
        json!(["aos", "docx-tools", "pdf"])
    );
    let names: Vec<Value> = history(&k, sid)
        .await
        .iter()
        .filter(|m| m["parts"][0]["type"] == "data-skill-load")
        .map(|m| m["parts"][0]["data"]["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("aos"), json!("docx-tools"), json!("pdf")]);
}

async fn append_and_page(store: Store) {
    let k = kernel(store).await;
    let (_, sid) = new_session(&k).await;
    for i in 0..30 {
        let r = ok(
            &k,
            json!({"op": "session.append", "sessionId": sid, "message": text(&format!("m{i}"))}),
        )
        .await;
        assert_eq!(r["data"]["seq"], 5 + i);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = json!({"op": "session.history.list", "sessionId": sid, "limit": 7});
        if let Some(c) = &cursor {
            req["cursor"] = json!(c);
        }
        let r = ok(&k, req).await;
        seen.extend(
            r["data"]["messages"]
                .as_array()
                .expect("page")
                .iter()
                .map(|m| m["metadata"]["seq"].as_i64().expect("seq")),
        );
        match r["data"]["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, (1..=34).collect::<Vec<_>>());
    let r = ok(
        &k,
        json!({"op": "session.history.list", "sessionId": sid, "fromSeq": 10, "toSeq": 12}),
    )
    .await;
    assert_eq!(r["data"]["messages"].as_array().expect("page").len(), 3);
    let one = ok(
        &k,
        json!({"op": "session.history.get", "sessionId": sid, "seq": 5}),
    )
    .await;
    assert_eq!(one["data"]["parts"][0]["text"], "m0");
    let by_id = ok(
        &k,
        json!({"op": "session.history.get", "sessionId": sid, "messageId": one["data"]["id"]}),
    )
    .await;
    assert_eq!(by_id["data"], one["data"]);
}

/// Every bad request fails with its code and leaves revision and history as they were.
async fn bad_input_changes_nothing(store: Store) {
    let k = kernel(store).await;
    let (agent, sid) = new_session(&k).await;
    let before_s = ok(&k, json!({"op": "session.get", "sessionId": sid})).await["data"].clone();
    let before_a = ok(&k, json!({"op": "agent.get", "agentId": agent})).await["data"].clone();
    let before_sys = ok(&k, json!({"op": "system.get"})).await["data"].clone();
    let cases = vec![
        (
            json!({"op": "session.append", "sessionId": sid}),
            "request.invalid",
        ),
        (
            json!({"op": "session.append", "sessionId": sid, "message": {"role": "user", "parts": []}}),
            "request.invalid",
        ),
        (
            json!({"op": "session.append", "sessionId": sid, "message": {"role": "robot", "parts": [{"type": "text", "text": "x"}]}}),
            "request.invalid",
        ),
        (
            json!({"op": "session.append", "sessionId": sid, "message": {"role": "user", "parts": [{"type": "text", "text": 5}]}}),
            "request.invalid",
        ),
        (
            json!({"op": "session.append", "sessionId": sid, "message": text("x"), "extra": 1}),
            "request.invalid",
        ),
        (
            json!({"op": "session.append", "sessionId": 42, "message": text("x")}),
            "request.invalid",
        ),
        (
            json!({"op": "session.append", "sessionId": "../../etc/passwd", "message": text("x")}),
            "request.invalid",
        ),
        (
            json!({"op": "session.append", "sessionId": "se_missing", "message": text("x")}),
            "not_found",
        ),
        (
            json!({"op": "session.append", "sessionId": sid, "message": text("x"), "expectedRevision": 1}),
            "revision.conflict",
        ),
        (
            json!({"op": "session.append", "sessionId": sid, "message": {"role": "user", "parts": [{"type": "text", "id": "a/b", "text": "x"}]}}),
            "request.invalid",
        ),
        (
            json!({"op": "session.update", "sessionId": sid, "title": "x".repeat(300)}),
            "request.invalid",
        ),
        (
            json!({"op": "session.update", "sessionId": sid, "title": "t", "expectedRevision": 999}),
            "revision.conflict",
        ),
        (
            json!({"op": "session.update", "sessionId": sid, "autoFoldThreshold": -1}),
            "request.invalid",
        ),
        (
            json!({"op": "agent.update", "agentId": agent, "displayName": "bad\u{0}name"}),
            "request.invalid",
        ),
        (
            json!({"op": "agent.update", "agentId": agent, "defaultSkills": [{"name": "../x"}]}),
            "request.invalid",
        ),
        (
            json!({"op": "agent.update", "agentId": agent, "defaultSkills": [{"name": "x", "load": "maybe"}]}),
            "request.invalid",
        ),
        (
            json!({"op": "agent.update", "agentId": agent, "expectedRevision": 7, "displayName": "n"}),
            "revision.conflict",
        ),
        (
            json!({"op": "agent.get", "agentId": "ag_nope"}),
            "not_found",
        ),
        (
            json!({"op": "agent.create", "displayName": ["array"]}),
            "request.invalid",
        ),
        (
            json!({"op": "system.update", "maxTurns": 0}),
            "request.invalid",
        ),
        (
            json!({"op": "system.update", "model": ""}),
            "request.invalid",
        ),
        (
            json!({"op": "system.update", "expectedRevision": 99, "maxTurns": 3}),
            "revision.conflict",
        ),
        (
            json!({"op": "system.update", "bogus": true}),
            "request.invalid",
        ),
        (
            json!({"op": "skill.load", "name": "../../etc", "sessionId": sid}),
            "request.invalid",
        ),
        (
            json!({"op": "skill.load", "name": "no-such-skill", "sessionId": sid}),
            "skill.not_found",
        ),
        (
            json!({"op": "skill.load", "name": "bad-yaml", "sessionId": sid}),
            "skill.not_found",
        ),
        (
            json!({"op": "skill.unload", "name": "pdf", "sessionId": sid}),
            "skill.not_found",
        ),
        (
            json!({"op": "session.history.list", "sessionId": sid, "limit": 0}),
            "request.invalid",
        ),
        (
            json!({"op": "session.history.list", "sessionId": sid, "cursor": "abc"}),
            "request.invalid",
        ),
        (
            json!({"op": "content.put", "sessionId": sid}),
            "request.invalid",
        ),
        (
            json!({"op": "content.read", "contentId": "ct_nope"}),
            "content.not_found",
        ),
        (
            json!({"op": "content.search", "contentId": "ct_nope", "pattern": "("}),
            "request.invalid",
        ),
        (
            json!({"op": "runtime.log.list", "level": "loud"}),
            "request.invalid",
        ),
        (json!({"op": "no.such.op"}), "op.unknown"),
        (
            json!({"op": "session.create", "agentId": "ag_nope"}),
            "not_found",
        ),
    ];
    for (req, code) in cases {
        err(&k, req, code).await;
    }
    assert_eq!(
        ok(&k, json!({"op": "session.get", "sessionId": sid})).await["data"],
        before_s
    );
    assert_eq!(
        ok(&k, json!({"op": "agent.get", "agentId": agent})).await["data"],
        before_a
    );
    assert_eq!(
        ok(&k, json!({"op": "system.get"})).await["data"],
        before_sys
    );
    assert_eq!(history(&k, &sid).await.len(), 4);
}

async fn revisions_step_by_one(store: Store) {
    let k = kernel(store).await;
    let (agent, sid) = new_session(&k).await;
    let r = ok(
        &k,
        json!({"op": "agent.update", "agentId": agent, "expectedRevision": 1, "displayName": "b"}),
    )
    .await;
    assert_eq!(r["revision"], 2);
    let s = ok(&k, json!({"op": "session.get", "sessionId": sid})).await;
    let rev = s["data"]["revision"].as_i64().expect("rev");
    let r = ok(
        &k,
        json!({"op": "session.update", "sessionId": sid, "expectedRevision": rev, "title": "T"}),
    )
    .await;
    assert_eq!(r["revision"], rev + 1);
    let r = ok(&k, json!({"op": "session.append", "sessionId": sid, "expectedRevision": rev + 1, "message": text("x")})).await;
    assert_eq!(r["revision"], rev + 2);
    let r = ok(
        &k,
        json!({"op": "system.update", "expectedRevision": 1, "maxTurns": 9, "model": "m2"}),
    )
    .await;
    assert_eq!(
        (r["revision"].as_i64(), r["data"]["maxTurns"].as_i64()),
        (Some(2), Some(9))
    );
}

async fn archived_objects_refuse_writes(store: Store) {
    let k = kernel(store).await;
    let (agent, sid) = new_session(&k).await;
    ok(&k, json!({"op": "session.archive", "sessionId": sid})).await;
    err(
        &k,
        json!({"op": "session.append", "sessionId": sid, "message": text("x")}),
        "session.archived",
    )
    .await;
    err(
        &k,
        json!({"op": "session.archive", "sessionId": sid}),
        "session.archived",
    )
    .await;
    err(
        &k,
        json!({"op": "skill.load", "name": "pdf", "sessionId": sid}),
        "session.archived",
    )
    .await;
    assert_eq!(history(&k, &sid).await.len(), 4, "history is kept");
    let s2 = ok(&k, json!({"op": "session.create", "agentId": agent})).await;
    let sid2 = s2["data"]["sessionId"].as_str().expect("id").to_string();
    ok(&k, json!({"op": "agent.archive", "agentId": agent})).await;
    err(
        &k,
        json!({"op": "agent.archive", "agentId": agent}),
        "agent.archived",
    )
    .await;
    err(
        &k,
        json!({"op": "session.create", "agentId": agent}),
        "agent.archived",
    )
    .await;
    err(
        &k,
        json!({"op": "session.append", "sessionId": sid2, "message": text("x")}),
        "agent.archived",
    )
    .await;
    let a = ok(&k, json!({"op": "agent.get", "agentId": agent})).await;
    assert_eq!(a["data"]["status"], "archived");
    assert!(a["data"]["archivedAt"].is_string());
}

/// Issue 19, items 5, 7 and 8: the documented answers.
async fn review_defects_answer_as_documented(store: Store) {
    let k = kernel(store).await;
    let (agent, sid) = new_session(&k).await;
    let before = history(&k, &sid).await.len();
    // 5: a negative expectedRevision is a conflict, not an unconditional append.
    for rev in [-1, -7] {
        err(
            &k,
            json!({"op": "session.append", "sessionId": sid, "expectedRevision": rev, "message": text("x")}),
            "revision.conflict",
        )
        .await;
    }
    assert_eq!(
        history(&k, &sid).await.len(),
        before,
        "nothing was appended"
    );
    // 8: a blank model is refused, as by system.update.
    for m in ["", "   "] {
        err(
            &k,
            json!({"op": "agent.create", "model": m}),
            "request.invalid",
        )
        .await;
        err(
            &k,
            json!({"op": "agent.update", "agentId": agent, "model": m}),
            "request.invalid",
        )
        .await;
    }
    // 6: any string SQLite takes, PostgreSQL takes: NUL in content and in
    // a RuntimeLog filter.
    let body = "before\0after\\0 and a backslash \\";
    let put = ok(
        &k,
        json!({"op": "content.put", "sessionId": sid, "content": body}),
    )
    .await;
    let id = put["data"]["contentId"].as_str().expect("contentId");
    let read = ok(&k, json!({"op": "content.read", "contentId": id})).await;
    let lines = read["data"].to_string();
    assert!(lines.contains("before\\u0000after"), "{lines}");
    let log = ok(&k, json!({"op": "runtime.log.list", "operation": "a\0b"})).await;
    assert_eq!(log["data"]["entries"], json!([]), "{log}");
    // 7: content for an archived session, or a session of an archived
    // agent, and session.update on the latter, are refused.
    let s2 = ok(&k, json!({"op": "session.create", "agentId": agent})).await;
    let sid2 = s2["data"]["sessionId"].as_str().expect("id").to_string();
    ok(&k, json!({"op": "session.archive", "sessionId": sid})).await;
    err(
        &k,
        json!({"op": "content.put", "sessionId": sid, "content": "x"}),
        "session.archived",
    )
    .await;
    ok(&k, json!({"op": "agent.archive", "agentId": agent})).await;
    err(
        &k,
        json!({"op": "content.put", "sessionId": sid2, "content": "x"}),
        "agent.archived",
    )
    .await;
    err(
        &k,
        json!({"op": "session.update", "sessionId": sid2, "title": "t"}),
        "agent.archived",
    )
    .await;
}

/// Issue 19, item 3: a repeated `idempotencyKey` answers the first append
/// and writes nothing.
async fn an_append_retried_with_its_key_is_written_once(store: Store) {
    let k = kernel(store).await;
    let (_, sid) = new_session(&k).await;
    let before = history(&k, &sid).await.len();
    let req = json!({"op": "session.append", "sessionId": sid, "idempotencyKey": "cli-42:append",
                     "message": text("only once")});
    let first = ok(&k, req.clone()).await;
    let again = ok(&k, req.clone()).await;
    assert_eq!(again["data"]["messageId"], first["data"]["messageId"]);
    assert_eq!(again["data"]["seq"], first["data"]["seq"]);
    assert_eq!(again["data"]["replayed"], true, "{again}");
    assert_eq!(history(&k, &sid).await.len(), before + 1, "written once");
    let mut other = req.clone();
    other["idempotencyKey"] = json!("cli-43:append");
    ok(&k, other).await;
    assert_eq!(
        history(&k, &sid).await.len(),
        before + 2,
        "another key writes"
    );
    let mut bad = req;
    bad["idempotencyKey"] = json!("has spaces");
    err(&k, bad, "request.invalid").await;
}

async fn third_party_skills_index_and_load(store: Store) {
    let k = kernel(store).await;
    let (_, sid) = new_session(&k).await;
    let list = ok(&k, json!({"op": "skill.list"})).await;
    let skills = list["data"]["skills"].as_array().expect("skills");
    let find = |n: &str| {
        skills
            .iter()
            .find(|s| s["name"] == n)
            .unwrap_or_else(|| panic!("{n} listed"))
            .clone()
    };
    assert_eq!(find("pdf")["valid"], true);
    assert_eq!(find("webapp-testing")["valid"], true);
    assert_eq!(find("bad-yaml")["valid"], false);
    assert!(
        find("name-mismatch")["error"]
            .as_str()
            .expect("error")
            .contains("directory name")
    );
    let pdf = ok(&k, json!({"op": "skill.get", "name": "pdf"})).await;
    assert!(
        pdf["data"]["skillText"]
            .as_str()
            .expect("text")
            .contains("PDF Processing Guide")
    );
    assert_eq!(
        pdf["data"]["manifest"]["license"],
        "Proprietary. LICENSE.txt has complete terms"
    );
    let r = ok(
        &k,
        json!({"op": "skill.load", "name": "pdf", "sessionId": sid}),
    )
    .await;
    let seq = r["data"]["seq"].as_i64().expect("seq");
    let m = ok(
        &k,
        json!({"op": "session.history.get", "sessionId": sid, "seq": seq}),
    )
    .await;
    let data = &m["data"]["parts"][0]["data"];
    assert_eq!(
        (data["cause"].as_str(), data["name"].as_str()),
        (Some("explicit"), Some("pdf"))
    );
    assert!(
        data["skillText"]
            .as_str()
            .expect("text")
            .contains("scripts/check_fillable_fields.py")
    );
    ok(
        &k,
        json!({"op": "skill.unload", "name": "pdf", "sessionId": sid}),
    )
    .await;
    err(
        &k,
        json!({"op": "skill.unload", "name": "pdf", "sessionId": sid}),
        "skill.not_found",
    )
    .await;
    let cat = ok(&k, json!({"op": "skill.catalog.preview"})).await;
    assert_eq!(
        cat["data"]["catalog"].as_array().expect("catalog").len(),
        skills.iter().filter(|s| s["valid"] == true).count()
    );
}

async fn content_put_read_search(store: Store) {
    let k = kernel(store).await;
    let (_, sid) = new_session(&k).await;
    let body: String = (1..=500)
        .map(|i| format!("line {i}{}\n", if i % 100 == 0 { " MARK" } else { "" }))
        .collect();
    let put = ok(
        &k,
        json!({"op": "content.put", "sessionId": sid, "content": body}),
    )
    .await;
    let cid = put["data"]["contentId"].as_str().expect("id");
    assert_eq!(put["data"]["lineCount"], 500);
    let r = ok(
        &k,
        json!({"op": "content.read", "contentId": cid, "offset": 10, "limit": 3}),
    )
    .await;
    assert_eq!(r["data"]["content"], "line 11\nline 12\nline 13");
    assert_eq!(
        (
            r["data"]["totalLines"].as_i64(),
            r["data"]["offset"].as_i64()
        ),
        (Some(500), Some(10))
    );
    let s = ok(
        &k,
        json!({"op": "content.search", "contentId": cid, "pattern": "MARK$"}),
    )
    .await;
    let lines: Vec<i64> = s["data"]["matches"]
        .as_array()
        .expect("matches")
        .iter()
        .map(|m| m["lineNumber"].as_i64().expect("n"))
        .collect();
    assert_eq!(lines, [100, 200, 300, 400, 500]);
}

async fn runtime_log_records_commands_not_queries(store: Store) {
    let k = kernel(store).await;
    let (agent, sid) = new_session(&k).await;
    ok(&k, json!({"op": "session.get", "sessionId": sid})).await;
    err(&k, json!({"op": "session.append", "sessionId": sid, "message": text("x"), "expectedRevision": 1}), "revision.conflict").await;
    let log = ok(&k, json!({"op": "runtime.log.list", "sessionId": sid})).await;
    let entries = log["data"]["entries"].as_array().expect("entries");
    let ops: Vec<&str> = entries
        .iter()
        .map(|e| e["op"].as_str().expect("op"))
        .collect();
    assert_eq!(
        ops,
        ["session.create", "session.append"],
        "queries are not logged"
    );
    assert_eq!(entries[1]["level"], "warn");
    assert_eq!(entries[1]["data"]["error"]["code"], "revision.conflict");
    let by_agent = ok(
        &k,
        json!({"op": "runtime.log.list", "agentId": agent, "operation": "agent.create"}),
    )
    .await;
    assert_eq!(
        by_agent["data"]["entries"]
            .as_array()
            .expect("entries")
            .len(),
        1
    );
}

async fn engine_less_machinery_answers_clearly(store: Store) {
    let k = kernel(store).await;
    let (_, sid) = new_session(&k).await;
    err(
        &k,
        json!({"op": "session.compact", "sessionId": sid}),
        "context.engine_unavailable",
    )
    .await;
    err(
        &k,
        json!({"op": "skill.start", "name": "pdf"}),
        "request.invalid",
    )
    .await;
    err(
        &k,
        json!({"op": "skill.start", "name": "nope"}),
        "skill.not_found",
    )
    .await;
    err(
        &k,
        json!({"op": "skill.start", "name": "pdf", "owner": "robot:1"}),
        "request.invalid",
    )
    .await;
    err(
        &k,
        json!({"op": "skill.stop", "instanceId": "sv_nope"}),
        "not_found",
    )
    .await;
    err(
        &k,
        json!({"op": "skill.invoke", "name": "pdf", "args": [1]}),
        "request.invalid",
    )
    .await;
    err(
        &k,
        json!({"op": "session.context.fold", "sessionId": sid, "messageId": "msg_x"}),
        "context.engine_unavailable",
    )
    .await;
    err(
        &k,
        json!({"op": "session.compact", "sessionId": "se_nope"}),
        "not_found",
    )
    .await;
    let svc = ok(&k, json!({"op": "service.list"})).await;
    assert_eq!(svc["data"]["services"], json!([]));
    let ctx = ok(&k, json!({"op": "session.context.get", "sessionId": sid})).await;
    assert_eq!(
        ctx["data"]["messages"],
        json!([]),
        "no engine: empty context"
    );
    assert_eq!(history(&k, &sid).await.len(), 4);
}

/// Every syscall of the catalogue is routed: none answers `op.unknown`, and an
/// empty payload never succeeds where parameters are required.
/// A message from another agent names a sender that exists; anything else is
/// refused and writes nothing.
async fn a2a_envelopes_are_checked(store: Store) {
    let k = kernel(store).await;
    let (a, sa) = new_session(&k).await;
    let (_, sb) = new_session(&k).await;
    let msg = |envelopes: Vec<Value>| {
        let mut parts: Vec<Value> = envelopes
            .into_iter()
            .map(|e| json!({"type": "data-a2a", "data": e}))
            .collect();
        parts.push(json!({"type": "text", "text": "hello from a"}));
        json!({"op": "session.append", "sessionId": sb, "message": {"role": "user", "parts": parts}})
    };
    let good = json!({"mode": "silent", "fromAgentId": a, "fromSessionId": sa});
    ok(&k, msg(vec![good.clone()])).await;
    let last = history(&k, &sb).await.pop().expect("message");
    assert_eq!(
        (
            &last["metadata"]["origin"],
            &last["metadata"]["fromAgentId"]
        ),
        (&json!("agent"), &json!(a))
    );
    let before = history(&k, &sb).await.len();
    let not_his = json!({"mode": "silent", "fromAgentId": a, "fromSessionId": sb});
    err(&k, msg(vec![not_his]), "request.invalid").await;
    err(&k, msg(vec![good.clone(), good.clone()]), "request.invalid").await;
    let mut extra = good.clone();
    extra["hop"] = json!(1);
    err(&k, msg(vec![extra]), "request.invalid").await;
    let mut loud = good.clone();
    loud["mode"] = json!("loud");
    err(&k, msg(vec![loud]), "request.invalid").await;
    let mut ghost = good;
    ghost["fromSessionId"] = json!("se_01m8c0mxgsb56p1k5gpbhzr2md");
    err(&k, msg(vec![ghost.clone()]), "not_found").await;
    let dispatch = json!({"op": "session.dispatch", "sessionId": sb,
                          "message": {"role": "user", "content": "x"}, "a2a": ghost});
    err(&k, dispatch, "not_found").await;
    assert_eq!(history(&k, &sb).await.len(), before, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_syscall_exists() {
    let (store, _d) = aos_testkit::sqlite_store().await;
    let k = kernel(store).await;
    for info in aos_types::SYSCALLS {
        let r = call(&k, json!({"op": info.op})).await;
        assert_ne!(
            r["error"]["code"], "op.unknown",
            "{} is not routed",
            info.op
        );
        assert_ne!(r["error"]["code"], "internal", "{}: {r}", info.op);
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { let (s, _d) = aos_testkit::sqlite_store().await; super::$name(s).await; } )*
        }
        mod postgres_backend {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { let (s, _schema) = aos_testkit::pg_store().await; super::$name(s).await; } )*
        }
    };
}

on_both_backends!(
    bootstrap_writes_its_facts,
    default_rules_resolve_per_level,
    append_and_page,
    bad_input_changes_nothing,
    revisions_step_by_one,
    archived_objects_refuse_writes,
    third_party_skills_index_and_load,
    content_put_read_search,
    runtime_log_records_commands_not_queries,
    engine_less_machinery_answers_clearly,
    a2a_envelopes_are_checked,
    review_defects_answer_as_documented,
    an_append_retried_with_its_key_is_written_once,
);
