//! The AgentOS microkernel: it owns agents, sessions, SessionHistory, the
//! skill index and the extension points, and nothing else (no policy).
//!
//! Everything crosses the boundary as a syscall: [`Kernel::syscall`] takes a
//! decoded [`aos_types::Request`] and the caller's [`Principal`] and answers an
//! [`aos_types::Response`]. Commands pass admission hooks and are written to
//! the RuntimeLog; queries are not.

pub mod authz;
mod bootstrap;
mod compaction;
mod config;
mod context;
pub mod hooks;
mod kernel;
mod ops;
mod params;
mod principal;
mod react;
pub use react::{Outcome, StreamEvent};
mod recovery;
mod runner;
pub use runner::{CommandSetup, Compaction, DispatchPort, Runner, SummaryCall};
mod sandbox;
pub use sandbox::BashSandbox;
pub mod services;
mod skills;
mod transcript;

pub use aos_extension::events::{Event, EventBus, EventFilter};
pub use config::{AoscbDefaults, KernelConfig, parse_switch};
pub use context::{ContextMessage, SessionContext};
pub use kernel::Kernel;
pub use principal::{Principal, ServiceGrant};
pub use skills::SkillRegistry;
