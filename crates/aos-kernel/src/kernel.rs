//! [`Kernel`]: the kernel's state behind accessors — store, configuration,
//! skill index, hooks, dispatches, tokens — and the SessionHistory append
//! path every writer uses. Start-up is `start.rs`, the syscall entry point
//! `router.rs`.

use crate::dispatches::Dispatches;
use crate::hooks::{HookEngine, HookScope};
use crate::params::StoreResult;
use crate::principal::ServiceGrant;
use crate::sandbox::SandboxState;
use crate::services::{ServiceDriver, ServiceTable};
use crate::session_context::ContextCache;
use crate::{KernelConfig, Principal, SkillRegistry};
use aos_extension::events::EventBus;
use aos_store::{NewMessage, Store};
use aos_types::hook;
use aos_types::{Data, ErrorCode, Message, Scb, SyscallError};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

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
    inner: Arc<Inner>,
}

/// A kernel held weakly (services, watchers): it never keeps one alive.
#[derive(Clone)]
pub(crate) struct WeakKernel(Weak<Inner>);

impl WeakKernel {
    /// The kernel, while it still runs.
    pub(crate) fn upgrade(&self) -> Option<Kernel> {
        self.0.upgrade().map(|inner| Kernel { inner })
    }
}

/// The payload of `context.ingest` for message `m` appended to `scb`'s session.
pub(crate) fn ingest_payload(scb: &Scb, m: &Message) -> Value {
    json!({ "sessionId": scb.session_id, "agentId": scb.agent_id, "message": m, "seq": m.metadata.seq })
}

/// What an append must find: the session's lease still the writer's (the
/// writes of a dispatch or compaction), or a revision if one is given.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Write<'a> {
    /// Under this lease; refused with `lease.expired` once it was lost.
    Leased(&'a str),
    /// At this revision (`None`: any).
    Expecting(Option<i64>),
}

/// The kernel's state: each part is reached through an accessor, so the
/// modules above see what they use, not this struct.
struct Inner {
    store: Store,
    config: KernelConfig,
    skills: Arc<SkillRegistry>,
    events: Arc<EventBus>,
    hooks: HookEngine,
    runner: Arc<dyn crate::Runner>,
    drivers: Vec<Arc<dyn ServiceDriver>>,
    contexts: ContextCache,
    started: Instant,
    /// When it started, as stored (the node registry).
    started_at: String,
    /// Whether its last heartbeat reached the store (readiness).
    store_reachable: AtomicBool,
    stopping: AtomicBool,
    stop_signal: tokio::sync::watch::Sender<bool>,
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
    /// Live session tokens → (agent, session).
    session_tokens: Mutex<HashMap<String, SessionToken>>,
    /// Live tokens of legacy service processes → their grant.
    service_tokens: Mutex<HashMap<String, ServiceGrant>>,
    /// Running and finished dispatches of this daemon.
    dispatches: Dispatches,
    /// The daemon's API URL, for bash (`AOS_API_URL`); set once bound.
    api_url: Mutex<String>,
    /// The bash sandbox's view of this machine.
    sandbox: SandboxState,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("node", &self.inner.config.node_id)
            .finish()
    }
}

impl Kernel {
    /// The kernel's state on `store`, before anything starts (see
    /// [`Kernel::start`]).
    pub(crate) fn new(
        store: Store,
        config: KernelConfig,
        drivers: Vec<Arc<dyn ServiceDriver>>,
        runner: Arc<dyn crate::Runner>,
    ) -> Kernel {
        let events = Arc::new(EventBus::new());
        Kernel {
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
                contexts: ContextCache::default(),
                started: Instant::now(),
                started_at: aos_types::now(),
                store_reachable: AtomicBool::new(true),
                stopping: AtomicBool::new(false),
                stop_signal: tokio::sync::watch::Sender::new(false),
                watcher: Mutex::new(None),
                session_tokens: Mutex::new(HashMap::new()),
                service_tokens: Mutex::new(HashMap::new()),
                dispatches: Dispatches::default(),
                api_url: Mutex::new(String::new()),
                sandbox: SandboxState::probe(&config.bash_sandbox),
                config,
            }),
        }
    }

    /// A weak handle on this kernel.
    pub(crate) fn downgrade(&self) -> WeakKernel {
        WeakKernel(Arc::downgrade(&self.inner))
    }

    /// The configuration it started with.
    pub(crate) fn config(&self) -> &KernelConfig {
        &self.inner.config
    }

    /// The skill index.
    pub(crate) fn skills(&self) -> &Arc<SkillRegistry> {
        &self.inner.skills
    }

    /// What runs dispatches and compaction summaries.
    pub(crate) fn runner(&self) -> &dyn crate::Runner {
        self.inner.runner.as_ref()
    }

    /// The service runtimes (WASM, legacy).
    pub(crate) fn drivers(&self) -> &[Arc<dyn ServiceDriver>] {
        &self.inner.drivers
    }

    /// The cached SessionContexts.
    pub(crate) fn contexts(&self) -> &ContextCache {
        &self.inner.contexts
    }

    /// This daemon's dispatches.
    pub(crate) fn dispatches(&self) -> &Dispatches {
        &self.inner.dispatches
    }

    /// The bash sandbox's view of this machine.
    pub(crate) fn sandbox(&self) -> &SandboxState {
        &self.inner.sandbox
    }

    /// Keeps the skill roots' watcher (dropped at shutdown).
    pub(crate) fn keep_watcher(&self, w: notify::RecommendedWatcher) {
        if let Ok(mut slot) = self.inner.watcher.lock() {
            *slot = Some(w);
        }
    }

    /// What the daemon counts, for `/metrics`.
    pub fn telemetry(&self) -> &aos_extension::telemetry::Telemetry {
        self.inner.hooks.telemetry()
    }

    /// The kernel's part of `/metrics`: what it and its runner counted, and
    /// the services by state.
    pub async fn metrics_text(&self) -> String {
        let mut out = String::new();
        self.telemetry().render(&mut out);
        self.render_counts(&mut out).await;
        let mut by_state = std::collections::BTreeMap::new();
        out.push_str("# HELP aos_service_calls_total Calls into each service instance (hooks, events, commands).\n# TYPE aos_service_calls_total counter\n");
        for e in self.inner.hooks.table().all() {
            *by_state
                .entry(format!("{:?}", e.state().0).to_lowercase())
                .or_insert(0u64) += 1;
            out.push_str(&format!(
                "aos_service_calls_total{{skill=\"{}\",instance=\"{}\"}} {}\n",
                e.skill_name,
                e.instance_id,
                e.calls()
            ));
        }
        out.push_str("# HELP aos_services Service instances this daemon knows, by state.\n# TYPE aos_services gauge\n");
        for state in ["running", "stopped", "error"] {
            let n = by_state.get(state).copied().unwrap_or(0);
            out.push_str(&format!("aos_services{{state=\"{state}\"}} {n}\n"));
        }
        out
    }

    /// Agents and sessions in the store, by status (a store error leaves
    /// the families out and is logged).
    async fn render_counts(&self, out: &mut String) {
        let counts = match self.inner.store.counts().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "/metrics: cannot count agents and sessions");
                return;
            }
        };
        for kind in ["agents", "sessions"] {
            out.push_str(&format!(
                "# HELP aos_{kind} {} in the store, by status.\n# TYPE aos_{kind} gauge\n",
                if kind == "agents" {
                    "Agents"
                } else {
                    "Sessions"
                }
            ));
            for (k, status, n) in &counts.0 {
                if k == kind {
                    out.push_str(&format!("aos_{kind}{{status=\"{status}\"}} {n}\n"));
                }
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

    /// When this node started.
    pub(crate) fn started_at(&self) -> &str {
        &self.inner.started_at
    }

    /// Records whether the last heartbeat reached the store.
    pub(crate) fn set_store_reachable(&self, ok: bool) {
        self.inner.store_reachable.store(ok, Ordering::Relaxed);
    }

    /// Whether this node should get traffic (`/health` for load balancers):
    /// not stopping, and its last heartbeat reached the store.
    pub fn ready(&self) -> bool {
        !self.is_stopping() && self.inner.store_reachable.load(Ordering::Relaxed)
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
        self.append_with(scb, Write::Expecting(expected), messages, None)
            .await
    }

    /// [`Kernel::append`], under a lease or a revision as `write` says, and
    /// writing `log` to the RuntimeLog in the same transaction when given.
    pub(crate) async fn append_with(
        &self,
        scb: &Scb,
        write: Write<'_>,
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
        let started = Instant::now();
        let sid = &scb.session_id;
        let appended = match (write, log) {
            (Write::Leased(lease), log) => store.append_fenced(sid, lease, admitted, log).await,
            (Write::Expecting(None), Some(log)) => store.append_logged(sid, admitted, log).await,
            (Write::Expecting(expected), _) => store.append(sid, expected, admitted).await,
        };
        self.telemetry().append(started.elapsed());
        let (msgs, after) = appended.sys()?;
        // On a shared store the append wrote the events too, in its
        // transaction: this node's handlers get them here, every bus from the log.
        let logged = store.logs_facts();
        for m in &msgs {
            let payload = ingest_payload(scb, m);
            match logged {
                true => self
                    .inner
                    .hooks
                    .emit_logged(hook::CONTEXT_INGEST, scope(), payload),
                false => self
                    .inner
                    .hooks
                    .emit(hook::CONTEXT_INGEST, scope(), payload),
            }
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

impl Kernel {
    /// Tells the kernel its API URL (bash gets it as `AOS_API_URL`).
    pub fn set_api_url(&self, url: &str) {
        if let Ok(mut u) = self.inner.api_url.lock() {
            *u = url.to_string();
        }
    }

    /// Runs `tick` every `period` for as long as the kernel lives and is not
    /// stopping (the node's heartbeat, the takeover sweep).
    pub(crate) fn every<F, Fut>(&self, period: std::time::Duration, tick: F)
    where
        F: Fn(Kernel) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let weak = self.downgrade();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(k) = weak.upgrade() else { return };
                if k.is_stopping() {
                    return;
                }
                tick(k).await;
            }
        });
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
