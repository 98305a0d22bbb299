//! A test component. Its `init` config says what to register and how every
//! export behaves, so one component covers well-behaved handlers and the
//! malicious-guest suite:
//!
//! ```json
//! { "hooks": ["tool.before"], "events": ["agent.started"], "tag": "A",
//!   "do": { "tool.before": "reject", "*": "allow", "init": "trap" } }
//! ```
//!
//! Actions: `allow`, `reject`, `rewrite` (sets `output.rewrittenBy = tag`),
//! `tag` (appends `tag` to `output.trail`), `inflate` (one 40 MiB text part
//! as `output.parts`), `set` (merges the object
//! `config.set[hook]` into the output), `error`, `loop` (spins forever),
//! `append` (an event handler appending to the event's session),
//! `trap` (panics), `bomb` (allocates without end), `sleep` (blocks ten
//! minutes in a WASI timer), `syscall` (calls
//! `session.get` on `input.sessionId`; rejects with the error code if it fails).
//!
//! Commands (`invoke`): `echo ARGS…`, `events`, `read PATH`, `write PATH TEXT`,
//! `env NAME`, `connect HOST:PORT`, `udp HOST:PORT` (one datagram), `spam N`
//! (N log lines),
//! `syscall OP JSON`, and the actions above.

use aos_sdk::{Input, Output, Owner, Registration, Service, Value, Verdict, json};
use std::sync::Mutex;

static CONFIG: Mutex<Option<Value>> = Mutex::new(None);
static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn config() -> Value {
    CONFIG
        .lock()
        .map(|c| c.clone().unwrap_or(Value::Null))
        .unwrap_or(Value::Null)
}

fn action(key: &str) -> String {
    let c = config();
    c["do"][key]
        .as_str()
        .or_else(|| c["do"]["*"].as_str())
        .unwrap_or("allow")
        .to_string()
}

fn tag() -> String {
    config()["tag"].as_str().unwrap_or("guest").to_string()
}

/// Misbehaviours shared by every export.
fn misbehave(what: &str) {
    match what {
        "loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "trap" => panic!("test guest trapped on purpose"),
        // Blocks in a WASI timer: outside wasm, where no epoch reaches.
        "sleep" => std::thread::sleep(std::time::Duration::from_secs(600)),
        "bomb" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        _ => {}
    }
}

fn names(c: &Value, key: &str) -> Vec<String> {
    c[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The test service.
pub struct TestGuest;

impl Service for TestGuest {
    fn init(_owner: &Owner, config: &Value) -> Result<(Self, Registration), String> {
        if let Ok(mut c) = CONFIG.lock() {
            *c = Some(config.clone());
        }
        let init = action("init");
        misbehave(&init);
        if init == "error" {
            return Err("the test guest refuses to start".into());
        }
        Ok((
            Self,
            Registration::hooks(names(config, "hooks")).with_events(names(config, "events")),
        ))
    }

    fn admit(&mut self, hook: &str, input: &Input, mut output: Value) -> Verdict {
        let what = action(hook);
        misbehave(&what);
        match what.as_str() {
            "reject" => Verdict::reject(format!("{} says no", tag())),
            "rewrite" => {
                output["rewrittenBy"] = json!(tag());
                Verdict::Rewrite(output)
            }
            "inflate" => Verdict::Rewrite(inflate(output)),
            "tag" => {
                push_trail(&mut output);
                Verdict::Rewrite(output)
            }
            "set" => Verdict::Rewrite(set(hook, output)),
            "syscall" => {
                let sid = input["sessionId"].as_str().unwrap_or("");
                match aos_sdk::syscall("session.get", json!({ "sessionId": sid })) {
                    Ok(_) => Verdict::Allow,
                    Err(e) => Verdict::reject(e.code),
                }
            }
            _ => Verdict::Allow,
        }
    }

    fn transform(
        &mut self,
        hook: &str,
        _input: &Input,
        mut output: Value,
    ) -> Result<Value, String> {
        let what = action(hook);
        misbehave(&what);
        match what.as_str() {
            "error" => Err(format!("{} failed on purpose", tag())),
            "tag" => {
                push_trail(&mut output);
                Ok(output)
            }
            "rewrite" => {
                output["rewrittenBy"] = json!(tag());
                Ok(output)
            }
            "set" => Ok(set(hook, output)),
            "inflate" => Ok(inflate(output)),
            _ => Ok(output),
        }
    }

    fn on_event(&mut self, name: &str, payload: &Value) {
        let what = action(name);
        misbehave(&what);
        if what == "append" {
            // Writes on every event it gets: its write causes the event again.
            let _ = aos_sdk::syscall(
                "session.append",
                json!({ "sessionId": payload["sessionId"],
                        "message": { "role": "user", "parts": [{ "type": "text", "text": "echo" }] } }),
            );
        }
        if let Ok(mut e) = EVENTS.lock() {
            e.push(name.to_string());
        }
    }

    fn invoke(&mut self, args: &[String], stdin: Option<&str>) -> Result<Output, String> {
        let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
        misbehave(arg(0));
        Ok(match arg(0) {
            "echo" => Output::ok(args[1..].join(" ") + stdin.unwrap_or("")),
            "events" => {
                Output::ok(json!(EVENTS.lock().map(|e| e.clone()).unwrap_or_default()).to_string())
            }
            "read" => match std::fs::read_to_string(arg(1)) {
                Ok(s) => Output::ok(s),
                Err(e) => Output::fail(1, e.to_string()),
            },
            "write" => match std::fs::write(arg(1), arg(2)) {
                Ok(()) => Output::ok("written"),
                Err(e) => Output::fail(1, e.to_string()),
            },
            "env" => match std::env::var(arg(1)) {
                Ok(v) => Output::ok(v),
                Err(_) => Output::fail(1, format!("{} is not set", arg(1))),
            },
            "connect" => match std::net::TcpStream::connect(arg(1)) {
                Ok(_) => Output::ok("connected"),
                Err(e) => Output::fail(1, e.to_string()),
            },
            "spam" => {
                let n: usize = arg(1).parse().unwrap_or(0);
                for i in 0..n {
                    aos_sdk::log::info(&format!("spam line {i}"));
                }
                Output::ok(format!("logged {n}"))
            }
            "udp" => match std::net::UdpSocket::bind("0.0.0.0:0")
                .and_then(|s| s.send_to(b"ping", arg(1)))
            {
                Ok(_) => Output::ok("sent"),
                Err(e) => Output::fail(1, e.to_string()),
            },
            "syscall" => {
                let payload = aos_sdk::serde_json::from_str(arg(2)).unwrap_or(json!({}));
                match aos_sdk::syscall(arg(1), payload) {
                    Ok(v) => Output::ok(v.to_string()),
                    Err(e) => Output::fail(2, e.code),
                }
            }
            "error" => return Err("the command failed on purpose".into()),
            other => Output::fail(127, format!("unknown command {other:?}")),
        })
    }

    fn shutdown(&mut self) {
        misbehave(&action("shutdown"));
    }
}

/// `output` whose `parts` became one text part of 40 MiB.
fn inflate(mut output: Value) -> Value {
    output["parts"] = json!([{ "type": "text", "text": "x".repeat(40 << 20) }]);
    output
}

/// `output` with the fields of `config.set[hook]` written over it.
fn set(hook: &str, mut output: Value) -> Value {
    if let (Some(o), Some(fields)) = (output.as_object_mut(), config()["set"][hook].as_object()) {
        for (k, v) in fields {
            o.insert(k.clone(), v.clone());
        }
    }
    output
}

fn push_trail(output: &mut Value) {
    if !output["trail"].is_array() {
        output["trail"] = json!([]);
    }
    if let Some(a) = output["trail"].as_array_mut() {
        a.push(json!(tag()));
    }
}

aos_sdk::export!(TestGuest);
