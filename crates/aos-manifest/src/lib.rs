//! `SKILL.md` parsing and skill-root indexing (`skills.md` §1).
//!
//! Third-party fields are read leniently: the Agent Skills fields (`name`,
//! `description`, `license`, `allowed-tools`, `metadata`, `compatibility`) are
//! kept, any other unknown field is kept and warned about. Our own fields
//! (`service`, `capabilities`) are strict: an unknown key or a capability the
//! kernel does not understand is an error naming the field and the fix.

mod error;
mod index;
mod manifest;

pub use error::ManifestError;
pub use index::{
    IndexedSkill, MAX_SKILL_MD_BYTES, ScanCache, SkillIndex, scan_roots, scan_roots_cached,
};
pub use manifest::{
    Capabilities, FsGrant, FsMode, Limits, NetProtocol, RestartPolicy, ServiceKind, ServiceSpec,
    SkillManifest, net_entry, parse_skill_md,
};
