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
    /// Whether an assembly filled it (a new or rebuilt slot is empty).
    #[serde(skip)]
    pub(crate) assembled: bool,
}

/// One session's cached context, locked for the length of an assembly so two
/// assemblies of a session never interleave.
pub(crate) type Slot = Arc<tokio::sync::Mutex<SessionContext>>;

/// Sessions whose context stays cached: an idle session beyond them is
/// evicted (least recently used first) and rebuilt on its next use.
pub(crate) const MAX_CACHED: usize = 256;

/// How far a rebuilt context's revisions start past every earlier one, so an
/// engine never mistakes it for the context it last answered.
const REVISION_STEP: u64 = 1 << 20;

/// Every cached session's context, bounded ([`MAX_CACHED`]).
#[derive(Default)]
pub(crate) struct ContextCache(Mutex<Cache>);

#[derive(Default)]
struct Cache {
    slots: HashMap<String, (Slot, u64)>,
    /// Bumped on every use: the recency of each slot.
    clock: u64,
    /// The first revision of a slot made now (raised by each eviction).
    base: u64,
}

impl ContextCache {
    /// The slot of a session (made empty on first use), evicting the least
    /// recently used idle one when the cache is full.
    pub(crate) fn slot(&self, session_id: &str) -> Result<Slot, SyscallError> {
        let mut c = self
            .0
            .lock()
            .map_err(|_| SyscallError::internal("context cache poisoned"))?;
        c.clock += 1;
        let now = c.clock;
        if let Some((slot, used)) = c.slots.get_mut(session_id) {
            *used = now;
            return Ok(slot.clone());
        }
        if c.slots.len() >= MAX_CACHED {
            c.evict();
        }
        let slot: Slot = Arc::new(tokio::sync::Mutex::new(SessionContext {
            context_revision: c.base,
            ..SessionContext::default()
        }));
        c.slots.insert(session_id.to_string(), (slot.clone(), now));
        Ok(slot)
    }

    /// Forgets a session's context (archived or deleted).
    pub(crate) fn forget(&self, session_id: &str) {
        if let Ok(mut c) = self.0.lock() {
            c.slots.remove(session_id);
        }
    }

    /// How many sessions' contexts are cached.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().map_or(0, |c| c.slots.len())
    }
}

impl Cache {
    /// Drops the least recently used slot nobody holds (none: the cache
    /// grows past its bound until one is free).
    fn evict(&mut self) {
        let idle = self
            .slots
            .iter()
            .filter(|(_, (slot, _))| Arc::strong_count(slot) == 1)
            .min_by_key(|(_, (_, used))| *used)
            .map(|(id, _)| id.clone());
        if let Some(id) = idle {
            self.slots.remove(&id);
            self.base += REVISION_STEP;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_bounded_and_evicts_the_least_recently_used_idle_slot() {
        let cache = ContextCache::default();
        let first = cache.slot("se_first").expect("slot");
        for i in 0..MAX_CACHED + 10 {
            cache.slot(&format!("se_{i}")).expect("slot");
            cache.slot("se_recent").expect("touched every time");
        }
        assert_eq!(cache.len(), MAX_CACHED, "bounded");
        // Held (an assembly in progress): never evicted.
        assert!(Arc::ptr_eq(&first, &cache.slot("se_first").expect("slot")));
        // The most recently used stays; the oldest idle ones went.
        let recent = cache.slot("se_recent").expect("slot");
        assert!(recent.try_lock().is_ok_and(|c| c.context_revision == 0));
        let again = cache.slot("se_0").expect("recreated");
        let c = again.try_lock().expect("free");
        assert!(!c.assembled, "a recreated slot is empty and rebuilt on use");
        assert!(
            c.context_revision >= REVISION_STEP,
            "its revisions start past the evicted one's"
        );
    }

    #[test]
    fn forget_drops_a_session() {
        let cache = ContextCache::default();
        cache.slot("se_a").expect("slot");
        cache.forget("se_a");
        assert_eq!(cache.len(), 0);
    }
}
