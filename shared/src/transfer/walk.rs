//! Walking a key range of the source: list a page, decide with the destination listing
//! ([`Differ`]), copy what must be copied with bounded concurrency, report every object.
//! Listing runs ahead of copying (one page at most), so there is no pause at page boundaries,
//! and each copy is its own task, so copies use every core of the runtime.
//!
//! This is the transfer role's inner loop. A budget (objects, bytes) stops it cleanly between
//! objects and says where to continue, so a Lambda invocation hands the rest of its range back
//! before its deadline instead of dying in the middle.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{self, Either};
use futures_util::{StreamExt, stream};
use tokio::sync::mpsc;

use super::diff::{Decision, Differ, OverwritePolicy};
use super::{Copier, ObjectResult, Outcome};
use crate::source::{ListRequest, ObjectInfo, RestoreOutcome, RestoreTier};

/// What to do with archived source objects that are not restored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchivePolicy {
    /// Report them `needs-restore`.
    #[default]
    Report,
    /// Report them `needs-restore` and ask the source to restore them, so a later run copies them.
    Restore,
}

/// One range walk.
#[derive(Clone, Debug)]
pub struct WalkOptions {
    /// List keys under this source prefix.
    pub prefix: String,
    /// Keys strictly after this one.
    pub start_after: Option<String>,
    /// Keys strictly before this one (the range's end); `None` for the end of the prefix.
    pub end: Option<String>,
    /// When an object already at the destination is replaced.
    pub overwrite: OverwritePolicy,
    /// Objects copied at the same time (at least 1).
    pub object_concurrency: usize,
    /// What to do with archived source objects that are not restored.
    pub archive: ArchivePolicy,
    /// With [`ArchivePolicy::Restore`]: how many days a restored object stays readable.
    pub restore_days: u32,
    /// With [`ArchivePolicy::Restore`]: how fast the restore should be.
    pub restore_tier: RestoreTier,
    /// Keys per source listing page (1–1000).
    pub page_size: u32,
    /// Stop starting new objects after this many.
    pub max_objects: Option<u64>,
    /// Stop starting new objects after this many bytes.
    pub max_bytes: Option<u64>,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions {
            prefix: String::new(),
            start_after: None,
            end: None,
            overwrite: OverwritePolicy::IfDifferent,
            object_concurrency: 32,
            archive: ArchivePolicy::Report,
            restore_days: 3,
            restore_tier: RestoreTier::Standard,
            page_size: 1000,
            max_objects: None,
            max_bytes: None,
        }
    }
}

/// How a walk ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSummary {
    /// Objects the walk handed to the sink.
    pub objects: u64,
    /// Their total size, in bytes.
    pub bytes: u64,
    /// Destination HEADs the diff needed (listings decided the rest).
    pub heads: u64,
    /// Set when the budget ran out first: continue after this key.
    pub resume_after: Option<String>,
}

/// Walks the range, handing each object's result to `sink` as it completes.
///
/// Listing and copying overlap: while up to `object_concurrency` copies run (each its own task,
/// so they spread over the runtime's threads), the next page is listed and decided. Decided
/// objects wait in a queue of at most one page, so memory stays at about two pages of listing
/// plus the copies in flight, whatever the range holds. The budget trims pages before they are
/// queued, so no object past it is started. A listing failure stops the walk with an error
/// after the objects already queued have been copied and reported.
pub async fn walk_range(
    copier: &Copier,
    options: &WalkOptions,
    sink: &mut (dyn FnMut(ObjectResult) + Send),
) -> Result<RangeSummary, WalkError> {
    let queue = options.page_size.clamp(1, 1000) as usize;
    let (tx, rx) = mpsc::channel(queue);
    let shared = Arc::new((copier.clone(), options.clone()));
    let (summary, ()) = future::join(
        list_and_decide(copier, options, tx),
        run_copies(shared, rx, options.object_concurrency.max(1), sink),
    )
    .await;
    summary
}

/// Why a walk stopped before the end of its range (the objects already queued were copied
/// and reported first).
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// Listing the source failed.
    #[error(transparent)]
    SourceListing(#[from] crate::source::SourceError),
    /// Listing the destination (to decide what to copy) failed.
    #[error("destination listing: {0}")]
    DestinationListing(#[source] crate::oss::Error),
    /// The copy tasks ended before the listing did.
    #[error("the copiers stopped before the listing ended")]
    CopiersStopped,
}

/// What the lister hands the copiers.
enum Work {
    Copy(ObjectInfo),
    /// Decided without copying; passed along so results reach the sink in one place.
    Done(ObjectResult),
}

/// Lists the range page by page, applies the budget and the diff, and queues every object.
async fn list_and_decide(
    copier: &Copier,
    options: &WalkOptions,
    queue: mpsc::Sender<Work>,
) -> Result<RangeSummary, WalkError> {
    let mut differ = Differ::new(&copier.dest, options.overwrite, &options.prefix);
    let mut summary = RangeSummary::default();
    let mut req = ListRequest {
        prefix: options.prefix.clone(),
        start_after: options.start_after.clone(),
        max_keys: options.page_size,
        ..Default::default()
    };
    loop {
        let page = copier.source.list(&req).await?;
        let mut objects: Vec<ObjectInfo> = page.objects;
        let range_ended = match &options.end {
            Some(end) => {
                let before = objects.len();
                objects.retain(|o| o.key < *end);
                objects.len() < before
            }
            None => false,
        };
        let budget_hit = take_budget(&mut objects, options, &mut summary);
        let decisions = differ
            .decide(&objects)
            .await
            .map_err(WalkError::DestinationListing)?;
        for (object, decision) in objects.into_iter().zip(decisions) {
            let work = match decision {
                // A walk has no run start, so its differ never adopts; copying is the safe
                // answer should it ever.
                Decision::Copy | Decision::Adopt => Work::Copy(object),
                Decision::Skip(reason) => Work::Done(ObjectResult {
                    key: object.key,
                    size: object.size,
                    source_etag: object.etag,
                    outcome: Outcome::Skipped { reason },
                    notes: Vec::new(),
                }),
            };
            if queue.send(work).await.is_err() {
                // Not expected: the copiers read until the queue is closed.
                return Err(WalkError::CopiersStopped);
            }
        }
        let finished = match page.next {
            Some(token) if !range_ended && !budget_hit => {
                req.continuation = Some(token);
                false
            }
            _ => true,
        };
        if finished {
            if !budget_hit {
                summary.resume_after = None;
            }
            summary.heads = differ.heads;
            return Ok(summary);
        }
    }
}

/// Trims `objects` to what the budget allows; true when it ran out.
fn take_budget(
    objects: &mut Vec<ObjectInfo>,
    options: &WalkOptions,
    summary: &mut RangeSummary,
) -> bool {
    let mut keep = 0;
    for o in objects.iter() {
        let over_count = options.max_objects.is_some_and(|m| summary.objects >= m);
        let over_bytes = options.max_bytes.is_some_and(|m| summary.bytes >= m);
        if over_count || over_bytes {
            break;
        }
        summary.objects += 1;
        summary.bytes += o.size;
        keep += 1;
    }
    let hit = keep < objects.len();
    objects.truncate(keep);
    if hit {
        summary.resume_after = objects
            .last()
            .map(|o| o.key.clone())
            .or_else(|| summary.resume_after.clone());
    }
    hit
}

/// Copies queued objects, `concurrency` at a time, and reports every result as it completes,
/// until the lister closes the queue and the last copy is done.
async fn run_copies(
    shared: Arc<(Copier, WalkOptions)>,
    queue: mpsc::Receiver<Work>,
    concurrency: usize,
    sink: &mut (dyn FnMut(ObjectResult) + Send),
) {
    let work = stream::unfold(queue, |mut queue| async move {
        queue.recv().await.map(|work| (work, queue))
    });
    let mut results = std::pin::pin!(
        work.map(|work| match work {
            Work::Done(result) => Either::Left(future::ready(result)),
            Work::Copy(object) => Either::Right(CopyTask::spawn(shared.clone(), object)),
        })
        .buffer_unordered(concurrency)
    );
    while let Some(result) = results.next().await {
        sink(result);
    }
}

/// One object's copy running as its own task. Dropping it (a cancelled walk) aborts the copy.
struct CopyTask {
    handle: tokio::task::JoinHandle<ObjectResult>,
    object: ObjectInfo,
}

impl CopyTask {
    fn spawn(shared: Arc<(Copier, WalkOptions)>, object: ObjectInfo) -> CopyTask {
        let listed = object.clone();
        let handle = tokio::spawn(async move {
            let (copier, options) = &*shared;
            let result = copier.copy_listed(&listed).await;
            restore_if_asked(copier, options, result).await
        });
        CopyTask { handle, object }
    }
}

impl Future for CopyTask {
    type Output = ObjectResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ObjectResult> {
        let joined = std::task::ready!(Pin::new(&mut self.handle).poll(cx));
        Poll::Ready(match joined {
            Ok(result) => result,
            // A copy never panics by design; should one still, the object is reported, not lost.
            Err(e) => ObjectResult {
                key: std::mem::take(&mut self.object.key),
                size: self.object.size,
                source_etag: self.object.etag.take(),
                outcome: Outcome::Failed {
                    reason: format!("the copy task ended abnormally: {e}"),
                    retryable: true,
                },
                notes: Vec::new(),
            },
        })
    }
}

impl Drop for CopyTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// With `archive: restore`, asks the source to restore an object that needs it.
async fn restore_if_asked(
    copier: &Copier,
    options: &WalkOptions,
    mut result: ObjectResult,
) -> ObjectResult {
    if result.outcome != Outcome::NeedsRestore || options.archive != ArchivePolicy::Restore {
        return result;
    }
    let note = match copier
        .source
        .restore(&result.key, options.restore_days, options.restore_tier)
        .await
    {
        Ok(RestoreOutcome::Started) => {
            format!("restore requested for {} days", options.restore_days)
        }
        Ok(RestoreOutcome::AlreadyInProgress) => "restore already in progress".to_owned(),
        Ok(RestoreOutcome::AlreadyRestored) => "already restored; copy on the next run".to_owned(),
        Err(e) => format!("restore request failed: {e}"),
    };
    result.notes.push(note);
    result
}
