//! AgentOS extension points: the driver contract a service runtime
//! implements ([`driver`]), the table of running instances ([`table`]), the
//! hook engine that calls them ([`hooks`]), the event bus behind
//! `/v1/events` ([`events`]) and the event depth that bounds event chains
//! ([`depth`]). Depends only on the data model and the manifest: no store,
//! no LLM client, no kernel.

pub mod depth;
pub mod driver;
pub mod events;
pub mod hooks;
pub mod table;
pub mod telemetry;

pub use depth::{MAX_EVENT_DEPTH, at_event_depth, event_depth};
pub use driver::{
    AdmitReply, CallFault, HookInput, InvokeReply, LINES_PER_SECOND, LogRate, Registration,
    ServiceDriver, ServiceInstance, ServiceOwner, ServiceStart, ServiceState, SyscallPort, within,
};
