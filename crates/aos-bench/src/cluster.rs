//! Two daemons of the real binary on one PostgreSQL database (issue 23):
//! how long an event committed on one node takes to reach another node's
//! `/v1/events` (against the same node's, side by side), one-turn dispatches
//! per second on one node and on two, and how long after `kill -9` of the
//! node running a dispatch another node has taken the session over (against
//! the lease TTL). Needs `AOS_BENCH_PG_URL` (or
//! `AOS_TEST_PG_URL`): a server where it may create a throw-away database.

use crate::operator::Daemon;
use crate::{Result, ms};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The lease TTL the nodes run with.
const TTL_MS: u64 = 1_500;

/// The server URL to use, if one is set.
pub fn server_url() -> Option<String> {
    std::env::var("AOS_BENCH_PG_URL")
        .or_else(|_| std::env::var("AOS_TEST_PG_URL"))
        .ok()
}

/// `cluster`: cross-node event latency and takeover time.
pub async fn figures(tmp: &Path, skills: &Path, samples: usize) -> Result<Value> {
    let server = server_url()
        .ok_or_else(|| fail!("`cluster` needs AOS_BENCH_PG_URL=postgres://… (a server where it may create a database)"))?;
    let name = format!(
        "aos_bench_{}_{}",
        std::process::id(),
        aos_types::now().replace(|c: char| !c.is_ascii_digit(), "")
    );
    let db = database(&server, &name, "CREATE").await?;
    let llm = aos_llm_script::ScriptedLlm::start(vec![]).await;
    let (tmp, skills, url) = (tmp.to_path_buf(), skills.to_path_buf(), llm.url());
    let push = {
        let llm = llm.clone();
        move |r: Vec<aos_llm_script::Reply>| llm.push(r)
    };
    let figures =
        tokio::task::spawn_blocking(move || measure(&tmp, &skills, &db, &url, samples, push))
            .await
            .map_err(|e| fail!("{e}"));
    // The daemons are gone (dropped in `measure`): the database goes too.
    database(&server, &name, "DROP").await?;
    figures?
}

/// Creates (`CREATE`) or drops (`DROP`) database `name` on the server of
/// `url`; the URL of that database.
async fn database(url: &str, name: &str, verb: &str) -> Result<String> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| fail!("cannot reach {url}: {e}"))?;
    let sql = match verb {
        "DROP" => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        _ => format!("CREATE DATABASE {name}"),
    };
    sqlx::query(&sql)
        .execute(&mut c)
        .await
        .map_err(|e| fail!("{verb} DATABASE {name}: {e}"))?;
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let root = base.rsplit_once('/').map_or(base, |(r, _)| r);
    Ok(match query {
        "" => format!("{root}/{name}"),
        q => format!("{root}/{name}?{q}"),
    })
}

fn measure(
    tmp: &Path,
    skills: &Path,
    db: &str,
    llm: &str,
    samples: usize,
    push: impl Fn(Vec<aos_llm_script::Reply>),
) -> Result<Value> {
    let ttl = TTL_MS.to_string();
    let env = [
        ("AOS_LLM_BASE_URL", llm),
        ("AOS_LEASE_TTL_MS", ttl.as_str()),
    ];
    let node = |name: &str| {
        let args = ["--db", db];
        let env = [env[0], env[1], ("AOS_NODE_ID", name)];
        Daemon::launch(&tmp.join(format!("cluster-{name}")), skills, &args, &env).map(|(d, _)| d)
    };
    let (a, b) = (node("a")?, node("b")?);
    let agent = a.call(json!({ "op": "agent.create" }))?["agentId"].clone();
    let sid = a.call(json!({ "op": "session.create", "agentId": agent }))?["sessionId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let same = event_latencies(&a, &a, &sid, samples)?;
    let cross = event_latencies(&a, &b, &sid, samples)?;
    // A multiple of the 8 sessions, so every scripted answer is used.
    let dispatches = (samples / 4).max(16) / 8 * 8;
    push(vec![aos_llm_script::Reply::text("ok"); 2 * dispatches]);
    let one = turns_per_sec(&[&a], &agent, dispatches)?;
    let two = turns_per_sec(&[&a, &b], &agent, dispatches)?;
    let takeover = takeover_time(&a, &b, &sid, push)?;
    let pct = |v: &[Duration], p: f64| ms(crate::percentile(v.to_vec(), p));
    Ok(json!({
        "samples": samples,
        "crossNodeEventP50Ms": pct(&cross, 0.5),
        "crossNodeEventP99Ms": pct(&cross, 0.99),
        "sameNodeEventP50Ms": pct(&same, 0.5),
        "sameNodeEventP99Ms": pct(&same, 0.99),
        "aimCrossNodeEventP99Ms": 20,
        "turnsPerSecOneNode": one.round(),
        "turnsPerSecTwoNodes": two.round(),
        "twoOverOne": (two / one * 100.0).round() / 100.0,
        "takeoverMs": ms(takeover),
        "leaseTtlMs": TTL_MS,
        "aimTakeoverMs": TTL_MS + 1_000,
    }))
}

/// One-turn dispatches (the scripted model answers at once) on 8 sessions
/// at a time, spread over `nodes`; turns per second.
fn turns_per_sec(nodes: &[&Daemon], agent: &Value, dispatches: usize) -> Result<f64> {
    const SESSIONS: usize = 8;
    let mut sessions = Vec::new();
    for i in 0..SESSIONS {
        let d = nodes[i % nodes.len()];
        let s = d.call(json!({ "op": "session.create", "agentId": agent }))?;
        sessions.push((d, s["sessionId"].as_str().unwrap_or_default().to_string()));
    }
    let started = Instant::now();
    std::thread::scope(|scope| {
        let runs: Vec<_> = sessions
            .iter()
            .map(|(d, sid)| {
                scope.spawn(move || -> Result<()> {
                    for _ in 0..dispatches / SESSIONS {
                        let msg = json!({ "role": "user", "content": "go" });
                        let r = d.call(json!({ "op": "session.dispatch", "sessionId": sid, "message": msg }))?;
                        d.call(json!({ "op": "session.wait", "dispatchId": r["dispatchId"], "timeoutMs": 30_000 }))?;
                    }
                    Ok(())
                })
            })
            .collect();
        runs.into_iter()
            .map(|h| h.join().map_err(|_| fail!("a dispatch thread panicked"))?)
            .collect::<Result<Vec<()>>>()
    })?;
    let done = (dispatches / SESSIONS * SESSIONS) as f64;
    Ok(done / started.elapsed().as_secs_f64())
}

/// Appends `samples` messages on `writer`, each timed from the append's
/// request to its `context.ingest` event on `reader`'s stream (an upper
/// bound of commit → visible: it includes the append itself, whose answer
/// waits for the event to be in the cluster's log).
fn event_latencies(
    writer: &Daemon,
    reader: &Daemon,
    sid: &str,
    samples: usize,
) -> Result<Vec<Duration>> {
    let lines = sse(reader, sid)?;
    let mut out = Vec::with_capacity(samples);
    for i in 0..samples {
        let marker = format!("bench-marker-{}-{i}", reader.addr);
        let msg = json!({ "role": "user", "parts": [{ "type": "text", "text": marker }] });
        let sent = Instant::now();
        writer.call(json!({ "op": "session.append", "sessionId": sid, "message": msg }))?;
        loop {
            let (at, line) = lines
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| fail!("event {i} did not arrive within 10 s"))?;
            if line.contains(&marker) {
                out.push(at.saturating_duration_since(sent));
                break;
            }
        }
    }
    Ok(out)
}

/// The `data:` lines of `d`'s `/v1/events` for session `sid`, each with the
/// instant it was read, from a thread of their own.
fn sse(d: &Daemon, sid: &str) -> Result<mpsc::Receiver<(Instant, String)>> {
    let mut s = TcpStream::connect(&d.addr)?;
    write!(
        s,
        "GET /v1/events?sessionId={sid} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n\r\n",
        d.addr,
        d.token()
    )?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("data:") && tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// `a` runs a long command in `sid` and is killed; the time until `b` shows
/// the session taken over (idle again, closed as `node lost`).
fn takeover_time(
    a: &Daemon,
    b: &Daemon,
    sid: &str,
    push: impl Fn(Vec<aos_llm_script::Reply>),
) -> Result<Duration> {
    push(vec![aos_llm_script::Reply::bash("c1", "sleep 30")]);
    a.call(json!({ "op": "session.dispatch", "sessionId": sid, "message": { "role": "user", "content": "run" } }))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !history_has(a, sid, "c1")? {
        if Instant::now() > deadline {
            return Err(fail!("the command did not start on node a"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed = Instant::now();
    let _ = std::process::Command::new("kill")
        .args(["-9", &a.child.id().to_string()])
        .status();
    loop {
        let s = b.call(json!({ "op": "session.get", "sessionId": sid }))?;
        if s["phase"] == "idle" {
            return Ok(killed.elapsed());
        }
        if killed.elapsed() > Duration::from_millis(TTL_MS * 10) {
            return Err(fail!("node b did not take the session over: {s}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn history_has(d: &Daemon, sid: &str, call: &str) -> Result<bool> {
    let h = d.call(json!({ "op": "session.history.list", "sessionId": sid, "limit": 1000 }))?;
    Ok(h["messages"]
        .to_string()
        .contains(&format!("\"toolCallId\":\"{call}\"")))
}
