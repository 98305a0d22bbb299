//! One running component instance: its store (WASI context, limits, epoch
//! deadline, fuel), the serialised calls into its exports, and the revival
//! of a trapped instance from its pre-instantiation.

use crate::host::TICK;
use crate::state::HostState;
use crate::world::{Call, Exports, HookCall, Pre, Reply};
use aos_extension::{
    AdmitReply, CallFault, HookInput, InvokeReply, Registration, ServiceInstance, ServiceStart,
};
use futures::future::BoxFuture;
use futures::lock::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap};

/// Linear memory cap when a skill sets none.
const DEFAULT_MEMORY_MB: u64 = 128;
/// Deadline of `init` and of instantiation when a skill sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// What it takes to (re)create an instance.
pub(crate) struct InstanceSpec {
    pub pre: Pre,
    pub start: ServiceStart,
    pub net: crate::caps::NetGrant,
}

struct Live {
    store: Store<HostState>,
    exports: Exports,
    /// Set while a call runs; still set if the call was abandoned (its future
    /// dropped), which makes the next call start from a fresh instance.
    busy: bool,
}

/// A component instance serving one service.
pub(crate) struct WasmService {
    spec: InstanceSpec,
    /// Every hook call into the instance passes this lock: futures' mutex,
    /// whose uncontended unlock is one atomic operation (tokio's takes its
    /// waiter list's lock on every release).
    live: Mutex<Option<Live>>,
    registration: Registration,
    /// The service's configuration, as the JSON text `init` gets.
    config: String,
    /// Whether calls reach the instance directly, on the caller's stack
    /// (`direct.rs`), or on a fiber; fixed by how the component was linked.
    direct: bool,
    closed: AtomicBool,
    /// Bytes of linear memory and tables its current instance holds.
    memory: Arc<AtomicUsize>,
}

fn classify(e: &wasmtime::Error, timeout: Duration) -> CallFault {
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => return CallFault::Timeout(timeout),
        Some(Trap::OutOfFuel) => return CallFault::Limit("fuel exhausted (limits.fuel)".into()),
        // The trap itself, without the wasm backtrace (that goes to the debug log).
        Some(trap) => {
            tracing::debug!("guest trap: {e:?}");
            return CallFault::Trap(format!("wasm trap: {trap}"));
        }
        None => {}
    }
    let text = e.root_cause().to_string();
    if text.contains("forcing trap when growing memory") || text.contains("exceeds memory limits") {
        CallFault::Limit(format!("memory limit (limits.memoryMb) reached: {text}"))
    } else {
        CallFault::Trap(text)
    }
}

impl WasmService {
    /// Instantiates and runs `init`.
    pub(crate) async fn start(spec: InstanceSpec) -> Result<WasmService, String> {
        let svc = WasmService {
            config: spec.start.config.to_string(),
            direct: matches!(spec.pre, Pre::V0_2Direct(_)),
            spec,
            live: Mutex::new(None),
            registration: Registration::default(),
            closed: AtomicBool::new(false),
            memory: Arc::default(),
        };
        let timeout = svc.timeout();
        match svc.run(svc.init(), timeout).await {
            Ok(Reply::Init(Ok(registration))) => Ok(WasmService {
                registration,
                ..svc
            }),
            Ok(Reply::Init(Err(msg))) => Err(format!("init refused: {msg}")),
            Ok(_) => Err("init answered out of turn".into()),
            Err(fault) => Err(format!("init failed: {fault}")),
        }
    }

    fn timeout(&self) -> Duration {
        let limits = &self.spec.start.skill.capabilities.limits;
        limits
            .hook_timeout_ms
            .map_or(DEFAULT_TIMEOUT, Duration::from_millis)
    }

    /// A fresh store and instance.
    async fn instantiate(&self) -> Result<Live, String> {
        let s = &self.spec.start;
        let wasi = crate::caps::wasi_ctx(
            &s.skill,
            &s.skill_dir,
            &s.home,
            &s.owner,
            self.spec.net.clone(),
            s.syscalls.clone(),
        )?;
        let memory_mb = s
            .skill
            .capabilities
            .limits
            .memory_mb
            .unwrap_or(DEFAULT_MEMORY_MB);
        let limits = crate::budget::Budget::mb(memory_mb).reporting(self.memory.clone());
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limits,
            skill: s.skill.name.clone(),
            port: s.syscalls.clone(),
            caller: None,
            input: None,
            log_rate: Default::default(),
            net_names: crate::names::declared(&s.skill.capabilities.net),
        };
        let mut store = Store::new(self.spec.pre.engine(), state);
        store.limiter(|st| &mut st.limits);
        store.epoch_deadline_trap();
        arm(&mut store, self.timeout(), s.skill.capabilities.limits.fuel);
        let exports = bounded(self.timeout(), self.spec.pre.instantiate(&mut store))
            .await
            .map_err(|e| format!("instantiation failed: {}", classify(&e, self.timeout())))?;
        Ok(Live {
            store,
            exports,
            busy: false,
        })
    }

    /// Runs one call, serialised with every other call into this instance.
    async fn run(&self, call: Call<'_>, timeout: Duration) -> Result<Reply, CallFault> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(CallFault::Gone("the service was stopped".into()));
        }
        let mut guard = self.live.lock().await;
        if guard.as_ref().is_none_or(|l| l.busy) {
            *guard = None;
            let mut live = self.instantiate().await.map_err(CallFault::Gone)?;
            if !matches!(call, Call::Init { .. }) {
                // A revived instance gets its init again (its registration is kept).
                live.busy = true;
                let r = bounded(timeout, live.exports.call(&mut live.store, self.init())).await;
                live.busy = false;
                match r {
                    Ok(Reply::Init(Ok(_))) => {}
                    Ok(Reply::Init(Err(msg))) => {
                        return Err(CallFault::Gone(format!("init refused on restart: {msg}")));
                    }
                    Ok(_) => return Err(unexpected()),
                    Err(e) => return Err(classify(&e, timeout)),
                }
            }
            *guard = Some(live);
        }
        let Some(live) = guard.as_mut() else {
            return Err(CallFault::Gone("no instance".into()));
        };
        self.arm(&mut live.store, timeout);
        live.busy = true;
        let reply = bounded(timeout, live.exports.call(&mut live.store, call)).await;
        settle(&mut guard, reply, timeout)
    }

    /// Runs a hook call at once, without a future, if the instance is
    /// called directly (`direct.rs`), live and free; else gives the call
    /// back (the kernel then makes it through [`WasmService::run`]).
    fn run_now<'c>(
        &self,
        call: Call<'c>,
        timeout: Duration,
    ) -> Result<Result<Reply, CallFault>, Call<'c>> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(call);
        }
        let Some(mut guard) = self.live.try_lock() else {
            return Err(call);
        };
        let Some(live) = guard.as_mut().filter(|l| !l.busy) else {
            return Err(call);
        };
        let Live { store, exports, .. } = live;
        let Exports::V0_2Direct(exports) = exports else {
            return Err(call);
        };
        self.arm(store, timeout);
        // No `busy` mark: a direct call cannot be abandoned half-way.
        let reply = crate::v0_2::call_direct(exports, store, call);
        Ok(settle(&mut guard, reply, timeout))
    }

    /// A hook call made `kind` answered at once ([`WasmService::run_now`])
    /// and read by `read`; `None` when it cannot be (at once for an
    /// instance called on a fiber).
    fn hook_now<'c, T>(
        &self,
        (hook, input, output): (&'c str, &HookInput, &'c String),
        timeout: Duration,
        kind: fn(HookCall<'c>) -> Call<'c>,
        read: fn(Reply) -> Result<T, CallFault>,
    ) -> Option<Result<T, CallFault>> {
        if !self.direct {
            return None;
        }
        let call = match self.hook_call(hook, input.clone(), output) {
            Ok(c) => kind(c),
            Err(fault) => return Some(Err(fault)),
        };
        Some(self.run_now(call, timeout).ok()?.and_then(read))
    }

    /// Sets the deadline and fuel of the next call into `store`.
    fn arm(&self, store: &mut Store<HostState>, timeout: Duration) {
        arm(
            store,
            timeout,
            self.spec.start.skill.capabilities.limits.fuel,
        );
    }

    /// The `init` call.
    fn init(&self) -> Call<'_> {
        Call::Init {
            owner: &self.spec.start.owner,
            config: &self.config,
        }
    }

    /// A hook call; `hook` is one of the registration's `hooks`.
    fn hook_call<'a>(
        &self,
        hook: &'a str,
        input: HookInput,
        output: &'a String,
    ) -> Result<HookCall<'a>, CallFault> {
        let index = position(&self.registration.hooks, hook)?;
        Ok(HookCall {
            hook,
            index,
            input,
            output,
        })
    }
}

/// The index of `name` in a registration list (how 0.2.0 components are
/// told which hook or event is called).
fn position(names: &[String], name: &str) -> Result<u32, CallFault> {
    names
        .iter()
        .position(|n| n == name)
        .and_then(|i| u32::try_from(i).ok())
        .ok_or_else(|| CallFault::Handler(format!("{name} is not in the service's registration")))
}

/// The outcome of a call into the instance in `guard`: a trapped instance
/// may not be entered again, and is dropped to start afresh next time.
fn settle(
    guard: &mut Option<Live>,
    reply: wasmtime::Result<Reply>,
    timeout: Duration,
) -> Result<Reply, CallFault> {
    match reply {
        Ok(reply) => {
            if let Some(live) = guard.as_mut() {
                live.busy = false;
            }
            Ok(reply)
        }
        Err(e) => {
            *guard = None;
            Err(classify(&e, timeout))
        }
    }
}

/// How long after its epoch deadline a call blocked outside wasm (a WASI
/// timer or stream, a syscall) is abandoned.
const WALL_SLACK: Duration = Duration::from_millis(50);

/// `call` with a wall-clock deadline: the epoch deadline stops a guest
/// that computes, but not one waiting in a host call; past `timeout` (and
/// [`WALL_SLACK`]) from its first wait the call is dropped as interrupted,
/// and its instance, left mid-call, is discarded by [`settle`].
async fn bounded<T>(
    timeout: Duration,
    call: impl std::future::Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    aos_extension::within(timeout + WALL_SLACK, call)
        .await
        .unwrap_or_else(|| Err(wasmtime::Error::new(Trap::Interrupt)))
}

/// Sets the deadline (in epoch ticks) and the fuel for the next call.
fn arm(store: &mut Store<HostState>, timeout: Duration, fuel: Option<u64>) {
    let ticks = (timeout.as_millis() / TICK.as_millis().max(1)) as u64 + 1;
    store.set_epoch_deadline(ticks);
    // A skill with a fuel limit runs on the metering engine (see `host.rs`).
    if let Some(f) = fuel {
        let _ = store.set_fuel(f);
    }
}

/// An admission call's answer.
fn admitted(reply: Reply) -> Result<AdmitReply, CallFault> {
    match reply {
        Reply::Admit(verdict) => Ok(verdict),
        _ => Err(unexpected()),
    }
}

/// A transform call's answer.
fn transformed(reply: Reply) -> Result<String, CallFault> {
    match reply {
        Reply::Transform(r) => r.map_err(CallFault::Handler),
        _ => Err(unexpected()),
    }
}

fn unexpected() -> CallFault {
    CallFault::Trap("the component answered another call".into())
}

impl ServiceInstance for WasmService {
    fn registration(&self) -> Registration {
        self.registration.clone()
    }

    fn runtime(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({
            "interface": format!("aos:kernel@{}", self.spec.pre.version()),
            "calls": if self.direct { "direct" } else { "fiber" },
            "memoryBytes": self.memory.load(Ordering::Relaxed),
        }))
    }

    fn admit<'a>(
        &'a self,
        hook: &'a str,
        input: HookInput,
        output: String,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<AdmitReply, CallFault>> {
        Box::pin(async move {
            let call = Call::Admit(self.hook_call(hook, input, &output)?);
            admitted(self.run(call, timeout).await?)
        })
    }

    fn admit_now(
        &self,
        hook: &str,
        input: &HookInput,
        output: &String,
        timeout: Duration,
    ) -> Option<Result<AdmitReply, CallFault>> {
        self.hook_now((hook, input, output), timeout, Call::Admit, admitted)
    }

    fn transform<'a>(
        &'a self,
        hook: &'a str,
        input: HookInput,
        output: String,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<String, CallFault>> {
        Box::pin(async move {
            let call = Call::Transform(self.hook_call(hook, input, &output)?);
            transformed(self.run(call, timeout).await?)
        })
    }

    fn transform_now(
        &self,
        hook: &str,
        input: &HookInput,
        output: &String,
        timeout: Duration,
    ) -> Option<Result<String, CallFault>> {
        self.hook_now((hook, input, output), timeout, Call::Transform, transformed)
    }

    fn on_event(
        &self,
        name: String,
        payload: String,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<(), CallFault>> {
        Box::pin(async move {
            let index = position(&self.registration.events, &name)?;
            let call = Call::Event {
                name: &name,
                index,
                payload: &payload,
            };
            match self.run(call, timeout).await? {
                Reply::Event => Ok(()),
                _ => Err(unexpected()),
            }
        })
    }

    fn invoke(
        &self,
        args: Vec<String>,
        stdin: Option<String>,
        caller: serde_json::Value,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<InvokeReply, CallFault>> {
        Box::pin(async move {
            let call = Call::Invoke {
                args: &args,
                stdin: stdin.as_deref(),
                caller: caller.to_string(),
            };
            match self.run(call, timeout).await? {
                Reply::Invoke(r) => r.map_err(CallFault::Handler),
                _ => Err(unexpected()),
            }
        })
    }

    fn shutdown(&self, timeout: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            if let Err(fault) = self.run(Call::Shutdown, timeout).await {
                tracing::debug!(skill = %self.spec.start.skill.name, %fault, "shutdown call failed");
            }
            self.closed.store(true, Ordering::SeqCst);
            *self.live.lock().await = None;
        })
    }
}
