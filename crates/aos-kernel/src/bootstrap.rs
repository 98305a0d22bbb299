//! Session bootstrap (`kernel.md` §4.3): `begin` marker, the default skill
//! loads (`aos` always first), the `done` marker, context assembly, ready.
//! [`finish`] is idempotent, so recovery can resume a half-done bootstrap.

use crate::Kernel;
use crate::context;
use crate::hooks::HookScope;
use crate::params::StoreResult;
use crate::skills::{ResolvedSkill, planned_loads, resolve_defaults};
use aos_store::{HistoryQuery, NewMessage};
use aos_types::hook;
use aos_types::{Origin, Part, Role, Scb, SessionPhase, SessionStatus, SyscallError};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Resolves the defaults that apply to a session of `agent_id`.
pub(crate) async fn resolve_for(
    k: &Kernel,
    agent_id: &str,
    session_rules: &[aos_types::SkillDefaultRule],
) -> Result<Vec<ResolvedSkill>, SyscallError> {
    let system = k.store().aoscb_get().await.sys()?;
    let agent = k.store().agent_get(agent_id).await.sys()?;
    Ok(resolve_defaults(&[
        ("system", &system.default_skills),
        ("agent", &agent.default_skills),
        ("session", session_rules),
    ]))
}

fn marker(data: Value) -> NewMessage {
    NewMessage {
        role: Role::System,
        parts: vec![Part::DataBootstrap {
            id: String::new(),
            data,
        }],
        origin: Origin::Aos,
        extra: Default::default(),
    }
}

/// A `data-skill-load` message.
pub(crate) fn skill_load_message(
    k: &Kernel,
    name: &str,
    cause: &str,
    owner: (&str, Option<&str>),
) -> Result<NewMessage, SyscallError> {
    let index = k.skills().snapshot();
    let skill = index.get(name).ok_or_else(|| {
        SyscallError::new(
            aos_types::ErrorCode::SkillNotFound,
            format!("no valid skill named {name:?} in the skill roots; see `aos skill list`"),
        )
    })?;
    let mut data =
        json!({ "cause": cause, "ownerType": owner.0, "name": name, "skillText": skill.body });
    if let Some(id) = owner.1 {
        data["ownerId"] = json!(id);
    }
    Ok(NewMessage {
        role: Role::System,
        parts: vec![Part::DataSkillLoad {
            id: String::new(),
            data,
        }],
        origin: Origin::Aos,
        extra: Default::default(),
    })
}

/// Runs (or resumes) the bootstrap of an `initializing` session and makes it
/// ready. Returns the final SCB.
pub(crate) async fn finish(k: &Kernel, scb: Scb, cause: &str) -> Result<Scb, SyscallError> {
    let (agent_id, session_id) = (scb.agent_id.clone(), scb.session_id.clone());
    let scope = || HookScope {
        agent_id: Some(&agent_id),
        session_id: Some(&session_id),
    };
    let (planned, loaded, mut scb) = match find_begin(k, &scb).await? {
        Some((_, _, true)) => return make_ready(k, scb, cause).await,
        Some((planned, loaded, false)) => (planned, loaded, scb),
        None => {
            let planned = plan(k, &scb).await?;
            let (_, after) = k
                .append(
                    &scb,
                    None,
                    vec![marker(json!({ "phase": "begin", "plannedNames": planned }))],
                )
                .await?;
            (planned, BTreeSet::new(), after)
        }
    };
    let input =
        json!({ "agentId": scb.agent_id, "sessionId": scb.session_id, "plannedNames": planned });
    let admitted = k
        .hooks()
        .admit(
            hook::SESSION_BOOTSTRAP_BEFORE,
            scope(),
            &input,
            input.clone(),
        )
        .await?;
    let planned: Vec<String> = admitted
        .get("plannedNames")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or(planned);
    let mut batch = Vec::new();
    let mut injected = Vec::new();
    for name in planned.iter().filter(|n| !loaded.contains(*n)) {
        let load_in = json!({ "name": name, "sessionId": scb.session_id });
        if let Err(e) = k
            .hooks()
            .admit(hook::SKILL_LOAD_BEFORE, scope(), &load_in, load_in.clone())
            .await
        {
            tracing::warn!(skill = %name, error = %e, "default skill load rejected");
            continue;
        }
        match skill_load_message(k, name, "default", ("system", None)) {
            Ok(m) => {
                batch.push(m);
                injected.push(name.clone());
            }
            Err(e) => tracing::warn!(skill = %name, error = %e, "default skill missing; skipped"),
        }
    }
    batch.push(marker(json!({ "phase": "done" })));
    let (_, after) = k.append(&scb, None, batch).await?;
    scb = after;
    for name in &injected {
        k.emit(
            hook::SKILL_LOAD_AFTER,
            scope(),
            json!({ "name": name, "sessionId": scb.session_id }),
        );
    }
    k.emit(
        hook::SESSION_BOOTSTRAP_AFTER,
        scope(),
        json!({ "agentId": scb.agent_id, "sessionId": scb.session_id, "injectedNames": injected }),
    );
    make_ready(k, scb, cause).await
}

/// Assembles the context, marks the session ready and idle, `session.started`.
async fn make_ready(k: &Kernel, scb: Scb, cause: &str) -> Result<Scb, SyscallError> {
    let (agent_id, session_id) = (scb.agent_id.clone(), scb.session_id.clone());
    let scope = || HookScope {
        agent_id: Some(&agent_id),
        session_id: Some(&session_id),
    };
    context::assemble(k, &scb, "rebuild").await?;
    let scb = k
        .store()
        .session_update(&scb.session_id, None, |s| {
            s.status = SessionStatus::Ready;
            s.phase = SessionPhase::Idle;
            Ok(())
        })
        .await
        .sys()?;
    k.emit(
        hook::SESSION_STARTED,
        scope(),
        json!({ "agentId": scb.agent_id, "sessionId": scb.session_id, "cause": cause }),
    );
    Ok(scb)
}

/// Resolves the plan through the `skill.default.resolve.*` hooks.
async fn plan(k: &Kernel, scb: &Scb) -> Result<Vec<String>, SyscallError> {
    let scope = || HookScope {
        agent_id: Some(&scb.agent_id),
        session_id: Some(&scb.session_id),
    };
    let resolved = resolve_for(k, &scb.agent_id, &scb.default_skills).await?;
    let planned = planned_loads(&resolved);
    let input =
        json!({ "ownerType": "session", "ownerId": scb.session_id, "plannedNames": planned });
    let out = k
        .hooks()
        .admit(
            hook::SKILL_DEFAULT_RESOLVE_BEFORE,
            scope(),
            &input,
            input.clone(),
        )
        .await?;
    let mut planned: Vec<String> = out
        .get("plannedNames")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or(planned);
    if !planned.iter().any(|n| n == crate::skills::AOS_SKILL) {
        planned.insert(0, crate::skills::AOS_SKILL.into());
    }
    k.emit(
        hook::SKILL_DEFAULT_RESOLVE_AFTER,
        scope(),
        json!({ "ownerType": "session", "ownerId": scb.session_id, "resolvedNames": planned }),
    );
    Ok(planned)
}

/// Finds an earlier `begin` marker: its planned names, what was loaded since,
/// and whether `done` followed.
async fn find_begin(
    k: &Kernel,
    scb: &Scb,
) -> Result<Option<(Vec<String>, BTreeSet<String>, bool)>, SyscallError> {
    let q = HistoryQuery {
        from_seq: 1,
        to_seq: None,
        limit: 10_000,
    };
    let history = k.store().history(&scb.session_id, &q).await.sys()?;
    let mut begin = None;
    let mut loaded = BTreeSet::new();
    let mut done = false;
    for m in &history {
        for p in &m.parts {
            match p {
                Part::DataBootstrap { data, .. } if data["phase"] == "begin" => {
                    let names =
                        serde_json::from_value(data["plannedNames"].clone()).unwrap_or_default();
                    begin = Some(names);
                    loaded.clear();
                    done = false;
                }
                Part::DataBootstrap { data, .. } if data["phase"] == "done" => done = true,
                Part::DataSkillLoad { data, .. } => {
                    if let Some(n) = data["name"].as_str() {
                        loaded.insert(n.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(begin.map(|b| (b, loaded, done)))
}
