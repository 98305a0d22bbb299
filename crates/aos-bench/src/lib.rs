//! `aos bench --quick --json`: the figures of `quality.md` measured in this
//! process on a throw-away home, printed as one nested JSON document (a key
//! like `hook.wasm.p50Us` is the path `{"hook":{"wasm":{"p50Us":…}}}`).

use aos_kernel::hooks::HookScope;

/// Why a measurement could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// `--only` named no section (bad usage).
    #[error("--only takes one of {sections}, not {asked:?}")]
    UnknownSection {
        /// What was asked.
        asked: String,
        /// The sections there are.
        sections: String,
    },
    /// A set-up step or a measurement failed.
    #[error("{0}")]
    Failed(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] aos_store::StoreError),
    /// A file or process failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A syscall was refused.
    #[error(transparent)]
    Syscall(#[from] aos_types::SyscallError),
    /// JSON failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// A bench result.
pub type Result<T> = std::result::Result<T, BenchError>;

/// A [`BenchError::Failed`] from a format string.
macro_rules! fail {
    ($($t:tt)*) => { $crate::BenchError::Failed(format!($($t)*)) };
}

/// The shipped `aoscb.json`: the turn figures run its default skills.
const AOSCB_JSON: &str = include_str!("../../../aoscb.json");
use aos_kernel::services::ServiceDriver;
use aos_kernel::{AoscbDefaults, Kernel, KernelConfig, Principal};
use aos_types::Request;
use aos_types::hook;
use aos_wasm_host::{Origin, WasmHost, WasmHostConfig};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod cluster;
mod console;
mod native;
mod operator;

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or_default()
}

/// Microseconds: to 0.01 under 10 µs (a WASM hook takes about one), else
/// to 0.1.
fn us(d: Duration) -> f64 {
    let us = d.as_secs_f64() * 1e6;
    let scale = if us < 10.0 { 100.0 } else { 10.0 };
    (us * scale).round() / scale
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

/// The sections of the report, each measurable alone (`--only`).
pub const SECTIONS: &[&str] = &[
    "hook", "wasm", "store", "context", "bash", "turn", "console", "start", "memory", "cluster",
];

/// Runs every measurement, or only the `only` section.
pub fn run(quick: bool, skills: Option<String>, only: Option<String>) -> Result<Value> {
    if let Some(o) = &only
        && !SECTIONS.contains(&o.as_str())
    {
        return Err(BenchError::UnknownSection {
            asked: o.clone(),
            sections: SECTIONS.join(", "),
        });
    }
    let root = std::path::absolute(skills.unwrap_or_else(|| "./skills".into()))?;
    let guard = root.join("my-guard/service.wasm");
    if !guard.is_file() {
        return Err(fail!(
            "{} is missing: run from the repository root after `cargo build`, or pass --skills",
            guard.display()
        ));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let data = rt.block_on(measure(quick, root, guard, only.as_deref()))?;
    Ok(json!({ "ok": true, "op": "bench", "data": data }))
}

async fn measure(quick: bool, root: PathBuf, guard: PathBuf, only: Option<&str>) -> Result<Value> {
    let want = |s: &str| only.is_none_or(|o| o == s);
    let tmp = tempdir()?;
    let n = if quick { 2_000 } else { 20_000 };
    let mut data = serde_json::Map::new();
    if want("wasm") {
        let host = wasm_host(&tmp)?;
        let (cold, warm, embedded) = load_times(&guard, &tmp, if quick { 3 } else { 10 })?;
        let inst = host
            .time_instantiation(&guard, if quick { 200 } else { 2_000 })
            .await
            .map_err(|e| fail!("{e}"))?;
        data.insert(
            "wasm".into(),
            json!({
                "instantiateUs": us(percentile(inst, 0.5)),
                "loadWarmMs": ms(warm),
                "loadColdMs": ms(cold),
                "loadEmbeddedMs": embedded.map(ms),
                "coldOverEmbedded": embedded.map(|e| {
                    (cold.as_secs_f64() / e.as_secs_f64().max(1e-9) * 10.0).round() / 10.0
                }),
            }),
        );
    }
    if ["hook", "store", "context", "bash", "console"]
        .iter()
        .any(|s| want(s))
    {
        let store = aos_store::Store::open(&format!("sqlite://{}/aos.db", tmp.display())).await?;
        let config = KernelConfig::embedded(tmp.clone(), vec![root.clone()]);
        let drivers: Vec<Arc<dyn ServiceDriver>> = vec![Arc::new(wasm_host(&tmp)?)];
        let k = Kernel::start(store, config, drivers, react(Default::default())?)
            .await
            .map_err(|e| fail!("{e}"))?;
        if want("hook") {
            let none = hook_times(&k, n).await?;
            call(&k, json!({"op": "skill.start", "name": "my-guard"})).await?;
            let mut hook = uds_figures(&tmp, n, &k).await?;
            hook.insert("none".into(), json!({ "p50Us": us(percentile(none, 0.5)) }));
            let (wasm, local) = native::figures(&tmp, n, &k).await?;
            let ratio = percentile(wasm.clone(), 0.5).as_secs_f64()
                / percentile(local.clone(), 0.5).as_secs_f64().max(1e-9);
            hook.insert(
                "native".into(),
                json!({ "p50Us": us(percentile(local.clone(), 0.5)), "p99Us": us(percentile(local, 0.99)),
                        "wasmP50Us": us(percentile(wasm, 0.5)) }),
            );
            hook.insert(
                "wasmOverNative".into(),
                json!((ratio * 100.0).round() / 100.0),
            );
            data.insert("hook".into(), Value::Object(hook));
        }
        if want("store") {
            let (single, batch) = append_rates(&k, if quick { 1_000 } else { 10_000 }).await?;
            data.insert("store".into(), json!({ "sqlite": { "appendPerSec": single.round(), "batchAppendPerSec": batch.round() } }));
        }
        if want("context") {
            data.insert(
                "context".into(),
                context_figures(&k, if quick { 50 } else { 500 }).await?,
            );
        }
        if want("console") {
            data.insert(
                "console".into(),
                console::figures(&k, if quick { 50 } else { 500 }).await?,
            );
        }
        if want("bash") {
            data.insert(
                "bash".into(),
                spawn_figures(&tmp, if quick { 200 } else { 1_000 }).await?,
            );
        }
        k.stop_services().await;
    }
    if want("turn") {
        data.insert(
            "turn".into(),
            turn_figures(&tmp, &root, if quick { 20 } else { 100 }).await?,
        );
    }
    // The real binary, as an operator starts it.
    if want("start") {
        let (tmp, root) = (tmp.clone(), root.clone());
        let figures = tokio::task::spawn_blocking(move || operator::start_figures(&tmp, &root))
            .await
            .map_err(|e| fail!("{e}"))??;
        data.insert("start".into(), figures);
    }
    if want("memory") {
        let (tmp, root) = (tmp.clone(), root.clone());
        let figures = tokio::task::spawn_blocking(move || operator::memory_figures(&tmp, &root))
            .await
            .map_err(|e| fail!("{e}"))??;
        data.insert("memory".into(), figures);
    }
    // Two daemons on one PostgreSQL: asked for by name, or when a server is set.
    if want("cluster") {
        let figures = match (only, cluster::server_url()) {
            (None, None) => {
                json!({ "skipped": "set AOS_BENCH_PG_URL=postgres://… to measure two nodes" })
            }
            _ => cluster::figures(&tmp, &root, if quick { 200 } else { 2_000 }).await?,
        };
        data.insert("cluster".into(), figures);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    data.insert("iterations".into(), json!(n));
    data.insert(
        "cpus".into(),
        json!(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        ),
    );
    data.insert("date".into(), json!(aos_types::now()));
    Ok(Value::Object(data))
}

/// Calls per block; the WASM and Rust UDS paths alternate in blocks this
/// long, so both are sampled over the same stretch of time: a VM's speed
/// drifts (a plain loop here ran 1.7× slower from one 200 ms to the next),
/// and two long blocks could catch it fast for one path and slow for the
/// other. Blocks, not single calls, so that each path runs warm as a hook
/// chain does.
const BLOCK: usize = 100;

/// `tool.before` into the WASM guard (already started on `k`) and through
/// the UDS shim: the Rust example service (built beside this binary),
/// measured in alternating blocks with the WASM path for the ratio; then
/// the seed README's Python `my-guard` alone.
async fn uds_figures(tmp: &Path, n: usize, k: &Kernel) -> Result<serde_json::Map<String, Value>> {
    let root = tmp.join("uds-skills");
    let caps = "capabilities:\n  hooks: [tool.before, tool.after, session.dispatch.after]\n";
    let example = std::env::current_exe()?.with_file_name("aos-uds-example");
    legacy_skill(
        &root,
        "uds-rust",
        "service",
        &std::fs::read(&example).map_err(|e| {
            fail!(
                "{} is missing ({e}): build the workspace (`cargo build --release --workspace`)",
                example.display()
            )
        })?,
        caps,
    )?;
    legacy_skill(
        &root,
        "uds-python",
        "service.py",
        aos_uds_shim::python::SEED_MY_GUARD.as_bytes(),
        "capabilities:\n  hooks: [tool.before]\n",
    )?;
    let store = aos_store::Store::open(&format!("sqlite://{}/uds.db", tmp.display())).await?;
    let config = KernelConfig::embedded(tmp.to_path_buf(), vec![root]);
    let drivers: Vec<Arc<dyn ServiceDriver>> = vec![Arc::new(aos_uds_shim::UdsDriver::default())];
    let uds = Kernel::start(store, config, drivers, react(Default::default())?)
        .await
        .map_err(|e| fail!("{e}"))?;
    let figures = |t: Vec<Duration>| json!({ "p50Us": us(percentile(t.clone(), 0.5)), "p99Us": us(percentile(t, 0.99)) });
    let mut out = serde_json::Map::new();
    let v = call(&uds, json!({"op": "skill.start", "name": "uds-rust"})).await?;
    let (mut wasm, mut rust) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n.div_ceil(BLOCK) {
        wasm.extend(hook_times(k, BLOCK).await?);
        rust.extend(hook_times(&uds, BLOCK).await?);
    }
    call(
        &uds,
        json!({"op": "skill.stop", "instanceId": v["instanceId"]}),
    )
    .await?;
    let ratio = percentile(rust.clone(), 0.5).as_secs_f64()
        / percentile(wasm.clone(), 0.5).as_secs_f64().max(1e-9);
    out.insert("wasm".into(), figures(wasm));
    out.insert("udsRust".into(), figures(rust));
    out.insert(
        "wasmSpeedupOverUdsRust".into(),
        json!((ratio * 10.0).round() / 10.0),
    );
    call(&uds, json!({"op": "skill.start", "name": "uds-python"})).await?;
    out.insert("udsPython".into(), figures(hook_times(&uds, n).await?));
    uds.stop_services().await;
    Ok(out)
}

/// Writes a legacy skill whose service file `file` holds `bytes`.
fn legacy_skill(root: &Path, name: &str, file: &str, bytes: &[u8], caps: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = root.join(name);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(file);
    std::fs::write(&path, bytes)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    let md = format!(
        "---\nname: {name}\ndescription: bench {name}\nservice: ./{file}\n{caps}---\nBench.\n"
    );
    std::fs::write(dir.join("SKILL.md"), md)?;
    Ok(dir)
}

/// The WASM host the daemon uses (on-demand instances), caching in `tmp`.
fn wasm_host(tmp: &Path) -> Result<WasmHost> {
    WasmHost::new(WasmHostConfig {
        cache_dir: tmp.join("cache"),
        pooling: false,
        direct_calls: true,
        precompiled: &[],
    })
    .map_err(|e| fail!("{e:#}"))
}

fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("aos-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| fail!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

async fn call(k: &Kernel, req: Value) -> Result<Value> {
    let r = serde_json::to_value(
        k.syscall(&Principal::Operator, Request::from_value(req)?)
            .await,
    )?;
    if r["ok"] != true {
        return Err(fail!("bench setup failed: {r}"));
    }
    Ok(r["data"].clone())
}

/// `tool.before` through the hook engine, JSON in and out.
async fn hook_times(k: &Kernel, n: usize) -> Result<Vec<Duration>> {
    let input = json!({"toolCallId": "call_1", "agentId": "ag_bench", "sessionId": "se_bench"});
    let output = json!({"args": {"command": "ls -la /tmp", "timeoutMs": 10000}});
    let scope = HookScope {
        agent_id: Some("ag_bench"),
        session_id: Some("se_bench"),
    };
    // Each call gets its own input and output, made just before the timing
    // and handed over (as the kernel makes a hook's payload right before the
    // call; a copy made long before would be cold in the cache): the figure
    // is the hook round trip, not the bench's copying.
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (i, o) = (input.clone(), output.clone());
        let t = Instant::now();
        let answer = k.hooks().admit(hook::TOOL_BEFORE, scope, i, o).await;
        out.push(t.elapsed());
        answer.map_err(|e| fail!("{e}"))?;
    }
    Ok(out)
}

/// Loads of a component, medians: compiled (cold), from the disk cache
/// (warm), and from the binary's precompiled table (`None` when the table
/// has no artifact for it, e.g. a binary built for another machine).
fn load_times(
    path: &Path,
    tmp: &Path,
    rounds: usize,
) -> Result<(Duration, Duration, Option<Duration>)> {
    let (mut cold, mut warm, mut embedded) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..rounds {
        let cache = tmp.join(format!("load-cache-{i}"));
        let host = |precompiled| {
            WasmHost::new(WasmHostConfig {
                cache_dir: cache.clone(),
                pooling: false,
                direct_calls: true,
                precompiled,
            })
            .map_err(|e| fail!("{e:#}"))
        };
        let (plain, shipped) = (host(&[])?, host(aos_builtins::PRECOMPILED)?);
        for (h, expect, out) in [
            (&plain, Origin::Compiled, &mut cold),
            (&plain, Origin::Cached, &mut warm),
            (&shipped, Origin::Embedded, &mut embedded),
        ] {
            let t = Instant::now();
            let origin = h.load(path).map_err(|e| fail!("{e}"))?;
            if origin == expect {
                out.push(t.elapsed());
            } else if expect != Origin::Embedded {
                return Err(fail!("expected a load {expect:?}, got {origin:?}"));
            }
        }
        let _ = std::fs::remove_dir_all(cache);
    }
    let embedded = (!embedded.is_empty()).then(|| percentile(embedded, 0.5));
    Ok((percentile(cold, 0.5), percentile(warm, 0.5), embedded))
}

/// SessionHistory appends through the kernel: single messages, and batches of 100.
async fn append_rates(k: &Kernel, n: usize) -> Result<(f64, f64)> {
    let agent = call(k, json!({"op": "agent.create"})).await?;
    let s = call(
        k,
        json!({"op": "session.create", "agentId": agent["agentId"]}),
    )
    .await?;
    let sid = s["sessionId"].as_str().unwrap_or_default().to_string();
    let msg = json!({"role": "user", "parts": [{"type": "text", "text": "a message of ordinary length for the benchmark"}]});
    let t = Instant::now();
    for _ in 0..n {
        call(
            k,
            json!({"op": "session.append", "sessionId": sid, "message": msg}),
        )
        .await?;
    }
    let single = n as f64 / t.elapsed().as_secs_f64();
    let batch: Vec<aos_store::NewMessage> = (0..100)
        .map(|_| aos_store::NewMessage {
            role: aos_types::Role::User,
            parts: vec![aos_types::Part::text(
                "a message of ordinary length for the benchmark",
            )],
            origin: aos_types::Origin::Human,
            extra: Default::default(),
        })
        .collect();
    let rounds = (n / 100).max(10);
    let t = Instant::now();
    for _ in 0..rounds {
        k.store().append(&sid, None, batch.clone()).await?;
    }
    let batched = (rounds * 100) as f64 / t.elapsed().as_secs_f64();
    Ok((single, batched))
}

/// `aos-context` over a 10 000-message session: a full rebuild, and the
/// incremental assembly after each appended message (`n` of them).
async fn context_figures(k: &Kernel, n: usize) -> Result<Value> {
    call(k, json!({"op": "skill.start", "name": "aos-context"})).await?;
    let sid = new_session(k).await?;
    let turn = |i: usize| aos_store::NewMessage {
        role: if i.is_multiple_of(2) {
            aos_types::Role::User
        } else {
            aos_types::Role::Assistant
        },
        parts: vec![aos_types::Part::text(format!(
            "message {i}: a line of ordinary length, as people and models write them"
        ))],
        origin: aos_types::Origin::Human,
        extra: Default::default(),
    };
    for b in 0..100 {
        let batch = (0..100).map(|i| turn(b * 100 + i)).collect();
        k.store().append(&sid, None, batch).await?;
    }
    let err = |e: aos_types::SyscallError| fail!("{e}");
    // The floor for an engine that reads history through syscalls: the
    // 10 000 messages as the kernel answers them, in pages of 1 000, as text.
    let mut reads = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let mut from = 1;
        while from <= 10_000 {
            let req = json!({"op": "session.history.list", "sessionId": sid, "fromSeq": from, "limit": 1000});
            match k
                .syscall(&Principal::Operator, Request::from_value(req)?)
                .await
            {
                aos_types::Response::Ok { data, .. } => std::hint::black_box(data.to_string()),
                aos_types::Response::Err { error, .. } => return Err(fail!("{error}")),
            };
            from += 1000;
        }
        reads.push(t.elapsed());
    }
    // The session as a turn holds it (read once, not per assembly).
    let scb = k.store().session_get(&sid).await?;
    let mut rebuilds = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let len = k.assemble_context(&scb, "rebuild").await.map_err(err)?;
        rebuilds.push(t.elapsed());
        if len < 10_000 {
            return Err(fail!("the rebuild holds {len} messages, not 10 000"));
        }
    }
    let mut incremental = Vec::with_capacity(n);
    for i in 0..n {
        k.store().append(&sid, None, vec![turn(10_000 + i)]).await?;
        let t = Instant::now();
        k.assemble_context(&scb, "incremental").await.map_err(err)?;
        incremental.push(t.elapsed());
    }
    Ok(
        json!({ "rebuild10kMs": ms(percentile(rebuilds, 0.5)), "historyRead10kMs": ms(percentile(reads, 0.5)),
                "incrementalUs": us(percentile(incremental, 0.5)) }),
    )
}

/// `bash -c true` unconfined and sandboxed (the default policy of a session,
/// its cgroup included), alternating, in this process with a kernel and its
/// WASM services loaded — a daemon's memory, which a `fork` copies.
async fn spawn_figures(tmp: &Path, runs: usize) -> Result<Value> {
    let work = tmp.join("bash-work");
    std::fs::create_dir_all(&work)?;
    let policy = aos_sandbox::Policy {
        read_write: vec![work.clone()],
        api_port: Some(8420),
        ..aos_sandbox::Policy::new()
    };
    let cgroups = aos_sandbox::Cgroups::detect();
    let session = format!("bench-{}", std::process::id());
    let abi = aos_sandbox::effective_abi();
    let spec = |confinement| aos_bash::BashSpec {
        command: "true".into(),
        cwd: work.clone(),
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        timeout: Duration::from_secs(10),
        max_output: 1 << 20,
        pid_file: None,
        confinement,
    };
    // Once per dispatch: the policy compiled.
    let t = Instant::now();
    let prepared = aos_sandbox::Prepared::new(&policy, abi).map_err(|e| fail!("{e}"))?;
    let prepare = t.elapsed();
    let no_cgroup = aos_sandbox::Cgroups::none("measured without");
    let mut times: [Vec<Duration>; 3] = Default::default();
    for _ in 0..runs {
        for (i, groups) in [None, Some(&cgroups), Some(&no_cgroup)]
            .into_iter()
            .enumerate()
        {
            let (_tx, rx) = tokio::sync::watch::channel(false);
            let t = Instant::now();
            let c = match groups {
                Some(g) => Some(
                    prepared
                        .confinement(g, &session)
                        .map_err(|e| fail!("{e}"))?,
                ),
                None => None,
            };
            let r = aos_bash::run(spec(c), rx).await?;
            times[i].push(t.elapsed());
            if r.exit_code != 0 {
                return Err(fail!("`true` failed: {}", r.output));
            }
        }
    }
    cgroups.release(&session).await;
    let [plain, boxed, bare] = times.map(|t| percentile(t, 0.5));
    let ratio =
        |a: Duration| (a.as_secs_f64() / plain.as_secs_f64().max(1e-9) * 100.0).round() / 100.0;
    Ok(json!({
        "plainSpawnUs": us(plain), "sandboxedSpawnUs": us(boxed), "ratio": ratio(boxed),
        "sandboxedNoCgroupUs": us(bare), "noCgroupRatio": ratio(bare),
        "prepareUs": us(prepare), "landlockAbi": abi, "cgroup": cgroups.available(), "runs": runs,
    }))
}

/// ReAct turns against the scripted OpenAI server (answering at once) with
/// `true` as the command: the time of a turn, of its LLM round trip and of its
/// bash run alone, the kernel's share (the rest), and the throughput of 64
/// sessions in parallel. The skills are the built-in ones with the default
/// rules of `aoscb.json`: sessions bootstrap as a daemon's do, and the
/// default context engine (`aos-context`) assembles every turn.
async fn turn_figures(tmp: &Path, skills: &Path, turns: usize) -> Result<Value> {
    use aos_llm_script::{Reply, ScriptedLlm};
    let llm = ScriptedLlm::start(Vec::new()).await;
    let store = aos_store::Store::open(&format!("sqlite://{}/turns.db", tmp.display())).await?;
    let config = KernelConfig {
        defaults: AoscbDefaults {
            max_turns: 100_000,
            ..AoscbDefaults::from_json(AOSCB_JSON).map_err(|e| fail!("{e}"))?
        },
        ..KernelConfig::embedded(tmp.to_path_buf(), vec![skills.to_path_buf()])
    };
    let drivers: Vec<Arc<dyn ServiceDriver>> = vec![Arc::new(wasm_host(tmp)?)];
    let runner = react(aos_llm::LlmConfig {
        base_url: llm.url(),
        ..Default::default()
    })?;
    let k = Kernel::start(store, config, drivers, runner)
        .await
        .map_err(|e| fail!("{e}"))?;
    // One session, `turns` tool turns then an answer.
    llm.push(
        (0..turns)
            .map(|i| Reply::bash(&format!("c{i}"), "true"))
            .chain([Reply::text("done")]),
    );
    let sid = new_session(&k).await?;
    let t = Instant::now();
    run_dispatch(&k, &sid).await?;
    let per_turn = t.elapsed() / (turns as u32 + 1);
    // The parts alone: an LLM round trip, and `bash -c true`.
    let client = aos_llm::LlmClient::new(aos_llm::LlmConfig {
        base_url: llm.url(),
        ..Default::default()
    })
    .map_err(|e| fail!("{e}"))?;
    let req = aos_llm::ChatRequest {
        model: "m".into(),
        messages: vec![aos_llm::message(&json!({"role": "user", "content": "x"}))],
        ..Default::default()
    };
    let mut llm_times = Vec::new();
    for _ in 0..turns {
        llm.push([Reply::bash("c", "true")]);
        let t = Instant::now();
        client
            .chat(&req, None, |_| {})
            .await
            .map_err(|e| fail!("{e}"))?;
        llm_times.push(t.elapsed());
    }
    let mut bash_times = Vec::new();
    for _ in 0..turns {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let spec = aos_bash::BashSpec {
            command: "true".into(),
            cwd: tmp.to_path_buf(),
            env: vec![],
            timeout: Duration::from_secs(10),
            max_output: 1 << 20,
            pid_file: None,
            confinement: None,
        };
        let t = Instant::now();
        aos_bash::run(spec, rx).await?;
        bash_times.push(t.elapsed());
    }
    let (llm_p50, bash_p50) = (percentile(llm_times, 0.5), percentile(bash_times, 0.5));
    let overhead = per_turn.saturating_sub(llm_p50 + bash_p50);
    // 64 sessions in parallel.
    let sessions = 64;
    let each = (turns / 4).max(2);
    llm.push(
        (0..sessions * each)
            .map(|i| Reply::bash(&format!("p{i}"), "true"))
            .chain((0..sessions).map(|_| Reply::text("done"))),
    );
    let mut ids = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        ids.push(new_session(&k).await?);
    }
    let t = Instant::now();
    let runs: Vec<_> = ids
        .into_iter()
        .map(|sid| {
            let k = k.clone();
            tokio::spawn(async move { run_dispatch(&k, &sid).await })
        })
        .collect();
    for r in runs {
        r.await
            .map_err(|e| fail!("a bench dispatch panicked: {e}"))??;
    }
    let total_turns = (sessions * each + sessions) as f64;
    let per_sec = total_turns / t.elapsed().as_secs_f64();
    Ok(json!({
        "totalUs": us(per_turn), "llmUs": us(llm_p50), "bashUs": us(bash_p50),
        "kernelOverheadUs": us(overhead), "turnsPerSec": per_sec.round(), "parallelSessions": sessions,
    }))
}

/// A new agent and session; returns the session id.
async fn new_session(k: &Kernel) -> Result<String> {
    let agent = call(k, json!({"op": "agent.create"})).await?;
    let s = call(
        k,
        json!({"op": "session.create", "agentId": agent["agentId"]}),
    )
    .await?;
    Ok(s["sessionId"].as_str().unwrap_or_default().to_string())
}

/// One dispatch, waited for.
async fn run_dispatch(k: &Kernel, sid: &str) -> Result<()> {
    let d = call(
        k,
        json!({"op": "session.dispatch", "sessionId": sid, "queue": true,
                            "message": {"role": "user", "content": "go"}}),
    )
    .await?;
    let w = call(
        k,
        json!({"op": "session.wait", "dispatchId": d["dispatchId"], "timeoutMs": 600000}),
    )
    .await?;
    if w["status"] != "completed" {
        return Err(fail!("bench dispatch ended {}", w["status"]));
    }
    Ok(())
}

/// The daemon's runner (the ReActUnit) on the LLM endpoint of `llm`.
fn react(llm: aos_llm::LlmConfig) -> Result<Arc<dyn aos_kernel::Runner>> {
    aos_react::ReactUnit::runner(llm).map_err(|e| fail!("cannot set up the LLM client: {e}"))
}
