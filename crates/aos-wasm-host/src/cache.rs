//! Components compiled once: on disk under the cache directory, keyed by the
//! SHA-256 of the component bytes and of the engine's compatibility hash, so
//! a different wasmtime or engine configuration never loads a stale artifact.
//!
//! A cache entry is native code: whoever can write one runs code in the
//! daemon. So every entry carries an HMAC-SHA256 of its bytes and its key,
//! made with a daemon-private key (`<cache dir>.key`, 64 random bytes, 0600,
//! beside the cache, never inside a directory a grant can name), and an entry
//! is deserialized only from the bytes whose tag was checked — never mapped
//! from a file that could change after the check. An entry that fails is
//! recompiled, rewritten and logged.
//!
//! Before the disk, the table of components compiled when the program was
//! built ([`embedded`]): the built-in skills load from the executable itself,
//! so a new home starts without compiling them.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Length of an entry's tag (HMAC-SHA256), appended to the artifact.
const TAG: usize = 32;
/// Length of the key: SHA-256's block.
const KEY: usize = 64;

/// Whether the compiled artifact came from a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Compiled when the program was built, inside its executable.
    Embedded,
    /// Loaded from `$AOS_HOME/cache` (or already in memory).
    Cached,
    /// Compiled now (and written to the cache).
    Compiled,
}

/// The on-disk cache: its directory and the key that authenticates entries.
pub(crate) struct DiskCache {
    dir: PathBuf,
    key: [u8; KEY],
}

impl DiskCache {
    /// Opens the cache at `dir`, reading its key or creating one.
    pub(crate) fn open(dir: PathBuf) -> wasmtime::Result<DiskCache> {
        let path = key_path(&dir);
        let key = read_key(&path)
            .or_else(|_| create_key(&path))
            .map_err(|e| {
                wasmtime::format_err!(
                    "cannot read or create the cache key {}: {e}",
                    path.display()
                )
            })?;
        Ok(DiskCache { dir, key })
    }

    fn tag(&self, artifact: &[u8], key: &str) -> Result<Hmac<Sha256>, hmac::digest::InvalidLength> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)?;
        mac.update(artifact);
        mac.update(key.as_bytes());
        Ok(mac)
    }

    /// Loads component `bytes` whose cache key is `key`: from the disk cache
    /// when an authentic entry is there, else compiling and caching them.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        key: &str,
    ) -> wasmtime::Result<(Component, Origin)> {
        let path = self.dir.join(format!("{key}.cwasm"));
        match std::fs::read(&path) {
            Ok(entry) => match self.authentic(&entry, key) {
                Some(artifact) => match deserialize(engine, artifact) {
                    Ok(c) => return Ok((c, Origin::Cached)),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "a cache entry does not load; recompiling")
                    }
                },
                None => tracing::warn!(
                    path = %path.display(),
                    "a cache entry failed authentication (changed outside the daemon); recompiling"
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read a cache entry")
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = self.store(&path, &component, key) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the component cache");
        }
        Ok((component, Origin::Compiled))
    }

    /// The artifact of `entry` if its tag is right.
    fn authentic<'a>(&self, entry: &'a [u8], key: &str) -> Option<&'a [u8]> {
        let split = entry.len().checked_sub(TAG)?;
        let (artifact, tag) = entry.split_at(split);
        self.tag(artifact, key).ok()?.verify_slice(tag).ok()?;
        Some(artifact)
    }

    fn store(&self, path: &Path, component: &Component, key: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut data = component.serialize().map_err(std::io::Error::other)?;
        let tag = self
            .tag(&data, key)
            .map_err(std::io::Error::other)?
            .finalize()
            .into_bytes();
        data.extend_from_slice(&tag);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = private_file(&tmp)
            .and_then(|mut f| f.write_all(&data))
            .and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }
}

/// Where the key of the cache at `dir` lives: beside it, not in it.
pub(crate) fn key_path(dir: &Path) -> PathBuf {
    dir.with_extension("key")
}

fn read_key(path: &Path) -> std::io::Result<[u8; KEY]> {
    let bytes = std::fs::read(path)?;
    let key = <[u8; KEY]>::try_from(bytes.as_slice())
        .map_err(|_| std::io::Error::other(format!("the cache key is not {KEY} bytes")))?;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        // Others may have read it: a new key (every entry recompiles once).
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the cache key was readable by others; replacing it");
        return Err(std::io::Error::other("the cache key is readable by others"));
    }
    Ok(key)
}

fn create_key(path: &Path) -> std::io::Result<[u8; KEY]> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let key: [u8; KEY] = rand::random();
    let tmp = path.with_extension(format!("key.tmp{}", std::process::id()));
    private_file(&tmp)?.write_all(&key)?;
    std::fs::rename(&tmp, path)?;
    // Another daemon on the same home may have won the race: use its key.
    read_key(path)
}

fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Reads a component file.
pub(crate) fn read(path: &Path) -> wasmtime::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| wasmtime::format_err!("cannot read the component {}: {e}", path.display()))
}

/// The component compiled at build time under `key`, if the program holds
/// one and `engine` accepts it (an artifact for other CPU features, say, is
/// refused by wasmtime's header check and compiled instead).
pub(crate) fn embedded(
    table: &'static [(&'static str, &'static [u8])],
    engine: &Engine,
    key: &str,
) -> Option<Component> {
    let (_, artifact) = table.iter().find(|(k, _)| *k == key)?;
    match deserialize(engine, artifact) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::info!(key, error = %e, "a precompiled built-in does not load here; compiling it");
            None
        }
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `artifact` is in this process's memory, and either its HMAC
    // under the daemon-private key was just checked (this host serialised
    // it with an engine of the same compatibility hash, part of the key) or
    // it is part of this executable, compiled at its build by the same
    // wasmtime with the same configuration (`aos-builtins`); wasmtime
    // additionally checks the artifact's header against the engine.
    unsafe { Component::deserialize(engine, artifact) }
}
