//! [`Kernel`]: start-up (`kernel.md` §4.1), the syscall entry point with its
//! RuntimeLog discipline, and the SessionHistory append path every writer uses.

use crate::context::SessionContext;
use crate::events::EventBus;
use crate::hooks::{HookEngine, HookScope};
use crate::params::StoreResult;
use crate::{KernelConfig, Principal, SkillRegistry, ops, recovery};
use aos_store::{NewLogEntry, NewMessage, Store};
use aos_types::{
    ErrorCode, Message, Request, Response, Scb, SyscallError, SyscallKind, syscall_info,
};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::Instrument;

/// What a successful handler returns.
#[derive(Debug, Default)]
pub(crate) struct Done {
    /// The response `data`.
    pub data: Value,
    /// The new revision of the changed control block (commands).
    pub revision: Option<i64>,
    /// Agent concerned, for the RuntimeLog.
    pub agent_id: Option<String>,
    /// Session concerned, for the RuntimeLog.
    pub session_id: Option<String>,
}

impl Done {
    /// A result with data only.
    pub fn data(data: Value) -> Done {
        Done {
            data,
            ..Done::default()
        }
    }

    /// Adds the revision.
    pub fn rev(mut self, revision: i64) -> Done {
        self.revision = Some(revision);
        self
    }

    /// Adds agent/session ids for the log.
    pub fn ids(mut self, agent_id: Option<&str>, session_id: Option<&str>) -> Done {
        self.agent_id = agent_id.map(String::from);
        self.session_id = session_id.map(String::from);
        self
    }
}

pub(crate) type OpResult = Result<Done, SyscallError>;

/// The kernel. Cheap to clone.
#[derive(Clone)]
pub struct Kernel {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Store,
    pub config: KernelConfig,
    pub skills: Arc<SkillRegistry>,
    pub events: Arc<EventBus>,
    pub hooks: HookEngine,
    pub contexts: Mutex<HashMap<String, SessionContext>>,
    pub started: Instant,
    pub stopping: AtomicBool,
    pub stop_signal: tokio::sync::watch::Sender<bool>,
    pub watcher: Mutex<Option<notify::RecommendedWatcher>>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("node", &self.inner.config.node_id)
            .finish()
    }
}

impl Kernel {
    /// Starts the kernel on an open store: AOSCB, skill index (and watcher),
    /// recovery of every session, then `aos.started`.
    pub async fn start(store: Store, config: KernelConfig) -> Result<Kernel, SyscallError> {
        let initial = config
            .defaults
            .to_aoscb(&config.system_name, &config.skill_root_string());
        store.aoscb_init(&initial).await.sys()?;
        let events = Arc::new(EventBus::new());
        let kernel = Kernel {
            inner: Arc::new(Inner {
                skills: Arc::new(SkillRegistry::new(config.skill_roots.clone())),
                hooks: HookEngine::new(events.clone()),
                events,
                store,
                contexts: Mutex::new(HashMap::new()),
                started: Instant::now(),
                stopping: AtomicBool::new(false),
                stop_signal: tokio::sync::watch::Sender::new(false),
                watcher: Mutex::new(None),
                config,
            }),
        };
        let indexed = kernel.inner.skills.snapshot().valid_count();
        kernel.emit(
            "skill.index.refresh.after",
            HookScope::default(),
            json!({ "indexedCount": indexed }),
        );
        if kernel.inner.config.watch_skills {
            kernel.watch_skills();
        }
        recovery::recover_all(&kernel).await?;
        kernel.emit(
            "aos.started",
            HookScope::default(),
            json!({ "cause": "start", "catalogSize": indexed }),
        );
        tracing::info!(node = %kernel.inner.config.node_id, skills = indexed, "kernel started");
        Ok(kernel)
    }

    fn watch_skills(&self) {
        let weak = Arc::downgrade(&self.inner);
        let watcher = self.inner.skills.watch(move || {
            if let Some(inner) = weak.upgrade() {
                let k = Kernel { inner };
                let index = k.inner.skills.refresh();
                tracing::info!(
                    skills = index.valid_count(),
                    "skill roots changed; re-indexed"
                );
                k.emit(
                    "skill.index.refresh.after",
                    HookScope::default(),
                    json!({ "indexedCount": index.valid_count(), "cause": "watch" }),
                );
            }
        });
        match watcher {
            Ok(w) => {
                if let Ok(mut slot) = self.inner.watcher.lock() {
                    *slot = Some(w);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch skill roots; use skill.index.refresh")
            }
        }
    }

    /// The event bus (for `/v1/events`).
    pub fn events(&self) -> &Arc<EventBus> {
        &self.inner.events
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// This daemon's node id.
    pub fn node_id(&self) -> &str {
        &self.inner.config.node_id
    }

    /// Seconds since start.
    pub fn uptime_s(&self) -> u64 {
        self.inner.started.elapsed().as_secs()
    }

    /// Stops: `aos.stopping`, then every new syscall is refused with
    /// `unavailable`. The caller closes the store after the server drained.
    pub fn begin_shutdown(&self, reason: &str) {
        if !self.inner.stopping.swap(true, Ordering::SeqCst) {
            self.emit(
                "aos.stopping",
                HookScope::default(),
                json!({ "reason": reason }),
            );
            self.inner.stop_signal.send_replace(true);
            if let Ok(mut w) = self.inner.watcher.lock() {
                w.take();
            }
        }
    }

    /// Executes one syscall for `principal`.
    pub async fn syscall(&self, principal: &Principal, req: Request) -> Response {
        let Request { op, params } = req;
        let ids = LogIds::from_params(&params);
        let span = tracing::info_span!(
            "syscall",
            op = %op,
            agent = ids.agent_id.as_deref().unwrap_or(""),
            session = ids.session_id.as_deref().unwrap_or(""),
        );
        async {
            let info = syscall_info(&op);
            let result = match info {
                None => Err(SyscallError::new(
                    ErrorCode::OpUnknown,
                    format!("unknown syscall {op:?}; see docs/syscalls.md for the list"),
                )),
                Some(_) if self.inner.stopping.load(Ordering::SeqCst) => Err(SyscallError::new(
                    ErrorCode::Unavailable,
                    "the daemon is stopping and accepts no new requests",
                )),
                Some(_) => ops::route(self, principal, &op, params).await,
            };
            if info.is_some_and(|i| i.kind == SyscallKind::Command) {
                self.log_command(principal, &op, &ids, &result).await;
            }
            match result {
                Ok(done) => Response::ok(op, done.revision, done.data),
                Err(e) => {
                    tracing::debug!(code = %e.code, message = %e.message, "syscall failed");
                    Response::err(op, e)
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn log_command(&self, p: &Principal, op: &str, ids: &LogIds, result: &OpResult) {
        let (level, agent_id, session_id, data) = match result {
            Ok(d) => (
                "info",
                d.agent_id.clone().or_else(|| ids.agent_id.clone()),
                d.session_id.clone().or_else(|| ids.session_id.clone()),
                d.revision.map(|r| json!({ "revision": r })),
            ),
            Err(e) => (
                "warn",
                ids.agent_id.clone(),
                ids.session_id.clone(),
                Some(json!({ "error": e })),
            ),
        };
        let entry = NewLogEntry {
            level,
            op: op.to_string(),
            owner_type: p.log_owner().to_string(),
            owner_id: None,
            agent_id,
            session_id,
            refs: None,
            data,
        };
        if let Err(e) = self.inner.store.log_append(entry).await {
            tracing::error!(error = %e, op, "cannot write the RuntimeLog");
        }
    }

    /// Fires an event hook.
    pub(crate) fn emit(&self, name: &str, scope: HookScope<'_>, payload: Value) {
        self.inner.hooks.emit(name, scope, payload);
    }

    /// Appends messages to a session's history through
    /// `session.message.beforeWrite`, then fires `context.ingest` for each.
    pub(crate) async fn append(
        &self,
        scb: &Scb,
        expected: Option<i64>,
        messages: Vec<NewMessage>,
    ) -> Result<(Vec<Message>, Scb), SyscallError> {
        let scope = || HookScope {
            agent_id: Some(&scb.agent_id),
            session_id: Some(&scb.session_id),
        };
        let mut admitted = Vec::with_capacity(messages.len());
        for m in messages {
            admitted.push(self.before_write(scb, m, scope()).await?);
        }
        let (msgs, after) = self
            .inner
            .store
            .append(&scb.session_id, expected, admitted)
            .await
            .sys()?;
        for m in &msgs {
            self.emit(
                "context.ingest",
                scope(),
                json!({ "sessionId": scb.session_id, "agentId": scb.agent_id, "message": m, "seq": m.metadata.seq }),
            );
        }
        Ok((msgs, after))
    }

    async fn before_write(
        &self,
        scb: &Scb,
        m: NewMessage,
        scope: HookScope<'_>,
    ) -> Result<NewMessage, SyscallError> {
        if !self
            .inner
            .hooks
            .has_handler("session.message.beforeWrite", scope.clone())
        {
            return Ok(m);
        }
        let message = json!({ "role": m.role, "parts": m.parts });
        let input =
            json!({ "agentId": scb.agent_id, "sessionId": scb.session_id, "message": message });
        let out = self
            .inner
            .hooks
            .admit("session.message.beforeWrite", scope, &input, message)
            .await?;
        let rewritten: RoleParts = serde_json::from_value(out).map_err(|e| {
            SyscallError::new(
                ErrorCode::HookRejected,
                format!("session.message.beforeWrite returned an invalid message: {e}"),
            )
        })?;
        Ok(NewMessage {
            role: rewritten.role,
            parts: rewritten.parts,
            ..m
        })
    }
}

#[derive(serde::Deserialize)]
struct RoleParts {
    role: aos_types::Role,
    parts: Vec<aos_types::Part>,
}

/// Agent/session ids named by a request, for the RuntimeLog of failures.
struct LogIds {
    agent_id: Option<String>,
    session_id: Option<String>,
}

impl LogIds {
    fn from_params(p: &Map<String, Value>) -> LogIds {
        let get = |k: &str| {
            p.get(k)
                .and_then(Value::as_str)
                .filter(|s| aos_types::validate_id(s))
                .map(String::from)
        };
        LogIds {
            agent_id: get("agentId"),
            session_id: get("sessionId"),
        }
    }
}

impl Kernel {
    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::SeqCst)
    }

    /// Resolves once shutdown has begun (long-lived streams end on it).
    pub async fn stopped(&self) {
        let mut rx = self.inner.stop_signal.subscribe();
        let _ = rx.wait_for(|stopping| *stopping).await;
    }
}
