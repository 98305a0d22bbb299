//! A guard: an admission hook on `tool.before` that rejects bash commands
//! containing a blocked pattern. Patterns come from the service's config
//! (`aos skill start guard --config '{"blocked": ["sudo "]}'`), else the
//! defaults below; the service keeps them in its own state.

use aos_sdk::payloads::{self, ToolBefore};
use aos_sdk::{Input, Owner, Registration, Service, Value, Verdict};

const DEFAULT_BLOCKED: [&str; 3] = ["rm -rf /", "DROP TABLE", ":(){ :|:& };:"];

struct Guard {
    blocked: Vec<String>,
}

impl Service for Guard {
    fn init(_owner: &Owner, config: &Value) -> Result<(Self, Registration), String> {
        let from_config: Option<Vec<String>> = config["blocked"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect());
        let blocked = from_config.unwrap_or_else(|| DEFAULT_BLOCKED.map(String::from).to_vec());
        Ok((Guard { blocked }, Registration::hooks(["tool.before"])))
    }

    fn admit(&mut self, _hook: &str, _input: &Input, output: Value) -> Verdict {
        // The command as the kernel reads it back (typed in the SDK).
        let args = payloads::read::<ToolBefore>(&output).args.unwrap_or_default();
        let command = args.command.unwrap_or_default();
        match self.blocked.iter().find(|p| command.contains(p.as_str())) {
            Some(p) => Verdict::reject(format!("blocked: {p}")),
            None => Verdict::Allow,
        }
    }
}

aos_sdk::export!(Guard);
