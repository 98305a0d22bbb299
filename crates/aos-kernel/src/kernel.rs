//! [`Kernel`]: start-up (`kernel.md` §4.1), the syscall entry point with its
//! RuntimeLog discipline, and the SessionHistory append path every writer uses.

use crate::authz::{self, Scope};
use crate::hooks::{HookEngine, HookScope};
use crate::params::StoreResult;
use crate::principal::ServiceGrant;
use crate::services::{ServiceDriver, ServiceOwner, ServiceTable, SyscallPort};
use crate::skills::resolve_defaults;
use crate::{KernelConfig, Principal, SkillRegistry, ops, recovery};
use aos_extension::events::EventBus;
use aos_store::{NewLogEntry, NewMessage, Store};
use aos_types::hook;
use aos_types::{
    Data, ErrorCode, Message, Request, Response, Scb, SyscallError, SyscallKind, syscall_info,
};
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;
use tracing::Instrument;

/// What a successful handler returns.
#[derive(Debug, Default)]
pub(crate) struct Done {
    /// The response `data`.
    pub data: Data,
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
            data: Data::Value(data),
            ..Done::default()
        }
    }

    /// A result already serialised (stored documents passed on as they are).
    pub fn json(data: Box<serde_json::value::RawValue>) -> Done {
        Done {
            data: Data::Json(data),
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
    pub runner: Arc<dyn crate::Runner>,
    pub drivers: Vec<Arc<dyn ServiceDriver>>,
    pub contexts: Mutex<HashMap<String, crate::context::Slot>>,
    pub started: Instant,
    pub stopping: AtomicBool,
    pub stop_signal: tokio::sync::watch::Sender<bool>,
    pub watcher: Mutex<Option<notify::RecommendedWatcher>>,
    /// Live session tokens → (agent, session).
    pub session_tokens: Mutex<HashMap<String, SessionToken>>,
    /// Live tokens of legacy service processes → their grant.
    pub service_tokens: Mutex<HashMap<String, ServiceGrant>>,
    /// Running and finished dispatches of this daemon.
    pub dispatches: crate::react::Dispatches,
    /// The daemon's API URL, for bash (`AOS_API_URL`); set once bound.
    pub api_url: Mutex<String>,
    /// The bash sandbox's view of this machine.
    pub sandbox: crate::sandbox::SandboxState,
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
    /// system-level default services, recovery of every session, then
    /// `aos.started`. `drivers` run skill services (WASM, legacy); `runner`
    /// runs dispatches and compaction summaries (the daemon's is the
    /// ReActUnit of `aos-react`).
    pub async fn start(
        store: Store,
        config: KernelConfig,
        drivers: Vec<Arc<dyn ServiceDriver>>,
        runner: Arc<dyn crate::Runner>,
    ) -> Result<Kernel, SyscallError> {
        let initial = config
            .defaults
            .to_aoscb(&config.system_name, &config.skill_root_string());
        store.aoscb_init(&initial).await.sys()?;
        let events = Arc::new(EventBus::new());
        let kernel = Kernel {
            inner: Arc::new(Inner {
                skills: Arc::new(SkillRegistry::new(
                    config.skill_roots.clone(),
                    config.builtin_skills.clone(),
                )),
                hooks: HookEngine::new(
                    events.clone(),
                    Arc::new(ServiceTable::default()),
                    Arc::new(crate::hooks::RuntimeLog(store.clone())),
                ),
                events,
                store,
                runner,
                drivers,
                contexts: Mutex::new(HashMap::new()),
                started: Instant::now(),
                stopping: AtomicBool::new(false),
                stop_signal: tokio::sync::watch::Sender::new(false),
                watcher: Mutex::new(None),
                session_tokens: Mutex::new(HashMap::new()),
                service_tokens: Mutex::new(HashMap::new()),
                dispatches: crate::react::Dispatches::default(),
                api_url: Mutex::new(String::new()),
                sandbox: crate::sandbox::SandboxState::probe(&config.bash_sandbox),
                config,
            }),
        };
        let indexed = kernel.inner.skills.snapshot().valid_count();
        kernel.emit(
            hook::SKILL_INDEX_REFRESH_AFTER,
            HookScope::default(),
            json!({ "indexedCount": indexed }),
        );
        if kernel.inner.config.watch_skills {
            kernel.watch_skills();
        }
        let system = kernel.inner.store.aoscb_get().await.sys()?;
        let starts = resolve_defaults(&[("system", &system.default_skills)])
            .into_iter()
            .filter(|r| r.start && r.start_from == Some("system"))
            .map(|r| r.name)
            .collect();
        ops::service::reconcile(&kernel, ServiceOwner::System, starts).await;
        recovery::recover_all(&kernel).await?;
        kernel.emit(
            hook::AOS_STARTED,
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
                // On a blocking thread: no request waits behind a scan.
                tokio::spawn(async move {
                    let index = k.inner.skills.refresh_async().await;
                    tracing::info!(
                        skills = index.valid_count(),
                        "skill roots changed; re-indexed"
                    );
                    k.emit(
                        hook::SKILL_INDEX_REFRESH_AFTER,
                        HookScope::default(),
                        json!({ "indexedCount": index.valid_count(), "cause": "watch" }),
                    );
                });
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

    /// The hook engine (embedders and tests drive hook points through it).
    pub fn hooks(&self) -> &HookEngine {
        &self.inner.hooks
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// This daemon's node id.
    pub fn node_id(&self) -> &str {
        &self.inner.config.node_id
    }

    /// The web assets (`web/`, canonical) of `skill` while it is installed —
    /// a valid skill in a root — and enabled: named in the system AOSCB's
    /// `defaultSkills` without `"start": "disable"`. Otherwise why not, for
    /// the person at the browser.
    pub async fn web_assets(&self, skill: &str) -> Result<std::path::PathBuf, String> {
        let index = self.inner.skills.snapshot();
        let entry = index
            .entry(skill)
            .filter(|e| e.manifest.is_some())
            .ok_or_else(|| format!("the {skill} skill is not installed in any skill root"))?;
        let system = self
            .inner
            .store
            .aoscb_get()
            .await
            .map_err(|e| format!("cannot read the AOSCB: {e}"))?;
        let enabled = system
            .default_skills
            .iter()
            .any(|r| r.name == skill && r.start != Some(aos_types::Switch::Disable));
        if !enabled {
            return Err(format!(
                "the {skill} skill is not enabled: add {{\"name\": \"{skill}\"}} to the AOSCB's defaultSkills (aos call system.update)"
            ));
        }
        entry
            .dir
            .join("web")
            .canonicalize()
            .map_err(|e| format!("the {skill} skill has no web/ directory: {e}"))
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
                hook::AOS_STOPPING,
                HookScope::default(),
                json!({ "reason": reason }),
            );
            self.inner.stop_signal.send_replace(true);
            if let Ok(mut w) = self.inner.watcher.lock() {
                w.take();
            }
        }
    }

    /// Interrupts running dispatches (each writes its interrupt fact) and
    /// waits for them up to `grace`.
    pub async fn drain_dispatches(&self, grace: std::time::Duration) {
        crate::react::interrupt_all(self, grace).await;
        for d in self.inner.dispatches.all_running() {
            crate::sandbox::release(self, &d.session_id).await;
        }
    }

    /// Runs `context.assemble` for a session with `trigger` (`rebuild`,
    /// `dispatch`, `incremental`) and caches the result, as the loop does
    /// (with the session it holds: `scb`, read once); returns how many
    /// context messages it holds. For benchmarks and tools.
    pub async fn assemble_context(&self, scb: &Scb, trigger: &str) -> Result<usize, SyscallError> {
        Ok(crate::context::assemble(self, scb, trigger)
            .await?
            .messages
            .len())
    }

    /// Resumes the dispatch inbox after a start: messages this node queued
    /// (`queue: true`) and had not started run now, in order. Call it once
    /// the API is reachable ([`Kernel::set_api_url`]), since their bash needs
    /// it. Returns how many were queued again.
    pub async fn resume_inbox(&self) -> Result<usize, SyscallError> {
        crate::react::resume(self).await
    }

    /// Stops every running service (after the server drained).
    pub async fn stop_services(&self) {
        ops::service::stop_owned(self, |_| true).await;
    }

    /// Executes one syscall for `principal`.
    pub async fn syscall(&self, principal: &Principal, req: Request) -> Response {
        let Request { op, mut params } = req;
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
                Some(_) => match self.authorize(principal, &op, &mut params).await {
                    Ok(()) => ops::route(self, principal, &op, params).await,
                    Err(e) => Err(e),
                },
            };
            let denied = matches!(&result, Err(e) if e.code == ErrorCode::PermissionDenied);
            if denied || info.is_some_and(|i| i.kind == SyscallKind::Command) {
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
        let (owner_type, owner_id) = p.log_owner();
        let entry = NewLogEntry {
            level,
            op: op.to_string(),
            owner_type: owner_type.to_string(),
            owner_id,
            agent_id,
            session_id,
            refs: None,
            data,
        };
        if let Err(e) = self.inner.store.log_append(entry).await {
            tracing::error!(error = %e, op, "cannot write the RuntimeLog");
        }
    }

    /// Checks `op` for `p`: a service's grant lists the op (or its group), a
    /// session token calls only the ops the op table allows it (`SyscallInfo::session_token`), and what the op touches lies
    /// within the caller's scope ([`crate::authz`]); a list's filter may be
    /// narrowed to that scope.
    async fn authorize(
        &self,
        p: &Principal,
        op: &str,
        params: &mut Map<String, Value>,
    ) -> Result<(), SyscallError> {
        let (who, kind) = match p {
            Principal::Operator | Principal::Kernel => return Ok(()),
            Principal::Service(g) => {
                g.allows_op(op)?;
                (format!("skill {}", g.skill), "service")
            }
            Principal::Session { session_id, .. } => {
                if !aos_types::syscall_info(op).is_some_and(|s| s.session_token) {
                    return Err(SyscallError::new(
                        ErrorCode::PermissionDenied,
                        format!(
                            "the token of session {session_id} may not call {op} (operator only)"
                        ),
                    )
                    .with_details(json!({ "missing": op, "principal": "session" })));
                }
                (format!("the token of session {session_id}"), "session")
            }
        };
        let scope = Scope::of(p);
        let caller = authz::Caller {
            who,
            kind,
            scope: &scope,
        };
        authz::check(self, &caller, op, params).await
    }

    /// Whether `p` may follow dispatch `id` (its stream): as `session.wait`.
    pub async fn authorize_dispatch(&self, p: &Principal, id: &str) -> Result<(), SyscallError> {
        let mut params = Map::new();
        params.insert("dispatchId".into(), Value::String(id.to_string()));
        self.authorize(p, "session.wait", &mut params).await
    }

    /// Issues a token scoped to one session (for the bash of one dispatch).
    pub(crate) fn issue_session_token(
        &self,
        agent_id: &str,
        session_id: &str,
        dispatch_id: &str,
    ) -> String {
        let token = format!("aos_s_{}", random_hex());
        if let Ok(mut t) = self.inner.session_tokens.lock() {
            t.insert(
                token.clone(),
                SessionToken {
                    agent_id: agent_id.to_string(),
                    session_id: session_id.to_string(),
                    dispatch_id: dispatch_id.to_string(),
                },
            );
        }
        token
    }

    /// Issues a token with exactly a service's grant (`AOS_API_TOKEN` of a
    /// legacy process); it dies with the instance.
    pub(crate) fn issue_service_token(&self, grant: ServiceGrant) -> String {
        let token = format!("aos_v_{}", random_hex());
        if let Ok(mut t) = self.inner.service_tokens.lock() {
            t.insert(token.clone(), grant);
        }
        token
    }

    /// Revokes the tokens of one service instance.
    pub(crate) fn revoke_service_tokens(&self, instance_id: &str) {
        if let Ok(mut t) = self.inner.service_tokens.lock() {
            t.retain(|_, g| g.instance_id != instance_id);
        }
    }

    /// The daemon's API URL (empty until it is bound).
    pub(crate) fn api_url(&self) -> String {
        self.inner
            .api_url
            .lock()
            .map(|u| u.clone())
            .unwrap_or_default()
    }

    /// Revokes a session token.
    pub(crate) fn revoke_session_token(&self, token: &str) {
        if let Ok(mut t) = self.inner.session_tokens.lock() {
            t.remove(token);
        }
    }

    /// The principal of a live session or service token.
    pub fn token_principal(&self, token: &str) -> Option<Principal> {
        if let Some(g) = self
            .inner
            .service_tokens
            .lock()
            .ok()
            .and_then(|t| t.get(token).cloned())
        {
            // A stopped or failed instance's token is dead even before it
            // is revoked (one still starting, or transient, is not listed).
            let ended = self
                .inner
                .hooks
                .table()
                .get(&g.instance_id)
                .is_some_and(|e| e.state().0 != crate::services::ServiceState::Running);
            return (!ended).then_some(Principal::Service(g));
        }
        let t = self.inner.session_tokens.lock().ok()?;
        t.get(token).map(|s| Principal::Session {
            agent_id: s.agent_id.clone(),
            session_id: s.session_id.clone(),
            dispatch_id: Some(s.dispatch_id.clone()),
        })
    }

    /// Fires an event hook.
    pub(crate) fn emit(&self, name: aos_types::Event, scope: HookScope<'_>, payload: Value) {
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
        self.append_with(scb, expected, messages, None).await
    }

    /// [`Kernel::append`], writing `log` to the RuntimeLog in the same
    /// transaction when given.
    pub(crate) async fn append_with(
        &self,
        scb: &Scb,
        expected: Option<i64>,
        messages: Vec<NewMessage>,
        log: Option<aos_store::NewLogEntry>,
    ) -> Result<(Vec<Message>, Scb), SyscallError> {
        let scope = || HookScope {
            agent_id: Some(&scb.agent_id),
            session_id: Some(&scb.session_id),
        };
        let mut admitted = Vec::with_capacity(messages.len());
        for m in messages {
            admitted.push(self.before_write(scb, m, scope()).await?);
        }
        let store = &self.inner.store;
        let (msgs, after) = match log {
            Some(log) if expected.is_none() => {
                store.append_logged(&scb.session_id, admitted, log).await
            }
            _ => store.append(&scb.session_id, expected, admitted).await,
        }
        .sys()?;
        for m in &msgs {
            self.emit(
                hook::CONTEXT_INGEST,
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
            .has_handler(hook::SESSION_MESSAGE_BEFORE_WRITE, scope)
        {
            return Ok(m);
        }
        let message = json!({ "role": m.role, "parts": m.parts });
        let input =
            json!({ "agentId": scb.agent_id, "sessionId": scb.session_id, "message": message });
        let out = self
            .inner
            .hooks
            .admit(hook::SESSION_MESSAGE_BEFORE_WRITE, scope, &input, message)
            .await?;
        let rewritten: RoleParts = serde_json::from_value(out).map_err(|e| {
            SyscallError::new(
                ErrorCode::HookRejected,
                format!("session.message.beforeWrite returned an invalid message: {e}"),
            )
        })?;
        // The rewrite obeys the limits of `session.append`.
        if rewritten.parts.is_empty() || rewritten.parts.len() > crate::params::MAX_PARTS {
            return Err(SyscallError::new(
                ErrorCode::HookRejected,
                format!(
                    "session.message.beforeWrite returned {} parts; a message holds 1 to {}",
                    rewritten.parts.len(),
                    crate::params::MAX_PARTS
                ),
            ));
        }
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
    /// A dispatch's stream for `GET /v1/dispatch/{id}/stream`: the session it
    /// belongs to, the events so far, and the live receiver.
    pub fn dispatch_stream(
        &self,
        dispatch_id: &str,
    ) -> Option<(
        String,
        Vec<crate::react::StreamEvent>,
        tokio::sync::broadcast::Receiver<crate::react::StreamEvent>,
    )> {
        crate::react::stream(self, dispatch_id)
    }

    /// Tells the kernel its API URL (bash gets it as `AOS_API_URL`).
    pub fn set_api_url(&self, url: &str) {
        if let Ok(mut u) = self.inner.api_url.lock() {
            *u = url.to_string();
        }
    }

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

/// 24 random bytes in hex: the secret part of a token.
fn random_hex() -> String {
    let bytes: [u8; 24] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a live session token stands for.
pub(crate) struct SessionToken {
    agent_id: String,
    session_id: String,
    dispatch_id: String,
}

/// The syscall door handed to a service: every call runs as the service's
/// principal. Holds the kernel weakly, so a service never keeps it alive.
pub(crate) struct KernelPort {
    inner: Weak<Inner>,
    principal: Principal,
}

impl KernelPort {
    pub(crate) fn new(k: &Kernel, principal: Principal) -> Self {
        KernelPort {
            inner: Arc::downgrade(&k.inner),
            principal,
        }
    }
}

impl SyscallPort for KernelPort {
    fn exited(&self, reason: String) {
        let (Some(inner), Principal::Service(g)) = (self.inner.upgrade(), &self.principal) else {
            return;
        };
        let instance_id = g.instance_id.clone();
        tokio::spawn(async move {
            crate::ops::service::exited(&Kernel { inner }, &instance_id, reason).await;
        });
    }

    fn denied(&self, capability: &str, fix: String) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let (owner_type, owner_id) = self.principal.log_owner();
        let entry = NewLogEntry {
            level: "warn",
            op: "capability.denied".into(),
            owner_type: owner_type.to_string(),
            owner_id,
            agent_id: None,
            session_id: None,
            refs: None,
            data: Some(json!({ "capability": capability, "fix": fix })),
        };
        tracing::warn!(capability, %fix, "capability denied");
        tokio::spawn(async move {
            if let Err(e) = inner.store.log_append(entry).await {
                tracing::error!(error = %e, "cannot write the RuntimeLog");
            }
        });
    }

    fn call(&self, op: String, payload: String) -> BoxFuture<'static, Result<Data, SyscallError>> {
        let inner = self.inner.clone();
        let principal = self.principal.clone();
        Box::pin(async move {
            let inner = inner.upgrade().ok_or_else(|| {
                SyscallError::new(ErrorCode::Unavailable, "the kernel is stopping")
            })?;
            let mut params = match serde_json::from_str::<Value>(&payload) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err(SyscallError::invalid("the payload must be a JSON object")),
                Err(e) => {
                    return Err(SyscallError::invalid(format!(
                        "the payload is not valid JSON: {e}"
                    )));
                }
            };
            params.insert("op".into(), Value::String(op));
            let req = Request::from_value(Value::Object(params))?;
            let kernel = Kernel { inner };
            let call = kernel.syscall(&principal, req);
            let response = match &principal {
                Principal::Service(g) => crate::hooks::within_service(&g.instance_id, call).await,
                _ => call.await,
            };
            match response {
                Response::Ok { data, .. } => Ok(data),
                Response::Err { error, .. } => Err(error),
            }
        })
    }
}
