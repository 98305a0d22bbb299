//! Bearer-token authentication.

use aos_kernel::Principal;
use axum::http::HeaderMap;

/// The tokens the server accepts.
#[derive(Debug, Clone)]
pub struct Tokens {
    operator: String,
}

impl Tokens {
    /// Accepts the operator token.
    pub fn new(operator: String) -> Self {
        Tokens { operator }
    }

    /// The operator principal for a request's `Authorization: Bearer …`.
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<Principal> {
        let token = bearer(headers)?;
        constant_time_eq(token.as_bytes(), self.operator.as_bytes()).then_some(Principal::Operator)
    }

    /// The operator, or the session or service a live token belongs to.
    pub fn authenticate_any(
        &self,
        headers: &HeaderMap,
        kernel: &aos_kernel::Kernel,
    ) -> Option<Principal> {
        self.authenticate(headers)
            .or_else(|| kernel.token_principal(bearer(headers)?))
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

/// Compares without an early exit, so timing does not reveal a prefix match.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_passes() {
        let t = Tokens::new("secret".into());
        let mut h = HeaderMap::new();
        assert!(t.authenticate(&h).is_none());
        h.insert("authorization", "Bearer secreT".parse().expect("header"));
        assert!(t.authenticate(&h).is_none());
        h.insert("authorization", "Bearer secret".parse().expect("header"));
        assert_eq!(t.authenticate(&h), Some(Principal::Operator));
        h.insert("authorization", "Basic secret".parse().expect("header"));
        assert!(t.authenticate(&h).is_none());
    }
}
