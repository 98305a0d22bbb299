//! Authorization by resource. Every op declares how the owner of what it
//! touches is found (its [`aos_types::Target`] in the op table): an agent, a session, a dispatch (→ its
//! session), content (→ its session), a service instance (→ its owner), an
//! owner to start a service for, or a list (filtered to the caller). The
//! caller's [`Scope`] must contain that owner — never decided by the name of
//! a parameter alone. The operator and the kernel reach everything; a
//! system-owned service everything its syscall grant lists; an agent-owned
//! service and a session token their agent and its sessions; a
//! session-owned service its session (and reads its agent).

use crate::Principal;
use crate::kernel::Kernel;
use crate::services::ServiceOwner;
use aos_types::{ErrorCode, SyscallError, Target};
use serde_json::{Map, Value, json};

/// What a principal may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything.
    All,
    /// One agent: the agent, its sessions, their content and dispatches,
    /// services owned by it or its sessions.
    Agent(String),
    /// One session; its agent may be read, not changed.
    Session {
        /// The session's agent (unknown only if the agent went away).
        agent: Option<String>,
        /// The session.
        session: String,
    },
}

impl Scope {
    /// The scope of `p`.
    pub fn of(p: &Principal) -> Scope {
        match p {
            Principal::Operator | Principal::Kernel => Scope::All,
            Principal::Session { agent_id, .. } => Scope::Agent(agent_id.clone()),
            Principal::Service(g) => match &g.owner {
                ServiceOwner::System => Scope::All,
                ServiceOwner::Agent(a) => Scope::Agent(a.clone()),
                ServiceOwner::Session(s) => Scope::Session {
                    agent: g.owner_agent.clone(),
                    session: s.clone(),
                },
            },
        }
    }

    /// The one agent this scope is about, if it is not [`Scope::All`].
    pub fn agent(&self) -> Option<&str> {
        match self {
            Scope::All => None,
            Scope::Agent(a) => Some(a),
            Scope::Session { agent, .. } => agent.as_deref(),
        }
    }

    fn reads_agent(&self, a: &str) -> bool {
        matches!(self, Scope::All) || self.agent() == Some(a)
    }

    fn writes_agent(&self, a: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Agent(own) => own == a,
            Scope::Session { .. } => false,
        }
    }

    /// Whether session `s` of agent `a` lies within.
    pub fn has_session(&self, a: &str, s: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Agent(own) => own == a,
            Scope::Session { session, .. } => session == s,
        }
    }

    /// Whether a service owned by `owner` (whose agent is `owner_agent`)
    /// lies within: at the scope's own level or below.
    pub fn has_owner(&self, owner: &ServiceOwner, owner_agent: Option<&str>) -> bool {
        match (self, owner) {
            (Scope::All, _) => true,
            (_, ServiceOwner::System) => false,
            (Scope::Agent(own), ServiceOwner::Agent(a)) => own == a,
            (Scope::Agent(own), ServiceOwner::Session(_)) => owner_agent == Some(own.as_str()),
            (Scope::Session { session, .. }, ServiceOwner::Session(s)) => session == s,
            (Scope::Session { .. }, ServiceOwner::Agent(_)) => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Scope::All => "everything".into(),
            Scope::Agent(a) => format!("agent {a}"),
            Scope::Session { session, .. } => format!("session {session}"),
        }
    }
}

/// Who is asking, for the denial.
pub(crate) struct Caller<'a> {
    /// "skill guard (agent ag_1)" or "the token of session se_1".
    pub who: String,
    /// `service` or `session`.
    pub kind: &'static str,
    /// Its scope.
    pub scope: &'a Scope,
}

impl Caller<'_> {
    fn denied(&self, op: &str, what: String) -> SyscallError {
        let fix = match self.kind {
            "service" => {
                "start the service for an owner whose scope includes it (skill.start owner), or call as the operator"
            }
            _ => "only the operator (or a system-level service) reaches objects of other agents",
        };
        SyscallError::new(
            ErrorCode::PermissionDenied,
            format!(
                "{} reaches {} and may not {op} {what}; {fix}",
                self.who,
                self.scope.describe()
            ),
        )
        .with_details(json!({
            "missing": "scope", "principal": self.kind, "scope": self.scope.describe(),
            "target": what, "op": op,
        }))
    }
}

fn str_param<'a>(params: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    params.get(key).and_then(Value::as_str)
}

/// Checks `op` on `params` against `caller`'s scope; a list's filter may be
/// narrowed to the scope. An id naming nothing passes, for the op to report
/// it missing.
pub(crate) async fn check(
    k: &Kernel,
    caller: &Caller<'_>,
    op: &str,
    params: &mut Map<String, Value>,
) -> Result<(), SyscallError> {
    let scope = caller.scope;
    if *scope == Scope::All {
        return Ok(());
    }
    let Some(t) = aos_types::syscall_info(op).map(|s| s.target) else {
        return Err(caller.denied(op, "anything (the op has no owner rule)".into()));
    };
    match t {
        Target::Global => Ok(()),
        Target::System => Err(caller.denied(op, "system-wide state".into())),
        Target::Agent { write } => match str_param(params, "agentId") {
            Some(a) if write && !scope.writes_agent(a) => {
                Err(caller.denied(op, format!("agent {a}")))
            }
            Some(a) if !scope.reads_agent(a) => Err(caller.denied(op, format!("agent {a}"))),
            _ => Ok(()),
        },
        Target::Session => session(k, caller, op, str_param(params, "sessionId")).await,
        Target::AgentOrSession => {
            if let Some(a) = str_param(params, "agentId")
                && !scope.reads_agent(a)
            {
                return Err(caller.denied(op, format!("agent {a}")));
            }
            session(k, caller, op, str_param(params, "sessionId")).await
        }
        Target::Dispatch => dispatch(k, caller, op, str_param(params, "dispatchId")).await,
        Target::Content => content(k, caller, op, str_param(params, "contentId")).await,
        Target::Instance => instance(k, caller, op, str_param(params, "instanceId")),
        Target::StartOwner => start_owner(k, caller, op, params).await,
        Target::CatalogOwner => catalog_owner(k, caller, op, params).await,
        Target::Invoke => invoke(k, caller, op, params).await,
        Target::List => narrow_list(caller, op, params),
        // The namespace is the calling service's own, and only a service has
        // one (ops/kv.rs); whether it may use it is its grant
        // (`ServiceGrant::allows_op`).
        Target::Kv => Ok(()),
    }
}

async fn session(
    k: &Kernel,
    caller: &Caller<'_>,
    op: &str,
    id: Option<&str>,
) -> Result<(), SyscallError> {
    let Some(s) = id else { return Ok(()) };
    match k.store().session_get(s).await {
        Ok(scb) if !caller.scope.has_session(&scb.agent_id, s) => {
            Err(caller.denied(op, format!("session {s} (of agent {})", scb.agent_id)))
        }
        _ => Ok(()),
    }
}

async fn dispatch(
    k: &Kernel,
    caller: &Caller<'_>,
    op: &str,
    id: Option<&str>,
) -> Result<(), SyscallError> {
    let Some(d) = id else { return Ok(()) };
    // A dispatch of another node is known here by its events.
    let owner = k
        .dispatches()
        .owner(d)
        .or_else(|| crate::dispatch::remote_owner(k, d));
    match owner {
        Some((agent, s)) if !caller.scope.has_session(&agent, &s) => {
            Err(caller.denied(op, format!("dispatch {d} (of session {s})")))
        }
        _ => Ok(()),
    }
}

async fn content(
    k: &Kernel,
    caller: &Caller<'_>,
    op: &str,
    id: Option<&str>,
) -> Result<(), SyscallError> {
    let Some(c) = id else { return Ok(()) };
    let Ok((meta, _)) = k.store().content_get(c).await else {
        return Ok(());
    };
    match k.store().session_get(&meta.session_id).await {
        Ok(scb) if !caller.scope.has_session(&scb.agent_id, &meta.session_id) => {
            Err(caller.denied(op, format!("content {c} (of session {})", meta.session_id)))
        }
        // Content whose session is gone belongs to no one in scope.
        Err(_) => Err(caller.denied(op, format!("content {c}"))),
        Ok(_) => Ok(()),
    }
}

fn instance(
    k: &Kernel,
    caller: &Caller<'_>,
    op: &str,
    id: Option<&str>,
) -> Result<(), SyscallError> {
    let Some(i) = id else { return Ok(()) };
    match k.hooks().table().get(i) {
        Some(e) if !caller.scope.has_owner(&e.owner, e.owner_agent.as_deref()) => Err(caller
            .denied(
                op,
                format!("service {i} (owned by {})", owner_text(&e.owner)),
            )),
        _ => Ok(()),
    }
}

pub(crate) fn owner_text(o: &ServiceOwner) -> String {
    match o {
        ServiceOwner::System => "system".into(),
        ServiceOwner::Agent(a) => format!("agent:{a}"),
        ServiceOwner::Session(s) => format!("session:{s}"),
    }
}

/// A service may be started at the caller's own level or below.
async fn start_owner(
    k: &Kernel,
    caller: &Caller<'_>,
    op: &str,
    params: &Map<String, Value>,
) -> Result<(), SyscallError> {
    let text = str_param(params, "owner").unwrap_or("system");
    let Some(owner) = ServiceOwner::parse(text) else {
        return Ok(()); // the op explains the syntax
    };
    let owner_agent = match &owner {
        ServiceOwner::Session(s) => k.store().session_get(s).await.ok().map(|scb| scb.agent_id),
        ServiceOwner::Agent(a) => Some(a.clone()),
        ServiceOwner::System => None,
    };
    if caller.scope.has_owner(&owner, owner_agent.as_deref()) {
        Ok(())
    } else {
        Err(caller.denied(
            op,
            format!("a service for {text} (above or beside its own level)"),
        ))
    }
}

async fn catalog_owner(
    k: &Kernel,
    caller: &Caller<'_>,
    op: &str,
    params: &Map<String, Value>,
) -> Result<(), SyscallError> {
    let id = str_param(params, "ownerId");
    match str_param(params, "ownerType") {
        Some("agent") => match id {
            Some(a) if !caller.scope.reads_agent(a) => Err(caller.denied(op, format!("agent {a}"))),
            _ => Ok(()),
        },
        Some("session") => session(k, caller, op, id).await,
        // The system-level catalog names skills only.
        _ => Ok(()),
    }
}

/// A command runs for the session it names; a scoped caller without one
/// runs it for its own session (a session scope) or must name one.
async fn invoke(
    k: &Kernel,
    caller: &Caller<'_>,
    op: &str,
    params: &mut Map<String, Value>,
) -> Result<(), SyscallError> {
    if str_param(params, "sessionId").is_none() {
        match caller.scope {
            Scope::Session { session, .. } => {
                params.insert("sessionId".into(), Value::String(session.clone()));
            }
            // A session token's command runs for its own session (the op
            // fills it in); an agent-owned service names one of its agent's.
            _ if caller.kind == "session" => return Ok(()),
            _ => {
                return Err(caller.denied(
                    op,
                    "a command for the system (name a sessionId of your agent)".into(),
                ));
            }
        }
    }
    session(k, caller, op, str_param(params, "sessionId")).await
}

/// Lists name the caller's agent (and session) as their filter: another's is
/// refused, none is filled in. `agent.list` and `service.list` filter their
/// rows themselves ([`Scope::of`]).
fn narrow_list(
    caller: &Caller<'_>,
    op: &str,
    params: &mut Map<String, Value>,
) -> Result<(), SyscallError> {
    let scope = caller.scope;
    let Some(agent) = scope.agent() else {
        return Err(caller.denied(op, "a list (its agent is gone)".into()));
    };
    if matches!(op, "session.list" | "runtime.log.list") {
        match str_param(params, "agentId") {
            Some(a) if a != agent => return Err(caller.denied(op, format!("agent {a}"))),
            _ => {
                params.insert("agentId".into(), Value::String(agent.to_string()));
            }
        }
    }
    if let (Scope::Session { session, .. }, "runtime.log.list") = (scope, op) {
        match str_param(params, "sessionId") {
            Some(s) if s != session => return Err(caller.denied(op, format!("session {s}"))),
            _ => {
                params.insert("sessionId".into(), Value::String(session.clone()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_reached_at_the_own_level_or_below() {
        let agent = Scope::Agent("ag_1".into());
        let session = Scope::Session {
            agent: Some("ag_1".into()),
            session: "se_1".into(),
        };
        let sys = ServiceOwner::System;
        let own_agent = ServiceOwner::Agent("ag_1".into());
        let own_session = ServiceOwner::Session("se_1".into());
        let sibling = ServiceOwner::Session("se_2".into());
        assert!(!agent.has_owner(&sys, None));
        assert!(agent.has_owner(&own_agent, Some("ag_1")));
        assert!(agent.has_owner(&sibling, Some("ag_1")));
        assert!(!agent.has_owner(&sibling, Some("ag_2")));
        assert!(!session.has_owner(&own_agent, Some("ag_1")));
        assert!(session.has_owner(&own_session, Some("ag_1")));
        assert!(!session.has_owner(&sibling, Some("ag_1")));
        assert!(Scope::All.has_owner(&sys, None));
    }
}
