//! WASM host benchmarks, side by side: a `tool.before` round trip through the
//! hook engine with no handler, into the built-in guard component (JSON in
//! and out; `aos:kernel@0.2.0`) and into the same guard logic built against
//! `aos:kernel@0.1.0`; instantiation from `InstancePre`; component load from the disk
//! cache (warm) and by compiling (cold).
//!
//! Run: `cargo bench -p aos-wasm-host --bench host`.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use aos_kernel::hooks::HookScope;
use aos_kernel::services::ServiceDriver;
use aos_kernel::{AoscbDefaults, Kernel, KernelConfig, Principal};
use aos_types::Request;
use aos_types::hook;
use aos_wasm_host::{Origin, WasmHost, WasmHostConfig};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn guard() -> &'static Path {
    Path::new(aos_test_artifacts::MY_GUARD)
}

fn kernel(rt: &tokio::runtime::Runtime, dir: &Path, direct_calls: bool) -> Kernel {
    rt.block_on(async {
        let root = dir.join("skills");
        std::fs::create_dir_all(root.join("my-guard")).expect("mkdir");
        std::fs::copy(guard(), root.join("my-guard/service.wasm")).expect("copy");
        std::fs::write(
            root.join("my-guard/SKILL.md"),
            "---\nname: my-guard\ndescription: guard\nservice: ./service.wasm\ncapabilities:\n  hooks: [tool.before]\n---\nx\n",
        )
        .expect("write");
        // The same guard logic in a component built against aos:kernel@0.1.0.
        std::fs::create_dir_all(root.join("guard-v0-1")).expect("mkdir");
        std::fs::copy(aos_test_artifacts::TEST_GUEST_V0_1, root.join("guard-v0-1/service.wasm"))
            .expect("copy");
        std::fs::write(
            root.join("guard-v0-1/SKILL.md"),
            "---\nname: guard-v0-1\ndescription: guard\nservice: ./service.wasm\ncapabilities:\n  hooks: [tool.before, tool.after, session.started]\n---\nx\n",
        )
        .expect("write");
        let store = aos_store::Store::open(&format!("sqlite://{}/aos.db", dir.display())).await.expect("store");
        let host = WasmHost::new(WasmHostConfig { cache_dir: dir.join("cache"), pooling: false, direct_calls, precompiled: &[] }).expect("host");
        let drivers: Vec<Arc<dyn ServiceDriver>> = vec![Arc::new(host)];
        let config = KernelConfig {
            home: dir.to_path_buf(),
            skill_roots: vec![root],
            builtin_skills: None,
            node_id: "bench".into(),
            system_name: "bench".into(),
            defaults: AoscbDefaults::default(),
            lease_ttl_ms: 60_000,
            watch_skills: false,
            bin_dir: None,
            bash_sandbox: Default::default(),
        };
        let runner = aos_react::ReactUnit::runner(Default::default()).expect("runner");
        Kernel::start(store, config, drivers, runner).await.expect("kernel")
    })
}

fn hook_round_trip(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let tmp = tempfile::tempdir().expect("tmp");
    let k = kernel(&rt, tmp.path(), true);
    let input = json!({"toolCallId": "call_1", "agentId": "ag_b", "sessionId": "se_b"});
    let output = json!({"args": {"command": "ls -la /tmp", "timeoutMs": 10000}});
    let scope = HookScope {
        agent_id: Some("ag_b"),
        session_id: Some("se_b"),
    };
    // Each call gets its own input and output, copied right before the call
    // and handed over (as the kernel builds a payload right before its hook
    // call): copies made in a batch ahead of the timing are cold in the
    // cache by their turn and made writing them out look several times
    // slower. The copies are in every figure; `wasm_guard - no_handler` is
    // the handler's cost.
    let round_trip = |k| admit_bench(&rt, k, scope, &input, &output);
    let mut g = c.benchmark_group("hook_round_trip/tool.before");
    g.bench_function(BenchmarkId::from_parameter("no_handler"), round_trip(&k));
    let started = call(&rt, &k, json!({"op": "skill.start", "name": "my-guard"}));
    g.bench_function(BenchmarkId::from_parameter("wasm_guard"), round_trip(&k));
    // The same guard called on a fiber, as every component was before
    // direct calls (and as one that can wait still is).
    let fiber_dir = tempfile::tempdir().expect("tmp");
    let fiber = kernel(&rt, fiber_dir.path(), false);
    call(
        &rt,
        &fiber,
        json!({"op": "skill.start", "name": "my-guard"}),
    );
    g.bench_function(
        BenchmarkId::from_parameter("wasm_guard_fiber"),
        round_trip(&fiber),
    );
    call(
        &rt,
        &k,
        json!({"op": "skill.stop", "instanceId": started["instanceId"]}),
    );
    call(&rt, &k, json!({"op": "skill.start", "name": "guard-v0-1"}));
    g.bench_function(
        BenchmarkId::from_parameter("wasm_guard_v0_1"),
        round_trip(&k),
    );
    g.finish();
}

/// `tool.before` admitted by `k`, each call on copies of `input` and `output`.
fn admit_bench<'a>(
    rt: &'a tokio::runtime::Runtime,
    k: &'a Kernel,
    scope: HookScope<'a>,
    input: &'a serde_json::Value,
    output: &'a serde_json::Value,
) -> impl FnMut(&mut criterion::Bencher<'_>) + 'a {
    move |b| {
        b.to_async(rt).iter(|| async {
            k.hooks()
                .admit(hook::TOOL_BEFORE, scope, input.clone(), output.clone())
                .await
                .expect("allow")
        });
    }
}

/// Runs a syscall as the operator; its `data`.
fn call(rt: &tokio::runtime::Runtime, k: &Kernel, req: serde_json::Value) -> serde_json::Value {
    rt.block_on(async {
        let req = Request::from_value(req).expect("req");
        let r = serde_json::to_value(k.syscall(&Principal::Operator, req).await).expect("ser");
        assert_eq!(r["ok"], true, "{r}");
        r["data"].clone()
    })
}

fn instantiation(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut g = c.benchmark_group("instantiate/InstancePre");
    for pooling in [false, true] {
        let host = WasmHost::new(WasmHostConfig {
            cache_dir: tmp.path().join("cache"),
            pooling,
            direct_calls: true,
            precompiled: &[],
        })
        .expect("host");
        let name = if pooling { "pooling" } else { "on_demand" };
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let host = host.clone();
                async move {
                    let times = host
                        .time_instantiation(guard(), iters as usize)
                        .await
                        .expect("instantiate");
                    times.iter().sum()
                }
            });
        });
    }
    g.finish();
}

fn loading(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut g = c.benchmark_group("load/component");
    g.sample_size(10);
    g.bench_function(BenchmarkId::from_parameter("cold_compile"), |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("cache dir");
                let host = WasmHost::new(WasmHostConfig {
                    cache_dir: dir.path().to_path_buf(),
                    pooling: false,
                    direct_calls: true,
                    precompiled: &[],
                })
                .expect("host");
                (dir, host)
            },
            |(_dir, host)| assert_eq!(host.load(guard()).expect("load"), Origin::Compiled),
            criterion::BatchSize::PerIteration,
        );
    });
    let host = WasmHost::new(WasmHostConfig {
        cache_dir: tmp.path().join("warm"),
        pooling: false,
        direct_calls: true,
        precompiled: &[],
    })
    .expect("host");
    host.load(guard()).expect("prime");
    g.bench_function(BenchmarkId::from_parameter("warm_cache"), |b| {
        b.iter(|| assert_eq!(host.load(guard()).expect("load"), Origin::Cached));
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = hook_round_trip, instantiation, loading
}
criterion_main!(benches);
