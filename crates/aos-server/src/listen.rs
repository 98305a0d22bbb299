//! Serving the API with back-pressure: at most
//! [`ConnLimits::max_connections`] connections at once — one more is
//! answered `503 Service Unavailable` and closed at once, so a flood of
//! half-open requests cannot take every file descriptor — and a request
//! whose head is not in within [`ConnLimits::header_read`] (or a kept-alive
//! connection silent that long) is closed. `axum::serve` sets neither.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How many connections, and how long a request head may take.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time to receive a request's head (and a kept-alive connection's
    /// silence before its next request).
    pub header_read: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 256,
            header_read: Duration::from_secs(10),
        }
    }
}

/// What a connection over the cap reads before it is closed.
fn busy() -> &'static [u8] {
    static BUSY: OnceLock<Vec<u8>> = OnceLock::new();
    BUSY.get_or_init(|| {
        let body = r#"{"ok":false,"op":"","error":{"code":"unavailable","message":"too many connections to the daemon; retry shortly"}}"#;
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    })
}

/// Serves `app` on `listener` until `shutdown` completes, then waits for
/// open connections to finish (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Best effort and without waiting: the socket buffer takes it.
            let _ = stream.try_write(busy());
            tracing::debug!(%addr, "connection refused: {} open", limits.max_connections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read)
            .keep_alive(true);
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
