//! The HTTP client of the CLI: finds the daemon (`AOS_API_URL` /
//! `AOS_API_TOKEN`, else the local `$AOS_HOME/daemon.json`) and posts syscalls.

use crate::config::{DaemonFile, default_home};
use crate::exit::Unreachable;
use anyhow::{Context, Result, anyhow};
use serde_json::Value;
use std::time::Duration;

/// Where and how to reach the daemon.
#[derive(Debug, Clone)]
pub struct Client {
    url: String,
    token: String,
}

impl Client {
    /// From the environment, else the local daemon's `daemon.json`.
    pub fn discover() -> Result<Client> {
        let env_url = std::env::var("AOS_API_URL").ok().filter(|s| !s.is_empty());
        let env_token = std::env::var("AOS_API_TOKEN")
            .ok()
            .filter(|s| !s.is_empty());
        if let (Some(url), Some(token)) = (&env_url, &env_token) {
            return Ok(Client {
                url: url.clone(),
                token: token.clone(),
            });
        }
        let home = default_home();
        let file = DaemonFile::read(&home).with_context(|| {
            Unreachable(format!(
                "no daemon found: set AOS_API_URL and AOS_API_TOKEN, or start one with `aos daemon start` (looked for {}/daemon.json)",
                home.display()
            ))
        })?;
        let token = match env_token {
            Some(t) => t,
            None => std::fs::read_to_string(&file.token_file)
                .with_context(|| {
                    Unreachable(format!(
                        "cannot read the token file {}",
                        file.token_file.display()
                    ))
                })?
                .trim()
                .to_string(),
        };
        Ok(Client {
            url: env_url.unwrap_or(file.url),
            token,
        })
    }

    /// The daemon a `daemon.json` names, with its token.
    pub fn of(file: &DaemonFile) -> Result<Client> {
        let token = std::fs::read_to_string(&file.token_file)
            .with_context(|| format!("cannot read the token file {}", file.token_file.display()))?;
        Ok(Client {
            url: file.url.clone(),
            token: token.trim().to_string(),
        })
    }

    /// Posts one syscall and returns the response document. A write that
    /// must not happen twice (`session.append`, `session.dispatch`) gets an
    /// `idempotencyKey` of this invocation unless it has one, and is posted
    /// once more if the connection drops before the answer: the daemon
    /// answers a repeated key with the first result and writes nothing.
    pub fn call(&self, request: &Value) -> Result<Value> {
        let mut request = request.clone();
        let retried = matches!(
            request["op"].as_str(),
            Some("session.append" | "session.dispatch")
        );
        if retried && request.get("idempotencyKey").is_none() {
            let key: [u8; 12] = rand::random();
            let key: String = key.iter().map(|b| format!("{b:02x}")).collect();
            request["idempotencyKey"] = Value::String(format!("cli-{key}"));
        }
        match self.post(&request) {
            Err(Dropped(e)) if retried => self
                .post(&request)
                .map_err(|Dropped(again)| again.context(format!("after a retry of {e:#}"))),
            r => r.map_err(|Dropped(e)| e),
        }
    }

    fn post(&self, request: &Value) -> std::result::Result<Value, Dropped> {
        let url = format!("{}/v1/syscall", self.url.trim_end_matches('/'));
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .build();
        let result = agent
            .post(&url)
            .set("Authorization", &format!("Bearer {}", self.token))
            .set("Content-Type", "application/json")
            .send_string(&request.to_string());
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => {
                return Err(Dropped(anyhow::Error::new(Unreachable(format!(
                    "cannot reach the daemon at {}: {e}",
                    self.url
                )))));
            }
        };
        let text = response.into_string().map_err(|e| {
            Dropped(anyhow::Error::new(Unreachable(format!(
                "reading the daemon's answer: {e}"
            ))))
        })?;
        serde_json::from_str(&text)
            .map_err(|_| Dropped(anyhow!("the daemon answered non-JSON: {text}")))
    }
}

/// A request whose answer did not arrive (or could not be read).
struct Dropped(anyhow::Error);

impl Client {
    /// Opens `/v1/events` for one session. When this returns, the daemon has
    /// subscribed: nothing written afterwards is missed.
    pub fn events(&self, session_id: &str) -> Result<Box<dyn std::io::Read + Send>> {
        let url = format!(
            "{}/v1/events?sessionId={session_id}",
            self.url.trim_end_matches('/')
        );
        let resp = ureq::AgentBuilder::new()
            .build()
            .get(&url)
            .set("Authorization", &format!("Bearer {}", self.token))
            .call()
            .map_err(|e| Unreachable(format!("cannot follow the session: {e}")))?;
        Ok(Box::new(resp.into_reader()))
    }
}

/// Reads SSE from `reader`, calling `on_event(name, data)` per event; stops
/// when `on_event` returns false or the stream ends.
pub fn read_events(
    reader: Box<dyn std::io::Read + Send>,
    mut on_event: impl FnMut(&str, &Value) -> bool,
) {
    use std::io::BufRead;
    let mut name = String::new();
    for line in std::io::BufReader::new(reader).lines() {
        let Ok(line) = line else { return };
        if let Some(n) = line.strip_prefix("event:") {
            name = n.trim().to_string();
        } else if let Some(d) = line.strip_prefix("data:") {
            let v: Value = serde_json::from_str(d.trim()).unwrap_or(Value::Null);
            if !on_event(&name, &v) {
                return;
            }
        }
    }
}

/// `GET {url}/health`, if it answers (`503` included: a node that is
/// stopping or cannot reach its store answers, saying so).
pub fn health(url: &str) -> Option<Value> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(2))
        .build();
    let resp = match agent
        .get(&format!("{}/health", url.trim_end_matches('/')))
        .call()
    {
        Ok(r) | Err(ureq::Error::Status(503, r)) => r,
        Err(_) => return None,
    };
    resp.into_json().ok()
}
