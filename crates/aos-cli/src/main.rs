//! `aos`: the AgentOS daemon and its command-line client in one binary.
//!
//! Data goes to stdout as one JSON document; logs go to stderr. Exit status:
//! 0 success, 1 the command failed (a syscall answered `ok: false`), 2 bad
//! usage, 3 no daemon reachable or the daemon could not start ([`exit`]).

mod authoring;
mod builtins;
mod cli;
mod client;
mod commands;
mod config;
mod converse;
mod ctrlc;
mod daemon;
mod exit;
mod harness;
mod scaffold;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(converse::Failed(doc)) = e.downcast_ref::<converse::Failed>() {
                println!("{doc}");
                return ExitCode::from(1);
            }
            if let Some(converse::Interrupted(doc)) = e.downcast_ref::<converse::Interrupted>() {
                println!("{doc}");
                return ExitCode::from(130);
            }
            let exit = exit::Exit::of(&e);
            let doc = serde_json::json!({
                "ok": false,
                "error": { "code": exit.code(), "message": format!("{e:#}") },
            });
            println!("{doc}");
            exit.into()
        }
    }
}
