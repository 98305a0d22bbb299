//! AgentOS extension points as seen from a service runtime: the driver
//! contract ([`driver`]) and the event depth that bounds event chains
//! ([`depth`]). Depends only on the data model and the manifest.

pub mod depth;
pub mod driver;

pub use depth::{MAX_EVENT_DEPTH, at_event_depth, event_depth};
pub use driver::{
    AdmitReply, CallFault, HookInput, InvokeReply, LINES_PER_SECOND, LogRate, Registration,
    ServiceDriver, ServiceInstance, ServiceOwner, ServiceStart, ServiceState, SyscallPort, within,
};
