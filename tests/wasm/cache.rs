//! The compiled-component cache runs as native code in the daemon: an entry
//! changed outside the daemon is never loaded (issue 18, finding 1).

use aos_test_artifacts::{MY_GUARD, TEST_GUEST};
use aos_wasm_host::{WasmHost, WasmHostConfig};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn host(cache: &Path) -> WasmHost {
    WasmHost::new(WasmHostConfig {
        cache_dir: cache.to_path_buf(),
        pooling: false,
        direct_calls: true,
    })
    .expect("host")
}

/// The one entry the cache holds for `component` after it was loaded.
fn entry_of(cache: &Path, before: &[PathBuf]) -> PathBuf {
    let now = entries(cache);
    let new: Vec<_> = now.iter().filter(|p| !before.contains(p)).collect();
    assert_eq!(new.len(), 1, "one new entry: {now:?}");
    new[0].clone()
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(cache)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn an_entry_copied_over_another_is_recompiled_not_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cache = tmp.path().join("cache");
    let h = host(&cache);
    assert!(
        !h.load(Path::new(TEST_GUEST)).expect("load"),
        "compiled first"
    );
    let victim = entry_of(&cache, &[]);
    assert!(!h.load(Path::new(MY_GUARD)).expect("load"));
    let attacker = entry_of(&cache, std::slice::from_ref(&victim));
    assert!(h.load(Path::new(TEST_GUEST)).expect("load"), "then served");

    // What the session-owned skill did: its entry over the system skill's.
    std::fs::copy(&attacker, &victim).expect("copy");
    let restarted = host(&cache);
    assert!(
        !restarted.load(Path::new(TEST_GUEST)).expect("load"),
        "the swapped entry must be recompiled, not loaded"
    );
    assert_ne!(
        std::fs::read(&victim).expect("read"),
        std::fs::read(&attacker).expect("read"),
        "and rewritten with the victim's own code"
    );
    assert!(restarted.load(Path::new(TEST_GUEST)).expect("load"));
}

#[test]
fn a_changed_byte_or_a_forged_tag_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cache = tmp.path().join("cache");
    assert!(!host(&cache).load(Path::new(TEST_GUEST)).expect("load"));
    let entry = entry_of(&cache, &[]);
    let good = std::fs::read(&entry).expect("read");

    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    std::fs::write(&entry, &flipped).expect("write");
    assert!(!host(&cache).load(Path::new(TEST_GUEST)).expect("load"));

    // A tag made with another key (another daemon's home).
    let other = tempfile::tempdir().expect("other");
    let other_cache = other.path().join("cache");
    assert!(
        !host(&other_cache)
            .load(Path::new(TEST_GUEST))
            .expect("load")
    );
    let foreign = std::fs::read(entry_of(&other_cache, &[])).expect("read");
    assert_ne!(foreign, good, "keys differ per home");
    std::fs::write(&entry, &foreign).expect("write");
    assert!(!host(&cache).load(Path::new(TEST_GUEST)).expect("load"));

    // Too short to carry a tag at all.
    std::fs::write(&entry, b"x").expect("write");
    assert!(!host(&cache).load(Path::new(TEST_GUEST)).expect("load"));
    assert!(host(&cache).load(Path::new(TEST_GUEST)).expect("load"));
}

#[test]
fn the_key_is_private_and_beside_the_cache() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cache = tmp.path().join("cache");
    host(&cache);
    let key = tmp.path().join("cache.key");
    let meta = std::fs::metadata(&key).expect("the key exists beside the cache");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 64);
    // A key others could read is replaced at the next start, and the
    // entries it signed are recompiled.
    let h = host(&cache);
    assert!(!h.load(Path::new(TEST_GUEST)).expect("load"));
    assert!(h.load(Path::new(TEST_GUEST)).expect("load"));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let before = std::fs::read(&key).expect("read");
    let h = host(&cache);
    let meta = std::fs::metadata(&key).expect("key");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_ne!(std::fs::read(&key).expect("read"), before, "a new key");
    assert!(!h.load(Path::new(TEST_GUEST)).expect("load"));
}
