//! The seam between the kernel and the loop that runs a dispatch.
//!
//! The kernel keeps a dispatch's bookkeeping — the session's lease, its
//! inbox, interrupts, the event stream, the session token of its bash — and
//! hands the loop a [`DispatchPort`]: a narrow view of one dispatch (its
//! session, the hooks in its scope, the append path, the context engine,
//! compaction, the environment of its commands). The loop itself — the
//! model, the tool, the policy between them — is a [`Runner`] (the
//! ReActUnit of `aos-react`); so is the model call of a compaction summary.

use crate::hooks::{HookEngine, HookScope};
use crate::kernel::Kernel;
use crate::params::StoreResult;
use crate::react::{DispatchState, Outcome};
use crate::{SessionContext, compaction};
use aos_store::{HistoryQuery, NewLogEntry, NewMessage};
use aos_types::{Acb, Aoscb, Event, Message, Scb, SessionPhase, SyscallError, Usage};
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::watch;

/// What runs a dispatch: the kernel calls it once the dispatch's user
/// message is written, under the session's lease.
pub trait Runner: Send + Sync + 'static {
    /// Runs one dispatch to its end through `port` and says how it ended.
    /// Whatever it wrote is in SessionHistory when it returns.
    fn run<'a>(&'a self, port: DispatchPort<'a>) -> BoxFuture<'a, Outcome>;

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

/// A narrow view of one running dispatch, for its [`Runner`].
pub struct DispatchPort<'a> {
    k: &'a Kernel,
    state: &'a DispatchState,
    scb: Scb,
    lease: String,
    token: String,
    first_seq: i64,
    sandbox: Option<crate::sandbox::SessionSandbox>,
}

impl<'a> DispatchPort<'a> {
    /// The dispatch's id (`ds_…`).
    pub fn dispatch_id(&self) -> &str {
        &self.state.id
    }

    /// Seq of the dispatch's user message.
    pub fn first_seq(&self) -> i64 {
        self.first_seq
    }

    /// The session as of the last write.
    pub fn session(&self) -> &Scb {
        &self.scb
    }

    /// The hook scope of the session.
    pub fn scope(&self) -> HookScope<'_> {
        HookScope {
            agent_id: Some(&self.scb.agent_id),
            session_id: Some(&self.scb.session_id),
        }
    }

    /// The hook engine (call it with [`DispatchPort::scope`]).
    pub fn hooks(&self) -> &'a HookEngine {
        &self.k.inner.hooks
    }

    /// Fires an event hook in the session's scope.
    pub fn emit(&self, event: Event, payload: Value) {
        self.k.emit(event, self.scope(), payload);
    }

    /// The agent's control block, read now.
    pub async fn agent(&self) -> Result<Acb, SyscallError> {
        self.k.inner.store.agent_get(&self.scb.agent_id).await.sys()
    }

    /// The system control block, read now.
    pub async fn system(&self) -> Result<Aoscb, SyscallError> {
        self.k.inner.store.aoscb_get().await.sys()
    }

    /// Compiles the sandbox of the session's commands from the agent's
    /// `permissions` (nothing when the sandbox is off). Before any command.
    pub async fn prepare_sandbox(&mut self) -> Result<(), SyscallError> {
        let agent = self.agent().await?;
        self.sandbox = crate::sandbox::prepare(self.k, &agent, &self.scb.session_id)?;
        Ok(())
    }

    /// Appends one message (with `log` in the same transaction) through
    /// `session.message.beforeWrite`; `context.ingest` follows.
    pub async fn append(
        &mut self,
        message: NewMessage,
        log: Option<NewLogEntry>,
    ) -> Result<Message, SyscallError> {
        let (mut msgs, after) = self
            .k
            .append_with(&self.scb, None, vec![message], log)
            .await?;
        self.scb = after;
        msgs.pop()
            .ok_or_else(|| SyscallError::internal("append returned nothing"))
    }

    /// The session's messages from `from_seq` on (at most 10,000).
    pub async fn history_from(&self, from_seq: i64) -> Result<Vec<Message>, SyscallError> {
        let q = HistoryQuery {
            from_seq,
            to_seq: None,
            limit: 10_000,
        };
        self.k
            .inner
            .store
            .history(&self.scb.session_id, &q)
            .await
            .sys()
    }

    /// The context engine's context (`context.assemble` for `trigger`).
    pub async fn assemble_context(&self, trigger: &str) -> Result<SessionContext, SyscallError> {
        crate::context::assemble(self.k, &self.scb, trigger).await
    }

    /// The effective `autoFoldThreshold` (session, agent, system).
    pub async fn fold_threshold(&self) -> Result<i64, SyscallError> {
        crate::context::fold_threshold(self.k, &self.scb, None).await
    }

    /// Compacts inside the dispatch (phase `compacting`, then back): for
    /// the threshold, an overflow, or `asked` (the reason of a request of
    /// the dispatch's own bash). `None` when no engine serves the session or
    /// nothing was written; a failure is recorded (RuntimeLog,
    /// `session.error`), not returned: the dispatch goes on.
    pub async fn compact(
        &mut self,
        overflow: bool,
        asked: Option<String>,
    ) -> Result<Option<Compaction>, SyscallError> {
        if !compaction::available(self.k, &self.scb) {
            return Ok(None);
        }
        let sid = self.scb.session_id.clone();
        self.scb =
            crate::react::set_phase(self.k, &sid, &self.lease, SessionPhase::Compacting).await?;
        let trigger = compaction::Trigger {
            auto: asked.is_none(),
            overflow,
            reason: asked.unwrap_or_else(|| if overflow { "overflow" } else { "threshold" }.into()),
        };
        let result = compaction::run(self.k, &self.scb, &trigger).await;
        self.scb =
            crate::react::set_phase(self.k, &sid, &self.lease, SessionPhase::Dispatched).await?;
        match result {
            Ok(Ok(done)) => Ok(Some(Compaction {
                messages: done.messages,
                marker_seq: done.marker_seq,
            })),
            Ok(Err(_)) => Ok(None),
            Err(e) => {
                tracing::warn!(session = %sid, error = %e, "compaction failed; the dispatch goes on");
                Ok(None)
            }
        }
    }

    /// Takes the compaction the dispatch's own bash asked for, if any.
    pub fn take_compact_request(&self) -> Option<String> {
        self.state.take_compact_request()
    }

    /// Why the dispatch was interrupted, once it was.
    pub fn interrupted(&self) -> Option<String> {
        self.state.interrupt.borrow().clone()
    }

    /// The interrupt signal, to wait on while a command runs.
    pub fn interrupts(&self) -> watch::Receiver<Option<String>> {
        self.state.interrupt.subscribe()
    }

    /// Publishes an event of the dispatch's stream (and `/v1/events`).
    pub fn publish(&self, event: &'static str, data: Value) {
        self.state.publish(event, data);
    }

    /// The kernel's part of one command: its directories, its environment
    /// (with `extra` from `tool.env`, minus any `AOS_*`) and confinement.
    pub fn command(&self, extra: Vec<(String, String)>) -> std::io::Result<CommandSetup> {
        let cfg = &self.k.inner.config;
        let sid = &self.scb.session_id;
        let (work, tmp) = crate::react::command_dirs(cfg, sid)?;
        let mut path = String::new();
        if let Some(bin) = &cfg.bin_dir {
            path.push_str(&format!("{}:", bin.display()));
        }
        path.push_str("/usr/local/bin:/usr/bin:/bin");
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), path),
            ("HOME".into(), work.display().to_string()),
            ("TMPDIR".into(), tmp.display().to_string()),
            ("LANG".into(), "C.UTF-8".into()),
        ];
        env.extend(extra);
        env.retain(|(k, _)| !k.starts_with("AOS_"));
        env.extend([
            ("AOS_API_URL".into(), self.k.api_url()),
            ("AOS_API_TOKEN".into(), self.token.clone()),
            ("AOS_AGENT_ID".into(), self.scb.agent_id.clone()),
            ("AOS_SESSION_ID".into(), sid.clone()),
        ]);
        let confinement = match &self.sandbox {
            Some(s) => Some(
                crate::sandbox::confine(self.k, s, sid)
                    .map_err(|e| std::io::Error::other(e.message))?,
            ),
            None => None,
        };
        Ok(CommandSetup {
            cwd: work,
            env,
            pid_file: crate::react::pid_file(cfg, sid),
            confinement,
        })
    }

    /// A note for the agent when a failed command's output shows the
    /// sandbox refused it: what is allowed and which permission grants more.
    pub fn sandbox_hint(&self, output: &str) -> Option<String> {
        let s = self.sandbox.as_ref()?;
        crate::sandbox::hint(&s.policy, &self.scb.agent_id, output)
    }
}

/// Runs one dispatch (its user message written at `first_seq`) through the
/// kernel's runner, with a session token for its bash that dies with it.
pub(crate) async fn run(
    k: &Kernel,
    state: &DispatchState,
    lease: String,
    first_seq: i64,
) -> Outcome {
    let scb = match k.inner.store.session_get(&state.session_id).await.sys() {
        Ok(s) => s,
        Err(e) => return Outcome::failed(None, Usage::default(), &e),
    };
    let token = k.issue_session_token(&scb.agent_id, &scb.session_id, &state.id);
    let port = DispatchPort {
        k,
        state,
        scb,
        lease,
        token: token.clone(),
        first_seq,
        sandbox: None,
    };
    let outcome = k.inner.runner.run(port).await;
    k.revoke_session_token(&token);
    outcome
}
