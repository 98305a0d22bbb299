//! A command: a note pad the agent drives with `aos skill run command …`.
//! Notes live in `/state/notes.txt`, the one directory its SKILL.md grants.

use aos_sdk::{Output, Owner, Registration, Service, Value};

const NOTES: &str = "/state/notes.txt";

struct Notes;

impl Service for Notes {
    fn init(_owner: &Owner, _config: &Value) -> Result<(Self, Registration), String> {
        // No hooks: this service only answers commands.
        Ok((Self, Registration::default()))
    }

    fn invoke(&mut self, args: &[String], stdin: Option<&str>) -> Result<Output, String> {
        match args.first().map(String::as_str) {
            Some("add") => {
                let text = match (args.len() > 1, stdin) {
                    (true, _) => args[1..].join(" "),
                    (false, Some(s)) => s.trim().to_string(),
                    (false, None) => return Ok(Output::fail(2, "usage: add TEXT")),
                };
                let mut notes = std::fs::read_to_string(NOTES).unwrap_or_default();
                notes.push_str(&text);
                notes.push('\n');
                std::fs::write(NOTES, notes).map_err(|e| e.to_string())?;
                Ok(Output::ok("noted\n"))
            }
            Some("list") => Ok(Output::ok(std::fs::read_to_string(NOTES).unwrap_or_default())),
            Some("clear") => {
                let _ = std::fs::remove_file(NOTES);
                Ok(Output::ok("cleared\n"))
            }
            _ => Ok(Output::fail(2, "usage: add TEXT | list | clear")),
        }
    }
}

aos_sdk::export!(Notes);
