//! Components compiled once: on disk under the cache directory, keyed by the
//! SHA-256 of the component bytes and of the engine's compatibility hash, so
//! a different wasmtime or engine configuration never loads a stale artifact.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The cache key of `bytes` for `engine`.
pub(crate) fn key(engine: &Engine, bytes: &[u8]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let mut sha = Sha256::new();
    sha.update(bytes);
    sha.update(h.finish().to_le_bytes());
    sha.update(env!("CARGO_PKG_VERSION").as_bytes());
    sha.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the compiled artifact came from a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Loaded from `$AOS_HOME/cache` (or already in memory).
    Cached,
    /// Compiled now (and written to the cache).
    Compiled,
}

/// Reads a component file.
pub(crate) fn read(path: &Path) -> wasmtime::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| wasmtime::format_err!("cannot read the component {}: {e}", path.display()))
}

/// Loads component `bytes` whose cache key is `key`: from the disk cache when
/// possible, else compiling and caching them.
pub(crate) fn load_bytes(
    engine: &Engine,
    cache_dir: &Path,
    bytes: &[u8],
    key: &str,
) -> wasmtime::Result<(Component, Origin)> {
    let cached: PathBuf = cache_dir.join(format!("{key}.cwasm"));
    if cached.is_file()
        && let Ok(c) = deserialize(engine, &cached)
    {
        return Ok((c, Origin::Cached));
    }
    let component = Component::new(engine, bytes)?;
    if std::fs::create_dir_all(cache_dir).is_ok() {
        let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
        let written = component
            .serialize()
            .ok()
            .and_then(|data| std::fs::write(&tmp, data).ok())
            .and_then(|()| std::fs::rename(&tmp, &cached).ok());
        if written.is_none() {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(path = %cached.display(), "cannot write the component cache");
        }
    }
    Ok((component, Origin::Compiled))
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the file is one this host serialised itself into the daemon's
    // private cache directory, named by the hash of the source component and
    // of this engine's configuration; wasmtime additionally checks the
    // artifact's header against the engine before using it.
    unsafe { Component::deserialize_file(engine, path) }
}
