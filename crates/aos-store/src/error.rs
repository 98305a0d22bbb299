//! The store's error type.

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The addressed record does not exist.
    #[error("{kind} {id:?} does not exist")]
    NotFound {
        /// `agent`, `session`, `message`, `content`, …
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// `expectedRevision` did not match the stored revision.
    #[error("expected revision {expected}, but the {kind} is at revision {actual}")]
    RevisionConflict {
        /// Kind of control block.
        kind: &'static str,
        /// What the caller expected.
        expected: i64,
        /// What is stored.
        actual: i64,
    },
    /// The operation is refused by the record's state (archived, lease held…).
    #[error("{message}")]
    Rejected {
        /// The wire error code the caller should see, e.g. `session.archived`.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The SQLite database is in use by another daemon.
    #[error(
        "the SQLite database {path} is already in use by another daemon (lock file {lock}); SQLite is single-node: stop the other daemon, or use PostgreSQL (--db postgres://…) to share a store"
    )]
    Locked {
        /// Database file.
        path: String,
        /// Lock file held by the other daemon.
        lock: String,
    },
    /// The database URL cannot be used.
    #[error("invalid database URL {url:?}: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// Why.
        reason: String,
    },
    /// A stored record cannot be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// PostgreSQL failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A SQLite write ran, but the batch it was committed in failed (or
    /// could not begin): it was not made durable.
    #[error("database error: {0}")]
    Commit(String),
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// The disk under the store is full; nothing was written.
    #[error(
        "the disk holding {file} is full: nothing was written; free space there (or move the store) and retry"
    )]
    Full {
        /// The file (or PostgreSQL's data directory) that could not grow.
        file: String,
    },
    /// The database server cannot be reached (refused, no answer).
    #[error("{0}")]
    Unreachable(String),
    /// Filesystem failure around the database.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// The file (or place) whose disk is full, if that is the failure:
    /// [`StoreError::Full`], or PostgreSQL's `disk_full` (SQLSTATE 53100).
    pub fn full_file(&self) -> Option<String> {
        match self {
            StoreError::Full { file } => Some(file.clone()),
            StoreError::Db(sqlx::Error::Database(db)) if db.code().as_deref() == Some("53100") => {
                // The server's message names the relation file it could not
                // extend ("could not extend file \"base/…\": No space…").
                Some(format!(
                    "the PostgreSQL server's data directory ({})",
                    db.message()
                ))
            }
            _ => None,
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
