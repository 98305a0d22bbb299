//! A kernel with the real WASM host on a temp SQLite store and a temp skill
//! root, and helpers to write skills around the test components.

#![allow(dead_code)]

use aos_kernel::hooks::HookScope;
use aos_kernel::services::ServiceDriver;
use aos_kernel::{Kernel, KernelConfig, Principal};
use aos_types::{Request, SyscallError};
use aos_wasm_host::{WasmHost, WasmHostConfig};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Env {
    pub k: Kernel,
    pub root: tempfile::TempDir,
    pub home: tempfile::TempDir,
    _db: tempfile::TempDir,
}

/// Writes a skill `name` whose service is `wasm` and whose frontmatter
/// carries `caps` (YAML lines under `capabilities:`).
pub fn skill(root: &Path, name: &str, wasm: &str, caps: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(wasm, dir.join("service.wasm")).expect("copy component");
    let text = format!(
        "---\nname: {name}\ndescription: test skill {name}\nservice: ./service.wasm\ncapabilities:\n{caps}\n---\nTest skill.\n"
    );
    std::fs::write(dir.join("SKILL.md"), text).expect("write SKILL.md");
    dir
}

/// A guest skill with the test component.
pub fn guest(root: &Path, name: &str, caps: &str) -> PathBuf {
    skill(root, name, aos_test_artifacts::TEST_GUEST, caps)
}

impl Env {
    /// Starts a kernel over skills written by `setup` into the skill root.
    pub async fn new(setup: impl FnOnce(&Path)) -> Env {
        Env::with_llm(setup, Default::default()).await
    }

    /// [`Env::new`] with an LLM endpoint (a scripted server).
    pub async fn with_llm(setup: impl FnOnce(&Path), llm: aos_llm::LlmConfig) -> Env {
        let root = tempfile::tempdir().expect("root");
        setup(root.path());
        let home = tempfile::tempdir().expect("home");
        let db = tempfile::tempdir().expect("db");
        let store = aos_store::Store::open(&format!("sqlite://{}/aos.db", db.path().display()))
            .await
            .expect("store");
        let host = WasmHost::new(WasmHostConfig {
            cache_dir: home.path().join("cache"),
            pooling: false,
            direct_calls: true,
            precompiled: &[],
        })
        .expect("host");
        let drivers: Vec<Arc<dyn ServiceDriver>> = vec![Arc::new(host)];
        let config = KernelConfig::embedded(
            home.path().to_path_buf(),
            vec![root.path().to_path_buf(), aos_testkit::builtin_skills()],
        );
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

    /// Starts `name` for `owner` with `config`; returns the instance id.
    pub async fn start(&self, name: &str, owner: &str, config: Value) -> String {
        let d = self
            .ok(json!({"op": "skill.start", "name": name, "owner": owner, "config": config}))
            .await;
        d["instanceId"].as_str().expect("instanceId").to_string()
    }

    /// An agent and one of its sessions.
    pub async fn session(&self) -> (String, String) {
        let a = self.ok(json!({"op": "agent.create"})).await;
        let agent = a["agentId"].as_str().expect("agent").to_string();
        let s = self
            .ok(json!({"op": "session.create", "agentId": agent}))
            .await;
        (agent, s["sessionId"].as_str().expect("session").to_string())
    }

    pub async fn admit(
        &self,
        hook: aos_types::Admission,
        agent: Option<&str>,
        session: Option<&str>,
        output: Value,
    ) -> Result<Value, SyscallError> {
        let scope = HookScope {
            agent_id: agent,
            session_id: session,
        };
        // Handed over, as the kernel's hot hooks do: written as JSON only if
        // a handler reads it (the UDS tests pass theirs borrowed).
        self.k
            .hooks()
            .admit(
                hook,
                scope,
                json!({"sessionId": session, "agentId": agent}),
                output,
            )
            .await
    }

    pub async fn transform(
        &self,
        hook: impl aos_types::Transforming,
        agent: Option<&str>,
        session: Option<&str>,
        output: Value,
    ) -> Value {
        let scope = HookScope {
            agent_id: agent,
            session_id: session,
        };
        self.k
            .hooks()
            .transform(hook, scope, &json!({"sessionId": session}), output)
            .await
    }

    pub async fn invoke(&self, name: &str, args: &[&str]) -> Value {
        self.call(json!({"op": "skill.invoke", "name": name, "args": args}))
            .await
    }

    pub async fn service(&self, id: &str) -> Value {
        self.ok(json!({"op": "service.get", "instanceId": id}))
            .await
    }

    pub async fn log(&self, op: &str) -> Vec<Value> {
        let r = self
            .ok(json!({"op": "runtime.log.list", "operation": op, "limit": 1000}))
            .await;
        r["entries"].as_array().expect("entries").clone()
    }
}
