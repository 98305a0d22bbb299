//! The `aos:kernel@0.1.0` world: its bindings, and the calls into its
//! exports. Frozen: components built against it keep working unchanged.
//!
//! Everything it shares with the latest version delegates to
//! [`crate::v0_2`] through `From` conversions of the (identical) types: its
//! `syscall` and `log` imports are the latest's, and its replies are mapped
//! by the latest's functions.

mod generated {
    wasmtime::component::bindgen!({
        path: "../aos-sdk/wit/since_v0.1",
        world: "skill-service",
        imports: {
            "aos:kernel/log.write": trappable,
            default: async | trappable,
        },
        exports: { default: async },
    });
}

use crate::state::HostState;
use crate::v0_2 as latest;
use crate::world::{Call, Reply};
use aos_extension::ServiceOwner;
use generated::aos::kernel::{log, syscall, types};
pub(crate) use generated::{SkillService, SkillServicePre};
use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker};

/// The version's number, as in its package name.
pub(crate) const VERSION: &str = "0.1.0";

/// The version's imports.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    SkillService::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}

/// Runs `call` on the exports of a 0.1.0 component.
pub(crate) async fn call(
    b: &SkillService,
    store: &mut Store<HostState>,
    call: Call<'_>,
) -> wasmtime::Result<Reply> {
    let svc = b.aos_kernel_service();
    Ok(match call {
        Call::Init { owner, config } => {
            let r = svc.call_init(store, &owner_of(owner), config).await?;
            latest::registration(r.map(|r| latest::types::Registration {
                hooks: r.hooks,
                events: r.events,
            }))
        }
        Call::Admit(c) => {
            let v = svc
                .call_admit(store, c.hook, c.input.text(), c.output)
                .await?;
            latest::verdict(v.into())
        }
        Call::Transform(c) => Reply::Transform(
            svc.call_transform(store, c.hook, c.input.text(), c.output)
                .await?,
        ),
        Call::Event { name, payload, .. } => {
            svc.call_on_event(store, name, payload).await?;
            Reply::Event
        }
        Call::Invoke { args, stdin, .. } => {
            let r = svc.call_invoke(store, args, stdin).await?;
            latest::invoke_reply(r.map(|o| latest::types::InvokeOutput {
                exit_code: o.exit_code,
                stdout: o.stdout,
                stderr: o.stderr,
            }))
        }
        Call::Shutdown => {
            svc.call_shutdown(store).await?;
            Reply::Shutdown
        }
    })
}

fn owner_of(owner: &ServiceOwner) -> types::Owner {
    let o = latest::owner_of(owner);
    let kind = match o.kind {
        latest::types::OwnerKind::System => types::OwnerKind::System,
        latest::types::OwnerKind::Agent => types::OwnerKind::Agent,
        latest::types::OwnerKind::Session => types::OwnerKind::Session,
    };
    types::Owner { kind, id: o.id }
}

impl From<types::Verdict> for latest::types::Verdict {
    fn from(v: types::Verdict) -> Self {
        match v {
            types::Verdict::Allow(v) => latest::types::Verdict::Allow(v),
            types::Verdict::Reject(r) => latest::types::Verdict::Reject(r),
        }
    }
}

impl From<latest::types::SyscallError> for types::SyscallError {
    fn from(e: latest::types::SyscallError) -> Self {
        types::SyscallError {
            code: e.code,
            message: e.message,
            details: e.details,
        }
    }
}

impl From<log::Level> for latest::log::Level {
    fn from(l: log::Level) -> Self {
        match l {
            log::Level::Trace => latest::log::Level::Trace,
            log::Level::Debug => latest::log::Level::Debug,
            log::Level::Info => latest::log::Level::Info,
            log::Level::Warn => latest::log::Level::Warn,
            log::Level::Error => latest::log::Level::Error,
        }
    }
}

impl types::Host for HostState {}

impl syscall::Host for HostState {
    async fn call(
        &mut self,
        op: String,
        payload: String,
    ) -> wasmtime::Result<Result<String, types::SyscallError>> {
        let r = latest::syscall::Host::call(self, op, payload).await?;
        Ok(r.map_err(Into::into))
    }
}

impl log::Host for HostState {
    fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        latest::log::Host::write(self, level.into(), message)
    }
}
