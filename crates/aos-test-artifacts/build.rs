//! Builds the test guests and writes their paths into `$OUT_DIR/artifacts.rs`.

use std::path::Path;

const GUESTS: &[(&str, &str)] = &[
    ("TEST_GUEST", "aos-test-guest"),
    ("TEST_GUEST_V0_1", "aos-test-guest-v0-1"),
    ("TEST_GUEST_DIRECT", "aos-test-guest-direct"),
    ("MY_GUARD", "my-guard"),
    ("AOS_CONTEXT", "aos-context"),
    ("AOS_SKILL", "aos-skill"),
];

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let root = aos_guest_build::workspace_root(Path::new(&manifest));
    let packages: Vec<&str> = GUESTS.iter().map(|(_, p)| *p).collect();
    let built = aos_guest_build::build(
        &root,
        &packages,
        &[
            "crates/aos-test-guest/src",
            "crates/aos-test-guest-v0-1/src",
            "crates/aos-test-guest-direct/src",
            "crates/aos-sdk/src",
            "skills/my-guard/src",
            "skills/aos-context/src",
            "skills/aos-skill/src",
            "crates/aos-sdk/wit",
        ],
    );
    let mut code = String::new();
    for ((name, package), path) in GUESTS.iter().zip(built) {
        code.push_str(&format!(
            "/// The `{package}` component.\npub const {name}: &str = {:?};\n",
            path.display().to_string()
        ));
    }
    for (name, dir) in [
        ("TEMPLATE_GUARD", "skill-templates/guard"),
        ("TEMPLATE_CONTEXT_ENGINE", "skill-templates/context-engine"),
        ("TEMPLATE_COMMAND", "skill-templates/command"),
    ] {
        let path = aos_guest_build::build_standalone(&root, dir);
        code.push_str(&format!(
            "/// The `{dir}` template, built as its README says.\npub const {name}: &str = {:?};\n",
            path.display().to_string()
        ));
    }
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    std::fs::write(Path::new(&out).join("artifacts.rs"), code).expect("write artifacts.rs");
}
