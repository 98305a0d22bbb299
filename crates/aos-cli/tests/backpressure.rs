//! HTTP back-pressure in the real daemon (issue 18, finding 5): half-open
//! requests beyond the connection cap are answered 503 at once and hold no
//! descriptor; a request head that never completes is closed at the
//! header-read deadline; the daemon keeps serving after the flood.

mod common;

use common::Daemon;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A connection that sends half a request head and stalls.
fn half_open(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(b"POST /v1/syscall HTTP/1.1\r\nhost: x\r\ncontent-")
        .expect("write");
    s
}

#[test]
fn a_flood_of_half_open_requests_is_capped_and_timed_out() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let d = Daemon::launch_env(
        &home,
        None,
        &common::skill_roots(),
        &[
            ("AOS_MAX_CONNECTIONS", "16"),
            ("AOS_HEADER_TIMEOUT_MS", "1500"),
        ],
    );
    let addr = d.url.trim_start_matches("http://").to_string();
    let before = open_fds(d.child.id());
    let mut flood: Vec<TcpStream> = (0..16).map(|_| half_open(&addr)).collect();
    std::thread::sleep(Duration::from_millis(200));

    // Past the cap: 503 at once, and the daemon keeps no descriptor for it.
    for _ in 0..300 {
        flood.push(half_open(&addr));
    }
    let mut extra = half_open(&addr);
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut answer = String::new();
    let t = Instant::now();
    let _ = extra.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("too many connections"), "{answer}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let during = open_fds(d.child.id());
    assert!(
        during < before + 40,
        "{during} descriptors open during a flood of 317 (before: {before})"
    );

    // The stalled heads are closed at the deadline; then it serves again.
    std::thread::sleep(Duration::from_millis(2500));
    let mut first = flood.swap_remove(0);
    first
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut rest = Vec::new();
    let read = first.read_to_end(&mut rest);
    assert!(
        read.is_ok(),
        "a stalled head is closed by the daemon: {read:?} {rest:?}"
    );
    drop(flood);
    let r = ureq::get(&format!("{}/health", d.url)).call();
    assert!(r.is_ok(), "{r:?}");
    let (r, _) = d.call("system.get", serde_json::json!({}));
    assert_eq!(r["ok"], true);
}
