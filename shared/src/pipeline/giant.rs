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
            ShardTask {
                shard: super::message::shard_id(&task.job, &task.run, &work),
                seq: 0,
                attempt: 0,
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
    let set = mark(rt, run, upload, first, of, failure).await?;
    let record = |outcome| {
        ObjectRecord::from(crate::transfer::ObjectResult {
            key: upload.key.clone(),
            size: upload.size,
            source_etag: upload.etag.clone(),
            outcome,
            notes: upload.notes.clone(),
        })
    };
    if let Some((reason, reporter)) = set.failed {
        if reporter != first {
            return Ok(PartsStep::Done);
        }
        let dest = &run.connected.dest;
        let _ = dest
            .client
            .abort_multipart_upload(&dest.bucket, &dest.key_for(&upload.key), &upload.upload_id)
            .await;
        return Ok(PartsStep::Reported(record(Outcome::Failed {
            reason,
            retryable: false,
        })));
    }
    if set.completer != Some(first) {
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

/// Adds this part task to the done-set (or marks the upload failed); returns the set as written.
async fn mark(
    rt: &Runtime,
    run: &RunHandle,
    upload: &SharedUpload,
    first: u32,
    of: u32,
    failure: Option<String>,
) -> Result<DoneSet, RoleError> {
    let state = rt.ports.state.as_ref();
    let dest = &run.connected.dest;
    let key = layout::upload_done(
        &run.manifest.job,
        &run.manifest.run,
        &dest.bucket,
        &dest.key_for(&upload.key),
        &upload.upload_id,
    );
    cas::update(state, &key, Layout::Compact, |current: Option<DoneSet>| {
        let mut set = current.unwrap_or_default();
        let before = (set.done.len(), set.completer, set.failed.clone());
        match &failure {
            Some(reason) if set.failed.is_none() && set.completer.is_none() => {
                set.failed = Some((reason.clone(), first))
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
