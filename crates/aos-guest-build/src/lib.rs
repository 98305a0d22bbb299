//! Used from build scripts to compile guest crates of this workspace into
//! WebAssembly components (`wasm32-wasip2`, profile `wasm`), in a target
//! directory of their own so the outer build's lock is never contended.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root, from a build script's `CARGO_MANIFEST_DIR` two levels down.
pub fn workspace_root(manifest_dir: &Path) -> PathBuf {
    manifest_dir.join("../..")
}

/// Builds `packages` and returns each one's component path, in order.
///
/// Panics with cargo's output when the build fails (a build script has no
/// better channel). Emits `rerun-if-changed` for each package directory
/// given in `watch`.
pub fn build(root: &Path, packages: &[&str], watch: &[&str]) -> Vec<PathBuf> {
    for w in watch {
        println!("cargo:rerun-if-changed={}", root.join(w).display());
    }
    let target_dir = root.join("target").join("wasm-guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for p in packages {
        // `cargo rustc --crate-type cdylib`: the crates stay plain libraries
        // for host builds (a cdylib of WIT exports cannot link natively).
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(root)
            .args([
                "rustc",
                "-p",
                p,
                "--profile",
                "wasm",
                "--target",
                "wasm32-wasip2",
                "--crate-type",
                "cdylib",
                "--target-dir",
            ])
            .arg(&target_dir);
        // The outer build's flags are for the host, not for the guests.
        for var in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_BUILD_RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "RUSTC_WORKSPACE_WRAPPER",
        ] {
            cmd.env_remove(var);
        }
        let out = cmd
            .output()
            .expect("cannot run cargo to build the guest components");
        if !out.status.success() {
            panic!(
                "building guest component {p} for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    packages
        .iter()
        .map(|p| {
            target_dir
                .join("wasm32-wasip2/wasm")
                .join(format!("{}.wasm", p.replace('-', "_")))
        })
        .collect()
}

/// Builds a standalone crate (its own workspace, e.g. a skill template) with
/// a plain `cargo build --release --target wasm32-wasip2`, exactly as its
/// author would, and returns the component path.
pub fn build_standalone(root: &Path, dir: &str) -> PathBuf {
    println!(
        "cargo:rerun-if-changed={}",
        root.join(dir).join("src").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        root.join(dir).join("Cargo.toml").display()
    );
    let target_dir = root.join("target").join("templates");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root.join(dir))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().expect("cannot run cargo to build a template");
    if !out.status.success() {
        panic!(
            "building {dir} for wasm32-wasip2 failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let name = Path::new(dir)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(dir)
        .replace('-', "_");
    target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{name}.wasm"))
}

/// Copies `from` to `to` unless `to` already has the same bytes (so file
/// watchers and mtimes see no change when nothing changed).
pub fn install(from: &Path, to: &Path) {
    let bytes =
        std::fs::read(from).unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display()));
    if std::fs::read(to).is_ok_and(|old| old == bytes) {
        return;
    }
    let tmp = to.with_extension("wasm.tmp");
    std::fs::write(&tmp, &bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", tmp.display()));
    std::fs::rename(&tmp, to).unwrap_or_else(|e| panic!("cannot install {}: {e}", to.display()));
}
