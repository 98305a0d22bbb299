//! The engine's rules, with services that are real implementations of the
//! driver contract run in-process (as `aos bench`'s native guard is): each
//! appends its name to the output it is given, or rejects, or fails, as
//! configured; failures go to an in-memory `FailureLog`.

use super::*;
use crate::driver::{InvokeReply, Registration, ServiceInstance};
use crate::table::ServiceEntry;
use aos_manifest::ServiceKind;
use std::sync::Mutex;

/// What a test service does when called.
#[derive(Clone, Copy)]
enum Act {
    /// Appends its name to `output.seen`.
    Mark,
    /// Rejects.
    Reject,
    /// Fails (a handler error).
    Fail,
}

struct Native {
    name: &'static str,
    act: Act,
    hooks: Vec<String>,
}

impl Native {
    fn answer(&self, output: &str) -> Result<String, CallFault> {
        match self.act {
            Act::Fail => Err(CallFault::Handler(format!("{} broke", self.name))),
            _ => {
                let mut v: Value = serde_json::from_str(output).unwrap_or_default();
                let mut seen = v["seen"].as_array().cloned().unwrap_or_default();
                seen.push(json!(self.name));
                v["seen"] = json!(seen);
                Ok(v.to_string())
            }
        }
    }
}

impl ServiceInstance for Native {
    fn registration(&self) -> Registration {
        Registration {
            hooks: self.hooks.clone(),
            events: Vec::new(),
        }
    }

    fn admit<'a>(
        &'a self,
        _hook: &'a str,
        _input: HookInput,
        output: String,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<AdmitReply, CallFault>> {
        Box::pin(async move {
            match self.act {
                Act::Reject => Ok(AdmitReply::Reject(format!("{} says no", self.name))),
                _ => self.answer(&output).map(|o| AdmitReply::Allow(Some(o))),
            }
        })
    }

    fn transform<'a>(
        &'a self,
        _hook: &'a str,
        _input: HookInput,
        output: String,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<String, CallFault>> {
        Box::pin(async move { self.answer(&output) })
    }

    fn on_event(&self, _: String, _: String, _: Duration) -> BoxFuture<'_, Result<(), CallFault>> {
        Box::pin(async { Ok(()) })
    }

    fn invoke(
        &self,
        _: Vec<String>,
        _: Option<String>,
        _: Value,
        _: Duration,
    ) -> BoxFuture<'_, Result<InvokeReply, CallFault>> {
        Box::pin(async { Err(CallFault::Handler("no commands".into())) })
    }

    fn shutdown(&self, _: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[derive(Default)]
struct Failures(Mutex<Vec<HookFailure>>);

impl FailureLog for Failures {
    fn hook_failed(&self, f: HookFailure) -> BoxFuture<'static, ()> {
        if let Ok(mut v) = self.0.lock() {
            v.push(f);
        }
        Box::pin(async {})
    }
}

struct Rig {
    engine: HookEngine,
    failures: Arc<Failures>,
    events: Arc<EventBus>,
}

fn rig() -> Rig {
    let failures = Arc::new(Failures::default());
    let events = Arc::new(EventBus::new());
    let engine = HookEngine::new(
        events.clone(),
        Arc::new(ServiceTable::default()),
        failures.clone(),
    );
    Rig {
        engine,
        failures,
        events,
    }
}

impl Rig {
    fn add(
        &self,
        name: &'static str,
        owner: ServiceOwner,
        act: Act,
        hooks: &[&str],
    ) -> Arc<ServiceEntry> {
        let native = Native {
            name,
            act,
            hooks: hooks.iter().map(|h| h.to_string()).collect(),
        };
        let agent = match &owner {
            ServiceOwner::Session(_) => Some("ag_1".to_string()),
            ServiceOwner::Agent(a) => Some(a.clone()),
            ServiceOwner::System => None,
        };
        let e = Arc::new(ServiceEntry::new(
            format!("sv_{name}"),
            name.into(),
            ServiceKind::Wasm,
            owner,
            agent,
            Duration::from_secs(1),
            native.registration(),
            Arc::new(native),
        ));
        self.engine.table().insert(e.clone());
        e
    }
}

const SCOPE: HookScope<'static> = HookScope {
    agent_id: Some("ag_1"),
    session_id: Some("se_1"),
};

#[tokio::test]
async fn an_admission_chain_runs_system_then_agent_then_session_each_on_the_last_output() {
    let r = rig();
    // Registered out of order; called by level, then registration.
    r.add(
        "session",
        ServiceOwner::Session("se_1".into()),
        Act::Mark,
        &["tool.before"],
    );
    r.add(
        "agent",
        ServiceOwner::Agent("ag_1".into()),
        Act::Mark,
        &["tool.before"],
    );
    r.add(
        "system-1",
        ServiceOwner::System,
        Act::Mark,
        &["tool.before"],
    );
    r.add(
        "system-2",
        ServiceOwner::System,
        Act::Mark,
        &["tool.before"],
    );
    r.add(
        "other-session",
        ServiceOwner::Session("se_2".into()),
        Act::Mark,
        &["tool.before"],
    );
    let out = r
        .engine
        .admit(hook::TOOL_BEFORE, SCOPE, &json!({}), json!({}))
        .await;
    let out = out.expect("allowed");
    assert_eq!(
        out["seen"],
        json!(["system-1", "system-2", "agent", "session"]),
        "out of scope is skipped"
    );
}

#[tokio::test]
async fn the_first_rejection_stops_the_chain_and_names_its_skill() {
    let r = rig();
    r.add("first", ServiceOwner::System, Act::Mark, &["tool.before"]);
    r.add(
        "guard",
        ServiceOwner::Agent("ag_1".into()),
        Act::Reject,
        &["tool.before"],
    );
    let after = r.add(
        "after",
        ServiceOwner::Session("se_1".into()),
        Act::Mark,
        &["tool.before"],
    );
    let e = r
        .engine
        .admit(hook::TOOL_BEFORE, SCOPE, &json!({}), json!({}))
        .await
        .expect_err("rejected");
    assert_eq!(e.code, ErrorCode::HookRejected);
    assert!(
        e.message.contains("guard") && e.message.contains("says no"),
        "{}",
        e.message
    );
    assert_eq!(after.view()["calls"], 0, "the chain stopped");
    assert!(
        r.failures.0.lock().map(|f| f.is_empty()).unwrap_or(false),
        "a rejection is no failure"
    );
}

#[tokio::test]
async fn a_failing_admission_handler_rejects_and_three_in_a_row_put_it_in_error() {
    let r = rig();
    let broken = r.add("broken", ServiceOwner::System, Act::Fail, &["tool.before"]);
    let mut sub = r.events.subscribe(None).1;
    for _ in 0..3 {
        let e = r
            .engine
            .admit(hook::TOOL_BEFORE, SCOPE, &json!({}), json!({}))
            .await
            .expect_err("rejected");
        assert!(e.message.contains("handler failed"), "{}", e.message);
    }
    let logged = r.failures.0.lock().map(|f| f.len()).unwrap_or(0);
    assert_eq!(logged, 3, "each failure is reported");
    assert_eq!(broken.state().0, ServiceState::Error);
    assert!(
        !r.engine.has_handler(hook::TOOL_BEFORE, SCOPE),
        "its hooks are unregistered"
    );
    let event = sub.try_recv().expect("service.error on the bus");
    assert_eq!(event.name, "service.error");
    // With it gone, the operation passes.
    assert!(
        r.engine
            .admit(hook::TOOL_BEFORE, SCOPE, &json!({}), json!({}))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_failing_transform_leaves_the_data_and_an_algorithm_asks_only_the_most_specific() {
    let r = rig();
    r.add(
        "sys",
        ServiceOwner::System,
        Act::Mark,
        &["tool.after", "context.assemble"],
    );
    r.add(
        "broken",
        ServiceOwner::Agent("ag_1".into()),
        Act::Fail,
        &["tool.after"],
    );
    r.add(
        "agent-engine",
        ServiceOwner::Agent("ag_1".into()),
        Act::Mark,
        &["context.assemble"],
    );
    let out = r
        .engine
        .transform(hook::TOOL_AFTER, SCOPE, &json!({}), json!({"seen": []}))
        .await;
    assert_eq!(
        out["seen"],
        json!(["sys"]),
        "the broken handler changed nothing"
    );
    let (out, by) = r
        .engine
        .transform_by(
            hook::CONTEXT_ASSEMBLE,
            SCOPE,
            &json!({}),
            json!({"seen": []}),
        )
        .await;
    assert_eq!(
        (out["seen"].clone(), by.as_deref()),
        (json!(["agent-engine"]), Some("agent-engine"))
    );
}

#[tokio::test]
async fn a_service_waiting_in_its_own_syscall_is_not_called_again() {
    let r = rig();
    r.add("outer", ServiceOwner::System, Act::Mark, &["tool.before"]);
    r.add("inner", ServiceOwner::System, Act::Mark, &["tool.before"]);
    let out = within_service(
        "sv_outer",
        r.engine
            .admit(hook::TOOL_BEFORE, SCOPE, &json!({}), json!({})),
    )
    .await;
    assert_eq!(out.expect("allowed")["seen"], json!(["inner"]));
}
