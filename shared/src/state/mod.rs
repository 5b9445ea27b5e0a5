//! The `StateStore` port: where a run keeps what must survive any process — the job, the run
//! manifest, chunk results, progress, multipart uploads in flight, and the report.
//!
//! Five calls, with the conditional writes the pipeline's exactly-once effects are built on:
//!
//! * [`StateStore::put_if_absent`] — a chunk result is recorded by the first writer only, so a
//!   message delivered twice is counted once;
//! * [`StateStore::put_if_match`] — progress is a read-modify-write guarded by the version read,
//!   so two verifiers never overwrite each other's counts.
//!
//! Keys are `/`-separated paths (layout in architecture §4). Every adapter refuses the same keys
//! (see [`check_key`]): empty ones, ones starting or ending with `/` or holding `//`, `.` or `..`
//! segments, and control characters — so a key that works in a standalone run works in a
//! distributed one and the other way round. One more limit comes from the local store being a
//! directory: a key cannot also be the prefix-with-`/` of another key (`a` and `a/b`).
//!
//! Versions are opaque strings compared only for equality. The local store's version is a hash
//! of the content, and an S3 ETag often is too (the MD5 of a plain PUT), so writing back the very
//! bytes a version was read from may keep the version. For read-modify-write that is harmless:
//! the value computed from those bytes is still right.
//!
//! Adapters: [`local`] (a directory, standalone mode) and [`s3`] (an S3 bucket with
//! `If-None-Match` / `If-Match` writes).

pub mod local;
pub mod s3;

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

/// A stored value and the version that guards the next conditional write to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    /// The stored bytes.
    pub body: Bytes,
    /// Opaque: an ETag for S3, a content hash for the local store.
    pub version: String,
}

/// A state store call failed; `kind` says whether asking again may help.
#[derive(Debug, thiserror::Error)]
#[error("state store {store}: {message}")]
pub struct StateError {
    /// Whether the failure is worth retrying.
    pub kind: StateErrorKind,
    /// The store, as [`StateStore::describe`] names it.
    pub store: String,
    /// What went wrong, with the key concerned.
    pub message: String,
}

/// The kind of a [`StateError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateErrorKind {
    /// Worth retrying (throttling, 5xx, connection errors).
    Transient,
    /// Anything else (missing bucket, access denied, a key the store refuses).
    Permanent,
}

impl StateError {
    /// An error of `kind` from `store`.
    pub fn new(kind: StateErrorKind, store: impl Into<String>, message: impl Into<String>) -> Self {
        StateError {
            kind,
            store: store.into(),
            message: message.into(),
        }
    }
}

/// What the store's calls return.
pub type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, StateError>> + Send + 'a>>;

/// Durable key → bytes storage with conditional writes. Object-safe.
pub trait StateStore: Send + Sync {
    /// A short description for logs (`s3://state-bucket/prefix`, `dir:/path`).
    fn describe(&self) -> String;

    /// The value, or `None` when the key does not exist.
    fn get<'a>(&'a self, key: &'a str) -> Fut<'a, Option<Versioned>>;

    /// Writes unconditionally; returns the new version.
    fn put<'a>(&'a self, key: &'a str, body: Bytes) -> Fut<'a, String>;

    /// Writes only if the key does not exist. `Some(version)` when this call created it, `None`
    /// when it already existed (the stored value is left untouched).
    fn put_if_absent<'a>(&'a self, key: &'a str, body: Bytes) -> Fut<'a, Option<String>>;

    /// Writes only if the stored version is still `version`. `Some(new version)` on success,
    /// `None` when someone else wrote first (or the key is gone): read again and retry.
    fn put_if_match<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        version: &'a str,
    ) -> Fut<'a, Option<String>>;

    /// Every key under `prefix`, in byte order.
    fn list<'a>(&'a self, prefix: &'a str) -> Fut<'a, Vec<String>>;
}

/// Why `key` is not a key ferry stores, or `None` when it is fine. Adapters call it before
/// touching storage, so a bad key fails the same way everywhere.
pub fn check_key(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some("the key is empty".into());
    }
    if key.starts_with('/') {
        return Some(format!(
            "key {key:?} starts with `/`; keys are relative paths"
        ));
    }
    if let Some(c) = key.chars().find(|c| c.is_control()) {
        return Some(format!("key {key:?} holds the control character {c:?}"));
    }
    for segment in key.split('/') {
        match segment {
            "" => {
                return Some(format!(
                    "key {key:?} has an empty segment (a trailing `/` or `//`)"
                ));
            }
            "." | ".." => {
                return Some(format!(
                    "key {key:?} has a `{segment}` segment; keys name paths without `.` or `..`"
                ));
            }
            _ => {}
        }
    }
    None
}
