//! Legacy skill services (`skills.md` §4): a `service:` that is not a
//! `.wasm` component runs as a subprocess, connected to the kernel over its
//! own Unix domain socket (mode 0600 under `$AOS_HOME/run/`) and speaking
//! newline-delimited JSON-RPC 2.0 both ways. The service registers hooks and
//! makes syscalls with exactly its skill's declared rights; the kernel sends
//! hooks, events, commands and `shutdown`. Deadlines, a frame size limit and
//! process-group kills contain a misbehaving service; a crash marks it
//! `error`. The Python `aos_sdk` ships inside. Protocol and migration:
//! `docs/legacy-services.md`.

mod conn;
mod driver;
pub mod frame;
pub mod process;
pub mod protocol;
pub mod python;

pub use driver::{UdsDriver, UdsInstance};

use std::time::Duration;

/// Limits of the shim.
#[derive(Debug, Clone)]
pub struct UdsConfig {
    /// Time from spawn to the `register` message (10 s).
    pub register_timeout: Duration,
    /// Time between `shutdown` and SIGKILL of the process group (5 s).
    pub shutdown_grace: Duration,
    /// Longest message, in bytes (16 MiB).
    pub max_frame: usize,
    /// Malformed messages tolerated before the service is killed (16).
    pub max_malformed: u32,
}

impl Default for UdsConfig {
    fn default() -> Self {
        UdsConfig {
            register_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            max_frame: 16 * 1024 * 1024,
            max_malformed: 16,
        }
    }
}
