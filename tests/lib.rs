//! Integration tests of kernel features with the real service runtimes
//! (`wasm/`: WASM components in wasmtime; `uds/`: legacy subprocess
//! services over the Unix-socket shim), each on a real SQLite store. They
//! live here, not in the runtime crates, so that those depend on
//! `aos-extension` alone.
