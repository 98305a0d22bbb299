//! Log lines, routed to the daemon's logs with the skill's name.

use crate::bindings::aos::kernel::log::{Level, write};

/// Debug detail.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// Normal operation.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Something odd.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Something failed.
pub fn error(message: &str) {
    write(Level::Error, message);
}
