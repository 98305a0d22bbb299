//! The kernel's side of the seam in `crate::runner`: the [`DispatchPort`]
//! of one dispatch, and the run of a dispatch through the kernel's
//! [`crate::Runner`] with a session token that dies with it.

use super::lease::set_phase;
use crate::compaction;
use crate::dispatches::{DispatchState, Outcome};
use crate::hooks::HookEngine;
use crate::kernel::{Kernel, Write};
use crate::params::StoreResult;
use crate::runner::{CommandSetup, Compaction, DispatchPort};
use crate::sandbox::SessionSandbox;
use crate::session_context::SessionContext;
use aos_extension::telemetry::Telemetry;
use aos_store::{HistoryQuery, NewLogEntry, NewMessage};
use aos_types::{Acb, Aoscb, Event, Message, Scb, SessionPhase, SyscallError, Usage};
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::watch;

/// The kernel's [`DispatchPort`] of one dispatch.
struct Port<'a> {
    k: &'a Kernel,
    state: &'a DispatchState,
    scb: Scb,
    lease: String,
    token: String,
    first_seq: i64,
    sandbox: Option<SessionSandbox>,
}

impl DispatchPort for Port<'_> {
    fn dispatch_id(&self) -> &str {
        &self.state.id
    }

    fn first_seq(&self) -> i64 {
        self.first_seq
    }

    fn session(&self) -> &Scb {
        &self.scb
    }

    fn hooks(&self) -> &HookEngine {
        self.k.hooks()
    }

    fn telemetry(&self) -> &Telemetry {
        self.k.telemetry()
    }

    fn emit(&self, event: Event, payload: Value) {
        self.k.emit(event, self.scope(), payload);
    }

    fn agent(&self) -> BoxFuture<'_, Result<Acb, SyscallError>> {
        Box::pin(async move { self.k.store().agent_get(&self.scb.agent_id).await.sys() })
    }

    fn system(&self) -> BoxFuture<'_, Result<Aoscb, SyscallError>> {
        Box::pin(async move { self.k.store().aoscb_get().await.sys() })
    }

    fn prepare_sandbox(&mut self) -> BoxFuture<'_, Result<(), SyscallError>> {
        Box::pin(async move {
            let agent = self.agent().await?;
            let k = self.k;
            self.sandbox =
                k.sandbox()
                    .prepare(k.config(), &k.api_url(), &agent, &self.scb.session_id)?;
            Ok(())
        })
    }

    fn append(
        &mut self,
        message: NewMessage,
        log: Option<NewLogEntry>,
    ) -> BoxFuture<'_, Result<Message, SyscallError>> {
        Box::pin(async move {
            let (mut msgs, after) = self
                .k
                .append_with(&self.scb, Write::Leased(&self.lease), vec![message], log)
                .await?;
            self.scb = after;
            msgs.pop()
                .ok_or_else(|| SyscallError::internal("append returned nothing"))
        })
    }

    fn history_from(&self, from_seq: i64) -> BoxFuture<'_, Result<Vec<Message>, SyscallError>> {
        Box::pin(async move {
            let q = HistoryQuery {
                from_seq,
                to_seq: None,
                limit: 10_000,
            };
            self.k.store().history(&self.scb.session_id, &q).await.sys()
        })
    }

    fn assemble_context<'b>(
        &'b self,
        trigger: &'b str,
    ) -> BoxFuture<'b, Result<SessionContext, SyscallError>> {
        Box::pin(crate::context::assemble(self.k, &self.scb, trigger))
    }

    fn fold_threshold(&self) -> BoxFuture<'_, Result<i64, SyscallError>> {
        Box::pin(crate::context::fold_threshold(self.k, &self.scb, None))
    }

    fn compact(
        &mut self,
        overflow: bool,
        asked: Option<String>,
    ) -> BoxFuture<'_, Result<Option<Compaction>, SyscallError>> {
        Box::pin(async move {
            let k = self.k;
            if !compaction::available(k, &self.scb) {
                return Ok(None);
            }
            let sid = self.scb.session_id.clone();
            self.scb = set_phase(k, &sid, &self.lease, SessionPhase::Compacting).await?;
            let trigger = compaction::Trigger {
                auto: asked.is_none(),
                overflow,
                reason: asked
                    .unwrap_or_else(|| if overflow { "overflow" } else { "threshold" }.into()),
            };
            let result = compaction::run(k, &self.scb, &trigger).await;
            self.scb = set_phase(k, &sid, &self.lease, SessionPhase::Dispatched).await?;
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
        })
    }

    fn take_compact_request(&self) -> Option<String> {
        self.state.take_compact_request()
    }

    fn interrupted(&self) -> Option<String> {
        self.state.interrupt.borrow().clone()
    }

    fn interrupts(&self) -> watch::Receiver<Option<String>> {
        self.state.interrupt.subscribe()
    }

    fn publish(&self, event: &'static str, data: Value) {
        self.state.publish(event, data);
    }

    fn command(&self, extra: Vec<(String, String)>) -> std::io::Result<CommandSetup> {
        let cfg = self.k.config();
        let sid = &self.scb.session_id;
        let (work, tmp) = crate::paths::command_dirs(cfg, sid)?;
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
                self.k
                    .sandbox()
                    .confine(s, sid)
                    .map_err(|e| std::io::Error::other(e.message))?,
            ),
            None => None,
        };
        Ok(CommandSetup {
            cwd: work,
            env,
            pid_file: crate::paths::pid_file(cfg, sid),
            confinement,
        })
    }

    fn sandbox_hint(&self, output: &str) -> Option<String> {
        let s = self.sandbox.as_ref()?;
        crate::sandbox::hint(&s.policy, &self.scb.agent_id, output)
    }
}

/// Runs one dispatch (its user message written at `first_seq`) through the
/// kernel's runner, with a session token for its bash that dies with it.
pub(super) async fn run(
    k: &Kernel,
    state: &DispatchState,
    lease: String,
    first_seq: i64,
) -> Outcome {
    let scb = match k.store().session_get(&state.session_id).await.sys() {
        Ok(s) => s,
        Err(e) => return Outcome::failed(None, Usage::default(), &e),
    };
    let token = k.issue_session_token(&scb.agent_id, &scb.session_id, &state.id);
    let (agent, session) = (scb.agent_id.clone(), scb.session_id.clone());
    tracing::info!(dispatch = %state.id, %agent, %session, "dispatch started");
    let started = std::time::Instant::now();
    let mut port = Port {
        k,
        state,
        scb,
        lease,
        token: token.clone(),
        first_seq,
        sandbox: None,
    };
    let outcome = k.runner().run(&mut port).await;
    k.revoke_session_token(&token);
    ended(k, state, &agent, &session, &outcome, started.elapsed()).await;
    outcome
}

/// The record of a dispatch's end: an info line and the RuntimeLog entry
/// `dispatch.ended` (status, tokens, duration, error).
async fn ended(
    k: &Kernel,
    state: &DispatchState,
    agent: &str,
    session: &str,
    o: &Outcome,
    took: std::time::Duration,
) {
    let ms = took.as_millis() as u64;
    k.telemetry().dispatch_ended(&o.status);
    tracing::info!(dispatch = %state.id, %agent, %session, status = %o.status,
        total_tokens = o.usage.total_tokens, duration_ms = ms, "dispatch ended");
    let entry = NewLogEntry {
        level: if o.status == "failed" { "warn" } else { "info" },
        op: "dispatch.ended".into(),
        owner_type: "session".into(),
        owner_id: Some(session.to_string()),
        agent_id: Some(agent.to_string()),
        session_id: Some(session.to_string()),
        refs: Some(serde_json::json!({ "dispatchId": state.id })),
        data: Some(serde_json::json!({ "status": o.status, "usage": o.usage,
                                       "durationMs": ms, "error": o.error })),
    };
    if let Err(e) = k.store().log_append(entry).await {
        tracing::error!(error = %e, "cannot write the RuntimeLog");
    }
}
