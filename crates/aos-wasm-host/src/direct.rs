//! Direct calls. A component is called on a fiber of its own so that an
//! import can wait (a syscall awaiting the kernel, a socket, a file, a
//! timer) without blocking the thread; a component that imports nothing
//! that can wait needs no fiber, and is called directly on the caller's
//! stack, which costs less per call (docs/performance.md).
//!
//! [`can_wait`] decides from what a component imports. For components that
//! cannot wait, [`add_to_linker`] replaces WASI's blocking stream and poll
//! functions — async in wasmtime-wasi, which would force a fiber on any
//! component whose standard library merely links them — with synchronous
//! ones. They answer at once because the only streams such a component can
//! reach are its standard input (closed), output and error (discarded) and
//! their pollables (always ready); if one ever would wait, the call traps
//! with a message saying so rather than block the thread.

use crate::state::HostState;
use futures::FutureExt;
use std::future::Future;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, Resource, ResourceTable, ResourceType};
use wasmtime::{Engine, StoreContextMut};
use wasmtime_wasi_io::bindings::wasi::io::{poll, streams};
use wasmtime_wasi_io::poll::DynPollable;
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream, StreamResult};

/// The version of `wasi:io` that wasmtime-wasi defines (its
/// `wit/deps/io.wit`); the definitions below replace those of that exact
/// name. Components importing any `0.2.x` reach them by semver. A wrong
/// number here makes `tests/direct.rs` fail: the replaced instance would
/// lack its resources, and no component would link.
const WASI_IO: &str = "0.2.12";

/// Interfaces none of whose functions can wait, for the WASI context a
/// skill gets (`caps::wasi_ctx`: stdin closed, stdout and stderr
/// discarded). Anything not listed counts as able to wait.
const NEVER_WAIT: &[&str] = &[
    "aos:kernel/types",
    "aos:kernel/hook",
    "aos:kernel/log",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:clocks/wall-clock",
];

/// Whether anything `component` imports can wait (then it is called on a
/// fiber).
pub(crate) fn can_wait(component: &Component, engine: &Engine) -> bool {
    component
        .component_type()
        .imports(engine)
        .any(|(name, item)| import_can_wait(name, &item.ty, engine))
}

fn import_can_wait(name: &str, item: &ComponentItem, engine: &Engine) -> bool {
    let interface = name.split('@').next().unwrap_or(name);
    if NEVER_WAIT.contains(&interface) {
        return false;
    }
    if interface == "wasi:clocks/monotonic-clock" {
        // `now` and `resolution` answer at once; a `subscribe-*` pollable
        // is a timer.
        return match item {
            ComponentItem::ComponentInstance(i) => {
                i.exports(engine).any(|(f, _)| f.starts_with("subscribe"))
            }
            _ => true,
        };
    }
    true
}

/// Replaces the blocking `wasi:io` functions and stream destructors of
/// `linker` (which has WASI already) with synchronous ones.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    add_poll(linker)?;
    add_streams(linker)?;
    linker.allow_shadowing(false);
    Ok(())
}

fn add_poll(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let mut i = linker.instance(&format!("wasi:io/poll@{WASI_IO}"))?;
    i.func_wrap("poll", |mut s, (list,): (Vec<Resource<DynPollable>>,)| {
        Ok((now(poll::Host::poll(table(&mut s), list))??,))
    })?;
    i.func_wrap(
        "[method]pollable.block",
        |mut s, (p,): (Resource<DynPollable>,)| now(poll::HostPollable::block(table(&mut s), p))?,
    )?;
    i.func_wrap(
        "[method]pollable.ready",
        |mut s, (p,): (Resource<DynPollable>,)| {
            Ok((now(poll::HostPollable::ready(table(&mut s), p))??,))
        },
    )?;
    Ok(())
}

fn add_streams(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use streams::{HostInputStream as In, HostOutputStream as Out};
    let mut i = linker.instance(&format!("wasi:io/streams@{WASI_IO}"))?;
    i.resource(
        "input-stream",
        ResourceType::host::<DynInputStream>(),
        |mut s, rep| now(In::drop(table(&mut s), Resource::new_own(rep)))?,
    )?;
    i.resource(
        "output-stream",
        ResourceType::host::<DynOutputStream>(),
        |mut s, rep| now(Out::drop(table(&mut s), Resource::new_own(rep)))?,
    )?;
    i.func_wrap(
        "[method]input-stream.blocking-read",
        |mut s, (r, len): (Resource<DynInputStream>, u64)| {
            let t = table(&mut s);
            let r = now(In::blocking_read(t, r, len))?;
            answer(t, r)
        },
    )?;
    i.func_wrap(
        "[method]input-stream.blocking-skip",
        |mut s, (r, len): (Resource<DynInputStream>, u64)| {
            let t = table(&mut s);
            let r = now(In::blocking_skip(t, r, len))?;
            answer(t, r)
        },
    )?;
    i.func_wrap(
        "[method]output-stream.blocking-write-and-flush",
        |mut s, (w, bytes): (Resource<DynOutputStream>, Vec<u8>)| {
            let t = table(&mut s);
            let r = now(Out::blocking_write_and_flush(t, w, bytes))?;
            answer(t, r)
        },
    )?;
    i.func_wrap(
        "[method]output-stream.blocking-write-zeroes-and-flush",
        |mut s, (w, len): (Resource<DynOutputStream>, u64)| {
            let t = table(&mut s);
            let r = now(Out::blocking_write_zeroes_and_flush(t, w, len))?;
            answer(t, r)
        },
    )?;
    i.func_wrap(
        "[method]output-stream.blocking-flush",
        |mut s, (w,): (Resource<DynOutputStream>,)| {
            let t = table(&mut s);
            let r = now(Out::blocking_flush(t, w))?;
            answer(t, r)
        },
    )?;
    i.func_wrap(
        "[method]output-stream.blocking-splice",
        |mut s, (w, r, len): (Resource<DynOutputStream>, Resource<DynInputStream>, u64)| {
            let t = table(&mut s);
            let r = now(Out::blocking_splice(t, w, r, len))?;
            answer(t, r)
        },
    )?;
    Ok(())
}

fn table<'a>(s: &'a mut StoreContextMut<'_, HostState>) -> &'a mut ResourceTable {
    &mut s.data_mut().table
}

/// The output of `f`, which must be ready at once: a directly called
/// component may not wait (see the module docs).
fn now<F: Future>(f: F) -> wasmtime::Result<F::Output> {
    f.now_or_never().ok_or_else(|| {
        wasmtime::format_err!(
            "a blocking WASI stream call would wait in a directly called component"
        )
    })
}

/// A stream call's result as the guest sees it: its error converted to the
/// WIT `stream-error` (a trap stays a trap).
fn answer<T>(
    t: &mut ResourceTable,
    r: StreamResult<T>,
) -> wasmtime::Result<(Result<T, streams::StreamError>,)> {
    Ok((match r {
        Ok(v) => Ok(v),
        Err(e) => Err(streams::Host::convert_stream_error(t, e)?),
    },))
}
