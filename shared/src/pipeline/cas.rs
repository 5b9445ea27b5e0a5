//! The one compare-and-swap loop over a JSON document in the state store.
//!
//! Several writers update the same document — progress.json (every verifier), a giant object's
//! done-set (every part task), report.json (two verifiers racing to finish a run). Each reads
//! the document and its version, changes it, and writes it back only if nobody wrote in
//! between (put-if-absent when it was missing, put-if-match otherwise); on a conflict it waits
//! a little, with jitter so racing writers spread out, and starts again from a fresh read. The
//! edit runs again on every attempt, so it must be a pure function of the document it is given
//! (and, for [`update_with`], of what it reads from the state while deciding — event intake
//! reads the result records before it issues a task).

use std::future::Future;
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
const ATTEMPTS: u32 = 200;
/// The wait after a conflict: equal jitter from 10 ms to 500 ms, so racing writers spread out.
const CONFLICT_BACKOFF: Backoff =
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
    let (document, ()) = update_with(state, key, layout, |document| {
        std::future::ready(edit(document).map(|decided| (decided, ())))
    })
    .await?;
    Ok(document)
}

/// [`update`] for an edit that reads more of the state before it decides (so it is async) and
/// hands back something beside the document: `R` from the attempt whose decision stood.
pub async fn update_with<T, R, F, Fut>(
    state: &dyn StateStore,
    key: &str,
    layout: Layout,
    mut edit: F,
) -> Result<(T, R), RoleError>
where
    T: Serialize + DeserializeOwned,
    F: FnMut(Option<T>) -> Fut,
    Fut: Future<Output = Result<(Edit<T>, R), RoleError>>,
{
    for attempt in 1..=ATTEMPTS {
        let current = state.get(key).await?;
        let document = match &current {
            Some(v) => Some(parse(state, key, &v.body)?),
            None => None,
        };
        let (next, beside) = match edit(document).await? {
            (Edit::Keep(document), beside) => return Ok((document, beside)),
            (Edit::Write(next), beside) => (next, beside),
        };
        let body = render(&next, layout);
        let written = match &current {
            None => state.put_if_absent(key, body).await?,
            Some(v) => state.put_if_match(key, body, &v.version).await?,
        };
        if written.is_some() {
            return Ok((next, beside));
        }
        tokio::time::sleep(CONFLICT_BACKOFF.equal_jitter(attempt)).await;
    }
    Err(RoleError::retry(format!(
        "{key}: too many concurrent updates; try again"
    )))
}

fn parse<T: DeserializeOwned>(
    state: &dyn StateStore,
    key: &str,
    body: &[u8],
) -> Result<T, RoleError> {
    serde_json::from_slice(body)
        .map_err(|e| RoleError::config(format!("{key} in {}: {e}", state.describe())))
}

fn render<T: Serialize>(document: &T, layout: Layout) -> Bytes {
    Bytes::from(
        match layout {
            Layout::Compact => serde_json::to_vec(document),
            Layout::Pretty => serde_json::to_vec_pretty(document),
        }
        .expect("state documents serialise"),
    )
}
