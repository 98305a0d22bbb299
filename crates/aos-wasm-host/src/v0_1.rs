//! The `aos:kernel@0.1.0` world: its bindings, its imports and the calls into
//! its exports. Frozen: components built against it keep working unchanged.
//!
//! The `syscall` import is async (it awaits the kernel), the others answer
//! at once; all are trappable: the outer `wasmtime::Result` is a trap, the
//! inner `Result` is the error the guest sees.

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
use crate::world::{Call, Reply};
use aos_extension::{AdmitReply, InvokeReply, Registration, ServiceOwner};
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
            Reply::Init(r.map(|r| Registration {
                hooks: r.hooks,
                events: r.events,
            }))
        }
        Call::Admit(c) => {
            let v = svc
                .call_admit(store, c.hook, c.input.text(), c.output)
                .await?;
            Reply::Admit(match v {
                types::Verdict::Allow(v) => AdmitReply::Allow(v),
                types::Verdict::Reject(r) => AdmitReply::Reject(r),
            })
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
            Reply::Invoke(r.map(|o| InvokeReply {
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
