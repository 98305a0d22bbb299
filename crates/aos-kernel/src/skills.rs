//! The skill registry: the current index of the skill roots, swapped whole on
//! every re-index, a filesystem watcher that re-indexes on change, and the
//! three-level default-skill resolution.

use aos_manifest::{ScanCache, SkillIndex, scan_roots_cached};
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
    builtin: Option<PathBuf>,
    index: RwLock<Arc<SkillIndex>>,
    /// The grants each skill's services were last started with.
    started: std::sync::Mutex<BTreeMap<String, Grants>>,
    /// What the last scan read, so a re-index parses only what changed.
    cache: std::sync::Mutex<ScanCache>,
    /// Scans finished so far, and the one running: callers that asked while
    /// a scan ran share the next one instead of queueing one each.
    scans: std::sync::atomic::AtomicU64,
    scanning: tokio::sync::Mutex<()>,
}

/// What a skill's `SKILL.md` grants its service, as lists of strings.
pub type Grants = BTreeMap<&'static str, Vec<String>>;

/// The grants of `c`, one sorted list per kind.
pub fn grants_of(c: &aos_manifest::Capabilities) -> Grants {
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let fs =
        c.fs.iter()
            .map(|g| format!("{} -> {} ({:?})", g.host, g.guest, g.mode).to_lowercase())
            .collect();
    let l = &c.limits;
    let limits = vec![
        format!("memoryMb={:?}", l.memory_mb),
        format!("hookTimeoutMs={:?}", l.hook_timeout_ms),
        format!("fuel={:?}", l.fuel),
    ];
    BTreeMap::from([
        ("hooks", sorted(c.hooks.clone())),
        ("syscalls", sorted(c.syscalls.clone())),
        ("fs", sorted(fs)),
        ("net", sorted(c.net.clone())),
        ("env", sorted(c.env.clone())),
        (
            "kv",
            if c.kv {
                vec!["true".into()]
            } else {
                Vec::new()
            },
        ),
        ("limits", limits),
    ])
}

/// What `now` adds to and removes from `before`, per kind; `None` if equal.
pub fn grants_diff(before: &Grants, now: &Grants) -> Option<serde_json::Value> {
    let mut added = serde_json::Map::new();
    let mut removed = serde_json::Map::new();
    for (kind, list) in now {
        let old = before.get(kind).cloned().unwrap_or_default();
        let plus: Vec<&String> = list.iter().filter(|x| !old.contains(x)).collect();
        let minus: Vec<&String> = old.iter().filter(|x| !list.contains(x)).collect();
        if !plus.is_empty() {
            added.insert((*kind).into(), serde_json::json!(plus));
        }
        if !minus.is_empty() {
            removed.insert((*kind).into(), serde_json::json!(minus));
        }
    }
    (!added.is_empty() || !removed.is_empty())
        .then(|| serde_json::json!({ "added": added, "removed": removed }))
}

impl SkillRegistry {
    /// Scans `roots` once; the names of the skills in `builtin` (one of
    /// them) are reserved.
    pub fn new(roots: Vec<PathBuf>, builtin: Option<PathBuf>) -> Self {
        let mut cache = ScanCache::default();
        let index = scan_roots_cached(&roots, builtin.as_deref(), &mut cache);
        SkillRegistry {
            roots,
            builtin,
            index: RwLock::new(Arc::new(index)),
            started: std::sync::Mutex::new(BTreeMap::new()),
            cache: std::sync::Mutex::new(cache),
            scans: std::sync::atomic::AtomicU64::new(0),
            scanning: tokio::sync::Mutex::new(()),
        }
    }

    /// The current index (a snapshot; cheap).
    pub fn snapshot(&self) -> Arc<SkillIndex> {
        match self.index.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Notes the grants a service of `skill` starts with; returns how they
    /// differ from the last start's (none at the first start).
    pub fn note_start(&self, skill: &str, grants: Grants) -> Option<serde_json::Value> {
        let mut started = self.started.lock().ok()?;
        let diff = started
            .get(skill)
            .and_then(|before| grants_diff(before, &grants));
        started.insert(skill.to_string(), grants);
        diff
    }

    /// The roots, in priority order.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Re-scans the roots (parsing only the `SKILL.md` files that changed)
    /// and swaps the index in; returns the new snapshot. Blocking: call it
    /// off the async workers ([`SkillRegistry::refresh_async`]).
    pub fn refresh(&self) -> Arc<SkillIndex> {
        let fresh = match self.cache.lock() {
            Ok(mut cache) => scan_roots_cached(&self.roots, self.builtin.as_deref(), &mut cache),
            Err(poisoned) => scan_roots_cached(
                &self.roots,
                self.builtin.as_deref(),
                &mut poisoned.into_inner(),
            ),
        };
        let fresh = Arc::new(fresh);
        match self.index.write() {
            Ok(mut g) => *g = fresh.clone(),
            Err(poisoned) => *poisoned.into_inner() = fresh.clone(),
        }
        fresh
    }

    /// [`SkillRegistry::refresh`] on a blocking thread, so no request
    /// waits behind a scan; one scan at a time, and a caller that waited for
    /// a scan that began after it asked takes that one's result (a flood of
    /// `skill.start` for unknown names costs one scan at a time, not one each).
    pub async fn refresh_async(self: &Arc<Self>) -> Arc<SkillIndex> {
        use std::sync::atomic::Ordering;
        let asked = self.scans.load(Ordering::SeqCst);
        let _one = self.scanning.lock().await;
        if self.scans.load(Ordering::SeqCst) > asked + 1 {
            return self.snapshot();
        }
        let me = self.clone();
        let index = match tokio::task::spawn_blocking(move || me.refresh()).await {
            Ok(index) => index,
            Err(_) => self.snapshot(),
        };
        self.scans.fetch_add(1, Ordering::SeqCst);
        index
    }

    /// Watches the roots; calls `on_change` (debounced) after a `SKILL.md`
    /// or anything else under a root is created, changed or removed. The
    /// returned watcher must be kept alive.
    pub fn watch(
        self: &Arc<Self>,
        on_change: impl Fn() + Send + Sync + 'static,
    ) -> notify::Result<notify::RecommendedWatcher> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let roots = self.roots.clone();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                // Reading SKILL.md (our own scan) raises access events, and
                // a build inside a skill (`target/`), a repository (`.git/`)
                // or packages (`node_modules/`) change nothing we index:
                // ignore them.
                if res.is_ok_and(|e| {
                    !matches!(e.kind, notify::EventKind::Access(_))
                        && (e.paths.is_empty() || !e.paths.iter().all(|p| ignored(&roots, p)))
                }) {
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

/// Directories under a skill root whose changes never concern the index.
const IGNORED_DIRS: &[&str] = &["target", ".git", "node_modules"];

/// Whether `path` lies in an ignored directory below its skill root (a
/// build's output, a repository, packages): such changes do not re-index.
fn ignored(roots: &[PathBuf], path: &std::path::Path) -> bool {
    let Some(below) = roots.iter().find_map(|r| path.strip_prefix(r).ok()) else {
        return false;
    };
    below.components().any(|c| {
        c.as_os_str()
            .to_str()
            .is_some_and(|s| IGNORED_DIRS.contains(&s))
    })
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

    #[test]
    fn changes_in_a_build_a_repository_or_packages_are_ignored() {
        let roots = vec![PathBuf::from("/r/target/skills")];
        let under = |p: &str| ignored(&roots, std::path::Path::new(p));
        assert!(under("/r/target/skills/notes/target/release/x.wasm"));
        assert!(under("/r/target/skills/notes/.git/index"));
        assert!(under("/r/target/skills/ui/node_modules/a/b.js"));
        assert!(
            !under("/r/target/skills/notes/SKILL.md"),
            "a root under target/ is still watched"
        );
        assert!(!under("/r/target/skills/notes/service.wasm"));
        assert!(!under("/elsewhere/target/x"), "outside every root");
    }

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
