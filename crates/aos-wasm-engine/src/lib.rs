//! The wasmtime configuration skills' components are compiled for, and the
//! key of a compiled component. The skill host (`aos-wasm-host`) runs them
//! with it; the build of the built-in skills (`aos-builtins`) precompiles
//! them with it, so an artifact made at build time is one the daemon's
//! engine accepts — and one it looks up by the same key.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How an engine differs between the host's uses of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineOptions {
    /// Meter fuel (skills with `limits.fuel`): a check in every basic block.
    pub fuel: bool,
    /// The pooling instance allocator (faster instantiation, address space
    /// reserved up front).
    pub pooling: bool,
}

/// The engine configuration of `options`.
pub fn config(options: EngineOptions) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.consume_fuel(options.fuel);
    if options.pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(256);
        pool.total_core_instances(512);
        pool.total_memories(512);
        pool.total_tables(512);
        pool.max_memory_size(1 << 30);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    c
}

/// The key of component `bytes` compiled by `engine`: the SHA-256 of the
/// bytes, of the engine's compatibility hash (wasmtime's version, its
/// settings, the CPU features it compiles for) and of this version, so a
/// different wasmtime, configuration or machine never loads another's
/// artifact.
pub fn key(engine: &Engine, bytes: &[u8]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let mut sha = Sha256::new();
    sha.update(bytes);
    sha.update(h.finish().to_le_bytes());
    sha.update(env!("CARGO_PKG_VERSION").as_bytes());
    sha.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_names_the_bytes_and_the_engine() {
        let plain = Engine::new(&config(EngineOptions::default())).expect("engine");
        let fuel = Engine::new(&config(EngineOptions {
            fuel: true,
            ..EngineOptions::default()
        }))
        .expect("engine");
        let again = Engine::new(&config(EngineOptions::default())).expect("engine");
        assert_eq!(
            key(&plain, b"a"),
            key(&again, b"a"),
            "stable across engines"
        );
        assert_ne!(key(&plain, b"a"), key(&plain, b"b"));
        assert_ne!(
            key(&plain, b"a"),
            key(&fuel, b"a"),
            "fuel compiles other code"
        );
    }
}
