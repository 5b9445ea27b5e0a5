//! Multipart uploads a finished run leaves behind, aborted when its report is written.
//!
//! OSS keeps the parts of an unfinished multipart upload, and bills them, until the upload is
//! completed or aborted. Two kinds outlive their run:
//!
//! * **This run's recorded uploads that never completed** — the object failed after its
//!   attempts. Records live under the run (`uploads/`), so no later run resumes them: they are
//!   aborted and tombstoned.
//! * **Orphans** — uploads no record claims, started before this run began, under the
//!   destination prefix, for a key in this job's scope: what a crashed earlier run left
//!   (a worker killed between InitiateMultipartUpload and writing its record, or part tasks that
//!   all went to the dead-letter queue). Uploads started after this run began are left alone, as
//!   are keys outside the job's scope: they may belong to another run or another job.
//!
//! Cleanup never fails the report: what it cannot abort is logged and counted, and the next
//! run's cleanup tries again.

use super::layout;
use super::runtime::{Manifest, RunHandle, Runtime};
use crate::transfer::resume::{UploadRecord, abort_orphans};

/// What the cleanup did, for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// Multipart uploads aborted.
    pub aborted: u64,
    /// Uploads that could not be aborted (left for the next run).
    pub errors: u64,
}

/// Aborts this run's unfinished recorded uploads and the orphans earlier runs left.
pub async fn abort_left_uploads(rt: &Runtime, run: &RunHandle, manifest: &Manifest) -> Cleanup {
    let mut done = Cleanup::default();
    recorded(rt, run, manifest, &mut done).await;
    let dest = &run.connected.dest;
    let spec = run.spec();
    let in_scope = |dest_key: &str| {
        dest.source_key_of(dest_key).is_some_and(|key| {
            key.starts_with(spec.source.prefix()) && spec.filters.key_matches(&key)
        })
    };
    let ledger = run.connected.copier.ledger.as_ref();
    match abort_orphans(dest, ledger, manifest.started, &in_scope).await {
        Ok(n) => done.aborted += n as u64,
        Err(e) => {
            tracing::warn!(error = %e, "could not sweep abandoned multipart uploads");
            done.errors += 1;
        }
    }
    if done.aborted > 0 {
        tracing::info!(
            aborted = done.aborted,
            "abandoned multipart uploads aborted"
        );
    }
    done
}

/// This run's upload records still live at the end: their objects failed.
async fn recorded(rt: &Runtime, run: &RunHandle, manifest: &Manifest, done: &mut Cleanup) {
    let state = rt.ports.state.as_ref();
    let dir = format!("{}/uploads/", layout::run_dir(&manifest.job, &manifest.run));
    let keys = match state.list(&dir).await {
        Ok(keys) => keys,
        Err(e) => {
            tracing::warn!(error = %e, "could not list the run's upload records");
            done.errors += 1;
            return;
        }
    };
    let dest = &run.connected.dest;
    let ledger = run.connected.copier.ledger.as_ref();
    // `<hash>.<upload>.done.json` are the part tasks' done-sets of giant objects, not records.
    for key in keys.iter().filter(|k| !k.ends_with(".done.json")) {
        let record = match state.get(key).await {
            Ok(Some(v)) => serde_json::from_slice::<Option<UploadRecord>>(&v.body)
                .ok()
                .flatten(),
            _ => None,
        };
        let Some(record) = record else { continue };
        if record.bucket != dest.bucket() {
            // The run's spec is pinned, so its records name its one destination bucket.
            tracing::warn!(bucket = %record.bucket, key = %record.key, "an upload record of another bucket; left alone");
            continue;
        }
        let aborted = dest
            .abort_multipart_upload(&record.key, &record.upload_id)
            .await;
        match aborted {
            Ok(()) => done.aborted += 1,
            Err(e) if e.code() == Some("NoSuchUpload") => {}
            Err(e) => {
                tracing::warn!(key = %record.key, error = %e, "could not abort an upload");
                done.errors += 1;
                continue;
            }
        }
        if let Err(e) = ledger.remove(&record.bucket, &record.key).await {
            tracing::warn!(key = %record.key, error = %e, "could not tombstone an upload record");
        }
    }
}
