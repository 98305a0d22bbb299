//! The syscall entry point: the op table's check, authorization on the
//! resource, the router to the op handlers, and the RuntimeLog discipline
//! (commands and denials are logged, queries are not).

use crate::authz::{self, Scope};
use crate::kernel::OpResult;
use crate::{Kernel, Principal, ops};
use aos_store::NewLogEntry;
use aos_types::{ErrorCode, Request, Response, SyscallError, SyscallKind, syscall_info};
use serde_json::{Map, Value, json};
use tracing::Instrument;

impl Kernel {
    /// Executes one syscall for `principal`.
    pub async fn syscall(&self, principal: &Principal, req: Request) -> Response {
        let Request { op, mut params } = req;
        let ids = LogIds::from_params(&params);
        let span = tracing::info_span!(
            "syscall",
            op = %op,
            agent = ids.agent_id.as_deref().unwrap_or(""),
            session = ids.session_id.as_deref().unwrap_or(""),
        );
        async {
            let info = syscall_info(&op);
            let result = match info {
                None => Err(SyscallError::new(
                    ErrorCode::OpUnknown,
                    format!("unknown syscall {op:?}; see docs/syscalls.md for the list"),
                )),
                Some(_) if self.is_stopping() => Err(SyscallError::new(
                    ErrorCode::Unavailable,
                    "the daemon is stopping and accepts no new requests",
                )),
                Some(_) => match self.authorize(principal, &op, &mut params).await {
                    Ok(()) => ops::route(self, principal, &op, params).await,
                    Err(e) => Err(e),
                },
            };
            let denied = matches!(&result, Err(e) if e.code == ErrorCode::PermissionDenied);
            if denied || info.is_some_and(|i| i.kind == SyscallKind::Command) {
                self.log_command(principal, &op, &ids, &result).await;
            }
            match result {
                Ok(done) => Response::ok(op, done.revision, done.data),
                Err(e) => {
                    tracing::debug!(code = %e.code, message = %e.message, "syscall failed");
                    Response::err(op, e)
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn log_command(&self, p: &Principal, op: &str, ids: &LogIds, result: &OpResult) {
        let (level, agent_id, session_id, data) = match result {
            Ok(d) => (
                "info",
                d.agent_id.clone().or_else(|| ids.agent_id.clone()),
                d.session_id.clone().or_else(|| ids.session_id.clone()),
                d.revision.map(|r| json!({ "revision": r })),
            ),
            Err(e) => (
                "warn",
                ids.agent_id.clone(),
                ids.session_id.clone(),
                Some(json!({ "error": e })),
            ),
        };
        let (owner_type, owner_id) = p.log_owner();
        let entry = NewLogEntry {
            level,
            op: op.to_string(),
            owner_type: owner_type.to_string(),
            owner_id,
            agent_id,
            session_id,
            refs: None,
            data,
        };
        if let Err(e) = self.store().log_append(entry).await {
            tracing::error!(error = %e, op, "cannot write the RuntimeLog");
        }
    }

    /// Checks `op` for `p`: a service's grant lists the op (or its group), a
    /// session token calls only the ops the op table allows it (`SyscallInfo::session_token`), and what the op touches lies
    /// within the caller's scope ([`crate::authz`]); a list's filter may be
    /// narrowed to that scope.
    async fn authorize(
        &self,
        p: &Principal,
        op: &str,
        params: &mut Map<String, Value>,
    ) -> Result<(), SyscallError> {
        let (who, kind) = match p {
            Principal::Operator | Principal::Kernel => return Ok(()),
            Principal::Service(g) => {
                g.allows_op(op)?;
                (format!("skill {}", g.skill), "service")
            }
            Principal::Session { session_id, .. } => {
                if !aos_types::syscall_info(op).is_some_and(|s| s.session_token) {
                    return Err(SyscallError::new(
                        ErrorCode::PermissionDenied,
                        format!(
                            "the token of session {session_id} may not call {op} (operator only)"
                        ),
                    )
                    .with_details(json!({ "missing": op, "principal": "session" })));
                }
                (format!("the token of session {session_id}"), "session")
            }
        };
        let scope = Scope::of(p);
        let caller = authz::Caller {
            who,
            kind,
            scope: &scope,
        };
        authz::check(self, &caller, op, params).await
    }

    /// Whether `p` may read session `id` (a dispatch of it followed from
    /// another node).
    pub async fn authorize_session_read(
        &self,
        p: &Principal,
        id: &str,
    ) -> Result<(), SyscallError> {
        let mut params = Map::new();
        params.insert("sessionId".into(), Value::String(id.to_string()));
        self.authorize(p, "session.get", &mut params).await
    }

    /// Whether `p` may follow dispatch `id` (its stream): as `session.wait`.
    pub async fn authorize_dispatch(&self, p: &Principal, id: &str) -> Result<(), SyscallError> {
        let mut params = Map::new();
        params.insert("dispatchId".into(), Value::String(id.to_string()));
        self.authorize(p, "session.wait", &mut params).await
    }
}

/// Agent/session ids named by a request, for the RuntimeLog of failures.
struct LogIds {
    agent_id: Option<String>,
    session_id: Option<String>,
}

impl LogIds {
    fn from_params(p: &Map<String, Value>) -> LogIds {
        let get = |k: &str| {
            p.get(k)
                .and_then(Value::as_str)
                .filter(|s| aos_types::validate_id(s))
                .map(String::from)
        };
        LogIds {
            agent_id: get("agentId"),
            session_id: get("sessionId"),
        }
    }
}
