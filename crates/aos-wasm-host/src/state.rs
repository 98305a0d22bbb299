//! The per-instance store data and the host side of the imports, shared by
//! every version of the world (each version's module converts its types).

use crate::budget::Budget;
use aos_extension::{HookInput, LogRate, SyscallPort};
use aos_types::{Data, ErrorCode, SyscallError};
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Longest log line kept, in bytes.
const MAX_LOG_LINE: usize = 64 * 1024;

/// What one instance's store holds.
pub(crate) struct HostState {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limits: Budget,
    pub skill: String,
    pub port: Arc<dyn SyscallPort>,
    /// Who ran the command in progress (JSON), while an `invoke` runs.
    pub caller: Option<String>,
    /// The input of the hook call in progress (JSON), while an `admit` or
    /// `transform` of a 0.2.0 component runs.
    pub input: Option<HookInput>,
    /// The `log` import's budget.
    pub log_rate: LogRate,
    /// The host names the instance may resolve (`capabilities.net`).
    pub net_names: std::sync::Arc<std::collections::HashSet<String>>,
}

impl HostState {
    /// A state with no capabilities and a kernel that refuses every syscall.
    pub(crate) fn bare() -> HostState {
        HostState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: Budget::mb(4096),
            skill: "bare".into(),
            port: Arc::new(NoKernel),
            caller: None,
            input: None,
            log_rate: LogRate::default(),
            net_names: Default::default(),
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

impl HostState {
    /// The `syscall` import of every version: `service.caller` is answered
    /// here (while a command runs); every other op goes to the kernel, which
    /// checks the skill's rights.
    pub(crate) async fn syscall(
        &mut self,
        op: String,
        payload: String,
    ) -> Result<String, SyscallError> {
        if op == aos_types::CALLER_OP {
            return self.caller.clone().ok_or_else(|| {
                SyscallError::new(
                    ErrorCode::RequestInvalid,
                    format!("{op} answers only while a command (`invoke`) runs"),
                )
            });
        }
        self.port.call(op, payload).await.map(Data::into_json)
    }

    /// The `hook.input` import (0.2.0 on): the input of the hook call in
    /// progress, `null` outside one.
    pub(crate) fn hook_input(&self) -> String {
        self.input
            .as_ref()
            .map_or_else(|| "null".to_string(), |i| i.text().clone())
    }

    /// The `log` import of every version: one line to the daemon's logs,
    /// with the skill's name, cut at [`MAX_LOG_LINE`] bytes, within the
    /// service's rate ([`aos_extension::LINES_PER_SECOND`]).
    pub(crate) fn log(&mut self, level: tracing::Level, mut message: String) {
        let logged = self.log_rate.admit();
        if let Some((dropped, _)) = self.log_rate.report() {
            tracing::warn!(skill = %self.skill, dropped, "log lines dropped (over the rate)");
        }
        if !logged {
            return;
        }
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let skill = self.skill.as_str();
        match level {
            tracing::Level::TRACE => tracing::trace!(skill, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(skill, "{message}"),
            tracing::Level::INFO => tracing::info!(skill, "{message}"),
            tracing::Level::WARN => tracing::warn!(skill, "{message}"),
            tracing::Level::ERROR => tracing::error!(skill, "{message}"),
        }
    }
}
