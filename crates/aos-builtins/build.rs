//! Compiles the built-in skills' service components and installs each as
//! `skills/<name>/service.wasm`, so `cargo run -p aos-cli -- daemon start`
//! needs no other step.

use std::path::Path;

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
    for (skill, wasm) in BUILTINS.iter().zip(built) {
        aos_guest_build::install(&wasm, &root.join("skills").join(skill).join("service.wasm"));
    }
}
