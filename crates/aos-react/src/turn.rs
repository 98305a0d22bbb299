//! The loop (`kernel.md` §4.4): hooks around every step, the model call,
//! bash, and every produced message in SessionHistory before the next step.

use crate::bash::{self, BASH_TIMEOUT, BASH_TIMEOUT_MAX, bash_tool};
use crate::wire::to_wire;
use aos_kernel::{DispatchPort, Outcome};
use aos_llm::{ChatModel, ChatRequest, ToolCall};
use aos_store::{MessageExtra, NewLogEntry, NewMessage};
use aos_types::{BashInput, Message, Origin, Part, Role, SyscallError, ToolState, Usage};
use aos_types::{hook, payloads};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

struct Turn<'a> {
    model: &'a dyn ChatModel,
    port: &'a mut dyn DispatchPort,
    last_seq: i64,
    appended: usize,
    usage: Usage,
    /// Tokens of the last LLM call (prompt + completion): the provider's own
    /// measure of the context, used for the compaction threshold.
    last_total_tokens: u64,
    /// The fallback context starts here (the dispatch's user message, or the
    /// marker of a compaction made during the dispatch).
    context_from: i64,
    /// `last_seq` right after the last compaction: nothing new, no compaction.
    compacted_at: i64,
    /// The fallback context's messages read so far (from `context_from`).
    own: Vec<Message>,
    /// The RuntimeLog entry of the last model call, written with the next
    /// message (in its transaction).
    call_log: Option<NewLogEntry>,
}

/// Runs one dispatch to its end and reports how it ended.
pub(crate) async fn run(model: &dyn ChatModel, port: &mut dyn DispatchPort) -> Outcome {
    let first_seq = port.first_seq();
    let mut t = Turn {
        model,
        port,
        last_seq: first_seq,
        appended: 1,
        usage: Usage::default(),
        last_total_tokens: 0,
        context_from: first_seq,
        compacted_at: -1,
        own: Vec::new(),
        call_log: None,
    };
    let ran = match t.port.prepare_sandbox().await {
        Ok(()) => t.go().await,
        Err(e) => Err(e),
    };
    let outcome = match ran {
        Ok(o) => o,
        Err(e) => {
            let _ = t.record_error(&e).await;
            Outcome::failed(Some(t.last_seq), t.usage, &e)
        }
    };
    let s = t.port.session();
    t.port.emit(
        hook::SESSION_DISPATCH_AFTER,
        json!({ "agentId": s.agent_id, "sessionId": s.session_id, "dispatchId": t.port.dispatch_id(),
                "appendedCount": t.appended, "status": outcome.status,
                "finalText": outcome.final_text }),
    );
    outcome
}

impl Turn<'_> {
    async fn append(
        &mut self,
        role: Role,
        parts: Vec<Part>,
        origin: Origin,
        extra: MessageExtra,
    ) -> Result<Message, SyscallError> {
        let m = NewMessage {
            role,
            parts,
            origin,
            extra,
        };
        self.write(m, None).await
    }

    /// Appends one message (with `log` in the same transaction), streams it.
    async fn write(
        &mut self,
        m: NewMessage,
        log: Option<NewLogEntry>,
    ) -> Result<Message, SyscallError> {
        let log = log.or_else(|| self.call_log.take());
        let msg = self.port.append(m, log).await?;
        self.last_seq = msg.metadata.seq;
        self.appended += 1;
        self.stream_message(&msg);
        Ok(msg)
    }

    /// The loop, from the written user message on.
    async fn go(&mut self) -> Result<Outcome, SyscallError> {
        self.port.assemble_context("dispatch").await?;
        let system = self.port.system().await?;
        let agent = self.port.agent().await?;
        let default_model = agent.model.clone().unwrap_or(system.model.clone());
        for turn in 0..system.max_turns.max(1) {
            if let Some(reason) = self.interrupted() {
                return self.stop_interrupted(&reason).await;
            }
            let resp = self
                .call_llm(&default_model, system.compaction_threshold)
                .await?;
            if resp.tool_calls.is_empty() {
                let extra = MessageExtra {
                    finish: Some("completed".into()),
                    ..Default::default()
                };
                let text = resp.content.clone();
                self.append(
                    Role::Assistant,
                    vec![Part::text(text.clone())],
                    Origin::Assistant,
                    extra,
                )
                .await?;
                self.after_turn(turn, 0, Some(&text));
                return Ok(self.ended("completed", Some(text)));
            }
            self.tools(&resp.content, &resp.tool_calls).await?;
            self.after_turn(turn, resp.tool_calls.len(), None);
        }
        let data = json!({ "reason": "max_turns", "payload": { "maxTurns": system.max_turns } });
        self.append(
            Role::System,
            vec![Part::DataInterrupt {
                id: String::new(),
                data,
            }],
            Origin::Aos,
            MessageExtra::default(),
        )
        .await?;
        Ok(self.ended("max_turns", None))
    }

    /// One LLM call: the request through the transform hooks, compaction
    /// first when the context is over `threshold`, and once more (with
    /// `overflow`) when the provider refuses the context as too long.
    async fn call_llm(
        &mut self,
        default_model: &str,
        threshold: i64,
    ) -> Result<aos_llm::ChatResponse, SyscallError> {
        let (mut req, mut base_url) = self.request(default_model).await?;
        let asked = self.port.take_compact_request();
        if (asked.is_some() || self.over(&req, threshold)) && self.compact(false, asked).await? {
            (req, base_url) = self.request(default_model).await?;
        }
        let mut retried = false;
        loop {
            let started = Instant::now();
            let port = &*self.port;
            let mut forward = |d: aos_llm::Delta| match d {
                aos_llm::Delta::Text(t) => {
                    port.publish("message", json!({ "type": "delta", "text": t }))
                }
                aos_llm::Delta::ToolCallStarted { id, name } => port.publish(
                    "message",
                    json!({ "type": "tool-call-started", "toolCallId": id, "name": name }),
                ),
            };
            match self
                .model
                .chat(&req, base_url.as_deref(), &mut forward)
                .await
            {
                Ok(resp) => {
                    self.usage.add(resp.usage);
                    self.last_total_tokens = resp.usage.total_tokens;
                    self.call_log = Some(self.model_log(&req.model, &resp, started.elapsed()));
                    self.port.telemetry().llm_call(
                        started.elapsed(),
                        resp.usage.prompt_tokens,
                        resp.usage.completion_tokens,
                    );
                    let s = self.port.session();
                    self.port.emit(
                        hook::COMPUTE_AFTER,
                        json!({ "agentId": s.agent_id, "sessionId": s.session_id,
                                "usage": resp.usage, "latencyMs": started.elapsed().as_millis() as u64 }),
                    );
                    return Ok(resp);
                }
                Err(e)
                    if e.is_context_overflow() && !retried && self.compact(true, None).await? =>
                {
                    retried = true;
                    (req, base_url) = self.request(default_model).await?;
                }
                Err(e) => {
                    return Err(SyscallError::new(
                        aos_types::ErrorCode::LlmError,
                        e.to_string(),
                    ));
                }
            }
        }
    }

    /// The record of one model call: an info line now, and the RuntimeLog
    /// entry (`llm.call`) written with the next message.
    fn model_log(&self, model: &str, resp: &aos_llm::ChatResponse, took: Duration) -> NewLogEntry {
        let s = self.port.session();
        let ms = took.as_millis() as u64;
        let u = resp.usage;
        tracing::info!(agent = %s.agent_id, session = %s.session_id, dispatch = %self.port.dispatch_id(),
            model, prompt_tokens = u.prompt_tokens, completion_tokens = u.completion_tokens,
            latency_ms = ms, tool_calls = resp.tool_calls.len(), "llm call");
        NewLogEntry {
            level: "info",
            op: "llm.call".into(),
            owner_type: "session".into(),
            owner_id: Some(s.session_id.clone()),
            agent_id: Some(s.agent_id.clone()),
            session_id: Some(s.session_id.clone()),
            refs: Some(json!({ "dispatchId": self.port.dispatch_id() })),
            data: Some(json!({ "model": model, "usage": u, "latencyMs": ms,
                               "toolCalls": resp.tool_calls.len() })),
        }
    }

    /// Whether the context is over the compaction threshold: the larger of
    /// the provider's count for the last call and chars/4 of this request.
    fn over(&self, req: &ChatRequest, threshold: i64) -> bool {
        if threshold <= 0 || self.compacted_at == self.last_seq {
            return false;
        }
        let chars: usize = req.messages.iter().map(|m| m.get().len()).sum();
        let estimate = (chars as u64 / 4).max(self.last_total_tokens);
        estimate > threshold as u64
    }

    /// Compacts inside the dispatch: for the threshold, an overflow, or a
    /// request of the dispatch's own bash (`asked`, its reason). A failure is
    /// recorded by the kernel and the loop goes on with the context it has.
    /// Returns whether anything was compacted.
    async fn compact(
        &mut self,
        overflow: bool,
        asked: Option<String>,
    ) -> Result<bool, SyscallError> {
        let compacted = self.port.compact(overflow, asked).await?;
        self.compacted_at = self.last_seq;
        let Some(done) = compacted else {
            return Ok(false);
        };
        for m in &done.messages {
            self.last_seq = m.metadata.seq;
            self.appended += 1;
            self.stream_message(m);
        }
        self.compacted_at = self.last_seq;
        self.context_from = done.marker_seq;
        self.own.clear();
        self.last_total_tokens = 0;
        Ok(true)
    }

    /// Streams a written message: tool intents as `tool_call`, results as
    /// `tool_result`, everything as a whole `message`.
    fn stream_message(&self, msg: &Message) {
        for p in &msg.parts {
            if let Part::ToolBash {
                tool_call_id,
                state,
                input,
                output,
                error_text,
                ..
            } = p
            {
                match state {
                    ToolState::InputAvailable => self.port.publish(
                        "tool_call",
                        json!({ "toolCallId": tool_call_id, "command": input.command, "seq": msg.metadata.seq }),
                    ),
                    _ => self.port.publish(
                        "tool_result",
                        json!({ "toolCallId": tool_call_id, "state": state, "output": output, "errorText": error_text, "seq": msg.metadata.seq }),
                    ),
                }
            }
        }
        self.port
            .publish("message", json!({ "type": "message", "message": msg }));
    }

    fn interrupted(&self) -> Option<String> {
        self.port.interrupted()
    }

    async fn stop_interrupted(&mut self, reason: &str) -> Result<Outcome, SyscallError> {
        let data = json!({ "reason": reason });
        self.append(
            Role::System,
            vec![Part::DataInterrupt {
                id: String::new(),
                data,
            }],
            Origin::Aos,
            MessageExtra::default(),
        )
        .await?;
        let s = self.port.session();
        self.port.emit(
            hook::SESSION_INTERRUPTED,
            json!({ "agentId": s.agent_id, "sessionId": s.session_id, "reason": reason }),
        );
        Ok(self.ended("interrupted", None))
    }

    /// The outcome of a dispatch that ended normally.
    fn ended(&self, status: &str, final_text: Option<String>) -> Outcome {
        Outcome {
            status: status.into(),
            final_message_seq: Some(self.last_seq),
            final_text,
            usage: self.usage,
            error: None,
            store_failed: false,
        }
    }

    fn after_turn(&self, turn: i64, tool_calls: usize, final_answer: Option<&str>) {
        self.port.telemetry().turn();
        let s = self.port.session();
        self.port.emit(
            hook::CONTEXT_AFTER_TURN,
            json!({ "sessionId": s.session_id, "agentId": s.agent_id, "turnIndex": turn,
                    "toolCalls": tool_calls, "appendedCount": self.appended, "finalAnswer": final_answer }),
        );
    }

    /// The wire messages: the context engine's, else this dispatch's own
    /// (read incrementally: only what was written since the last turn,
    /// including other writers' appends); as JSON text.
    async fn messages(&mut self) -> Result<Vec<Box<RawValue>>, SyscallError> {
        if self
            .port
            .hooks()
            .has_handler(hook::CONTEXT_ASSEMBLE, self.port.scope())
        {
            let ctx = self.port.assemble_context("incremental").await?;
            return Ok(ctx.messages.iter().map(|m| m.wire.clone()).collect());
        }
        let from = self
            .own
            .last()
            .map_or(self.context_from, |m| m.metadata.seq + 1);
        let new = self.port.history_from(from).await?;
        self.own.extend(new);
        Ok(to_wire(&self.own).iter().map(aos_llm::message).collect())
    }

    /// `session.messages.transform` over the wire messages, when a handler
    /// is registered (only then are they parsed into values).
    async fn transform_messages(
        &self,
        ids: &Value,
        wire: Vec<Box<RawValue>>,
    ) -> Vec<Box<RawValue>> {
        let hooks = self.port.hooks();
        if !hooks.has_handler(hook::SESSION_MESSAGES_TRANSFORM, self.port.scope()) {
            return wire;
        }
        let values = wire
            .iter()
            .map(|m| serde_json::from_str(m.get()).unwrap_or(Value::Null))
            .collect();
        let mut out = serde_json::Map::new();
        out.insert("messages".into(), Value::Array(values));
        let mut messages = hooks
            .transform(
                hook::SESSION_MESSAGES_TRANSFORM,
                self.port.scope(),
                ids,
                Value::Object(out),
            )
            .await;
        match messages.get_mut("messages").map(Value::take) {
            Some(Value::Array(m)) => m.iter().map(aos_llm::message).collect(),
            _ => Vec::new(),
        }
    }

    /// Builds the LLM request through the transform hooks.
    async fn request(
        &mut self,
        default_model: &str,
    ) -> Result<(ChatRequest, Option<String>), SyscallError> {
        let s = self.port.session();
        let ids = json!({ "agentId": s.agent_id, "sessionId": s.session_id });
        let system = self
            .port
            .hooks()
            .transform(
                hook::SESSION_SYSTEM_TRANSFORM,
                self.port.scope(),
                &ids,
                json!({ "system": null }),
            )
            .await;
        let wire = self.messages().await?;
        let messages = self.transform_messages(&ids, wire).await;
        let params = self
            .port
            .hooks()
            .transform(
                hook::COMPUTE_PARAMS_TRANSFORM,
                self.port.scope(),
                &ids,
                json!({ "params": {} }),
            )
            .await;
        let mut resolve_in = ids.clone();
        resolve_in["requestType"] = json!("chat");
        let model = self
            .port
            .hooks()
            .transform(
                hook::COMPUTE_MODEL_RESOLVE,
                self.port.scope(),
                &resolve_in,
                json!({ "model": default_model }),
            )
            .await;
        let mut before = ids.clone();
        before["lastSeq"] = json!(self.last_seq);
        self.port
            .hooks()
            .admit(hook::COMPUTE_BEFORE, self.port.scope(), before, json!({}))
            .await?;
        let system: payloads::SystemPrompt = payloads::read(&system);
        let params: payloads::ModelParams = payloads::read(&params);
        let model: payloads::ModelChoice = payloads::read(&model);
        let mut wire = Vec::with_capacity(messages.len() + 1);
        if let Some(s) = system.system.filter(|s| !s.is_empty()) {
            wire.push(aos_llm::message(&json!({ "role": "system", "content": s })));
        }
        wire.extend(messages);
        let mut params = params.params.unwrap_or_default();
        params.extend(model.params.unwrap_or_default());
        let req = ChatRequest {
            model: model.model.unwrap_or_else(|| default_model.to_string()),
            messages: wire,
            tools: vec![bash_tool()],
            params,
        };
        Ok((req, model.base_url))
    }

    /// Records the intents, runs each call, records each result.
    async fn tools(&mut self, text: &str, calls: &[ToolCall]) -> Result<(), SyscallError> {
        let mut parts = Vec::new();
        if !text.is_empty() {
            parts.push(Part::text(text));
        }
        for c in calls {
            let input =
                serde_json::from_str::<BashInput>(&c.arguments).unwrap_or_else(|_| BashInput {
                    command: c.arguments.clone(),
                    cwd: None,
                    timeout_ms: None,
                });
            parts.push(Part::ToolBash {
                id: String::new(),
                tool_call_id: c.id.clone(),
                state: ToolState::InputAvailable,
                input,
                output: None,
                error_text: None,
            });
        }
        self.append(
            Role::Assistant,
            parts,
            Origin::Assistant,
            MessageExtra::default(),
        )
        .await?;
        for c in calls {
            let mut raw = None;
            let part = self.tool(c, &mut raw).await;
            let m = NewMessage {
                role: Role::Assistant,
                parts: vec![part],
                origin: Origin::Aos,
                extra: MessageExtra::default(),
            };
            self.write(m, raw).await?;
        }
        Ok(())
    }

    /// Runs one call; always produces a result part (errors are results).
    /// The raw result of a command that ran goes to `raw_log`, written with
    /// the result part.
    async fn tool(&self, c: &ToolCall, raw_log: &mut Option<NewLogEntry>) -> Part {
        let fallback = BashInput {
            command: c.arguments.clone(),
            cwd: None,
            timeout_ms: None,
        };
        let error = |input: BashInput, text: String| Part::ToolBash {
            id: String::new(),
            tool_call_id: c.id.clone(),
            state: ToolState::OutputError,
            input,
            output: None,
            error_text: Some(text),
        };
        if c.name != "bash" {
            return error(
                fallback,
                format!("unknown tool {:?}: the only tool is bash", c.name),
            );
        }
        let input: BashInput = match serde_json::from_str(&c.arguments) {
            Ok(i) => i,
            Err(e) => {
                return error(
                    fallback,
                    format!(
                        "the arguments are not valid JSON for bash ({e}); send {{\"command\": \"…\"}}"
                    ),
                );
            }
        };
        if self.interrupted().is_some() {
            return error(input, "not run: the dispatch was interrupted".into());
        }
        let hooks = self.port.hooks();
        let args = json!({ "command": input.command, "timeoutMs": input.timeout_ms });
        let env = hooks
            .transform(
                hook::TOOL_ENV,
                self.port.scope(),
                &json!({ "toolCallId": c.id, "args": args }),
                json!({ "env": {} }),
            )
            .await;
        let s = self.port.session();
        let before_in =
            json!({ "toolCallId": c.id, "agentId": s.agent_id, "sessionId": s.session_id });
        let admitted = match hooks
            .admit(
                hook::TOOL_BEFORE,
                self.port.scope(),
                before_in,
                json!({ "args": args }),
            )
            .await
        {
            Ok(v) => v,
            Err(e) => {
                let d: payloads::Rejection =
                    e.details.as_ref().map(payloads::read).unwrap_or_default();
                let text = match (d.skill, d.reason) {
                    (Some(s), Some(r)) => format!("rejected by {s}: {r}"),
                    _ => e.message.clone(),
                };
                return error(input, text);
            }
        };
        let args = payloads::read::<payloads::ToolBefore>(&admitted)
            .args
            .unwrap_or_default();
        let command = args.command.unwrap_or_else(|| input.command.clone());
        let timeout = args
            .timeout_ms
            .map_or(BASH_TIMEOUT, Duration::from_millis)
            .min(BASH_TIMEOUT_MAX);
        let env = payloads::read::<payloads::ToolEnv>(&env)
            .env
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string())))
            .collect();
        let result = match bash::run(&*self.port, &command, timeout, env).await {
            Ok(r) => r,
            Err(e) => return error(input, format!("bash could not run: {e}")),
        };
        *raw_log = Some(bash::raw_log(&*self.port, &c.id, &command, &result));
        if result.interrupted {
            return error(
                input,
                "the dispatch was interrupted while this command ran; it was killed".into(),
            );
        }
        let mut raw = result.output.clone();
        if result.exit_code != 0
            && let Some(note) = self.port.sandbox_hint(&result.output)
        {
            raw.push_str(&note);
        }
        if result.truncated {
            raw.push_str(&format!(
                "\n[output truncated: {} of {} bytes kept]",
                result.output.len(),
                result.total_bytes
            ));
        }
        if result.timed_out {
            raw.push_str(&format!(
                "\n[killed after {} ms (timeout)]",
                timeout.as_millis()
            ));
        }
        // The effective fold threshold costs two reads: only for a handler.
        let threshold = if hooks.has_handler(hook::TOOL_AFTER, self.port.scope()) {
            self.port.fold_threshold().await.unwrap_or(16_384)
        } else {
            0
        };
        let after_in = json!({ "toolCallId": c.id, "rawResult": raw, "exitCode": result.exit_code,
                               "sessionId": s.session_id, "agentId": s.agent_id,
                               "autoFoldThreshold": threshold });
        let after = hooks
            .transform(
                hook::TOOL_AFTER,
                self.port.scope(),
                after_in,
                json!({ "result": raw }),
            )
            .await;
        let output = match payloads::read::<payloads::ToolAfter>(&after).result {
            Some(payloads::ToolResult::Text(s)) => {
                json!({ "visibleResult": s, "exitCode": result.exit_code })
            }
            Some(payloads::ToolResult::Fields(mut o)) => {
                o.insert("exitCode".into(), json!(result.exit_code));
                Value::Object(o)
            }
            None => json!({ "visibleResult": raw, "exitCode": result.exit_code }),
        };
        Part::ToolBash {
            id: String::new(),
            tool_call_id: c.id.clone(),
            state: ToolState::OutputAvailable,
            input,
            output: Some(output),
            error_text: None,
        }
    }

    /// A failed dispatch leaves a readable error in SessionHistory.
    async fn record_error(&mut self, e: &SyscallError) -> Result<(), SyscallError> {
        self.port
            .publish("error", json!({ "code": e.code, "message": e.message }));
        let extra = MessageExtra {
            error: Some(json!({ "code": e.code, "message": e.message })),
            ..Default::default()
        };
        let text = format!("The run stopped: {}", e.message);
        self.append(Role::Assistant, vec![Part::text(text)], Origin::Aos, extra)
            .await?;
        self.port.emit(
            hook::SESSION_ERROR,
            json!({ "source": "dispatch", "recoverable": true, "message": e.message }),
        );
        Ok(())
    }
}
