//! The versions of the `aos:kernel` world a component may be built against,
//! behind one face. Each version has its own module (bindings, imports,
//! calls into its exports); a component is bound to the version of the
//! `service` interface it exports, so a component built against an older
//! version keeps working beside newer ones (docs/skill-authoring.md,
//! "Versions of the interface").

use crate::state::HostState;
use crate::{v0_1, v0_2};
use aos_extension::{AdmitReply, HookInput, InvokeReply, Registration, ServiceOwner};
use wasmtime::component::{InstancePre, Linker};
use wasmtime::{Engine, Store};

/// One call into a component's `service` export, version-neutral.
pub(crate) enum Call<'a> {
    Init {
        owner: &'a ServiceOwner,
        config: &'a String,
    },
    Admit(HookCall<'a>),
    Transform(HookCall<'a>),
    Event {
        name: &'a String,
        /// Its index in the registration's `events`.
        index: u32,
        payload: &'a String,
    },
    Invoke {
        args: &'a [String],
        stdin: Option<&'a str>,
        /// Who ran the command (JSON), answered by `service.caller` while
        /// it runs.
        caller: String,
    },
    Shutdown,
}

/// An admission or transform hook call.
pub(crate) struct HookCall<'a> {
    /// Its name, for 0.1.0 components.
    pub hook: &'a str,
    /// Its index in the registration's `hooks`, for 0.2.0 on.
    pub index: u32,
    pub input: HookInput,
    pub output: &'a String,
}

/// A call's answer, version-neutral.
pub(crate) enum Reply {
    Init(Result<Registration, String>),
    Admit(AdmitReply),
    Transform(Result<String, String>),
    Event,
    Invoke(Result<InvokeReply, String>),
    Shutdown,
}

/// Every version's imports, in one linker (their names carry the version).
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v0_1::add_to_linker(linker)?;
    v0_2::add_to_linker(linker)
}

/// A component's pre-instantiation, bound to the version it exports.
#[derive(Clone)]
pub(crate) enum Pre {
    V0_1(v0_1::SkillServicePre<HostState>),
    V0_2(v0_2::SkillServicePre<HostState>),
    /// A 0.2.0 component that imports nothing that can wait, linked for
    /// direct calls (`direct.rs`).
    V0_2Direct(v0_2::SkillServicePre<HostState>),
}

/// A live instance's exports.
pub(crate) enum Exports {
    V0_1(v0_1::SkillService),
    V0_2(v0_2::SkillService),
    /// A 0.2.0 component that imports nothing that can wait: called
    /// directly, on the caller's stack.
    V0_2Direct(v0_2::DirectService),
}

impl Pre {
    /// Binds `pre` to the newest version whose `service` it exports; a
    /// 0.2.0 component linked for `direct` calls gets them (0.1.0 ones are
    /// always called on a fiber).
    pub(crate) fn new(
        pre: InstancePre<HostState>,
        engine: &Engine,
        direct: bool,
    ) -> wasmtime::Result<Pre> {
        let exports: Vec<String> = pre
            .component()
            .component_type()
            .exports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let exported = |version: &str| exports.iter().any(|e| e == &service_export(version));
        if exported(v0_2::VERSION) {
            let pre = v0_2::SkillServicePre::new(pre)?;
            Ok(if direct {
                Pre::V0_2Direct(pre)
            } else {
                Pre::V0_2(pre)
            })
        } else if exported(v0_1::VERSION) {
            Ok(Pre::V0_1(v0_1::SkillServicePre::new(pre)?))
        } else {
            Err(wasmtime::format_err!(
                "the component exports neither `{}` nor `{}` (it exports: {}); build it with the aos-sdk crate (docs/skill-authoring.md)",
                service_export(v0_2::VERSION),
                service_export(v0_1::VERSION),
                if exports.is_empty() {
                    "nothing".to_string()
                } else {
                    exports.join(", ")
                }
            ))
        }
    }

    /// The version of the world the component is bound to.
    pub(crate) fn version(&self) -> &'static str {
        match self {
            Pre::V0_1(_) => v0_1::VERSION,
            Pre::V0_2(_) | Pre::V0_2Direct(_) => v0_2::VERSION,
        }
    }

    pub(crate) fn engine(&self) -> &Engine {
        match self {
            Pre::V0_1(p) => p.engine(),
            Pre::V0_2(p) | Pre::V0_2Direct(p) => p.engine(),
        }
    }

    /// Instantiates into `store`.
    pub(crate) async fn instantiate(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Exports> {
        Ok(match self {
            Pre::V0_1(p) => Exports::V0_1(p.instantiate_async(store).await?),
            Pre::V0_2(p) => Exports::V0_2(p.instantiate_async(store).await?),
            Pre::V0_2Direct(p) => Exports::V0_2Direct(v0_2::instantiate_direct(p, store)?),
        })
    }
}

impl Exports {
    /// Runs `call`. The outer error is a trap; a handler's own error is in
    /// the [`Reply`].
    pub(crate) async fn call(
        &self,
        store: &mut Store<HostState>,
        call: Call<'_>,
    ) -> wasmtime::Result<Reply> {
        let invoke = matches!(call, Call::Invoke { .. });
        if let Call::Invoke { caller, .. } = &call {
            store.data_mut().caller = Some(caller.clone());
        }
        let reply = match self {
            Exports::V0_1(b) => v0_1::call(b, store, call).await,
            Exports::V0_2(b) => v0_2::call(b, store, call).await,
            Exports::V0_2Direct(b) => v0_2::call_direct(b, store, call),
        };
        if invoke {
            store.data_mut().caller = None;
        }
        reply
    }
}

/// The name of the `service` export of `version`.
fn service_export(version: &str) -> String {
    format!("aos:kernel/service@{version}")
}
