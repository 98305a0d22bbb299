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
    /// Syscalls of one service answered at once (64): past them the shim
    /// stops reading its socket until answers are written.
    pub max_in_flight: usize,
    /// Time a write to the service may wait for it to read (10 s); a
    /// service that reads nothing longer is killed.
    pub write_deadline: Duration,
    /// Longest line of its stdout or stderr kept for the log (64 KiB); a
    /// longer one is dropped and counted.
    pub max_output_line: usize,
}

impl Default for UdsConfig {
    fn default() -> Self {
        UdsConfig {
            register_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            max_frame: 16 * 1024 * 1024,
            max_malformed: 16,
            max_in_flight: 64,
            write_deadline: Duration::from_secs(10),
            max_output_line: 64 * 1024,
        }
    }
}
