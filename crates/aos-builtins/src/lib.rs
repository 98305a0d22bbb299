//! The built-in skills' components are built by this crate's build script
//! and installed into `skills/`; depending on this crate makes a normal
//! `cargo build` produce them. The build script also compiles them for the
//! daemon's engine: [`PRECOMPILED`] ships that native code in the binary.

/// The built-in components compiled for the daemon's default engine
/// (`aos_wasm_engine::config(EngineOptions::default())`), by
/// `aos_wasm_engine::key` of their bytes: for `WasmHostConfig::precompiled`.
/// Empty when the build targets another machine.
pub static PRECOMPILED: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/precompiled.rs"));
