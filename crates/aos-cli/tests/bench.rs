//! `aos bench --quick --json`, the real binary: every section reports the
//! figures docs/performance.md and the README quote, as numbers. Speed is
//! not asserted here (a timed test fails on a busy machine, not on slow
//! code); the figures are recorded by hand in docs/performance.md. The
//! `hook` section needs the Rust UDS example beside the binary (a workspace
//! build); it is measured by every `aos bench` run recorded there.

use serde_json::Value;
use std::process::Command;

mod common;

use common::AOS;

fn bench(only: &str) -> (bool, Value) {
    let out = Command::new(AOS)
        .args(["bench", "--quick", "--json", "--only", only, "--skills"])
        .arg(aos_testkit::builtin_skills())
        .output()
        .expect("run aos bench");
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.success(), doc)
}

/// A positive number at `path` (a `/`-separated pointer).
fn figure(doc: &Value, path: &str) -> f64 {
    let v = doc.pointer(path).unwrap_or(&Value::Null);
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number in {doc}"));
    assert!(x > 0.0, "{path} = {x}");
    x
}

#[test]
fn the_turn_section_reports_overhead_and_throughput() {
    let (ok, doc) = bench("turn");
    assert!(ok, "{doc}");
    for f in ["totalUs", "llmUs", "bashUs", "turnsPerSec"] {
        figure(&doc, &format!("/data/turn/{f}"));
    }
    // The overhead is what is left of a turn: never negative, may round to 0.
    assert!(
        doc["data"]["turn"]["kernelOverheadUs"].as_f64().is_some(),
        "{doc}"
    );
    assert_eq!(doc["data"]["turn"]["parallelSessions"], 64);
    assert!(doc["data"].get("hook").is_none(), "only the asked section");
}

#[test]
fn the_other_sections_report_their_figures() {
    let (ok, doc) = bench("context");
    assert!(ok, "{doc}");
    for f in ["incrementalUs", "rebuild10kMs", "historyRead10kMs"] {
        figure(&doc, &format!("/data/context/{f}"));
    }
    let (ok, doc) = bench("store");
    assert!(ok, "{doc}");
    figure(&doc, "/data/store/sqlite/appendPerSec");
    figure(&doc, "/data/store/sqlite/batchAppendPerSec");
    let (ok, doc) = bench("wasm");
    assert!(ok, "{doc}");
    for f in ["instantiateUs", "loadColdMs", "loadWarmMs"] {
        figure(&doc, &format!("/data/wasm/{f}"));
    }
}

#[test]
fn the_console_section_reports_its_reads_at_ten_thousand() {
    let (ok, doc) = bench("console");
    assert!(ok, "{doc}");
    assert_eq!(doc["data"]["console"]["sessions"], 10_000);
    let page = figure(&doc, "/data/console/listPageUs");
    let search = figure(&doc, "/data/console/listSearchUs");
    let ratio = figure(&doc, "/data/console/searchVsPage");
    assert!((ratio - search / page).abs() < 0.02 + ratio * 0.01, "{doc}");
    for f in ["listDeepPageUs", "historyChunkUs"] {
        figure(&doc, &format!("/data/console/{f}"));
    }
}

#[test]
fn the_bash_section_reports_plain_and_sandboxed_spawns() {
    let (ok, doc) = bench("bash");
    assert!(ok, "{doc}");
    let plain = figure(&doc, "/data/bash/plainSpawnUs");
    let boxed = figure(&doc, "/data/bash/sandboxedSpawnUs");
    let ratio = figure(&doc, "/data/bash/ratio");
    assert!((ratio - boxed / plain).abs() < 0.02 + ratio * 0.01, "{doc}");
    assert_eq!(doc["data"]["bash"]["cgroup"], true, "{doc}");
}

#[test]
fn an_unknown_section_is_refused_by_name() {
    let (ok, doc) = bench("everything");
    assert!(!ok);
    let msg = doc["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("--only takes one of hook, wasm, store, context, bash, turn, console"),
        "{doc}"
    );
}
