//! The command line of `aos a2a send`, parsed without the kernel (tested
//! natively).

/// How a message reaches its target (`kernel.md` §2.2 `data-a2a`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Appended; the target is not woken.
    Silent,
    /// Appended and the target dispatched; no answer comes back.
    Notify,
    /// As notify, and the target's final answer comes back to the sender.
    Wake,
}

impl Mode {
    /// The name in `data-a2a`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Silent => "silent",
            Mode::Notify => "notify",
            Mode::Wake => "wake",
        }
    }
}

/// One `send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Send {
    /// `ag_…` or `se_…`.
    pub to: String,
    /// How.
    pub mode: Mode,
    /// The text.
    pub message: String,
}

/// The usage line shown on a bad command.
pub const USAGE: &str =
    "usage: aos a2a send --to AGENT_OR_SESSION (--silent|--notify|--wake) \"message\"";

/// Parses `send --to X --mode… words…` (the words, or else `stdin`, are the
/// message).
pub fn parse(args: &[String], stdin: Option<&str>) -> Result<Send, String> {
    let mut it = args.iter();
    if it.next().map(String::as_str) != Some("send") {
        return Err(USAGE.into());
    }
    let (mut to, mut mode, mut words) = (None, None, Vec::new());
    while let Some(a) = it.next() {
        let m = match a.as_str() {
            "--to" => {
                to = Some(
                    it.next()
                        .ok_or("--to needs an agent or session id")?
                        .clone(),
                );
                continue;
            }
            "--silent" => Mode::Silent,
            "--notify" => Mode::Notify,
            "--wake" => Mode::Wake,
            "--" => {
                words.extend(it.by_ref().map(String::as_str));
                break;
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}; {USAGE}")),
            s => {
                words.push(s);
                continue;
            }
        };
        if mode.replace(m).is_some_and(|old| old != m) {
            return Err("give one of --silent, --notify, --wake".into());
        }
    }
    let to = to.ok_or_else(|| format!("--to is required; {USAGE}"))?;
    if !(to.starts_with("ag_") || to.starts_with("se_")) {
        return Err(format!(
            "--to {to:?}: give an agent (ag_…) or a session (se_…) id"
        ));
    }
    let mode = mode.ok_or_else(|| format!("give one of --silent, --notify, --wake; {USAGE}"))?;
    let message = if words.is_empty() {
        stdin.unwrap_or_default().to_string()
    } else {
        words.join(" ")
    };
    if message.trim().is_empty() {
        return Err("the message is empty".into());
    }
    Ok(Send { to, mode, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn a_send_has_a_target_a_mode_and_words() {
        let s = parse(
            &args(&["send", "--to", "ag_1", "--wake", "how", "are you"]),
            None,
        );
        assert_eq!(
            s,
            Ok(Send {
                to: "ag_1".into(),
                mode: Mode::Wake,
                message: "how are you".into()
            })
        );
        let s = parse(
            &args(&["send", "--notify", "--to", "se_9"]),
            Some("from stdin"),
        );
        assert_eq!(
            s.map(|s| (s.mode, s.message)),
            Ok((Mode::Notify, "from stdin".into()))
        );
        let s = parse(
            &args(&["send", "--to", "se_9", "--silent", "--", "--not-an-option"]),
            None,
        );
        assert_eq!(s.map(|s| s.message), Ok("--not-an-option".into()));
    }

    #[test]
    fn bad_commands_say_what_is_wrong() {
        let err = |a: &[&str]| parse(&args(a), None).expect_err("refused");
        assert!(err(&["recv"]).starts_with("usage"));
        assert!(err(&["send", "--wake", "hi"]).contains("--to is required"));
        assert!(err(&["send", "--to", "bob", "--wake", "hi"]).contains("ag_"));
        assert!(err(&["send", "--to", "ag_1", "hi"]).contains("one of --silent"));
        assert!(err(&["send", "--to", "ag_1", "--wake", "--silent", "hi"]).contains("one of"));
        assert!(err(&["send", "--to", "ag_1", "--wake"]).contains("empty"));
        assert!(err(&["send", "--to", "ag_1", "--loud", "x"]).contains("unknown option --loud"));
        assert!(err(&["send", "--to"]).contains("--to needs"));
    }
}
