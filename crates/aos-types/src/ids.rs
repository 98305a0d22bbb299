//! Opaque prefixed ids (`ag_…`, `se_…`) and RFC 3339 UTC times.

use chrono::{DateTime, SecondsFormat, Utc};

/// The kinds of id the kernel mints; each has its own prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// An agent (`ag_`).
    Agent,
    /// A session (`se_`).
    Session,
    /// A SessionHistory message (`msg_`).
    Message,
    /// A part of a message (`pt_`).
    Part,
    /// A ContentStore blob (`ct_`).
    Content,
    /// A dispatch (`ds_`).
    Dispatch,
    /// A session lease (`ls_`).
    Lease,
    /// A running service instance (`sv_`).
    Service,
}

impl IdKind {
    /// The prefix, including the underscore.
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::Agent => "ag_",
            IdKind::Session => "se_",
            IdKind::Message => "msg_",
            IdKind::Part => "pt_",
            IdKind::Content => "ct_",
            IdKind::Dispatch => "ds_",
            IdKind::Lease => "ls_",
            IdKind::Service => "sv_",
        }
    }
}

/// A new, time-ordered id of the given kind (a prefixed, lowercase ULID).
pub fn new_id(kind: IdKind) -> String {
    format!(
        "{}{}",
        kind.prefix(),
        ulid::Ulid::new().to_string().to_lowercase()
    )
}

/// Checks the shape of a client-supplied id: printable ASCII letters, digits,
/// `_` and `-`, at most 64 characters. Ids never contain path separators or
/// `..`, so they are safe to use in file names.
pub fn validate_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The current time as RFC 3339 UTC with millisecond precision, e.g.
/// `2026-11-26T06:37:08.123Z`. The format has a fixed width, so the strings
/// sort like the instants they name.
pub fn now() -> String {
    format_time(Utc::now())
}

/// Formats an instant the way [`now`] does.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 time.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_validate() {
        let id = new_id(IdKind::Agent);
        assert!(id.starts_with("ag_"));
        assert!(validate_id(&id));
        assert!(!validate_id("../etc"));
        assert!(!validate_id("a/b"));
        assert!(!validate_id(""));
        assert!(!validate_id(&"x".repeat(65)));
    }

    #[test]
    fn times_sort_lexically() {
        let a = now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = now();
        assert!(a < b, "{a} < {b}");
        assert_eq!(a.len(), 24);
        assert!(parse_time(&a).is_some());
    }
}
