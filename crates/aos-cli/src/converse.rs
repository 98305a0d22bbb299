//! `aos send` and `aos run`: dispatch a message, optionally follow the
//! session's messages as they are written (on stderr), and print the
//! outcome of `session.wait` (on stdout).

use crate::client::Client;
use anyhow::Result;
use aos_types::requests::{
    AgentCreate, Op, SessionCreate, SessionDispatch, SessionInterrupt, SessionWait, UserMessage,
};
use serde_json::{Value, json};
use std::io::Write;

/// A syscall the daemon answered with `ok: false`: its whole answer, printed
/// as is (exit status 1), so the daemon's `error.code` reaches the user.
#[derive(Debug)]
pub struct Failed(pub Value);

/// A dispatch interrupted from the terminal: its document is printed and the
/// command exits 130 (as a shell reports Ctrl-C).
#[derive(Debug)]
pub struct Interrupted(pub Value);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted from the terminal (Ctrl-C)")
    }
}

impl std::error::Error for Interrupted {}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let e = &self.0["error"];
        write!(
            f,
            "{}: {}",
            e["code"].as_str().unwrap_or("error"),
            e["message"].as_str().unwrap_or("the syscall failed")
        )
    }
}

impl std::error::Error for Failed {}

fn data(doc: Value) -> Result<Value> {
    if doc["ok"] == true {
        Ok(doc["data"].clone())
    } else {
        Err(Failed(doc).into())
    }
}

/// Prints one written message to stderr, human-readable.
fn show(event: &str, v: &Value) {
    if event != "context.ingest" {
        return;
    }
    let _ = std::io::stderr()
        .lock()
        .write_all(message_text(&v["payload"]["message"], false).as_bytes());
}

/// Messages as text for people (`aos session history --format text`): each
/// headed by its seq, role and origin, then its parts.
pub fn render(messages: &Value) -> String {
    let mut out = String::new();
    for m in messages.as_array().into_iter().flatten() {
        out.push_str(&format!(
            "── #{} {} ({}) {}\n",
            m["metadata"]["seq"],
            m["role"].as_str().unwrap_or("?"),
            m["metadata"]["origin"].as_str().unwrap_or("?"),
            m["metadata"]["createdAt"].as_str().unwrap_or_default()
        ));
        out.push_str(&message_text(m, true));
    }
    out
}

/// One message's parts as text: the assistant's (or, with `all`, anyone's)
/// text, commands, their results, interrupts, and with `all` the kernel's
/// facts by kind.
fn message_text(m: &Value, all: bool) -> String {
    let mut out = String::new();
    for p in m["parts"].as_array().into_iter().flatten() {
        let line = match (p["type"].as_str(), m["role"].as_str()) {
            (Some("text"), Some("assistant")) => p["text"].as_str().map(|t| format!("{t}\n")),
            (Some("tool-bash"), _) if p["state"] == "input-available" => {
                p["input"]["command"].as_str().map(|c| format!("$ {c}\n"))
            }
            (Some("tool-bash"), _) => Some(format!(
                "{}\n",
                p["output"]["visibleResult"]
                    .as_str()
                    .or(p["errorText"].as_str())
                    .unwrap_or("(result stored)")
                    .trim_end()
            )),
            (Some("data-interrupt"), _) => {
                Some(format!("[interrupted: {}]\n", p["data"]["reason"]))
            }
            (Some("text"), _) if all => p["text"].as_str().map(|t| format!("{t}\n")),
            (Some(kind), _) if all => Some(match p["data"]["name"].as_str() {
                Some(name) => format!("[{kind}: {name}]\n"),
                None => format!("[{kind}]\n"),
            }),
            _ => None,
        };
        if let Some(l) = line {
            out.push_str(&l);
        }
    }
    out
}

fn dispatch_and_wait(
    c: &Client,
    session: &str,
    message: &str,
    stream: bool,
    queue: bool,
) -> Result<Value> {
    // Subscribe before dispatching, so the first messages are not missed.
    let (ended_tx, ended_rx) = std::sync::mpsc::channel::<String>();
    if stream {
        let reader = c.events(session)?;
        std::thread::spawn(move || {
            crate::client::read_events(reader, |name, v| {
                show(name, v);
                if name == "session.dispatch.after" {
                    let id = v["payload"]["dispatchId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    return ended_tx.send(id).is_ok();
                }
                true
            })
        });
    }
    crate::ctrlc::catch();
    let d = c.call(&dispatch_call(session, message, queue))?;
    let d = data(d)?;
    let id = d["dispatchId"].as_str().unwrap_or_default().to_string();
    eprintln!("aos: session {session}, dispatch {id} (Ctrl-C interrupts it)");
    let mut interrupted = false;
    loop {
        if crate::ctrlc::pressed() && !interrupted {
            interrupted = true;
            let stop = SessionInterrupt {
                session_id: session.to_string(),
                reason: Some("interrupted from the terminal (Ctrl-C)".into()),
            };
            // A dispatch that just ended has nothing to interrupt: fine.
            let _ = c.call(&stop.call());
        }
        // Short waits, so a Ctrl-C is acted on at once.
        let wait = SessionWait {
            dispatch_id: id.clone(),
            timeout_ms: Some(250),
        };
        let w = data(c.call(&wait.call())?)?;
        if w["status"] != "running" && w["status"] != "queued" {
            let mut out = w;
            out["dispatchId"] = json!(id);
            out["sessionId"] = json!(session);
            if stream {
                // Everything is printed once the follower saw this dispatch end.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                while let Ok(ended) = ended_rx
                    .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
                {
                    if ended == id {
                        break;
                    }
                }
            }
            if interrupted {
                return Err(Interrupted(json!({ "ok": false, "op": "send", "data": out,
                    "error": { "code": "interrupted", "message": "interrupted from the terminal (Ctrl-C)" } }))
                .into());
            }
            return Ok(out);
        }
    }
}

/// The body of a `session.dispatch` of one user message.
fn dispatch_call(session: &str, message: &str, queue: bool) -> Value {
    SessionDispatch {
        session_id: session.to_string(),
        message: UserMessage::user(message),
        queue,
        a2a: None,
        idempotency_key: None,
    }
    .call()
}

fn outcome_doc(op: &str, data: Value) -> Value {
    let ok = data["status"] == "completed";
    json!({ "ok": ok, "op": op, "data": data })
}

/// `aos send SESSION MESSAGE [--wait|--stream|--detach]`.
pub fn send(
    session: &str,
    message: &str,
    stream: bool,
    detach: bool,
    queue: bool,
) -> Result<(Value, bool)> {
    let c = Client::discover()?;
    if detach {
        let doc = c.call(&dispatch_call(session, message, queue))?;
        let ok = doc["ok"] == true;
        return Ok((doc, ok));
    }
    let out = dispatch_and_wait(&c, session, message, stream, queue)?;
    let doc = outcome_doc("send", out);
    let ok = doc["ok"] == true;
    Ok((doc, ok))
}

/// `aos run MESSAGE [--agent ID]`.
pub fn run(message: &str, agent: Option<String>) -> Result<(Value, bool)> {
    let c = Client::discover()?;
    let agent = match agent {
        Some(a) => a,
        None => data(
            c.call(
                &AgentCreate {
                    display_name: Some("aos run".into()),
                    ..Default::default()
                }
                .call(),
            )?,
        )?["agentId"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    };
    let create = SessionCreate {
        agent_id: agent.clone(),
        ..Default::default()
    };
    let s = data(c.call(&create.call())?)?;
    let session = s["sessionId"].as_str().unwrap_or_default().to_string();
    eprintln!("aos: agent {agent}, session {session}");
    let mut out = dispatch_and_wait(&c, &session, message, true, false)?;
    out["agentId"] = json!(agent);
    let doc = outcome_doc("run", out);
    let ok = doc["ok"] == true;
    Ok((doc, ok))
}
