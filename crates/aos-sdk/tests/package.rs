//! The SDK is packageable on its own: its package carries the WIT it binds
//! (every version), so a skill can depend on it by version, not by a path
//! into this repository.

use std::process::Command;

#[test]
fn the_package_ships_every_wit_version() {
    let target = std::env::temp_dir().join(format!("aos-sdk-package-{}", std::process::id()));
    let out = Command::new(env!("CARGO"))
        .args([
            "package",
            "-p",
            "aos-sdk",
            "--list",
            "--allow-dirty",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo package");
    let _ = std::fs::remove_dir_all(&target);
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for wit in [
        "wit/since_v0.1/kernel.wit",
        "wit/since_v0.2/kernel.wit",
        "wit/since_v0.2/payloads.rs",
    ] {
        assert!(
            list.lines().any(|l| l == wit),
            "{wit} missing from:\n{list}"
        );
    }
}
