//! The store suite, run against SQLite and a real PostgreSQL server.

mod common;

use aos_store::{
    Counts, FactLog, HistoryQuery, InboxEntry, LogQuery, MessageExtra, NewEvent, NewLogEntry,
    SessionQuery, Store, StoreError, StoredEvent,
};
use aos_types::{AgentStatus, Origin, SessionPhase, SessionStatus};
use common::*;
use std::collections::BTreeSet;

async fn aoscb_revisions(store: Store) {
    let cb = store.aoscb_init(&aoscb()).await.expect("init");
    assert_eq!(cb.revision, 1);
    // A second init with the same name/root changes nothing.
    assert_eq!(
        store.aoscb_init(&aoscb()).await.expect("re-init").revision,
        1
    );
    let cb = store
        .aoscb_update(Some(1), |cb| {
            cb.max_turns = 7;
            Ok(())
        })
        .await
        .expect("update");
    assert_eq!((cb.revision, cb.max_turns), (2, 7));
    let err = store
        .aoscb_update(Some(1), |cb| {
            cb.max_turns = 9;
            Ok(())
        })
        .await
        .expect_err("stale revision");
    assert!(matches!(
        err,
        StoreError::RevisionConflict {
            expected: 1,
            actual: 2,
            ..
        }
    ));
    let cb = store.aoscb_get().await.expect("get");
    assert_eq!(
        (cb.revision, cb.max_turns),
        (2, 7),
        "conflict changed nothing"
    );
}

async fn agent_crud(store: Store) {
    let a = acb();
    store.agent_insert(&a).await.expect("insert");
    assert_eq!(store.agent_get(&a.agent_id).await.expect("get"), a);
    let b = acb();
    store.agent_insert(&b).await.expect("insert b");
    let updated = store
        .agent_update(&a.agent_id, Some(1), |acb| {
            acb.display_name = "renamed".into();
            Ok(())
        })
        .await
        .expect("update");
    assert_eq!(updated.revision, 2);
    assert!(matches!(
        store.agent_update(&a.agent_id, Some(1), |_| Ok(())).await,
        Err(StoreError::RevisionConflict { .. })
    ));
    let rejected = store
        .agent_update(&a.agent_id, None, |_| {
            Err(StoreError::Rejected {
                code: "agent.archived",
                message: "no".into(),
            })
        })
        .await;
    assert!(matches!(rejected, Err(StoreError::Rejected { .. })));
    assert_eq!(store.agent_get(&a.agent_id).await.expect("get").revision, 2);
    let all = store.agent_list(None, None, 10).await.expect("list");
    assert_eq!(all.len(), 2);
    let page = store
        .agent_list(None, Some(&all[0].agent_id), 10)
        .await
        .expect("page");
    assert_eq!(page.len(), 1);
    assert!(matches!(
        store.agent_get("ag_nope").await,
        Err(StoreError::NotFound { kind: "agent", .. })
    ));
}

/// `/metrics` counts agents and sessions by status, on either backend.
async fn counts_by_status(store: Store) {
    assert_eq!(store.counts().await.expect("counts"), Counts::default());
    let (a, b) = (acb(), acb());
    store.agent_insert(&a).await.expect("insert");
    store.agent_insert(&b).await.expect("insert b");
    store
        .agent_update(&b.agent_id, None, |acb| {
            acb.status = AgentStatus::Archived;
            Ok(())
        })
        .await
        .expect("archive");
    for _ in 0..3 {
        store
            .session_insert(&scb(&a.agent_id))
            .await
            .expect("session");
    }
    let mut counts = store.counts().await.expect("counts").0;
    counts.sort();
    let row = |k: &str, s: &str, n| (k.to_string(), s.to_string(), n);
    assert_eq!(
        counts,
        vec![
            row("agents", "active", 1),
            row("agents", "archived", 1),
            row("sessions", "ready", 3),
        ]
    );
}

async fn append_is_gapless_under_concurrency(store: Store) {
    let s = session(&store).await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = store.clone();
        let id = s.session_id.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append(&id, None, vec![text(&format!("m{i}"))])
                .await
                .expect("append")
        }));
    }
    let mut seqs = BTreeSet::new();
    for t in tasks {
        let (msgs, _) = t.await.expect("join");
        assert!(seqs.insert(msgs[0].metadata.seq), "duplicate seq");
    }
    assert_eq!(seqs, (1..=60).collect::<BTreeSet<i64>>());
    let scb = store.session_get(&s.session_id).await.expect("get");
    assert_eq!(
        (scb.message_count, scb.last_message_seq, scb.revision),
        (60, Some(60), 61)
    );
    let hist = store
        .history(
            &s.session_id,
            &HistoryQuery {
                from_seq: 1,
                to_seq: None,
                limit: 1000,
            },
        )
        .await
        .expect("history");
    let got: Vec<i64> = hist.iter().map(|m| m.metadata.seq).collect();
    assert_eq!(got, (1..=60).collect::<Vec<_>>());
}

async fn batch_append_and_paging(store: Store) {
    let s = session(&store).await;
    let batch = (0..25).map(|i| text(&format!("b{i}"))).collect();
    let (msgs, scb) = store
        .append(&s.session_id, Some(1), batch)
        .await
        .expect("batch");
    assert_eq!(msgs.len(), 25);
    assert_eq!(scb.revision, 2, "one append, one revision");
    assert!(
        msgs.iter()
            .all(|m| m.parts.iter().all(|p| p.id().starts_with("pt_")))
    );
    let page = store
        .history(
            &s.session_id,
            &HistoryQuery {
                from_seq: 10,
                to_seq: Some(14),
                limit: 100,
            },
        )
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|m| m.metadata.seq).collect::<Vec<_>>(),
        vec![10, 11, 12, 13, 14]
    );
    let page = store
        .history(
            &s.session_id,
            &HistoryQuery {
                from_seq: 20,
                to_seq: None,
                limit: 3,
            },
        )
        .await
        .expect("page");
    assert_eq!(page.len(), 3);
    // The stored documents, as JSON, are the messages themselves.
    let q = HistoryQuery {
        from_seq: 20,
        to_seq: None,
        limit: 3,
    };
    let docs = store
        .history_json(&s.session_id, &q)
        .await
        .expect("json page");
    let docs: Vec<aos_types::Message> = docs
        .iter()
        .map(|d| serde_json::from_str(d.get()).expect("a stored document"))
        .collect();
    assert_eq!(docs, page);
    let one = store
        .message_get(&s.session_id, &msgs[3].id)
        .await
        .expect("message");
    assert_eq!(one, msgs[3]);
}

async fn append_refusals_change_nothing(store: Store) {
    let s = session(&store).await;
    store
        .append(&s.session_id, None, vec![text("a")])
        .await
        .expect("append");
    let stale = store.append(&s.session_id, Some(1), vec![text("b")]).await;
    assert!(matches!(
        stale,
        Err(StoreError::RevisionConflict {
            expected: 1,
            actual: 2,
            ..
        })
    ));
    store
        .session_update(&s.session_id, None, |scb| {
            scb.status = SessionStatus::Archived;
            Ok(())
        })
        .await
        .expect("archive");
    assert!(matches!(
        store.append(&s.session_id, None, vec![text("c")]).await,
        Err(StoreError::Rejected { .. })
    ));
    assert!(matches!(
        store.append("se_nope", None, vec![text("c")]).await,
        Err(StoreError::NotFound { .. })
    ));
    let scb = store.session_get(&s.session_id).await.expect("get");
    assert_eq!((scb.message_count, scb.revision), (1, 3));
}

async fn lease_columns_change_atomically(store: Store) {
    let s = session(&store).await;
    let scb = store
        .session_update(&s.session_id, Some(1), |scb| {
            scb.phase = SessionPhase::Dispatched;
            scb.lease_id = Some("ls_1".into());
            scb.lease_holder = Some("node-a".into());
            scb.lease_expires_at = Some("2999-01-01T00:00:00.000Z".into());
            Ok(())
        })
        .await
        .expect("take lease");
    assert_eq!(scb.lease_holder.as_deref(), Some("node-a"));
    let again = store.session_get(&s.session_id).await.expect("get");
    assert_eq!(again, scb);
    assert_eq!(store.sessions_to_recover().await.expect("recover").len(), 1);
    let list = store
        .session_list(&SessionQuery {
            agent_id: Some(s.agent_id.clone()),
            status: Some(SessionStatus::Ready),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(list.len(), 1);
}

/// A lease's term counts the session's leases: each new lease id takes the
/// next term; a renewal or a release keeps it; a caller cannot set it.
async fn lease_terms_count_the_takes(store: Store) {
    let s = session(&store).await;
    let set = |lease: Option<&str>, forged: i64| {
        let lease = lease.map(String::from);
        let store = store.clone();
        let sid = s.session_id.clone();
        async move {
            store
                .session_update(&sid, None, move |scb| {
                    scb.lease_id = lease;
                    scb.lease_term = forged;
                    Ok(())
                })
                .await
                .expect("update")
                .lease_term
        }
    };
    assert_eq!(s.lease_term, 0);
    assert_eq!(set(Some("ls_1"), 99).await, 1, "a first lease");
    assert_eq!(set(Some("ls_1"), 99).await, 1, "renewed");
    assert_eq!(set(Some("ls_2"), 0).await, 2, "taken over");
    assert_eq!(set(None, 7).await, 2, "released");
    assert_eq!(set(Some("ls_3"), 0).await, 3, "taken again");
    let read = store.session_get(&s.session_id).await.expect("get");
    assert_eq!(read.lease_term, 3);
    // Appends keep it.
    store
        .append_fenced(&s.session_id, "ls_3", vec![text("under term 3")], None)
        .await
        .expect("append");
    assert_eq!(
        store
            .session_get(&s.session_id)
            .await
            .expect("get")
            .lease_term,
        3
    );
}

/// A write under a lease lands only while the session's lease is that one
/// (its term): once another node took the session, the old holder's write
/// is refused with `lease.expired` and changes nothing (issue 23).
async fn a_write_under_a_lost_lease_is_refused(store: Store) {
    let s = session(&store).await;
    let take = |lease: &'static str, node: &'static str| {
        let store = store.clone();
        let sid = s.session_id.clone();
        async move {
            store
                .session_update(&sid, None, move |scb| {
                    scb.phase = SessionPhase::Dispatched;
                    scb.lease_id = Some(lease.into());
                    scb.lease_holder = Some(node.into());
                    scb.lease_expires_at = Some("2999-01-01T00:00:00.000Z".into());
                    Ok(())
                })
                .await
                .expect("take lease")
        }
    };
    take("ls_a", "node-a").await;
    let (m, _) = store
        .append_fenced(&s.session_id, "ls_a", vec![text("a1")], None)
        .await
        .expect("the holder writes");
    assert_eq!(m[0].metadata.seq, 1);
    take("ls_b", "node-b").await;
    let late = store
        .append_fenced(&s.session_id, "ls_a", vec![text("a2")], None)
        .await;
    match late {
        Err(StoreError::Rejected { code, message }) => {
            assert_eq!(code, "lease.expired");
            assert!(message.contains("node-b"), "{message}");
        }
        other => panic!("a write under a lost lease: {other:?}"),
    }
    let (m, scb) = store
        .append_fenced(&s.session_id, "ls_b", vec![text("b1")], None)
        .await
        .expect("the new holder writes");
    assert_eq!(m[0].metadata.seq, 2, "nothing was written in between");
    assert_eq!(scb.message_count, 2);
    // Unfenced writes (a person's message) are not held to a lease.
    store
        .append(&s.session_id, None, vec![text("note")])
        .await
        .expect("unfenced");
}

async fn session_lists_page_both_ways(store: Store) {
    let first = session(&store).await;
    let mut ids = vec![first.session_id.clone()];
    for _ in 0..2 {
        let s = aos_testkit::scb(&first.agent_id);
        store.session_insert(&s).await.expect("session");
        ids.push(s.session_id);
    }
    // Ids sort by creation time (ms), then at random within a millisecond.
    ids.sort();
    let page = |after: Option<String>, newest_first: bool| {
        let store = store.clone();
        let agent = first.agent_id.clone();
        async move {
            store
                .session_list(&SessionQuery {
                    agent_id: Some(agent),
                    after,
                    limit: 2,
                    newest_first,
                    ..Default::default()
                })
                .await
                .expect("list")
                .into_iter()
                .map(|s| s.session_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(None, false).await, ids[..2]);
    assert_eq!(page(Some(ids[1].clone()), false).await, ids[2..]);
    assert_eq!(page(None, true).await, [ids[2].clone(), ids[1].clone()]);
    assert_eq!(page(Some(ids[1].clone()), true).await, ids[..1]);
}

async fn session_lists_find_by_title_and_id(store: Store) {
    let first = session(&store).await;
    let mut titled = aos_testkit::scb(&first.agent_id);
    titled.title = Some("Deploy the Nightly BUILD".into());
    store.session_insert(&titled).await.expect("session");
    let mut ids = vec![first.session_id.clone(), titled.session_id.clone()];
    let find = |text: &str| {
        let (store, text) = (store.clone(), text.to_string());
        async move {
            store
                .session_list(&SessionQuery {
                    text: Some(text),
                    limit: 10,
                    ..Default::default()
                })
                .await
                .expect("list")
                .into_iter()
                .map(|s| s.session_id)
                .collect::<Vec<_>>()
        }
    };
    let mut german = aos_testkit::scb(&first.agent_id);
    german.title = Some("Überprüfung der Änderungen".into());
    store.session_insert(&german).await.expect("session");
    assert_eq!(
        find("ÜBERPRÜFUNG DER ä").await,
        [german.session_id.clone()],
        "any case, any letter"
    );
    let only = [titled.session_id.clone()];
    assert_eq!(find("nightly build").await, only, "title, any case");
    assert_eq!(find("the Night").await, only);
    assert_eq!(find(&titled.session_id).await, only, "session id");
    ids.push(german.session_id.clone());
    ids.sort();
    assert_eq!(find(&first.agent_id).await, ids, "agent id");
    assert_eq!(find("se_").await, ids, "id prefix");
    assert!(find("not in any title").await.is_empty());
    assert!(find("Nightly\0").await.is_empty(), "a NUL matches nothing");
    assert!(find("ightly%").await.is_empty(), "no wildcards");
}

async fn runtime_log_and_content(store: Store) {
    for (i, op) in ["agent.create", "session.create", "agent.create"]
        .iter()
        .enumerate()
    {
        store
            .log_append(NewLogEntry {
                level: if i == 1 { "warn" } else { "info" },
                op: op.to_string(),
                owner_type: "operator".into(),
                owner_id: None,
                agent_id: Some("ag_1".into()),
                session_id: None,
                refs: None,
                data: Some(serde_json::json!({"i": i})),
            })
            .await
            .expect("log");
    }
    let all = store
        .log_list(&LogQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(all.len(), 3);
    assert_eq!(all[1].data.as_ref().expect("data")["i"], 1);
    let creates = store
        .log_list(&LogQuery {
            op: Some("agent.create".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("filter");
    assert_eq!(creates.len(), 2);
    let after = store
        .log_list(&LogQuery {
            after: Some(all[0].id),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("cursor");
    assert_eq!(after.len(), 2);
    let newest = store
        .log_list(&LogQuery {
            limit: 2,
            newest_first: true,
            ..Default::default()
        })
        .await
        .expect("newest first");
    let ids = |v: &[aos_types::RuntimeLogEntry]| v.iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(&newest), [all[2].id, all[1].id]);
    let older = store
        .log_list(&LogQuery {
            after: Some(all[1].id),
            limit: 2,
            newest_first: true,
            ..Default::default()
        })
        .await
        .expect("older page");
    assert_eq!(ids(&older), [all[0].id]);

    let meta = store.content_put("se_1", "a\nb\nc\n").await.expect("put");
    assert_eq!((meta.size_chars, meta.line_count), (6, 3));
    let (m2, body) = store.content_get(&meta.content_id).await.expect("get");
    assert_eq!((m2, body.as_str()), (meta.clone(), "a\nb\nc\n"));
    assert!(
        store
            .content_exists(&meta.content_id)
            .await
            .expect("exists")
    );
    assert!(matches!(
        store.content_get("ct_nope").await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn dispatch_inbox_is_durable_and_ordered(store: Store) {
    let s = session(&store).await;
    let entry = |id: &str, node: &str| InboxEntry {
        dispatch_id: id.into(),
        session_id: s.session_id.clone(),
        node_id: node.into(),
        created_at: aos_types::now(),
        message: format!("message of {id}"),
        origin: Origin::Agent,
        // The a2a envelope is kept with the message.
        a2a: (id == "ds_a").then(|| serde_json::json!({"mode": "wake", "fromAgentId": "agt_x"})),
    };
    for (id, node) in [
        ("ds_b", "n1"),
        ("ds_a", "n1"),
        ("ds_x", "n2"),
        ("ds_c", "n1"),
    ] {
        store.inbox_push(&entry(id, node)).await.expect("push");
    }
    assert!(
        store.inbox_push(&entry("ds_a", "n1")).await.is_err(),
        "a dispatch is queued once"
    );
    let n1 = store.inbox_list("n1").await.expect("list");
    let ids: Vec<&str> = n1.iter().map(|e| e.dispatch_id.as_str()).collect();
    assert_eq!(
        ids,
        ["ds_b", "ds_a", "ds_c"],
        "in the order queued, this node only"
    );
    assert_eq!(
        (
            n1[1].message.as_str(),
            n1[1].origin,
            n1[1].session_id.as_str()
        ),
        ("message of ds_a", Origin::Agent, s.session_id.as_str())
    );
    assert!(store.inbox_remove("ds_a").await.expect("remove"));
    assert!(!store.inbox_remove("ds_a").await.expect("again"), "gone");
    assert_eq!(store.inbox_list("n1").await.expect("list").len(), 2);
    assert_eq!(store.inbox_list("n2").await.expect("list").len(), 1);

    // A message may carry its id; the same id cannot be written twice.
    let mut m = text("once");
    m.extra = MessageExtra {
        id: Some("msg_fixed".into()),
        ..Default::default()
    };
    let (msgs, _) = store
        .append(&s.session_id, None, vec![m.clone()])
        .await
        .expect("append");
    assert_eq!(msgs[0].id, "msg_fixed");
    let before = store.session_get(&s.session_id).await.expect("get");
    assert!(store.append(&s.session_id, None, vec![m]).await.is_err());
    let after = store.session_get(&s.session_id).await.expect("get");
    assert_eq!(
        (after.revision, after.last_message_seq),
        (before.revision, before.last_message_seq),
        "the refused append changed nothing"
    );
    assert_eq!(
        store
            .message_get(&s.session_id, "msg_fixed")
            .await
            .expect("get")
            .id,
        "msg_fixed"
    );
}

async fn a_logged_append_is_one_transaction(store: Store) {
    let s = session(&store).await;
    let entry = || NewLogEntry {
        level: "info",
        op: "tool.bash".into(),
        owner_type: "session".into(),
        owner_id: Some(s.session_id.clone()),
        agent_id: Some(s.agent_id.clone()),
        session_id: Some(s.session_id.clone()),
        refs: None,
        data: Some(serde_json::json!({"output": "raw"})),
    };
    let (msgs, _) = store
        .append_logged(&s.session_id, vec![text("result")], entry())
        .await
        .expect("append");
    assert_eq!(msgs.len(), 1);
    let q = LogQuery {
        op: Some("tool.bash".into()),
        limit: 10,
        ..Default::default()
    };
    let log = store.log_list(&q).await.expect("log");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].data.as_ref().expect("data")["output"], "raw");
    // Refused (archived session): neither the message nor the entry.
    store
        .session_update(&s.session_id, None, |scb| {
            scb.status = SessionStatus::Archived;
            Ok(())
        })
        .await
        .expect("archive");
    assert!(
        store
            .append_logged(&s.session_id, vec![text("late")], entry())
            .await
            .is_err()
    );
    assert_eq!(store.log_list(&q).await.expect("log").len(), 1);
}

/// Nodes long gone are forgotten, but not one whose queued messages are
/// still to be adopted, nor one that beats.
async fn gone_nodes_are_forgotten(store: Store) {
    let beat = |id: &str, at: &str| aos_store::NodeRecord {
        node_id: id.into(),
        url: String::new(),
        version: "0".into(),
        started_at: at.into(),
        heartbeat_at: at.into(),
        period_ms: 1_000,
        stopped_at: None,
    };
    let old = "2026-01-01T00:00:00.000Z";
    store.node_beat(&beat("gone", old)).await.expect("beat");
    store.node_beat(&beat("queued", old)).await.expect("beat");
    store
        .node_beat(&beat("alive", &aos_types::now()))
        .await
        .expect("beat");
    let s = session(&store).await;
    let queued = InboxEntry {
        dispatch_id: "ds_q".into(),
        session_id: s.session_id.clone(),
        node_id: "queued".into(),
        created_at: aos_types::now(),
        message: "waiting".into(),
        origin: Origin::Human,
        a2a: None,
    };
    store.inbox_push(&queued).await.expect("push");
    let before = "2026-06-01T00:00:00.000Z";
    assert_eq!(store.nodes_forget(before).await.expect("forget"), 1);
    let ids = |v: Vec<aos_store::NodeRecord>| v.into_iter().map(|n| n.node_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.nodes().await.expect("nodes")),
        ["alive", "queued"]
    );
    store.inbox_remove("ds_q").await.expect("adopted");
    assert_eq!(store.nodes_forget(before).await.expect("forget"), 1);
    assert_eq!(ids(store.nodes().await.expect("nodes")), ["alive"]);
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            use super::*;
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { let (s, _d) = sqlite().await; super::$name(s).await; } )*
        }
        mod postgres_backend {
            use super::*;
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { let (s, _schema) = postgres().await; super::$name(s).await; } )*
        }
    };
}

on_both_backends!(
    aoscb_revisions,
    agent_crud,
    counts_by_status,
    append_is_gapless_under_concurrency,
    batch_append_and_paging,
    append_refusals_change_nothing,
    lease_columns_change_atomically,
    lease_terms_count_the_takes,
    a_write_under_a_lost_lease_is_refused,
    runtime_log_and_content,
    dispatch_inbox_is_durable_and_ordered,
    a_logged_append_is_one_transaction,
    session_lists_page_both_ways,
    session_lists_find_by_title_and_id,
    gone_nodes_are_forgotten,
);

#[tokio::test]
async fn sqlite_file_is_owned_by_one_daemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/aos.db", dir.path().display());
    let first = Store::open(&url).await.expect("first");
    let err = Store::open(&url).await.expect_err("second must refuse");
    assert!(matches!(err, StoreError::Locked { .. }));
    assert!(err.to_string().contains("already in use"), "{err}");
    first.close().await;
    drop(first);
    Store::open(&url)
        .await
        .expect("free again after the first closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_one_postgres_never_share_a_seq() {
    let (a, schema) = postgres().await;
    let b = postgres_again(&schema).await;
    let s = session(&a).await;
    let mut tasks = Vec::new();
    for i in 0..80 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let id = s.session_id.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append(&id, None, vec![text("x"), text("y")])
                .await
                .expect("append")
                .0
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.extend(t.await.expect("join").iter().map(|m| m.metadata.seq));
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=160).collect::<Vec<_>>());
}

fn event(name: &str, session: &str) -> NewEvent {
    NewEvent {
        name: name.into(),
        time: aos_types::now(),
        scope: "session".into(),
        agent_id: Some("ag_1".into()),
        session_id: Some(session.into()),
        payload: format!("{{\"n\":\"{name}\"}}"),
    }
}

/// The log's events after `after` once settled (another test's transaction
/// on the server can hold them back a moment).
async fn settled(store: &Store, after: i64) -> Vec<StoredEvent> {
    for _ in 0..100 {
        let page = store.events_after(after, 1000).await.expect("read");
        if !page.unsettled {
            return page.events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the event log stayed unsettled for 5 s");
}

/// The cluster's event log (issue 23): two stores on one schema (two
/// daemons) add events concurrently; each reads them all in one order by id,
/// a listener is woken by the other's addition, and the log is trimmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_log_has_one_order_for_every_node() {
    let (a, schema) = postgres().await;
    let b = postgres_again(&schema).await;
    assert_eq!(a.events_last_id().await.expect("last"), 0);
    let mut wake = b.events_listen().await.expect("listen");
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (store, node) = if i % 2 == 0 {
            (a.clone(), "a")
        } else {
            (b.clone(), "b")
        };
        tasks.push(tokio::spawn(async move {
            let batch = vec![
                event(&format!("e{i}.1"), "se_1"),
                event(&format!("e{i}.2"), "se_1"),
            ];
            store.events_append(node, batch).await.expect("append");
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    assert!(wake.wait(std::time::Duration::from_secs(5)).await, "woken");
    let from_a = settled(&a, 0).await;
    let from_b = settled(&b, 0).await;
    assert_eq!(from_a, from_b, "one order for both");
    assert_eq!(from_a.len(), 80);
    let ids: Vec<i64> = from_a.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    // A batch stays together, in its order.
    for pair in from_a.chunks(2) {
        assert_eq!(
            pair[0].event.name.trim_end_matches(".1"),
            pair[1].event.name.trim_end_matches(".2")
        );
    }
    let last = a.events_last_id().await.expect("last");
    assert_eq!(last, ids[79]);
    let page = a.events_after(ids[9], 5).await.expect("page");
    assert!(page.more);
    assert_eq!(
        page.events.iter().map(|e| e.id).collect::<Vec<_>>(),
        ids[10..15]
    );
    assert_eq!(a.events_trim(10).await.expect("trim"), 70);
    assert_eq!(settled(&b, 0).await[..], from_a[70..]);
}

/// A raw connection to `schema`, for a transaction the store does not make.
async fn raw(schema: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&aos_testkit::pg_url())
        .await
        .expect("connect");
    sqlx::query(&format!("SET search_path TO \"{schema}\""))
        .execute(&mut c)
        .await
        .expect("search_path");
    c
}

/// Events are read in commit order (issue 23): while a transaction that
/// began writing first is still open, what commits after it is held back,
/// and once it commits its event comes first — a reader going on from the
/// last position it read never skips an event committed late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_committed_late_is_read_in_its_place() {
    use sqlx::Connection;
    let (a, schema) = postgres().await;
    let mut conn = raw(&schema).await;
    let mut slow = conn.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO events (pos, node_id, name, time, scope, payload) \
         VALUES ((pg_current_xact_id()::text::bigint << 16) | 1, 'slow', 'slow', 't', 'system', '{}')",
    )
    .execute(&mut *slow)
    .await
    .expect("insert");
    a.events_append("a", vec![event("fast", "se_1")])
        .await
        .expect("append");
    let page = a.events_after(0, 100).await.expect("read");
    assert!(
        page.events.is_empty(),
        "read past an open transaction: {page:?}"
    );
    assert!(page.unsettled);
    assert_eq!(a.events_last_id().await.expect("last"), 0);
    slow.commit().await.expect("commit");
    let names: Vec<String> = settled(&a, 0)
        .await
        .into_iter()
        .map(|e| e.event.name)
        .collect();
    assert_eq!(names, ["slow", "fast"]);
}

/// A fact's event is written in the fact's own transaction (issue 23): an
/// append on a store that logs facts adds one event per message, numbered with
/// the message, that another store reads; a refused append adds none; a store
/// that does not log facts adds none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_writes_its_facts_events_in_its_transaction() {
    let (a, schema) = postgres().await;
    let b = postgres_again(&schema).await;
    let log = || FactLog {
        node_id: "node-a".into(),
        name: "context.ingest".into(),
        payload: Box::new(|scb, m| {
            serde_json::json!({ "sessionId": scb.session_id, "seq": m.metadata.seq }).to_string()
        }),
    };
    assert!(a.log_facts(log()));
    assert!(!a.log_facts(log()), "set once");
    assert!(a.logs_facts() && !b.logs_facts());
    let s = session(&a).await;
    a.append(&s.session_id, None, vec![text("one"), text("two")])
        .await
        .expect("append");
    assert!(
        a.append(&s.session_id, Some(99), vec![text("stale")])
            .await
            .is_err()
    );
    assert!(
        a.append_fenced(&s.session_id, "le_not_held", vec![text("fenced")], None)
            .await
            .is_err()
    );
    b.append(&s.session_id, None, vec![text("unlogged")])
        .await
        .expect("append b");
    let events = settled(&b, 0).await;
    let got: Vec<(String, String, Option<String>, String)> = events
        .into_iter()
        .map(|e| (e.node_id, e.event.name, e.event.session_id, e.event.payload))
        .collect();
    let payload =
        |seq: i64| serde_json::json!({ "sessionId": s.session_id, "seq": seq }).to_string();
    let one = |seq| {
        (
            "node-a".to_string(),
            "context.ingest".to_string(),
            Some(s.session_id.clone()),
            payload(seq),
        )
    };
    assert_eq!(got, vec![one(1), one(2)]);
}

#[tokio::test]
async fn sqlite_has_no_cluster_event_log() {
    let (s, _d) = sqlite().await;
    match s.events_append("n", vec![event("x", "se_1")]).await {
        Err(StoreError::Rejected { code, .. }) => assert_eq!(code, "store.unsupported"),
        other => panic!("{other:?}"),
    }
    let log = FactLog {
        node_id: "n".into(),
        name: "context.ingest".into(),
        payload: Box::new(|_, _| "{}".into()),
    };
    assert!(!s.log_facts(log), "one node: events stay in its memory");
}
