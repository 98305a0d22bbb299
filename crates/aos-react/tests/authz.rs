//! Authorization by resource, one table: every op × every kind of scoped
//! principal (a system-, agent- and session-owned service, a session token)
//! × a target inside and outside its scope. Outside is `permission.denied`;
//! inside is anything else (the op may still refuse bad input). Lists answer
//! a scoped caller about its own objects only (issue 18, finding 3).

use aos_kernel::services::ServiceOwner;
use aos_kernel::{AoscbDefaults, Kernel, KernelConfig, Principal, ServiceGrant};
use aos_testkit::{Reply, ScriptedLlm};
use aos_types::Request;
use serde_json::{Value, json};

const ALL_GROUPS: &[&str] = &[
    "system.write",
    "system.read",
    "skill.write",
    "skill.read",
    "agent.write",
    "agent.read",
    "session.write",
    "session.read",
    "content.write",
    "content.read",
    "log.read",
];

/// Two agents: A with sessions A1 and A2, B with B1; content and a
/// dispatch in A1 and in B1.
struct World {
    k: Kernel,
    _llm: ScriptedLlm,
    _home: tempfile::TempDir,
    _db: tempfile::TempDir,
    a: String,
    a1: String,
    a2: String,
    b: String,
    b1: String,
    content_a1: String,
    content_b1: String,
    dispatch_a1: String,
    dispatch_b1: String,
}

async fn call(k: &Kernel, p: &Principal, req: Value) -> Value {
    let req = Request::from_value(req).expect("envelope");
    serde_json::to_value(k.syscall(p, req).await).expect("serialize")
}

async fn ok(k: &Kernel, req: Value) -> Value {
    let r = call(k, &Principal::Operator, req.clone()).await;
    assert_eq!(r["ok"], true, "{req} -> {r}");
    r["data"].clone()
}

fn id(v: &Value, key: &str) -> String {
    v[key].as_str().expect(key).to_string()
}

async fn world() -> World {
    let (store, db) = aos_testkit::sqlite_store().await;
    let llm =
        ScriptedLlm::start(vec![Reply::Text("done".into()), Reply::Text("done".into())]).await;
    let home = tempfile::tempdir().expect("home");
    let config = KernelConfig {
        home: home.path().to_path_buf(),
        skill_roots: vec![aos_testkit::builtin_skills()],
        builtin_skills: None,
        node_id: "authz-test".into(),
        system_name: "test".into(),
        defaults: AoscbDefaults::default(),
        lease_ttl_ms: 60_000,
        watch_skills: false,
        bin_dir: None,
        bash_sandbox: Default::default(),
    };
    let runner = aos_react::ReactUnit::runner(llm.config(2)).expect("runner");
    let k = Kernel::start(store, config, vec![], runner)
        .await
        .expect("kernel");
    let a = id(&ok(&k, json!({"op": "agent.create"})).await, "agentId");
    let b = id(&ok(&k, json!({"op": "agent.create"})).await, "agentId");
    let session = |agent: String| {
        let k = k.clone();
        async move {
            id(
                &ok(&k, json!({"op": "session.create", "agentId": agent})).await,
                "sessionId",
            )
        }
    };
    let (a1, a2, b1) = (
        session(a.clone()).await,
        session(a.clone()).await,
        session(b.clone()).await,
    );
    let content = |s: String| {
        let k = k.clone();
        async move {
            id(&ok(&k, json!({"op": "content.put", "sessionId": s, "content": "secret of that session"})).await, "contentId")
        }
    };
    let (content_a1, content_b1) = (content(a1.clone()).await, content(b1.clone()).await);
    let dispatch = |s: String| {
        let k = k.clone();
        async move {
            let d = ok(&k, json!({"op": "session.dispatch", "sessionId": s, "message": {"role": "user", "content": "hi"}})).await;
            let d = id(&d, "dispatchId");
            ok(
                &k,
                json!({"op": "session.wait", "dispatchId": d, "timeoutMs": 10_000}),
            )
            .await;
            d
        }
    };
    let (dispatch_a1, dispatch_b1) = (dispatch(a1.clone()).await, dispatch(b1.clone()).await);
    World {
        k,
        _llm: llm,
        _home: home,
        _db: db,
        a,
        a1,
        a2,
        b,
        b1,
        content_a1,
        content_b1,
        dispatch_a1,
        dispatch_b1,
    }
}

fn service(owner: ServiceOwner, owner_agent: Option<&str>) -> Principal {
    Principal::Service(ServiceGrant {
        skill: "probe".into(),
        instance_id: "sv_probe".into(),
        owner,
        owner_agent: owner_agent.map(String::from),
        syscalls: ALL_GROUPS.iter().map(|s| s.to_string()).collect(),
        kv: true,
        manifest_path: "/skills/probe/SKILL.md".into(),
    })
}

/// One kind of principal and what lies inside and outside its scope.
struct Case {
    name: &'static str,
    p: Principal,
    /// A session it reaches and one it does not.
    session_in: String,
    session_out: String,
    /// Content and dispatch inside and outside.
    content: (String, String),
    dispatch: (String, String),
    /// An agent it may change (`None`: none), one it may read, one it may not.
    agent_write: Option<String>,
    agent_read: String,
    agent_out: String,
    /// `owner` of a service it may start, and one it may not.
    owner_in: String,
    owner_out: String,
}

fn cases(w: &World) -> Vec<Case> {
    let agent_level = |name, p| Case {
        name,
        p,
        session_in: w.a2.clone(),
        session_out: w.b1.clone(),
        content: (w.content_a1.clone(), w.content_b1.clone()),
        dispatch: (w.dispatch_a1.clone(), w.dispatch_b1.clone()),
        agent_write: Some(w.a.clone()),
        agent_read: w.a.clone(),
        agent_out: w.b.clone(),
        owner_in: format!("session:{}", w.a2),
        owner_out: "system".into(),
    };
    vec![
        agent_level(
            "agent-owned service",
            service(ServiceOwner::Agent(w.a.clone()), Some(&w.a)),
        ),
        agent_level(
            "session token",
            Principal::Session {
                agent_id: w.a.clone(),
                session_id: w.a1.clone(),
                dispatch_id: None,
            },
        ),
        Case {
            name: "session-owned service",
            p: service(ServiceOwner::Session(w.a1.clone()), Some(&w.a)),
            session_in: w.a1.clone(),
            // A sibling session of its own agent is outside too.
            session_out: w.a2.clone(),
            content: (w.content_a1.clone(), w.content_b1.clone()),
            dispatch: (w.dispatch_a1.clone(), w.dispatch_b1.clone()),
            agent_write: None,
            agent_read: w.a.clone(),
            agent_out: w.b.clone(),
            owner_in: format!("session:{}", w.a1),
            owner_out: format!("agent:{}", w.a),
        },
    ]
}

/// Requests (inside, outside) for `op`; `None` inside when nothing is.
fn requests(op: &str, c: &Case) -> (Option<Value>, Value) {
    let sess = |s: &str| json!({"op": op, "sessionId": s});
    let agent = |a: &str| json!({"op": op, "agentId": a});
    match op {
        "system.update" | "agent.create" | "skill.index.refresh" | "skill.catalog.refresh" => {
            (None, json!({"op": op}))
        }
        "agent.get" => (Some(agent(&c.agent_read)), agent(&c.agent_out)),
        "agent.update" | "agent.archive" | "session.create" => (
            c.agent_write
                .as_deref()
                .map(|a| json!({"op": op, "agentId": a, "expectedRevision": 999})),
            json!({"op": op, "agentId": c.agent_out, "expectedRevision": 999}),
        ),
        "skill.load" | "skill.unload" => (
            Some(json!({"op": op, "sessionId": c.session_in, "name": "minimal"})),
            json!({"op": op, "sessionId": c.session_out, "name": "minimal"}),
        ),
        "skill.invoke" => (
            Some(json!({"op": op, "sessionId": c.session_in, "name": "minimal"})),
            json!({"op": op, "sessionId": c.session_out, "name": "minimal"}),
        ),
        "session.append" => (
            Some(
                json!({"op": op, "sessionId": c.session_in, "expectedRevision": 999, "message": {"role": "user", "parts": []}}),
            ),
            json!({"op": op, "sessionId": c.session_out, "message": {"role": "user", "parts": [{"type": "text", "text": "injected"}]}}),
        ),
        "session.dispatch" => (
            Some(
                json!({"op": op, "sessionId": c.session_in, "message": {"role": "user", "content": " "}}),
            ),
            json!({"op": op, "sessionId": c.session_out, "message": {"role": "user", "content": "injected"}}),
        ),
        "session.update" | "session.archive" => (
            Some(json!({"op": op, "sessionId": c.session_in, "expectedRevision": 999})),
            json!({"op": op, "sessionId": c.session_out, "expectedRevision": 999}),
        ),
        "session.history.get" => (
            Some(json!({"op": op, "sessionId": c.session_in, "seq": 1})),
            json!({"op": op, "sessionId": c.session_out, "seq": 1}),
        ),
        "session.context.fold" | "session.context.unfold" => (
            Some(json!({"op": op, "sessionId": c.session_in, "messageId": "ms_none"})),
            json!({"op": op, "sessionId": c.session_out, "messageId": "ms_none"}),
        ),
        "content.put" => (
            Some(json!({"op": op, "sessionId": c.session_in, "content": "x"})),
            json!({"op": op, "sessionId": c.session_out, "content": "x"}),
        ),
        "content.read" => (
            Some(json!({"op": op, "contentId": c.content.0})),
            json!({"op": op, "contentId": c.content.1}),
        ),
        "content.search" => (
            Some(json!({"op": op, "contentId": c.content.0, "pattern": "secret"})),
            json!({"op": op, "contentId": c.content.1, "pattern": "secret"}),
        ),
        "session.wait" => (
            Some(json!({"op": op, "dispatchId": c.dispatch.0, "timeoutMs": 10})),
            json!({"op": op, "dispatchId": c.dispatch.1, "timeoutMs": 10}),
        ),
        "skill.start" => (
            Some(json!({"op": op, "name": "minimal", "owner": c.owner_in})),
            json!({"op": op, "name": "minimal", "owner": c.owner_out}),
        ),
        "skill.catalog.preview" => (
            Some(json!({"op": op, "ownerType": "agent", "ownerId": c.agent_read})),
            json!({"op": op, "ownerType": "agent", "ownerId": c.agent_out}),
        ),
        "skill.default.resolve" => (Some(sess(&c.session_in)), sess(&c.session_out)),
        "session.list" | "runtime.log.list" => (Some(agent(&c.agent_read)), agent(&c.agent_out)),
        _ => (Some(sess(&c.session_in)), sess(&c.session_out)),
    }
}

/// Ops whose targets are not owned (or are lists filtered, or instances,
/// tested by the real-service suite in aos-wasm-host).
const UNOWNED: &[&str] = &[
    "system.get",
    "system.health",
    "system.nodes",
    "kv.get",
    "kv.list",
    "kv.put",
    "kv.delete",
    "skill.list",
    "skill.get",
    "service.caller",
    "agent.list",
    "service.list",
    "service.get",
    "skill.stop",
    "skill.restart",
];

/// Reads that succeed in scope (the others may refuse their input).
const READS: &[&str] = &[
    "agent.get",
    "session.get",
    "session.wait",
    "session.history.list",
    "content.read",
    "content.search",
    "session.list",
    "skill.catalog.preview",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_op_by_every_principal_inside_and_outside_its_scope() {
    let w = world().await;
    let mut checked = 0;
    for c in cases(&w) {
        for info in aos_types::SYSCALLS {
            let op = info.op;
            if UNOWNED.contains(&op) {
                continue;
            }
            let (inside, outside) = requests(op, &c);
            let r = call(&w.k, &c.p, outside.clone()).await;
            assert_eq!(
                r["error"]["code"], "permission.denied",
                "{}: {outside} must be denied: {r}",
                c.name
            );
            checked += 1;
            let token_may = !matches!(c.p, Principal::Session { .. })
                || aos_types::syscall_info(op).is_some_and(|s| s.session_token);
            if let (Some(inside), true) = (inside, token_may) {
                let r = call(&w.k, &c.p, inside.clone()).await;
                assert_ne!(
                    r["error"]["code"], "permission.denied",
                    "{}: {inside} is in scope: {r}",
                    c.name
                );
                if READS.contains(&op) {
                    assert_eq!(r["ok"], true, "{}: {inside}: {r}", c.name);
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked} checks");
    // Nothing outside was changed by the denied writes.
    let history = ok(
        &w.k,
        json!({"op": "session.history.list", "sessionId": w.b1, "limit": 100}),
    )
    .await;
    let text = history.to_string();
    assert!(!text.contains("injected"), "{text}");
    let b = ok(&w.k, json!({"op": "agent.get", "agentId": w.b})).await;
    assert_eq!(b["status"], "active", "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_answer_a_scoped_caller_about_its_own_objects() {
    let w = world().await;
    for c in cases(&w) {
        let agents = call(&w.k, &c.p, json!({"op": "agent.list"})).await;
        let ids: Vec<&str> = agents["data"]["agents"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["agentId"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(ids, vec![w.a.as_str()], "{}: {agents}", c.name);

        let sessions = call(&w.k, &c.p, json!({"op": "session.list"})).await;
        let ids: Vec<&str> = sessions["data"]["sessions"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["sessionId"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            !ids.is_empty() && !ids.contains(&w.b1.as_str()),
            "{}: {sessions}",
            c.name
        );
        if c.name == "session-owned service" {
            assert_eq!(ids, vec![w.a1.as_str()], "{sessions}");
        }
    }
    // The RuntimeLog: a service of agent A sees A's entries only.
    let p = service(ServiceOwner::Agent(w.a.clone()), Some(&w.a));
    let log = call(&w.k, &p, json!({"op": "runtime.log.list", "limit": 1000})).await;
    let entries = log["data"]["entries"].as_array().expect("entries");
    assert!(!entries.is_empty(), "{log}");
    for e in entries {
        assert_eq!(e["agentId"], w.a.as_str(), "{e}");
    }
    let services = call(&w.k, &p, json!({"op": "service.list"})).await;
    assert_eq!(services["data"]["services"], json!([]), "{services}");
}

/// The key-value store (`capabilities.kv`, issue 23): a service reads and
/// writes its own namespace — its skill and owner — and nothing names
/// another; without the grant it is refused with the line to add; no other
/// principal has a namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_services_key_value_store_is_its_own() {
    let w = world().await;
    let mine = service(ServiceOwner::Agent(w.a.clone()), None);
    let theirs = service(ServiceOwner::Agent(w.b.clone()), None);
    let put = |value: Value, expected: Option<i64>| json!({ "op": "kv.put", "key": "chain/1", "value": value, "expectedRevision": expected });
    let r = call(&w.k, &mine, put(json!({ "hops": 1 }), Some(0))).await;
    assert_eq!(r["data"]["revision"], 1, "{r}");
    let r = call(&w.k, &mine, put(json!({ "hops": 2 }), Some(0))).await;
    assert_eq!(
        r["error"]["code"], "revision.conflict",
        "only if absent: {r}"
    );
    let r = call(&w.k, &mine, json!({ "op": "kv.get", "key": "chain/1" })).await;
    assert_eq!(r["data"]["value"], json!({ "hops": 1 }), "{r}");
    let r = call(&w.k, &theirs, json!({ "op": "kv.get", "key": "chain/1" })).await;
    assert_eq!(
        r["error"]["code"], "not_found",
        "another owner's namespace: {r}"
    );
    let r = call(
        &w.k,
        &mine,
        json!({ "op": "kv.get", "key": "chain/1", "namespace": "x" }),
    )
    .await;
    assert_eq!(
        r["error"]["code"], "request.invalid",
        "no parameter names a namespace: {r}"
    );
    let r = call(&w.k, &mine, json!({ "op": "kv.list", "prefix": "chain/" })).await;
    assert_eq!(
        r["data"]["entries"].as_array().map(Vec::len),
        Some(1),
        "{r}"
    );
    let r = call(&w.k, &mine, json!({ "op": "kv.delete", "key": "chain/1" })).await;
    assert_eq!(r["data"]["deleted"], true, "{r}");
    let r = call(
        &w.k,
        &mine,
        json!({ "op": "kv.put", "key": "", "value": 1 }),
    )
    .await;
    assert_eq!(r["error"]["code"], "request.invalid", "{r}");

    let Principal::Service(mut grant) = service(ServiceOwner::System, None) else {
        unreachable!()
    };
    grant.kv = false;
    let r = call(&w.k, &Principal::Service(grant), put(json!(1), None)).await;
    assert_eq!(r["error"]["code"], "permission.denied", "{r}");
    assert_eq!(r["error"]["details"]["add"], "kv: true", "{r}");
    let r = call(
        &w.k,
        &Principal::Operator,
        json!({ "op": "kv.get", "key": "chain/1" }),
    )
    .await;
    assert_eq!(r["error"]["code"], "permission.denied", "{r}");
}
