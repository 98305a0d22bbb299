//! The built-in skills inside the binary: their `SKILL.md` texts, compiled
//! components and web assets, written once per version under
//! `$AOS_HOME/builtin-skills/` and verified against the binary's bytes on
//! every start — so `aos daemon start` works from any directory. A skill
//! root that holds the built-ins itself (the repository's `skills/`, for
//! their authors) is used instead.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

macro_rules! files {
    ($($p:literal),* $(,)?) => {
        &[$(($p, include_bytes!(concat!("../../../skills/", $p)) as &[u8])),*]
    };
}

/// Every file of the built-in skills, by path under the root.
pub const FILES: &[(&str, &[u8])] = files![
    "aos/SKILL.md",
    "aos-context/SKILL.md",
    "aos-context/service.wasm",
    "aos-skill/SKILL.md",
    "aos-skill/service.wasm",
    "aos-a2a/SKILL.md",
    "aos-a2a/service.wasm",
    "aos-frontend/SKILL.md",
    "aos-frontend/web/css/app.css",
    "aos-frontend/web/index.html",
    "aos-frontend/web/js/api.js",
    "aos-frontend/web/js/dom.js",
    "aos-frontend/web/js/main.js",
    "aos-frontend/web/js/markdown.js",
    "aos-frontend/web/js/views/context.js",
    "aos-frontend/web/js/views/log.js",
    "aos-frontend/web/js/views/message.js",
    "aos-frontend/web/js/views/session.js",
    "aos-frontend/web/js/views/sessions.js",
    "aos-frontend/web/js/views/skills.js",
    "aos-frontend/web/js/views/system.js",
    "my-guard/SKILL.md",
    "my-guard/service.wasm",
];

/// Marks a root whose every file was written and checked.
const COMPLETE: &str = ".complete";

/// The digest of every file and its path: the root's name, so another
/// binary's built-ins never mix with these.
fn digest() -> String {
    let mut h = Sha256::new();
    for (path, bytes) in FILES {
        h.update(path.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `root` holds exactly the binary's files.
fn intact(root: &Path) -> bool {
    root.join(COMPLETE).is_file()
        && FILES
            .iter()
            .all(|(p, bytes)| std::fs::read(root.join(p)).is_ok_and(|b| b == *bytes))
}

/// The root of the built-in skills under `home`, written now if missing or
/// not intact (a file changed on disk is written again).
pub fn root(home: &Path) -> Result<PathBuf> {
    let base = home.join("builtin-skills");
    let root = base.join(format!("{}-{}", env!("CARGO_PKG_VERSION"), digest()));
    if intact(&root) {
        return Ok(root);
    }
    let tmp = base.join(format!(".writing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    for (path, bytes) in FILES {
        let file = tmp.join(path);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&file, bytes).with_context(|| format!("cannot write {}", file.display()))?;
    }
    std::fs::write(tmp.join(COMPLETE), "")?;
    let _ = std::fs::remove_dir_all(&root);
    std::fs::rename(&tmp, &root)
        .with_context(|| format!("cannot put the built-in skills at {}", root.display()))?;
    Ok(root)
}

/// Whether `dir` is a root holding the built-in skills itself.
pub fn holds_builtins(dir: &Path) -> bool {
    dir.join("aos").join("SKILL.md").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_built_in_skills_is_inside() {
        let skills = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../skills");
        let mut on_disk = Vec::new();
        for name in [
            "aos",
            "aos-context",
            "aos-skill",
            "aos-a2a",
            "aos-frontend",
            "my-guard",
        ] {
            collect(&skills, &skills.join(name), &mut on_disk);
        }
        on_disk.sort();
        let mut inside: Vec<String> = FILES.iter().map(|(p, _)| p.to_string()).collect();
        inside.sort();
        assert_eq!(inside, on_disk, "skills/ and builtins::FILES differ");
    }

    /// The files a skill ships: everything but its Rust sources and build.
    fn collect(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).expect("read").flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if !["src", "target"].contains(&name.as_str()) {
                    collect(base, &p, out);
                }
            } else if !name.starts_with("Cargo.")
                && !name.ends_with(".rs")
                && !name.starts_with('.')
            {
                out.push(p.strip_prefix(base).expect("under").display().to_string());
            }
        }
    }

    #[test]
    fn the_root_is_written_once_and_rewritten_when_changed() {
        let home = tempfile::tempdir().expect("home");
        let root = super::root(home.path()).expect("root");
        assert!(holds_builtins(&root));
        assert!(root.join("my-guard/service.wasm").is_file());
        let again = super::root(home.path()).expect("again");
        assert_eq!(root, again);
        std::fs::write(root.join("aos/SKILL.md"), "tampered").expect("write");
        let fixed = super::root(home.path()).expect("fixed");
        assert_eq!(
            std::fs::read(fixed.join("aos/SKILL.md")).expect("read"),
            FILES[0].1,
            "a changed file is written again"
        );
    }
}
