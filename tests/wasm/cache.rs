//! The compiled-component cache runs as native code in the daemon: an entry
//! changed outside the daemon is never loaded (issue 18, finding 1).

use aos_test_artifacts::{MY_GUARD, TEST_GUEST};
use aos_wasm_host::{Origin, WasmHost, WasmHostConfig};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn host(cache: &Path) -> WasmHost {
    WasmHost::new(WasmHostConfig {
        cache_dir: cache.to_path_buf(),
        pooling: false,
        direct_calls: true,
        precompiled: &[],
    })
    .expect("host")
}

/// Whether the disk cache served `component` (else it was compiled).
fn cached(h: &WasmHost, component: &str) -> bool {
    match h.load(Path::new(component)).expect("load") {
        Origin::Cached => true,
        Origin::Compiled => false,
        Origin::Embedded => panic!("no precompiled table in these hosts"),
    }
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
    assert!(!cached(&h, TEST_GUEST), "compiled first");
    let victim = entry_of(&cache, &[]);
    assert!(!cached(&h, MY_GUARD));
    let attacker = entry_of(&cache, std::slice::from_ref(&victim));
    assert!(cached(&h, TEST_GUEST), "then served");

    // What the session-owned skill did: its entry over the system skill's.
    std::fs::copy(&attacker, &victim).expect("copy");
    let restarted = host(&cache);
    assert!(
        !cached(&restarted, TEST_GUEST),
        "the swapped entry must be recompiled, not loaded"
    );
    assert_ne!(
        std::fs::read(&victim).expect("read"),
        std::fs::read(&attacker).expect("read"),
        "and rewritten with the victim's own code"
    );
    assert!(cached(&restarted, TEST_GUEST));
}

#[test]
fn a_changed_byte_or_a_forged_tag_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cache = tmp.path().join("cache");
    assert!(!cached(&host(&cache), TEST_GUEST));
    let entry = entry_of(&cache, &[]);
    let good = std::fs::read(&entry).expect("read");

    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    std::fs::write(&entry, &flipped).expect("write");
    assert!(!cached(&host(&cache), TEST_GUEST));

    // A tag made with another key (another daemon's home).
    let other = tempfile::tempdir().expect("other");
    let other_cache = other.path().join("cache");
    assert!(!cached(&host(&other_cache), TEST_GUEST));
    let foreign = std::fs::read(entry_of(&other_cache, &[])).expect("read");
    assert_ne!(foreign, good, "keys differ per home");
    std::fs::write(&entry, &foreign).expect("write");
    assert!(!cached(&host(&cache), TEST_GUEST));

    // Too short to carry a tag at all.
    std::fs::write(&entry, b"x").expect("write");
    assert!(!cached(&host(&cache), TEST_GUEST));
    assert!(cached(&host(&cache), TEST_GUEST));
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
    assert!(!cached(&h, TEST_GUEST));
    assert!(cached(&h, TEST_GUEST));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let before = std::fs::read(&key).expect("read");
    let h = host(&cache);
    let meta = std::fs::metadata(&key).expect("key");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_ne!(std::fs::read(&key).expect("read"), before, "a new key");
    assert!(!cached(&h, TEST_GUEST));
}

/// A table of components precompiled for `(key, artifact)` pairs, made to
/// live as long as the program, as the binary's own table does.
fn table(pairs: Vec<(String, Vec<u8>)>) -> &'static [(&'static str, &'static [u8])] {
    let pairs: Vec<(&'static str, &'static [u8])> = pairs
        .into_iter()
        .map(|(k, a)| {
            let k: &'static str = Box::leak(k.into_boxed_str());
            let a: &'static [u8] = Box::leak(a.into_boxed_slice());
            (k, a)
        })
        .collect();
    Box::leak(pairs.into_boxed_slice())
}

/// The binary ships its built-ins precompiled (issue 22): such a table
/// serves a component whose bytes have its key, without compiling or
/// writing the disk cache; no other component matches it; and an artifact
/// that does not load under the right key is compiled instead, never run.
#[test]
fn a_precompiled_table_serves_only_the_components_it_was_made_from() {
    let engine = wasmtime::Engine::new(&aos_wasm_engine::config(Default::default()))
        .expect("the daemon's engine");
    let bytes = std::fs::read(MY_GUARD).expect("guard");
    let key = aos_wasm_engine::key(&engine, &bytes);
    let artifact = engine.precompile_component(&bytes).expect("precompile");
    let tmp = tempfile::tempdir().expect("tmp");
    let with = |precompiled, cache: &str| {
        WasmHost::new(WasmHostConfig {
            cache_dir: tmp.path().join(cache),
            pooling: false,
            direct_calls: true,
            precompiled,
        })
        .expect("host")
    };

    let h = with(table(vec![(key.clone(), artifact)]), "good");
    assert_eq!(h.load(Path::new(MY_GUARD)).expect("load"), Origin::Embedded);
    assert!(
        entries(&tmp.path().join("good")).is_empty(),
        "nothing compiled"
    );
    assert_eq!(
        h.load(Path::new(TEST_GUEST)).expect("load"),
        Origin::Compiled
    );

    let h = with(table(vec![(key, b"not an artifact".to_vec())]), "bad");
    assert_eq!(h.load(Path::new(MY_GUARD)).expect("load"), Origin::Compiled);
}
