//! `session.create`, `session.get`, `session.list`, `session.update`,
//! `session.archive`, `session.append`, `session.context.get|rebuild`.

use crate::Principal;
use crate::bootstrap;
use crate::context;
use crate::hooks::HookScope;
use crate::kernel::{Done, Kernel, OpResult};
use crate::params::{self, MAX_PARTS, StoreResult, decode};
use crate::services::ServiceOwner;
use crate::sessions::{agent_archived as archived, load, not_archived, session_archived, writable};
use aos_store::{NewMessage, StoreError};
use aos_types::hook;
use aos_types::requests::SessionCreate;
use aos_types::{
    AgentStatus, IdKind, Origin, Part, Role, SCHEMA_VERSION, Scb, SessionPhase, SessionStatus,
    SkillDefaultRule, SyscallError, new_id, now,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub(crate) async fn create(k: &Kernel, p: &Principal, params: Map<String, Value>) -> OpResult {
    let c: SessionCreate = decode("session.create", params)?;
    params::id("agentId", &c.agent_id)?;
    if let Some(t) = &c.title {
        params::short_text("title", t)?;
    }
    if let Some(v) = c.auto_fold_threshold {
        params::positive("autoFoldThreshold", v)?;
    }
    params::rules("defaultSkills", &c.default_skills)?;
    let agent = k.store().agent_get(&c.agent_id).await.sys()?;
    if agent.status == AgentStatus::Archived {
        return Err(params::store_err(archived(&agent)));
    }
    let t = now();
    let scb = Scb {
        schema_version: SCHEMA_VERSION.into(),
        session_id: new_id(IdKind::Session),
        agent_id: agent.agent_id,
        status: SessionStatus::Initializing,
        phase: SessionPhase::Bootstrapping,
        lease_id: None,
        lease_holder: None,
        lease_expires_at: None,
        lease_term: 0,
        title: c.title,
        revision: 1,
        created_by: p.created_by(),
        created_at: t.clone(),
        updated_at: t,
        archived_at: None,
        default_skills: c.default_skills,
        auto_fold_threshold: c.auto_fold_threshold,
        message_count: 0,
        last_message_seq: None,
    };
    k.store().session_insert(&scb).await.sys()?;
    crate::paths::make_dirs(k.config(), &scb.session_id);
    let starts = bootstrap::resolve_for(k, &scb.agent_id, &scb.default_skills)
        .await?
        .into_iter()
        .filter(|r| r.start && r.start_from == Some("session"))
        .map(|r| r.name)
        .collect();
    crate::ops::service::reconcile(k, ServiceOwner::Session(scb.session_id.clone()), starts).await;
    let scb = bootstrap::finish(k, scb, "create").await?;
    Ok(Done::data(json!(scb))
        .rev(scb.revision)
        .ids(Some(&scb.agent_id), Some(&scb.session_id)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Get {
    session_id: String,
}

pub(crate) async fn get(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let q: Get = decode("session.get", params)?;
    Ok(Done::data(json!(load(k, &q.session_id).await?)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct List {
    agent_id: Option<String>,
    status: Option<SessionStatus>,
    /// Title substring (any case), or session/agent id prefix.
    search: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
    #[serde(default)]
    order: Order,
}

/// `session.list` order: by creation, or newest first.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Order {
    #[default]
    Asc,
    Desc,
}

pub(crate) async fn list(k: &Kernel, p: &Principal, params: Map<String, Value>) -> OpResult {
    let mut q: List = decode("session.list", params)?;
    let scope = crate::authz::Scope::of(p);
    if let Some(agent_id) = scope.agent() {
        // A scoped caller lists its own agent's sessions only (another
        // agent's id was refused by the authorization).
        q.agent_id = Some(agent_id.to_string());
    }
    let limit = params::limit(q.limit, 100)?;
    for (f, v) in [("agentId", &q.agent_id), ("cursor", &q.cursor)] {
        if let Some(v) = v {
            params::id(f, v)?;
        }
    }
    if let Some(text) = &q.search {
        params::short_text("search", text)?;
    }
    let query = aos_store::SessionQuery {
        agent_id: q.agent_id,
        status: q.status,
        text: q.search.filter(|t| !t.is_empty()),
        after: q.cursor,
        limit,
        newest_first: q.order == Order::Desc,
    };
    let sessions = k.store().session_list(&query).await.sys()?;
    let next = (sessions.len() as i64 == limit)
        .then(|| sessions.last().map(|s| s.session_id.clone()))
        .flatten();
    let mut sessions = sessions;
    if let crate::authz::Scope::Session { session, .. } = &scope {
        sessions.retain(|s| &s.session_id == session);
    }
    Ok(Done::data(
        json!({ "sessions": sessions, "nextCursor": next }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Update {
    session_id: String,
    expected_revision: Option<i64>,
    title: Option<String>,
    default_skills: Option<Vec<SkillDefaultRule>>,
    auto_fold_threshold: Option<i64>,
}

pub(crate) async fn update(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let u: Update = decode("session.update", params)?;
    params::id("sessionId", &u.session_id)?;
    if let Some(t) = &u.title {
        params::short_text("title", t)?;
    }
    if let Some(v) = u.auto_fold_threshold {
        params::positive("autoFoldThreshold", v)?;
    }
    if let Some(r) = &u.default_skills {
        params::rules("defaultSkills", r)?;
    }
    not_archived(k, &u.session_id).await?;
    let scb = k
        .store()
        .session_update(&u.session_id.clone(), u.expected_revision, move |s| {
            if s.status == SessionStatus::Archived {
                return Err(session_archived(s));
            }
            if let Some(t) = u.title {
                s.title = Some(t);
            }
            if let Some(r) = u.default_skills {
                s.default_skills = r;
            }
            if let Some(v) = u.auto_fold_threshold {
                s.auto_fold_threshold = Some(v);
            }
            Ok(())
        })
        .await
        .sys()?;
    Ok(Done::data(json!(scb))
        .rev(scb.revision)
        .ids(Some(&scb.agent_id), Some(&scb.session_id)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Archive {
    session_id: String,
    expected_revision: Option<i64>,
}

pub(crate) async fn archive(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let a: Archive = decode("session.archive", params)?;
    params::id("sessionId", &a.session_id)?;
    let scb = k
        .store()
        .session_update(&a.session_id, a.expected_revision, |s| {
            if s.status == SessionStatus::Archived {
                return Err(session_archived(s));
            }
            if s.phase == SessionPhase::Dispatched {
                return Err(StoreError::Rejected {
                    code: "session.busy",
                    message: format!(
                        "session {} runs a dispatch; interrupt it first",
                        s.session_id
                    ),
                });
            }
            s.status = SessionStatus::Archived;
            s.archived_at = Some(now());
            Ok(())
        })
        .await
        .sys()?;
    k.contexts().forget(&scb.session_id);
    let id = scb.session_id.clone();
    crate::ops::service::stop_owned(k, |e| e.owner == ServiceOwner::Session(id.clone())).await;
    k.emit(
        hook::SESSION_ARCHIVED,
        HookScope {
            agent_id: Some(&scb.agent_id),
            session_id: Some(&scb.session_id),
        },
        json!({ "agentId": scb.agent_id, "sessionId": scb.session_id }),
    );
    Ok(Done::data(json!(scb))
        .rev(scb.revision)
        .ids(Some(&scb.agent_id), Some(&scb.session_id)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppendMessage {
    role: Role,
    parts: Vec<Part>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Append {
    session_id: String,
    message: AppendMessage,
    expected_revision: Option<i64>,
    idempotency_key: Option<String>,
}

pub(crate) async fn append(k: &Kernel, p: &Principal, params: Map<String, Value>) -> OpResult {
    let a: Append = decode("session.append", params)?;
    let mut parts = a.message.parts;
    if parts.is_empty() || parts.len() > MAX_PARTS {
        return Err(SyscallError::invalid(format!(
            "`message.parts` must hold 1 to {MAX_PARTS} parts"
        )));
    }
    for (i, part) in parts.iter().enumerate() {
        if !part.id().is_empty() {
            params::id(&format!("message.parts[{i}].id"), part.id())?;
        }
    }
    let envelope = a2a_part(k, p, &mut parts).await?;
    let keyed = params::keyed_id("msg_", &a.session_id, a.idempotency_key.as_deref())?;
    if let Some(id) = &keyed
        && let Some(done) = replay_append(k, &a.session_id, id).await
    {
        return Ok(done);
    }
    let scb = writable(k, &a.session_id).await?;
    let origin = match p {
        Principal::Session { .. } => Origin::Agent,
        _ if envelope.is_some() => Origin::Agent,
        _ => Origin::Human,
    };
    let msg = NewMessage {
        role: a.message.role,
        parts,
        origin,
        extra: aos_store::MessageExtra {
            id: keyed.clone(),
            from_agent_id: envelope,
            ..Default::default()
        },
    };
    let (msgs, after) = match k.append(&scb, a.expected_revision, vec![msg]).await {
        Ok(written) => written,
        // The same key written meanwhile: its message's unique id refused this one.
        Err(e) => match &keyed {
            Some(id) => return replay_append(k, &a.session_id, id).await.ok_or(e),
            None => return Err(e),
        },
    };
    let m = &msgs[0];
    Ok(
        Done::data(json!({ "messageId": m.id, "seq": m.metadata.seq }))
            .rev(after.revision)
            .ids(Some(&after.agent_id), Some(&after.session_id)),
    )
}

/// The answer of an append whose `idempotencyKey` (message `id`) was
/// written before: the first append's message, nothing written now.
async fn replay_append(k: &Kernel, session_id: &str, id: &str) -> Option<Done> {
    let m = k.store().message_get(session_id, id).await.ok()?;
    Some(Done::data(
        json!({ "messageId": m.id, "seq": m.metadata.seq, "replayed": true }),
    ))
}

/// Checks a `data-a2a` part (at most one; only a service or the operator may
/// speak for another agent) and returns the sending agent.
async fn a2a_part(
    k: &Kernel,
    p: &Principal,
    parts: &mut [Part],
) -> Result<Option<String>, SyscallError> {
    let mut found = parts.iter_mut().filter_map(|part| match part {
        Part::DataA2a { data, .. } => Some(data),
        _ => None,
    });
    let Some(data) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(SyscallError::invalid(
            "a message holds at most one `data-a2a` part",
        ));
    }
    let from: aos_types::requests::A2aFrom = serde_json::from_value(data.clone())
        .map_err(|e| SyscallError::invalid(format!("the `data-a2a` part: {e}")))?;
    let from = crate::dispatch::a2a_envelope(k, p, from).await?;
    *data = json!(from);
    Ok(Some(from.from_agent_id))
}

pub(crate) async fn context_get(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let q: Get = decode("session.context.get", params)?;
    let scb = load(k, &q.session_id).await?;
    Ok(Done::data(json!(context::get(k, &scb).await?)))
}

pub(crate) async fn context_rebuild(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let q: Get = decode("session.context.rebuild", params)?;
    let scb = load(k, &q.session_id).await?;
    Ok(Done::data(json!(
        context::assemble(k, &scb, "rebuild").await?
    )))
}
