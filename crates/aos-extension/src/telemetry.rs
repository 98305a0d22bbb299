//! Counters and histograms of what the kernel, its hooks and its runner do,
//! rendered for `/metrics` in the Prometheus text format. The hot paths
//! touch atomics only; what is labelled by name (a dispatch's status, a
//! hook's rejection or failure) is rare and goes through a lock.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bucket upper bounds, seconds: 100 µs to 60 s.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0,
];

/// Bucket upper bounds of a hook call, seconds: 1 µs (a WASM admission
/// check) to 5 s (a deadline).
const HOOK_BUCKETS: [f64; 14] = [
    0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.0001, 0.00025, 0.001, 0.0025, 0.01, 0.05,
    0.25, 1.0, 5.0,
];

/// A latency histogram on atomics.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64; 14],
    buckets: [AtomicU64; 14],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram::with_bounds(&BUCKETS)
    }
}

impl Histogram {
    fn with_bounds(bounds: &'static [f64; 14]) -> Histogram {
        Histogram {
            bounds,
            buckets: Default::default(),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        self.render_series(out, name, "");
    }

    /// The series of one histogram; `labels` (`a="b",`) precede `le`.
    fn render_series(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (b, n) in self.bounds.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let labels = match labels.trim_end_matches(',') {
            "" => String::new(),
            l => format!("{{{l}}}"),
        };
        let _ = writeln!(
            out,
            "{name}_sum{labels} {sum}\n{name}_count{labels} {count}"
        );
    }
}

/// The calls into one skill's handlers of one hook, and how long they took
/// (every instance of the skill, including those since stopped).
#[derive(Debug)]
pub struct HookStats {
    latency: Histogram,
}

impl Default for HookStats {
    fn default() -> HookStats {
        HookStats {
            latency: Histogram::with_bounds(&HOOK_BUCKETS),
        }
    }
}

impl HookStats {
    /// Records one call that took `d`.
    pub fn observe(&self, d: Duration) {
        self.latency.observe(d);
    }
}

/// Everything counted.
#[derive(Debug, Default)]
pub struct Telemetry {
    dispatches: Mutex<BTreeMap<String, u64>>,
    turns: AtomicU64,
    llm_calls: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    llm_latency: Histogram,
    tool_ok: AtomicU64,
    tool_failed: AtomicU64,
    tool_duration: Histogram,
    hook_outcomes: Mutex<BTreeMap<(String, String, &'static str), u64>>,
    hook_calls: Mutex<BTreeMap<(String, String), Arc<HookStats>>>,
    appends: Histogram,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    if let Ok(mut m) = map.lock() {
        *m.entry(key).or_default() += 1;
    }
}

impl Telemetry {
    /// A dispatch ended with `status`.
    pub fn dispatch_ended(&self, status: &str) {
        bump(&self.dispatches, status.to_string());
    }

    /// A turn of the loop ended.
    pub fn turn(&self) {
        self.turns.fetch_add(1, Ordering::Relaxed);
    }

    /// A model call answered.
    pub fn llm_call(&self, latency: Duration, prompt_tokens: u64, completion_tokens: u64) {
        self.llm_calls.fetch_add(1, Ordering::Relaxed);
        self.prompt_tokens
            .fetch_add(prompt_tokens, Ordering::Relaxed);
        self.completion_tokens
            .fetch_add(completion_tokens, Ordering::Relaxed);
        self.llm_latency.observe(latency);
    }

    /// A command ran (`ok`: exit status 0).
    pub fn tool_call(&self, duration: Duration, ok: bool) {
        let n = if ok { &self.tool_ok } else { &self.tool_failed };
        n.fetch_add(1, Ordering::Relaxed);
        self.tool_duration.observe(duration);
    }

    /// A hook handler of `skill` rejected (`rejected`) or failed (`failed`).
    pub fn hook_outcome(&self, skill: &str, hook: &str, outcome: &'static str) {
        bump(
            &self.hook_outcomes,
            (skill.to_string(), hook.to_string(), outcome),
        );
    }

    /// The counters of `skill`'s handlers of `hook` (made on first use; a
    /// service entry keeps the handle, so a call touches atomics only).
    pub fn hook_stats(&self, skill: &str, hook: &str) -> Arc<HookStats> {
        match self.hook_calls.lock() {
            Ok(mut m) => m
                .entry((skill.to_string(), hook.to_string()))
                .or_default()
                .clone(),
            Err(_) => Arc::default(),
        }
    }

    /// A SessionHistory append took `d`.
    pub fn append(&self, d: Duration) {
        self.appends.observe(d);
    }

    /// The text exposition of everything counted.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP aos_dispatches_total Dispatches ended, by status.\n# TYPE aos_dispatches_total counter\n");
        if let Ok(m) = self.dispatches.lock() {
            for (status, n) in m.iter() {
                let _ = writeln!(out, "aos_dispatches_total{{status=\"{status}\"}} {n}");
            }
        }
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        };
        counter(
            out,
            "aos_turns_total",
            "Turns of the ReAct loop.",
            &self.turns,
        );
        counter(
            out,
            "aos_llm_calls_total",
            "Model calls answered.",
            &self.llm_calls,
        );
        out.push_str("# HELP aos_llm_tokens_total Tokens of answered model calls, by kind.\n# TYPE aos_llm_tokens_total counter\n");
        let _ = writeln!(
            out,
            "aos_llm_tokens_total{{kind=\"prompt\"}} {}\naos_llm_tokens_total{{kind=\"completion\"}} {}",
            self.prompt_tokens.load(Ordering::Relaxed),
            self.completion_tokens.load(Ordering::Relaxed)
        );
        self.llm_latency.render(
            out,
            "aos_llm_call_duration_seconds",
            "Model call latency (the whole streamed answer).",
        );
        out.push_str("# HELP aos_tool_calls_total Commands run, by exit (ok: status 0).\n# TYPE aos_tool_calls_total counter\n");
        let _ = writeln!(
            out,
            "aos_tool_calls_total{{exit=\"ok\"}} {}\naos_tool_calls_total{{exit=\"error\"}} {}",
            self.tool_ok.load(Ordering::Relaxed),
            self.tool_failed.load(Ordering::Relaxed)
        );
        self.tool_duration.render(
            out,
            "aos_tool_duration_seconds",
            "Command duration, from spawn to exit.",
        );
        out.push_str("# HELP aos_hook_outcomes_total Hook handlers that rejected or failed, by skill and hook.\n# TYPE aos_hook_outcomes_total counter\n");
        if let Ok(m) = self.hook_outcomes.lock() {
            for ((skill, hook, outcome), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "aos_hook_outcomes_total{{skill=\"{skill}\",hook=\"{hook}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP aos_hook_call_duration_seconds Calls into hook handlers (admission, transform, event), by skill and hook, from the call to its answer.\n# TYPE aos_hook_call_duration_seconds histogram\n");
        if let Ok(m) = self.hook_calls.lock() {
            for ((skill, hook), stats) in m.iter() {
                let labels = format!("skill=\"{skill}\",hook=\"{hook}\",");
                stats
                    .latency
                    .render_series(out, "aos_hook_call_duration_seconds", &labels);
            }
        }
        self.appends.render(
            out,
            "aos_store_append_duration_seconds",
            "SessionHistory appends (hooks excluded), as the store took them.",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_cumulative_buckets_render() {
        let t = Telemetry::default();
        t.dispatch_ended("completed");
        t.dispatch_ended("completed");
        t.dispatch_ended("failed");
        t.llm_call(Duration::from_millis(20), 100, 7);
        t.tool_call(Duration::from_micros(300), true);
        t.tool_call(Duration::from_secs(2), false);
        t.hook_outcome("my-guard", "tool.before", "rejected");
        t.hook_stats("my-guard", "tool.before")
            .observe(Duration::from_micros(2));
        t.hook_stats("my-guard", "tool.before")
            .observe(Duration::from_millis(2));
        let mut out = String::new();
        t.render(&mut out);
        for line in [
            "aos_dispatches_total{status=\"completed\"} 2",
            "aos_dispatches_total{status=\"failed\"} 1",
            "aos_llm_tokens_total{kind=\"prompt\"} 100",
            "aos_llm_call_duration_seconds_bucket{le=\"0.025\"} 1",
            "aos_tool_calls_total{exit=\"error\"} 1",
            "aos_tool_duration_seconds_bucket{le=\"0.0005\"} 1",
            "aos_tool_duration_seconds_bucket{le=\"5\"} 2",
            "aos_tool_duration_seconds_count 2",
            "aos_hook_outcomes_total{skill=\"my-guard\",hook=\"tool.before\",outcome=\"rejected\"} 1",
            "aos_hook_call_duration_seconds_bucket{skill=\"my-guard\",hook=\"tool.before\",le=\"0.000001\"} 0",
            "aos_hook_call_duration_seconds_bucket{skill=\"my-guard\",hook=\"tool.before\",le=\"0.0000025\"} 1",
            "aos_hook_call_duration_seconds_bucket{skill=\"my-guard\",hook=\"tool.before\",le=\"0.0025\"} 2",
            "aos_hook_call_duration_seconds_count{skill=\"my-guard\",hook=\"tool.before\"} 2",
            "aos_hook_call_duration_seconds_sum{skill=\"my-guard\",hook=\"tool.before\"} 0.002002",
        ] {
            assert!(out.contains(line), "{line} in:\n{out}");
        }
    }
}
