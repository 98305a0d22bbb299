//! Why a call failed.

/// A failed LLM call, after retries.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    /// The provider answered an error status.
    #[error("the provider answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The provider's own message.
        message: String,
    },
    /// No answer in time.
    #[error("the provider did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The connection failed.
    #[error("cannot reach the provider at {url}: {message}")]
    Connect {
        /// Endpoint.
        url: String,
        /// Why.
        message: String,
    },
    /// The answer broke the wire format (bad JSON, a cut stream, no choice).
    #[error("the provider's answer is malformed: {0}")]
    Protocol(String),
}

impl LlmError {
    /// Whether trying again may help.
    pub fn retryable(&self) -> bool {
        match self {
            LlmError::Status { status, .. } => *status == 429 || *status >= 500,
            LlmError::Timeout(_) | LlmError::Connect { .. } => true,
            LlmError::Protocol(_) => false,
        }
    }
}
