//! `system.get`, `system.health`, `system.nodes`, `system.update`.

use crate::kernel::{Done, Kernel, OpResult};
use crate::params::{self, StoreResult, decode};
use aos_types::SkillDefaultRule;
use serde::Deserialize;
use serde_json::{Map, Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

pub(crate) async fn get(k: &Kernel, p: Map<String, Value>) -> OpResult {
    decode::<NoParams>("system.get", p)?;
    let cb = k.store().aoscb_get().await.sys()?;
    Ok(Done::data(json!(cb)))
}

pub(crate) async fn health(k: &Kernel, p: Map<String, Value>) -> OpResult {
    decode::<NoParams>("system.health", p)?;
    let store = match k.store().ping().await {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("error: {e}"),
    };
    let index = k.skills().snapshot();
    // The cluster as the heartbeats show it: how many nodes in each state.
    let at = chrono::Utc::now();
    let mut nodes = json!({ "alive": 0, "lost": 0, "stopped": 0 });
    for n in k.store().nodes().await.unwrap_or_default() {
        let state = crate::nodes::state(&n, at);
        nodes[state] = json!(nodes[state].as_u64().unwrap_or(0) + 1);
    }
    Ok(Done::data(json!({
        "nodes": nodes,
        "status": if store == "ok" { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "nodeId": k.node_id(),
        "uptimeS": k.uptime_s(),
        "store": store,
        "backend": format!("{:?}", k.store().backend()).to_lowercase(),
        "skills": { "valid": index.valid_count(), "invalid": index.entries.len() - index.valid_count() },
        "bashSandbox": k.sandbox().report(k.config()),
    })))
}

/// `system.nodes`: every daemon that shares this store, by its heartbeats.
pub(crate) async fn nodes(k: &Kernel, p: Map<String, Value>) -> OpResult {
    decode::<NoParams>("system.nodes", p)?;
    let at = chrono::Utc::now();
    let nodes: Vec<Value> = k
        .store()
        .nodes()
        .await
        .sys()?
        .iter()
        .map(|n| {
            json!({
                "nodeId": n.node_id, "url": n.url, "version": n.version,
                "startedAt": n.started_at, "heartbeatAt": n.heartbeat_at,
                "stoppedAt": n.stopped_at, "state": crate::nodes::state(n, at),
                "self": n.node_id == k.node_id(),
            })
        })
        .collect();
    Ok(Done::data(json!({ "nodes": nodes })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Update {
    expected_revision: Option<i64>,
    model: Option<String>,
    auto_fold_threshold: Option<i64>,
    compaction_threshold: Option<i64>,
    max_turns: Option<i64>,
    default_skills: Option<Vec<SkillDefaultRule>>,
}

pub(crate) async fn update(k: &Kernel, p: Map<String, Value>) -> OpResult {
    let u: Update = decode("system.update", p)?;
    if let Some(m) = &u.model {
        params::model("model", m)?;
    }
    for (f, v) in [
        ("autoFoldThreshold", u.auto_fold_threshold),
        ("compactionThreshold", u.compaction_threshold),
        ("maxTurns", u.max_turns),
    ] {
        if let Some(v) = v {
            params::positive(f, v)?;
        }
    }
    if let Some(r) = &u.default_skills {
        params::rules("defaultSkills", r)?;
    }
    let cb = k
        .store()
        .aoscb_update(u.expected_revision, move |cb| {
            if let Some(m) = u.model {
                cb.model = m;
            }
            if let Some(v) = u.auto_fold_threshold {
                cb.auto_fold_threshold = v;
            }
            if let Some(v) = u.compaction_threshold {
                cb.compaction_threshold = v;
            }
            if let Some(v) = u.max_turns {
                cb.max_turns = v;
            }
            if let Some(r) = u.default_skills {
                cb.default_skills = r;
            }
            Ok(())
        })
        .await
        .sys()?;
    Ok(Done::data(json!(cb)).rev(cb.revision))
}
