//! Event depth: how many event handlers deep the running code is, carried
//! across tasks so that a handler whose writes cause events (which cause its
//! writes…) is cut off at [`MAX_EVENT_DEPTH`].

tokio::task_local! {
    /// 0 for a request, 1 inside a handler of an event a request caused, …
    static EVENT_DEPTH: u32;
}

/// Event handlers an event may be delivered through in a chain.
pub const MAX_EVENT_DEPTH: u32 = 8;

/// The event depth of the running code.
pub fn event_depth() -> u32 {
    EVENT_DEPTH.try_with(|d| *d).unwrap_or(0)
}

/// Runs `f` at event depth `depth` (a runtime whose service makes its
/// syscalls in a task of their own carries the depth of the event it
/// handles over).
pub async fn at_event_depth<F: std::future::Future>(depth: u32, f: F) -> F::Output {
    EVENT_DEPTH.scope(depth, f).await
}
