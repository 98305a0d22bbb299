//! `aos bench --only console`: the reads the web console makes, at the
//! scale the issue names — a page of the session list among 10 000 sessions
//! (first, deep by cursor, a title search that matches one), and one history
//! chunk (50 messages) from the middle of a 10 000-message session.

use super::{call, percentile, us};
use crate::Result;
use aos_kernel::Kernel;
use aos_types::{IdKind, new_id};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SESSIONS: usize = 10_000;

/// The console's figures on `k` (a fresh kernel), `rounds` samples each.
pub(super) async fn figures(k: &Kernel, rounds: usize) -> Result<Value> {
    let sid = super::new_session(k).await?;
    let template = k.store().session_get(&sid).await?;
    for i in 0..SESSIONS {
        let mut s = template.clone();
        s.session_id = new_id(IdKind::Session);
        s.title = Some(format!("session number {i}"));
        k.store().session_insert(&s).await?;
    }
    let cursor = call(
        k,
        json!({"op": "session.list", "order": "desc", "limit": 1000}),
    )
    .await?;
    let deep = cursor["nextCursor"].clone();
    let page = json!({"op": "session.list", "order": "desc", "limit": 50});
    let deep_page = json!({"op": "session.list", "order": "desc", "limit": 50, "cursor": deep});
    let search =
        json!({"op": "session.list", "order": "desc", "limit": 50, "search": "NUMBER 4242"});
    let found = call(k, search.clone()).await?;
    if found["sessions"].as_array().map(Vec::len) != Some(1) {
        return Err(fail!("the search found {found}, not one session"));
    }
    let history = long_session(k).await?;
    let chunk = json!({"op": "session.history.list", "sessionId": history, "fromSeq": 5001, "toSeq": 5050, "limit": 50});
    let first = time(k, &page, rounds).await?;
    let searched = time(k, &search, rounds).await?;
    Ok(json!({
        "sessions": SESSIONS,
        "listPageUs": us(first),
        "listDeepPageUs": us(time(k, &deep_page, rounds).await?),
        "listSearchUs": us(searched),
        "searchVsPage": (searched.as_secs_f64() / first.as_secs_f64() * 100.0).round() / 100.0,
        "historyChunkUs": us(time(k, &chunk, rounds).await?),
    }))
}

/// A session of 10 000 short messages; its id.
async fn long_session(k: &Kernel) -> Result<String> {
    let sid = super::new_session(k).await?;
    for b in 0..100 {
        let batch = (0..100)
            .map(|i| aos_store::NewMessage {
                role: aos_types::Role::User,
                parts: vec![aos_types::Part::text(format!(
                    "line number {}.",
                    b * 100 + i
                ))],
                origin: aos_types::Origin::Human,
                extra: Default::default(),
            })
            .collect();
        k.store().append(&sid, None, batch).await?;
    }
    Ok(sid)
}

/// The median time of `rounds` runs of the syscall `req`.
async fn time(k: &Kernel, req: &Value, rounds: usize) -> Result<Duration> {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        std::hint::black_box(call(k, req.clone()).await?);
        times.push(t.elapsed());
    }
    Ok(percentile(times, 0.5))
}
