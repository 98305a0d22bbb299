//! The contract between the kernel and a service runtime (`services.md`):
//! what a runtime implements — [`ServiceDriver`] starts instances,
//! [`ServiceInstance`] answers hooks, events and commands — and what the
//! kernel hands it: [`ServiceStart`] with a [`SyscallPort`] for the
//! service's syscalls. Runtimes (`aos-wasm-host`, `aos-uds-shim`) depend on
//! this crate alone, never on the kernel, its store or its LLM client.

use aos_manifest::{ServiceKind, SkillManifest};
use aos_types::{Data, OwnerType, SyscallError};
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Who a service instance runs for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "ownerType", content = "ownerId", rename_all = "lowercase")]
pub enum ServiceOwner {
    /// The whole system.
    System,
    /// One agent.
    Agent(String),
    /// One session (of an agent).
    Session(String),
}

impl ServiceOwner {
    /// The owner's level.
    pub fn kind(&self) -> OwnerType {
        match self {
            ServiceOwner::System => OwnerType::System,
            ServiceOwner::Agent(_) => OwnerType::Agent,
            ServiceOwner::Session(_) => OwnerType::Session,
        }
    }

    /// The agent or session id.
    pub fn id(&self) -> Option<&str> {
        match self {
            ServiceOwner::System => None,
            ServiceOwner::Agent(id) | ServiceOwner::Session(id) => Some(id),
        }
    }

    /// Parses `system`, `agent:ID` or `session:ID`.
    pub fn parse(s: &str) -> Option<ServiceOwner> {
        match s.split_once(':') {
            None if s == "system" => Some(ServiceOwner::System),
            Some(("agent", id)) if aos_types::validate_id(id) => {
                Some(ServiceOwner::Agent(id.into()))
            }
            Some(("session", id)) if aos_types::validate_id(id) => {
                Some(ServiceOwner::Session(id.into()))
            }
            _ => None,
        }
    }

    /// Ordering rank: system → agent → session.
    pub fn rank(&self) -> u8 {
        match self {
            ServiceOwner::System => 0,
            ServiceOwner::Agent(_) => 1,
            ServiceOwner::Session(_) => 2,
        }
    }
}

/// The kernel's door for a service's syscalls: the runtime hands every guest
/// call to it; capability and scope checks happen behind it.
pub trait SyscallPort: Send + Sync {
    /// Runs `op` with `payload` (a JSON object, as text) and returns its data.
    fn call(&self, op: String, payload: String) -> BoxFuture<'static, Result<Data, SyscallError>>;

    /// Records a capability the runtime refused the service (a connect to an
    /// undeclared address, …), with the manifest line that would grant it.
    fn denied(&self, capability: &str, fix: String);

    /// Reports that the service ended without being asked to (a legacy
    /// process exited or was killed): the kernel marks it `error`,
    /// unregisters its hooks, emits `service.error` and applies the skill's
    /// restart policy.
    fn exited(&self, reason: String);
}

/// Everything a runtime needs to start one instance.
#[derive(Clone)]
pub struct ServiceStart {
    /// The new instance's id.
    pub instance_id: String,
    /// The skill's manifest.
    pub skill: Arc<SkillManifest>,
    /// The skill's directory.
    pub skill_dir: PathBuf,
    /// `$AOS_HOME`.
    pub home: PathBuf,
    /// Who it runs for.
    pub owner: ServiceOwner,
    /// Configuration passed to `init`.
    pub config: Value,
    /// The kernel, for the service's syscalls.
    pub syscalls: Arc<dyn SyscallPort>,
    /// The daemon's HTTP API (`AOS_API_URL`); empty when it serves none.
    pub api_url: String,
    /// A bearer token with exactly the service's rights (`AOS_API_TOKEN`),
    /// for runtimes whose services reach the API themselves.
    pub api_token: Option<String>,
}

/// What a service asked for at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Registration {
    /// Admission and transform hooks.
    pub hooks: Vec<String>,
    /// Event hooks.
    pub events: Vec<String>,
}

/// The answer of an admission handler.
#[derive(Debug, Clone, PartialEq)]
pub enum AdmitReply {
    /// Allowed; with a new output when it rewrote it.
    Allow(Option<String>),
    /// Rejected, with the reason.
    Reject(String),
}

/// Why a call into a service did not produce an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallFault {
    /// The handler itself reported an error.
    #[error("handler error: {0}")]
    Handler(String),
    /// The service trapped (a panic, an invalid operation).
    #[error("trapped: {0}")]
    Trap(String),
    /// The deadline passed.
    #[error("deadline of {0:?} exceeded")]
    Timeout(Duration),
    /// A resource limit (memory, fuel) was hit.
    #[error("resource limit: {0}")]
    Limit(String),
    /// The service is gone (crashed, stopped).
    #[error("service unavailable: {0}")]
    Gone(String),
}

/// The `input` of a hook call: shared by every handler of its chain, and
/// written as JSON text at most once, when a handler's runtime first needs
/// it — a chain of 0.2.0 components that never read their input never has
/// it written. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HookInput(Arc<InputText>);

#[derive(Debug)]
struct InputText {
    /// The value, when the caller handed it over (written lazily).
    value: Option<Value>,
    text: OnceLock<String>,
}

impl HookInput {
    /// The input as JSON text.
    pub fn text(&self) -> &String {
        self.0.text.get_or_init(|| {
            self.0
                .value
                .as_ref()
                .map(|v| serde_json::to_string(v).unwrap_or_default())
                .unwrap_or_default()
        })
    }
}

/// An input handed over: written only if a handler needs its text.
impl From<Value> for HookInput {
    fn from(value: Value) -> HookInput {
        HookInput(Arc::new(InputText {
            value: Some(value),
            text: OnceLock::new(),
        }))
    }
}

/// A borrowed input: written now (a copy of the value would cost more).
impl From<&Value> for HookInput {
    fn from(value: &Value) -> HookInput {
        HookInput(Arc::new(InputText {
            value: None,
            text: OnceLock::from(serde_json::to_string(value).unwrap_or_default()),
        }))
    }
}

/// A running service instance. Calls into one instance are serialised by the
/// runtime; different instances run in parallel.
pub trait ServiceInstance: Send + Sync {
    /// What `init` registered.
    fn registration(&self) -> Registration;
    /// An admission hook. `input` is the call's input, shared by every
    /// handler of the chain (a WASM 0.2.0 component receives it only if it
    /// asks); `output` is the output so far, as JSON text.
    fn admit<'a>(
        &'a self,
        hook: &'a str,
        input: HookInput,
        output: String,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<AdmitReply, CallFault>>;
    /// [`ServiceInstance::admit`] answered at once, without a future, when
    /// the runtime can (a WASM component called directly, not busy); `None`
    /// sends the caller to [`ServiceInstance::admit`].
    fn admit_now(
        &self,
        _hook: &str,
        _input: &HookInput,
        _output: &String,
        _timeout: Duration,
    ) -> Option<Result<AdmitReply, CallFault>> {
        None
    }
    /// A transform hook, with the arguments of [`ServiceInstance::admit`].
    fn transform<'a>(
        &'a self,
        hook: &'a str,
        input: HookInput,
        output: String,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<String, CallFault>>;
    /// [`ServiceInstance::transform`] answered at once, as
    /// [`ServiceInstance::admit_now`].
    fn transform_now(
        &self,
        _hook: &str,
        _input: &HookInput,
        _output: &String,
        _timeout: Duration,
    ) -> Option<Result<String, CallFault>> {
        None
    }
    /// An event hook.
    fn on_event(
        &self,
        name: String,
        payload: String,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<(), CallFault>>;
    /// A command. `caller` is who ran it (`{principal, agentId?,
    /// sessionId?}`, checked by the kernel); the service reads it with the
    /// `service.caller` syscall while the command runs.
    fn invoke(
        &self,
        args: Vec<String>,
        stdin: Option<String>,
        caller: Value,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<InvokeReply, CallFault>>;
    /// Stops the service (calls its `shutdown`, then frees it).
    fn shutdown(&self, timeout: Duration) -> BoxFuture<'_, ()>;
    /// The operating-system process, for services that run as one.
    fn pid(&self) -> Option<u32> {
        None
    }
    /// How the runtime runs it (for a WASM component: the interface version
    /// it was bound to and how calls reach it), shown by `service.list`.
    fn runtime(&self) -> Option<Value> {
        None
    }
}

/// The result of a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvokeReply {
    /// Exit status.
    pub exit_code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Starts instances of one kind of service.
pub trait ServiceDriver: Send + Sync {
    /// Which `service:` entries this driver runs.
    fn kind(&self) -> ServiceKind;
    /// Starts an instance and runs its `init`.
    fn start(
        &self,
        spec: ServiceStart,
    ) -> BoxFuture<'static, Result<Arc<dyn ServiceInstance>, String>>;
}

/// Lifecycle state of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// Serving hooks.
    Running,
    /// Stopped by request.
    Stopped,
    /// Failed repeatedly or crashed; its hooks are unregistered.
    Error,
}

/// Awaits `call` at most `deadline` from its first wait; `None` when it was
/// abandoned then. A call that answers in its first poll (a WASM handler
/// making no host call: its runtime's own deadline bounds that poll) needs
/// no timer and gets none. Every wait on untrusted code goes through here.
pub async fn within<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = T>,
) -> Option<T> {
    use std::task::Poll;
    let mut call = std::pin::pin!(call);
    let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
    if let Poll::Ready(answer) = first {
        return Some(answer);
    }
    tokio::time::timeout(deadline, call).await.ok()
}

/// Lines of a service's log (output, `log` import) written per second at
/// most; the rest is counted and reported once a second.
pub const LINES_PER_SECOND: u32 = 200;

/// A per-second budget of log lines for one service.
#[derive(Debug, Default)]
pub struct LogRate {
    window: Option<std::time::Instant>,
    logged: u32,
    dropped: u64,
    long: u64,
}

impl LogRate {
    /// Whether this line is logged.
    pub fn admit(&mut self) -> bool {
        let now = std::time::Instant::now();
        if self
            .window
            .is_none_or(|w| now.duration_since(w) >= Duration::from_secs(1))
        {
            self.window = Some(now);
            self.logged = 0;
        }
        self.logged += 1;
        if self.logged > LINES_PER_SECOND {
            self.dropped += 1;
            return false;
        }
        true
    }

    /// Counts a line dropped for its length.
    pub fn too_long(&mut self) {
        self.long += 1;
    }

    /// (dropped for the rate, dropped for their length), once per window in
    /// which something was dropped — right after [`LogRate::admit`] opened it.
    pub fn report(&mut self) -> Option<(u64, u64)> {
        if self.logged != 1 || (self.dropped == 0 && self.long == 0) {
            return None;
        }
        Some((
            std::mem::take(&mut self.dropped),
            std::mem::take(&mut self.long),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_flood_is_cut_to_the_rate_and_reported_once() {
        let mut rate = LogRate::default();
        let logged = (0..100_000).filter(|_| rate.admit()).count();
        assert_eq!(logged, LINES_PER_SECOND as usize, "within one second");
        rate.too_long();
        assert_eq!(rate.report(), None, "reported when the next window opens");
        rate.window = rate.window.map(|w| w - Duration::from_secs(1));
        assert!(rate.admit());
        assert_eq!(rate.report(), Some((100_000 - 200, 1)));
        assert_eq!(rate.report(), None, "once");
    }

    #[test]
    fn a_hook_input_is_written_once_whether_handed_over_or_borrowed() {
        let v = serde_json::json!({"sessionId": "se_1", "n": 2});
        let lazy = HookInput::from(v.clone());
        assert!(lazy.0.text.get().is_none(), "not written before it is read");
        let shared = lazy.clone();
        assert_eq!(lazy.text(), r#"{"n":2,"sessionId":"se_1"}"#);
        assert!(
            std::ptr::eq(lazy.text(), shared.text()),
            "written once, shared"
        );
        assert_eq!(HookInput::from(&v).text(), lazy.text());
    }
}
