//! Scanning skill roots: every first-level directory holding a `SKILL.md`.

use crate::{ManifestError, SkillManifest, parse_skill_md};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One directory found under a skill root, usable or not.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexedSkill {
    /// Directory name (the skill's name when valid).
    pub name: String,
    /// Absolute directory.
    pub dir: PathBuf,
    /// The manifest, when valid.
    #[serde(skip)]
    pub manifest: Option<SkillManifest>,
    /// Why it is unusable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The result of a scan: valid skills by name plus every entry for reports.
#[derive(Debug, Clone, Default)]
pub struct SkillIndex {
    /// All entries in name order, valid or not.
    pub entries: Vec<IndexedSkill>,
    by_name: BTreeMap<String, usize>,
}

impl SkillIndex {
    /// A valid skill by name.
    pub fn get(&self, name: &str) -> Option<&SkillManifest> {
        self.by_name
            .get(name)
            .and_then(|i| self.entries[*i].manifest.as_ref())
    }

    /// The entry (valid or not) for a name.
    pub fn entry(&self, name: &str) -> Option<&IndexedSkill> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Number of valid skills.
    pub fn valid_count(&self) -> usize {
        self.by_name.len()
    }

    /// Valid skills in name order.
    pub fn valid(&self) -> impl Iterator<Item = &SkillManifest> {
        self.entries.iter().filter_map(|e| e.manifest.as_ref())
    }
}

/// What a scan remembers between runs: each skill directory as last read,
/// with the stamp it was read at, so a re-index parses only what changed.
#[derive(Debug, Default)]
pub struct ScanCache {
    entries: HashMap<PathBuf, (Stamp, IndexedSkill)>,
    /// `SKILL.md` files parsed by the last scan (the rest came from here).
    pub parsed: usize,
}

/// When a skill directory was last read: its `SKILL.md`'s and its own
/// modification times and sizes, and where it resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    md: Option<(SystemTime, u64, u64)>,
    dir: Option<SystemTime>,
    target: PathBuf,
}

fn stamp(entry: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(entry.join("SKILL.md"))
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len(), m.ino())));
    Stamp {
        md,
        dir: std::fs::metadata(entry).and_then(|m| m.modified()).ok(),
        target: entry.canonicalize().unwrap_or_default(),
    }
}

/// Scans each root in order. A name found in an earlier root wins; later copies
/// are reported as duplicates. Unreadable roots are skipped with a warning.
pub fn scan_roots(roots: &[PathBuf]) -> SkillIndex {
    scan_roots_cached(roots, None, &mut ScanCache::default())
}

/// [`scan_roots`], reading again only the skill directories whose stamp
/// changed since `cache` last saw them. The names of the skills in
/// `builtin` (one of the roots: the built-in skills) are reserved: a skill
/// of such a name in any other root is refused, whatever the roots' order.
pub fn scan_roots_cached(
    roots: &[PathBuf],
    builtin: Option<&Path>,
    cache: &mut ScanCache,
) -> SkillIndex {
    let mut seen: HashMap<PathBuf, (Stamp, IndexedSkill)> = HashMap::new();
    cache.parsed = 0;
    // The built-in root first: its names are taken before any other root's.
    let builtin = builtin.and_then(|b| roots.iter().find(|r| r.as_path() == b));
    let ordered = builtin
        .into_iter()
        .chain(roots.iter().filter(|r| Some(*r) != builtin));
    let builtin_dir = builtin.map(|b| b.canonicalize().unwrap_or_else(|_| b.clone()));
    let mut found: Vec<IndexedSkill> = Vec::new();
    for root in ordered {
        let reserved = builtin.is_some() && Some(root) != builtin;
        for dir in skill_dirs(root) {
            let now = stamp(&dir);
            let canonical_root = root.canonicalize().unwrap_or_else(|_| root.clone());
            let entry = match cache.entries.remove(&dir) {
                Some((then, entry)) if then == now => entry,
                _ => {
                    cache.parsed += 1;
                    index_one(&dir, &canonical_root)
                }
            };
            seen.insert(dir.clone(), (now, entry.clone()));
            let first = found
                .iter()
                .find(|e| e.name == entry.name && e.manifest.is_some());
            let Some(first) = first else {
                found.push(entry);
                continue;
            };
            let (name, first, this) = (
                entry.name.clone(),
                first.dir.display().to_string(),
                entry.dir.display().to_string(),
            );
            let is_builtin = builtin_dir
                .as_deref()
                .is_some_and(|b| Path::new(&first).starts_with(b));
            let error = if reserved && is_builtin {
                ManifestError::Reserved { name, first, this }
            } else {
                ManifestError::Duplicate { name, first, this }
            };
            found.push(IndexedSkill {
                error: Some(error.to_string()),
                manifest: None,
                ..entry
            });
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    let mut index = SkillIndex::default();
    for (i, e) in found.iter().enumerate() {
        if e.manifest.is_some() {
            index.by_name.insert(e.name.clone(), i);
        }
    }
    index.entries = found;
    cache.entries = seen;
    index
}

/// The first-level directories of `root` holding a `SKILL.md`, sorted.
fn skill_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.join("SKILL.md").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// Largest `SKILL.md` indexed, in bytes.
pub const MAX_SKILL_MD_BYTES: u64 = 1 << 20;

/// Reads and parses one skill directory. Its name is the entry's own name
/// in the root (a symlink does not take its target's name), and a directory
/// that resolves outside `root` is refused.
fn index_one(entry: &Path, root: &Path) -> IndexedSkill {
    let name = entry
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = entry.canonicalize().unwrap_or_else(|_| entry.to_path_buf());
    let failed = |dir: PathBuf, e: ManifestError| IndexedSkill {
        name: name.clone(),
        dir,
        manifest: None,
        error: Some(e.to_string()),
    };
    if !dir.starts_with(root) {
        let e = ManifestError::OutsideRoot {
            dir: entry.display().to_string(),
            target: dir.display().to_string(),
            root: root.display().to_string(),
        };
        return failed(entry.to_path_buf(), e);
    }
    let md = dir.join("SKILL.md");
    match std::fs::metadata(&md) {
        Ok(m) if m.len() > MAX_SKILL_MD_BYTES => {
            let e = ManifestError::TooLarge {
                size: m.len(),
                max: MAX_SKILL_MD_BYTES,
            };
            return failed(dir, e);
        }
        _ => {}
    }
    let parsed = std::fs::File::open(&md)
        .and_then(|f| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(
                &mut std::io::Read::take(f, MAX_SKILL_MD_BYTES + 1),
                &mut bytes,
            )?;
            Ok(bytes)
        })
        .map_err(|e| ManifestError::Io(e.to_string()))
        .and_then(|bytes| {
            if bytes.len() as u64 > MAX_SKILL_MD_BYTES {
                return Err(ManifestError::TooLarge {
                    size: bytes.len() as u64,
                    max: MAX_SKILL_MD_BYTES,
                });
            }
            String::from_utf8(bytes)
                .map_err(|_| ManifestError::Io("SKILL.md is not valid UTF-8".into()))
        })
        .and_then(|text| parse_skill_md(&text, &dir));
    match parsed {
        Ok(m) if m.name != name => failed(
            dir,
            ManifestError::NameMismatch {
                name: m.name,
                dir: name.clone(),
            },
        ),
        Ok(m) => IndexedSkill {
            name,
            dir,
            manifest: Some(m),
            error: None,
        },
        Err(e) => failed(dir, e),
    }
}
