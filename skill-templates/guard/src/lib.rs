//! A guard: an admission hook on `tool.before` that rejects bash commands
//! containing a blocked pattern. Patterns come from the service's config
//! (`aos skill start guard --config '{"blocked": ["sudo "]}'`), else the
//! defaults below.

use aos_sdk::{Input, Owner, Registration, Service, Value, Verdict};
use std::sync::OnceLock;

const DEFAULT_BLOCKED: [&str; 3] = ["rm -rf /", "DROP TABLE", ":(){ :|:& };:"];

static BLOCKED: OnceLock<Vec<String>> = OnceLock::new();

struct Guard;

impl Service for Guard {
    fn register(_owner: &Owner, config: &Value) -> Result<Registration, String> {
        let from_config: Option<Vec<String>> = config["blocked"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect());
        let _ = BLOCKED.set(from_config.unwrap_or_else(|| DEFAULT_BLOCKED.map(String::from).to_vec()));
        Ok(Registration::hooks(["tool.before"]))
    }

    fn admit(_hook: &str, _input: &Input, output: Value) -> Verdict {
        let command = output["args"]["command"].as_str().unwrap_or("");
        let blocked = BLOCKED.get().map(Vec::as_slice).unwrap_or_default();
        match blocked.iter().find(|p| command.contains(p.as_str())) {
            Some(p) => Verdict::reject(format!("blocked: {p}")),
            None => Verdict::Allow,
        }
    }
}

aos_sdk::export!(Guard);
