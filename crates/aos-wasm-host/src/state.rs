//! The per-instance store data and the host side of the `syscall` and `log`
//! imports.

use crate::bindings::aos::kernel::{log, syscall, types};
use aos_kernel::services::SyscallPort;
use std::sync::Arc;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Longest log line kept, in bytes.
const MAX_LOG_LINE: usize = 64 * 1024;

/// What one instance's store holds.
pub(crate) struct HostState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limits: StoreLimits,
    pub skill: String,
    pub port: Arc<dyn SyscallPort>,
    /// Who ran the command in progress (JSON), while an `invoke` runs.
    pub caller: Option<String>,
}

impl HostState {
    /// A state with no capabilities and a kernel that refuses every syscall.
    pub(crate) fn bare() -> HostState {
        HostState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: wasmtime::StoreLimitsBuilder::new().build(),
            skill: "bare".into(),
            port: Arc::new(NoKernel),
            caller: None,
        }
    }
}

/// A syscall port for instances that may not call the kernel.
struct NoKernel;

impl SyscallPort for NoKernel {
    fn call(
        &self,
        op: String,
        _payload: String,
    ) -> futures::future::BoxFuture<'static, Result<aos_types::Data, aos_types::SyscallError>> {
        Box::pin(async move {
            Err(aos_types::SyscallError::new(
                aos_types::ErrorCode::PermissionDenied,
                format!("{op}: no kernel here"),
            ))
        })
    }

    fn denied(&self, _capability: &str, _fix: String) {}

    fn exited(&self, _reason: String) {}
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
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
        if op == aos_types::CALLER_OP {
            return Ok(self.caller.clone().ok_or_else(|| types::SyscallError {
                code: aos_types::ErrorCode::RequestInvalid.as_str().to_string(),
                message: format!("{op} answers only while a command (`invoke`) runs"),
                details: None,
            }));
        }
        match self.port.call(op, payload).await {
            Ok(data) => Ok(Ok(data.into_json())),
            Err(e) => Ok(Err(types::SyscallError {
                code: e.code.as_str().to_string(),
                message: e.message,
                details: e.details.map(|d| d.to_string()),
            })),
        }
    }
}

impl log::Host for HostState {
    async fn write(&mut self, level: log::Level, mut message: String) -> wasmtime::Result<()> {
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let skill = self.skill.as_str();
        match level {
            log::Level::Trace => tracing::trace!(skill, "{message}"),
            log::Level::Debug => tracing::debug!(skill, "{message}"),
            log::Level::Info => tracing::info!(skill, "{message}"),
            log::Level::Warn => tracing::warn!(skill, "{message}"),
            log::Level::Error => tracing::error!(skill, "{message}"),
        }
        Ok(())
    }
}
