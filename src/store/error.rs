//! Store errors, each saying what the operator can do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store at {path} has format version {found}, this tiersync reads version {supported}; use the matching tiersync release, or run `tiersync rebuild` (it moves the directory aside, re-reads the sources and reconciles the destinations)")]
    UnknownVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("the store at {path} is corrupt ({detail}); run `tiersync rebuild`: it moves the directory aside, re-reads the sources and reconciles the destinations (what they already show is adopted, not re-written)")]
    Corrupt { path: PathBuf, detail: String },
    /// sled's lock is held: another process has the store open. sled's own error names the
    /// path again and debug-prints the OS error, so it is not quoted.
    #[error("the store at {path} is in use by another tiersync process (the daemon?); stop it, or point this command at another `store.path`")]
    Locked { path: PathBuf },
    #[error("cannot use the store at {path}: {source}; check that the directory exists, is writable by the tiersync user and the disk has space")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store record `{key}` in `{tree}` cannot be decoded ({detail}); the store may be corrupt: run `tiersync rebuild`")]
    Decode {
        tree: &'static str,
        key: String,
        detail: String,
    },
    #[error("store write failed: {0}")]
    Write(String),
    /// A read-only command found no store to read.
    #[error("no store at {path}: no pass has run with this store.path yet (check store.path, or run `tiersync once`)")]
    Absent { path: PathBuf },
    /// A read-only command found a store in an older format, which only a writer migrates.
    #[error("the store at {path} has the older format version {found}; `tiersync run` or `once` migrates it to version {current} when it next opens it")]
    NotMigrated {
        path: PathBuf,
        found: u32,
        current: u32,
    },
}

impl StoreError {
    /// Whether another process (the daemon) holds the store's lock: a command that must
    /// write while nothing else does refuses then, instead of waiting.
    pub fn is_locked(&self) -> bool {
        matches!(self, StoreError::Io { source, .. } if super::is_lock_error(source))
    }
}
