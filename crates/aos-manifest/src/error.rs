//! Errors of a bad `SKILL.md`, each naming the field and the fix.

/// Why a `SKILL.md` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// No `---` frontmatter block.
    #[error(
        "SKILL.md has no YAML frontmatter: start the file with a line `---`, the fields, then `---`"
    )]
    NoFrontmatter,
    /// YAML that does not parse.
    #[error("SKILL.md frontmatter is not valid YAML: {0}")]
    BadYaml(String),
    /// A required field is absent or empty.
    #[error("SKILL.md is missing the required field `{0}`")]
    Missing(&'static str),
    /// A field has the wrong shape.
    #[error("SKILL.md field `{field}`: {reason}")]
    BadField {
        /// The field path, e.g. `capabilities.fs[0].mode`.
        field: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// `name` differs from the directory name.
    #[error("SKILL.md `name: {name}` must equal its directory name `{dir}`: rename one of them")]
    NameMismatch {
        /// Name in the file.
        name: String,
        /// Directory name.
        dir: String,
    },
    /// The service file does not exist.
    #[error("SKILL.md `service: {0}` names a file that does not exist in the skill directory")]
    ServiceMissing(String),
    /// The file cannot be read.
    #[error("cannot read SKILL.md: {0}")]
    Io(String),
    /// Two skill roots hold a skill of the same name.
    #[error(
        "skill `{name}` is already provided by {first}; this copy ({this}) is refused — rename one of them"
    )]
    Duplicate {
        /// The name.
        name: String,
        /// Directory of the copy that wins.
        first: String,
        /// Directory of this copy.
        this: String,
    },
    /// A skill of a built-in skill's name outside the built-in root.
    #[error(
        "`{name}` is the name of a built-in skill ({first}); this copy ({this}) is refused — rename it"
    )]
    Reserved {
        /// The name.
        name: String,
        /// The built-in's directory.
        first: String,
        /// Directory of this copy.
        this: String,
    },
    /// The skill directory is a symlink leading out of its root.
    #[error(
        "{dir} resolves to {target}, outside the skill root {root}; a skill root's skills must live in it"
    )]
    OutsideRoot {
        /// The entry in the root.
        dir: String,
        /// Where it leads.
        target: String,
        /// The root.
        root: String,
    },
    /// SKILL.md is larger than [`crate::MAX_SKILL_MD_BYTES`].
    #[error("SKILL.md is {size} bytes; at most {max} are indexed")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The cap.
        max: u64,
    },
}
