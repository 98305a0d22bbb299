//! The hook engine is `aos-extension`'s (re-exported here under the
//! kernel's path); the kernel gives it the RuntimeLog as its [`FailureLog`].

pub use aos_extension::hooks::*;

use aos_store::{NewLogEntry, Store};
use futures::future::BoxFuture;
use serde_json::json;

/// Handler failures (`hook.failed`, level warn) and rejections
/// (`hook.rejected`, level info) written to the RuntimeLog.
pub(crate) struct RuntimeLog(pub Store);

impl FailureLog for RuntimeLog {
    fn hook_failed(&self, f: HookFailure) -> BoxFuture<'static, ()> {
        self.write("warn", "hook.failed", f)
    }

    fn hook_rejected(&self, r: HookFailure) -> BoxFuture<'static, ()> {
        self.write("info", "hook.rejected", r)
    }
}

impl RuntimeLog {
    fn write(&self, level: &'static str, op: &str, f: HookFailure) -> BoxFuture<'static, ()> {
        let store = self.0.clone();
        let op = op.to_string();
        Box::pin(async move {
            let entry = NewLogEntry {
                level,
                op,
                owner_type: "skill".into(),
                owner_id: Some(f.skill.clone()),
                agent_id: f.agent_id,
                session_id: f.session_id,
                refs: Some(json!({ "instanceId": f.instance_id })),
                data: Some(json!({ "hook": f.hook, "skill": f.skill, "reason": f.reason })),
            };
            if let Err(e) = store.log_append(entry).await {
                tracing::error!(error = %e, "cannot write the RuntimeLog");
            }
        })
    }
}
