//! Compiles the built-in skills' service components and installs each as
//! `skills/<name>/service.wasm`, so `cargo run -p aos-cli -- daemon start`
//! needs no other step; then compiles each for the daemon's engine
//! (`aos-wasm-engine`) into `$OUT_DIR`, so the daemon loads them from its own
//! executable instead of compiling them on a new home's first start.

use aos_wasm_engine::{EngineOptions, config, key};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Built-in skills with a WASM service: the guest package is named like the
/// skill and lives in `skills/<name>/`.
const BUILTINS: &[&str] = &["my-guard", "aos-context", "aos-skill", "aos-a2a"];

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let root = aos_guest_build::workspace_root(Path::new(&manifest));
    let mut watch = vec![
        "crates/aos-sdk/src".to_string(),
        "crates/aos-sdk/wit".to_string(),
    ];
    watch.extend(BUILTINS.iter().map(|s| format!("skills/{s}/src")));
    let watch: Vec<&str> = watch.iter().map(String::as_str).collect();
    let built = aos_guest_build::build(&root, BUILTINS, &watch);
    let mut installed = Vec::new();
    for (skill, wasm) in BUILTINS.iter().zip(built) {
        let to = root.join("skills").join(skill).join("service.wasm");
        aos_guest_build::install(&wasm, &to);
        installed.push((*skill, to));
    }
    precompile(&installed);
}

/// Writes `$OUT_DIR/precompiled.rs`: the table of each component compiled
/// for the daemon's default engine, by key. Empty when building for another
/// machine than this one (the artifact is native code for this CPU).
fn precompile(components: &[(&str, PathBuf)]) {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let native = std::env::var("TARGET").ok() == std::env::var("HOST").ok();
    let mut table = String::from("&[\n");
    if native {
        let engine = wasmtime::Engine::new(&config(EngineOptions::default()))
            .unwrap_or_else(|e| panic!("cannot make the daemon's engine: {e}"));
        for (skill, path) in components {
            let bytes = std::fs::read(path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let artifact = engine
                .precompile_component(&bytes)
                .unwrap_or_else(|e| panic!("cannot compile {skill}: {e:#}"));
            let file = out.join(format!("{skill}.cwasm"));
            std::fs::write(&file, artifact)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));
            let _ = writeln!(
                table,
                "    ({:?}, include_bytes!({:?})),",
                key(&engine, &bytes),
                file.display().to_string()
            );
        }
    }
    table.push_str("]\n");
    std::fs::write(out.join("precompiled.rs"), table).expect("precompiled.rs");
}
