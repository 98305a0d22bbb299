//! `aos-a2a`, agent-to-agent messages (`skills.md` §5), written with the
//! project's guest SDK. `aos a2a send --to AGENT_OR_SESSION MODE "message"`
//! runs its `send` command for the calling session (`service.caller`):
//! - `--silent`: the message is appended to the target session
//!   (`session.append` with a `data-a2a` part naming the sender);
//! - `--notify`: the target is dispatched with it (`session.dispatch` with
//!   `a2a` and `queue: true`, so a busy target gets it next);
//! - `--wake`: as notify, and when that dispatch ends
//!   (`session.dispatch.after`), its final answer is dispatched back into the
//!   sender's session (a `notify` with the same correlation id).
//!
//! Every dispatch this service starts belongs to a chain (correlation id,
//! hop count). A send from the bash of such a dispatch continues its chain;
//! a dispatch that would exceed the hop limit is refused (`a2a.hop_limit`),
//! and an answer that would is left in the sender's history without waking
//! it. Chains and pending answers live in the skill's key-value store
//! (`capabilities.kv`), so a woken dispatch that ends on another node, or
//! after a restart, still answers its sender.

mod args;

use aos_sdk::ops;
use aos_sdk::{Caller, Output, Owner, Registration, Service, Value, json, log, syscall};
use args::{Mode, Send};
use std::sync::atomic::{AtomicU64, Ordering};

/// Hops a chain may take unless `config.hopLimit` says otherwise.
const DEFAULT_HOP_LIMIT: u64 = 8;

/// A chain of dispatches started by a2a messages.
#[derive(Clone)]
struct Chain {
    correlation: String,
    hop: u64,
}

impl Chain {
    fn to_json(&self) -> Value {
        json!({ "correlation": self.correlation, "hop": self.hop })
    }

    fn from_json(v: &Value) -> Option<Chain> {
        Some(Chain {
            correlation: v["correlation"].as_str()?.to_string(),
            hop: v["hop"].as_u64()?,
        })
    }
}

/// Where the answer of a woken dispatch goes.
struct Reply {
    agent_id: String,
    session_id: String,
    chain: Chain,
}

/// The hop limit of this instance (`config.hopLimit`).
static HOP_LIMIT: AtomicU64 = AtomicU64::new(DEFAULT_HOP_LIMIT);

/// How long a chain or reply entry is kept if its dispatch never ended.
const STALE_MS: u128 = 24 * 3600 * 1000;

// The chains of running or queued dispatches this skill started
// (`chain/DISPATCH`) and the senders woken dispatches answer to
// (`reply/DISPATCH`) are kept in the skill's key-value store
// (`capabilities.kv`), not in this instance: a dispatch that ends on another
// node, or after a restart, still finds them.

fn kv_put(key: &str, value: Value) -> Result<(), Value> {
    syscall("kv.put", json!({ "key": key, "value": value }))
        .map(|_| ())
        .map_err(from_syscall)
}

fn kv_get(key: &str) -> Option<Value> {
    syscall("kv.get", json!({ "key": key }))
        .ok()
        .map(|v| v["value"].clone())
}

/// Reads and deletes `key`: `Some` only for the one caller that deleted it.
fn kv_take(key: &str) -> Option<Value> {
    let v = kv_get(key)?;
    let d = syscall("kv.delete", json!({ "key": key })).ok()?;
    (d["deleted"] == true).then_some(v)
}

/// Drops entries older than [`STALE_MS`] (their dispatch never ended: its
/// node was lost before the end was seen).
fn sweep_stale() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut after = String::new();
    loop {
        let Ok(page) = syscall("kv.list", json!({ "after": after, "limit": 1000 })) else {
            return;
        };
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        for e in &entries {
            let at = e["value"]["atMs"].as_u64().map_or(0, u128::from);
            if now.saturating_sub(at) > STALE_MS {
                let _ = syscall("kv.delete", json!({ "key": e["key"] }));
            }
        }
        match page["nextAfter"].as_str() {
            Some(next) => after = next.to_string(),
            None => return,
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct A2a;

impl Service for A2a {
    fn init(_owner: &Owner, config: &Value) -> Result<(Self, Registration), String> {
        let limit = config["hopLimit"].as_u64().unwrap_or(DEFAULT_HOP_LIMIT);
        if !(1..=1000).contains(&limit) {
            return Err("config.hopLimit must be 1 to 1000".into());
        }
        HOP_LIMIT.store(limit, Ordering::Relaxed);
        sweep_stale();
        Ok((
            Self,
            Registration::default().with_events(["session.dispatch.after"]),
        ))
    }

    fn invoke(&mut self, args: &[String], stdin: Option<&str>) -> Result<Output, String> {
        let result = match args::parse(args, stdin) {
            Ok(send) => aos_sdk::caller()
                .map_err(from_syscall)
                .and_then(|caller| deliver(&caller, &send)),
            Err(message) => Err(error("request.invalid", message)),
        };
        Ok(match result {
            Ok(data) => Output::ok(data.to_string()),
            Err(e) => Output::fail(1, e.to_string()),
        })
    }

    fn on_event(&mut self, name: &str, payload: &Value) {
        if name == "session.dispatch.after" {
            dispatch_ended(payload);
        }
    }
}

fn error(code: &str, message: impl Into<String>) -> Value {
    json!({ "code": code, "message": message.into() })
}

fn from_syscall(e: aos_sdk::SyscallError) -> Value {
    json!({ "code": e.code, "message": e.message, "details": e.details })
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

/// The target session of `--to`: a session as given, or an agent's newest
/// usable session (a new one when it has none).
fn target(to: &str, sender_agent: &str) -> Result<(String, String), Value> {
    if to.starts_with("se_") {
        let s = ops::session_get(to).map_err(from_syscall)?;
        if s.status == "archived" {
            return Err(error(
                "session.archived",
                format!("session {to} is archived"),
            ));
        }
        return Ok((s.agent_id, to.to_string()));
    }
    let page = ops::session_list_newest(to, Some("ready"), 1).map_err(from_syscall)?;
    let session = match page.sessions.into_iter().next() {
        Some(s) => s.session_id,
        None => {
            let title = format!("messages from {sender_agent}");
            ops::session_create(to, Some(&title))
                .map_err(from_syscall)?
                .session_id
        }
    };
    Ok((to.to_string(), session))
}

/// Carries out one `send` for the calling session.
fn deliver(caller: &Caller, send: &Send) -> Result<Value, Value> {
    let (Some(from_agent), Some(from_session)) = (&caller.agent_id, &caller.session_id) else {
        return Err(error(
            "request.invalid",
            "a2a send needs a sending session: run it from an agent's bash, or give --session",
        ));
    };
    let (to_agent, to_session) = target(&send.to, from_agent)?;
    if &to_session == from_session {
        return Err(error("request.invalid", "a session cannot send to itself"));
    }
    // A send from an a2a-started dispatch continues its chain.
    let parent = caller
        .dispatch_id
        .as_ref()
        .and_then(|d| kv_get(&format!("chain/{d}")))
        .and_then(|v| Chain::from_json(&v));
    let limit = HOP_LIMIT.load(Ordering::Relaxed);
    let chain = Chain {
        correlation: parent
            .as_ref()
            .map_or_else(|| correlation_id("a2a"), |c| c.correlation.clone()),
        hop: parent.map_or(0, |c| c.hop) + 1,
    };
    let envelope = json!({
        "mode": send.mode.as_str(), "fromAgentId": from_agent,
        "fromSessionId": from_session, "correlationId": chain.correlation,
    });
    let mut out = json!({
        "mode": send.mode.as_str(), "toAgentId": to_agent, "toSessionId": to_session,
        "correlationId": chain.correlation,
    });
    if send.mode == Mode::Silent {
        let message = json!({ "role": "user", "parts": [
            { "type": "data-a2a", "data": envelope },
            { "type": "text", "text": send.message },
        ]});
        let r = syscall(
            "session.append",
            json!({ "sessionId": to_session, "message": message }),
        )
        .map_err(from_syscall)?;
        out["messageId"] = r["messageId"].clone();
        return Ok(out);
    }
    if chain.hop > limit {
        return Err(hop_limit(&chain, limit));
    }
    let dispatched = dispatch(&to_session, &send.message, envelope)?;
    let mut kept = chain.to_json();
    kept["atMs"] = json!(now_ms());
    kv_put(&format!("chain/{dispatched}"), kept.clone())?;
    if send.mode == Mode::Wake {
        kept["agentId"] = json!(from_agent);
        kept["sessionId"] = json!(from_session);
        kv_put(&format!("reply/{dispatched}"), kept)?;
    }
    out["dispatchId"] = json!(dispatched);
    Ok(out)
}

fn hop_limit(chain: &Chain, limit: u64) -> Value {
    error(
        "a2a.hop_limit",
        format!(
            "not sent: correlation {} would take hop {} of at most {limit}; answer without waking another agent",
            chain.correlation, chain.hop
        ),
    )
}

/// Dispatches `text` into `session` as an a2a message (queued when busy).
fn dispatch(session: &str, body: &str, envelope: Value) -> Result<String, Value> {
    let r = syscall(
        "session.dispatch",
        json!({ "sessionId": session, "message": { "role": "user", "content": body },
                "queue": true, "a2a": envelope }),
    )
    .map_err(from_syscall)?;
    Ok(text(&r, "dispatchId"))
}

/// A dispatch ended: its chain is over, and a woken one's answer goes back.
fn dispatch_ended(payload: &Value) {
    let id = text(payload, "dispatchId");
    let limit = HOP_LIMIT.load(Ordering::Relaxed);
    let _ = syscall("kv.delete", json!({ "key": format!("chain/{id}") }));
    let Some(reply) = kv_take(&format!("reply/{id}")).and_then(|v| {
        Some(Reply {
            agent_id: v["agentId"].as_str()?.to_string(),
            session_id: v["sessionId"].as_str()?.to_string(),
            chain: Chain::from_json(&v)?,
        })
    }) else {
        return;
    };
    let answer = payload["finalText"]
        .as_str()
        .filter(|t| !t.trim().is_empty())
        .map_or_else(
            || {
                format!(
                    "(no answer: the dispatch ended {})",
                    text(payload, "status")
                )
            },
            String::from,
        );
    let chain = Chain {
        correlation: reply.chain.correlation.clone(),
        hop: reply.chain.hop + 1,
    };
    let envelope = json!({
        "mode": "notify", "fromAgentId": text(payload, "agentId"),
        "fromSessionId": text(payload, "sessionId"), "correlationId": chain.correlation,
    });
    let result = if chain.hop > limit {
        // Delivered, but nobody is woken: the chain ends here, on record.
        let note = format!(
            "{answer}\n\n[a2a: hop limit {limit} reached in correlation {}; you were not woken]",
            chain.correlation
        );
        let mut env = envelope;
        env["mode"] = json!("silent");
        let message = json!({ "role": "user", "parts": [
            { "type": "data-a2a", "data": env }, { "type": "text", "text": note },
        ]});
        log::warn(&format!(
            "hop limit {limit} reached in correlation {}: answer left in {} without waking it",
            chain.correlation, reply.session_id
        ));
        syscall(
            "session.append",
            json!({ "sessionId": reply.session_id, "message": message }),
        )
        .map(|_| ())
        .map_err(from_syscall)
    } else {
        dispatch(&reply.session_id, &answer, envelope).and_then(|d| {
            let mut kept = chain.to_json();
            kept["atMs"] = json!(now_ms());
            kv_put(&format!("chain/{d}"), kept)
        })
    };
    if let Err(e) = result {
        log::error(&format!(
            "cannot deliver the answer of {id} to {} (agent {}): {e}",
            reply.session_id, reply.agent_id
        ));
    }
}

/// A fresh correlation id: time and a counter.
fn correlation_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}_{nanos:x}{:04x}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

aos_sdk::export!(A2a);
