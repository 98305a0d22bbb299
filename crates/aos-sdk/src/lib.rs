//! Write AgentOS skill services in Rust.
//!
//! A service is a type implementing [`Service`]: made once by `init`, holding
//! its own state, with a method per kind of hook that returns a verdict or a
//! new value, exported with [`export!`]. It reads like the Python original:
//!
//! ```no_run
//! use aos_sdk::{Input, Owner, Registration, Service, Value, Verdict};
//!
//! struct Guard;
//!
//! impl Service for Guard {
//!     fn init(_owner: &Owner, _config: &Value) -> Result<(Self, Registration), String> {
//!         Ok((Guard, Registration::hooks(["tool.before"])))
//!     }
//!
//!     fn admit(&mut self, _hook: &str, _input: &Input, output: Value) -> Verdict {
//!         let cmd = output["args"]["command"].as_str().unwrap_or("");
//!         match ["rm -rf /", "DROP TABLE"].iter().find(|p| cmd.contains(*p)) {
//!             Some(p) => Verdict::reject(format!("blocked: {p}")),
//!             None => Verdict::Allow,
//!         }
//!     }
//! }
//!
//! aos_sdk::export!(Guard);
//! ```
//!
//! [`syscall`] calls the kernel (only the syscalls the skill's `SKILL.md`
//! grants; [`ops`] has typed wrappers of the common ones), [`caller`] tells a command who ran it, and [`log`] writes to the
//! daemon's logs.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit/since_v0.2",
        world: "skill-service",
        pub_export_macro: true,
        export_macro_name: "__export_skill_service",
        default_bindings_module: "aos_sdk::bindings",
    });
}

mod adapter;
mod input;
pub mod log;
pub mod ops;
#[path = "../wit/since_v0.2/payloads.rs"]
pub mod payloads;

pub use adapter::Adapter;
pub use input::Input;
pub use serde;
pub use serde_json::{self, Value, json};

use bindings::aos::kernel::types;

/// Who a service instance runs for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The whole system.
    System,
    /// One agent.
    Agent(String),
    /// One session.
    Session(String),
}

/// The hooks and events a service registers at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registration {
    /// Admission and transform hook names.
    pub hooks: Vec<String>,
    /// Event hook names.
    pub events: Vec<String>,
}

impl Registration {
    /// Registers admission/transform hooks.
    pub fn hooks<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        Registration {
            hooks: names.into_iter().map(Into::into).collect(),
            events: Vec::new(),
        }
    }

    /// Adds event hooks.
    pub fn with_events<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.events.extend(names.into_iter().map(Into::into));
        self
    }
}

/// The answer of an admission hook.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Let it through unchanged.
    Allow,
    /// Let it through with this new `output`.
    Rewrite(Value),
    /// Refuse it, with a reason.
    Reject(String),
}

impl Verdict {
    /// A rejection.
    pub fn reject(reason: impl Into<String>) -> Self {
        Verdict::Reject(reason.into())
    }
}

/// The result of an invoked command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit status (0 = success).
    pub exit_code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Success with this stdout.
    pub fn ok(stdout: impl Into<String>) -> Self {
        Output {
            exit_code: 0,
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }

    /// Failure with this stderr and exit code.
    pub fn fail(exit_code: i32, stderr: impl Into<String>) -> Self {
        Output {
            exit_code,
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }
}

/// A failed syscall, as the kernel reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct SyscallError {
    /// The error code (`permission.denied`, `not_found`, …).
    pub code: String,
    /// The message.
    pub message: String,
    /// Details, if any.
    pub details: Option<Value>,
}

impl std::fmt::Display for SyscallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for SyscallError {}

/// Calls a syscall with a JSON object of parameters and returns its `data`.
pub fn syscall(op: &str, params: Value) -> Result<Value, SyscallError> {
    syscall_as(op, params)
}

/// [`syscall`] with the `data` read straight into `T` (no `Value` tree in
/// between: for large answers such as history pages).
pub fn syscall_as<T: serde::de::DeserializeOwned>(
    op: &str,
    params: Value,
) -> Result<T, SyscallError> {
    match bindings::aos::kernel::syscall::call(op, &params.to_string()) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| SyscallError {
            code: "internal".into(),
            message: format!("cannot read the answer of {op}: {e}"),
            details: None,
        }),
        Err(types::SyscallError {
            code,
            message,
            details,
        }) => Err(SyscallError {
            code,
            message,
            details: details.and_then(|d| serde_json::from_str(&d).ok()),
        }),
    }
}

/// Who ran the command in progress (see [`caller`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `session` (an agent's bash), `operator`, `service` or `kernel`.
    pub principal: String,
    /// The agent the command runs for, if any.
    pub agent_id: Option<String>,
    /// The session the command runs for, if any: for an agent's bash, its own
    /// session (or another of its agent's sessions it named).
    pub session_id: Option<String>,
    /// The dispatch whose bash ran the command, when it runs for that
    /// dispatch's own session.
    pub dispatch_id: Option<String>,
}

/// Who ran the command in progress, as the kernel checked it; only inside
/// [`Service::invoke`]. A command acting for a session must take the session
/// from here, never from its arguments, which the caller controls.
pub fn caller() -> Result<Caller, SyscallError> {
    let v = syscall("service.caller", json!({}))?;
    let text = |k: &str| v[k].as_str().map(String::from);
    Ok(Caller {
        principal: text("principal").unwrap_or_default(),
        agent_id: text("agentId"),
        session_id: text("sessionId"),
        dispatch_id: text("dispatchId"),
    })
}

/// A skill service: a value holding its own state, made once by
/// [`Service::init`] and called by `&mut self` for every hook, event and
/// command (calls into one instance never overlap). Every method but
/// [`Service::init`] has a default that does nothing, so a service
/// implements only what it registers.
pub trait Service: Sized + 'static {
    /// Called once at start-up: the service, and the hooks and events it
    /// registers.
    fn init(owner: &Owner, config: &Value) -> Result<(Self, Registration), String>;

    /// An admission hook. `input` is fetched only if read.
    fn admit(&mut self, hook: &str, input: &Input, output: Value) -> Verdict {
        let _ = (hook, input, output);
        Verdict::Allow
    }

    /// An admission hook answered on the JSON text of `output` (and of
    /// `input`, [`Input::text`]), for a handler that reads a field or two: a
    /// typed, borrowed `serde_json::from_str` skips the rest, and no `Value`
    /// tree is built. Return `None` to let [`Service::admit`] answer (the
    /// default).
    fn admit_json(&mut self, hook: &str, input: &Input, output: &str) -> Option<Verdict> {
        let _ = (hook, input, output);
        None
    }

    /// A transform hook: the new output. An error leaves the data unchanged.
    fn transform(&mut self, hook: &str, input: &Input, output: Value) -> Result<Value, String> {
        let _ = (hook, input);
        Ok(output)
    }

    /// A transform hook answered with JSON text, for a service whose answer
    /// is large and built by itself (a context engine): it need not become a
    /// `Value` tree first. `output` is the hook's output as JSON text.
    /// Return `None` to let [`Service::transform`] answer (the default).
    fn transform_json(
        &mut self,
        hook: &str,
        input: &Input,
        output: &str,
    ) -> Option<Result<String, String>> {
        let _ = (hook, input, output);
        None
    }

    /// An event hook.
    fn on_event(&mut self, name: &str, payload: &Value) {
        let _ = (name, payload);
    }

    /// A command (`aos skill run NAME ARGS…`).
    fn invoke(&mut self, args: &[String], stdin: Option<&str>) -> Result<Output, String> {
        let _ = (args, stdin);
        Err("this skill exports no command".into())
    }

    /// Called before the service stops.
    fn shutdown(&mut self) {}
}

/// Exports a [`Service`] implementation as the component's `service`.
#[macro_export]
macro_rules! export {
    ($ty:ty) => {
        type __AosExportedService = $crate::Adapter<$ty>;
        $crate::bindings::__export_skill_service!(__AosExportedService with_types_in $crate::bindings);
    };
}
