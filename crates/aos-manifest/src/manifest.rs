//! The typed `SKILL.md` manifest and its parser.

use crate::ManifestError;
use aos_types::{hook_point, is_syscall_group, syscall_info};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Component, Path};

/// A parsed, validated `SKILL.md`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkillManifest {
    /// Skill name (equals the directory name).
    pub name: String,
    /// What the skill does and when to use it.
    pub description: String,
    /// Agent Skills `license`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<Value>,
    /// Agent Skills `allowed-tools`.
    #[serde(rename = "allowed-tools", skip_serializing_if = "Option::is_none")]
    pub allowed_tools: Option<Value>,
    /// Agent Skills `metadata`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Agent Skills `compatibility`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compatibility: Option<Value>,
    /// The service face, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSpec>,
    /// What the service may do.
    pub capabilities: Capabilities,
    /// Whether the frontmatter has a `capabilities:` block at all (a legacy
    /// service without one runs as in the original project).
    #[serde(skip)]
    pub capabilities_declared: bool,
    /// Unknown frontmatter fields, kept as they were.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
    /// Warnings (unknown fields, …); never fatal.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The context face: the text after the frontmatter.
    #[serde(skip)]
    pub body: String,
}

/// How a service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    /// A WebAssembly component in wasmtime.
    Wasm,
    /// A subprocess behind the UDS shim.
    Legacy,
}

/// `service:` — a path inside the skill directory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceSpec {
    /// As written, relative to the skill directory.
    pub path: String,
    /// WASM or legacy.
    pub kind: ServiceKind,
}

/// `capabilities:` — deny by default; only what is listed is granted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Capabilities {
    /// Hook points the service may register.
    #[serde(default)]
    pub hooks: Vec<String>,
    /// Syscalls (or groups such as `session.read`) the service may call.
    #[serde(default)]
    pub syscalls: Vec<String>,
    /// Host directories preopened into the guest.
    #[serde(default)]
    pub fs: Vec<FsGrant>,
    /// Outbound `host:port` (TCP) or `udp://host:port` the service may reach.
    #[serde(default)]
    pub net: Vec<String>,
    /// Environment variables passed through.
    #[serde(default)]
    pub env: Vec<String>,
    /// The key-value store of the skill's instances for one owner
    /// (`kv.get`, `kv.put`, `kv.delete`, `kv.list`), kept in the kernel's
    /// store: shared by the instances on every node and across restarts.
    #[serde(default)]
    pub kv: bool,
    /// Resource limits.
    #[serde(default)]
    pub limits: Limits,
}

/// One preopened directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsGrant {
    /// Host path, starting with `$SKILL_DIR` (read-only) or `$SKILL_DATA`
    /// (the skill's data directory for the instance's owner).
    pub host: String,
    /// Absolute path seen by the guest.
    pub guest: String,
    /// Read-only or read-write.
    pub mode: FsMode,
}

/// Access mode of a preopen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsMode {
    /// Read-only.
    Ro,
    /// Read-write.
    Rw,
}

/// Resource limits of a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// Linear memory cap, MiB.
    #[serde(default)]
    pub memory_mb: Option<u64>,
    /// Per-call deadline, ms.
    #[serde(default)]
    pub hook_timeout_ms: Option<u64>,
    /// Fuel per call; none means unmetered.
    #[serde(default)]
    pub fuel: Option<u64>,
    /// What happens when a legacy service's process exits unasked.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Restarts allowed in a row under `restart: on-failure` (default 3).
    #[serde(default)]
    pub max_restarts: Option<u32>,
}

/// `limits.restart`: whether a crashed legacy service is started again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Stay in `error` (the default).
    #[default]
    Never,
    /// Start a new instance for the same owner and config, with backoff.
    OnFailure,
}

/// Parses `SKILL.md` text of the skill in `dir` (the directory is used to
/// check the name and the service path).
pub fn parse_skill_md(text: &str, dir: &Path) -> Result<SkillManifest, ManifestError> {
    let (front, body) = split_frontmatter(text)?;
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(front).map_err(|e| ManifestError::BadYaml(e.to_string()))?;
    let Value::Object(mut fields) =
        serde_json::to_value(yaml).map_err(|e| ManifestError::BadYaml(e.to_string()))?
    else {
        return Err(ManifestError::BadYaml(
            "the frontmatter must be a mapping of `field: value` lines".into(),
        ));
    };
    let name = take_string(&mut fields, "name")?;
    check_name(&name)?;
    let dir_name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if name != dir_name {
        return Err(ManifestError::NameMismatch {
            name,
            dir: dir_name.to_string(),
        });
    }
    let description = take_string(&mut fields, "description")?;
    let service = match fields.remove("service") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(check_service(&p, dir)?),
        Some(_) => return Err(bad("service", "must be a path like ./service.wasm")),
    };
    let (capabilities, capabilities_declared) = match fields.remove("capabilities") {
        None | Some(Value::Null) => (Capabilities::default(), false),
        Some(v) => (
            serde_json::from_value(v).map_err(|e| bad("capabilities", e.to_string()))?,
            true,
        ),
    };
    check_capabilities(&capabilities)?;
    let mut warnings = Vec::new();
    let mut m = SkillManifest {
        name,
        description,
        license: None,
        allowed_tools: None,
        metadata: None,
        compatibility: None,
        service,
        capabilities,
        capabilities_declared,
        extra: Map::new(),
        warnings: Vec::new(),
        body: body.trim_start_matches(['\r', '\n']).to_string(),
    };
    for (k, v) in fields {
        match k.as_str() {
            "license" => m.license = Some(v),
            "allowed-tools" => m.allowed_tools = Some(v),
            "metadata" => m.metadata = Some(v),
            "compatibility" => m.compatibility = Some(v),
            _ => {
                warnings.push(format!("unknown frontmatter field `{k}` kept but not used"));
                m.extra.insert(k, v);
            }
        }
    }
    m.warnings = warnings;
    Ok(m)
}

fn bad(field: impl Into<String>, reason: impl Into<String>) -> ManifestError {
    ManifestError::BadField {
        field: field.into(),
        reason: reason.into(),
    }
}

fn split_frontmatter(text: &str) -> Result<(&str, &str), ManifestError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
        .ok_or(ManifestError::NoFrontmatter)?;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Ok((&rest[..offset], &rest[offset + line.len()..]));
        }
        offset += line.len();
    }
    Err(ManifestError::NoFrontmatter)
}

fn take_string(
    fields: &mut Map<String, Value>,
    key: &'static str,
) -> Result<String, ManifestError> {
    match fields.remove(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(ManifestError::Missing(key)),
        Some(_) => Err(bad(key, "must be a string")),
    }
}

fn check_name(name: &str) -> Result<(), ManifestError> {
    let ok = name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(bad(
            "name",
            format!("{name:?} must be 1-64 lowercase letters, digits and inner hyphens"),
        ))
    }
}

/// A relative path that stays inside its base: no root, no `..`.
pub(crate) fn is_contained(p: &Path) -> bool {
    p.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

fn check_service(path: &str, dir: &Path) -> Result<ServiceSpec, ManifestError> {
    let rel = Path::new(path);
    if !is_contained(rel) {
        return Err(bad(
            "service",
            format!("{path:?} must be a path inside the skill directory (no `/…` or `..`)"),
        ));
    }
    let full = dir.join(rel);
    let inside = match (full.canonicalize(), dir.canonicalize()) {
        (Ok(f), Ok(d)) => f.starts_with(d),
        _ => return Err(ManifestError::ServiceMissing(path.to_string())),
    };
    if !inside {
        return Err(bad(
            "service",
            format!("{path:?} resolves (through a symlink) outside the skill directory"),
        ));
    }
    let kind = if path.ends_with(".wasm") {
        ServiceKind::Wasm
    } else {
        ServiceKind::Legacy
    };
    Ok(ServiceSpec {
        path: path.to_string(),
        kind,
    })
}

/// The protocol of a `capabilities.net` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetProtocol {
    /// `host:port` or `tcp://host:port`: connects.
    Tcp,
    /// `udp://host:port`: datagrams.
    Udp,
}

/// A `capabilities.net` entry read: its protocol and `host:port`.
pub fn net_entry(entry: &str) -> Option<(NetProtocol, &str)> {
    let (proto, rest) = match entry.split_once("://") {
        Some(("tcp", r)) => (NetProtocol::Tcp, r),
        Some(("udp", r)) => (NetProtocol::Udp, r),
        Some(_) => return None,
        None => (NetProtocol::Tcp, entry),
    };
    let ok = rest
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && !h.contains('/') && p.parse::<u16>().is_ok());
    ok.then_some((proto, rest))
}

/// The roots an fs grant may start from. `$AOS_HOME` is the daemon's own
/// (token, store, compiled-code cache): no grant may name it.
pub const FS_ROOTS: [&str; 2] = ["$SKILL_DIR", "$SKILL_DATA"];

/// A grant's host path: under `$SKILL_DIR` (read-only, always) or
/// `$SKILL_DATA`, without `..`.
fn check_fs_host(i: usize, g: &FsGrant) -> Result<(), ManifestError> {
    let field = format!("capabilities.fs[{i}].host");
    let root = FS_ROOTS.iter().find(|r| {
        g.host == **r
            || g.host
                .strip_prefix(**r)
                .is_some_and(|rest| rest.starts_with('/'))
    });
    let rest = g.host.split_once('/').map_or("", |(_, r)| r);
    if g.host.starts_with("$AOS_HOME") {
        return Err(bad(
            field,
            format!(
                "{:?}: $AOS_HOME is the daemon's own (token, store, compiled code) and no grant may name it; \
                 keep a service's state under $SKILL_DATA, a directory per skill and owner",
                g.host
            ),
        ));
    }
    if root.is_none() || !is_contained(Path::new(rest)) {
        return Err(bad(
            field,
            format!(
                "{:?} must start with $SKILL_DIR or $SKILL_DATA and contain no `..`",
                g.host
            ),
        ));
    }
    if root == Some(&"$SKILL_DIR") && g.mode == FsMode::Rw {
        return Err(bad(
            format!("capabilities.fs[{i}].mode"),
            format!(
                "{:?} is the skill's own directory, read-only to its service (it could rewrite its SKILL.md); \
                 grant rw on $SKILL_DATA instead",
                g.host
            ),
        ));
    }
    Ok(())
}

fn check_capabilities(c: &Capabilities) -> Result<(), ManifestError> {
    for (i, h) in c.hooks.iter().enumerate() {
        if hook_point(h).is_none() {
            return Err(bad(
                format!("capabilities.hooks[{i}]"),
                format!("{h:?} is not a hook point; see docs/hooks.md for the 46 names"),
            ));
        }
    }
    for (i, s) in c.syscalls.iter().enumerate() {
        if syscall_info(s).is_none() && !is_syscall_group(s) {
            return Err(bad(
                format!("capabilities.syscalls[{i}]"),
                format!(
                    "{s:?} is neither a syscall nor a group (session.read, session.write, content.read, content.write, agent.read, skill.read, …)"
                ),
            ));
        }
    }
    for (i, g) in c.fs.iter().enumerate() {
        check_fs_host(i, g)?;
        if !g.guest.starts_with('/') || !is_contained(Path::new(&g.guest[1..])) {
            return Err(bad(
                format!("capabilities.fs[{i}].guest"),
                format!("{:?} must be an absolute guest path without `..`", g.guest),
            ));
        }
    }
    for (i, n) in c.net.iter().enumerate() {
        if net_entry(n).is_none() {
            return Err(bad(
                format!("capabilities.net[{i}]"),
                format!(
                    "{n:?} must be host:port for TCP (\"api.example.com:443\"), or udp://host:port for UDP"
                ),
            ));
        }
    }
    Ok(())
}
