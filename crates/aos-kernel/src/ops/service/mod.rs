//! Service lifecycle: `skill.start`, `skill.stop`, `skill.invoke`,
//! `service.list`, `service.get`, and the default start reconcile of each
//! owner level.

mod port;

use crate::hooks::HookScope;
use crate::kernel::{Done, Kernel, OpResult};
use crate::params::{self, StoreResult, decode};
use crate::principal::{Principal, ServiceGrant};
use crate::services::{
    CallFault, InvokeReply, Registration, ServiceEntry, ServiceOwner, ServiceStart, ServiceState,
    may_register,
};
use aos_manifest::{ServiceKind, SkillManifest};
use aos_types::hook;
use aos_types::requests::SkillInvoke;
use aos_types::{
    AgentStatus, ErrorCode, HookKind, IdKind, SessionStatus, SyscallError, hook_point, new_id,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Per-call deadline when a skill sets none (`hooks.md` §1).
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Commands may run longer than hooks.
const MIN_INVOKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Restarts in a row under `restart: on-failure` when the skill sets none.
const DEFAULT_MAX_RESTARTS: u32 = 3;

fn service_failed(msg: String) -> SyscallError {
    SyscallError::new(ErrorCode::ServiceFailed, msg)
}

/// Checks the owner exists and is usable; returns the owner's agent.
async fn owner_agent(k: &Kernel, owner: &ServiceOwner) -> Result<Option<String>, SyscallError> {
    match owner {
        ServiceOwner::System => Ok(None),
        ServiceOwner::Agent(a) => {
            let acb = k.store().agent_get(a).await.sys()?;
            if acb.status == AgentStatus::Archived {
                return Err(SyscallError::new(
                    ErrorCode::AgentArchived,
                    format!("agent {a} is archived"),
                ));
            }
            Ok(Some(acb.agent_id))
        }
        ServiceOwner::Session(s) => {
            let scb = k.store().session_get(s).await.sys()?;
            if scb.status == SessionStatus::Archived {
                return Err(SyscallError::new(
                    ErrorCode::SessionArchived,
                    format!("session {s} is archived"),
                ));
            }
            Ok(Some(scb.agent_id))
        }
    }
}

fn scope_of<'a>(owner: &'a ServiceOwner, agent: Option<&'a str>) -> HookScope<'a> {
    match owner {
        ServiceOwner::System => HookScope::default(),
        ServiceOwner::Agent(a) => HookScope {
            agent_id: Some(a),
            session_id: None,
        },
        ServiceOwner::Session(s) => HookScope {
            agent_id: agent,
            session_id: Some(s),
        },
    }
}

/// Checks a registration against the manifest and the owner's level.
fn check_registration(
    skill: &SkillManifest,
    owner: &ServiceOwner,
    r: &Registration,
    compat: bool,
) -> Result<(), SyscallError> {
    let md = format!("{}/SKILL.md", skill.name);
    for (name, want_event) in r
        .hooks
        .iter()
        .map(|h| (h, false))
        .chain(r.events.iter().map(|e| (e, true)))
    {
        let Some(hp) = hook_point(name) else {
            return Err(SyscallError::invalid(format!(
                "skill {} registered {name:?}, which is not a hook point",
                skill.name
            )));
        };
        if (hp.kind == HookKind::Event) != want_event {
            let list = if want_event { "events" } else { "hooks" };
            return Err(SyscallError::invalid(format!(
                "skill {} registered {name} under `{list}`, but it is a {:?} hook",
                skill.name, hp.kind
            )));
        }
        if !compat && !skill.capabilities.hooks.iter().any(|h| h == name) {
            return Err(SyscallError::new(
                ErrorCode::PermissionDenied,
                format!("skill {} registered {name} but does not declare it: add \"{name}\" to capabilities.hooks in {md}", skill.name),
            )
            .with_details(json!({ "missing": name, "capability": "capabilities.hooks" })));
        }
        if !may_register(owner, hp) {
            return Err(SyscallError::new(
                ErrorCode::PermissionDenied,
                format!("a {:?}-owned service may not register {name} (hooks.md §2); start it at a higher level", owner.kind()),
            )
            .with_details(json!({ "missing": name, "capability": "owner level" })));
        }
    }
    Ok(())
}

/// Starts a service of `name` for `owner` and registers its hooks.
pub(crate) async fn start_service(
    k: &Kernel,
    name: &str,
    owner: ServiceOwner,
    config: Value,
) -> Result<Arc<ServiceEntry>, SyscallError> {
    let entry = launch(k, name, owner, config).await?;
    Ok(register(k, entry))
}

/// Puts a started instance into the hook table and announces it.
fn register(k: &Kernel, entry: ServiceEntry) -> Arc<ServiceEntry> {
    let entry = Arc::new(entry);
    k.hooks().table().insert(entry.clone());
    tracing::info!(skill = %entry.skill_name, instance = %entry.instance_id, owner = ?entry.owner, "service started");
    k.emit(
        hook::SKILL_START_AFTER,
        scope_of(&entry.owner, entry.owner_agent.as_deref()),
        json!({ "instanceId": entry.instance_id, "skillName": entry.skill_name }),
    );
    entry
}

/// Called when a service ended without being asked to (a legacy process
/// exited or was killed): records it, marks the instance `error` (hooks
/// unregistered, `service.error`), and restarts it when its skill's
/// `limits.restart` says so.
pub(crate) async fn exited(k: &Kernel, instance_id: &str, reason: String) {
    k.revoke_service_tokens(instance_id);
    let Some(e) = k.hooks().table().get(instance_id) else {
        return;
    };
    // Already `error` is possible (a call it was answering failed first);
    // only a requested stop is no crash.
    if e.state().0 == ServiceState::Stopped {
        return;
    }
    tracing::error!(skill = %e.skill_name, instance = instance_id, %reason, "service exited");
    let log = aos_store::NewLogEntry {
        level: "error",
        op: "service.exited".into(),
        owner_type: "skill".into(),
        owner_id: Some(e.skill_name.clone()),
        agent_id: e.owner_agent.clone(),
        session_id: match &e.owner {
            ServiceOwner::Session(s) => Some(s.clone()),
            _ => None,
        },
        refs: Some(json!({ "instanceId": instance_id })),
        data: Some(json!({ "skill": e.skill_name, "reason": reason })),
    };
    if let Err(err) = k.store().log_append(log).await {
        tracing::error!(error = %err, "cannot write the RuntimeLog");
    }
    k.hooks().mark_error(&e, &format!("exited: {reason}"));
    restart(k, &e).await;
}

/// Starts a successor of a crashed instance if its skill asks for it.
async fn restart(k: &Kernel, e: &ServiceEntry) {
    let limits = k
        .skills()
        .snapshot()
        .entry(&e.skill_name)
        .and_then(|s| s.manifest.clone())
        .map(|m| m.capabilities.limits);
    let Some(limits) = limits else { return };
    let max = limits.max_restarts.unwrap_or(DEFAULT_MAX_RESTARTS);
    if limits.restart != aos_manifest::RestartPolicy::OnFailure
        || e.restarts >= max
        || k.is_stopping()
    {
        return;
    }
    // 100 ms, 200 ms, 400 ms … at most 5 s between a crash and the restart.
    let backoff = Duration::from_millis(100u64 << e.restarts.min(6)).min(Duration::from_secs(5));
    tokio::time::sleep(backoff).await;
    match launch(k, &e.skill_name, e.owner.clone(), e.config.clone()).await {
        Ok(mut next) => {
            next.restarts = e.restarts + 1;
            let next = register(k, next);
            tracing::info!(skill = %e.skill_name, previous = %e.instance_id, instance = %next.instance_id, restarts = next.restarts, "service restarted");
        }
        Err(err) => {
            tracing::error!(skill = %e.skill_name, error = %err, "service restart failed");
        }
    }
}

/// Starts an instance (admission, runtime start, `init`, registration
/// check) without registering it.
/// Whether `skill` runs as a legacy service of the original project: a
/// subprocess whose SKILL.md has no `capabilities:` block. Its hooks are
/// granted as it registers them and its syscalls are its owner's scope,
/// unless the operator set `legacyServices: "strict"`.
fn legacy_compat(
    k: &Kernel,
    skill: &SkillManifest,
    kind: ServiceKind,
) -> Result<bool, SyscallError> {
    if kind != ServiceKind::Legacy || skill.capabilities_declared {
        return Ok(false);
    }
    if k.config().defaults.legacy_strict().unwrap_or(true) {
        return Err(SyscallError::new(
            ErrorCode::PermissionDenied,
            format!(
                "skill {} has no `capabilities:` block and legacyServices is \"strict\": declare the hooks and syscalls it uses in {}/SKILL.md",
                skill.name, skill.name
            ),
        )
        .with_details(json!({ "missing": "capabilities", "setting": "legacyServices" })));
    }
    Ok(true)
}

/// Every syscall group: the grant of a legacy service without a
/// `capabilities:` block (its owner's scope still bounds what it reaches).
fn all_groups() -> Vec<String> {
    let mut groups: Vec<String> = aos_types::SYSCALLS
        .iter()
        .map(|s| s.group.to_string())
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

/// The RuntimeLog warning of a legacy service started without a
/// `capabilities:` block, naming the block to add.
async fn warn_undeclared(k: &Kernel, skill: &SkillManifest, r: &Registration) {
    let mut hooks: Vec<&String> = r.hooks.iter().chain(&r.events).collect();
    hooks.sort();
    let block = format!(
        "capabilities:\n  hooks: [{}]\n  syscalls: [the ops or groups it calls]",
        hooks
            .iter()
            .map(|h| h.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    tracing::warn!(skill = %skill.name, "a legacy service without a capabilities: block runs with its owner's scope");
    let entry = aos_store::NewLogEntry {
        level: "warn",
        op: "skill.capabilities.missing".into(),
        owner_type: "skill".into(),
        owner_id: Some(skill.name.clone()),
        agent_id: None,
        session_id: None,
        refs: None,
        data: Some(json!({
            "skill": skill.name,
            "message": format!("{}/SKILL.md has no capabilities: block; its hooks are granted as registered and its syscalls are its owner's scope. Add:\n{block}", skill.name),
            "add": block,
        })),
    };
    if let Err(e) = k.store().log_append(entry).await {
        tracing::error!(error = %e, "cannot write the RuntimeLog");
    }
}

/// Writes `skill.grants.changed` to the RuntimeLog when the skill's
/// `SKILL.md` grants differ from those its last service started with (a
/// running service keeps the grants it started with).
async fn log_grant_changes(k: &Kernel, name: &str, caps: &aos_manifest::Capabilities) {
    let Some(diff) = k.skills().note_start(name, crate::skills::grants_of(caps)) else {
        return;
    };
    tracing::warn!(skill = name, %diff, "the skill's grants changed since its last start");
    let entry = aos_store::NewLogEntry {
        level: "warn",
        op: "skill.grants.changed".into(),
        owner_type: "skill".into(),
        owner_id: Some(name.to_string()),
        agent_id: None,
        session_id: None,
        refs: None,
        data: Some(json!({ "skill": name, "diff": diff })),
    };
    if let Err(e) = k.store().log_append(entry).await {
        tracing::error!(error = %e, "cannot write the RuntimeLog");
    }
}

async fn launch(
    k: &Kernel,
    name: &str,
    owner: ServiceOwner,
    config: Value,
) -> Result<ServiceEntry, SyscallError> {
    let mut index = k.skills().snapshot();
    if index.entry(name).is_none() {
        // Copied in a moment ago, before the watcher's re-index: look again
        // (only what changed is read) before answering not found.
        index = k.skills().refresh_async().await;
    }
    let entry = index.entry(name).ok_or_else(|| {
        SyscallError::new(
            ErrorCode::SkillNotFound,
            format!("no skill named {name:?}; see `aos skill list`"),
        )
    })?;
    let skill = entry.manifest.clone().ok_or_else(|| {
        SyscallError::new(
            ErrorCode::SkillNotFound,
            format!(
                "skill {name} is broken: {}",
                entry.error.clone().unwrap_or_default()
            ),
        )
    })?;
    let spec = skill.service.clone().ok_or_else(|| {
        SyscallError::invalid(format!(
            "skill {name} has no service face (no `service:` in its SKILL.md)"
        ))
    })?;
    let owner_agent = owner_agent(k, &owner).await?;
    let running = k.hooks().table().running(|e| e.owner == owner).len();
    if running >= crate::services::MAX_SERVICES_PER_OWNER {
        return Err(SyscallError::new(
            ErrorCode::Unavailable,
            format!(
                "{owner:?} runs {running} services already, the most one owner may; stop one (skill.stop) before starting {name}"
            ),
        )
        .with_details(json!({ "limit": crate::services::MAX_SERVICES_PER_OWNER, "running": running })));
    }
    let compat = legacy_compat(k, &skill, spec.kind)?;
    log_grant_changes(k, name, &skill.capabilities).await;
    let scope = scope_of(&owner, owner_agent.as_deref());
    let input = json!({ "skillName": name, "ownerType": owner.kind(), "ownerId": owner.id() });
    k.hooks()
        .admit(hook::SKILL_START_BEFORE, scope, &input, input.clone())
        .await?;
    let driver = k
        .drivers()
        .iter()
        .find(|d| d.kind() == spec.kind)
        .ok_or_else(|| {
            SyscallError::new(
                ErrorCode::NotImplemented,
                format!("no runtime for {:?} services in this daemon", spec.kind),
            )
        })?;
    let instance_id = new_id(IdKind::Service);
    let skill_dir = entry.dir.clone();
    let grant = ServiceGrant {
        skill: name.to_string(),
        instance_id: instance_id.clone(),
        owner: owner.clone(),
        owner_agent: owner_agent.clone(),
        syscalls: if compat {
            all_groups()
        } else {
            skill.capabilities.syscalls.clone()
        },
        kv: compat || skill.capabilities.kv,
        manifest_path: entry.dir.join("SKILL.md"),
    };
    let timeout = skill
        .capabilities
        .limits
        .hook_timeout_ms
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
    // A legacy process may reach the HTTP API itself: it gets a token with
    // exactly its grant. A WASM guest has no way to use one.
    let api_token =
        (spec.kind == ServiceKind::Legacy).then(|| k.issue_service_token(grant.clone()));
    let start = ServiceStart {
        instance_id: instance_id.clone(),
        skill: Arc::new(skill.clone()),
        skill_dir: entry.dir.clone(),
        home: k.config().home.clone(),
        owner: owner.clone(),
        config: config.clone(),
        syscalls: Arc::new(port::KernelPort::new(k, Principal::Service(grant))),
        api_url: k.api_url(),
        api_token,
    };
    let instance = match driver.start(start).await {
        Ok(i) => i,
        Err(e) => {
            k.revoke_service_tokens(&instance_id);
            return Err(service_failed(format!("skill {name} failed to start: {e}")));
        }
    };
    let registration = instance.registration();
    if let Err(e) = check_registration(&skill, &owner, &registration, compat) {
        k.revoke_service_tokens(&instance_id);
        instance.shutdown(timeout).await;
        return Err(e);
    }
    if compat {
        warn_undeclared(k, &skill, &registration).await;
    }
    let mut entry = ServiceEntry::new(
        instance_id,
        name.to_string(),
        spec.kind,
        owner,
        owner_agent,
        timeout,
        registration,
        instance,
    )
    .with_sources([skill_dir.join("SKILL.md"), skill_dir.join(&spec.path)]);
    entry.config = config;
    Ok(entry)
}

/// Stops one running instance.
pub(crate) async fn stop_service(k: &Kernel, e: &Arc<ServiceEntry>) -> Result<(), SyscallError> {
    let scope = scope_of(&e.owner, e.owner_agent.as_deref());
    let input = json!({ "instanceId": e.instance_id });
    k.hooks()
        .admit(hook::SKILL_STOP_BEFORE, scope, &input, input.clone())
        .await?;
    stop_now(k, e).await;
    Ok(())
}

/// Stops without admission (archive, daemon stop).
pub(crate) async fn stop_now(k: &Kernel, e: &Arc<ServiceEntry>) {
    if e.state().0 == ServiceState::Running {
        e.set_state(ServiceState::Stopped, None);
    }
    k.hooks().table().unregister(&e.instance_id);
    k.revoke_service_tokens(&e.instance_id);
    e.instance.shutdown(e.timeout).await;
    k.emit(
        hook::SKILL_STOP_AFTER,
        scope_of(&e.owner, e.owner_agent.as_deref()),
        json!({ "instanceId": e.instance_id }),
    );
}

/// Starts the services whose `start: enable` was decided at `owner`'s level.
pub(crate) async fn reconcile(k: &Kernel, owner: ServiceOwner, names: Vec<String>) {
    for name in names {
        if let Err(e) = start_service(k, &name, owner.clone(), json!({})).await {
            tracing::warn!(skill = %name, owner = ?owner, error = %e, "default service did not start");
        }
    }
}

/// Stops every running service whose owner matches.
pub(crate) async fn stop_owned(k: &Kernel, pred: impl Fn(&ServiceEntry) -> bool) {
    for e in k.hooks().table().running(pred) {
        stop_now(k, &e).await;
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Start {
    name: String,
    owner: Option<String>,
    config: Option<Value>,
}

pub(crate) async fn start(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let s: Start = decode("skill.start", params)?;
    params::skill_name("name", &s.name)?;
    let owner = match s.owner.as_deref() {
        None => ServiceOwner::System,
        Some(o) => ServiceOwner::parse(o)
            .ok_or_else(|| SyscallError::invalid("`owner` is system, agent:ID or session:ID"))?,
    };
    let config = s.config.unwrap_or_else(|| json!({}));
    if !config.is_object() {
        return Err(SyscallError::invalid("`config` must be a JSON object"));
    }
    let e = start_service(k, &s.name, owner, config).await?;
    let session = match &e.owner {
        ServiceOwner::Session(s) => Some(s.as_str()),
        _ => None,
    };
    Ok(Done::data(e.view()).ids(e.owner_agent.as_deref(), session))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Instance {
    instance_id: String,
}

fn find(k: &Kernel, id: &str) -> Result<Arc<ServiceEntry>, SyscallError> {
    params::id("instanceId", id)?;
    k.hooks()
        .table()
        .get(id)
        .ok_or_else(|| SyscallError::not_found("service", id))
}

pub(crate) async fn stop(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let q: Instance = decode("skill.stop", params)?;
    let e = find(k, &q.instance_id)?;
    if e.state().0 != ServiceState::Running {
        return Err(SyscallError::invalid(format!(
            "service {} is not running",
            e.instance_id
        )));
    }
    stop_service(k, &e).await?;
    Ok(Done::data(e.view()))
}

/// `skill.restart`: stops an instance (if it still runs) and starts its
/// skill again for the same owner with the same configuration — from the
/// skill's files as they are now (after a rebuild, a changed SKILL.md).
pub(crate) async fn restart_one(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let q: Instance = decode("skill.restart", params)?;
    let old = find(k, &q.instance_id)?;
    if old.state().0 == ServiceState::Running {
        stop_service(k, &old).await?;
    }
    let next = launch(k, &old.skill_name, old.owner.clone(), old.config.clone()).await?;
    let next = register(k, next);
    tracing::info!(skill = %old.skill_name, previous = %old.instance_id, instance = %next.instance_id, "service restarted by request");
    let mut view = next.view();
    view["previousInstanceId"] = json!(old.instance_id);
    Ok(Done::data(view))
}

pub(crate) async fn get(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let q: Instance = decode("service.get", params)?;
    Ok(Done::data(find(k, &q.instance_id)?.view()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct List {
    skill_name: Option<String>,
    state: Option<ServiceStateParam>,
}

#[derive(Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum ServiceStateParam {
    Running,
    Stopped,
    Error,
}

pub(crate) async fn list(k: &Kernel, p: &Principal, params: Map<String, Value>) -> OpResult {
    let q: List = decode("service.list", params)?;
    let scope = crate::authz::Scope::of(p);
    let services: Vec<Value> = k
        .hooks()
        .table()
        .all()
        .iter()
        .filter(|e| scope.has_owner(&e.owner, e.owner_agent.as_deref()))
        .filter(|e| q.skill_name.as_deref().is_none_or(|n| n == e.skill_name))
        .filter(|e| {
            q.state.as_ref().is_none_or(|s| {
                let st = e.state().0;
                matches!(
                    (s, st),
                    (ServiceStateParam::Running, ServiceState::Running)
                        | (ServiceStateParam::Stopped, ServiceState::Stopped)
                        | (ServiceStateParam::Error, ServiceState::Error)
                )
            })
        })
        .map(|e| e.view())
        .collect();
    Ok(Done::data(json!({ "services": services })))
}

/// Most arguments one command takes.
const MAX_ARGS: usize = 256;

/// Longest standard input of one command, in bytes.
const MAX_STDIN: usize = 1 << 20;

pub(crate) async fn invoke(k: &Kernel, p: &Principal, params: Map<String, Value>) -> OpResult {
    let mut q: SkillInvoke = decode("skill.invoke", params)?;
    if let Principal::Session { session_id, .. } = p {
        // A session's bash runs commands for its own session unless it names
        // another of its agent's sessions.
        q.session_id.get_or_insert_with(|| session_id.clone());
    }
    params::skill_name("name", &q.name)?;
    if q.args.len() > MAX_ARGS || q.args.iter().any(|a| a.len() > 65_536) {
        return Err(SyscallError::invalid(format!(
            "`args`: at most {MAX_ARGS} arguments of 64 KiB each"
        )));
    }
    if q.stdin.as_ref().is_some_and(|s| s.len() > MAX_STDIN) {
        return Err(SyscallError::invalid(
            "`stdin`: at most 1 MiB; pass larger data as a file the command reads",
        ));
    }
    let (agent, session) = match &q.session_id {
        Some(s) => {
            let scb = crate::sessions::load(k, s).await?;
            (Some(scb.agent_id), Some(scb.session_id))
        }
        None => (None, None),
    };
    let scope = HookScope {
        agent_id: agent.as_deref(),
        session_id: session.as_deref(),
    };
    let input = json!({ "name": q.name, "args": q.args, "sessionId": session });
    let out = k
        .hooks()
        .admit(hook::SKILL_INVOKE_BEFORE, scope, &input, json!(q.args))
        .await?;
    let args: Vec<String> = serde_json::from_value(out).map_err(|e| {
        SyscallError::new(
            ErrorCode::HookRejected,
            format!("skill.invoke.before returned invalid args: {e}"),
        )
    })?;
    // The dispatch only when the command acts for the token's own session.
    let dispatch = match p {
        Principal::Session {
            session_id,
            dispatch_id,
            ..
        } if session.as_ref() == Some(session_id) => dispatch_id.clone(),
        _ => None,
    };
    let caller = json!({
        "principal": principal_kind(p), "agentId": agent, "sessionId": session,
        "dispatchId": dispatch,
    });
    let call = Command {
        args,
        stdin: q.stdin,
        caller,
    };
    let reply = run_command(k, &q.name, call, agent.as_deref(), session.as_deref()).await?;
    k.emit(
        hook::SKILL_INVOKE_AFTER,
        scope,
        json!({ "name": q.name, "exitCode": reply.exit_code }),
    );
    Ok(Done::data(json!(reply)).ids(agent.as_deref(), session.as_deref()))
}

/// What `service.caller` answers: the kind of principal that ran a command.
fn principal_kind(p: &Principal) -> &'static str {
    match p {
        Principal::Operator => "operator",
        Principal::Kernel => "kernel",
        Principal::Service(_) => "service",
        Principal::Session { .. } => "session",
    }
}

/// One command to run: its arguments, input and who ran it.
struct Command {
    args: Vec<String>,
    stdin: Option<String>,
    caller: Value,
}

/// Runs a command on the most specific running instance in scope, or on a
/// transient instance started for the call.
async fn run_command(
    k: &Kernel,
    name: &str,
    call: Command,
    agent: Option<&str>,
    session: Option<&str>,
) -> Result<InvokeReply, SyscallError> {
    let mut running = k
        .hooks()
        .table()
        .running(|e| e.skill_name == name && e.in_scope(agent, session));
    running.sort_by_key(|e| e.owner.rank());
    let (entry, transient) = match running.pop() {
        Some(e) => (e, false),
        None => {
            let owner = session.map_or(ServiceOwner::System, |s| {
                ServiceOwner::Session(s.to_string())
            });
            (start_transient(k, name, owner).await?, true)
        }
    };
    let timeout = entry.timeout.max(MIN_INVOKE_TIMEOUT);
    let result = entry
        .instance
        .invoke(call.args, call.stdin, call.caller, timeout)
        .await;
    if transient {
        k.revoke_service_tokens(&entry.instance_id);
        entry.instance.shutdown(entry.timeout).await;
    }
    match result {
        Ok(reply) => Ok(reply),
        Err(CallFault::Handler(msg)) => Ok(InvokeReply {
            exit_code: 1,
            stdout: String::new(),
            stderr: msg,
        }),
        Err(fault) => {
            if !transient {
                k.hooks().failed(&entry, "skill.invoke", &fault).await;
            }
            Err(service_failed(format!("skill {name}: {fault}")))
        }
    }
}

/// Starts an instance for one command, outside the hook table.
async fn start_transient(
    k: &Kernel,
    name: &str,
    owner: ServiceOwner,
) -> Result<Arc<ServiceEntry>, SyscallError> {
    Ok(Arc::new(
        launch(k, name, owner, json!({ "transient": true })).await?,
    ))
}
