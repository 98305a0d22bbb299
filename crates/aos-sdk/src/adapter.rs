//! Bridges a [`Service`] to the generated WIT bindings: JSON text in and out,
//! WIT records to SDK types.

use crate::bindings::aos::kernel::types;
use crate::bindings::exports::aos::kernel::service::Guest;
use crate::{Owner, Service, Value, Verdict};
use std::marker::PhantomData;

/// The generated `Guest` implementation for a [`Service`] (used by [`crate::export!`]).
pub struct Adapter<T>(PhantomData<T>);

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

impl<T: Service> Guest for Adapter<T> {
    fn init(owner: types::Owner, config: String) -> Result<types::Registration, String> {
        let owner = match (owner.kind, owner.id) {
            (types::OwnerKind::Agent, Some(id)) => Owner::Agent(id),
            (types::OwnerKind::Session, Some(id)) => Owner::Session(id),
            _ => Owner::System,
        };
        let r = T::register(&owner, &parse(&config))?;
        Ok(types::Registration {
            hooks: r.hooks,
            events: r.events,
        })
    }

    fn admit(hook: String, input: String, output: String) -> types::Verdict {
        let verdict = T::admit_json(&hook, &input, &output)
            .unwrap_or_else(|| T::admit(&hook, &parse(&input), parse(&output)));
        match verdict {
            Verdict::Allow => types::Verdict::Allow(None),
            Verdict::Rewrite(v) => types::Verdict::Allow(Some(v.to_string())),
            Verdict::Reject(reason) => types::Verdict::Reject(reason),
        }
    }

    fn transform(hook: String, input: String, output: String) -> Result<String, String> {
        let input = parse(&input);
        if let Some(answer) = T::transform_json(&hook, &input, &output) {
            return answer;
        }
        T::transform(&hook, &input, parse(&output)).map(|v| v.to_string())
    }

    fn on_event(name: String, payload: String) {
        T::on_event(&name, &parse(&payload));
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
