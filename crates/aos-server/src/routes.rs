//! The router and its handlers.

use crate::Metrics;
use crate::auth::Tokens;
use aos_kernel::{EventFilter, Kernel};
use aos_types::{ErrorCode, Request, Response, SyscallError};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_stream::wrappers::BroadcastStream;

/// Request bodies above this get 413.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

#[derive(Clone)]
struct AppState {
    kernel: Kernel,
    tokens: Tokens,
    metrics: Arc<Metrics>,
}

/// The whole API for `kernel`, accepting `operator_token`.
pub fn app(kernel: Kernel, operator_token: String, metrics: Arc<Metrics>) -> Router {
    let state = AppState {
        kernel,
        tokens: Tokens::new(operator_token),
        metrics,
    };
    Router::new()
        .route("/v1/syscall", post(syscall))
        .route("/v1/events", get(events))
        .route("/v1/dispatch/{id}/stream", get(dispatch_stream))
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/ui", get(crate::ui::redirect))
        .route("/ui/", get(ui_index))
        .route("/ui/{*path}", get(ui_asset))
        // Our own limit answers 413 in JSON; axum's is lifted just above it.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES + 1))
        .with_state(state)
}

fn json_response(resp: &Response) -> HttpResponse {
    let status =
        StatusCode::from_u16(resp.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(resp)).into_response()
}

fn error_response(op: &str, code: ErrorCode, message: &str) -> HttpResponse {
    json_response(&Response::err(op, SyscallError::new(code, message)))
}

/// The request body, refused with 413 from its declared length before any of
/// it is read, or once more than [`MAX_BODY_BYTES`] have arrived.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, HttpResponse> {
    let too_large = || {
        error_response(
            "",
            ErrorCode::RequestTooLarge,
            "request body is larger than 8 MiB",
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match axum::body::to_bytes(body, MAX_BODY_BYTES + 1).await {
        Ok(b) if b.len() <= MAX_BODY_BYTES => Ok(b),
        Ok(_) => Err(too_large()),
        Err(e) if is_length_limit(&e) => Err(too_large()),
        Err(e) => Err(error_response(
            "",
            ErrorCode::RequestInvalid,
            &format!("cannot read the request body: {e}"),
        )),
    }
}

/// Whether a body error is the length limit.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

async fn syscall(State(st): State<AppState>, headers: HeaderMap, body: Body) -> HttpResponse {
    let started = Instant::now();
    let Some(principal) = st.tokens.authenticate_any(&headers, &st.kernel) else {
        st.metrics.http("/v1/syscall", 401);
        return error_response(
            "",
            ErrorCode::AuthRequired,
            "missing or invalid bearer token: send `Authorization: Bearer $AOS_API_TOKEN`",
        );
    };
    let body = match read_body(&headers, body).await {
        Ok(b) => b,
        Err(resp) => {
            st.metrics.http("/v1/syscall", resp.status().as_u16());
            return resp;
        }
    };
    let resp = match Request::decode(&body) {
        Ok(req) => {
            let op = req.op.clone();
            let resp = st.kernel.syscall(&principal, req).await;
            let code = resp.error_code().map_or("ok", |c| c.as_str());
            st.metrics.syscall(&op, code, started.elapsed());
            resp
        }
        Err(e) => Response::err("", e),
    };
    st.metrics.http("/v1/syscall", resp.http_status());
    json_response(&resp)
}

async fn ui_index(State(st): State<AppState>) -> HttpResponse {
    ui_asset(State(st), axum::extract::Path(String::new())).await
}

async fn ui_asset(
    State(st): State<AppState>,
    axum::extract::Path(path): axum::extract::Path<String>,
) -> HttpResponse {
    let resp = crate::ui::serve(&st.kernel, &path).await;
    st.metrics.http("/ui", resp.status().as_u16());
    resp
}

/// Liveness and readiness in one: 200 `ok` while this node takes traffic,
/// 503 `stopping` or `unready` (its heartbeat does not reach the store) when
/// a load balancer should send it none.
async fn health(State(st): State<AppState>) -> HttpResponse {
    let k = &st.kernel;
    let (code, status) = match (k.is_stopping(), k.ready()) {
        (true, _) => (StatusCode::SERVICE_UNAVAILABLE, "stopping"),
        (false, false) => (StatusCode::SERVICE_UNAVAILABLE, "unready"),
        (false, true) => (StatusCode::OK, "ok"),
    };
    (
        code,
        Json(serde_json::json!({
            "status": status,
            "version": env!("CARGO_PKG_VERSION"),
            "uptimeS": k.uptime_s(),
            "nodeId": k.node_id(),
        })),
    )
        .into_response()
}

async fn metrics_text(State(st): State<AppState>, headers: HeaderMap) -> HttpResponse {
    if st.tokens.authenticate(&headers).is_none() {
        return error_response(
            "",
            ErrorCode::AuthRequired,
            "missing or invalid bearer token",
        );
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render() + &st.kernel.metrics_text().await,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventsQuery {
    scope: Option<String>,
    agent_id: Option<String>,
    session_id: Option<String>,
}

async fn events(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> HttpResponse {
    if st.tokens.authenticate(&headers).is_none() {
        return error_response(
            "",
            ErrorCode::AuthRequired,
            "missing or invalid bearer token",
        );
    }
    if let Some(s) = &q.scope
        && !["system", "agent", "session"].contains(&s.as_str())
    {
        return error_response(
            "",
            ErrorCode::RequestInvalid,
            "`scope` is one of system, agent, session",
        );
    }
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let filter = EventFilter {
        scope: q.scope,
        agent_id: q.agent_id,
        session_id: q.session_id,
    };
    Sse::new(event_stream(&st.kernel, filter, last_id))
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text("keepalive"),
        )
        .into_response()
}

fn event_stream(
    kernel: &Kernel,
    filter: EventFilter,
    last_id: Option<u64>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + use<> {
    let (past, rx) = kernel.events().subscribe(last_id);
    let stopped = {
        let k = kernel.clone();
        async move { k.stopped().await }
    };
    let live = BroadcastStream::new(rx).filter_map(|r| async move { r.ok() });
    stream::iter(past)
        .chain(live)
        .filter(move |e| std::future::ready(filter.matches(e)))
        .map(|e| {
            let data = serde_json::to_string(&e).unwrap_or_default();
            Ok(SseEvent::default()
                .id(e.id.to_string())
                .event(&e.name)
                .data(data))
        })
        .take_until(Box::pin(stopped))
}

async fn dispatch_stream(
    State(st): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> HttpResponse {
    let principal = match st.tokens.authenticate_any(&headers, &st.kernel) {
        Some(p) => p,
        None => {
            return error_response(
                "",
                ErrorCode::AuthRequired,
                "missing or invalid bearer token",
            );
        }
    };
    // Here, or (on a shared store) running on another node.
    let (session, past, rx, allowed) = match st.kernel.dispatch_stream(&id) {
        Some((session, past, rx)) => {
            let allowed = st.kernel.authorize_dispatch(&principal, &id).await;
            (session, past, rx, allowed)
        }
        None => match st.kernel.remote_dispatch_stream(&id) {
            Some((session, past, rx)) => {
                let allowed = st.kernel.authorize_session_read(&principal, &session).await;
                (session, past, rx, allowed)
            }
            None => {
                return error_response(
                    "",
                    ErrorCode::NotFound,
                    &format!(
                        "dispatch {id:?} is not known to this daemon (nor seen from another node)"
                    ),
                );
            }
        },
    };
    if let Err(e) = allowed {
        return error_response("", e.code, &format!("{} (session {session})", e.message));
    }
    // Replay what already happened, then follow; end right after `done`.
    let events = stream::unfold(
        (past.into_iter(), rx, false),
        |(mut past, mut rx, finished)| async move {
            if finished {
                return None;
            }
            let e = match past.next() {
                Some(e) => e,
                None => loop {
                    match rx.recv().await {
                        Ok(e) => break e,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                },
            };
            let done = e.event == "done";
            Some((e, (past, rx, done)))
        },
    );
    let stopped = {
        let k = st.kernel.clone();
        async move { k.stopped().await }
    };
    let events = events
        .map(|e| {
            let data = serde_json::to_string(&e.data).unwrap_or_default();
            Ok::<_, Infallible>(
                SseEvent::default()
                    .id(e.seq.to_string())
                    .event(e.event)
                    .data(data),
            )
        })
        .take_until(Box::pin(stopped));
    Sse::new(events)
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text("keepalive"),
        )
        .into_response()
}
