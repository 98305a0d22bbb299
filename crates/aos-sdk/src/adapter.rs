//! Bridges a [`Service`] to the generated WIT bindings: JSON text in and out,
//! WIT records to SDK types, hook and event indices back to their names.

use crate::bindings::aos::kernel::types;
use crate::bindings::exports::aos::kernel::service::Guest;
use crate::{Input, Owner, Service, Value, Verdict};
use std::marker::PhantomData;
use std::sync::OnceLock;

/// The generated `Guest` implementation for a [`Service`] (used by [`crate::export!`]).
pub struct Adapter<T>(PhantomData<T>);

/// What `init` registered: the kernel names a hook or event by its index
/// in these lists.
static REGISTERED: OnceLock<types::Registration> = OnceLock::new();

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
        let r = T::register(&owner, &parse(&config))?;
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
        let verdict = T::admit_json(hook, &input, &output)
            .unwrap_or_else(|| T::admit(hook, &input, parse(&output)));
        match verdict {
            Verdict::Allow => types::Verdict::Allow(None),
            Verdict::Rewrite(v) => types::Verdict::Allow(Some(v.to_string())),
            Verdict::Reject(reason) => types::Verdict::Reject(reason),
        }
    }

    fn transform(hook: u32, output: String) -> Result<String, String> {
        let (hook, input) = (hook_name(hook), Input::pending());
        if let Some(answer) = T::transform_json(hook, &input, &output) {
            return answer;
        }
        T::transform(hook, &input, parse(&output)).map(|v| v.to_string())
    }

    fn on_event(event: u32, payload: String) {
        T::on_event(name(event, |r| &r.events), &parse(&payload));
    }

    fn invoke(args: Vec<String>, stdin: Option<String>) -> Result<types::InvokeOutput, String> {
        T::invoke(&args, stdin.as_deref()).map(|o| types::InvokeOutput {
            exit_code: o.exit_code,
            stdout: o.stdout,
            stderr: o.stderr,
        })
    }

    fn shutdown() {
        T::shutdown();
    }
}
