//! The seam between the kernel and the loop that runs a dispatch.
//!
//! The kernel keeps a dispatch's bookkeeping — the session's lease, its
//! inbox, interrupts, the event stream, the session token of its bash — and
//! hands the loop a [`DispatchPort`]: a narrow view of one dispatch (its
//! session, the hooks in its scope, the append path, the context engine,
//! compaction, the environment of its commands). The loop itself — the
//! model, the tool, the policy between them — is a [`Runner`] (the
//! ReActUnit of `aos-react`); so is the model call of a compaction summary.
//! Both are traits, so this module depends on no other part of the kernel.

use crate::dispatches::Outcome;
use crate::hooks::{HookEngine, HookScope};
use crate::session_context::SessionContext;
use aos_store::{NewLogEntry, NewMessage};
use aos_types::{Acb, Aoscb, Event, Message, Scb, SyscallError, Usage};
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::watch;

/// What runs a dispatch: the kernel calls it once the dispatch's user
/// message is written, under the session's lease.
pub trait Runner: Send + Sync + 'static {
    /// Runs one dispatch to its end through `port` and says how it ended.
    /// Whatever it wrote is in SessionHistory when it returns.
    fn run<'a>(&'a self, port: &'a mut dyn DispatchPort) -> BoxFuture<'a, Outcome>;

    /// The model call of a compaction summary: the answer's text and the
    /// tokens it used (a failed call is an `llm_error`).
    fn summarize<'a>(
        &'a self,
        call: SummaryCall<'a>,
    ) -> BoxFuture<'a, Result<(String, Usage), SyscallError>>;
}

/// One summary call of a compaction.
#[derive(Debug, Clone)]
pub struct SummaryCall<'a> {
    /// The model (`compute.model.resolve` with `requestType: "compaction"`).
    pub model: &'a str,
    /// The endpoint the resolve hook chose, if any.
    pub base_url: Option<&'a str>,
    /// The whole prompt (the engine's instruction and the transcript).
    pub prompt: String,
}

/// What a compaction inside a dispatch wrote.
#[derive(Debug, Clone)]
pub struct Compaction {
    /// The messages written (marker, summary, skill loads), in seq order.
    pub messages: Vec<Message>,
    /// Seq of the `data-compaction` marker: the loop's own context starts
    /// there now.
    pub marker_seq: i64,
}

/// How one command of a dispatch runs: the kernel's part of it.
#[derive(Debug)]
pub struct CommandSetup {
    /// Its working directory (the session's work dir, also `$HOME`).
    pub cwd: std::path::PathBuf,
    /// Its whole environment (`PATH`, `HOME`, `TMPDIR`, `LANG`, the extra
    /// variables asked for, then the `AOS_*` ones, which nothing overrides).
    pub env: Vec<(String, String)>,
    /// Where its process group is recorded (for recovery after a crash).
    pub pid_file: std::path::PathBuf,
    /// Its confinement (`None`: the sandbox is off).
    pub confinement: Option<aos_sandbox::Confinement>,
}

/// A narrow view of one running dispatch, for its [`Runner`]: what the
/// loop may read and do, and nothing else of the kernel.
pub trait DispatchPort: Send + Sync {
    /// The dispatch's id (`ds_…`).
    fn dispatch_id(&self) -> &str;

    /// Seq of the dispatch's user message.
    fn first_seq(&self) -> i64;

    /// The session as of the last write.
    fn session(&self) -> &Scb;

    /// The hook scope of the session.
    fn scope(&self) -> HookScope<'_> {
        let s = self.session();
        HookScope {
            agent_id: Some(&s.agent_id),
            session_id: Some(&s.session_id),
        }
    }

    /// The hook engine (call it with [`DispatchPort::scope`]).
    fn hooks(&self) -> &HookEngine;

    /// Fires an event hook in the session's scope.
    fn emit(&self, event: Event, payload: Value);

    /// What the daemon counts (`/metrics`): the loop adds its turns, model
    /// calls and commands.
    fn telemetry(&self) -> &aos_extension::telemetry::Telemetry;

    /// The agent's control block, read now.
    fn agent(&self) -> BoxFuture<'_, Result<Acb, SyscallError>>;

    /// The system control block, read now.
    fn system(&self) -> BoxFuture<'_, Result<Aoscb, SyscallError>>;

    /// Compiles the sandbox of the session's commands from the agent's
    /// `permissions` (nothing when the sandbox is off). Before any command.
    fn prepare_sandbox(&mut self) -> BoxFuture<'_, Result<(), SyscallError>>;

    /// Appends one message (with `log` in the same transaction) through
    /// `session.message.beforeWrite`; `context.ingest` follows.
    fn append(
        &mut self,
        message: NewMessage,
        log: Option<NewLogEntry>,
    ) -> BoxFuture<'_, Result<Message, SyscallError>>;

    /// The session's messages from `from_seq` on (at most 10,000).
    fn history_from(&self, from_seq: i64) -> BoxFuture<'_, Result<Vec<Message>, SyscallError>>;

    /// The context engine's context (`context.assemble` for `trigger`).
    fn assemble_context<'a>(
        &'a self,
        trigger: &'a str,
    ) -> BoxFuture<'a, Result<SessionContext, SyscallError>>;

    /// The effective `autoFoldThreshold` (session, agent, system).
    fn fold_threshold(&self) -> BoxFuture<'_, Result<i64, SyscallError>>;

    /// Compacts inside the dispatch (phase `compacting`, then back): for
    /// the threshold, an overflow, or `asked` (the reason of a request of
    /// the dispatch's own bash). `None` when no engine serves the session or
    /// nothing was written; a failure is recorded (RuntimeLog,
    /// `session.error`), not returned: the dispatch goes on.
    fn compact(
        &mut self,
        overflow: bool,
        asked: Option<String>,
    ) -> BoxFuture<'_, Result<Option<Compaction>, SyscallError>>;

    /// Takes the compaction the dispatch's own bash asked for, if any.
    fn take_compact_request(&self) -> Option<String>;

    /// Why the dispatch was interrupted, once it was.
    fn interrupted(&self) -> Option<String>;

    /// The interrupt signal, to wait on while a command runs.
    fn interrupts(&self) -> watch::Receiver<Option<String>>;

    /// Publishes an event of the dispatch's stream (and `/v1/events`).
    fn publish(&self, event: &'static str, data: Value);

    /// The kernel's part of one command: its directories, its environment
    /// (with `extra` from `tool.env`, minus any `AOS_*`) and confinement.
    fn command(&self, extra: Vec<(String, String)>) -> std::io::Result<CommandSetup>;

    /// A note for the agent when a failed command's output shows the
    /// sandbox refused it: what is allowed and which permission grants more.
    fn sandbox_hint(&self, output: &str) -> Option<String>;
}
