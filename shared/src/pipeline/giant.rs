//! Giant objects: an object larger than one task's byte budget is copied by several `Parts`
//! tasks sharing one multipart upload (architecture §6), so no single invocation has to move
//! it all before its deadline.
//!
//! The range task that meets the object opens the upload and issues the part tasks. Each part
//! task uploads its parts and then adds itself to the upload's done-set
//! (`uploads/<hash>.<upload>.done.json`) with a conditional write; the write that makes the set
//! full names its writer the *completer*, which assembles the object, proves it and reports it.
//! A part task that fails for good marks the upload failed the same way, and only the task
//! whose write did that reports the object — so the object is counted exactly once, whatever
//! the delivery order or repetitions.
//!
//! The done-set belongs to one upload, not to the object: two deliveries of the range task
//! running at the same moment may each open an upload, and each upload's part tasks then
//! complete (or abort) only their own — never the twin's half-uploaded one. Only the part tasks
//! of the delivery whose result was recorded are counted; the twin's are not.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::cas::{self, Edit, Layout};
use super::message::{ObjectRecord, ShardTask, Work};
use super::runtime::{RunHandle, Runtime};
use super::{RoleError, layout};
use crate::transfer::Outcome;
use crate::transfer::parts::SharedUpload;

/// Whether an object of `size` bytes is spread over part tasks.
pub fn is_giant(run: &RunHandle, size: u64) -> bool {
    let spec = run.spec();
    size > spec.sharding.max_bytes_per_shard.bytes()
        && size >= spec.concurrency.multipart_threshold.bytes()
}

/// Opens the shared upload and issues its part tasks (sent to the work queue). `Err(outcome)`
/// when the object cannot be copied at all.
pub async fn start(
    rt: &Runtime,
    run: &RunHandle,
    task: &ShardTask,
    key: &str,
) -> Result<Result<Vec<ShardTask>, Outcome>, RoleError> {
    let upload = match run.connected.copier.open_parts(key).await {
        Ok(upload) => upload,
        Err(e) if e.retryable => return Err(RoleError::retry(e.reason)),
        Err(e) => {
            return Ok(Err(Outcome::Failed {
                reason: e.reason,
                retryable: false,
            }));
        }
    };
    let budget = run.spec().sharding.max_bytes_per_shard.bytes();
    let per_task = (budget / upload.part_size).max(1) as u32;
    let parts = upload.parts();
    let of = parts.div_ceil(per_task);
    let tasks: Vec<ShardTask> = (0..of)
        .map(|i| {
            let first = i * per_task + 1;
            let work = Work::Parts {
                upload: upload.clone(),
                first,
                last: (first + per_task - 1).min(parts),
                of,
            };
            // The attempt is the range or key task's: a part task that ends failed in a way
            // that may pass is copied again by the verifier only while attempts are left.
            ShardTask {
                shard: super::message::shard_id(&task.job, &task.run, &work),
                seq: 0,
                work,
                ..task.clone()
            }
        })
        .collect();
    let bodies: Vec<String> = tasks.iter().map(ShardTask::to_json).collect();
    rt.ports.work.send_batch(&bodies).await?;
    Ok(Ok(tasks))
}

/// `uploads/<hash>.done.json`: which part tasks finished, and who completes or reports.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct DoneSet {
    done: BTreeSet<u32>,
    /// The part task (by its first part) whose write filled the set.
    completer: Option<u32>,
    /// Why the upload failed for good, and which part task reports it.
    failed: Option<(String, u32)>,
    /// Whether that failure may pass on a later run (the part task ran out of deliveries on
    /// an error that may pass), so the report says so.
    #[serde(default)]
    retryable: bool,
}

/// How a part task ended.
pub enum PartsStep {
    /// Its parts are done and the object is reported by this task (it completed the upload,
    /// or reports the upload failed).
    Reported(ObjectRecord),
    /// Its parts are done; another part task reports the object.
    Done,
    /// The stop time came between two parts: the task is to be sent again, and resumes from
    /// the parts proven so far.
    Stopped,
}

/// Uploads one part task's parts (`first..=last` of `of` part tasks), starting no part after
/// `stop`.
pub async fn upload_parts(
    rt: &Runtime,
    run: &RunHandle,
    upload: &SharedUpload,
    (first, last, of): (u32, u32, u32),
    stop: Option<std::time::Instant>,
) -> Result<PartsStep, RoleError> {
    let copier = &run.connected.copier;
    let failure = match copier.upload_parts(upload, first, last, stop).await {
        Ok(true) => None,
        Ok(false) => return Ok(PartsStep::Stopped),
        Err(e) if e.retryable => return Err(RoleError::retry(e.reason)),
        Err(e) => Some(e.reason),
    };
    let failure = failure.map(|reason| (reason, false));
    let set = mark(rt, run, upload, first, of, failure).await?;
    if let Some(record) = report_failed(run, upload, first, &set).await {
        return Ok(PartsStep::Reported(record));
    }
    if set.failed.is_some() || set.completer != Some(first) {
        return Ok(PartsStep::Done);
    }
    let result = copier.complete_parts(upload).await;
    if let Outcome::Failed {
        retryable: true,
        reason,
    } = &result.outcome
    {
        return Err(RoleError::retry(reason.clone()));
    }
    Ok(PartsStep::Reported(ObjectRecord::from(result)))
}

/// The queue's last delivery of a part task failed (`reason`): the task marks the upload failed,
/// so that the object is counted exactly once — failed, by the task whose mark did it, or by
/// whichever task already owns the object (the completer, or an earlier failure's reporter).
/// `Some(record)` when this task is the one to report it; `None` when another task does.
///
/// Without this, a part task that ran out of deliveries on an error that may pass was recorded
/// failed as a task, and its object was in no count.
pub async fn give_up(
    rt: &Runtime,
    task: &ShardTask,
    reason: &str,
) -> Result<Option<ObjectRecord>, RoleError> {
    let Work::Parts {
        upload, first, of, ..
    } = &task.work
    else {
        return Err(RoleError::config("give_up is for part tasks".to_owned()));
    };
    let run = rt.run(&task.job, &task.run).await?;
    let failure = Some((format!("{reason} (on the part task's last delivery)"), true));
    let set = mark(rt, &run, upload, *first, *of, failure).await?;
    if let Some(record) = report_failed(&run, upload, *first, &set).await {
        return Ok(Some(record));
    }
    // The completer gave up after it filled the set: no other task will complete the object.
    if set.completer == Some(*first) {
        return Ok(Some(record(
            upload,
            Outcome::Failed {
                reason: format!("completing the upload: {reason} (on its last delivery)"),
                retryable: true,
            },
        )));
    }
    Ok(None)
}

/// The failed object's record when `set` names this task (`first`) its reporter; the upload is
/// aborted (best effort: the run's end sweeps what is left).
async fn report_failed(
    run: &RunHandle,
    upload: &SharedUpload,
    first: u32,
    set: &DoneSet,
) -> Option<ObjectRecord> {
    let (reason, reporter) = set.failed.clone()?;
    if reporter != first {
        return None;
    }
    let dest = &run.connected.dest;
    let _ = dest
        .abort_multipart_upload(&dest.key_for(&upload.key), &upload.upload_id)
        .await;
    let outcome = Outcome::Failed {
        reason,
        retryable: set.retryable,
    };
    Some(record(upload, outcome))
}

/// The record of the shared upload's object with `outcome`.
fn record(upload: &SharedUpload, outcome: Outcome) -> ObjectRecord {
    ObjectRecord::from(crate::transfer::ObjectResult {
        key: upload.key.clone(),
        size: upload.size,
        source_etag: upload.etag.clone(),
        outcome,
        notes: upload.notes.clone(),
    })
}

/// Adds this part task to the done-set (or marks the upload failed: why, and whether that may
/// pass); returns the set as written.
async fn mark(
    rt: &Runtime,
    run: &RunHandle,
    upload: &SharedUpload,
    first: u32,
    of: u32,
    failure: Option<(String, bool)>,
) -> Result<DoneSet, RoleError> {
    let state = rt.ports.state.as_ref();
    let dest = &run.connected.dest;
    let key = layout::upload_done(
        &run.manifest.job,
        &run.manifest.run,
        dest.bucket(),
        &dest.key_for(&upload.key),
        &upload.upload_id,
    );
    cas::update(state, &key, Layout::Compact, |current: Option<DoneSet>| {
        let mut set = current.unwrap_or_default();
        let before = (set.done.len(), set.completer, set.failed.clone());
        match &failure {
            Some((reason, retryable)) if set.failed.is_none() && set.completer.is_none() => {
                set.failed = Some((reason.clone(), first));
                set.retryable = *retryable;
            }
            Some(_) => {}
            None => {
                set.done.insert(first);
                if set.done.len() as u32 >= of && set.completer.is_none() && set.failed.is_none() {
                    set.completer = Some(first);
                }
            }
        }
        Ok(
            match (set.done.len(), set.completer, set.failed.clone()) == before {
                true => Edit::Keep(set),
                false => Edit::Write(set),
            },
        )
    })
    .await
}
