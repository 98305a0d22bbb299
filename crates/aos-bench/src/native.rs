//! `hook.native`: the guard of `skills/my-guard`, compiled natively into this
//! binary and run as a service through the same hook engine as its WASM
//! build — what the component boundary costs over the same code called in
//! the daemon's own process.

use aos_extension::{
    AdmitReply, CallFault, HookInput, InvokeReply, Registration, ServiceDriver, ServiceInstance,
    ServiceStart,
};
use aos_manifest::ServiceKind;
use aos_sdk::{Input, Service, Value, Verdict};
use futures::future::BoxFuture;
use my_guard::Guard;
use std::sync::Arc;
use std::time::Duration;

/// Runs every service it is given as the native guard (the bench's own
/// kernel gives it one skill).
pub(super) struct NativeDriver;

impl ServiceDriver for NativeDriver {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Legacy
    }

    fn start(
        &self,
        _spec: ServiceStart,
    ) -> BoxFuture<'static, Result<Arc<dyn ServiceInstance>, String>> {
        Box::pin(async { Ok(Arc::new(NativeGuard) as Arc<dyn ServiceInstance>) })
    }
}

struct NativeGuard;

/// The guard's answer on `output`, as its WASM build gives it: the JSON text
/// first, the parsed value when it asks for it.
fn decide(output: &str) -> Result<AdmitReply, CallFault> {
    let input = Input::from(Value::Null);
    let verdict = match Guard.admit_json("tool.before", &input, output) {
        Some(v) => v,
        None => {
            let value = serde_json::from_str(output)
                .map_err(|e| CallFault::Handler(format!("output is not JSON: {e}")))?;
            Guard.admit("tool.before", &input, value)
        }
    };
    Ok(match verdict {
        Verdict::Allow => AdmitReply::Allow(None),
        Verdict::Rewrite(v) => AdmitReply::Allow(Some(v.to_string())),
        Verdict::Reject(reason) => AdmitReply::Reject(reason),
    })
}

impl ServiceInstance for NativeGuard {
    fn registration(&self) -> Registration {
        Registration {
            hooks: vec!["tool.before".into()],
            events: Vec::new(),
        }
    }

    fn admit<'a>(
        &'a self,
        _hook: &'a str,
        _input: HookInput,
        output: String,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<AdmitReply, CallFault>> {
        Box::pin(async move { decide(&output) })
    }

    fn admit_now(
        &self,
        _hook: &str,
        _input: &HookInput,
        output: &String,
        _timeout: Duration,
    ) -> Option<Result<AdmitReply, CallFault>> {
        Some(decide(output))
    }

    fn transform<'a>(
        &'a self,
        hook: &'a str,
        _input: HookInput,
        _output: String,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<String, CallFault>> {
        Box::pin(async move { Err(CallFault::Handler(format!("the guard has no {hook}"))) })
    }

    fn on_event(
        &self,
        _name: String,
        _payload: String,
        _timeout: Duration,
    ) -> BoxFuture<'_, Result<(), CallFault>> {
        Box::pin(async { Ok(()) })
    }

    fn invoke(
        &self,
        _args: Vec<String>,
        _stdin: Option<String>,
        _caller: serde_json::Value,
        _timeout: Duration,
    ) -> BoxFuture<'_, Result<InvokeReply, CallFault>> {
        Box::pin(async { Err(CallFault::Handler("the guard has no commands".into())) })
    }

    fn shutdown(&self, _timeout: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// `tool.before` into the WASM guard (already started on `k`) and into the
/// native one on a kernel of its own, in alternating blocks: their figures
/// and the ratio.
pub(super) async fn figures(
    tmp: &std::path::Path,
    n: usize,
    k: &aos_kernel::Kernel,
) -> crate::Result<(Vec<Duration>, Vec<Duration>)> {
    let root = tmp.join("native-skills");
    super::legacy_skill(
        &root,
        "native-guard",
        "service",
        b"",
        "capabilities:\n  hooks: [tool.before]\n",
    )?;
    let store = aos_store::Store::open(&format!("sqlite://{}/native.db", tmp.display())).await?;
    let config = aos_kernel::KernelConfig::embedded(tmp.to_path_buf(), vec![root]);
    let drivers: Vec<Arc<dyn ServiceDriver>> = vec![Arc::new(NativeDriver)];
    let native =
        aos_kernel::Kernel::start(store, config, drivers, super::react(Default::default())?)
            .await
            .map_err(|e| fail!("{e}"))?;
    super::call(
        &native,
        serde_json::json!({"op": "skill.start", "name": "native-guard"}),
    )
    .await?;
    let (mut wasm, mut local) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n.div_ceil(super::BLOCK) {
        wasm.extend(super::hook_times(k, super::BLOCK).await?);
        local.extend(super::hook_times(&native, super::BLOCK).await?);
    }
    native.stop_services().await;
    Ok((wasm, local))
}
