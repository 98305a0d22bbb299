//! The 46 hook points of `hooks.md` §3, typed. Each point is a constant of
//! its kind ([`hook::TOOL_BEFORE`] is an [`Admission`], …), so the hook
//! engine runs an admission chain only on an admission point and an event
//! only on an event point, and every name is written once: here.

/// The three hook kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// Admission: synchronous, may reject or rewrite the operation's parameters.
    Admission,
    /// Transform: synchronous, rewrites the data flowing through.
    Transform,
    /// Event: asynchronous, fire-and-forget.
    Event,
}

/// Which owner levels may register a hook point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookOwners {
    /// System-level services only.
    System,
    /// System and agent.
    SystemAgent,
    /// System, agent and session.
    All,
}

/// One hook point.
#[derive(Debug, Clone, Copy)]
pub struct HookPoint {
    /// Its name, e.g. `tool.before`.
    pub name: &'static str,
    /// Its kind.
    pub kind: HookKind,
    /// Who may own a handler.
    pub owners: HookOwners,
}

/// A hook point of any kind, by name.
pub trait Point: Copy {
    /// Its name, e.g. `tool.before`.
    fn name(self) -> &'static str;
}

/// A point a transform chain runs on: a transform or an algorithm point.
pub trait Transforming: Point {
    /// Whether only the most specific handler answers (an algorithm point).
    fn algorithm(self) -> bool;
}

macro_rules! kinds {
    ($($(#[$doc:meta])* $t:ident => $kind:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $t(&'static str);

        impl $t {
            /// The kind it has in [`HOOK_POINTS`].
            pub const KIND: HookKind = HookKind::$kind;

            /// Its name.
            pub const fn name(self) -> &'static str {
                self.0
            }
        }

        impl Point for $t {
            fn name(self) -> &'static str {
                self.0
            }
        }
    )*};
}

kinds! {
    /// An admission point (AH): handlers allow, rewrite or reject.
    Admission => Admission;
    /// A transform point (TH): every handler rewrites the data in turn.
    Transform => Transform;
    /// An algorithm point: a transform whose most specific handler alone
    /// answers, read as a typed result.
    Algorithm => Transform;
    /// An event point (RE): fire-and-forget.
    Event => Event;
}

impl Transforming for Transform {
    fn algorithm(self) -> bool {
        false
    }
}

impl Transforming for Algorithm {
    fn algorithm(self) -> bool {
        true
    }
}

macro_rules! hook_points {
    ($($konst:ident = $t:ident($name:literal, $owners:ident);)*) => {
        /// Every hook point as a typed constant.
        pub mod hook {
            use super::{Admission, Algorithm, Event, Transform};
            $(
                #[doc = concat!("`", $name, "`")]
                pub const $konst: $t = $t($name);
            )*
        }

        /// Every hook point, in the order of `hooks.md` §3.
        pub const HOOK_POINTS: &[HookPoint] = &[$(
            HookPoint { name: $name, kind: $t::KIND, owners: HookOwners::$owners },
        )*];
    };
}

hook_points! {
    SKILL_INDEX_REFRESH_BEFORE = Admission("skill.index.refresh.before", System);
    SKILL_DISCOVERY_BEFORE = Admission("skill.discovery.before", All);
    SKILL_DEFAULT_RESOLVE_BEFORE = Admission("skill.default.resolve.before", All);
    SKILL_LOAD_BEFORE = Admission("skill.load.before", All);
    SKILL_START_BEFORE = Admission("skill.start.before", All);
    SKILL_STOP_BEFORE = Admission("skill.stop.before", All);
    SKILL_INVOKE_BEFORE = Admission("skill.invoke.before", All);
    SESSION_DISPATCH_BEFORE = Admission("session.dispatch.before", All);
    SESSION_BOOTSTRAP_BEFORE = Admission("session.bootstrap.before", All);
    SESSION_REINJECT_BEFORE = Admission("session.reinject.before", All);
    SESSION_MESSAGE_BEFORE_WRITE = Admission("session.message.beforeWrite", All);
    SESSION_COMPACTION_BEFORE = Admission("session.compaction.before", All);
    COMPUTE_BEFORE = Admission("compute.before", All);
    TOOL_BEFORE = Admission("tool.before", All);
    SESSION_SYSTEM_TRANSFORM = Transform("session.system.transform", All);
    SESSION_MESSAGES_TRANSFORM = Transform("session.messages.transform", All);
    COMPUTE_PARAMS_TRANSFORM = Transform("compute.params.transform", All);
    COMPUTE_MODEL_RESOLVE = Algorithm("compute.model.resolve", All);
    TOOL_ENV = Transform("tool.env", All);
    TOOL_AFTER = Transform("tool.after", All);
    CONTEXT_ASSEMBLE = Algorithm("context.assemble", All);
    CONTEXT_COMPACT = Algorithm("context.compact", All);
    SKILL_DISCOVERY_RESOLVE = Algorithm("skill.discovery.resolve", All);
    AOS_STARTED = Event("aos.started", System);
    AOS_STOPPING = Event("aos.stopping", System);
    SKILL_INDEX_REFRESH_AFTER = Event("skill.index.refresh.after", System);
    SKILL_DISCOVERY_AFTER = Event("skill.discovery.after", All);
    SKILL_DEFAULT_RESOLVE_AFTER = Event("skill.default.resolve.after", All);
    SKILL_LOAD_AFTER = Event("skill.load.after", All);
    SKILL_START_AFTER = Event("skill.start.after", All);
    SKILL_STOP_AFTER = Event("skill.stop.after", All);
    SKILL_INVOKE_AFTER = Event("skill.invoke.after", All);
    AGENT_STARTED = Event("agent.started", SystemAgent);
    AGENT_ARCHIVED = Event("agent.archived", SystemAgent);
    SESSION_STARTED = Event("session.started", All);
    SESSION_ARCHIVED = Event("session.archived", All);
    SESSION_DISPATCH_AFTER = Event("session.dispatch.after", All);
    SESSION_BOOTSTRAP_AFTER = Event("session.bootstrap.after", All);
    SESSION_REINJECT_AFTER = Event("session.reinject.after", All);
    SESSION_COMPACTION_AFTER = Event("session.compaction.after", All);
    SESSION_ERROR = Event("session.error", All);
    SESSION_INTERRUPTED = Event("session.interrupted", All);
    CONTEXT_INGEST = Event("context.ingest", All);
    CONTEXT_AFTER_TURN = Event("context.afterTurn", All);
    COMPUTE_AFTER = Event("compute.after", All);
    SERVICE_ERROR = Event("service.error", All);
}

/// Looks a hook point up by name.
pub fn hook_point(name: &str) -> Option<&'static HookPoint> {
    HOOK_POINTS.iter().find(|h| h.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_is_a_constant_of_its_kind_once() {
        let count = |k| HOOK_POINTS.iter().filter(|h| h.kind == k).count();
        assert_eq!(HOOK_POINTS.len(), 46);
        let kinds = [HookKind::Admission, HookKind::Transform, HookKind::Event].map(count);
        assert_eq!(kinds, [14, 9, 23], "as hooks.md §3 counts them");
        let mut names: Vec<_> = HOOK_POINTS.iter().map(|h| h.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 46, "no name twice");
        assert_eq!(hook::TOOL_BEFORE.name(), "tool.before");
        assert_eq!(
            hook_point("tool.before").map(|h| h.kind),
            Some(Admission::KIND)
        );
        assert_eq!(
            hook_point("context.assemble").map(|h| h.kind),
            Some(HookKind::Transform)
        );
        assert!(hook::CONTEXT_ASSEMBLE.algorithm() && !hook::TOOL_AFTER.algorithm());
        assert_eq!(
            hook_point("context.ingest").map(|h| h.kind),
            Some(Event::KIND)
        );
    }
}
