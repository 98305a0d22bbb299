//! Scanning skill roots: every first-level directory holding a `SKILL.md`.

use crate::{ManifestError, SkillManifest, parse_skill_md};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// Scans each root in order. A name found in an earlier root wins; later copies
/// are reported as duplicates. Unreadable roots are skipped with a warning.
pub fn scan_roots(roots: &[PathBuf]) -> SkillIndex {
    let mut index = SkillIndex::default();
    let mut found: Vec<IndexedSkill> = Vec::new();
    for root in roots {
        let Ok(read) = std::fs::read_dir(root) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = read
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir() && p.join("SKILL.md").is_file())
            .collect();
        dirs.sort();
        for dir in dirs {
            let entry = index_one(&dir);
            if let Some(first) = found
                .iter()
                .find(|e| e.name == entry.name && e.manifest.is_some())
            {
                found.push(IndexedSkill {
                    error: Some(
                        ManifestError::Duplicate {
                            name: entry.name.clone(),
                            first: first.dir.display().to_string(),
                        }
                        .to_string(),
                    ),
                    manifest: None,
                    ..entry
                });
                continue;
            }
            found.push(entry);
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    for (i, e) in found.iter().enumerate() {
        if e.manifest.is_some() {
            index.by_name.insert(e.name.clone(), i);
        }
    }
    index.entries = found;
    index
}

fn index_one(dir: &Path) -> IndexedSkill {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parsed = std::fs::read(dir.join("SKILL.md"))
        .map_err(|e| ManifestError::Io(e.to_string()))
        .and_then(|bytes| {
            String::from_utf8(bytes)
                .map_err(|_| ManifestError::Io("SKILL.md is not valid UTF-8".into()))
        })
        .and_then(|text| parse_skill_md(&text, &dir));
    match parsed {
        Ok(m) => IndexedSkill {
            name,
            dir,
            manifest: Some(m),
            error: None,
        },
        Err(e) => IndexedSkill {
            name,
            dir,
            manifest: None,
            error: Some(e.to_string()),
        },
    }
}
