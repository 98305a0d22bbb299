//! The syscall door handed to a service: every call runs as the service's
//! principal, through [`Kernel::syscall`]. Holds the kernel weakly, so a
//! service never keeps it alive.

use crate::kernel::WeakKernel;
use crate::services::SyscallPort;
use crate::{Kernel, Principal};
use aos_store::NewLogEntry;
use aos_types::{Data, ErrorCode, Request, Response, SyscallError};
use futures::future::BoxFuture;
use serde_json::{Value, json};

/// The syscall door handed to a service: every call runs as the service's
/// principal. Holds the kernel weakly, so a service never keeps it alive.
pub(crate) struct KernelPort {
    kernel: WeakKernel,
    principal: Principal,
}

impl KernelPort {
    pub(crate) fn new(k: &Kernel, principal: Principal) -> Self {
        KernelPort {
            kernel: k.downgrade(),
            principal,
        }
    }
}

impl SyscallPort for KernelPort {
    fn exited(&self, reason: String) {
        let (Some(k), Principal::Service(g)) = (self.kernel.upgrade(), &self.principal) else {
            return;
        };
        let instance_id = g.instance_id.clone();
        tokio::spawn(async move {
            super::exited(&k, &instance_id, reason).await;
        });
    }

    fn denied(&self, capability: &str, fix: String) {
        let Some(k) = self.kernel.upgrade() else {
            return;
        };
        let (owner_type, owner_id) = self.principal.log_owner();
        let entry = NewLogEntry {
            level: "warn",
            op: "capability.denied".into(),
            owner_type: owner_type.to_string(),
            owner_id,
            agent_id: None,
            session_id: None,
            refs: None,
            data: Some(json!({ "capability": capability, "fix": fix })),
        };
        tracing::warn!(capability, %fix, "capability denied");
        tokio::spawn(async move {
            if let Err(e) = k.store().log_append(entry).await {
                tracing::error!(error = %e, "cannot write the RuntimeLog");
            }
        });
    }

    fn call(&self, op: String, payload: String) -> BoxFuture<'static, Result<Data, SyscallError>> {
        let kernel = self.kernel.clone();
        let principal = self.principal.clone();
        Box::pin(async move {
            let kernel = kernel.upgrade().ok_or_else(|| {
                SyscallError::new(ErrorCode::Unavailable, "the kernel is stopping")
            })?;
            let mut params = match serde_json::from_str::<Value>(&payload) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err(SyscallError::invalid("the payload must be a JSON object")),
                Err(e) => {
                    return Err(SyscallError::invalid(format!(
                        "the payload is not valid JSON: {e}"
                    )));
                }
            };
            params.insert("op".into(), Value::String(op));
            let req = Request::from_value(Value::Object(params))?;
            let call = kernel.syscall(&principal, req);
            let response = match &principal {
                Principal::Service(g) => crate::hooks::within_service(&g.instance_id, call).await,
                _ => call.await,
            };
            match response {
                Response::Ok { data, .. } => Ok(data),
                Response::Err { error, .. } => Err(error),
            }
        })
    }
}
