//! The AgentOS skill host: skill service faces run as WebAssembly components
//! in wasmtime, with only the capabilities their `SKILL.md` grants.
//!
//! - One [`wasmtime::Engine`] per daemon; components are compiled once and
//!   cached on disk under `$AOS_HOME/cache`, keyed by their content hash and
//!   the engine's configuration; instances come from a pre-instantiated
//!   [`InstancePre`](wasmtime::component::InstancePre).
//! - One instance per running service; calls into it are serialised. A
//!   component that imports nothing that can wait is called directly on
//!   the caller's stack; any other on a fiber of its own.
//! - Deny by default: the filesystem is only the preopened directories of
//!   `capabilities.fs`, the network only the `capabilities.net` addresses,
//!   the environment only the `capabilities.env` names; syscalls are checked
//!   by the kernel against `capabilities.syscalls` and the owner's scope.
//! - Limits: linear memory (`limits.memoryMb`), a per-call deadline by epoch
//!   interruption (`limits.hookTimeoutMs`), optional fuel (`limits.fuel`). A
//!   trap, an exhausted limit or a deadline fails that call; the instance is
//!   then re-created from its pre-instantiation before the next call.
//!
//! [`WasmHost`] implements the kernel's
//! [`ServiceDriver`](aos_extension::ServiceDriver).

mod budget;
mod cache;
mod caps;
mod direct;
mod host;
mod instance;
mod names;
mod state;
mod v0_1;
mod v0_2;
mod world;

pub use cache::Origin;
pub use host::{WasmHost, WasmHostConfig};
