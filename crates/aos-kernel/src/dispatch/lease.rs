//! Session leases: the single-writer guard of a dispatch or a compaction
//! (`kernel.md` §2.1). A lease has a TTL, is renewed while its holder runs,
//! and is void once expired — any node may then clear it.

use crate::kernel::Kernel;
use crate::params::StoreResult;
use aos_store::StoreError;
use aos_types::{IdKind, Scb, SessionPhase, SyscallError, format_time, new_id};
use std::time::Duration;

/// Takes the session's lease for `phase` (`dispatched` or `compacting`):
/// lease id, holder, expiry.
pub(super) async fn take(
    k: &Kernel,
    session_id: &str,
    phase: SessionPhase,
) -> Result<String, SyscallError> {
    let lease = new_id(IdKind::Lease);
    let ttl = Duration::from_millis(k.config().lease_ttl_ms);
    let (id, holder) = (lease.clone(), k.node_id().to_string());
    let now = aos_types::now();
    k.store()
        .session_update(session_id, None, move |s| {
            let live = matches!(s.phase, SessionPhase::Dispatched | SessionPhase::Compacting)
                && s.lease_expires_at
                    .as_deref()
                    .is_some_and(|t| t > now.as_str());
            if live {
                return Err(StoreError::Rejected {
                    code: "session.busy",
                    message: format!(
                        "session {} is {}; send with queue: true to wait in line",
                        s.session_id,
                        if s.phase == SessionPhase::Compacting {
                            "compacting"
                        } else {
                            "running a dispatch"
                        }
                    ),
                });
            }
            s.phase = phase;
            s.lease_id = Some(id);
            s.lease_holder = Some(holder);
            s.lease_expires_at = Some(expiry(ttl));
            Ok(())
        })
        .await
        .sys()?;
    Ok(lease)
}

fn expiry(ttl: Duration) -> String {
    format_time(chrono::Utc::now() + chrono::Duration::milliseconds(ttl.as_millis() as i64))
}

/// Releases the lease if it is still ours; returns the session after. When
/// the store refuses (a full disk), the release is retried in the background
/// until it lands — closing what the dispatch left open and starting the
/// session's queued messages — so no session stays stuck for the lease TTL.
pub(super) async fn release(k: &Kernel, session_id: &str, lease: &str) -> Option<Scb> {
    let released = try_release(k, session_id, lease).await;
    if released.is_none() {
        retry_release(k, session_id, lease);
    }
    released
}

/// Ends the lease of a dispatch that stopped because the store failed (a
/// full disk): the commands it left open get their honest result and the
/// session its interrupt fact before it is freed — at once if the store takes
/// the writes now, else retried until it does. (On PostgreSQL a small write
/// can land while a large one is refused, so the session may be closable at
/// once.)
pub(super) async fn close_after_store_failure(k: &Kernel, session_id: &str, lease: &str) {
    if let Ok(scb) = k.store().session_get(session_id).await
        && scb.lease_id.as_deref() == Some(lease)
        && crate::recovery::close_stranded(k, scb, &STORE_FAILED)
            .await
            .is_ok()
    {
        return;
    }
    retry_release(k, session_id, lease);
}

async fn try_release(k: &Kernel, session_id: &str, lease: &str) -> Option<Scb> {
    let lease = lease.to_string();
    let r = k
        .store()
        .session_update(session_id, None, move |s| {
            if s.lease_id.as_deref() == Some(lease.as_str()) {
                s.phase = SessionPhase::Idle;
                s.lease_id = None;
                s.lease_holder = None;
                s.lease_expires_at = None;
            }
            Ok(())
        })
        .await;
    r.inspect_err(|e| tracing::error!(session = session_id, error = %e, "cannot release the lease"))
        .ok()
}

/// A failure while the store failed, written into the session once it can be.
const STORE_FAILED: crate::recovery::Stranded<'static> = crate::recovery::Stranded {
    reason: "store failure",
    open_call: "the store failed while this command ran; its output was not recorded",
};

/// Retries a failed release with backoff (100 ms doubling to 5 s) while the
/// lease is still ours: closes the session honestly, frees it, starts what
/// was queued.
fn retry_release(k: &Kernel, session_id: &str, lease: &str) {
    let (k, session_id, lease) = (k.clone(), session_id.to_string(), lease.to_string());
    tokio::spawn(async move {
        let mut wait = std::time::Duration::from_millis(100);
        loop {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(std::time::Duration::from_secs(5));
            let Ok(scb) = k.store().session_get(&session_id).await else {
                continue;
            };
            if scb.lease_id.as_deref() != Some(lease.as_str()) || k.is_stopping() {
                return;
            }
            if crate::recovery::close_stranded(&k, scb, &STORE_FAILED)
                .await
                .is_ok()
            {
                tracing::info!(session = %session_id, "lease released after a store failure");
                super::inbox::next(&k, &session_id).await;
                return;
            }
        }
    });
}

/// Moves a session whose lease `lease` we hold to `phase` (compaction inside
/// a dispatch: `dispatched` → `compacting` → `dispatched`).
pub(super) async fn set_phase(
    k: &Kernel,
    session_id: &str,
    lease: &str,
    phase: SessionPhase,
) -> Result<Scb, SyscallError> {
    let lease = lease.to_string();
    k.store()
        .session_update(session_id, None, move |s| {
            if s.lease_id.as_deref() != Some(lease.as_str()) {
                return Err(StoreError::Rejected {
                    code: "lease.expired",
                    message: format!("the lease on session {} was lost", s.session_id),
                });
            }
            s.phase = phase;
            Ok(())
        })
        .await
        .sys()
}

/// Renews the lease every TTL/3 until the returned handle is dropped/aborted.
pub(super) fn renew(k: &Kernel, session_id: &str, lease: &str) -> tokio::task::JoinHandle<()> {
    let (k, session_id, lease) = (k.clone(), session_id.to_string(), lease.to_string());
    let ttl = Duration::from_millis(k.config().lease_ttl_ms);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(ttl / 3).await;
            let l = lease.clone();
            let r = k
                .store()
                .session_update(&session_id, None, move |s| {
                    if s.lease_id.as_deref() == Some(l.as_str()) {
                        s.lease_expires_at = Some(expiry(ttl));
                    }
                    Ok(())
                })
                .await;
            if let Err(e) = r {
                tracing::warn!(session = %session_id, error = %e, "lease renewal failed");
            }
        }
    })
}
