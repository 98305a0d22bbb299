//! The built-in skills' components are built by this crate's build script
//! and installed into `skills/`; depending on this crate makes a normal
//! `cargo build` produce them.

/// Names of the built-in skills that have a WASM service.
pub const WASM_SKILLS: &[&str] = &["my-guard"];
