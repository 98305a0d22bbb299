//! A kernel with the real UDS shim on a temp SQLite store and skill root,
//! and helpers to write legacy skills (real processes, real sockets).

#![allow(dead_code)]

use aos_kernel::hooks::HookScope;
use aos_kernel::services::ServiceDriver;
use aos_kernel::{Kernel, KernelConfig, Principal};
use aos_types::{Request, SyscallError};
use aos_uds_shim::{UdsConfig, UdsDriver};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub struct Env {
    pub k: Kernel,
    pub root: tempfile::TempDir,
    pub home: tempfile::TempDir,
    _db: tempfile::TempDir,
}

/// The seed README's `my-guard` service, verbatim.
pub const SEED_MY_GUARD: &str = aos_uds_shim::python::SEED_MY_GUARD;

/// Writes a skill `name` whose service file `file` holds `source`, with
/// `caps` (YAML lines under `capabilities:`).
pub fn skill(root: &Path, name: &str, file: &str, source: &[u8], caps: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join(file);
    std::fs::write(&path, source).expect("write service");
    let mut perms = std::fs::metadata(&path).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).expect("chmod");
    let text = format!(
        "---\nname: {name}\ndescription: test skill {name}\nservice: ./{file}\ncapabilities:\n{caps}\n---\nTest skill.\n"
    );
    std::fs::write(dir.join("SKILL.md"), text).expect("write SKILL.md");
    dir
}

/// A Python service.
pub fn python(root: &Path, name: &str, source: &str, caps: &str) -> PathBuf {
    skill(root, name, "service.py", source.as_bytes(), caps)
}

/// Limits short enough for tests of the failure paths.
pub fn quick() -> UdsConfig {
    UdsConfig {
        register_timeout: Duration::from_secs(3),
        shutdown_grace: Duration::from_secs(1),
        ..UdsConfig::default()
    }
}

impl Env {
    pub async fn new(setup: impl FnOnce(&Path)) -> Env {
        Env::with(setup, quick(), Default::default()).await
    }

    pub async fn with(setup: impl FnOnce(&Path), uds: UdsConfig, llm: aos_llm::LlmConfig) -> Env {
        Env::with_defaults(setup, uds, llm, Default::default()).await
    }

    /// [`Env::with`] and the AOSCB defaults `defaults`.
    pub async fn with_defaults(
        setup: impl FnOnce(&Path),
        uds: UdsConfig,
        llm: aos_llm::LlmConfig,
        defaults: aos_kernel::AoscbDefaults,
    ) -> Env {
        let root = tempfile::tempdir().expect("root");
        setup(root.path());
        let home = tempfile::tempdir().expect("home");
        let db = tempfile::tempdir().expect("db");
        let store = aos_store::Store::open(&format!("sqlite://{}/aos.db", db.path().display()))
            .await
            .expect("store");
        let drivers: Vec<Arc<dyn ServiceDriver>> = vec![Arc::new(UdsDriver::new(uds))];
        let config = KernelConfig {
            defaults,
            ..KernelConfig::embedded(home.path().to_path_buf(), vec![root.path().to_path_buf()])
        };
        let runner = aos_react::ReactUnit::runner(llm).expect("runner");
        let k = Kernel::start(store, config, drivers, runner)
            .await
            .expect("kernel");
        Env {
            k,
            root,
            home,
            _db: db,
        }
    }

    pub async fn call(&self, req: Value) -> Value {
        let r = self
            .k
            .syscall(&Principal::Operator, Request::from_value(req).expect("req"))
            .await;
        serde_json::to_value(r).expect("ser")
    }

    pub async fn ok(&self, req: Value) -> Value {
        let r = self.call(req.clone()).await;
        assert_eq!(r["ok"], true, "{req} -> {r}");
        r["data"].clone()
    }

    /// Starts `name` for `owner`; returns the instance view.
    pub async fn start(&self, name: &str, owner: &str) -> Value {
        self.ok(json!({"op": "skill.start", "name": name, "owner": owner}))
            .await
    }

    /// An agent and one of its sessions.
    pub async fn session(&self) -> (String, String) {
        let a = self.ok(json!({"op": "agent.create"})).await;
        let agent = a["agentId"].as_str().expect("agent").to_string();
        let s = self
            .ok(json!({"op": "session.create", "agentId": agent, "title": "the test session"}))
            .await;
        (agent, s["sessionId"].as_str().expect("session").to_string())
    }

    pub async fn admit(
        &self,
        hook: aos_types::Admission,
        session: (&str, &str),
        output: Value,
    ) -> Result<Value, SyscallError> {
        let scope = HookScope {
            agent_id: Some(session.0),
            session_id: Some(session.1),
        };
        let input = json!({"toolCallId": "call_1", "agentId": session.0, "sessionId": session.1});
        self.k.hooks().admit(hook, scope, &input, output).await
    }

    pub async fn transform(
        &self,
        hook: impl aos_types::Transforming,
        session: (&str, &str),
        output: Value,
    ) -> Value {
        let scope = HookScope {
            agent_id: Some(session.0),
            session_id: Some(session.1),
        };
        let input = json!({"toolCallId": "call_1", "rawResult": "", "exitCode": 0});
        self.k.hooks().transform(hook, scope, &input, output).await
    }

    pub async fn service(&self, id: &str) -> Value {
        self.ok(json!({"op": "service.get", "instanceId": id}))
            .await
    }

    /// Waits (up to 10 s) until the instance's state is `state`.
    pub async fn wait_state(&self, id: &str, state: &str) -> Value {
        for _ in 0..200 {
            let v = self.service(id).await;
            if v["state"] == state {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{id} never reached {state}: {}", self.service(id).await);
    }

    pub async fn log(&self, op: &str) -> Vec<Value> {
        let r = self
            .ok(json!({"op": "runtime.log.list", "operation": op, "limit": 1000}))
            .await;
        r["entries"].as_array().expect("entries").clone()
    }

    /// Runs one dispatch to its end; returns its id.
    pub async fn dispatch(&self, session: &str, text: &str) -> String {
        let d = self
            .ok(json!({"op": "session.dispatch", "sessionId": session, "message": {"role": "user", "content": text}}))
            .await;
        self.ok(json!({"op": "session.wait", "dispatchId": d["dispatchId"], "timeoutMs": 30_000}))
            .await;
        d["dispatchId"].as_str().expect("dispatchId").to_string()
    }
}

/// Whether a process exists (a zombie counts until reaped).
pub fn alive(pid: u64) -> bool {
    aos_uds_shim::process::alive(u32::try_from(pid).expect("pid"))
}

/// Waits (up to 10 s) until `pid` is gone.
pub async fn wait_gone(pid: u64) {
    for _ in 0..200 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("process {pid} still runs");
}
