//! Takeover (issue 23): a session whose lease expired while it was
//! dispatched or compacting — its holder died, was paused or cut off from
//! the store — is closed by the first node that sees it, as a restart closes
//! its own: the open tool calls get an honest unknown-outcome result, the
//! interrupt fact says `node lost`, the session is freed. Every node sweeps
//! every third of the lease TTL (at most 500 ms), so a session is taken
//! over within TTL + one sweep. The same sweep adopts the queued messages of
//! nodes that are gone (lost or stopped, by their heartbeats) and starts this
//! node's queued messages whose session another node freed (one inbox for
//! the cluster).
//!
//! Taking over is itself a lease: the sweep claims the expired lease with a
//! new one (only if it is still the expired one), and every write it makes
//! is fenced by it, so two nodes never close a session twice and the old
//! holder, should it wake, cannot write (`lease.expired`).

use crate::Kernel;
use crate::params::StoreResult;
use crate::recovery::{NODE_LOST, close_stranded};
use aos_store::StoreError;
use aos_types::{IdKind, Scb, SyscallError, format_time, new_id, now};
use std::time::Duration;

/// The sweep's period for a lease TTL: a third of it, 50 to 500 ms.
fn period(ttl_ms: u64) -> Duration {
    Duration::from_millis((ttl_ms / 3).clamp(50, 500))
}

/// Starts this node's sweep; it ends with the kernel.
pub(crate) fn spawn(k: &Kernel) {
    k.every(period(k.config().lease_ttl_ms), |k| async move {
        sweep(&k).await;
        adopt_from_the_gone(&k).await;
        crate::dispatch::start_freed(&k).await;
    });
}

/// Closes every session whose lease expired (but this node's own running
/// dispatches, whose renewal is merely late: another node will take those).
async fn sweep(k: &Kernel) {
    let expired = match k.store().expired_leases(&now()).await {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!(error = %e, "takeover sweep: cannot list expired leases");
            return;
        }
    };
    for scb in expired {
        let ours = scb.lease_holder.as_deref() == Some(k.node_id());
        if ours && k.dispatches().running_in(&scb.session_id).is_some() {
            continue;
        }
        let (sid, holder) = (scb.session_id.clone(), scb.lease_holder.clone());
        let claimed = match claim(k, scb).await {
            Ok(s) => s,
            Err(_) => continue, // renewed meanwhile, or another node was first
        };
        match close_stranded(k, claimed, &NODE_LOST).await {
            Ok(()) => {
                tracing::info!(session = %sid, from = ?holder, "took over a session whose lease expired")
            }
            Err(e) => {
                tracing::warn!(session = %sid, error = %e, "takeover: cannot close the session")
            }
        }
        crate::dispatch::start_freed(k).await;
    }
}

/// Adopts the queued messages of every other node that is lost (three
/// heartbeats missed) or stopped, so they do not wait for its return.
async fn adopt_from_the_gone(k: &Kernel) {
    let Ok(nodes) = k.store().nodes().await else {
        return;
    };
    let at = chrono::Utc::now();
    for n in nodes {
        if n.node_id != k.node_id() && crate::nodes::state(&n, at) != "alive" {
            crate::dispatch::adopt(k, &n.node_id).await;
        }
    }
}

/// Replaces `scb`'s expired lease with one of this node's, if it is still
/// that lease and still expired.
async fn claim(k: &Kernel, scb: Scb) -> Result<Scb, SyscallError> {
    let old = scb.lease_id.clone();
    let lease = new_id(IdKind::Lease);
    let ttl = chrono::Duration::milliseconds(k.config().lease_ttl_ms as i64);
    let holder = k.node_id().to_string();
    let at = now();
    k.store()
        .session_update(&scb.session_id, None, move |s| {
            let expired = s
                .lease_expires_at
                .as_deref()
                .is_some_and(|t| t < at.as_str());
            if s.lease_id != old || !expired {
                return Err(StoreError::Rejected {
                    code: "session.busy",
                    message: "the lease was renewed or taken over meanwhile".into(),
                });
            }
            s.lease_id = Some(lease);
            s.lease_holder = Some(holder);
            s.lease_expires_at = Some(format_time(chrono::Utc::now() + ttl));
            Ok(())
        })
        .await
        .sys()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_runs_thrice_per_ttl_within_bounds() {
        assert_eq!(period(1_500), Duration::from_millis(500));
        assert_eq!(period(900), Duration::from_millis(300));
        assert_eq!(period(60), Duration::from_millis(50));
        assert_eq!(period(1_800_000), Duration::from_millis(500));
    }
}
