//! The node registry (issue 23): each daemon writes a heartbeat to the store
//! (its id, URL, version, start) every third of the lease TTL, 200 ms to
//! 5 s; `system.nodes` lists the cluster's nodes as `alive`, `lost` (three
//! beats missed) or `stopped` (a clean stop). A node whose heartbeat the
//! store refuses is not ready: `/health` answers 503 until one lands.

use crate::Kernel;
use aos_store::NodeRecord;
use aos_types::now;
use std::time::Duration;

/// The heartbeat period for a lease TTL.
pub(crate) fn period(ttl_ms: u64) -> Duration {
    Duration::from_millis((ttl_ms / 3).clamp(200, 5_000))
}

/// This node's record as of now.
fn record(k: &Kernel) -> NodeRecord {
    NodeRecord {
        node_id: k.node_id().to_string(),
        url: k.api_url(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: k.started_at().to_string(),
        heartbeat_at: now(),
        period_ms: period(k.config().lease_ttl_ms).as_millis() as i64,
        stopped_at: None,
    }
}

/// How long a node that stopped beating stays listed (`lost` or `stopped`).
pub(crate) const FORGET_AFTER: chrono::Duration = chrono::Duration::hours(24);
/// How often a node forgets the long gone.
const FORGET_EVERY: Duration = Duration::from_secs(3_600);

/// Beats once now, then every period while the kernel lives; forgets the
/// nodes gone for [`FORGET_AFTER`] now and hourly (a node id per pod would
/// otherwise pile up).
pub(crate) async fn start(k: &Kernel) {
    beat(k).await;
    k.every(period(k.config().lease_ttl_ms), |k| async move {
        beat(&k).await
    });
    forget(k).await;
    k.every(FORGET_EVERY, |k| async move { forget(&k).await });
}

/// Forgets the nodes that last beat more than [`FORGET_AFTER`] ago.
async fn forget(k: &Kernel) {
    let before = aos_types::format_time(chrono::Utc::now() - FORGET_AFTER);
    match k.store().nodes_forget(&before).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(nodes = n, "forgot nodes gone for a day"),
        Err(e) => tracing::debug!(error = %e, "cannot forget gone nodes"),
    }
}

/// Writes this node's heartbeat; records whether it reached the store.
pub(crate) async fn beat(k: &Kernel) {
    let ok = match k.store().node_beat(&record(k)).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "heartbeat not written: this node reports not ready");
            false
        }
    };
    k.set_store_reachable(ok);
}

/// Marks this node stopped (a clean stop).
pub(crate) async fn stopped(k: &Kernel) {
    if let Err(e) = k.store().node_stopped(k.node_id()).await {
        tracing::warn!(error = %e, "cannot mark this node stopped");
    }
}

/// `alive`, `lost` or `stopped`, as of `at`.
pub(crate) fn state(n: &NodeRecord, at: chrono::DateTime<chrono::Utc>) -> &'static str {
    if n.stopped_at.is_some() {
        return "stopped";
    }
    let beat = chrono::DateTime::parse_from_rfc3339(&n.heartbeat_at).map(|t| t.to_utc());
    let missed = beat.map_or(true, |b| {
        at.signed_duration_since(b) > chrono::Duration::milliseconds(3 * n.period_ms)
    });
    if missed { "lost" } else { "alive" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(beat: &str, stopped: Option<&str>) -> NodeRecord {
        NodeRecord {
            node_id: "n".into(),
            url: String::new(),
            version: String::new(),
            started_at: String::new(),
            heartbeat_at: beat.into(),
            period_ms: 1_000,
            stopped_at: stopped.map(String::from),
        }
    }

    #[test]
    fn a_node_is_lost_after_three_missed_beats() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-03T10:00:10.000Z")
            .expect("time")
            .to_utc();
        assert_eq!(state(&node("2026-12-03T10:00:08.000Z", None), at), "alive");
        assert_eq!(state(&node("2026-12-03T10:00:06.000Z", None), at), "lost");
        assert_eq!(state(&node("garbage", None), at), "lost");
        let stopped = node("2026-12-03T10:00:09.000Z", Some("2026-12-03T10:00:09.500Z"));
        assert_eq!(state(&stopped, at), "stopped");
        assert_eq!(period(1_500), Duration::from_millis(500));
        assert_eq!(period(300), Duration::from_millis(200));
        assert_eq!(period(1_800_000), Duration::from_secs(5));
    }
}
