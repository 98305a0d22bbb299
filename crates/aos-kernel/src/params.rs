//! Payload decoding and validation shared by the op handlers. Every op's
//! parameters are a struct with `deny_unknown_fields`, so a misspelt field is
//! an error rather than silently ignored.

use aos_store::StoreError;
use aos_types::{ErrorCode, SkillDefaultRule, SyscallError, validate_id};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Longest display name or title, in characters.
pub const MAX_NAME_CHARS: usize = 256;
/// Most parts in one appended message.
pub const MAX_PARTS: usize = 256;
/// Largest page.
pub const MAX_LIMIT: i64 = 1000;
/// Most default-skill rules on one control block.
pub const MAX_RULES: usize = 256;

/// Decodes an op's parameters.
pub fn decode<T: DeserializeOwned>(
    op: &str,
    params: Map<String, Value>,
) -> Result<T, SyscallError> {
    serde_json::from_value(Value::Object(params))
        .map_err(|e| SyscallError::invalid(format!("{op}: {e}")))
}

/// Checks an id field.
pub fn id(field: &str, value: &str) -> Result<(), SyscallError> {
    if validate_id(value) {
        Ok(())
    } else {
        Err(SyscallError::invalid(format!(
            "`{field}` must be an id of letters, digits, `_` and `-` (at most 64), got {:?}",
            truncate(value)
        )))
    }
}

/// Checks a skill name (as in SKILL.md: lowercase letters, digits, hyphens).
pub fn skill_name(field: &str, value: &str) -> Result<(), SyscallError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(SyscallError::invalid(format!(
            "`{field}` must be a skill name (lowercase letters, digits, hyphens), got {:?}",
            truncate(value)
        )))
    }
}

/// Checks a short human string.
pub fn short_text(field: &str, value: &str) -> Result<(), SyscallError> {
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(SyscallError::invalid(format!(
            "`{field}` is longer than {MAX_NAME_CHARS} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(SyscallError::invalid(format!(
            "`{field}` must not contain control characters"
        )));
    }
    Ok(())
}

/// Checks a positive integer setting.
pub fn positive(field: &str, value: i64) -> Result<(), SyscallError> {
    if value > 0 {
        Ok(())
    } else {
        Err(SyscallError::invalid(format!(
            "`{field}` must be a positive integer, got {value}"
        )))
    }
}

/// Checks default-skill rules.
pub fn rules(field: &str, rules: &[SkillDefaultRule]) -> Result<(), SyscallError> {
    if rules.len() > MAX_RULES {
        return Err(SyscallError::invalid(format!(
            "`{field}` has more than {MAX_RULES} rules"
        )));
    }
    for (i, r) in rules.iter().enumerate() {
        skill_name(&format!("{field}[{i}].name"), &r.name)?;
    }
    Ok(())
}

/// Clamps a page size.
pub fn limit(value: Option<i64>, default: i64) -> Result<i64, SyscallError> {
    match value {
        None => Ok(default),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(SyscallError::invalid(format!(
            "`limit` must be between 1 and {MAX_LIMIT}, got {n}"
        ))),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// How the message of an `internal` error the store caused begins.
pub(crate) const STORE_FAILURE: &str = "store failure";

/// Whether `e` is the store's failure (full, or any other) — the dispatch's
/// writes may then be missing.
pub(crate) fn is_store_failure(e: &SyscallError) -> bool {
    e.code == ErrorCode::StoreFull
        || (e.code == ErrorCode::Internal && e.message.starts_with(STORE_FAILURE))
}

/// Maps a store error to the syscall error a client sees.
pub fn store_err(e: StoreError) -> SyscallError {
    match e {
        StoreError::NotFound { kind, id } => SyscallError::not_found(kind, &id),
        StoreError::RevisionConflict {
            kind,
            expected,
            actual,
        } => SyscallError::new(
            ErrorCode::RevisionConflict,
            format!(
                "{kind} is at revision {actual}, not the expected {expected}; re-read it and retry"
            ),
        )
        .with_details(serde_json::json!({ "kind": kind, "expected": expected, "actual": actual })),
        StoreError::Rejected { code, message } => SyscallError::new(
            ErrorCode::parse(code).unwrap_or(ErrorCode::Internal),
            message,
        ),
        other => match other.full_file() {
            Some(file) => {
                let e = StoreError::Full { file: file.clone() };
                tracing::error!(error = %e, "store full");
                SyscallError::new(ErrorCode::StoreFull, e.to_string())
                    .with_details(serde_json::json!({ "file": file }))
            }
            None => {
                tracing::error!(error = %other, "store failure");
                SyscallError::internal(format!("{STORE_FAILURE}: {other}"))
            }
        },
    }
}

/// Extension to map store results.
pub trait StoreResult<T> {
    /// Maps the error with [`store_err`].
    fn sys(self) -> Result<T, SyscallError>;
}

impl<T> StoreResult<T> for Result<T, StoreError> {
    fn sys(self) -> Result<T, SyscallError> {
        self.map_err(store_err)
    }
}

/// A model name: not blank, at most [`MAX_NAME_CHARS`] characters.
pub fn model(field: &str, value: &str) -> Result<(), SyscallError> {
    if value.trim().is_empty() {
        return Err(SyscallError::invalid(format!(
            "`{field}` must not be empty: name a model, e.g. \"openai/gpt-4o-mini\""
        )));
    }
    short_text(field, value)
}

/// The id an idempotent write gets (`prefix` and a hash of the session and
/// its `idempotencyKey`), after checking both; `None` without a key. A
/// repeated key names the same message or dispatch, whose id is unique in
/// the store: it cannot be written twice.
pub fn keyed_id(
    prefix: &str,
    session_id: &str,
    key: Option<&str>,
) -> Result<Option<String>, SyscallError> {
    use sha2::{Digest, Sha256};
    let Some(key) = key else { return Ok(None) };
    let ok = !key.is_empty()
        && key.len() <= 128
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c));
    if !ok {
        return Err(SyscallError::invalid(
            "`idempotencyKey` must be 1 to 128 letters, digits, `_`, `-`, `.` or `:`",
        ));
    }
    id("sessionId", session_id)?;
    let mut h = Sha256::new();
    h.update(session_id.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Some(format!("{prefix}{}", &hex[..40])))
}
