//! The one tool: `bash -c COMMAND` in the session's work dir, with the
//! environment and confinement the kernel gives each command.

use aos_kernel::DispatchPort;
use aos_store::NewLogEntry;
use serde_json::{Value, json};
use std::time::Duration;

/// Default and maximum bash timeout.
pub(crate) const BASH_TIMEOUT: Duration = Duration::from_secs(120);
pub(crate) const BASH_TIMEOUT_MAX: Duration = Duration::from_secs(600);
/// Raw output kept per command.
const MAX_OUTPUT: usize = 1 << 20;

/// The tool's definition, as the model sees it.
pub fn bash_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "bash",
        "description": "Run a bash command in this session's working directory and return its output and exit code. The `aos` command reaches the AgentOS kernel (see the aos skill).",
        "parameters": {"type": "object", "properties": {
            "command": {"type": "string", "description": "The command line to run with bash -c."},
            "timeoutMs": {"type": "integer", "minimum": 1, "description": "Kill the command after this many milliseconds (default 120000)."}
        }, "required": ["command"]}
    }})
}

/// Runs one command of the dispatch; an interrupt of the dispatch kills it.
pub(crate) async fn run(
    port: &dyn DispatchPort,
    command: &str,
    timeout: Duration,
    extra_env: Vec<(String, String)>,
) -> std::io::Result<aos_bash::BashResult> {
    let setup = port.command(extra_env)?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut interrupts = port.interrupts();
    let forward = tokio::spawn(async move {
        if interrupts.wait_for(Option::is_some).await.is_ok() {
            tx.send_replace(true);
        }
    });
    let spec = aos_bash::BashSpec {
        command: command.into(),
        cwd: setup.cwd,
        env: setup.env,
        timeout,
        max_output: MAX_OUTPUT,
        pid_file: Some(setup.pid_file),
        confinement: setup.confinement,
    };
    let r = aos_bash::run(spec, rx).await;
    forward.abort();
    r
}

/// The record of a command that ran: an info line (the command's head, exit,
/// duration) and the RuntimeLog entry of its raw result.
pub(crate) fn raw_log(
    port: &dyn DispatchPort,
    tool_call_id: &str,
    command: &str,
    r: &aos_bash::BashResult,
) -> NewLogEntry {
    let s = port.session();
    port.telemetry()
        .tool_call(r.elapsed, r.exit_code == 0 && !r.timed_out);
    let head: String = command.chars().take(80).collect();
    tracing::info!(agent = %s.agent_id, session = %s.session_id, dispatch = %port.dispatch_id(),
        tool_call = tool_call_id, command = %head, exit = r.exit_code, timed_out = r.timed_out,
        duration_ms = r.elapsed.as_millis() as u64, "tool call");
    NewLogEntry {
        level: "info",
        op: "tool.bash".into(),
        owner_type: "session".into(),
        owner_id: Some(s.session_id.clone()),
        agent_id: Some(s.agent_id.clone()),
        session_id: Some(s.session_id.clone()),
        refs: Some(json!({ "toolCallId": tool_call_id, "dispatchId": port.dispatch_id() })),
        data: Some(
            json!({ "command": command, "exitCode": r.exit_code, "output": r.output,
                           "totalBytes": r.total_bytes, "truncated": r.truncated, "timedOut": r.timed_out,
                           "elapsedMs": r.elapsed.as_millis() as u64 }),
        ),
    }
}
