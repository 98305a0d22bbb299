//! Running skill services: the driver contract, the table of running
//! instances and the hook engine live in `aos-extension` (so the service
//! runtimes depend on it alone); re-exported here under the kernel's paths.

pub use aos_extension::table::*;
pub use aos_extension::{
    AdmitReply, CallFault, HookInput, InvokeReply, LINES_PER_SECOND, LogRate, Registration,
    ServiceDriver, ServiceInstance, ServiceOwner, ServiceStart, ServiceState, SyscallPort, within,
};
