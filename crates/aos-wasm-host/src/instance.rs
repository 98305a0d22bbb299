//! One running component instance: its store (WASI context, limits, epoch
//! deadline, fuel), the serialised calls into its exports, and the revival
//! of a trapped instance from its pre-instantiation.

use crate::bindings::aos::kernel::types;
use crate::bindings::{SkillService, SkillServicePre};
use crate::host::TICK;
use crate::state::HostState;
use aos_kernel::services::{
    AdmitReply, CallFault, InvokeReply, Registration, ServiceInstance, ServiceOwner, ServiceStart,
};
use futures::future::BoxFuture;
use futures::lock::Mutex;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimitsBuilder, Trap};

/// Linear memory cap when a skill sets none.
const DEFAULT_MEMORY_MB: u64 = 128;
/// Deadline of `init` and of instantiation when a skill sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// What it takes to (re)create an instance.
pub(crate) struct InstanceSpec {
    pub pre: SkillServicePre<HostState>,
    pub start: ServiceStart,
    pub net: HashSet<SocketAddr>,
}

struct Live {
    store: Store<HostState>,
    bindings: SkillService,
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
    closed: AtomicBool,
}

enum Call {
    Init,
    Admit(String, String, String),
    Transform(String, String, String),
    Event(String, String),
    Invoke(Vec<String>, Option<String>, String),
    Shutdown,
}

enum Reply {
    Init(Result<types::Registration, String>),
    Admit(types::Verdict),
    Transform(Result<String, String>),
    Event,
    Invoke(Result<types::InvokeOutput, String>),
    Shutdown,
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
            spec,
            live: Mutex::new(None),
            registration: Registration::default(),
            closed: AtomicBool::new(false),
        };
        let timeout = svc.timeout();
        match svc.run(Call::Init, timeout).await {
            Ok(Reply::Init(Ok(r))) => Ok(WasmService {
                registration: Registration {
                    hooks: r.hooks,
                    events: r.events,
                },
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

    fn owner(&self) -> types::Owner {
        let (kind, id) = match &self.spec.start.owner {
            ServiceOwner::System => (types::OwnerKind::System, None),
            ServiceOwner::Agent(a) => (types::OwnerKind::Agent, Some(a.clone())),
            ServiceOwner::Session(s) => (types::OwnerKind::Session, Some(s.clone())),
        };
        types::Owner { kind, id }
    }

    /// A fresh store and instance.
    async fn instantiate(&self) -> Result<Live, String> {
        let s = &self.spec.start;
        let wasi = crate::caps::wasi_ctx(
            &s.skill,
            &s.skill_dir,
            &s.home,
            self.spec.net.clone(),
            s.syscalls.clone(),
        )?;
        let memory_mb = s
            .skill
            .capabilities
            .limits
            .memory_mb
            .unwrap_or(DEFAULT_MEMORY_MB);
        let limits = StoreLimitsBuilder::new()
            .memory_size(usize::try_from(memory_mb << 20).unwrap_or(usize::MAX))
            .trap_on_grow_failure(true)
            .instances(64)
            .build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limits,
            skill: s.skill.name.clone(),
            port: s.syscalls.clone(),
            caller: None,
        };
        let mut store = Store::new(self.spec.pre.engine(), state);
        store.limiter(|st| &mut st.limits);
        store.epoch_deadline_trap();
        arm(&mut store, self.timeout(), s.skill.capabilities.limits.fuel);
        let bindings = self
            .spec
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| format!("instantiation failed: {}", classify(&e, self.timeout())))?;
        Ok(Live {
            store,
            bindings,
            busy: false,
        })
    }

    /// Runs one call, serialised with every other call into this instance.
    async fn run(&self, call: Call, timeout: Duration) -> Result<Reply, CallFault> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(CallFault::Gone("the service was stopped".into()));
        }
        let mut guard = self.live.lock().await;
        if guard.as_ref().is_none_or(|l| l.busy) {
            *guard = None;
            let mut live = self.instantiate().await.map_err(CallFault::Gone)?;
            if !matches!(call, Call::Init) {
                // A revived instance gets its init again (its registration is kept).
                let config = self.spec.start.config.to_string();
                live.busy = true;
                let owner = self.owner();
                let r = live
                    .bindings
                    .aos_kernel_service()
                    .call_init(&mut live.store, &owner, &config)
                    .await;
                live.busy = false;
                match r {
                    Ok(Ok(_)) => {}
                    Ok(Err(msg)) => {
                        return Err(CallFault::Gone(format!("init refused on restart: {msg}")));
                    }
                    Err(e) => return Err(classify(&e, timeout)),
                }
            }
            *guard = Some(live);
        }
        let Some(live) = guard.as_mut() else {
            return Err(CallFault::Gone("no instance".into()));
        };
        arm(
            &mut live.store,
            timeout,
            self.spec.start.skill.capabilities.limits.fuel,
        );
        live.busy = true;
        let Live {
            store, bindings, ..
        } = live;
        let svc = bindings.aos_kernel_service();
        let result = match call {
            Call::Init => {
                let config = self.spec.start.config.to_string();
                svc.call_init(&mut *store, &self.owner(), &config)
                    .await
                    .map(Reply::Init)
            }
            Call::Admit(h, i, o) => svc
                .call_admit(&mut *store, &h, &i, &o)
                .await
                .map(Reply::Admit),
            Call::Transform(h, i, o) => svc
                .call_transform(&mut *store, &h, &i, &o)
                .await
                .map(Reply::Transform),
            Call::Event(n, p) => svc
                .call_on_event(&mut *store, &n, &p)
                .await
                .map(|()| Reply::Event),
            Call::Invoke(a, s, caller) => {
                store.data_mut().caller = Some(caller);
                let r = svc.call_invoke(&mut *store, &a, s.as_deref()).await;
                store.data_mut().caller = None;
                r.map(Reply::Invoke)
            }
            Call::Shutdown => svc
                .call_shutdown(&mut *store)
                .await
                .map(|()| Reply::Shutdown),
        };
        match result {
            Ok(reply) => {
                live.busy = false;
                Ok(reply)
            }
            Err(e) => {
                // A trapped instance may not be entered again: start afresh next time.
                *guard = None;
                Err(classify(&e, timeout))
            }
        }
    }
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

fn unexpected() -> CallFault {
    CallFault::Trap("the component answered another call".into())
}

impl ServiceInstance for WasmService {
    fn registration(&self) -> Registration {
        self.registration.clone()
    }

    fn admit(
        &self,
        hook: String,
        input: String,
        output: String,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<AdmitReply, CallFault>> {
        Box::pin(async move {
            match self.run(Call::Admit(hook, input, output), timeout).await? {
                Reply::Admit(types::Verdict::Allow(v)) => Ok(AdmitReply::Allow(v)),
                Reply::Admit(types::Verdict::Reject(r)) => Ok(AdmitReply::Reject(r)),
                _ => Err(unexpected()),
            }
        })
    }

    fn transform(
        &self,
        hook: String,
        input: String,
        output: String,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<String, CallFault>> {
        Box::pin(async move {
            match self
                .run(Call::Transform(hook, input, output), timeout)
                .await?
            {
                Reply::Transform(r) => r.map_err(CallFault::Handler),
                _ => Err(unexpected()),
            }
        })
    }

    fn on_event(
        &self,
        name: String,
        payload: String,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<(), CallFault>> {
        Box::pin(async move {
            match self.run(Call::Event(name, payload), timeout).await? {
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
            let call = Call::Invoke(args, stdin, caller.to_string());
            match self.run(call, timeout).await? {
                Reply::Invoke(Ok(o)) => Ok(InvokeReply {
                    exit_code: o.exit_code,
                    stdout: o.stdout,
                    stderr: o.stderr,
                }),
                Reply::Invoke(Err(msg)) => Err(CallFault::Handler(msg)),
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
