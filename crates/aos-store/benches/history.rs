//! SessionHistory benchmarks on SQLite and PostgreSQL, side by side: single
//! appends, batched appends (100 per transaction), and history paging — each
//! measured on a session of 100 and of 10 000 messages, since a per-operation
//! cost must stay flat as history grows.
//!
//! Run: `cargo bench -p aos-store --bench history` (PostgreSQL from
//! `AOS_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).

#![allow(missing_docs)] // criterion_group! generates undocumented items

use aos_store::{HistoryQuery, NewMessage, Store};
use aos_types::{Origin, Part, Role};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::time::Duration;

fn msg(i: usize) -> NewMessage {
    NewMessage {
        role: Role::User,
        parts: vec![Part::text(format!(
            "message number {i} with a little text in it"
        ))],
        origin: Origin::Human,
        extra: Default::default(),
    }
}

async fn session_with(store: &Store, messages: usize) -> String {
    let agent = aos_testkit::acb();
    store.agent_insert(&agent).await.expect("agent");
    let scb = aos_testkit::scb(&agent.agent_id);
    store.session_insert(&scb).await.expect("session");
    let mut left = messages;
    while left > 0 {
        let n = left.min(500);
        store
            .append(&scb.session_id, None, (0..n).map(msg).collect())
            .await
            .expect("fill");
        left -= n;
    }
    scb.session_id
}

fn backends(rt: &tokio::runtime::Runtime) -> Vec<(&'static str, Store, Option<tempfile::TempDir>)> {
    let (sqlite, dir) = rt.block_on(aos_testkit::sqlite_store());
    let (pg, _schema) = rt.block_on(aos_testkit::pg_store());
    vec![("sqlite", sqlite, Some(dir)), ("postgres", pg, None)]
}

fn bench_history(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let stores = backends(&rt);
    for size in [100usize, 10_000] {
        let mut g = c.benchmark_group(format!("append_single/history_{size}"));
        g.throughput(Throughput::Elements(1));
        for (name, store, _) in &stores {
            let sid = rt.block_on(session_with(store, size));
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.to_async(&rt).iter(|| async {
                    store
                        .append(&sid, None, vec![msg(0)])
                        .await
                        .expect("append")
                });
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("append_batch100/history_{size}"));
        g.throughput(Throughput::Elements(100));
        for (name, store, _) in &stores {
            let sid = rt.block_on(session_with(store, size));
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.to_async(&rt).iter(|| async {
                    store
                        .append(&sid, None, (0..100).map(msg).collect())
                        .await
                        .expect("append")
                });
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("history_page100/history_{size}"));
        g.throughput(Throughput::Elements(100));
        for (name, store, _) in &stores {
            let sid = rt.block_on(session_with(store, size));
            // The newest page: the one a context engine reads most.
            let from = (size as i64 - 99).max(1);
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.to_async(&rt).iter(|| async {
                    let q = HistoryQuery {
                        from_seq: from,
                        to_seq: None,
                        limit: 100,
                    };
                    store.history(&sid, &q).await.expect("page")
                });
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_history
}
criterion_main!(benches);
