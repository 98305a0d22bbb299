//! One service's connection: the kernel's requests and their pending
//! answers, the service's `register` and `syscall` requests, and every way
//! a peer can misbehave (garbage, over-long lines, unknown ids, a closed
//! socket) contained without stopping the daemon.

use crate::UdsConfig;
use crate::frame::{Frame, FrameReader};
use crate::process;
use crate::protocol::{self, Incoming, codes};
use aos_extension::{CallFault, Registration, SyscallPort};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{oneshot, watch};

type Answer = Result<Value, String>;

/// How long after an event a legacy service's syscalls count as its
/// handler's (for the event depth limit).
const EVENT_WINDOW: Duration = Duration::from_secs(2);

/// The shared state of one running service.
pub(crate) struct Conn {
    pub skill: String,
    pub instance_id: String,
    pub pid: u32,
    pub config: UdsConfig,
    /// What `register` is answered with (instance, owner, config).
    pub welcome: Value,
    pub port: Arc<dyn SyscallPort>,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
    next_id: AtomicU64,
    /// The caller of the command running now (`service.caller`).
    pub caller: Mutex<Option<Value>>,
    /// Set once the kernel asked the service to stop.
    pub stopping: AtomicBool,
    /// Why the shim killed the process, if it did.
    fault: Mutex<Option<String>>,
    malformed: AtomicU32,
    /// The depth of the last event sent and when (its syscalls soon after
    /// are taken as caused by it: events are notifications, unanswered).
    last_event: Mutex<(u32, Option<std::time::Instant>)>,
    /// Syscalls being answered; the read loop waits for a permit.
    in_flight: Arc<tokio::sync::Semaphore>,
    /// `Some(reason)` once the process has ended.
    pub ended: watch::Sender<Option<String>>,
}

impl Conn {
    pub(crate) fn new(
        skill: String,
        instance_id: String,
        pid: u32,
        config: UdsConfig,
        welcome: Value,
        port: Arc<dyn SyscallPort>,
        writer: OwnedWriteHalf,
    ) -> Conn {
        Conn {
            skill,
            instance_id,
            pid,
            welcome,
            port,
            writer: tokio::sync::Mutex::new(writer),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            caller: Mutex::new(None),
            stopping: AtomicBool::new(false),
            fault: Mutex::new(None),
            malformed: AtomicU32::new(0),
            last_event: Mutex::new((0, None)),
            in_flight: Arc::new(tokio::sync::Semaphore::new(config.max_in_flight.max(1))),
            ended: watch::Sender::new(None),
            config,
        }
    }

    /// Writes one line; a service that reads nothing for the write
    /// deadline is killed.
    pub(crate) async fn send(&self, mut line: Vec<u8>) -> std::io::Result<()> {
        line.push(b'\n');
        let deadline = self.config.write_deadline;
        let write = async { self.writer.lock().await.write_all(&line).await };
        match tokio::time::timeout(deadline, write).await {
            Ok(r) => r,
            Err(_) => {
                self.fatal(format!("read nothing from its socket for {deadline:?}"));
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the service does not read its socket",
                ))
            }
        }
    }

    /// Notes that an event of the running depth is being sent.
    pub(crate) fn event_sent(&self) {
        if let Ok(mut e) = self.last_event.lock() {
            *e = (
                aos_extension::event_depth(),
                Some(std::time::Instant::now()),
            );
        }
    }

    /// The depth a syscall now runs at: that of an event sent in the last
    /// [`EVENT_WINDOW`], else 0.
    fn event_depth(&self) -> u32 {
        self.last_event
            .lock()
            .ok()
            .and_then(|e| {
                let (depth, at) = *e;
                at.filter(|t| t.elapsed() < EVENT_WINDOW).map(|_| depth)
            })
            .unwrap_or(0)
    }

    /// The reason the process ended, if it has.
    pub(crate) fn gone(&self) -> Option<String> {
        self.ended.borrow().clone()
    }

    /// Sends a request and waits for its answer until `timeout`. An answer
    /// that comes later finds no request and is dropped.
    pub(crate) async fn request(
        &self,
        method: &str,
        params: &str,
        timeout: Duration,
    ) -> Result<Value, CallFault> {
        if let Some(reason) = self.gone() {
            return Err(CallFault::Gone(reason));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id, tx);
        }
        let answer = tokio::time::timeout(timeout, async {
            self.send(protocol::request(id, method, params))
                .await
                .map_err(|e| CallFault::Gone(format!("cannot write to the service: {e}")))?;
            rx.await.map_err(|_| {
                CallFault::Gone(
                    self.gone()
                        .unwrap_or_else(|| "the service went away".into()),
                )
            })
        })
        .await;
        match answer {
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(message))) => Err(CallFault::Handler(message)),
            Ok(Err(fault)) => Err(fault),
            Err(_) => {
                if let Ok(mut p) = self.pending.lock() {
                    p.remove(&id);
                }
                Err(CallFault::Timeout(timeout))
            }
        }
    }

    /// Kills the process for a protocol fault; the watcher reports it.
    pub(crate) fn fatal(&self, reason: String) {
        if self.gone().is_some() {
            // Ended and reaped: its pid may belong to someone else now.
            return;
        }
        tracing::error!(skill = %self.skill, instance = %self.instance_id, %reason, "killing the service");
        if let Ok(mut f) = self.fault.lock() {
            f.get_or_insert(reason);
        }
        process::kill_group(self.pid);
    }

    /// The connection ended. Usually the process is exiting (its status is
    /// the better reason): give it a moment, then kill it.
    async fn lost(&self, reason: String) {
        let mut ended = self.ended.subscribe();
        let exited =
            tokio::time::timeout(Duration::from_millis(500), ended.wait_for(Option::is_some));
        if exited.await.is_err() {
            self.fatal(format!("{reason} but kept running"));
        }
    }

    /// Called once the process ended: fails what waits on it.
    pub(crate) fn finish(&self, status: String) -> String {
        let reason = self
            .fault
            .lock()
            .ok()
            .and_then(|mut f| f.take())
            .unwrap_or(status);
        self.ended.send_replace(Some(reason.clone()));
        if let Ok(mut p) = self.pending.lock() {
            p.clear();
        }
        reason
    }

    /// Reads the service's messages until the connection ends.
    pub(crate) async fn read_loop(
        self: Arc<Self>,
        read: OwnedReadHalf,
        registered: oneshot::Sender<Registration>,
    ) {
        let mut frames = FrameReader::new(read, self.config.max_frame);
        let mut registered = Some(registered);
        loop {
            match frames.next().await {
                Ok(Some(Frame::Line(line))) => self.handle(&line, &mut registered).await,
                Ok(Some(Frame::TooLong)) => {
                    let max = self.config.max_frame;
                    return self.fatal(format!("sent a message over the {max}-byte limit"));
                }
                Ok(None) => return self.lost("closed its socket".into()).await,
                Err(e) => return self.lost(format!("socket error: {e}")).await,
            }
        }
    }

    async fn handle(
        self: &Arc<Self>,
        line: &[u8],
        registered: &mut Option<oneshot::Sender<Registration>>,
    ) {
        match protocol::parse(line) {
            Err(e) => self.malformed(e).await,
            Ok(Incoming::Response { id, result }) => self.answer(&id, result),
            Ok(Incoming::Notification { method }) => {
                tracing::debug!(skill = %self.skill, %method, "notification from the service ignored");
            }
            Ok(Incoming::Request { id, method, params }) => match method.as_str() {
                "register" => self.register(id, &params, registered).await,
                "syscall" if registered.is_some() => {
                    let e = protocol::error(&id, codes::INVALID_REQUEST, "register first", None);
                    let _ = self.send(e).await;
                }
                "syscall" => {
                    // Back-pressure: past the in-flight limit, stop reading
                    // until an answer is written.
                    let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
                        return;
                    };
                    let conn = self.clone();
                    let depth = self.event_depth();
                    tokio::spawn(aos_extension::at_event_depth(depth, async move {
                        conn.syscall(id, params).await;
                        drop(permit);
                    }));
                }
                other => {
                    let msg = format!("the kernel takes `register` and `syscall`, not {other:?}");
                    let _ = self
                        .send(protocol::error(&id, codes::METHOD_NOT_FOUND, &msg, None))
                        .await;
                }
            },
        }
    }

    /// A line that is not a message: answered with an error; too many end
    /// the service.
    async fn malformed(&self, e: protocol::ProtocolError) {
        tracing::warn!(skill = %self.skill, instance = %self.instance_id, error = %e, "malformed message from the service");
        let _ = self
            .send(protocol::error(&e.id, e.code, &e.message, None))
            .await;
        let n = self.malformed.fetch_add(1, Ordering::Relaxed) + 1;
        if n > self.config.max_malformed {
            self.fatal(format!("sent {n} malformed messages (last: {e})"));
        }
    }

    fn answer(&self, id: &Value, result: Answer) {
        let waiting = id
            .as_u64()
            .and_then(|n| self.pending.lock().ok()?.remove(&n));
        match waiting {
            Some(tx) => {
                let _ = tx.send(result);
            }
            None => {
                tracing::warn!(skill = %self.skill, instance = %self.instance_id, %id, "answer to no waiting request (late, or a wrong id) dropped");
            }
        }
    }

    async fn register(
        &self,
        id: Value,
        params: &Map<String, Value>,
        registered: &mut Option<oneshot::Sender<Registration>>,
    ) {
        let reply = match (registered.is_some(), protocol::registration(params)) {
            (false, _) => protocol::error(&id, codes::INVALID_REQUEST, "already registered", None),
            (true, Err(msg)) => protocol::error(&id, codes::INVALID_PARAMS, &msg, None),
            (true, Ok(r)) => {
                let line = protocol::result(&id, &self.welcome);
                if let Some(tx) = registered.take() {
                    let _ = tx.send(r);
                }
                line
            }
        };
        let _ = self.send(reply).await;
    }

    /// Runs one syscall for the service, as its principal.
    async fn syscall(&self, id: Value, mut params: Map<String, Value>) {
        let Some(Value::String(op)) = params.remove("op") else {
            let e = protocol::error(
                &id,
                codes::INVALID_PARAMS,
                "`op` (a string) names the syscall",
                None,
            );
            let _ = self.send(e).await;
            return;
        };
        let result = if op == aos_types::CALLER_OP {
            self.caller
                .lock()
                .ok()
                .and_then(|c| c.clone())
                .map(aos_types::Data::Value)
                .ok_or_else(|| {
                    aos_types::SyscallError::invalid(format!(
                        "{op} answers only while a command (`invoke`) runs"
                    ))
                })
        } else {
            self.port.call(op, Value::Object(params).to_string()).await
        };
        let line = match result {
            Ok(data) => protocol::result(&id, &data),
            Err(e) => protocol::error(
                &id,
                codes::SYSCALL_FAILED,
                &e.message,
                Some(json!({ "code": e.code, "details": e.details })),
            ),
        };
        let _ = self.send(line).await;
    }
}
