//! `agent.create`, `agent.get`, `agent.list`, `agent.update`, `agent.archive`.

use crate::Principal;
use crate::hooks::HookScope;
use crate::kernel::{Done, Kernel, OpResult};
use crate::params::{self, StoreResult, decode};
use crate::services::ServiceOwner;
use aos_types::hook;
use aos_types::requests::AgentCreate;
use aos_types::{Acb, AgentStatus, IdKind, SCHEMA_VERSION, SkillDefaultRule, new_id, now};
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub(crate) async fn create(k: &Kernel, p: &Principal, params: Map<String, Value>) -> OpResult {
    let c: AgentCreate = decode("agent.create", params)?;
    if let Some(n) = &c.display_name {
        params::short_text("displayName", n)?;
    }
    if let Some(m) = &c.model {
        params::model("model", m)?;
    }
    if let Some(v) = c.auto_fold_threshold {
        params::positive("autoFoldThreshold", v)?;
    }
    params::rules("defaultSkills", &c.default_skills)?;
    check_permissions(c.permissions.as_ref())?;
    let id = new_id(IdKind::Agent);
    let t = now();
    let acb = Acb {
        schema_version: SCHEMA_VERSION.into(),
        display_name: c.display_name.unwrap_or_else(|| id.clone()),
        agent_id: id,
        status: AgentStatus::Active,
        revision: 1,
        created_by: p.created_by(),
        created_at: t.clone(),
        updated_at: t,
        archived_at: None,
        default_skills: c.default_skills,
        auto_fold_threshold: c.auto_fold_threshold,
        model: c.model,
        permissions: c.permissions,
    };
    k.store().agent_insert(&acb).await.sys()?;
    let system = k.store().aoscb_get().await.sys()?;
    let starts = crate::skills::resolve_defaults(&[
        ("system", &system.default_skills),
        ("agent", &acb.default_skills),
    ])
    .into_iter()
    .filter(|r| r.start && r.start_from == Some("agent"))
    .map(|r| r.name)
    .collect();
    crate::ops::service::reconcile(k, ServiceOwner::Agent(acb.agent_id.clone()), starts).await;
    k.emit(
        hook::AGENT_STARTED,
        HookScope {
            agent_id: Some(&acb.agent_id),
            session_id: None,
        },
        json!({ "agentId": acb.agent_id, "cause": "create" }),
    );
    Ok(Done::data(json!(acb))
        .rev(acb.revision)
        .ids(Some(&acb.agent_id), None))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ById {
    agent_id: String,
    expected_revision: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Get {
    agent_id: String,
}

pub(crate) async fn get(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let q: Get = decode("agent.get", params)?;
    params::id("agentId", &q.agent_id)?;
    Ok(Done::data(json!(
        k.store().agent_get(&q.agent_id).await.sys()?
    )))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct List {
    status: Option<AgentStatus>,
    cursor: Option<String>,
    limit: Option<i64>,
}

pub(crate) async fn list(k: &Kernel, p: &Principal, params: Map<String, Value>) -> OpResult {
    let q: List = decode("agent.list", params)?;
    let limit = params::limit(q.limit, 100)?;
    if let Some(c) = &q.cursor {
        params::id("cursor", c)?;
    }
    if let Some(agent_id) = crate::authz::Scope::of(p).agent() {
        // A scoped caller (a session token, an agent's or a session's
        // service) sees its own agent only.
        let own = k.store().agent_get(agent_id).await.sys()?;
        let shown = q.status.is_none_or(|s| s == own.status)
            && q.cursor
                .as_deref()
                .is_none_or(|c| c < own.agent_id.as_str());
        let agents = if shown { vec![own] } else { Vec::new() };
        return Ok(Done::data(json!({ "agents": agents, "nextCursor": null })));
    }
    let agents = k
        .store()
        .agent_list(q.status, q.cursor.as_deref(), limit)
        .await
        .sys()?;
    let next = (agents.len() as i64 == limit)
        .then(|| agents.last().map(|a| a.agent_id.clone()))
        .flatten();
    Ok(Done::data(json!({ "agents": agents, "nextCursor": next })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Update {
    agent_id: String,
    expected_revision: Option<i64>,
    display_name: Option<String>,
    default_skills: Option<Vec<SkillDefaultRule>>,
    auto_fold_threshold: Option<i64>,
    model: Option<String>,
    permissions: Option<Value>,
}

/// `permissions.network` and `permissions.limits` are the bash sandbox's:
/// checked here, so a bad grant is refused, not found at the next dispatch.
fn check_permissions(p: Option<&Value>) -> Result<(), aos_types::SyscallError> {
    match p {
        Some(p) => aos_sandbox::Grants::from_permissions(Some(p))
            .map(drop)
            .map_err(aos_types::SyscallError::invalid),
        None => Ok(()),
    }
}

pub(crate) async fn update(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let u: Update = decode("agent.update", params)?;
    params::id("agentId", &u.agent_id)?;
    if let Some(n) = &u.display_name {
        params::short_text("displayName", n)?;
    }
    if let Some(m) = &u.model {
        params::model("model", m)?;
    }
    if let Some(v) = u.auto_fold_threshold {
        params::positive("autoFoldThreshold", v)?;
    }
    if let Some(r) = &u.default_skills {
        params::rules("defaultSkills", r)?;
    }
    check_permissions(u.permissions.as_ref())?;
    let acb = k
        .store()
        .agent_update(&u.agent_id.clone(), u.expected_revision, move |a| {
            if a.status == AgentStatus::Archived {
                return Err(crate::sessions::agent_archived(a));
            }
            if let Some(n) = u.display_name {
                a.display_name = n;
            }
            if let Some(r) = u.default_skills {
                a.default_skills = r;
            }
            if let Some(v) = u.auto_fold_threshold {
                a.auto_fold_threshold = Some(v);
            }
            if let Some(m) = u.model {
                a.model = Some(m);
            }
            if let Some(p) = u.permissions {
                a.permissions = Some(p);
            }
            Ok(())
        })
        .await
        .sys()?;
    Ok(Done::data(json!(acb))
        .rev(acb.revision)
        .ids(Some(&acb.agent_id), None))
}

pub(crate) async fn archive(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let q: ById = decode("agent.archive", params)?;
    params::id("agentId", &q.agent_id)?;
    let acb = k
        .store()
        .agent_update(&q.agent_id, q.expected_revision, |a| {
            if a.status == AgentStatus::Archived {
                return Err(crate::sessions::agent_archived(a));
            }
            a.status = AgentStatus::Archived;
            a.archived_at = Some(now());
            Ok(())
        })
        .await
        .sys()?;
    let id = acb.agent_id.clone();
    crate::ops::service::stop_owned(k, |e| {
        e.owner == ServiceOwner::Agent(id.clone()) || e.owner_agent.as_deref() == Some(id.as_str())
    })
    .await;
    k.emit(
        hook::AGENT_ARCHIVED,
        HookScope {
            agent_id: Some(&acb.agent_id),
            session_id: None,
        },
        json!({ "agentId": acb.agent_id }),
    );
    Ok(Done::data(json!(acb))
        .rev(acb.revision)
        .ids(Some(&acb.agent_id), None))
}
