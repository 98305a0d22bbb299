//! A service built against `aos:kernel@0.1.0` (`crates/aos-sdk/wit/since_v0.1`) with wit-bindgen
//! alone, as a component of that release was built: its hooks get the hook's
//! name and input as parameters. The host must keep running it unchanged
//! beside components of newer versions (`tests/versions.rs` in
//! aos-wasm-host).
//!
//! - `tool.before`: a command containing `forbidden` is rejected with a
//!   reason naming the hook and the input's `sessionId`; `rewrite` adds
//!   `"seenBy": "v0.1"` to the output; `syscall` calls `session.get` on the
//!   input's session and rejects with the error code if it fails.
//! - `tool.after` (transform): adds `{"transformedBy": "v0.1", "hook"}`.
//! - events are kept and listed by the command `events`; `echo ARGS` prints
//!   its arguments.

// wit-bindgen's generated code, used directly here (the SDK hides it behind
// its own macro): undocumented items, and export glue (`export!` below)
// declaring the component's `extern "C"` entry points.
#![allow(missing_docs, unsafe_code)]

wit_bindgen::generate!({
    path: "../aos-sdk/wit/since_v0.1",
    world: "skill-service",
});

use aos::kernel::{syscall, types};
use exports::aos::kernel::service::Guest;
use serde::Deserialize;
use serde_json::{Value, json};
use std::borrow::Cow;
use std::sync::Mutex;

static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The part of `tool.before`'s output the guard reads.
#[derive(Deserialize)]
struct Out<'a> {
    #[serde(borrow, default)]
    args: Args<'a>,
}

#[derive(Deserialize, Default)]
struct Args<'a> {
    #[serde(borrow, default)]
    command: Option<Cow<'a, str>>,
}

/// Whether `pattern` occurs in `text` (a plain scan, as `my-guard`'s).
fn occurs(text: &str, pattern: &str) -> bool {
    let (text, pattern) = (text.as_bytes(), pattern.as_bytes());
    text.windows(pattern.len()).any(|w| w == pattern)
}

struct V01;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

impl Guest for V01 {
    fn init(_owner: types::Owner, _config: String) -> Result<types::Registration, String> {
        Ok(types::Registration {
            hooks: vec!["tool.before".into(), "tool.after".into()],
            events: vec!["session.started".into()],
        })
    }

    fn admit(hook: String, input: String, output: String) -> types::Verdict {
        // As `my-guard` reads it (borrowed, one field), so that the two
        // versions' round trips compare (aos-wasm-host's `host` bench).
        let command = serde_json::from_str::<Out<'_>>(&output)
            .ok()
            .and_then(|o| o.args.command)
            .unwrap_or_default();
        let session = || {
            parse(&input)["sessionId"]
                .as_str()
                .unwrap_or("")
                .to_string()
        };
        if occurs(&command, "forbidden") {
            return types::Verdict::Reject(format!("v0.1 says no to {hook} in {}", session()));
        }
        if occurs(&command, "syscall") {
            let payload = json!({ "sessionId": session() }).to_string();
            if let Err(e) = syscall::call("session.get", &payload) {
                return types::Verdict::Reject(e.code);
            }
        }
        if occurs(&command, "rewrite") {
            let mut output = parse(&output);
            output["seenBy"] = json!("v0.1");
            return types::Verdict::Allow(Some(output.to_string()));
        }
        types::Verdict::Allow(None)
    }

    fn transform(hook: String, _input: String, output: String) -> Result<String, String> {
        let mut output = parse(&output);
        output["transformedBy"] = json!("v0.1");
        output["hook"] = json!(hook);
        Ok(output.to_string())
    }

    fn on_event(name: String, _payload: String) {
        if let Ok(mut e) = EVENTS.lock() {
            e.push(name);
        }
    }

    fn invoke(args: Vec<String>, _stdin: Option<String>) -> Result<types::InvokeOutput, String> {
        let stdout = match args.first().map(String::as_str) {
            Some("events") => json!(*EVENTS.lock().map_err(|_| "poisoned")?).to_string(),
            Some("echo") => args[1..].join(" "),
            _ => return Err(format!("unknown command {args:?}")),
        };
        Ok(types::InvokeOutput {
            exit_code: 0,
            stdout,
            stderr: String::new(),
        })
    }

    fn shutdown() {}
}

export!(V01);
