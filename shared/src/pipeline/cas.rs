//! The one compare-and-swap loop over a JSON document in the state store.
//!
//! Several writers update the same document — progress.json (every verifier), a giant object's
//! done-set (every part task), report.json (two verifiers racing to finish a run). Each reads
//! the document and its version, changes it, and writes it back only if nobody wrote in
//! between (put-if-absent when it was missing, put-if-match otherwise); on a conflict it waits
//! a little, with jitter so racing writers spread out, and starts again from a fresh read. The
//! edit runs again on every attempt, so it must be a pure function of the document it is given.

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::RoleError;
use crate::backoff::Backoff;
use crate::state::StateStore;

/// What an edit decided.
pub enum Edit<T> {
    /// Write this document back (conditionally on what was read).
    Write(T),
    /// Nothing to write: this is the document as it stands.
    Keep(T),
}

/// How a written document is laid out.
#[derive(Clone, Copy)]
pub enum Layout {
    /// Compact: documents machines read, which may be large (progress).
    Compact,
    /// Indented: documents people read (the report).
    Pretty,
}

/// Conflicts tolerated before giving up with a retryable error (the delivery comes back).
pub(crate) const ATTEMPTS: u32 = 200;
/// The wait after a conflict: equal jitter from 10 ms to 500 ms, so racing writers spread out.
pub(crate) const CONFLICT_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(10), Duration::from_millis(500));

/// Reads the document at `key` (`None` when missing), applies `edit`, and writes the result
/// back if nobody wrote in between; on a conflict, reads and edits again. Returns the document
/// as written or kept.
pub async fn update<T, F>(
    state: &dyn StateStore,
    key: &str,
    layout: Layout,
    mut edit: F,
) -> Result<T, RoleError>
where
    T: Serialize + DeserializeOwned,
    F: FnMut(Option<T>) -> Result<Edit<T>, RoleError>,
{
    for attempt in 1..=ATTEMPTS {
        let current = state.get(key).await?;
        let document =
            match &current {
                Some(v) => Some(serde_json::from_slice(&v.body).map_err(|e| {
                    RoleError::config(format!("{key} in {}: {e}", state.describe()))
                })?),
                None => None,
            };
        let next = match edit(document)? {
            Edit::Keep(document) => return Ok(document),
            Edit::Write(next) => next,
        };
        let body = Bytes::from(
            match layout {
                Layout::Compact => serde_json::to_vec(&next),
                Layout::Pretty => serde_json::to_vec_pretty(&next),
            }
            .expect("state documents serialise"),
        );
        let written = match &current {
            None => state.put_if_absent(key, body).await?,
            Some(v) => state.put_if_match(key, body, &v.version).await?,
        };
        if written.is_some() {
            return Ok(next);
        }
        tokio::time::sleep(CONFLICT_BACKOFF.equal_jitter(attempt)).await;
    }
    Err(RoleError::retry(format!(
        "{key}: too many concurrent updates; try again"
    )))
}
