//! Who is calling (`kernel.md` §3, "Who may call what").
//!
//! The operator token may call everything. Session-scoped tokens for a
//! ReActUnit's bash and capability-scoped tokens for services arrive with the
//! dispatch and service issues; they will be further variants here, checked
//! before a handler runs.

/// The authenticated caller of a syscall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The operator token: may call everything.
    Operator,
    /// The kernel itself (bootstrap, recovery).
    Kernel,
}

impl Principal {
    /// `createdBy` of objects this principal creates.
    pub fn created_by(&self) -> String {
        "human".into()
    }

    /// Owner type written into RuntimeLog entries.
    pub fn log_owner(&self) -> &'static str {
        match self {
            Principal::Operator => "operator",
            Principal::Kernel => "system",
        }
    }
}
