//! The `aos:kernel@0.2.0` world: its bindings, its imports and the calls into
//! its exports. Hooks and events are named by their index in the
//! registration, and a hook's input waits in the store until the guest asks
//! for it (`hook.input`).
//!
//! The `syscall` import is async (it awaits the kernel), the others answer
//! at once; all are trappable: the outer `wasmtime::Result` is a trap, the
//! inner `Result` is the error the guest sees.
//!
//! A component that imports nothing that can wait (no `syscall`; see
//! `direct.rs`) is called directly, on the caller's stack
//! ([`call_direct`]); any other on a fiber of its own ([`call`]), so an
//! import can wait without blocking the thread.

mod generated {
    wasmtime::component::bindgen!({
        path: "../aos-sdk/wit/since_v0.2",
        world: "skill-service",
        imports: {
            "aos:kernel/hook.input": trappable,
            "aos:kernel/log.write": trappable,
            default: async | trappable,
        },
        exports: { default: async },
    });
}

/// The same world with direct (synchronous) calls into its exports; the
/// imports and types are those of [`generated`].
mod direct {
    wasmtime::component::bindgen!({
        path: "../aos-sdk/wit/since_v0.2",
        world: "skill-service",
        with: {
            "aos:kernel/types": super::generated::aos::kernel::types,
            "aos:kernel/syscall": super::generated::aos::kernel::syscall,
            "aos:kernel/hook": super::generated::aos::kernel::hook,
            "aos:kernel/log": super::generated::aos::kernel::log,
        },
        // The imports are `generated`'s, whose `syscall` is async.
        require_store_data_send: true,
    });
}

use crate::state::HostState;
use crate::world::{Call, Reply};
use aos_extension::{AdmitReply, InvokeReply, Registration, ServiceOwner};
pub(crate) use direct::SkillService as DirectService;
pub(crate) use generated::aos::kernel::{hook, log, syscall, types};
pub(crate) use generated::{SkillService, SkillServicePre};
use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker};

/// The version's number, as in its package name.
pub(crate) const VERSION: &str = "0.2.0";

/// The version's imports.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    SkillService::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}

/// Instantiates `pre` for direct calls (`Pre::V0_2Direct`: nothing it
/// imports can wait; wasmtime refuses a synchronous instantiation
/// otherwise).
pub(crate) fn instantiate_direct(
    pre: &SkillServicePre<HostState>,
    store: &mut Store<HostState>,
) -> wasmtime::Result<DirectService> {
    let instance = pre.instance_pre().instantiate(&mut *store)?;
    DirectService::new(store, &instance)
}

/// The body of [`call`] and [`call_direct`]: `$svc`'s calls, each followed
/// by `$($wait)*` (`.await` on a fiber, nothing for a direct call). A
/// hook's input is in the store for the length of the call.
macro_rules! dispatch {
    ($svc:ident, $store:ident, $call:ident $($wait:tt)*) => {
        Ok(match $call {
            Call::Init { owner, config } => {
                registration($svc.call_init($store, &owner_of(owner), config)$($wait)*?)
            }
            Call::Admit(c) => {
                $store.data_mut().input = Some(c.input);
                let v = $svc.call_admit(&mut *$store, c.index, c.output)$($wait)*;
                $store.data_mut().input = None;
                verdict(v?)
            }
            Call::Transform(c) => {
                $store.data_mut().input = Some(c.input);
                let r = $svc.call_transform(&mut *$store, c.index, c.output)$($wait)*;
                $store.data_mut().input = None;
                Reply::Transform(r?)
            }
            Call::Event { index, payload, .. } => {
                $svc.call_on_event($store, index, payload)$($wait)*?;
                Reply::Event
            }
            Call::Invoke { args, stdin, .. } => {
                invoke_reply($svc.call_invoke($store, args, stdin)$($wait)*?)
            }
            Call::Shutdown => {
                $svc.call_shutdown($store)$($wait)*?;
                Reply::Shutdown
            }
        })
    };
}

/// Runs `call` on the exports of a 0.2.0 component, on a fiber.
pub(crate) async fn call(
    b: &SkillService,
    store: &mut Store<HostState>,
    call: Call<'_>,
) -> wasmtime::Result<Reply> {
    let svc = b.aos_kernel_service();
    dispatch!(svc, store, call.await)
}

/// [`call`], made directly on the caller's stack (no fiber): for a
/// component instantiated by [`instantiate_direct`].
pub(crate) fn call_direct(
    b: &DirectService,
    store: &mut Store<HostState>,
    call: Call<'_>,
) -> wasmtime::Result<Reply> {
    let svc = b.aos_kernel_service();
    dispatch!(svc, store, call)
}

pub(crate) fn registration(r: Result<types::Registration, String>) -> Reply {
    Reply::Init(r.map(|r| Registration {
        hooks: r.hooks,
        events: r.events,
    }))
}

pub(crate) fn verdict(v: types::Verdict) -> Reply {
    Reply::Admit(match v {
        types::Verdict::Allow(v) => AdmitReply::Allow(v),
        types::Verdict::Reject(r) => AdmitReply::Reject(r),
    })
}

pub(crate) fn invoke_reply(r: Result<types::InvokeOutput, String>) -> Reply {
    Reply::Invoke(r.map(|o| InvokeReply {
        exit_code: o.exit_code,
        stdout: o.stdout,
        stderr: o.stderr,
    }))
}

pub(crate) fn owner_of(owner: &ServiceOwner) -> types::Owner {
    let (kind, id) = match owner {
        ServiceOwner::System => (types::OwnerKind::System, None),
        ServiceOwner::Agent(a) => (types::OwnerKind::Agent, Some(a.clone())),
        ServiceOwner::Session(s) => (types::OwnerKind::Session, Some(s.clone())),
    };
    types::Owner { kind, id }
}

impl types::Host for HostState {}

impl syscall::Host for HostState {
    async fn call(
        &mut self,
        op: String,
        payload: String,
    ) -> wasmtime::Result<Result<String, types::SyscallError>> {
        Ok(self
            .syscall(op, payload)
            .await
            .map_err(|e| types::SyscallError {
                code: e.code.as_str().to_string(),
                message: e.message,
                details: e.details.map(|d| d.to_string()),
            }))
    }
}

impl hook::Host for HostState {
    fn input(&mut self) -> wasmtime::Result<String> {
        Ok(self.hook_input())
    }
}

impl log::Host for HostState {
    fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Trace => tracing::Level::TRACE,
            log::Level::Debug => tracing::Level::DEBUG,
            log::Level::Info => tracing::Level::INFO,
            log::Level::Warn => tracing::Level::WARN,
            log::Level::Error => tracing::Level::ERROR,
        };
        self.log(level, message);
        Ok(())
    }
}
