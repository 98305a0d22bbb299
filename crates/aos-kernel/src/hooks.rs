//! The kernel side of hooks. Every hook point the kernel reaches goes through
//! here: admission hooks may reject or rewrite, transform hooks rewrite, event
//! hooks are published on the [`EventBus`].
//!
//! Handler registration (WASM components, legacy services) comes with the
//! skill host; until a handler is registered for a point, admission allows the
//! operation unchanged and transforms pass their data through — exactly the
//! "without handlers" behaviour of `hooks.md` §4.

use crate::EventBus;
use aos_types::SyscallError;
use serde_json::Value;
use std::sync::Arc;

/// Whose operation a hook call concerns (for scope filtering).
#[derive(Debug, Clone, Default)]
pub struct HookScope<'a> {
    /// Agent concerned.
    pub agent_id: Option<&'a str>,
    /// Session concerned.
    pub session_id: Option<&'a str>,
}

/// The hook engine.
#[derive(Debug, Clone)]
pub struct HookEngine {
    events: Arc<EventBus>,
}

impl HookEngine {
    /// An engine publishing events on `events`.
    pub fn new(events: Arc<EventBus>) -> Self {
        HookEngine { events }
    }

    /// Runs the admission chain of `hook`. Returns the (possibly rewritten)
    /// `output`, or `hook.rejected` naming the hook, the skill and the reason.
    pub async fn admit(
        &self,
        hook: &str,
        _scope: HookScope<'_>,
        _input: &Value,
        output: Value,
    ) -> Result<Value, SyscallError> {
        debug_assert!(aos_types::hook_point(hook).is_some(), "{hook}");
        Ok(output)
    }

    /// Runs the transform chain of `hook` and returns the final output.
    pub async fn transform(
        &self,
        hook: &str,
        _scope: HookScope<'_>,
        _input: &Value,
        output: Value,
    ) -> Value {
        debug_assert!(aos_types::hook_point(hook).is_some(), "{hook}");
        output
    }

    /// Whether any handler is registered for `hook` within `scope`.
    pub fn has_handler(&self, _hook: &str, _scope: HookScope<'_>) -> bool {
        false
    }

    /// Fires an event hook (asynchronous, fire-and-forget).
    pub fn emit(&self, name: &str, scope: HookScope<'_>, payload: Value) {
        debug_assert!(aos_types::hook_point(name).is_some(), "{name}");
        self.events
            .publish(name, scope.agent_id, scope.session_id, payload);
    }
}
