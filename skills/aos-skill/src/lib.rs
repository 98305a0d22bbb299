//! `aos-skill`, the default skill discovery (`skills.md` §5), written with the
//! project's guest SDK:
//! - `skill.discovery.resolve` ranks the candidates against the query by name
//!   and description ([`rank`]);
//! - its commands (`aos skill list|search|load`, run through `skill.invoke`)
//!   act for the session that ran them (`service.caller`), through
//!   `skill.catalog.refresh`, so every `skill.discovery.*` hook applies: a
//!   skill that discovery does not show cannot be loaded.
//!
//! A command prints one JSON document on stdout; a failure exits 1 with a
//! JSON `{code, message}` on stderr.

mod rank;

use aos_sdk::{Caller, Input, Output, Owner, Registration, Service, Value, json, syscall};

/// Most results of a search unless `--limit` says otherwise.
const DEFAULT_LIMIT: usize = 20;
/// Most results a caller may ask for.
const MAX_LIMIT: usize = 1000;

struct Discovery;

impl Service for Discovery {
    fn init(_owner: &Owner, _config: &Value) -> Result<(Self, Registration), String> {
        Ok((Self, Registration::hooks(["skill.discovery.resolve"])))
    }

    fn transform(&mut self, hook: &str, input: &Input, output: Value) -> Result<Value, String> {
        if hook != "skill.discovery.resolve" {
            return Ok(output);
        }
        let candidates = input["candidates"].as_array().cloned().unwrap_or_default();
        let limit = input["limit"]
            .as_u64()
            .map_or(MAX_LIMIT, |l| l as usize)
            .min(MAX_LIMIT);
        let selected = rank::rank(input["query"].as_str(), &candidates, limit);
        Ok(json!({ "selected": selected }))
    }

    fn invoke(&mut self, args: &[String], _stdin: Option<&str>) -> Result<Output, String> {
        let caller = aos_sdk::caller().map_err(|e| e.to_string())?;
        let result = match args.first().map(String::as_str) {
            Some("list") if args.len() == 1 => catalog(&caller, None, MAX_LIMIT),
            Some("search") => search(&caller, &args[1..]),
            Some("load") if args.len() == 2 => load(&caller, &args[1]),
            _ => Err(usage()),
        };
        Ok(match result {
            Ok(data) => Output::ok(data.to_string()),
            Err(e) => Output::fail(1, e.to_string()),
        })
    }
}

/// A failure as the CLI shows it.
fn error(code: &str, message: impl Into<String>) -> Value {
    json!({ "code": code, "message": message.into() })
}

fn usage() -> Value {
    error(
        "request.invalid",
        "usage: aos skill list | aos skill search QUERY [--limit N] | aos skill load NAME",
    )
}

fn from_syscall(e: aos_sdk::SyscallError) -> Value {
    json!({ "code": e.code, "message": e.message, "details": e.details })
}

/// The discovery catalog of the caller's session (or of the system when no
/// session ran the command), through every `skill.discovery.*` hook.
fn catalog(caller: &Caller, query: Option<&str>, limit: usize) -> Result<Value, Value> {
    let owner = match &caller.session_id {
        Some(s) => json!({ "ownerType": "session", "ownerId": s }),
        None => json!({ "ownerType": "system" }),
    };
    // Ask for everything: when this instance ranks, it ranks all candidates.
    let mut params = owner;
    params["limit"] = json!(MAX_LIMIT);
    if let Some(q) = query {
        params["query"] = json!(q);
    }
    let data = syscall("skill.catalog.refresh", params).map_err(from_syscall)?;
    let mut selected = data["catalog"].as_array().cloned().unwrap_or_default();
    // This instance's own ranking cannot answer while it waits in this very
    // syscall (the kernel skips it); unless a replacement ranked, rank here,
    // with the query as `skill.discovery.before` left it.
    if data["resolvedBy"].is_null() {
        selected = rank::rank(data["query"].as_str(), &selected, limit);
    }
    let skills: Vec<Value> = selected
        .iter()
        .take(limit)
        .map(|s| {
            let mut v = json!({ "name": s["name"], "description": s["description"] });
            if !s["score"].is_null() {
                v["score"] = s["score"].clone();
            }
            v
        })
        .collect();
    let mut out = json!({ "skills": skills });
    if let Some(q) = query {
        out["query"] = json!(q);
    }
    Ok(out)
}

/// `search QUERY… [--limit N]`: the words are one query.
fn search(caller: &Caller, args: &[String]) -> Result<Value, Value> {
    let mut words = Vec::new();
    let mut limit = DEFAULT_LIMIT;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--limit" {
            limit = it
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| error("request.invalid", "--limit takes a number from 1 to 1000"))?;
        } else {
            words.push(a.as_str());
        }
    }
    let query = words.join(" ");
    if query.trim().is_empty() {
        return Err(usage());
    }
    catalog(caller, Some(&query), limit)
}

/// `load NAME`: into the caller's own session, if discovery shows it there.
fn load(caller: &Caller, name: &str) -> Result<Value, Value> {
    let Some(session) = &caller.session_id else {
        return Err(error(
            "request.invalid",
            "load needs a session: run it from an agent's bash, or give --session",
        ));
    };
    let visible = catalog(caller, None, MAX_LIMIT)?;
    let found = visible["skills"]
        .as_array()
        .is_some_and(|s| s.iter().any(|v| v["name"] == name));
    if !found {
        return Err(error(
            "skill.not_found",
            format!("no skill {name:?} is available to this session; see `aos skill list`"),
        ));
    }
    let loaded = aos_sdk::ops::skill_load(name, session).map_err(from_syscall)?;
    Ok(json!({ "name": loaded.name, "messageId": loaded.message_id, "seq": loaded.seq }))
}

aos_sdk::export!(Discovery);
