//! Client commands: each maps to one syscall; the response document is printed
//! as it came.

use crate::cli::{
    A2aCmd, AgentCmd, Cli, Command, ContentCmd, DaemonCmd, SandboxCmd, SessionCmd, SkillCmd,
};
use crate::client::Client;
use crate::daemon;
use crate::exit::{Unreachable, Usage};
use anyhow::{Context, Result, bail};
use aos_types::requests::{Op, SessionInterrupt, SkillInvoke};
use serde_json::{Map, Value, json};
use std::io::{Read, Write};
use std::process::ExitCode;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let pretty = cli.pretty;
    let (doc, ok) = match cli.command {
        Command::Daemon(DaemonCmd::Start(args)) if !args.detach => {
            daemon::start_foreground(&args).map_err(not_started)?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Daemon(DaemonCmd::Start(args)) => {
            (daemon::start_detached(&args).map_err(not_started)?, true)
        }
        Command::Daemon(DaemonCmd::Stop { home }) => daemon::stop(home)?,
        Command::Daemon(DaemonCmd::Status { home }) => daemon::status(home),
        Command::Skill(SkillCmd::New { name, template }) => {
            (crate::scaffold::new_skill(&name, &template)?, true)
        }
        Command::Send {
            session,
            message,
            stream,
            detach,
            queue,
            ..
        } => crate::converse::send(&session, &message, stream, detach, queue)?,
        Command::Run { message, agent } => crate::converse::run(&message, agent)?,
        Command::Skill(SkillCmd::List { session }) if session_in_context(&session) => {
            crate::harness::run(
                "aos-skill",
                vec!["list".into()],
                session_or_env(session).ok(),
            )?
        }
        Command::Skill(SkillCmd::Search {
            query,
            limit,
            session,
        }) => {
            let mut args = vec!["search".to_string()];
            args.extend(query);
            if let Some(n) = limit {
                args.extend(["--limit".to_string(), n.to_string()]);
            }
            crate::harness::run("aos-skill", args, session_or_env(session).ok())?
        }
        Command::Skill(SkillCmd::Load { name, session }) => crate::harness::run(
            "aos-skill",
            vec!["load".into(), name],
            Some(session_or_env(session)?),
        )?,
        Command::A2a(A2aCmd::Send {
            to,
            silent,
            notify,
            wake: _,
            message,
            session,
        }) => {
            let mode = match (silent, notify) {
                (true, _) => "--silent",
                (_, true) => "--notify",
                _ => "--wake",
            };
            let args = ["send", "--to", &to, mode, "--", &message];
            let args = args.iter().map(|a| a.to_string()).collect();
            crate::harness::run("aos-a2a", args, Some(session_or_env(session)?))?
        }
        Command::Bench {
            quick,
            skills,
            only,
            ..
        } => (
            aos_bench::run(quick, skills, only).map_err(bench_error)?,
            true,
        ),
        Command::Sandbox(SandboxCmd::Check) => sandbox_check(),
        Command::Call { list: true, .. } => (op_list(), true),
        Command::Session(SessionCmd::History {
            id,
            from,
            limit,
            format,
        }) if format == "text" => {
            let req = obj(json!({ "op": "session.history.list", "sessionId": id,
                                  "fromSeq": from, "limit": limit }));
            let doc = Client::discover()?.call(&Value::Object(req))?;
            if doc["ok"] != true {
                print(&doc, pretty);
                return Ok(crate::exit::Exit::Failed.into());
            }
            let text = crate::converse::render(&doc["data"]["messages"]);
            let _ = std::io::stdout().write_all(text.as_bytes());
            return Ok(ExitCode::SUCCESS);
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "aos", &mut std::io::stdout());
            return Ok(ExitCode::SUCCESS);
        }
        Command::Skill(SkillCmd::Run { name, args, json }) => {
            return skill_run(name, args, json, pretty);
        }
        Command::Skill(SkillCmd::Stop { instance }) => {
            crate::authoring::each_instance("skill.stop", &instance)?
        }
        Command::Skill(SkillCmd::Restart { target }) => {
            crate::authoring::each_instance("skill.restart", &target)?
        }
        Command::Skill(SkillCmd::Unload { name, session }) => {
            let req = json!({ "op": "skill.unload", "name": name,
                              "sessionId": session_or_env(session)? });
            let doc = Client::discover()?.call(&req)?;
            let ok = doc["ok"] == true;
            (doc, ok)
        }
        Command::Skill(SkillCmd::Build { dir }) => crate::authoring::build(&dir)?,
        Command::Version => (
            json!({ "ok": true, "op": "version", "data": { "version": env!("CARGO_PKG_VERSION"), "name": "aos" } }),
            true,
        ),
        other => {
            let (op, params) = request(other)?;
            let mut req = params;
            req.insert("op".into(), Value::String(op));
            let doc = Client::discover()?.call(&Value::Object(req))?;
            let ok = doc.get("ok").and_then(Value::as_bool).unwrap_or(false);
            (doc, ok)
        }
    };
    print(&doc, pretty);
    Ok(if ok {
        ExitCode::SUCCESS
    } else if doc["error"]["code"] == "daemon.not_running" {
        // `daemon status|stop` with no daemon: nothing reachable, as any
        // client command without one.
        crate::exit::Exit::Unreachable.into()
    } else {
        crate::exit::Exit::Failed.into()
    })
}

/// `aos skill run NAME ARGS…`: the command's standard input from ours
/// (unless a terminal), its output as it is (or the JSON document with
/// `--json`), its exit status as ours. A daemon's refusal is the usual JSON
/// error, exit 1.
fn skill_run(name: String, args: Vec<String>, json: bool, pretty: bool) -> Result<ExitCode> {
    use std::io::IsTerminal;
    const MAX_STDIN: u64 = 1 << 20;
    let stdin = if std::io::stdin().is_terminal() {
        None
    } else {
        let mut buf = String::new();
        std::io::stdin()
            .take(MAX_STDIN + 1)
            .read_to_string(&mut buf)
            .map_err(|e| Usage(format!("cannot read standard input as text: {e}")))?;
        if buf.len() as u64 > MAX_STDIN {
            return Err(Usage(
                "standard input over 1 MiB: pass larger data as a file the command reads".into(),
            )
            .into());
        }
        (!buf.is_empty()).then_some(buf)
    };
    let req = SkillInvoke {
        name,
        args,
        stdin,
        session_id: std::env::var("AOS_SESSION_ID")
            .ok()
            .filter(|s| !s.is_empty()),
    };
    let doc = Client::discover()?.call(&req.call())?;
    let data = &doc["data"];
    let Some(code) = data["exitCode"].as_i64().filter(|_| doc["ok"] == true) else {
        print(&doc, pretty);
        return Ok(crate::exit::Exit::Failed.into());
    };
    if json {
        print(&doc, pretty);
    } else {
        let _ = std::io::stdout().write_all(data["stdout"].as_str().unwrap_or_default().as_bytes());
        let _ = std::io::stderr().write_all(data["stderr"].as_str().unwrap_or_default().as_bytes());
    }
    Ok(ExitCode::from(
        u8::try_from(code.clamp(0, 255)).unwrap_or(1),
    ))
}

/// `aos call --list`: the op table, as the kernel checks it.
fn op_list() -> Value {
    let ops: Vec<Value> = aos_types::SYSCALLS
        .iter()
        .map(|s| {
            json!({ "op": s.op, "kind": match s.kind {
                aos_types::SyscallKind::Command => "command",
                aos_types::SyscallKind::Query => "query",
            }, "group": s.group, "agentBash": s.session_token })
        })
        .collect();
    json!({ "ok": true, "op": "call.list", "data": { "ops": ops,
            "docs": "docs/syscalls.md: every op's parameters and answer" } })
}

/// A bench that could not run: an unknown `--only` is bad usage.
fn bench_error(e: aos_bench::BenchError) -> anyhow::Error {
    match e {
        aos_bench::BenchError::UnknownSection { .. } => Usage(e.to_string()).into(),
        e => e.into(),
    }
}

/// A daemon start that failed: exit status 3, the cause kept.
fn not_started(e: anyhow::Error) -> anyhow::Error {
    e.context(Unreachable("the daemon could not start".into()))
}

fn print(doc: &Value, pretty: bool) {
    let text = if pretty {
        serde_json::to_string_pretty(doc).unwrap_or_default()
    } else {
        doc.to_string()
    };
    // A reader that stopped early (`aos … | head`) is not an error of ours.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// A JSON-valued flag.
fn json_arg(flag: &str, v: Option<String>) -> Result<Value> {
    match v {
        None => Ok(Value::Null),
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| Usage(format!("{flag} is not valid JSON: {e}")).into()),
    }
}

/// `aos sandbox check`: the daemon's `bashSandbox` health section when one
/// answers, else a probe of this machine with the environment's settings.
fn sandbox_check() -> (Value, bool) {
    let from_daemon = Client::discover()
        .ok()
        .and_then(|c| c.call(&json!({ "op": "system.health" })).ok())
        .filter(|doc| doc["ok"] == json!(true))
        .map(|doc| (doc["data"]["bashSandbox"].clone(), "daemon"));
    let (report, source) = from_daemon.unwrap_or_else(|| {
        let on = std::env::var("AOS_BASH_SANDBOX").map_or(true, |v| v != "off");
        let cgroups = if on {
            aos_sandbox::Cgroups::detect()
        } else {
            aos_sandbox::Cgroups::none("the bash sandbox is off")
        };
        (
            serde_json::to_value(aos_sandbox::Report::probe(on, &cgroups)).unwrap_or_default(),
            "this machine (no daemon answered)",
        )
    });
    let ready = report["ready"] == json!(true);
    let mut data = report;
    data["source"] = json!(source);
    (
        json!({ "ok": ready, "op": "sandbox.check", "data": data }),
        ready,
    )
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m.into_iter().filter(|(_, v)| !v.is_null()).collect(),
        _ => Map::new(),
    }
}

/// Whether a command runs for a session: `--session`, or inside an agent's
/// bash (`$AOS_SESSION_ID`).
fn session_in_context(session: &Option<String>) -> bool {
    session.is_some() || std::env::var("AOS_SESSION_ID").is_ok_and(|s| !s.is_empty())
}

fn session_or_env(session: Option<String>) -> Result<String> {
    match session.or_else(|| {
        std::env::var("AOS_SESSION_ID")
            .ok()
            .filter(|s| !s.is_empty())
    }) {
        Some(s) => Ok(s),
        None => Err(Usage(
            "give --session ID (or run inside a session, where AOS_SESSION_ID is set)".into(),
        ))?,
    }
}

/// The syscall a client command stands for.
fn request(cmd: Command) -> Result<(String, Map<String, Value>)> {
    let (op, params) = match cmd {
        Command::Call { op, payload, .. } => (
            op.ok_or_else(|| Usage("name an op, or --list".into()))?,
            payload_params(payload)?,
        ),
        Command::Agent(a) => match a {
            AgentCmd::Create { name, permissions } => (
                "agent.create",
                obj(json!({ "displayName": name, "permissions": json_arg("--permissions", permissions)? })),
            ),
            AgentCmd::Update {
                id,
                name,
                permissions,
            } => (
                "agent.update",
                obj(json!({ "agentId": id, "displayName": name,
                            "permissions": json_arg("--permissions", permissions)? })),
            ),
            AgentCmd::List => ("agent.list", Map::new()),
            AgentCmd::Get { id } => ("agent.get", obj(json!({ "agentId": id }))),
            AgentCmd::Archive { id } => ("agent.archive", obj(json!({ "agentId": id }))),
        }
        .into_owned(),
        Command::Session(s) => match s {
            SessionCmd::Create { agent, title } => (
                "session.create",
                obj(json!({ "agentId": agent, "title": title })),
            ),
            SessionCmd::List { agent } => ("session.list", obj(json!({ "agentId": agent }))),
            SessionCmd::Get { id } => ("session.get", obj(json!({ "sessionId": id }))),
            SessionCmd::Interrupt { id, reason } => (
                SessionInterrupt::OP,
                obj(SessionInterrupt {
                    session_id: id,
                    reason,
                }
                .call()),
            ),
            SessionCmd::History {
                id, from, limit, ..
            } => (
                "session.history.list",
                obj(json!({ "sessionId": id, "fromSeq": from, "limit": limit })),
            ),
        }
        .into_owned(),
        Command::Skill(s) => match s {
            SkillCmd::List { .. } => ("skill.list", Map::new()),
            SkillCmd::Get { name } => ("skill.get", obj(json!({ "name": name }))),

            SkillCmd::Start {
                name,
                owner,
                config,
            } => {
                let config = match config {
                    Some(c) => Some(
                        serde_json::from_str::<Value>(&c)
                            .map_err(|e| Usage(format!("--config is not valid JSON: {e}")))?,
                    ),
                    None => None,
                };
                (
                    "skill.start",
                    obj(json!({ "name": name, "owner": owner, "config": config })),
                )
            }
            SkillCmd::New { .. }
            | SkillCmd::Search { .. }
            | SkillCmd::Load { .. }
            | SkillCmd::Stop { .. }
            | SkillCmd::Restart { .. }
            | SkillCmd::Unload { .. }
            | SkillCmd::Build { .. }
            | SkillCmd::Run { .. } => {
                bail!("not a single syscall")
            }
        }
        .into_owned(),
        Command::Content(c) => match c {
            ContentCmd::Read { id, offset, limit } => (
                "content.read",
                obj(json!({ "contentId": id, "offset": offset, "limit": limit })),
            ),
            ContentCmd::Search { id, pattern } => (
                "content.search",
                obj(json!({ "contentId": id, "pattern": pattern })),
            ),
        }
        .into_owned(),
        Command::Daemon(_)
        | Command::A2a(_)
        | Command::Version
        | Command::Completions { .. }
        | Command::Sandbox(_)
        | Command::Bench { .. }
        | Command::Send { .. }
        | Command::Run { .. } => bail!("not a single syscall"),
    };
    Ok((op, params))
}

trait IntoOwned {
    fn into_owned(self) -> (String, Map<String, Value>);
}

impl IntoOwned for (&str, Map<String, Value>) {
    fn into_owned(self) -> (String, Map<String, Value>) {
        (self.0.to_string(), self.1)
    }
}

fn payload_params(payload: Option<String>) -> Result<Map<String, Value>> {
    let text = match payload.as_deref() {
        None => return Ok(Map::new()),
        Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the payload from stdin")?;
            s
        }
        Some(s) => s.to_string(),
    };
    let payload = serde_json::from_str::<Value>(&text)
        .map_err(|e| Usage(format!("--payload is not valid JSON: {e}")))?;
    match payload {
        Value::Object(m) => Ok(m),
        _ => Err(Usage(
            "--payload must be a JSON object, e.g. '{\"agentId\":\"ag_…\"}'".into(),
        ))?,
    }
}
