//! The skill registry: the current index of the skill roots, swapped whole on
//! every re-index, a filesystem watcher that re-indexes on change, and the
//! three-level default-skill resolution.

use aos_manifest::{SkillIndex, scan_roots};
use aos_types::{SkillDefaultRule, Switch};
use notify::{RecursiveMode, Watcher};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The name of the skill every session loads at bootstrap.
pub const AOS_SKILL: &str = "aos";

/// The live skill index.
#[derive(Debug)]
pub struct SkillRegistry {
    roots: Vec<PathBuf>,
    index: RwLock<Arc<SkillIndex>>,
}

impl SkillRegistry {
    /// Scans `roots` once.
    pub fn new(roots: Vec<PathBuf>) -> Self {
        let index = scan_roots(&roots);
        SkillRegistry {
            roots,
            index: RwLock::new(Arc::new(index)),
        }
    }

    /// The current index (a snapshot; cheap).
    pub fn snapshot(&self) -> Arc<SkillIndex> {
        match self.index.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The roots, in priority order.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Re-scans the roots and swaps the index in; returns the new snapshot.
    pub fn refresh(&self) -> Arc<SkillIndex> {
        let fresh = Arc::new(scan_roots(&self.roots));
        match self.index.write() {
            Ok(mut g) => *g = fresh.clone(),
            Err(poisoned) => *poisoned.into_inner() = fresh.clone(),
        }
        fresh
    }

    /// Watches the roots; calls `on_change` (debounced) after a `SKILL.md`
    /// or anything else under a root is created, changed or removed. The
    /// returned watcher must be kept alive.
    pub fn watch(
        self: &Arc<Self>,
        on_change: impl Fn() + Send + Sync + 'static,
    ) -> notify::Result<notify::RecommendedWatcher> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                // Reading SKILL.md (our own scan) raises access events: ignore them.
                if res.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
                    let _ = tx.send(());
                }
            })?;
        for root in &self.roots {
            if root.is_dir() {
                watcher.watch(root, RecursiveMode::Recursive)?;
            }
        }
        tokio::spawn(async move {
            while rx.recv().await.is_some() {
                // Debounce: wait for a quiet period, then re-index once.
                loop {
                    match tokio::time::timeout(Duration::from_millis(150), rx.recv()).await {
                        Ok(Some(())) => continue,
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                on_change();
            }
        });
        Ok(watcher)
    }
}

/// The resolved default state of one skill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedSkill {
    /// Skill name.
    pub name: String,
    /// Loaded at bootstrap.
    pub load: bool,
    /// Service started for the owner.
    pub start: bool,
    /// The level whose rule decided `load` (`system`, `agent`, `session`, or
    /// `kernel` for the always-loaded `aos`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_from: Option<&'static str>,
    /// The level whose rule decided `start`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_from: Option<&'static str>,
}

/// Resolves rules system → agent → session; a later layer overrides an earlier
/// one per field; a missing field says nothing. `aos` is always loaded.
pub fn resolve_defaults(layers: &[(&'static str, &[SkillDefaultRule])]) -> Vec<ResolvedSkill> {
    let mut out: BTreeMap<String, ResolvedSkill> = BTreeMap::new();
    for (level, rules) in layers {
        for r in *rules {
            let e = out.entry(r.name.clone()).or_insert_with(|| ResolvedSkill {
                name: r.name.clone(),
                load: false,
                start: false,
                load_from: None,
                start_from: None,
            });
            if let Some(l) = r.load {
                e.load = l == Switch::Enable;
                e.load_from = Some(level);
            }
            if let Some(s) = r.start {
                e.start = s == Switch::Enable;
                e.start_from = Some(level);
            }
        }
    }
    let aos = out
        .entry(AOS_SKILL.into())
        .or_insert_with(|| ResolvedSkill {
            name: AOS_SKILL.into(),
            load: true,
            start: false,
            load_from: Some("kernel"),
            start_from: None,
        });
    if !aos.load {
        aos.load = true;
        aos.load_from = Some("kernel");
    }
    out.into_values().collect()
}

/// The names to load at bootstrap: `aos` first, then the others by name.
pub fn planned_loads(resolved: &[ResolvedSkill]) -> Vec<String> {
    let mut names = vec![AOS_SKILL.to_string()];
    names.extend(
        resolved
            .iter()
            .filter(|r| r.load && r.name != AOS_SKILL)
            .map(|r| r.name.clone()),
    );
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, load: Option<Switch>, start: Option<Switch>) -> SkillDefaultRule {
        SkillDefaultRule {
            name: name.into(),
            load,
            start,
        }
    }

    #[test]
    fn later_layers_override_per_field() {
        use Switch::*;
        let system = [
            rule("ctx", Some(Enable), Some(Enable)),
            rule("ui", None, Some(Enable)),
        ];
        let agent = [
            rule("ctx", None, Some(Disable)),
            rule("pdf", Some(Enable), None),
        ];
        let session = [
            rule("pdf", Some(Disable), None),
            rule("aos", Some(Disable), None),
        ];
        let r = resolve_defaults(&[
            ("system", &system),
            ("agent", &agent),
            ("session", &session),
        ]);
        let get = |n: &str| r.iter().find(|x| x.name == n).expect("present").clone();
        let ctx = get("ctx");
        assert!(ctx.load && !ctx.start);
        assert_eq!(
            (ctx.load_from, ctx.start_from),
            (Some("system"), Some("agent"))
        );
        let pdf = get("pdf");
        assert!(!pdf.load && pdf.load_from == Some("session"));
        assert!(get("ui").start && !get("ui").load);
        assert!(get("aos").load, "aos cannot be disabled");
        assert_eq!(planned_loads(&r), vec!["aos", "ctx"]);
    }
}
