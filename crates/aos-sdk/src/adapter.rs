//! Bridges a [`Service`] to the generated WIT bindings: JSON text in and out,
//! WIT records to SDK types, hook and event indices back to their names.

use crate::bindings::aos::kernel::types;
use crate::bindings::exports::aos::kernel::service::Guest;
use crate::{Input, Owner, Service, Value, Verdict};
use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::OnceLock;

/// The generated `Guest` implementation for a [`Service`] (used by [`crate::export!`]).
pub struct Adapter<T>(PhantomData<T>);

/// What `init` registered: the kernel names a hook or event by its index
/// in these lists.
static REGISTERED: OnceLock<types::Registration> = OnceLock::new();

thread_local! {
    /// The service `init` made (a component runs on one thread; the host
    /// never overlaps calls into one instance).
    static SERVICE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Runs `f` on the service; `None` before `init`.
fn with<T: Service, R>(f: impl FnOnce(&mut T) -> R) -> Option<R> {
    SERVICE.with(|s| {
        let mut s = s.borrow_mut();
        s.as_mut()?.downcast_mut::<T>().map(f)
    })
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// The name at `index` of the registered hooks or events ("" if none).
fn name(index: u32, list: fn(&types::Registration) -> &[String]) -> &'static str {
    REGISTERED
        .get()
        .and_then(|r| list(r).get(index as usize))
        .map_or("", String::as_str)
}

fn hook_name(index: u32) -> &'static str {
    name(index, |r| &r.hooks)
}

impl<T: Service> Guest for Adapter<T> {
    fn init(owner: types::Owner, config: String) -> Result<types::Registration, String> {
        let owner = match (owner.kind, owner.id) {
            (types::OwnerKind::Agent, Some(id)) => Owner::Agent(id),
            (types::OwnerKind::Session, Some(id)) => Owner::Session(id),
            _ => Owner::System,
        };
        let (service, r) = T::init(&owner, &parse(&config))?;
        SERVICE.with(|s| *s.borrow_mut() = Some(Box::new(service)));
        let r = types::Registration {
            hooks: r.hooks,
            events: r.events,
        };
        // An instance is initialised once; a restarted service is a new instance.
        let _ = REGISTERED.set(r.clone());
        Ok(r)
    }

    fn admit(hook: u32, output: String) -> types::Verdict {
        let (hook, input) = (hook_name(hook), Input::pending());
        let verdict = with(|t: &mut T| {
            t.admit_json(hook, &input, &output)
                .unwrap_or_else(|| t.admit(hook, &input, parse(&output)))
        })
        .unwrap_or(Verdict::Allow);
        match verdict {
            Verdict::Allow => types::Verdict::Allow(None),
            Verdict::Rewrite(v) => types::Verdict::Allow(Some(v.to_string())),
            Verdict::Reject(reason) => types::Verdict::Reject(reason),
        }
    }

    fn transform(hook: u32, output: String) -> Result<String, String> {
        let (hook, input) = (hook_name(hook), Input::pending());
        with(|t: &mut T| match t.transform_json(hook, &input, &output) {
            Some(answer) => answer,
            None => t
                .transform(hook, &input, parse(&output))
                .map(|v| v.to_string()),
        })
        .unwrap_or(Ok(output))
    }

    fn on_event(event: u32, payload: String) {
        with(|t: &mut T| t.on_event(name(event, |r| &r.events), &parse(&payload)));
    }

    fn invoke(args: Vec<String>, stdin: Option<String>) -> Result<types::InvokeOutput, String> {
        let out = with(|t: &mut T| t.invoke(&args, stdin.as_deref()))
            .unwrap_or_else(|| Err("the service was not initialised".into()));
        out.map(|o| types::InvokeOutput {
            exit_code: o.exit_code,
            stdout: o.stdout,
            stderr: o.stderr,
        })
    }

    fn shutdown() {
        with(|t: &mut T| t.shutdown());
    }
}
