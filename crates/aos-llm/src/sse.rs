//! Reassembling a streamed chat completion from its SSE chunks.

use crate::LlmError;
use crate::Usage;
use crate::types::{ChatResponse, Delta, ToolCall};
use serde_json::Value;

/// Splits a byte stream into SSE `data:` payloads.
#[derive(Debug, Default)]
pub(crate) struct SseLines {
    buf: Vec<u8>,
}

impl SseLines {
    /// Feeds bytes; returns the complete `data:` payloads seen so far.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(data) = line.strip_prefix("data:") {
                out.push(data.trim_start().to_string());
            }
        }
        out
    }
}

/// Accumulates chunks into a [`ChatResponse`].
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    resp: ChatResponse,
    /// Tool calls by their `index` in the deltas.
    calls: Vec<(u64, ToolCall, bool)>,
    pub done: bool,
    pub saw_choice: bool,
}

impl Assembler {
    /// Applies one `data:` payload; reports deltas to `on_delta`.
    pub fn apply(&mut self, data: &str, on_delta: &mut impl FnMut(Delta)) -> Result<(), LlmError> {
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let chunk: Value = serde_json::from_str(data).map_err(|e| {
            LlmError::Protocol(format!(
                "a stream chunk is not JSON ({e}): {}",
                truncate(data)
            ))
        })?;
        if let Some(err) = chunk.get("error") {
            return Err(LlmError::Status {
                status: 502,
                message: provider_message(err),
            });
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.resp.usage = usage(u);
        }
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            self.saw_choice = true;
            let delta = &choice["delta"];
            if let Some(t) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                self.resp.content.push_str(t);
                on_delta(Delta::Text(t.to_string()));
            }
            for tc in delta["tool_calls"].as_array().into_iter().flatten() {
                self.tool_delta(tc, on_delta);
            }
            if let Some(r) = choice["finish_reason"].as_str() {
                self.resp.finish_reason = Some(r.to_string());
            }
        }
        Ok(())
    }

    fn tool_delta(&mut self, tc: &Value, on_delta: &mut impl FnMut(Delta)) {
        let index = tc["index"].as_u64().unwrap_or(self.calls.len() as u64);
        let pos = match self.calls.iter().position(|(i, ..)| *i == index) {
            Some(p) => p,
            None => {
                self.calls.push((index, ToolCall::default(), false));
                self.calls.len() - 1
            }
        };
        let (_, call, announced) = &mut self.calls[pos];
        if let Some(id) = tc["id"].as_str() {
            call.id.push_str(id);
        }
        if let Some(name) = tc["function"]["name"].as_str() {
            call.name.push_str(name);
        }
        if let Some(args) = tc["function"]["arguments"].as_str() {
            call.arguments.push_str(args);
        }
        if !*announced && !call.id.is_empty() && !call.name.is_empty() {
            *announced = true;
            on_delta(Delta::ToolCallStarted {
                id: call.id.clone(),
                name: call.name.clone(),
            });
        }
    }

    /// The whole response.
    pub fn finish(mut self) -> Result<ChatResponse, LlmError> {
        if !self.saw_choice {
            return Err(LlmError::Protocol(
                "the stream ended without any choice".into(),
            ));
        }
        if !self.done && self.resp.finish_reason.is_none() {
            return Err(LlmError::Protocol(
                "the stream was cut before the answer finished".into(),
            ));
        }
        self.calls.sort_by_key(|(i, ..)| *i);
        self.resp.tool_calls = self.calls.into_iter().map(|(_, c, _)| c).collect();
        Ok(self.resp)
    }
}

/// Parses a non-streamed answer.
pub(crate) fn parse_whole(body: &Value) -> Result<ChatResponse, LlmError> {
    let choice = body["choices"]
        .as_array()
        .and_then(|c| c.first())
        .ok_or_else(|| LlmError::Protocol("the answer has no choices".into()))?;
    let msg = &choice["message"];
    let tool_calls = msg["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|tc| ToolCall {
            id: tc["id"].as_str().unwrap_or_default().to_string(),
            name: tc["function"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            arguments: tc["function"]["arguments"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        })
        .collect();
    Ok(ChatResponse {
        content: msg["content"].as_str().unwrap_or_default().to_string(),
        tool_calls,
        finish_reason: choice["finish_reason"].as_str().map(String::from),
        usage: usage(&body["usage"]),
    })
}

fn usage(u: &Value) -> Usage {
    let n = |k: &str| u[k].as_u64().unwrap_or(0);
    Usage {
        prompt_tokens: n("prompt_tokens"),
        completion_tokens: n("completion_tokens"),
        total_tokens: n("total_tokens"),
    }
}

/// The provider's message from an error body (`{error: {message}}` or text).
pub(crate) fn provider_message(err: &Value) -> String {
    err["message"]
        .as_str()
        .or_else(|| err["error"]["message"].as_str())
        .or_else(|| err.as_str())
        .map(String::from)
        .unwrap_or_else(|| truncate(&err.to_string()))
}

pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_split_across_chunks_are_reassembled() {
        let mut lines = SseLines::default();
        let stream = concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"Let me\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\" look\"}}]}\n",
            "\ndata: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"bash\",\"arguments\":\"{\\\"comm\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"and\\\": \\\"ls\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15}}\n\n",
            "data: [DONE]\n\n"
        );
        let mut a = Assembler::default();
        let mut deltas = Vec::new();
        // Feed in awkward pieces.
        for piece in stream.as_bytes().chunks(7) {
            for data in lines.push(piece) {
                a.apply(&data, &mut |d| deltas.push(d)).expect("chunk");
            }
        }
        let r = a.finish().expect("complete");
        assert_eq!(r.content, "Let me look");
        assert_eq!(
            r.tool_calls,
            vec![ToolCall {
                id: "call_1".into(),
                name: "bash".into(),
                arguments: "{\"command\": \"ls\"}".into()
            }]
        );
        assert_eq!(r.usage.total_tokens, 15);
        assert_eq!(r.finish_reason.as_deref(), Some("tool_calls"));
        assert!(deltas.contains(&Delta::ToolCallStarted {
            id: "call_1".into(),
            name: "bash".into()
        }));
    }

    #[test]
    fn a_cut_stream_is_an_error() {
        let mut a = Assembler::default();
        a.apply(
            "{\"choices\":[{\"delta\":{\"content\":\"half\"}}]}",
            &mut |_| {},
        )
        .expect("chunk");
        assert!(matches!(a.finish(), Err(LlmError::Protocol(_))));
        let mut b = Assembler::default();
        assert!(b.apply("not json", &mut |_| {}).is_err());
    }
}
