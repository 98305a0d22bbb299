//! `my-guard`: the seed README's 15-line guard, as a WASM component.

use aos_sdk::{Owner, Registration, Service, Value, Verdict};

/// Commands containing any of these are rejected.
pub const BLOCKED: [&str; 3] = ["rm -rf /", "DROP TABLE", ":(){ :|:& };:"];

/// The guard.
pub struct Guard;

impl Service for Guard {
    fn register(_owner: &Owner, _config: &Value) -> Result<Registration, String> {
        Ok(Registration::hooks(["tool.before"]))
    }

    fn admit(_hook: &str, _input: &Value, output: Value) -> Verdict {
        let cmd = output["args"]["command"].as_str().unwrap_or("");
        match BLOCKED.iter().find(|p| cmd.contains(*p)) {
            Some(p) => Verdict::reject(format!("blocked: {p}")),
            None => Verdict::Allow,
        }
    }
}

aos_sdk::export!(Guard);
