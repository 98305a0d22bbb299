//! Prometheus metrics: syscall counts by op and outcome, and latency
//! histograms by op, rendered in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Histogram bucket upper bounds, seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

#[derive(Debug, Default)]
struct OpStats {
    by_code: BTreeMap<String, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_s: f64,
}

/// The registry.
#[derive(Debug, Default)]
pub struct Metrics {
    ops: Mutex<BTreeMap<String, OpStats>>,
    http_requests: Mutex<BTreeMap<(String, u16), u64>>,
}

impl Metrics {
    /// Records one syscall.
    pub fn syscall(&self, op: &str, code: &str, elapsed: Duration) {
        let op = if aos_types::syscall_info(op).is_some() {
            op
        } else {
            "unknown"
        };
        let Ok(mut ops) = self.ops.lock() else { return };
        let s = ops.entry(op.to_string()).or_default();
        *s.by_code.entry(code.to_string()).or_default() += 1;
        let secs = elapsed.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
        s.count += 1;
        s.sum_s += secs;
    }

    /// Records one HTTP request by route and status.
    pub fn http(&self, route: &str, status: u16) {
        if let Ok(mut m) = self.http_requests.lock() {
            *m.entry((route.to_string(), status)).or_default() += 1;
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP aos_syscalls_total Syscalls handled, by op and result code.\n# TYPE aos_syscalls_total counter\n");
        let ops = match self.ops.lock() {
            Ok(o) => o,
            Err(p) => p.into_inner(),
        };
        for (op, s) in ops.iter() {
            for (code, n) in &s.by_code {
                let _ = writeln!(out, "aos_syscalls_total{{op=\"{op}\",code=\"{code}\"}} {n}");
            }
        }
        out.push_str("# HELP aos_syscall_duration_seconds Syscall latency, by op.\n# TYPE aos_syscall_duration_seconds histogram\n");
        for (op, s) in ops.iter() {
            for (b, n) in BUCKETS.iter().zip(s.buckets) {
                let _ = writeln!(
                    out,
                    "aos_syscall_duration_seconds_bucket{{op=\"{op}\",le=\"{b}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "aos_syscall_duration_seconds_bucket{{op=\"{op}\",le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "aos_syscall_duration_seconds_sum{{op=\"{op}\"}} {}",
                s.sum_s
            );
            let _ = writeln!(
                out,
                "aos_syscall_duration_seconds_count{{op=\"{op}\"}} {}",
                s.count
            );
        }
        drop(ops);
        out.push_str("# HELP aos_http_requests_total HTTP requests, by route and status.\n# TYPE aos_http_requests_total counter\n");
        if let Ok(m) = self.http_requests.lock() {
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "aos_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_buckets() {
        let m = Metrics::default();
        m.syscall("agent.get", "ok", Duration::from_micros(300));
        m.syscall("agent.get", "not_found", Duration::from_millis(2));
        m.syscall("no.such", "op.unknown", Duration::from_micros(1));
        let text = m.render();
        assert!(text.contains("aos_syscalls_total{op=\"agent.get\",code=\"ok\"} 1"));
        assert!(text.contains("aos_syscalls_total{op=\"unknown\",code=\"op.unknown\"} 1"));
        assert!(
            text.contains("aos_syscall_duration_seconds_bucket{op=\"agent.get\",le=\"0.0005\"} 1")
        );
        assert!(text.contains("aos_syscall_duration_seconds_count{op=\"agent.get\"} 2"));
    }
}
