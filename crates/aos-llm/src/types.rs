//! Request and response shapes.

use aos_types::Usage;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// One chat completions call.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChatRequest {
    /// Model id.
    pub model: String,
    /// OpenAI chat messages (`{role, content, tool_calls?, tool_call_id?}`)
    /// as JSON text: a context engine's messages go out as it wrote them.
    pub messages: Vec<Box<RawValue>>,
    /// Function tools offered.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Value>,
    /// Extra parameters (temperature, max_tokens, …), merged into the body.
    #[serde(flatten)]
    pub params: Map<String, Value>,
}

/// One chat message as JSON text, for [`ChatRequest::messages`].
pub fn message(v: &Value) -> Box<RawValue> {
    // A `Value` always serialises.
    serde_json::value::to_raw_value(v).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// A tool call the model made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's call id.
    pub id: String,
    /// Function name.
    pub name: String,
    /// Arguments, as the JSON text the model produced.
    pub arguments: String,
}

/// The whole answer of one call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatResponse {
    /// Text content (possibly empty when the model only called tools).
    pub content: String,
    /// Tool calls, in order.
    pub tool_calls: Vec<ToolCall>,
    /// `stop`, `tool_calls`, `length`, …
    pub finish_reason: Option<String>,
    /// Usage, when the provider reported it.
    pub usage: Usage,
}

/// A piece of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    /// More text.
    Text(String),
    /// A tool call began (id, name known).
    ToolCallStarted {
        /// Call id.
        id: String,
        /// Function name.
        name: String,
    },
}
