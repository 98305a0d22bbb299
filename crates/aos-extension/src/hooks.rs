//! The hook engine (`hooks.md`). Every hook point the kernel reaches goes
//! through here:
//! - admission hooks run in order (system → agent → session, then
//!   registration order); each handler gets the previous `output`; the first
//!   rejection stops the chain; a failing handler rejects the operation;
//! - transform hooks run in the same order; a failing handler leaves the data
//!   unchanged; for the algorithm hooks only the most specific (last)
//!   handler runs, so an agent or session engine replaces the system one;
//! - event hooks are published on the [`EventBus`] and delivered to
//!   subscribed services asynchronously.
//!
//! A service is never called while it waits in one of its own syscalls (the
//! instance is busy in this very call chain, and would wait for itself until
//! its deadline): such a handler is skipped, so for an algorithm hook the next
//! most specific one answers. The chain is a task-local set by
//! [`within_service`] around every syscall a service makes.
//!
//! Every handler failure goes to the engine's [`FailureLog`] (the kernel's
//! RuntimeLog); a service failing
//! [`MAX_CONSECUTIVE_FAILURES`](crate::table::MAX_CONSECUTIVE_FAILURES)
//! times in a row is marked `error`, its hooks are unregistered and
//! `service.error` is emitted.

use crate::driver::{AdmitReply, CallFault, HookInput, ServiceOwner, ServiceState};
use crate::events::EventBus;
use crate::table::{HandlerList, ServiceEntry, ServiceTable};
use aos_types::hook;
use aos_types::{Admission, Algorithm, ErrorCode, Event, Point, SyscallError, Transforming};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

tokio::task_local! {
    /// Instances waiting in a syscall further up this call chain.
    static CALL_CHAIN: Vec<String>;
}

/// Runs `f` (a syscall made by service instance `instance_id`) with the
/// instance added to the call chain.
pub async fn within_service<F: std::future::Future>(instance_id: &str, f: F) -> F::Output {
    let mut chain = CALL_CHAIN.try_with(Clone::clone).unwrap_or_default();
    chain.push(instance_id.to_string());
    CALL_CHAIN.scope(chain, f).await
}

/// Whether the instance waits in a syscall further up this call chain.
fn in_call_chain(instance_id: &str) -> bool {
    CALL_CHAIN
        .try_with(|c| c.iter().any(|i| i == instance_id))
        .unwrap_or(false)
}

/// The handlers of `hook` in scope that may be called from here.
fn callable(table: &ServiceTable, hook: &str, scope: HookScope<'_>) -> HandlerList {
    let mut handlers = table.handlers(hook, scope.agent_id, scope.session_id);
    handlers.retain(|h| !in_call_chain(&h.instance_id));
    handlers
}

/// Whose operation a hook call concerns (for scope filtering).
#[derive(Debug, Clone, Copy, Default)]
pub struct HookScope<'a> {
    /// Agent concerned.
    pub agent_id: Option<&'a str>,
    /// Session concerned.
    pub session_id: Option<&'a str>,
}

/// A handler that failed, as the engine reports it.
#[derive(Debug, Clone)]
pub struct HookFailure {
    /// The hook point (or `skill.invoke` for a command).
    pub hook: String,
    /// The service's skill.
    pub skill: String,
    /// Its instance.
    pub instance_id: String,
    /// Its owner agent, if any.
    pub agent_id: Option<String>,
    /// Its owner session, if any.
    pub session_id: Option<String>,
    /// What went wrong.
    pub reason: String,
}

/// Where the engine writes each handler failure (the kernel: the
/// RuntimeLog).
pub trait FailureLog: Send + Sync {
    /// Records `failure`; never fails the caller.
    fn hook_failed(&self, failure: HookFailure) -> BoxFuture<'static, ()>;

    /// Records an admission handler's rejection (`reason` is its reason);
    /// never fails the caller. Nothing by default.
    fn hook_rejected(&self, rejection: HookFailure) -> BoxFuture<'static, ()> {
        let _ = rejection;
        Box::pin(async {})
    }
}

/// The hook engine.
#[derive(Clone)]
pub struct HookEngine {
    events: Arc<EventBus>,
    table: Arc<ServiceTable>,
    log: Arc<dyn FailureLog>,
    telemetry: Arc<crate::telemetry::Telemetry>,
}

/// Extra time the kernel grants over a handler's own deadline before it
/// abandons the call (the runtime's own deadline normally fires first).
const GRACE: Duration = Duration::from_millis(250);

/// Events one service may have handed to it and not yet handled.
pub const MAX_QUEUED_EVENTS: u32 = 256;

pub use crate::depth::{MAX_EVENT_DEPTH, at_event_depth, event_depth};

/// Largest output a handler may give back, in bytes of JSON: the largest
/// request body (8 MiB); an op may hold its data to less.
pub const MAX_REWRITE_BYTES: usize = 8 * 1024 * 1024;

/// A handler's output text, refused when it is over [`MAX_REWRITE_BYTES`].
fn within_limit(text: String) -> Result<String, CallFault> {
    if text.len() > MAX_REWRITE_BYTES {
        return Err(CallFault::Handler(format!(
            "returned {} bytes, over the {} MiB a handler may give back",
            text.len(),
            MAX_REWRITE_BYTES >> 20
        )));
    }
    Ok(text)
}

impl HookEngine {
    /// An engine over `table`, publishing on `events`, reporting handler
    /// failures to `log`.
    pub fn new(events: Arc<EventBus>, table: Arc<ServiceTable>, log: Arc<dyn FailureLog>) -> Self {
        HookEngine {
            events,
            table,
            log,
            telemetry: Arc::default(),
        }
    }

    /// What the daemon counts (`/metrics`): shared by the kernel and its
    /// runner through the engine.
    pub fn telemetry(&self) -> &crate::telemetry::Telemetry {
        &self.telemetry
    }

    /// The service table.
    pub fn table(&self) -> &Arc<ServiceTable> {
        &self.table
    }

    /// Runs the admission chain of `hook`. Returns the (possibly rewritten)
    /// `output`, or `hook.rejected` naming the hook, the skill and the reason.
    /// `input` is a `&Value`, or a `Value` handed over, which is then written
    /// as JSON only if a handler reads it ([`HookInput`]).
    pub async fn admit(
        &self,
        hook: Admission,
        scope: HookScope<'_>,
        input: impl Into<HookInput>,
        mut output: Value,
    ) -> Result<Value, SyscallError> {
        let hook = hook.name();
        let handlers = callable(&self.table, hook, scope);
        if handlers.is_empty() {
            return Ok(output);
        }
        let input = input.into();
        for h in handlers {
            let started = Instant::now();
            let result = admit_one(&h, hook, &input, json_text(&output)).await;
            h.observe(&self.telemetry, hook, started.elapsed());
            // A rewrite must be JSON; anything else counts as a failed handler.
            let result = result.and_then(|reply| match reply {
                AdmitReply::Allow(Some(text)) => {
                    let text = within_limit(text)?;
                    serde_json::from_str::<Value>(&text)
                        .map(|v| Ok(Some(v)))
                        .map_err(|e| CallFault::Handler(format!("returned invalid JSON: {e}")))
                }
                AdmitReply::Allow(None) => Ok(Ok(None)),
                AdmitReply::Reject(reason) => Ok(Err(reason)),
            });
            match result {
                Ok(Ok(rewrite)) => {
                    self.succeeded(&h);
                    if let Some(v) = rewrite {
                        output = v;
                    }
                }
                Ok(Err(reason)) => {
                    self.succeeded(&h);
                    self.telemetry.hook_outcome(&h.skill_name, hook, "rejected");
                    tracing::info!(skill = %h.skill_name, instance = %h.instance_id, hook,
                        agent = scope.agent_id.unwrap_or(""), session = scope.session_id.unwrap_or(""),
                        %reason, "hook rejected");
                    self.log
                        .hook_rejected(HookFailure {
                            hook: hook.to_string(),
                            skill: h.skill_name.clone(),
                            instance_id: h.instance_id.clone(),
                            agent_id: scope.agent_id.map(String::from),
                            session_id: scope.session_id.map(String::from),
                            reason: reason.clone(),
                        })
                        .await;
                    return Err(rejected(hook, &h, &reason));
                }
                Err(fault) => {
                    self.failed(&h, hook, &fault).await;
                    return Err(rejected(hook, &h, &format!("handler failed ({fault})")));
                }
            }
        }
        Ok(output)
    }

    /// Runs the transform chain of `hook` and returns the final output.
    pub async fn transform(
        &self,
        hook: impl Transforming,
        scope: HookScope<'_>,
        input: impl Into<HookInput>,
        output: Value,
    ) -> Value {
        self.transform_by(hook, scope, input, output).await.0
    }

    /// [`HookEngine::transform`], also naming the skill whose handler gave
    /// the final output (`None` when no handler answered).
    pub async fn transform_by(
        &self,
        hook: impl Transforming,
        scope: HookScope<'_>,
        input: impl Into<HookInput>,
        mut output: Value,
    ) -> (Value, Option<String>) {
        let (hook, algorithm) = (hook.name(), hook.algorithm());
        let mut handlers = callable(&self.table, hook, scope);
        let mut by = None;
        if handlers.is_empty() {
            return (output, by);
        }
        if algorithm {
            handlers.drain(..handlers.len() - 1);
        }
        let input = input.into();
        for h in handlers {
            // On failure the data passes through unchanged.
            if let Some(v) = self.call_one(&h, hook, &input, &output).await {
                output = v;
                by = Some(h.skill_name.clone());
            }
        }
        (output, by)
    }

    /// Runs the handler of an algorithm hook (the most specific, as
    /// [`HookEngine::transform`] does) and reads its answer as `T` straight
    /// from its JSON text. `None` when no handler answered or it failed (the
    /// failure is recorded as for a transform).
    pub async fn algorithm<T: serde::de::DeserializeOwned>(
        &self,
        hook: Algorithm,
        scope: HookScope<'_>,
        input: impl Into<HookInput>,
        output: &Value,
    ) -> Option<T> {
        let hook = hook.name();
        let h = callable(&self.table, hook, scope).pop()?;
        self.call_one(&h, hook, &input.into(), output).await
    }

    /// One transform call read as `T`; records its success or failure.
    async fn call_one<T: serde::de::DeserializeOwned>(
        &self,
        h: &Arc<ServiceEntry>,
        hook: &str,
        input: &HookInput,
        output: &Value,
    ) -> Option<T> {
        let started = Instant::now();
        let answer = transform_one(h, hook, input, json_text(output)).await;
        h.observe(&self.telemetry, hook, started.elapsed());
        let parsed = answer.and_then(within_limit).and_then(|text| {
            serde_json::from_str::<T>(&text)
                .map_err(|e| CallFault::Handler(format!("returned invalid JSON: {e}")))
        });
        match parsed {
            Ok(v) => {
                self.succeeded(h);
                Some(v)
            }
            Err(fault) => {
                self.failed(h, hook, &fault).await;
                None
            }
        }
    }

    /// Whether any handler is registered for `hook` within `scope`.
    pub fn has_handler(&self, hook: impl Point, scope: HookScope<'_>) -> bool {
        self.table
            .has(hook.name(), scope.agent_id, scope.session_id)
    }

    /// Fires an event hook: published on the bus and delivered, in the
    /// background, to every subscribed service in scope — unless the event
    /// is [`MAX_EVENT_DEPTH`] handlers deep (a handler's writes causing the
    /// event again, and again), or the service has [`MAX_QUEUED_EVENTS`]
    /// events not yet handled; those deliveries are dropped and counted.
    pub fn emit(&self, name: Event, scope: HookScope<'_>, payload: Value) {
        self.emit_with(name, scope, payload, false);
    }

    /// [`HookEngine::emit`] of an event already in the cluster's log (a
    /// fact's, written with it): delivered to this node's handlers only — the
    /// bus gets it from the log.
    pub fn emit_logged(&self, name: Event, scope: HookScope<'_>, payload: Value) {
        self.emit_with(name, scope, payload, true);
    }

    fn emit_with(&self, name: Event, scope: HookScope<'_>, payload: Value, logged: bool) {
        let name = name.name();
        let handlers = self.table.handlers(name, scope.agent_id, scope.session_id);
        if logged && handlers.is_empty() {
            return;
        }
        let depth = event_depth() + 1;
        // Written once: the bus keeps it as is, each handler gets a copy.
        let Ok(raw) = serde_json::value::to_raw_value(&payload) else {
            return;
        };
        if !handlers.is_empty() {
            for h in handlers {
                if depth > MAX_EVENT_DEPTH || !h.queue_event() {
                    let dropped = h.events_dropped.fetch_add(1, Ordering::Relaxed);
                    // Reported at the 1st, 2nd, 4th, 8th… drop.
                    if (dropped + 1).is_power_of_two() {
                        tracing::warn!(skill = %h.skill_name, instance = %h.instance_id, event = name, depth, dropped = dropped + 1,
                            "event not delivered: caused by its own handlers {MAX_EVENT_DEPTH} deep, or {MAX_QUEUED_EVENTS} events queued");
                    }
                    continue;
                }
                let engine = self.clone();
                let (name, text) = (name.to_string(), raw.get().to_string());
                tokio::spawn(at_event_depth(depth, async move {
                    let started = Instant::now();
                    let call = h.instance.on_event(name.clone(), text, h.timeout);
                    let result = bounded(&h, call).await;
                    h.observe(&engine.telemetry, &name, started.elapsed());
                    h.events_queued.fetch_sub(1, Ordering::Relaxed);
                    match result {
                        Ok(()) => engine.succeeded(&h),
                        Err(fault) => engine.failed(&h, &name, &fault).await,
                    }
                }));
            }
        }
        if !logged {
            self.events
                .publish_raw(name, scope.agent_id, scope.session_id, raw);
        }
    }

    fn succeeded(&self, h: &ServiceEntry) {
        h.record(true);
    }

    /// Records a failed call; marks the service `error` after repeated failures.
    pub async fn failed(&self, h: &Arc<ServiceEntry>, hook: &str, fault: &CallFault) {
        tracing::warn!(skill = %h.skill_name, instance = %h.instance_id, hook, %fault, "hook handler failed");
        self.telemetry.hook_outcome(&h.skill_name, hook, "failed");
        let session_id = match &h.owner {
            ServiceOwner::Session(s) => Some(s.clone()),
            _ => None,
        };
        self.log
            .hook_failed(HookFailure {
                hook: hook.to_string(),
                skill: h.skill_name.clone(),
                instance_id: h.instance_id.clone(),
                agent_id: h.owner_agent.clone(),
                session_id,
                reason: fault.to_string(),
            })
            .await;
        if h.record(false) || matches!(fault, CallFault::Gone(_)) {
            self.mark_error(h, &format!("{hook}: {fault}"));
        }
    }

    /// Marks a service `error`, unregisters its hooks, emits `service.error`.
    pub fn mark_error(&self, h: &Arc<ServiceEntry>, message: &str) {
        if h.state().0 != ServiceState::Running {
            return;
        }
        h.set_state(ServiceState::Error, Some(message.to_string()));
        self.table.unregister(&h.instance_id);
        if h.kind == aos_manifest::ServiceKind::Legacy {
            // A process that failed its calls may still run: stop it.
            let h = h.clone();
            tokio::spawn(async move { h.instance.shutdown(h.timeout).await });
        }
        let (agent, session) = match &h.owner {
            ServiceOwner::System => (None, None),
            ServiceOwner::Agent(a) => (Some(a.as_str()), None),
            ServiceOwner::Session(s) => (h.owner_agent.as_deref(), Some(s.as_str())),
        };
        self.emit(
            hook::SERVICE_ERROR,
            HookScope {
                agent_id: agent,
                session_id: session,
            },
            json!({ "instanceId": h.instance_id, "skillName": h.skill_name, "message": message }),
        );
    }
}

/// One admission call into `h`: answered at once if its runtime can, else
/// awaited within its deadline.
async fn admit_one(
    h: &ServiceEntry,
    hook: &str,
    input: &HookInput,
    output: String,
) -> Result<AdmitReply, CallFault> {
    match h.instance.admit_now(hook, input, &output, h.timeout) {
        Some(answer) => answer,
        None => bounded(h, h.instance.admit(hook, input.clone(), output, h.timeout)).await,
    }
}

/// One transform call into `h`, as [`admit_one`].
async fn transform_one(
    h: &ServiceEntry,
    hook: &str,
    input: &HookInput,
    output: String,
) -> Result<String, CallFault> {
    match h.instance.transform_now(hook, input, &output, h.timeout) {
        Some(answer) => answer,
        None => {
            bounded(
                h,
                h.instance.transform(hook, input.clone(), output, h.timeout),
            )
            .await
        }
    }
}

/// Awaits a call into `h`, abandoning it after its deadline plus [`GRACE`]
/// from its first wait ([`crate::driver::within`]).
async fn bounded<T>(
    h: &ServiceEntry,
    call: impl std::future::Future<Output = Result<T, CallFault>>,
) -> Result<T, CallFault> {
    crate::driver::within(h.timeout + GRACE, call)
        .await
        .unwrap_or(Err(CallFault::Timeout(h.timeout)))
}

/// JSON text of a value, written straight into a buffer (`Value`'s
/// `Display` goes through the formatter, token by token, and is slower).
fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn rejected(hook: &str, h: &ServiceEntry, reason: &str) -> SyscallError {
    SyscallError::new(
        ErrorCode::HookRejected,
        format!("rejected by {} ({hook}): {reason}", h.skill_name),
    )
    .with_details(
        serde_json::to_value(aos_types::payloads::Rejection {
            hook: Some(hook.into()),
            skill: Some(h.skill_name.clone()),
            instance_id: Some(h.instance_id.clone()),
            reason: Some(reason.into()),
        })
        .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests;
