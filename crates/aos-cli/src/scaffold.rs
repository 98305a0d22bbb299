//! `aos skill new NAME --template T`: a new skill directory from one of
//! `skill-templates/`, renamed, depending on the Rust SDK by path: the SDK
//! this binary was built with (its sources and WIT, every version of which
//! it ships) is installed once per version under `$AOS_HOME/sdk/`, and every
//! new skill points at it — no copy of the SDK in the skill. The skill
//! builds with `./build.sh` (or `cargo component build --release`).

use crate::exit::Usage;
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::Path;

/// (template, Cargo.toml, SKILL.md, src/lib.rs).
const TEMPLATES: &[(&str, &str, &str, &str)] = &[
    (
        "guard",
        include_str!("../../../skill-templates/guard/Cargo.toml"),
        include_str!("../../../skill-templates/guard/SKILL.md"),
        include_str!("../../../skill-templates/guard/src/lib.rs"),
    ),
    (
        "context-engine",
        include_str!("../../../skill-templates/context-engine/Cargo.toml"),
        include_str!("../../../skill-templates/context-engine/SKILL.md"),
        include_str!("../../../skill-templates/context-engine/src/lib.rs"),
    ),
    (
        "command",
        include_str!("../../../skill-templates/command/Cargo.toml"),
        include_str!("../../../skill-templates/command/SKILL.md"),
        include_str!("../../../skill-templates/command/src/lib.rs"),
    ),
];

const BUILD_SH: &str = include_str!("../../../skill-templates/guard/build.sh");
const GITIGNORE: &str = include_str!("../../../skill-templates/guard/.gitignore");
const SDK_FILES: &[(&str, &str)] = &[
    ("src/lib.rs", include_str!("../../aos-sdk/src/lib.rs")),
    (
        "src/adapter.rs",
        include_str!("../../aos-sdk/src/adapter.rs"),
    ),
    ("src/log.rs", include_str!("../../aos-sdk/src/log.rs")),
    ("src/input.rs", include_str!("../../aos-sdk/src/input.rs")),
    ("src/ops.rs", include_str!("../../aos-sdk/src/ops.rs")),
    (
        "wit/since_v0.2/kernel.wit",
        include_str!("../../aos-sdk/wit/since_v0.2/kernel.wit"),
    ),
    (
        "wit/since_v0.2/payloads.rs",
        include_str!("../../aos-sdk/wit/since_v0.2/payloads.rs"),
    ),
];

fn sdk_manifest() -> String {
    format!(
        "[package]\nname = \"aos-sdk\"\nversion = \"{}\"\nedition = \"2024\"\npublish = false\ndescription = \"AgentOS skill SDK (installed by `aos skill new`)\"\n\n[dependencies]\nserde = {{ version = \"1\", features = [\"derive\"] }}\nserde_json = \"1\"\nwit-bindgen = {{ version = \"0.63\", default-features = false, features = [\"macros\", \"realloc\"] }}\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// The SDK of this binary at `$AOS_HOME/sdk/aos-sdk-VERSION/`, written
/// once (a file already there with the same bytes is left alone): its path.
fn install_sdk(home: &Path) -> Result<std::path::PathBuf> {
    let sdk = home
        .join("sdk")
        .join(format!("aos-sdk-{}", env!("CARGO_PKG_VERSION")));
    let mut files = vec![("Cargo.toml", sdk_manifest())];
    files.extend(SDK_FILES.iter().map(|(rel, text)| (*rel, text.to_string())));
    for (rel, text) in files {
        let path = sdk.join(rel);
        if std::fs::read(&path).is_ok_and(|old| old == text.as_bytes()) {
            continue;
        }
        write(&sdk, rel, &text)?;
    }
    Ok(sdk)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn write(dir: &Path, rel: &str, text: &str) -> Result<()> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Creates `./NAME` from template `template`.
pub fn new_skill(name: &str, template: &str) -> Result<Value> {
    if !valid_name(name) {
        return Err(Usage(format!(
            "skill name {name:?} must be 1-64 lowercase letters, digits and inner hyphens"
        ))
        .into());
    }
    let Some((t, cargo, skill_md, lib)) = TEMPLATES.iter().find(|(t, ..)| *t == template) else {
        let names: Vec<&str> = TEMPLATES.iter().map(|(t, ..)| *t).collect();
        return Err(Usage(format!(
            "unknown template {template:?}; choose one of {}",
            names.join(", ")
        ))
        .into());
    };
    let dir = std::path::absolute(name)?;
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let sdk = install_sdk(&crate::config::default_home())?;
    let crate_file = name.replace('-', "_");
    let cargo = cargo
        .replace(&format!("name = \"{t}\""), &format!("name = \"{name}\""))
        .replace(
            &format!("package = \"aos:{t}\""),
            &format!("package = \"aos:{name}\""),
        )
        .replace(
            "path = \"../../crates/aos-sdk\"",
            &format!("path = {:?}", sdk.display().to_string()),
        );
    let skill_md = skill_md
        .replace(&format!("name: {t}\n"), &format!("name: {name}\n"))
        .replace(
            &format!("aos skill run {t} "),
            &format!("aos skill run {name} "),
        );
    let build = BUILD_SH.replace("release/guard.wasm", &format!("release/{crate_file}.wasm"));
    write(&dir, "Cargo.toml", &cargo)?;
    write(&dir, "SKILL.md", &skill_md)?;
    write(&dir, "src/lib.rs", lib)?;
    write(&dir, "build.sh", &build)?;
    write(&dir, ".gitignore", GITIGNORE)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("build.sh"), std::fs::Permissions::from_mode(0o755))?;
    Ok(json!({ "ok": true, "op": "skill.new", "data": {
        "name": name, "template": t, "dir": dir, "sdk": sdk,
        "next": format!("cd {name} && ./build.sh, then put the directory in a skill root (or --skills) and `aos skill start {name}`"),
    }}))
}
