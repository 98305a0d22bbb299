//! The cache of SessionContexts (`crate::context` assembles them): each
//! session's context messages as the engine wrote them, kept in memory and
//! never persisted.

use aos_types::SyscallError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One context message as the engine wrote it: the `wire` message the model
/// is sent and `aos` (where it comes from), each kept as JSON text. An
/// element without `wire` is taken as the wire message itself.
#[derive(Debug, Clone)]
pub struct ContextMessage {
    /// The OpenAI chat message.
    pub wire: Box<RawValue>,
    /// `{sourceMessageId, sourcePartId?, kind}`, if the engine gave it.
    pub aos: Option<Box<RawValue>>,
}

impl Serialize for ContextMessage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("wire", &self.wire)?;
        if let Some(aos) = &self.aos {
            m.serialize_entry("aos", aos)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for ContextMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Parts {
            wire: Option<Box<RawValue>>,
            aos: Option<Box<RawValue>>,
        }
        let raw = Box::<RawValue>::deserialize(d)?;
        Ok(match serde_json::from_str::<Parts>(raw.get()) {
            Ok(Parts {
                wire: Some(wire),
                aos,
            }) => ContextMessage { wire, aos },
            _ => ContextMessage {
                wire: raw,
                aos: None,
            },
        })
    }
}

/// The cached context of one session.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext {
    /// Session id.
    pub session_id: String,
    /// Bumped on every assembly that changed the context.
    pub context_revision: u64,
    /// `{wire, aos}` context messages.
    pub messages: Arc<Vec<ContextMessage>>,
    /// `{historyMessageId, historyPartId?}` folded by request.
    pub folded_refs: Vec<Value>,
    /// `{historyMessageId, historyPartId?}` of stored outputs shown in full.
    pub unfolded_refs: Vec<Value>,
    /// The engine's token estimate.
    pub estimated_tokens: i64,
}

/// One session's cached context, locked for the length of an assembly so two
/// assemblies of a session never interleave.
pub(crate) type Slot = Arc<tokio::sync::Mutex<SessionContext>>;

/// Every session's cached context.
#[derive(Default)]
pub(crate) struct ContextCache(Mutex<HashMap<String, Slot>>);

impl ContextCache {
    /// The slot of a session (made empty on first use).
    pub(crate) fn slot(&self, session_id: &str) -> Result<Slot, SyscallError> {
        Ok(self
            .0
            .lock()
            .map_err(|_| SyscallError::internal("context cache poisoned"))?
            .entry(session_id.to_string())
            .or_default()
            .clone())
    }

    /// Forgets a session's context (archived or deleted).
    pub(crate) fn forget(&self, session_id: &str) {
        if let Ok(mut cache) = self.0.lock() {
            cache.remove(session_id);
        }
    }
}
