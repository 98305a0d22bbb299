//! `skill.list`, `skill.get`, `skill.load`, `skill.unload`,
//! `skill.index.refresh`, `skill.catalog.refresh|preview`,
//! `skill.default.resolve`.

use crate::bootstrap::{resolve_for, skill_load_message};
use crate::hooks::HookScope;
use crate::kernel::{Done, Kernel, OpResult};
use crate::params::{self, StoreResult, decode};
use crate::sessions::{self, writable};
use crate::skills::{planned_loads, resolve_defaults};
use aos_store::{HistoryQuery, NewMessage};
use aos_types::hook;
use aos_types::{ErrorCode, Origin, OwnerType, Part, Role, SyscallError};
use serde::Deserialize;
use serde_json::{Map, Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

pub(crate) async fn list(k: &Kernel, params: Map<String, Value>) -> OpResult {
    decode::<NoParams>("skill.list", params)?;
    let index = k.skills().snapshot();
    let skills: Vec<Value> = index
        .entries
        .iter()
        .map(|e| match &e.manifest {
            Some(m) => json!({
                "name": m.name, "description": m.description, "dir": e.dir,
                "valid": true, "service": m.service, "warnings": m.warnings,
                "capabilities": m.capabilities_declared.then_some(&m.capabilities),
            }),
            None => json!({ "name": e.name, "dir": e.dir, "valid": false, "error": e.error }),
        })
        .collect();
    Ok(Done::data(json!({ "skills": skills })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Named {
    name: String,
}

fn not_found(name: &str) -> SyscallError {
    SyscallError::new(
        ErrorCode::SkillNotFound,
        format!("no skill named {name:?} in the skill roots; see `aos skill list`"),
    )
    .with_details(json!({ "name": name }))
}

pub(crate) async fn get(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let q: Named = decode("skill.get", params)?;
    params::skill_name("name", &q.name)?;
    let index = k.skills().snapshot();
    let entry = index.entry(&q.name).ok_or_else(|| not_found(&q.name))?;
    let data = match &entry.manifest {
        Some(m) => {
            json!({ "name": m.name, "dir": entry.dir, "valid": true, "manifest": m, "skillText": m.body })
        }
        None => {
            json!({ "name": entry.name, "dir": entry.dir, "valid": false, "error": entry.error })
        }
    };
    Ok(Done::data(data))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Load {
    name: String,
    session_id: String,
}

pub(crate) async fn load(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let q: Load = decode("skill.load", params)?;
    params::skill_name("name", &q.name)?;
    let scb = writable(k, &q.session_id).await?;
    let scope = || HookScope {
        agent_id: Some(&scb.agent_id),
        session_id: Some(&scb.session_id),
    };
    let input = json!({ "name": q.name, "sessionId": scb.session_id });
    k.hooks()
        .admit(hook::SKILL_LOAD_BEFORE, scope(), &input, input.clone())
        .await?;
    let msg = skill_load_message(k, &q.name, "explicit", ("session", Some(&scb.session_id)))?;
    let (msgs, after) = k.append(&scb, None, vec![msg]).await?;
    k.emit(
        hook::SKILL_LOAD_AFTER,
        scope(),
        json!({ "name": q.name, "sessionId": scb.session_id }),
    );
    let m = &msgs[0];
    Ok(
        Done::data(json!({ "name": q.name, "messageId": m.id, "seq": m.metadata.seq }))
            .rev(after.revision)
            .ids(Some(&after.agent_id), Some(&after.session_id)),
    )
}

/// Whether `name` is loaded in the session: its last load is not followed by
/// an unload.
async fn is_loaded(k: &Kernel, session_id: &str, name: &str) -> Result<bool, SyscallError> {
    let mut loaded = false;
    let mut from = 1;
    loop {
        let q = HistoryQuery {
            from_seq: from,
            to_seq: None,
            limit: 1000,
        };
        let page = k.store().history(session_id, &q).await.sys()?;
        for m in &page {
            for p in &m.parts {
                match p {
                    Part::DataSkillLoad { data, .. } if data["name"] == name => loaded = true,
                    Part::DataSkillUnload { data, .. } if data["name"] == name => loaded = false,
                    _ => {}
                }
            }
        }
        match page.last() {
            Some(m) if page.len() == 1000 => from = m.metadata.seq + 1,
            _ => return Ok(loaded),
        }
    }
}

pub(crate) async fn unload(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let q: Load = decode("skill.unload", params)?;
    params::skill_name("name", &q.name)?;
    let scb = writable(k, &q.session_id).await?;
    if !is_loaded(k, &scb.session_id, &q.name).await? {
        return Err(SyscallError::new(
            ErrorCode::SkillNotFound,
            format!(
                "skill {:?} is not loaded in session {}",
                q.name, scb.session_id
            ),
        ));
    }
    let msg = NewMessage {
        role: Role::System,
        parts: vec![Part::DataSkillUnload {
            id: String::new(),
            data: json!({ "name": q.name }),
        }],
        origin: Origin::Aos,
        extra: Default::default(),
    };
    let (msgs, after) = k.append(&scb, None, vec![msg]).await?;
    let m = &msgs[0];
    Ok(
        Done::data(json!({ "name": q.name, "messageId": m.id, "seq": m.metadata.seq }))
            .rev(after.revision)
            .ids(Some(&after.agent_id), Some(&after.session_id)),
    )
}

pub(crate) async fn index_refresh(k: &Kernel, params: Map<String, Value>) -> OpResult {
    decode::<NoParams>("skill.index.refresh", params)?;
    for root in k.skills().roots() {
        let input = json!({ "skillRoot": root });
        k.hooks()
            .admit(
                hook::SKILL_INDEX_REFRESH_BEFORE,
                HookScope::default(),
                &input,
                input.clone(),
            )
            .await?;
    }
    let index = k.skills().refresh_async().await;
    let errors: Vec<Value> = index
        .entries
        .iter()
        .filter_map(|e| {
            e.error
                .as_ref()
                .map(|err| json!({ "name": e.name, "error": err }))
        })
        .collect();
    k.emit(
        hook::SKILL_INDEX_REFRESH_AFTER,
        HookScope::default(),
        json!({ "indexedCount": index.valid_count() }),
    );
    Ok(Done::data(
        json!({ "indexedCount": index.valid_count(), "errors": errors }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Catalog {
    owner_type: Option<OwnerType>,
    owner_id: Option<String>,
    query: Option<String>,
    limit: Option<i64>,
}

/// Discovery: the skills an owner may see. Without handlers every valid
/// skill is a candidate and every candidate is selected (no policy).
pub(crate) async fn catalog(k: &Kernel, params: Map<String, Value>, refresh: bool) -> OpResult {
    let op = if refresh {
        "skill.catalog.refresh"
    } else {
        "skill.catalog.preview"
    };
    let q: Catalog = decode(op, params)?;
    let owner_type = q.owner_type.unwrap_or(OwnerType::System);
    let (agent_id, session_id) = owner_ids(k, owner_type, q.owner_id.as_deref()).await?;
    if let Some(text) = &q.query {
        params::short_text("query", text)?;
    }
    let limit = params::limit(q.limit, 1000)?;
    let scope = || HookScope {
        agent_id: agent_id.as_deref(),
        session_id: session_id.as_deref(),
    };
    let mut query = json!(q.query);
    if refresh {
        let input = json!({ "ownerType": owner_type, "ownerId": q.owner_id, "query": query });
        query = k
            .hooks()
            .admit(hook::SKILL_DISCOVERY_BEFORE, scope(), &input, query)
            .await?;
    }
    let candidates: Vec<Value> = k
        .skills()
        .snapshot()
        .valid()
        .map(|m| json!({ "name": m.name, "description": m.description }))
        .collect();
    let input = json!({ "query": query, "candidates": candidates, "ownerType": owner_type, "ownerId": q.owner_id, "limit": limit });
    let (out, resolved_by) = k
        .hooks()
        .transform_by(
            hook::SKILL_DISCOVERY_RESOLVE,
            scope(),
            &input,
            json!({ "selected": candidates }),
        )
        .await;
    let mut selected = out
        .get("selected")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    selected.truncate(limit as usize);
    if refresh {
        k.emit(
            hook::SKILL_DISCOVERY_AFTER,
            scope(),
            json!({ "ownerType": owner_type, "ownerId": q.owner_id, "catalog": selected }),
        );
    }
    Ok(Done::data(json!({
        "ownerType": owner_type, "ownerId": q.owner_id, "query": query,
        "catalog": selected, "resolvedBy": resolved_by,
    })))
}

/// Validates an owner reference and returns its (agentId, sessionId).
async fn owner_ids(
    k: &Kernel,
    owner_type: OwnerType,
    owner_id: Option<&str>,
) -> Result<(Option<String>, Option<String>), SyscallError> {
    match (owner_type, owner_id) {
        (OwnerType::System, None) => Ok((None, None)),
        (OwnerType::System, Some(_)) => Err(SyscallError::invalid(
            "`ownerId` must be absent for ownerType system",
        )),
        (OwnerType::Agent, Some(id)) => {
            params::id("ownerId", id)?;
            let a = k.store().agent_get(id).await.sys()?;
            Ok((Some(a.agent_id), None))
        }
        (OwnerType::Session, Some(id)) => {
            let s = sessions::load(k, id).await?;
            Ok((Some(s.agent_id), Some(s.session_id)))
        }
        (_, None) => Err(SyscallError::invalid(
            "`ownerId` is required for ownerType agent or session",
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Resolve {
    agent_id: Option<String>,
    session_id: Option<String>,
}

pub(crate) async fn default_resolve(k: &Kernel, params: Map<String, Value>) -> OpResult {
    let q: Resolve = decode("skill.default.resolve", params)?;
    let (owner_type, owner_id, resolved) = match (q.agent_id, q.session_id) {
        (None, Some(sid)) => {
            let s = sessions::load(k, &sid).await?;
            (
                "session",
                Some(sid),
                resolve_for(k, &s.agent_id, &s.default_skills).await?,
            )
        }
        (Some(aid), None) => {
            params::id("agentId", &aid)?;
            ("agent", Some(aid.clone()), resolve_for(k, &aid, &[]).await?)
        }
        (None, None) => {
            let cb = k.store().aoscb_get().await.sys()?;
            (
                "system",
                None,
                resolve_defaults(&[("system", &cb.default_skills)]),
            )
        }
        (Some(_), Some(_)) => {
            return Err(SyscallError::invalid(
                "give `agentId` or `sessionId`, not both",
            ));
        }
    };
    Ok(Done::data(json!({
        "ownerType": owner_type, "ownerId": owner_id,
        "skills": resolved, "plannedNames": planned_loads(&resolved),
    })))
}
