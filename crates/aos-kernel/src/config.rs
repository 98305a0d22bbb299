//! Kernel configuration and the repo's `aoscb.json` defaults.

use aos_types::{Aoscb, SCHEMA_VERSION, SkillDefaultRule, now};
use serde::Deserialize;
use std::path::PathBuf;

/// The initial AOSCB values, as written in `aoscb.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AoscbDefaults {
    /// Default-skill rules of the system level.
    #[serde(default)]
    pub default_skills: Vec<SkillDefaultRule>,
    /// Default model id.
    pub model: String,
    /// Fold threshold in characters.
    #[serde(default = "default_fold")]
    pub auto_fold_threshold: i64,
    /// Compaction threshold in tokens.
    #[serde(default = "default_compaction")]
    pub compaction_threshold: i64,
    /// Turn cap per dispatch.
    #[serde(default = "default_turns")]
    pub max_turns: i64,
    /// `"on"` (default) confines the agent's bash; `"off"` is the operator's
    /// explicit opt-out (also `AOS_BASH_SANDBOX=off`).
    #[serde(default)]
    pub bash_sandbox: Option<String>,
    /// `"compat"` (default): a legacy service whose SKILL.md has no
    /// `capabilities:` block runs as in the original project (its hooks
    /// granted, its syscalls its owner's scope), with a warning; `"strict"`
    /// refuses it.
    #[serde(default)]
    pub legacy_services: Option<String>,
}

fn default_fold() -> i64 {
    16_384
}
fn default_compaction() -> i64 {
    120_000
}
fn default_turns() -> i64 {
    50
}

impl Default for AoscbDefaults {
    fn default() -> Self {
        AoscbDefaults {
            default_skills: Vec::new(),
            model: "openai/gpt-4o-mini".into(),
            auto_fold_threshold: default_fold(),
            compaction_threshold: default_compaction(),
            max_turns: default_turns(),
            bash_sandbox: None,
            legacy_services: None,
        }
    }
}

impl AoscbDefaults {
    /// Parses `aoscb.json` text.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let d: AoscbDefaults = serde_json::from_str(text).map_err(|e| e.to_string())?;
        d.sandbox_enabled()?;
        d.legacy_strict()?;
        Ok(d)
    }

    /// Whether `legacyServices` is `"strict"`.
    pub fn legacy_strict(&self) -> Result<bool, String> {
        match self.legacy_services.as_deref() {
            None | Some("compat") => Ok(false),
            Some("strict") => Ok(true),
            Some(other) => Err(format!(
                "legacyServices is \"compat\" or \"strict\", not {other:?}"
            )),
        }
    }

    /// Whether `bashSandbox` leaves the sandbox on.
    pub fn sandbox_enabled(&self) -> Result<bool, String> {
        parse_switch("bashSandbox", self.bash_sandbox.as_deref())
    }

    /// The first AOSCB of a new store.
    pub fn to_aoscb(&self, name: &str, skill_root: &str) -> Aoscb {
        let t = now();
        Aoscb {
            schema_version: SCHEMA_VERSION.into(),
            name: name.into(),
            skill_root: skill_root.into(),
            revision: 1,
            created_at: t.clone(),
            updated_at: t,
            default_skills: self.default_skills.clone(),
            model: self.model.clone(),
            auto_fold_threshold: self.auto_fold_threshold,
            compaction_threshold: self.compaction_threshold,
            max_turns: self.max_turns,
        }
    }
}

/// Reads an on/off switch: absent or `on` is on, `off` is off.
pub fn parse_switch(name: &str, v: Option<&str>) -> Result<bool, String> {
    match v {
        None | Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(other) => Err(format!("{name} must be \"on\" or \"off\", not {other:?}")),
    }
}

/// Everything the kernel needs to start.
#[derive(Debug, Clone)]
pub struct KernelConfig {
    /// `$AOS_HOME`.
    pub home: PathBuf,
    /// Skill roots, in priority order.
    pub skill_roots: Vec<PathBuf>,
    /// The root (one of `skill_roots`) holding the built-in skills, whose
    /// names no other root may take.
    pub builtin_skills: Option<PathBuf>,
    /// This daemon's name (lease holder, logs).
    pub node_id: String,
    /// System name written to the AOSCB.
    pub system_name: String,
    /// Initial AOSCB values.
    pub defaults: AoscbDefaults,
    /// Session lease TTL.
    pub lease_ttl_ms: u64,
    /// Watch the skill roots and re-index on change.
    pub watch_skills: bool,
    /// The directory holding the `aos` binary, put first on bash's `PATH`.
    pub bin_dir: Option<PathBuf>,
    /// How the agent's bash is confined.
    pub bash_sandbox: BashSandbox,
}

impl KernelConfig {
    /// A configuration for an embedded kernel (benchmarks, tests, tools):
    /// `home` and `skill_roots` as given, the default AOSCB, a 60 s lease,
    /// no skill watcher. Change fields with
    /// `KernelConfig { watch_skills: true, ..KernelConfig::embedded(home, roots) }`.
    pub fn embedded(home: PathBuf, skill_roots: Vec<PathBuf>) -> KernelConfig {
        KernelConfig {
            home,
            skill_roots,
            builtin_skills: None,
            node_id: "embedded".into(),
            system_name: "aos".into(),
            defaults: AoscbDefaults::default(),
            lease_ttl_ms: 60_000,
            watch_skills: false,
            bin_dir: None,
            bash_sandbox: BashSandbox::default(),
        }
    }

    /// The skill roots joined with `:` as stored in the AOSCB.
    pub fn skill_root_string(&self) -> String {
        self.skill_roots
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// How the agent's bash is confined (daemon configuration).
#[derive(Debug, Clone)]
pub struct BashSandbox {
    /// Confine every command (default). `false` is the operator's explicit
    /// opt-out (`bashSandbox: "off"`, `AOS_BASH_SANDBOX=off`).
    pub enabled: bool,
    /// Directories commands may read and run.
    pub system_paths: Vec<PathBuf>,
    /// Run commands as this uid and gid instead of the daemon's user.
    pub run_as: Option<(u32, u32)>,
}

impl Default for BashSandbox {
    fn default() -> Self {
        BashSandbox {
            enabled: true,
            system_paths: aos_sandbox::DEFAULT_SYSTEM_PATHS
                .iter()
                .map(PathBuf::from)
                .collect(),
            run_as: None,
        }
    }
}
