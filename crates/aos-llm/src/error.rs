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
    /// Whether the provider refused the request for exceeding the model's
    /// context window (the phrasing of OpenAI, OpenRouter, Anthropic-compatible
    /// gateways, vLLM and llama.cpp servers).
    pub fn is_context_overflow(&self) -> bool {
        let LlmError::Status { status, message } = self else {
            return false;
        };
        let m = message.to_ascii_lowercase();
        matches!(status, 400 | 413 | 422)
            && [
                "context_length_exceeded",
                "context length",
                "context window",
                "maximum context",
                "too many tokens",
                "prompt is too long",
                "exceeds the model",
            ]
            .iter()
            .any(|p| m.contains(p))
    }

    /// Whether trying again may help.
    pub fn retryable(&self) -> bool {
        match self {
            LlmError::Status { status, .. } => *status == 429 || *status >= 500,
            LlmError::Timeout(_) | LlmError::Connect { .. } => true,
            LlmError::Protocol(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LlmError;

    fn status(status: u16, message: &str) -> LlmError {
        LlmError::Status {
            status,
            message: message.into(),
        }
    }

    #[test]
    fn context_overflow_is_recognised_in_providers_words() {
        for m in [
            "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
            "context_length_exceeded",
            "prompt is too long: 210000 tokens > 200000 maximum",
            "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Too many tokens",
        ] {
            assert!(status(400, m).is_context_overflow(), "{m}");
        }
        assert!(!status(400, "invalid model id").is_context_overflow());
        assert!(
            !status(500, "maximum context length").is_context_overflow(),
            "a 5xx is not a refusal"
        );
        assert!(!LlmError::Protocol("maximum context".into()).is_context_overflow());
    }
}
