//! The AgentOS microkernel: it owns agents, sessions, SessionHistory, the
//! skill index and the extension points, and nothing else (no policy).
//!
//! Everything crosses the boundary as a syscall: [`Kernel::syscall`] takes a
//! decoded [`aos_types::Request`] and the caller's [`Principal`] and answers an
//! [`aos_types::Response`]. Commands pass admission hooks and are written to
//! the RuntimeLog; queries are not. A dispatch runs in the kernel's
//! [`Runner`] (the ReActUnit of `aos-react`), which reaches the kernel only
//! through a [`DispatchPort`].
//!
//! Layers, each importing only those below it (checked by
//! `tests/layers.rs`): the leaves (`config`, `params`, `paths`, `hooks`,
//! `services`, `skills`, `principal`, `sandbox`, `dispatches`,
//! `session_context`, `runner`, `transcript`); the state (`kernel`); the
//! shared steps (`sessions`, `context`, `bootstrap`, `compaction`,
//! `recovery`, `authz`); the handlers (`ops`, `dispatch`); the entry points
//! (`router`, `start`).

pub mod authz;
mod bootstrap;
mod compaction;
mod config;
mod context;
mod dispatch;
mod dispatches;
mod event_log;
pub mod hooks;
mod kernel;
mod nodes;
mod ops;
mod params;
mod paths;
mod principal;
mod recovery;
mod router;
mod runner;
mod sandbox;
pub mod services;
mod session_context;
mod sessions;
mod skills;
mod start;
mod takeover;
mod transcript;

pub use aos_extension::events::{Event, EventBus, EventFilter};
pub use config::{AoscbDefaults, BashSandbox, KernelConfig, parse_switch};
pub use dispatches::{Outcome, StreamEvent};
pub use kernel::Kernel;
pub use principal::{Principal, ServiceGrant};
pub use runner::{CommandSetup, Compaction, DispatchPort, Runner, SummaryCall};
pub use session_context::{ContextMessage, SessionContext};
pub use skills::SkillRegistry;
