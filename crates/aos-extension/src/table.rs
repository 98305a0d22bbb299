//! The table of running service instances and their hook registrations:
//! who handles which hook, in which order (system → agent → session, then
//! registration order), and each instance's state, calls and failures.

use crate::driver::{Registration, ServiceInstance, ServiceOwner, ServiceState};
use crate::telemetry::{HookStats, Telemetry};
use aos_manifest::ServiceKind;
use aos_types::HookOwners;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

/// Services one owner (the system, an agent, a session) may run at once.
pub const MAX_SERVICES_PER_OWNER: usize = 64;

/// Consecutive failed calls after which a service is marked `error`.
pub const MAX_CONSECUTIVE_FAILURES: u32 = 3;

/// One running (or ended) instance.
pub struct ServiceEntry {
    /// Instance id (`sv_…`).
    pub instance_id: String,
    /// Skill name.
    pub skill_name: String,
    /// `wasm` or `legacy`.
    pub kind: ServiceKind,
    /// Who it runs for.
    pub owner: ServiceOwner,
    /// The agent of a session-owned instance (for scope checks).
    pub owner_agent: Option<String>,
    /// Per-call deadline.
    pub timeout: Duration,
    /// Its registration.
    pub registration: Registration,
    /// The instance.
    pub instance: Arc<dyn ServiceInstance>,
    /// When it started.
    pub started_at: String,
    /// The configuration it was started with (kept for restarts).
    pub config: Value,
    /// How many times in a row its predecessors crashed and were restarted.
    pub restarts: u32,
    /// The files it was started from (SKILL.md, the component or program),
    /// as they were then: a change on disk makes it `stale`.
    sources: Vec<SourceFile>,
    state: Mutex<(ServiceState, Option<String>)>,
    failures: AtomicU32,
    calls: AtomicU64,
    /// Events handed to it and not yet handled.
    pub(crate) events_queued: AtomicU32,
    /// Events dropped: its queue was full, or they were too deep.
    pub(crate) events_dropped: AtomicU64,
    /// The latency counters of its hooks and events, taken on first call.
    hook_stats: OnceLock<Vec<(String, Arc<HookStats>)>>,
}

impl ServiceEntry {
    /// A new running entry.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        instance_id: String,
        skill_name: String,
        kind: ServiceKind,
        owner: ServiceOwner,
        owner_agent: Option<String>,
        timeout: Duration,
        registration: Registration,
        instance: Arc<dyn ServiceInstance>,
    ) -> ServiceEntry {
        ServiceEntry {
            instance_id,
            skill_name,
            kind,
            owner,
            owner_agent,
            timeout,
            registration,
            instance,
            started_at: aos_types::now(),
            config: Value::Object(Default::default()),
            restarts: 0,
            sources: Vec::new(),
            state: Mutex::new((ServiceState::Running, None)),
            failures: AtomicU32::new(0),
            calls: AtomicU64::new(0),
            events_queued: AtomicU32::new(0),
            events_dropped: AtomicU64::new(0),
            hook_stats: OnceLock::new(),
        }
    }

    /// Records the files it was started from, as they are now.
    pub fn with_sources(mut self, paths: impl IntoIterator<Item = PathBuf>) -> ServiceEntry {
        self.sources = paths.into_iter().map(SourceFile::now).collect();
        self
    }

    /// Whether a file it was started from changed (or went) since: it runs
    /// old code or an old manifest until restarted.
    pub fn is_stale(&self) -> bool {
        self.sources.iter().any(SourceFile::changed)
    }

    /// Records that a call of its handler of `hook` took `took`.
    pub(crate) fn observe(&self, telemetry: &Telemetry, hook: &str, took: Duration) {
        let stats = self.hook_stats.get_or_init(|| {
            let r = &self.registration;
            r.hooks
                .iter()
                .chain(&r.events)
                .map(|n| (n.clone(), telemetry.hook_stats(&self.skill_name, n)))
                .collect()
        });
        if let Some((_, s)) = stats.iter().find(|(n, _)| n == hook) {
            s.observe(took);
        }
    }

    /// Calls made to it (hooks, events, commands).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Current state and the last error.
    pub fn state(&self) -> (ServiceState, Option<String>) {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or((ServiceState::Error, None))
    }

    /// Sets the state (and error text).
    pub fn set_state(&self, state: ServiceState, error: Option<String>) {
        if let Ok(mut s) = self.state.lock() {
            *s = (state, error);
        }
    }

    /// Takes a place in its event queue; `false` when it is full.
    pub(crate) fn queue_event(&self) -> bool {
        self.events_queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < crate::hooks::MAX_QUEUED_EVENTS).then_some(n + 1)
            })
            .is_ok()
    }

    /// Records a call's outcome; true when this failure makes the service
    /// cross the failure threshold.
    pub fn record(&self, ok: bool) -> bool {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if ok {
            self.failures.store(0, Ordering::Relaxed);
            false
        } else {
            self.failures.fetch_add(1, Ordering::Relaxed) + 1 == MAX_CONSECUTIVE_FAILURES
        }
    }

    /// Whether a hook call for (agent, session) concerns this instance's owner.
    pub fn in_scope(&self, agent_id: Option<&str>, session_id: Option<&str>) -> bool {
        match &self.owner {
            ServiceOwner::System => true,
            ServiceOwner::Agent(a) => agent_id == Some(a.as_str()),
            ServiceOwner::Session(s) => session_id == Some(s.as_str()),
        }
    }

    /// The `service.list` / `service.get` view.
    pub fn view(&self) -> Value {
        let (state, error) = self.state();
        serde_json::json!({
            "instanceId": self.instance_id,
            "skillName": self.skill_name,
            "kind": self.kind,
            "ownerType": self.owner.kind(),
            "ownerId": self.owner.id(),
            "state": state,
            "error": error,
            "hooks": self.registration.hooks,
            "events": self.registration.events,
            "startedAt": self.started_at,
            "calls": self.calls.load(Ordering::Relaxed),
            "consecutiveFailures": self.failures.load(Ordering::Relaxed),
            "pid": self.instance.pid(),
            "runtime": self.instance.runtime(),
            "restarts": self.restarts,
            "stale": self.is_stale(),
        })
    }
}

/// A file a service was started from: its size and modification time then.
#[derive(Debug, Clone)]
struct SourceFile {
    path: PathBuf,
    stamp: Option<(u64, std::time::SystemTime)>,
}

impl SourceFile {
    fn stamp(path: &std::path::Path) -> Option<(u64, std::time::SystemTime)> {
        let m = std::fs::metadata(path).ok()?;
        Some((m.len(), m.modified().ok()?))
    }

    fn now(path: PathBuf) -> SourceFile {
        let stamp = SourceFile::stamp(&path);
        SourceFile { path, stamp }
    }

    fn changed(&self) -> bool {
        SourceFile::stamp(&self.path) != self.stamp
    }
}

/// Hook name → its handlers in call order: system → agent → session, then
/// registration order.
type Handlers = Arc<std::collections::HashMap<String, Vec<Arc<ServiceEntry>>>>;

/// The handlers of one hook call: few, so kept inline (no allocation per
/// hook call).
pub type HandlerList = smallvec::SmallVec<[Arc<ServiceEntry>; 4]>;

/// All instances, and the hook handlers of the running ones.
#[derive(Default)]
pub struct ServiceTable {
    entries: RwLock<Vec<Arc<ServiceEntry>>>,
    /// Handlers by hook name (a hook call looks up one name, it does not
    /// scan every registration); copied on write.
    handlers: RwLock<Handlers>,
}

impl ServiceTable {
    /// Adds a running entry and its handlers.
    pub fn insert(&self, e: Arc<ServiceEntry>) {
        if let Ok(mut h) = self.handlers.write() {
            let mut next = (**h).clone();
            for name in e.registration.hooks.iter().chain(&e.registration.events) {
                // Kept in call order: after every entry of the same or a
                // wider owner level (a stable insertion), so no call sorts.
                let list = next.entry(name.clone()).or_default();
                let at = list.partition_point(|x| x.owner.rank() <= e.owner.rank());
                list.insert(at, e.clone());
            }
            *h = Arc::new(next);
        }
        if let Ok(mut v) = self.entries.write() {
            v.push(e);
        }
    }

    /// Removes an instance's handlers (it stays listed with its state).
    pub fn unregister(&self, instance_id: &str) {
        if let Ok(mut h) = self.handlers.write() {
            let mut next = (**h).clone();
            for list in next.values_mut() {
                list.retain(|e| e.instance_id != instance_id);
            }
            next.retain(|_, list| !list.is_empty());
            *h = Arc::new(next);
        }
    }

    /// The handlers of `hook` within scope, ordered system → agent → session,
    /// then by registration.
    pub fn handlers(
        &self,
        hook: &str,
        agent_id: Option<&str>,
        session_id: Option<&str>,
    ) -> HandlerList {
        let Ok(h) = self.handlers.read() else {
            return HandlerList::new();
        };
        let Some(list) = h.get(hook) else {
            return HandlerList::new();
        };
        list.iter()
            .filter(|e| e.in_scope(agent_id, session_id))
            .cloned()
            .collect()
    }

    /// Whether `hook` has any handler within scope.
    pub fn has(&self, hook: &str, agent_id: Option<&str>, session_id: Option<&str>) -> bool {
        self.handlers
            .read()
            .map(|h| {
                h.get(hook)
                    .is_some_and(|l| l.iter().any(|e| e.in_scope(agent_id, session_id)))
            })
            .unwrap_or(false)
    }

    /// One instance.
    pub fn get(&self, instance_id: &str) -> Option<Arc<ServiceEntry>> {
        self.entries
            .read()
            .ok()?
            .iter()
            .find(|e| e.instance_id == instance_id)
            .cloned()
    }

    /// All instances (running and ended), oldest first.
    pub fn all(&self) -> Vec<Arc<ServiceEntry>> {
        self.entries.read().map(|v| v.clone()).unwrap_or_default()
    }

    /// Running instances matching a predicate.
    pub fn running(&self, pred: impl Fn(&ServiceEntry) -> bool) -> Vec<Arc<ServiceEntry>> {
        self.all()
            .into_iter()
            .filter(|e| e.state().0 == ServiceState::Running && pred(e))
            .collect()
    }
}

/// Whether an owner of this level may register `hook` (`hooks.md` §2).
pub fn may_register(owner: &ServiceOwner, hook: &aos_types::HookPoint) -> bool {
    use aos_types::HookKind::{Admission, Event, Transform};
    let level_ok = match hook.owners {
        HookOwners::System => matches!(owner, ServiceOwner::System),
        HookOwners::SystemAgent => !matches!(owner, ServiceOwner::Session(_)),
        HookOwners::All => true,
    };
    if !level_ok {
        return false;
    }
    match (owner, hook.kind) {
        (ServiceOwner::System, _) | (ServiceOwner::Agent(_), Transform) => true,
        // Agent: agent- and session-level admission and event hooks.
        (ServiceOwner::Agent(_), Admission | Event) => hook.owners != HookOwners::System,
        // Session: session-level AH/RE; TH only session, tool, compute, context ones.
        (ServiceOwner::Session(_), Admission | Event) => hook.owners == HookOwners::All,
        (ServiceOwner::Session(_), Transform) => ["session.", "tool.", "compute.", "context."]
            .iter()
            .any(|p| hook.name.starts_with(p)),
    }
}
