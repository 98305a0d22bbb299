//! A legacy AgentOS skill service in Rust: the protocol of
//! `docs/legacy-services.md` by hand, over a blocking Unix socket, with no
//! SDK. It registers
//!
//! - `tool.before` (admission): rejects `rm -rf /`, `DROP TABLE` and the
//!   fork bomb; a command containing `#whoami` is rewritten to echo the
//!   session's title, read with the `session.get` syscall from inside the
//!   hook;
//! - `tool.after` (transform): appends `[checked by aos-uds-example]` to the
//!   result;
//! - `session.dispatch.after` (event): remembered;
//!
//! and answers the commands `events` (the events seen), `echo ARGS…`,
//! `caller` (who ran it) and `fail` (exit code 3).

use serde_json::{Value, json};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

const PATTERNS: &[&str] = &["rm -rf /", "DROP TABLE", ":(){ :|:& };:"];

type Result<T> = std::result::Result<T, String>;

struct Conn {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// Kernel messages that arrived while a syscall waited.
    queue: VecDeque<Value>,
    next_id: u64,
}

impl Conn {
    fn send(&mut self, mut msg: Value) -> Result<()> {
        msg["jsonrpc"] = json!("2.0");
        let mut line = msg.to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .map_err(|e| e.to_string())
    }

    fn read(&mut self) -> Result<Option<Value>> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Ok(None),
            Ok(_) => serde_json::from_str(&line)
                .map(Some)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// A request to the kernel; queues what else arrives meanwhile.
    fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = format!("rs-{}", self.next_id);
        self.send(json!({ "id": id, "method": method, "params": params }))?;
        loop {
            let msg = self.read()?.ok_or("the kernel closed the connection")?;
            if msg.get("method").is_some() {
                self.queue.push_back(msg);
            } else if msg["id"] == id {
                if let Some(e) = msg.get("error") {
                    let code = e["data"]["code"].as_str().unwrap_or("rpc");
                    return Err(format!("{code}: {}", e["message"].as_str().unwrap_or("")));
                }
                return Ok(msg["result"].clone());
            }
        }
    }

    fn next(&mut self) -> Result<Option<Value>> {
        match self.queue.pop_front() {
            Some(m) => Ok(Some(m)),
            None => self.read(),
        }
    }
}

struct Service {
    events: Vec<String>,
}

impl Service {
    fn guard(&self, conn: &mut Conn, input: &Value, mut output: Value) -> Result<Value> {
        let command = output["args"]["command"].as_str().unwrap_or("").to_string();
        if let Some(p) = PATTERNS.iter().find(|p| command.contains(**p)) {
            return Ok(json!({ "action": "reject", "reason": format!("blocked: {p}") }));
        }
        if command.contains("#whoami") {
            let session = input["sessionId"].as_str().unwrap_or("");
            let scb = conn.request(
                "syscall",
                json!({ "op": "session.get", "sessionId": session }),
            )?;
            let title = scb["title"].as_str().unwrap_or("untitled");
            output["args"]["command"] = json!(format!("echo session title: {title}"));
            return Ok(json!({ "action": "allow", "output": output }));
        }
        Ok(json!({ "action": "allow" }))
    }

    fn command(&self, args: &[String], caller: &Value) -> Value {
        match args.first().map(String::as_str) {
            Some("events") => json!(self.events.join("\n")),
            Some("echo") => json!(args[1..].join(" ")),
            Some("caller") => json!(caller.to_string()),
            Some("fail") => json!({ "exitCode": 3, "stderr": "failed as asked" }),
            _ => json!({ "exitCode": 2, "stderr": "usage: events | echo ARGS | caller | fail" }),
        }
    }

    /// Answers one request; `Ok(false)` on shutdown.
    fn handle(&mut self, conn: &mut Conn, msg: Value) -> Result<bool> {
        let p = &msg["params"];
        let result = match msg["method"].as_str().unwrap_or("") {
            "shutdown" => return Ok(false),
            "event" => {
                self.events
                    .push(p["name"].as_str().unwrap_or("").to_string());
                return Ok(true);
            }
            "hook" => match p["name"].as_str() {
                Some("tool.before") => self.guard(conn, &p["input"], p["output"].clone()),
                Some("tool.after") => {
                    let raw = p["output"]["result"].as_str().unwrap_or("");
                    Ok(
                        json!({ "output": { "result": format!("{raw}\n[checked by aos-uds-example]") } }),
                    )
                }
                other => Err(format!("no handler for {other:?}")),
            },
            "invoke" => {
                let args: Vec<String> =
                    serde_json::from_value(p["args"].clone()).unwrap_or_default();
                Ok(self.command(&args, &p["caller"]))
            }
            other => Err(format!("unknown method {other:?}")),
        };
        let reply = match result {
            Ok(r) => json!({ "id": msg["id"], "result": r }),
            Err(e) => json!({ "id": msg["id"], "error": { "code": -32001, "message": e } }),
        };
        conn.send(reply)?;
        Ok(true)
    }
}

fn run() -> Result<()> {
    let path = std::env::var("AOS_SERVICE_SOCKET")
        .map_err(|_| "AOS_SERVICE_SOCKET is not set: the AgentOS daemon starts this service")?;
    let stream = UnixStream::connect(&path).map_err(|e| format!("cannot connect {path}: {e}"))?;
    let writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut conn = Conn {
        reader: BufReader::new(stream),
        writer,
        queue: VecDeque::new(),
        next_id: 0,
    };
    conn.request(
        "register",
        json!({ "hooks": ["tool.before", "tool.after"], "events": ["session.dispatch.after"] }),
    )?;
    let mut service = Service { events: Vec::new() };
    while let Some(msg) = conn.next()? {
        if !service.handle(&mut conn, msg)? {
            break;
        }
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("aos-uds-example: {e}");
        std::process::exit(1);
    }
}
