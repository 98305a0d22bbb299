//! Exit statuses (`interfaces.md` §2) and the error markers that choose them:
//! 0 success, 1 the command failed (a syscall answered `ok: false`, or a
//! local step such as scaffolding a skill failed), 2 bad usage (the command
//! line or its input), 3 no daemon reachable or the daemon could not start.

use std::process::ExitCode;

/// The process's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done.
    Success,
    /// The command failed.
    Failed,
    /// Bad usage.
    Usage,
    /// No daemon reachable, or the daemon could not start.
    Unreachable,
}

impl Exit {
    /// The status of an error: the marker it carries, else [`Exit::Failed`].
    pub fn of(e: &anyhow::Error) -> Exit {
        // A marker is a source in the chain, or a context (which anyhow
        // finds only by downcasting).
        let marked = |found: bool, in_chain: fn(&(dyn std::error::Error + 'static)) -> bool| {
            found || e.chain().any(in_chain)
        };
        if marked(e.downcast_ref::<Usage>().is_some(), |c| c.is::<Usage>()) {
            Exit::Usage
        } else if marked(e.downcast_ref::<Unreachable>().is_some(), |c| {
            c.is::<Unreachable>()
        }) {
            Exit::Unreachable
        } else {
            Exit::Failed
        }
    }

    /// The error code printed with it.
    pub fn code(self) -> &'static str {
        match self {
            Exit::Success => "ok",
            Exit::Failed => "cli.error",
            Exit::Usage => "cli.usage",
            Exit::Unreachable => "cli.unreachable",
        }
    }
}

impl Exit {
    /// The status number.
    pub fn number(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::Unreachable => 3,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.number())
    }
}

/// Marks an error as bad usage (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Marks an error as the daemon out of reach (exit 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn an_error_exits_with_the_status_of_its_marker() {
        let usage = anyhow::Error::new(Usage("--payload is not valid JSON".into()));
        assert_eq!(Exit::of(&usage), Exit::Usage);
        let down: anyhow::Result<()> = Err(anyhow::Error::new(Unreachable("cannot reach".into())));
        let wrapped = down.context("while posting").expect_err("an error");
        assert_eq!(Exit::of(&wrapped), Exit::Unreachable, "found under context");
        let io: Result<(), std::io::Error> = Err(std::io::ErrorKind::NotFound.into());
        let as_context = io
            .context(Usage("no such file".into()))
            .expect_err("an error");
        assert_eq!(
            Exit::of(&as_context),
            Exit::Usage,
            "a marker given as context"
        );
        assert_eq!(Exit::of(&anyhow::anyhow!("disk full")), Exit::Failed);
        let numbers =
            [Exit::Success, Exit::Failed, Exit::Usage, Exit::Unreachable].map(Exit::number);
        assert_eq!(numbers, [0, 1, 2, 3], "the documented numbers");
    }
}
