//! What the kernel's own tests share: a [`Runner`] for a kernel tested
//! without its loop. These tests start no dispatch (the loop's tests are
//! `aos-react`'s); one that did would fail with this runner's error.

use aos_kernel::{DispatchPort, Outcome, Runner, SummaryCall};
use aos_types::{ErrorCode, SyscallError, Usage};
use futures::future::BoxFuture;
use std::sync::Arc;

/// Fails every dispatch and summary call with a clear error.
pub struct NoLoop;

fn no_loop() -> SyscallError {
    SyscallError::new(ErrorCode::Unavailable, "this test kernel has no ReAct loop")
}

impl Runner for NoLoop {
    fn run<'a>(&'a self, _port: &'a mut dyn DispatchPort) -> BoxFuture<'a, Outcome> {
        Box::pin(async { Outcome::failed(None, Usage::default(), &no_loop()) })
    }

    fn summarize<'a>(
        &'a self,
        _call: SummaryCall<'a>,
    ) -> BoxFuture<'a, Result<(String, Usage), SyscallError>> {
        Box::pin(async { Err(no_loop()) })
    }
}

/// [`NoLoop`] as the kernel's runner.
pub fn no_loop_runner() -> Arc<dyn Runner> {
    Arc::new(NoLoop)
}
