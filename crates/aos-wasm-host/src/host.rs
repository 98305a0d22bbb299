//! [`WasmHost`]: the engine, the linker, the component cache, the epoch
//! ticker, and the kernel's `ServiceDriver` for `.wasm` services.

use crate::cache::{self, DiskCache, Origin};
use crate::instance::{InstanceSpec, WasmService};
use crate::state::HostState;
use crate::world::{self, Pre};
use aos_extension::{ServiceDriver, ServiceInstance, ServiceStart};
use aos_manifest::ServiceKind;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::Engine;
use wasmtime::component::Linker;

/// One epoch tick; deadlines are counted in ticks.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// How the host is set up.
#[derive(Debug, Clone)]
pub struct WasmHostConfig {
    /// Where compiled components are cached (`$AOS_HOME/cache`); their
    /// key is `<cache_dir>.key`.
    pub cache_dir: PathBuf,
    /// Use the pooling instance allocator (faster instantiation, reserves
    /// address space up front).
    pub pooling: bool,
    /// Call a component that imports nothing that can wait directly, on
    /// the caller's stack; when off, every component is called on a fiber
    /// of its own (`AOS_WASM_DIRECT=0` in the daemon; benchmarks compare).
    pub direct_calls: bool,
    /// Components compiled when this program was built, by key
    /// ([`aos_wasm_engine::key`]): the built-in skills' (`aos-builtins`).
    /// A component whose key is here loads without compiling or touching
    /// the disk cache.
    pub precompiled: &'static [(&'static str, &'static [u8])],
}

/// The skill host. Cheap to clone.
#[derive(Clone)]
pub struct WasmHost {
    inner: Arc<Inner>,
}

struct Inner {
    /// Components of skills without `limits.fuel`.
    plain: Runtime,
    /// Components of skills with `limits.fuel`: the engine meters fuel, which
    /// costs a check in every basic block of the guest (~15 % of a
    /// CPU-bound call), so only skills that ask for a fuel limit pay it.
    metered: Runtime,
    cache: DiskCache,
    precompiled: &'static [(&'static str, &'static [u8])],
}

/// An engine, its linkers and its pre-instantiated components.
struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    /// The same imports for components called directly (`direct.rs`),
    /// unless direct calls are off.
    direct: Option<Linker<HostState>>,
    /// Pre-instantiated components by content key.
    pres: Mutex<HashMap<String, Pre>>,
}

impl Runtime {
    fn new(cfg: &WasmHostConfig, fuel: bool) -> wasmtime::Result<Runtime> {
        let mut c = aos_wasm_engine::config(aos_wasm_engine::EngineOptions {
            fuel,
            pooling: cfg.pooling,
        });
        // Names guest functions for `perf` (a `/tmp/perf-PID.map`), so a
        // profile shows where a skill's hook time goes (docs/performance.md).
        if std::env::var_os("AOS_WASM_PERFMAP").is_some() {
            c.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&c)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        crate::names::add_to_linker(&mut linker)?;
        world::add_to_linker(&mut linker)?;
        let direct = if cfg.direct_calls {
            let mut direct = linker.clone();
            crate::direct::add_to_linker(&mut direct)?;
            Some(direct)
        } else {
            None
        };
        Ok(Runtime {
            engine,
            linker,
            direct,
            pres: Mutex::new(HashMap::new()),
        })
    }
}

impl WasmHost {
    /// Creates the engines and linkers, opens the compile cache (creating
    /// its key) and starts the epoch ticker.
    pub fn new(cfg: WasmHostConfig) -> wasmtime::Result<WasmHost> {
        let cache = DiskCache::open(cfg.cache_dir.clone())?;
        let plain = Runtime::new(&cfg, false)?;
        let metered = Runtime::new(&cfg, true)?;
        spawn_ticker(&[&plain.engine, &metered.engine]);
        Ok(WasmHost {
            inner: Arc::new(Inner {
                plain,
                metered,
                cache,
                precompiled: cfg.precompiled,
            }),
        })
    }

    /// The engine of components without a fuel limit.
    pub fn engine(&self) -> &Engine {
        &self.inner.plain.engine
    }

    /// Loads a component (from the disk cache when possible) for the engine
    /// with fuel metering or without, type-checks its imports against the
    /// host once, and returns its pre-instantiation.
    pub(crate) fn prepare(&self, path: &Path, fuel: bool) -> wasmtime::Result<(Pre, Origin)> {
        let rt = if fuel {
            &self.inner.metered
        } else {
            &self.inner.plain
        };
        let bytes = cache::read(path)?;
        let key = aos_wasm_engine::key(&rt.engine, &bytes);
        if let Some(pre) = rt.pres.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok((pre, Origin::Cached));
        }
        let (component, origin) = match cache::embedded(self.inner.precompiled, &rt.engine, &key) {
            Some(component) => (component, Origin::Embedded),
            None => self.inner.cache.load(&rt.engine, &bytes, &key)?,
        };
        let pre = match &rt.direct {
            Some(direct) if !crate::direct::can_wait(&component, &rt.engine) => {
                Pre::new(direct.instantiate_pre(&component)?, &rt.engine, true)?
            }
            _ => Pre::new(rt.linker.instantiate_pre(&component)?, &rt.engine, false)?,
        };
        if let Ok(mut m) = rt.pres.lock() {
            m.insert(key, pre.clone());
        }
        Ok((pre, origin))
    }

    /// Loads a component as a service start does — from the program's
    /// precompiled table, else the disk cache, else compiling (and caching)
    /// it — bypassing the in-memory table of pre-instantiations; says which
    /// served it. (Benchmarks and diagnostics.)
    pub fn load(&self, path: &Path) -> Result<Origin, String> {
        let run = || -> wasmtime::Result<Origin> {
            let engine = self.engine();
            let bytes = cache::read(path)?;
            let key = aos_wasm_engine::key(engine, &bytes);
            if cache::embedded(self.inner.precompiled, engine, &key).is_some() {
                return Ok(Origin::Embedded);
            }
            let (_, origin) = self.inner.cache.load(engine, &bytes, &key)?;
            Ok(origin)
        };
        run().map_err(|e| format!("{e:#}"))
    }

    /// Instantiates `path` `n` times from its pre-instantiation, with no
    /// capabilities, and returns how long each instantiation took.
    /// (Benchmarks and diagnostics.)
    pub async fn time_instantiation(&self, path: &Path, n: usize) -> Result<Vec<Duration>, String> {
        let (pre, _) = self.prepare(path, false).map_err(|e| format!("{e:#}"))?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let mut store = wasmtime::Store::new(self.engine(), HostState::bare());
            store.set_epoch_deadline(1000);
            let t = std::time::Instant::now();
            pre.instantiate(&mut store)
                .await
                .map_err(|e| format!("{e:#}"))?;
            out.push(t.elapsed());
        }
        Ok(out)
    }
}

/// Advances the engines' epochs every [`TICK`] for as long as they live.
fn spawn_ticker(engines: &[&Engine]) {
    let weak: Vec<_> = engines.iter().map(|e| e.weak()).collect();
    let spawned = std::thread::Builder::new()
        .name("aos-wasm-epoch".into())
        .spawn(move || {
            loop {
                let live: Vec<Engine> = weak.iter().filter_map(|w| w.upgrade()).collect();
                if live.is_empty() {
                    break;
                }
                live.iter().for_each(Engine::increment_epoch);
                drop(live);
                std::thread::sleep(TICK);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the epoch thread: WASM deadlines will not fire");
    }
}

impl ServiceDriver for WasmHost {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Wasm
    }

    fn start(
        &self,
        spec: ServiceStart,
    ) -> BoxFuture<'static, Result<Arc<dyn ServiceInstance>, String>> {
        let host = self.clone();
        Box::pin(async move {
            let path = match &spec.skill.service {
                Some(s) => spec.skill_dir.join(&s.path),
                None => return Err(format!("skill {} has no service", spec.skill.name)),
            };
            let started = std::time::Instant::now();
            let fuel = spec.skill.capabilities.limits.fuel.is_some();
            let prepared = tokio::task::spawn_blocking({
                let host = host.clone();
                move || host.prepare(&path, fuel)
            })
            .await
            .map_err(|e| e.to_string())?;
            let (pre, origin) =
                prepared.map_err(|e| format!("cannot load the component: {e:#}"))?;
            tracing::debug!(skill = %spec.skill.name, ?origin, version = pre.version(), elapsed = ?started.elapsed(), "component ready");
            let net = crate::caps::resolve_net(&spec.skill.capabilities.net).await;
            let service = WasmService::start(InstanceSpec {
                pre,
                start: spec,
                net,
            })
            .await?;
            Ok(Arc::new(service) as Arc<dyn ServiceInstance>)
        })
    }
}
