//! Start-up recovery (`kernel.md` §4.6), events and the skill watcher.

mod common;

use aos_kernel::{AoscbDefaults, Kernel, KernelConfig, Principal};
use aos_store::{HistoryQuery, NewMessage, Store};
use aos_types::{
    Acb, BashInput, Origin, Part, Request, Role, Scb, SessionPhase, SessionStatus,
    SkillDefaultRule, Switch, ToolState,
};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

fn config(roots: Vec<PathBuf>, watch: bool) -> KernelConfig {
    KernelConfig {
        home: std::env::temp_dir(),
        skill_roots: roots,
        builtin_skills: None,
        node_id: "this-node".into(),
        system_name: "test".into(),
        defaults: AoscbDefaults {
            default_skills: vec![SkillDefaultRule {
                name: "minimal".into(),
                load: Some(Switch::Enable),
                start: None,
            }],
            ..AoscbDefaults::default()
        },
        lease_ttl_ms: 60_000,
        watch_skills: watch,
        bin_dir: None,
        bash_sandbox: Default::default(),
    }
}

fn roots() -> Vec<PathBuf> {
    vec![
        aos_testkit::builtin_skills(),
        aos_testkit::third_party_skills(),
    ]
}

async fn call(k: &Kernel, req: Value) -> Value {
    serde_json::to_value(
        k.syscall(&Principal::Operator, Request::from_value(req).expect("req"))
            .await,
    )
    .expect("ser")
}

fn agent() -> Acb {
    aos_testkit::acb()
}

fn session(agent_id: &str, status: SessionStatus, phase: SessionPhase) -> Scb {
    Scb {
        status,
        phase,
        ..aos_testkit::scb(agent_id)
    }
}

fn sys(part: Part) -> NewMessage {
    NewMessage {
        role: Role::System,
        parts: vec![part],
        origin: Origin::Aos,
        extra: Default::default(),
    }
}

async fn parts(store: &Store, sid: &str) -> Vec<Part> {
    let q = HistoryQuery {
        from_seq: 1,
        to_seq: None,
        limit: 1000,
    };
    store
        .history(sid, &q)
        .await
        .expect("history")
        .into_iter()
        .flat_map(|m| m.parts)
        .collect()
}

fn kind(p: &Part) -> String {
    serde_json::to_value(p).expect("ser")["type"]
        .as_str()
        .expect("type")
        .to_string()
}

async fn half_done_bootstrap_is_finished(store: Store) {
    store
        .aoscb_init(&AoscbDefaults::default().to_aoscb("t", "x"))
        .await
        .expect("aoscb");
    let a = agent();
    store.agent_insert(&a).await.expect("agent");
    let s = session(
        &a.agent_id,
        SessionStatus::Initializing,
        SessionPhase::Bootstrapping,
    );
    store.session_insert(&s).await.expect("session");
    let begin = Part::DataBootstrap {
        id: String::new(),
        data: json!({"phase": "begin", "plannedNames": ["aos", "minimal"]}),
    };
    let aos = Part::DataSkillLoad {
        id: String::new(),
        data: json!({"cause": "default", "ownerType": "system", "name": "aos", "skillText": "x"}),
    };
    store
        .append(&s.session_id, None, vec![sys(begin), sys(aos)])
        .await
        .expect("append");
    // A second session crashed after `done` but before it was marked ready.
    let s2 = session(
        &a.agent_id,
        SessionStatus::Initializing,
        SessionPhase::Bootstrapping,
    );
    store.session_insert(&s2).await.expect("session2");
    let begin2 = Part::DataBootstrap {
        id: String::new(),
        data: json!({"phase": "begin", "plannedNames": ["aos"]}),
    };
    let done2 = Part::DataBootstrap {
        id: String::new(),
        data: json!({"phase": "done"}),
    };
    store
        .append(&s2.session_id, None, vec![sys(begin2), sys(done2)])
        .await
        .expect("append2");

    let _k = Kernel::start(
        store.clone(),
        config(roots(), false),
        vec![],
        common::no_loop_runner(),
    )
    .await
    .expect("start");
    let p = parts(&store, &s.session_id).await;
    assert_eq!(
        p.iter().map(kind).collect::<Vec<_>>(),
        [
            "data-bootstrap",
            "data-skill-load",
            "data-skill-load",
            "data-bootstrap"
        ]
    );
    assert_eq!(
        p[2].data().expect("data")["name"],
        "minimal",
        "only the missing load is added"
    );
    assert_eq!(p[3].data().expect("data")["phase"], "done");
    let scb = store.session_get(&s.session_id).await.expect("get");
    assert_eq!(
        (scb.status, scb.phase),
        (SessionStatus::Ready, SessionPhase::Idle)
    );
    assert_eq!(
        parts(&store, &s2.session_id).await.len(),
        2,
        "nothing appended twice"
    );
    assert_eq!(
        store.session_get(&s2.session_id).await.expect("get").status,
        SessionStatus::Ready
    );
}

async fn stale_dispatch_is_interrupted(store: Store, live_other_lease_survives: bool) {
    store
        .aoscb_init(&AoscbDefaults::default().to_aoscb("t", "x"))
        .await
        .expect("aoscb");
    let a = agent();
    store.agent_insert(&a).await.expect("agent");
    let mut s = session(&a.agent_id, SessionStatus::Ready, SessionPhase::Dispatched);
    s.lease_id = Some("ls_1".into());
    s.lease_holder = Some("crashed-node".into());
    s.lease_expires_at = Some("2000-01-01T00:00:00.000Z".into());
    store.session_insert(&s).await.expect("session");
    let call = Part::ToolBash {
        id: String::new(),
        tool_call_id: "call_1".into(),
        state: ToolState::InputAvailable,
        input: BashInput {
            command: "sleep 100".into(),
            cwd: None,
            timeout_ms: None,
        },
        output: None,
        error_text: None,
    };
    let msg = NewMessage {
        role: Role::Assistant,
        parts: vec![call],
        origin: Origin::Assistant,
        extra: Default::default(),
    };
    store
        .append(&s.session_id, None, vec![msg])
        .await
        .expect("append");
    let mut live = session(&a.agent_id, SessionStatus::Ready, SessionPhase::Dispatched);
    live.lease_id = Some("ls_2".into());
    live.lease_holder = Some("other-node".into());
    live.lease_expires_at = Some("2999-01-01T00:00:00.000Z".into());
    store.session_insert(&live).await.expect("live");
    // Compactions run under leases too: a stale one ends like a stale
    // dispatch, a live one of another node is left alone.
    let mut compacting = session(&a.agent_id, SessionStatus::Ready, SessionPhase::Compacting);
    compacting.lease_id = Some("ls_3".into());
    compacting.lease_holder = Some("crashed-node".into());
    compacting.lease_expires_at = Some("2000-01-01T00:00:00.000Z".into());
    store.session_insert(&compacting).await.expect("compacting");
    let mut compacting_live = session(&a.agent_id, SessionStatus::Ready, SessionPhase::Compacting);
    compacting_live.lease_id = Some("ls_4".into());
    compacting_live.lease_holder = Some("other-node".into());
    compacting_live.lease_expires_at = Some("2999-01-01T00:00:00.000Z".into());
    store
        .session_insert(&compacting_live)
        .await
        .expect("compacting live");

    let _k = Kernel::start(
        store.clone(),
        config(roots(), false),
        vec![],
        common::no_loop_runner(),
    )
    .await
    .expect("start");
    let p = parts(&store, &s.session_id).await;
    assert_eq!(p.len(), 3);
    match &p[1] {
        Part::ToolBash {
            tool_call_id,
            state,
            error_text,
            ..
        } => {
            assert_eq!(
                (tool_call_id.as_str(), *state),
                ("call_1", ToolState::OutputError)
            );
            assert!(error_text.as_deref().expect("text").contains("unknown"));
        }
        other => panic!("expected the closing tool result, got {other:?}"),
    }
    assert_eq!(p[2].data().expect("interrupt")["reason"], "daemon restart");
    let scb = store.session_get(&s.session_id).await.expect("get");
    assert_eq!(scb.phase, SessionPhase::Idle);
    assert!(scb.lease_id.is_none() && scb.lease_holder.is_none() && scb.lease_expires_at.is_none());
    let other = store.session_get(&live.session_id).await.expect("get");
    assert_eq!(
        other.phase == SessionPhase::Dispatched,
        live_other_lease_survives
    );
    let c = store
        .session_get(&compacting.session_id)
        .await
        .expect("get");
    assert_eq!(c.phase, SessionPhase::Idle);
    assert!(c.lease_id.is_none());
    let p = parts(&store, &compacting.session_id).await;
    assert_eq!(p.len(), 1, "no half compaction, one interrupt fact");
    assert_eq!(p[0].data().expect("interrupt")["reason"], "daemon restart");
    let c = store
        .session_get(&compacting_live.session_id)
        .await
        .expect("get");
    assert_eq!(
        c.phase == SessionPhase::Compacting,
        live_other_lease_survives
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_half_done_bootstrap_is_finished() {
    let (s, _d) = aos_testkit::sqlite_store().await;
    half_done_bootstrap_is_finished(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_half_done_bootstrap_is_finished() {
    let (s, _schema) = aos_testkit::pg_store().await;
    half_done_bootstrap_is_finished(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_any_leftover_lease_is_stale() {
    // SQLite has one node: every lease left at start is void.
    let (s, _d) = aos_testkit::sqlite_store().await;
    stale_dispatch_is_interrupted(s, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_live_lease_of_another_node_is_left_alone() {
    let (s, _schema) = aos_testkit::pg_store().await;
    stale_dispatch_is_interrupted(s, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_follow_the_lifecycle() {
    let (store, _d) = aos_testkit::sqlite_store().await;
    let k = Kernel::start(
        store,
        config(roots(), false),
        vec![],
        common::no_loop_runner(),
    )
    .await
    .expect("start");
    let (_, mut rx) = k.events().subscribe(None);
    let a = call(&k, json!({"op": "agent.create"})).await;
    let agent = a["data"]["agentId"].as_str().expect("id").to_string();
    let s = call(&k, json!({"op": "session.create", "agentId": agent})).await;
    let sid = s["data"]["sessionId"].as_str().expect("id").to_string();
    call(&k, json!({"op": "session.archive", "sessionId": sid})).await;
    let mut names = Vec::new();
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
        names.push(e.name.clone());
        if e.name == "session.started" {
            assert_eq!(
                (e.agent_id.as_deref(), e.session_id.as_deref()),
                (Some(agent.as_str()), Some(sid.as_str()))
            );
            assert_eq!(e.payload_value()["cause"], "create");
        }
    }
    for want in [
        "agent.started",
        "skill.default.resolve.after",
        "context.ingest",
        "skill.load.after",
        "session.bootstrap.after",
        "session.started",
        "session.archived",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    let (past, _) = k.events().subscribe(Some(0));
    assert!(
        past.len() >= names.len(),
        "the ring keeps events for Last-Event-ID resume"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skill_roots_are_reindexed_on_change() {
    let (store, _d) = aos_testkit::sqlite_store().await;
    let root = tempfile::tempdir().expect("root");
    let k = Kernel::start(
        store,
        config(vec![root.path().to_path_buf()], true),
        vec![],
        common::no_loop_runner(),
    )
    .await
    .expect("start");
    let get = json!({"op": "skill.get", "name": "fresh"});
    assert_eq!(
        call(&k, get.clone()).await["error"]["code"],
        "skill.not_found"
    );
    std::fs::create_dir(root.path().join("fresh")).expect("mkdir");
    std::fs::write(
        root.path().join("fresh/SKILL.md"),
        "---\nname: fresh\ndescription: new\n---\nHello\n",
    )
    .expect("write");
    let mut found = false;
    for _ in 0..100 {
        if call(&k, get.clone()).await["ok"] == true {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(found, "a new SKILL.md is indexed without a restart");
    std::fs::remove_dir_all(root.path().join("fresh")).expect("rm");
    let mut gone = false;
    for _ in 0..100 {
        if call(&k, get.clone()).await["ok"] == false {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "a removed skill leaves the index");
}
