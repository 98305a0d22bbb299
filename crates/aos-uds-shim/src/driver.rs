//! The kernel's [`ServiceDriver`] for legacy services: socket, process,
//! the `register` handshake under its deadline, and the instance that turns
//! hook, event and command calls into messages.

use crate::UdsConfig;
use crate::conn::Conn;
use crate::process::{self, Launch};
use crate::protocol;
use aos_extension::{
    AdmitReply, CallFault, HookInput, InvokeReply, Registration, ServiceDriver, ServiceInstance,
    ServiceOwner, ServiceStart,
};
use aos_manifest::ServiceKind;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Longest socket path a `sockaddr_un` holds, with its terminating zero.
const MAX_SOCKET_PATH: usize = 107;

/// Runs `service:` entries that are not `.wasm` as subprocesses.
#[derive(Debug, Clone, Default)]
pub struct UdsDriver {
    config: UdsConfig,
}

impl UdsDriver {
    /// A driver with these limits.
    pub fn new(config: UdsConfig) -> Self {
        UdsDriver { config }
    }
}

impl ServiceDriver for UdsDriver {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Legacy
    }

    fn start(
        &self,
        spec: ServiceStart,
    ) -> BoxFuture<'static, Result<Arc<dyn ServiceInstance>, String>> {
        let config = self.config.clone();
        Box::pin(async move {
            let i = start(config, spec).await?;
            Ok(Arc::new(i) as Arc<dyn ServiceInstance>)
        })
    }
}

/// A private directory for the instances' sockets.
fn run_dir(home: &Path) -> Result<PathBuf, String> {
    let dir = home.join("run");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot restrict {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Binds the instance's socket, mode 0600.
fn bind(home: &Path, instance_id: &str) -> Result<(UnixListener, PathBuf), String> {
    let path = run_dir(home)?.join(format!("{instance_id}.sock"));
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(format!(
            "the socket path {} is longer than {MAX_SOCKET_PATH} bytes: use a shorter $AOS_HOME",
            path.display()
        ));
    }
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).map_err(|e| format!("cannot bind {}: {e}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", path.display()))?;
    Ok((listener, path))
}

/// The environment a service process gets (`skills.md` §4).
fn environment(spec: &ServiceStart, socket: &Path, python: &Path) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "AOS_SERVICE_SOCKET".to_string(),
            socket.display().to_string(),
        ),
        ("AOS_API_URL".into(), spec.api_url.clone()),
        ("AOS_SKILL_NAME".into(), spec.skill.name.clone()),
        ("AOS_SKILL_DIR".into(), spec.skill_dir.display().to_string()),
        ("AOS_INSTANCE_ID".into(), spec.instance_id.clone()),
        (
            "AOS_OWNER_TYPE".into(),
            format!("{:?}", spec.owner.kind()).to_lowercase(),
        ),
        ("PYTHONPATH".into(), python.display().to_string()),
        ("PYTHONUNBUFFERED".into(), "1".into()),
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
    ];
    if let Some(t) = &spec.api_token {
        env.push(("AOS_API_TOKEN".into(), t.clone()));
    }
    match &spec.owner {
        ServiceOwner::System => {}
        ServiceOwner::Agent(a) => env.push(("AOS_AGENT_ID".into(), a.clone())),
        ServiceOwner::Session(s) => env.push(("AOS_SESSION_ID".into(), s.clone())),
    }
    env
}

/// Starts the process, accepts its connection and waits for `register`.
async fn start(config: UdsConfig, spec: ServiceStart) -> Result<UdsInstance, String> {
    let svc = spec
        .skill
        .service
        .as_ref()
        .ok_or("the skill has no service")?;
    let (listener, socket) = bind(&spec.home, &spec.instance_id)?;
    let python = crate::python::install(&spec.home)
        .map_err(|e| format!("cannot install the Python aos_sdk: {e}"))?;
    // `./service.py` → `DIR/service.py` (the manifest keeps it inside DIR).
    let service: PathBuf = spec.skill_dir.join(
        Path::new(&svc.path)
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect::<PathBuf>(),
    );
    let spawned = process::spawn(Launch {
        service: &service,
        cwd: &spec.skill_dir,
        pass_env: &spec.skill.capabilities.env,
        set_env: environment(&spec, &socket, &python),
        skill: &spec.skill.name,
        instance: &spec.instance_id,
        max_line: config.max_output_line,
    });
    let mut spawned = match spawned {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&socket);
            return Err(e.to_string());
        }
    };
    let deadline = Instant::now() + config.register_timeout;
    let welcome = json!({
        "instanceId": spec.instance_id, "skillName": spec.skill.name,
        "ownerType": spec.owner.kind(), "ownerId": spec.owner.id(), "config": spec.config,
    });
    let handshake = async {
        let stream = tokio::select! {
            r = listener.accept() => r.map_err(|e| format!("accept failed: {e}"))?.0,
            s = spawned.child.wait() => return Err(early_exit(s, "connecting", &spawned.tail)),
            () = tokio::time::sleep_until(deadline) => {
                return Err(format!("did not connect to $AOS_SERVICE_SOCKET within {:?}", config.register_timeout));
            }
        };
        drop(listener);
        let _ = std::fs::remove_file(&socket);
        let (read, write) = stream.into_split();
        let conn = Arc::new(Conn::new(
            spec.skill.name.clone(),
            spec.instance_id.clone(),
            spawned.pid,
            config.clone(),
            welcome,
            spec.syscalls.clone(),
            write,
        ));
        let (tx, rx) = oneshot::channel();
        tokio::spawn(conn.clone().read_loop(read, tx));
        let registration = tokio::select! {
            r = rx => r.map_err(|_| format!("closed the connection before registering; output: {}", spawned.tail.text())),
            s = spawned.child.wait() => Err(early_exit(s, "registering", &spawned.tail)),
            () = tokio::time::sleep_until(deadline) => {
                Err(format!("did not send `register` within {:?}", config.register_timeout))
            }
        };
        match registration {
            Ok(r) => Ok((conn, r)),
            Err(e) => {
                // Ends the reader's watch: the process is killed below.
                conn.finish(e.clone());
                Err(e)
            }
        }
    };
    match handshake.await {
        Ok((conn, registration)) => {
            tokio::spawn(watch(conn.clone(), spawned));
            Ok(UdsInstance { conn, registration })
        }
        Err(e) => {
            spawned.group.kill(spawned.pid).await;
            let _ = spawned.child.wait().await;
            let _ = std::fs::remove_file(&socket);
            Err(e)
        }
    }
}

fn early_exit(
    s: std::io::Result<std::process::ExitStatus>,
    phase: &str,
    tail: &process::Tail,
) -> String {
    let status = s.map_or_else(|e| e.to_string(), |s| s.to_string());
    format!(
        "exited ({status}) before {phase}; its last output: {}",
        tail.text()
    )
}

/// Waits for the process to end, kills what it left in its group, fails
/// what waits on it, and reports an exit nobody asked for.
async fn watch(conn: Arc<Conn>, mut spawned: process::Spawned) {
    let status = spawned.child.wait().await;
    // Decided before the waiting calls fail (which may ask for a stop).
    let asked = conn.stopping.load(Ordering::SeqCst);
    let left = spawned.group.kill(spawned.pid).await;
    if left > 0 {
        tracing::info!(skill = %conn.skill, instance = %conn.instance_id, left, "processes the service left behind were killed");
    }
    let status = status.map_or_else(|e| format!("wait failed: {e}"), |s| format!("process {s}"));
    let reason = conn.finish(status);
    if asked {
        tracing::info!(skill = %conn.skill, instance = %conn.instance_id, %reason, "service stopped");
    } else {
        conn.port.exited(reason);
    }
}

/// A running legacy service.
pub struct UdsInstance {
    conn: Arc<Conn>,
    registration: Registration,
}

impl UdsInstance {
    async fn hook(
        &self,
        hook: &str,
        input: &str,
        output: &str,
        timeout: Duration,
    ) -> Result<Value, CallFault> {
        let params = format!(
            r#"{{"name":{},"input":{input},"output":{output}}}"#,
            Value::from(hook)
        );
        self.conn.request("hook", &params, timeout).await
    }

    async fn stop(&self) {
        let c = &self.conn;
        c.stopping.store(true, Ordering::SeqCst);
        let mut ended = c.ended.subscribe();
        if ended.borrow().is_some() {
            return;
        }
        let grace = tokio::time::timeout(c.config.shutdown_grace, async {
            // A service that does not read its socket cannot stall the stop.
            let _ = c.send(protocol::notification("shutdown", &json!({}))).await;
            ended.wait_for(Option::is_some).await.map(|_| ())
        });
        if !matches!(grace.await, Ok(Ok(()))) {
            tracing::warn!(skill = %c.skill, instance = %c.instance_id, "no exit within the grace period: killing its process group");
            process::kill_group(c.pid);
            let _ =
                tokio::time::timeout(Duration::from_secs(5), ended.wait_for(Option::is_some)).await;
        }
    }
}

impl ServiceInstance for UdsInstance {
    fn registration(&self) -> Registration {
        self.registration.clone()
    }

    fn admit<'a>(
        &'a self,
        hook: &'a str,
        input: HookInput,
        output: String,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<AdmitReply, CallFault>> {
        Box::pin(async move {
            let v = self.hook(hook, input.text(), &output, timeout).await?;
            Ok(protocol::admit_reply(v, &self.conn.skill))
        })
    }

    fn transform<'a>(
        &'a self,
        hook: &'a str,
        input: HookInput,
        output: String,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<String, CallFault>> {
        Box::pin(async move {
            let v = self.hook(hook, input.text(), &output, timeout).await?;
            Ok(protocol::transform_reply(v).unwrap_or(output))
        })
    }

    fn on_event(
        &self,
        name: String,
        payload: String,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<(), CallFault>> {
        Box::pin(async move {
            if let Some(reason) = self.conn.gone() {
                return Err(CallFault::Gone(reason));
            }
            let line = format!(
                r#"{{"jsonrpc":"2.0","method":"event","params":{{"name":{},"payload":{payload}}}}}"#,
                Value::from(name)
            );
            self.conn.event_sent();
            match tokio::time::timeout(timeout, self.conn.send(line.into_bytes())).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(CallFault::Gone(format!("cannot write to the service: {e}"))),
                Err(_) => Err(CallFault::Timeout(timeout)),
            }
        })
    }

    fn invoke(
        &self,
        args: Vec<String>,
        stdin: Option<String>,
        caller: Value,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<InvokeReply, CallFault>> {
        Box::pin(async move {
            let params = json!({ "args": args, "stdin": stdin, "caller": caller }).to_string();
            if let Ok(mut c) = self.conn.caller.lock() {
                *c = Some(caller);
            }
            let v = self.conn.request("invoke", &params, timeout).await;
            if let Ok(mut c) = self.conn.caller.lock() {
                *c = None;
            }
            protocol::invoke_reply(v?).map_err(CallFault::Handler)
        })
    }

    fn shutdown(&self, _timeout: Duration) -> BoxFuture<'_, ()> {
        Box::pin(self.stop())
    }

    fn pid(&self) -> Option<u32> {
        Some(self.conn.pid)
    }
}
