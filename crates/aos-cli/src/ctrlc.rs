//! Ctrl-C while a command follows a dispatch (`aos run`, `aos send`): the
//! first press asks the daemon to interrupt the dispatch (its command is
//! killed, the interrupt fact written) and the command exits 130 once it
//! ended; a second press exits at once.

use std::sync::atomic::{AtomicU32, Ordering};

static PRESSED: AtomicU32 = AtomicU32::new(0);

#[allow(unsafe_code)]
extern "C" fn on_sigint(_: libc::c_int) {
    if PRESSED.fetch_add(1, Ordering::SeqCst) >= 1 {
        // SAFETY: _exit is async-signal-safe and takes a plain integer.
        unsafe { libc::_exit(130) };
    }
}

/// Catches SIGINT from now on (for the rest of the process).
#[allow(unsafe_code)]
pub fn catch() {
    let handler = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: installs a handler that only touches an atomic and calls the
    // async-signal-safe _exit.
    unsafe {
        libc::signal(libc::SIGINT, handler);
    }
}

/// Whether Ctrl-C was pressed since [`catch`].
pub fn pressed() -> bool {
    PRESSED.load(Ordering::SeqCst) > 0
}
