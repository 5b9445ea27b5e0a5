//! Walking a key range of the source: list a page, decide with the destination listing
//! ([`Differ`]), copy what must be copied with bounded concurrency, report every object.
//!
//! This is the transfer role's inner loop. A budget (objects, bytes) stops it cleanly between
//! objects and says where to continue, so a Lambda invocation hands the rest of its range back
//! before its deadline instead of dying in the middle.

use futures_util::{StreamExt, stream};

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
    pub prefix: String,
    /// Keys strictly after this one.
    pub start_after: Option<String>,
    /// Keys strictly before this one (the range's end); `None` for the end of the prefix.
    pub end: Option<String>,
    pub overwrite: OverwritePolicy,
    pub object_concurrency: usize,
    pub archive: ArchivePolicy,
    pub restore_days: u32,
    pub restore_tier: RestoreTier,
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
    pub objects: u64,
    pub bytes: u64,
    /// Destination HEADs the diff needed (listings decided the rest).
    pub heads: u64,
    /// Set when the budget ran out first: continue after this key.
    pub resume_after: Option<String>,
}

/// Walks the range, handing each object's result to `sink` as it completes.
pub async fn walk_range(
    copier: &Copier,
    options: &WalkOptions,
    sink: &mut (dyn FnMut(ObjectResult) + Send),
) -> Result<RangeSummary, String> {
    let mut differ = Differ::new(&copier.dest, options.overwrite, &options.prefix);
    let mut summary = RangeSummary::default();
    let mut req = ListRequest {
        prefix: options.prefix.clone(),
        start_after: options.start_after.clone(),
        max_keys: options.page_size,
        ..Default::default()
    };
    loop {
        let page = copier.source.list(&req).await.map_err(|e| e.to_string())?;
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
            .map_err(|e| format!("destination listing: {e}"))?;
        process_page(copier, options, objects, decisions, sink).await;
        if budget_hit {
            return Ok(RangeSummary {
                heads: differ.heads,
                ..summary
            });
        }
        match page.next {
            Some(token) if !range_ended => req.continuation = Some(token),
            _ => {
                return Ok(RangeSummary {
                    heads: differ.heads,
                    resume_after: None,
                    ..summary
                });
            }
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

async fn process_page(
    copier: &Copier,
    options: &WalkOptions,
    objects: Vec<ObjectInfo>,
    decisions: Vec<Decision>,
    sink: &mut (dyn FnMut(ObjectResult) + Send),
) {
    let mut copies = Vec::new();
    for (object, decision) in objects.into_iter().zip(decisions) {
        match decision {
            Decision::Copy => copies.push(object),
            Decision::Skip(reason) => sink(ObjectResult {
                key: object.key,
                size: object.size,
                source_etag: object.etag,
                outcome: Outcome::Skipped { reason },
                notes: Vec::new(),
            }),
        }
    }
    let mut running = stream::iter(copies)
        .map(|object| async move {
            let result = copier.copy(&object.key).await;
            restore_if_asked(copier, options, result).await
        })
        .buffer_unordered(options.object_concurrency.max(1));
    while let Some(result) = running.next().await {
        sink(result);
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
