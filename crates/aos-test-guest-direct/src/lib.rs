//! A test component that makes no syscall, so the host calls it directly
//! (no fiber). It still uses what a Rust standard library links — standard
//! input, output and error, the wall clock — so the host's synchronous
//! stream functions are exercised too.
//!
//! Hooks: `tool.before` (admission) and `tool.after` (transform); event:
//! `session.started`. An admission acts on the output's `do`: `allow`
//! (default; writes a line to stderr and stdout first), `reject`, `input`
//! (rewrites the output to carry the hook's input), `loop` (spins forever),
//! `trap` (panics), `bomb` (allocates without end). A transform sets
//! `output.direct = true`. Commands: `events` (how many events came),
//! `stdin` (reads standard input to its end), `clock` (reads the wall clock).

use aos_sdk::{Input, Output, Owner, Registration, Service, Value, Verdict, json};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};

static EVENTS: AtomicU32 = AtomicU32::new(0);

/// The test component.
pub struct Direct;

impl Service for Direct {
    fn init(_owner: &Owner, _config: &Value) -> Result<(Self, Registration), String> {
        Ok((
            Self,
            Registration::hooks(["tool.before", "tool.after"]).with_events(["session.started"]),
        ))
    }

    fn admit(&mut self, _hook: &str, input: &Input, output: Value) -> Verdict {
        match output["do"].as_str().unwrap_or("allow") {
            "reject" => Verdict::reject("rejected directly"),
            "input" => Verdict::Rewrite(json!({ "input": input.value().clone() })),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "trap" => panic!("direct guest trapped on purpose"),
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            _ => {
                let ok = writeln!(std::io::stderr(), "allowed").is_ok()
                    && writeln!(std::io::stdout(), "allowed").is_ok()
                    && std::io::stdout().flush().is_ok();
                if ok {
                    Verdict::Allow
                } else {
                    Verdict::reject("cannot write to stdout or stderr")
                }
            }
        }
    }

    fn transform(
        &mut self,
        _hook: &str,
        _input: &Input,
        mut output: Value,
    ) -> Result<Value, String> {
        output["direct"] = json!(true);
        Ok(output)
    }

    fn on_event(&mut self, _name: &str, _payload: &Value) {
        EVENTS.fetch_add(1, Ordering::SeqCst);
    }

    fn invoke(&mut self, args: &[String], _stdin: Option<&str>) -> Result<Output, String> {
        match args.first().map(String::as_str) {
            Some("events") => Ok(Output::ok(EVENTS.load(Ordering::SeqCst).to_string())),
            Some("stdin") => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| e.to_string())?;
                Ok(Output::ok(format!("read {} bytes", text.len())))
            }
            Some("clock") => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_err(|e| e.to_string())?;
                Ok(Output::ok(if now.as_secs() > 0 { "ok" } else { "zero" }))
            }
            _ => Err(format!("unknown command {args:?}")),
        }
    }
}

aos_sdk::export!(Direct);
