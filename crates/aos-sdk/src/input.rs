//! [`Input`]: a hook call's `input`, fetched from the kernel only when the
//! handler reads it.

use crate::Value;
use std::cell::OnceCell;
use std::ops::Deref;

/// The `input` of an admission or transform hook call (who and what the
/// operation concerns; docs/hooks.md). It crosses into the component only
/// when read — a handler that looks at the output alone never pays for it —
/// and is read at most once per call.
///
/// It dereferences to a [`Value`], so `input["sessionId"]` works as on a
/// `Value`; [`Input::text`] gives the JSON text for a typed, borrowed parse.
pub struct Input {
    text: OnceCell<String>,
    value: OnceCell<Value>,
}

impl Input {
    /// The input of the hook call in progress, not yet fetched.
    pub(crate) fn pending() -> Input {
        Input {
            text: OnceCell::new(),
            value: OnceCell::new(),
        }
    }

    /// The input as JSON text.
    pub fn text(&self) -> &str {
        self.text.get_or_init(|| match self.value.get() {
            Some(v) => v.to_string(),
            None => crate::bindings::aos::kernel::hook::input(),
        })
    }

    /// The input as a JSON value (`null` if it was not JSON).
    pub fn value(&self) -> &Value {
        self.value
            .get_or_init(|| serde_json::from_str(self.text()).unwrap_or(Value::Null))
    }
}

/// An input given by value: for calling a handler yourself (unit tests of
/// a service, one handler delegating to another).
impl From<Value> for Input {
    fn from(v: Value) -> Input {
        Input {
            text: OnceCell::new(),
            value: OnceCell::from(v),
        }
    }
}

impl Deref for Input {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.value()
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.value.get(), self.text.get()) {
            (Some(v), _) => write!(f, "Input({v})"),
            (None, Some(t)) => write!(f, "Input({t})"),
            (None, None) => f.write_str("Input(not fetched)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_input_given_by_value_reads_as_value_and_text() {
        let input = Input::from(json!({"sessionId": "se_1"}));
        assert_eq!(input["sessionId"], "se_1");
        assert_eq!(input.text(), r#"{"sessionId":"se_1"}"#);
        assert_eq!(format!("{input:?}"), r#"Input({"sessionId":"se_1"})"#);
    }
}
