//! `my-guard`: the seed README's 15-line guard, as a WASM component.
//!
//! It reads one field of the hook's output, so it answers on the JSON text
//! ([`Service::admit_json`]): a typed, borrowed parse of `args.command` that
//! skips everything else, instead of two `Value` trees per call.

use aos_sdk::{Input, Owner, Registration, Service, Value, Verdict};
use serde::Deserialize;
use std::borrow::Cow;

/// Commands containing any of these are rejected.
pub const BLOCKED: [&str; 3] = ["rm -rf /", "DROP TABLE", ":(){ :|:& };:"];

/// The part of `tool.before`'s output the guard reads.
#[derive(Deserialize)]
struct Output<'a> {
    #[serde(borrow, default)]
    args: Args<'a>,
}

#[derive(Deserialize, Default)]
struct Args<'a> {
    #[serde(borrow, default)]
    command: Option<Cow<'a, str>>,
}

/// The guard's decision on one command.
fn check(cmd: &str) -> Verdict {
    match BLOCKED.iter().find(|p| occurs(cmd, p)) {
        Some(p) => Verdict::reject(format!("blocked: {p}")),
        None => Verdict::Allow,
    }
}

/// Whether `pattern` occurs in `text`, by a plain scan: commands are short,
/// and `str::contains` builds a Two-Way searcher on every call (in wasm that
/// set-up was a third of the guard's time per hook).
fn occurs(text: &str, pattern: &str) -> bool {
    let (text, pattern) = (text.as_bytes(), pattern.as_bytes());
    pattern.is_empty() || text.windows(pattern.len()).any(|w| w == pattern)
}

/// The guard.
pub struct Guard;

impl Service for Guard {
    fn init(_owner: &Owner, _config: &Value) -> Result<(Self, Registration), String> {
        Ok((Self, Registration::hooks(["tool.before"])))
    }

    fn admit_json(&mut self, _hook: &str, _input: &Input, output: &str) -> Option<Verdict> {
        // Most commands are harmless. When no blocked pattern occurs anywhere
        // in the output's text and the text has no escape (so every string in
        // it, the command too, is written character for character), the
        // command holds none either: allowed without parsing (parsing was
        // most of the guard's time per hook).
        if !output.contains('\\') && !BLOCKED.iter().any(|p| occurs(output, p)) {
            return Some(Verdict::Allow);
        }
        // Output of another shape: let `admit` look at it as a `Value`.
        let out: Output<'_> = serde_json::from_str(output).ok()?;
        Some(check(out.args.command.as_deref().unwrap_or("")))
    }

    fn admit(&mut self, _hook: &str, _input: &Input, output: Value) -> Verdict {
        check(output["args"]["command"].as_str().unwrap_or(""))
    }
}

aos_sdk::export!(Guard);

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(output: &str) -> Option<Verdict> {
        Guard.admit_json("tool.before", &Input::from(Value::Null), output)
    }

    #[test]
    fn escaped_commands_and_patterns_elsewhere_are_judged_on_the_parsed_command() {
        // Escapes hide a pattern from a scan of the text: the command is parsed.
        let v = verdict(r#"{"args":{"command":"rm -rf \/"}}"#);
        assert!(matches!(v, Some(Verdict::Reject(r)) if r == "blocked: rm -rf /"));
        let v = verdict(r#"{"args":{"command":"psql -c '\u0044ROP TABLE users'"}}"#);
        assert!(matches!(v, Some(Verdict::Reject(r)) if r == "blocked: DROP TABLE"));
        // A pattern outside the command does not block it.
        let v = verdict(r#"{"args":{"command":"ls"},"note":"DROP TABLE"}"#);
        assert!(matches!(v, Some(Verdict::Allow)));
        // Not JSON and no pattern: allowed, as `admit` on `null` would.
        assert!(matches!(verdict("not json"), Some(Verdict::Allow)));
    }

    #[test]
    fn blocked_commands_are_rejected_on_the_json_text() {
        let v = verdict(r#"{"args":{"command":"ls; rm -rf / --no-preserve-root","timeoutMs":5}}"#);
        assert!(matches!(v, Some(Verdict::Reject(r)) if r == "blocked: rm -rf /"));
        assert!(matches!(
            verdict(r#"{"args":{"command":"ls -la"}}"#),
            Some(Verdict::Allow)
        ));
    }

    #[test]
    fn patterns_are_found_anywhere() {
        assert!(occurs("rm -rf /", "rm -rf /"));
        assert!(occurs("x; DROP TABLE t", "DROP TABLE"));
        assert!(!occurs("rm -rf", "rm -rf /"));
        assert!(!occurs("", "x"));
        assert!(occurs("anything", ""));
    }

    #[test]
    fn escapes_are_decoded_before_matching() {
        // `\u002f` is `/`: a guard matching on the raw text would miss it.
        let v = verdict(r#"{"args":{"command":"rm -rf \u002f"}}"#);
        assert!(matches!(v, Some(Verdict::Reject(_))));
    }

    #[test]
    fn other_shapes_fall_back_to_the_value_path() {
        // With no pattern in the text, any shape is allowed at once (the
        // value path would find no command either) ...
        assert!(matches!(verdict("[1]"), Some(Verdict::Allow)));
        assert!(matches!(verdict(r#"{"other":1}"#), Some(Verdict::Allow)));
        // ... with one, a shape the typed parse refuses goes to `admit`.
        assert!(verdict(r#"["DROP TABLE"]"#).is_none());
        assert!(verdict(r#"{"args":{"command":7},"x":"DROP TABLE"}"#).is_none());
        assert!(matches!(
            Guard.admit(
                "tool.before",
                &Input::from(Value::Null),
                serde_json::json!({"args":{"command":"DROP TABLE x"}})
            ),
            Verdict::Reject(_)
        ));
    }
}
