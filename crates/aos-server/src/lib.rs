//! The AgentOS HTTP API (`interfaces.md` §1): `POST /v1/syscall`,
//! `GET /v1/events` (SSE), `GET /health`, `GET /metrics`, and the web UI's
//! assets at `GET /ui/…` (the `aos-frontend` skill's).
//!
//! [`app`] builds the router apart from any listener, so tests serve it on
//! port 0 and the daemon serves it on its configured address with [`serve`]
//! (a connection cap answered 503, a request-head timeout).

mod auth;
mod listen;
mod metrics;
mod routes;
mod ui;

pub use listen::{ConnLimits, serve};
pub use metrics::Metrics;
pub use routes::{MAX_BODY_BYTES, app};
