//! The run report: `report.json` (counts, timing, verdict) and `failures.csv` (every object not
//! copied for a reason the user must act on), written once when the run is complete.
//!
//! The report is built from the recorded results, walking from the run's first task through
//! the tasks each result issued — exactly the results progress counted, never a result of a
//! duplicate execution that lost the race.

use std::collections::VecDeque;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::progress::Progress;
use crate::pipeline::cas::{self, Edit, Layout};
use crate::pipeline::message::{ChunkResult, ShardTask, Tally, Work};
use crate::pipeline::runtime::{Carry, Manifest, Runtime, read_json};
use crate::pipeline::{RoleError, cleanup, layout};
use crate::state::StateStore;
use crate::transfer::Outcome;

/// `report.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The report format version (1).
    pub v: u32,
    /// The job's name.
    pub job: String,
    /// The run's id.
    pub run: String,
    /// The source, as the run describes it (`s3://bucket/prefix`), never with credentials.
    pub source: String,
    /// The destination, `oss://bucket/prefix`.
    pub destination: String,
    /// The job's mode: `copy` or `audit`.
    pub mode: String,
    /// How copies were proven: `crc64` or `size`.
    pub verification: String,
    /// When the run started.
    pub started: DateTime<Utc>,
    /// When the run finished.
    pub finished: DateTime<Utc>,
    /// The run's duration, `finished - started`, in seconds.
    pub seconds: f64,
    /// `complete` (everything in scope is at the destination, verified, or skipped on purpose)
    /// or `complete-with-problems` (see failures.csv).
    pub verdict: String,
    /// The verdict in one sentence, with the counts, for a person.
    pub summary: String,
    /// Outcome counts over every object in scope.
    pub objects: Tally,
    /// Tasks whose results were counted.
    pub tasks: u64,
    /// Tasks that failed as a whole, with why.
    pub failed_tasks: Vec<FailedTask>,
    /// Objects listed in failures.csv (failed and needs-restore).
    pub failures_listed: u64,
    /// Abandoned multipart uploads aborted at the end of the run: this run's failed objects',
    /// and orphans an earlier, crashed run left (see `pipeline::cleanup`).
    #[serde(default)]
    pub uploads_aborted: u64,
    /// What the report could not do (for example: the run's connections could not be
    /// opened, so no upload was swept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A task that failed as a whole: what it covered is not counted object by object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedTask {
    /// The failed task's id.
    pub task: String,
    /// Why it failed.
    pub error: String,
    /// What the task covered (a key range, keys, planning), whose objects are uncounted.
    #[serde(default)]
    pub scope: String,
}

/// Writes the report of a complete run unless it exists already, and advances the job's
/// watermark when every object in scope was counted (no task failed as a whole).
///
/// Objects the run left failed or needing restore do not hold the watermark back: they are
/// written to `carry.json`, which the watermark names, and the next incremental run tries them
/// again whatever their age. So one bad object neither forces full listings for ever nor is
/// forgotten: it is carried from run to run until it is copied. A failed task is different —
/// what it covered is unknown — so the watermark stays, and the next run looks again from it.
pub async fn ensure(rt: &Runtime, progress: &Progress) -> Result<(), RoleError> {
    let state = rt.ports.state.as_ref();
    let (job, run) = (progress.job.as_str(), progress.run.as_str());
    if state.get(&layout::report(job, run)).await?.is_some() {
        return Ok(());
    }
    let manifest: Manifest = read_json(state, &layout::manifest(job, run))
        .await?
        .ok_or_else(|| RoleError::config(format!("run {run} has no manifest")))?;
    let (csv, failed_tasks, listed, carry) = collect(rt, &manifest).await?;
    let spec = rt.spec(job, run).await?;
    let mut notes = Vec::new();
    // A run whose connections cannot be opened (credentials gone, a secret missing) still gets
    // its report: it names the source from the job, and says what it could not sweep.
    let (source, aborted) = match rt.run(job, run).await {
        // An audit writes nothing at the destination, not even an abort.
        Ok(handle) if handle.is_audit() => {
            notes.push(
                "audit: nothing at the destination was changed (abandoned multipart uploads, \
                 if any, were left)"
                    .to_owned(),
            );
            (handle.connected.source.describe(), 0)
        }
        Ok(handle) => {
            let cleanup = cleanup::abort_left_uploads(rt, &handle, &manifest).await;
            (handle.connected.source.describe(), cleanup.aborted)
        }
        Err(e) if e.retryable => return Err(e),
        Err(e) => {
            notes.push(format!(
                "abandoned multipart uploads were not swept, the run cannot connect: {e}"
            ));
            (spec.source.describe(), 0)
        }
    };
    let finished = progress.finished.unwrap_or_else(Utc::now);
    let report = Report {
        v: 1,
        job: job.to_owned(),
        run: run.to_owned(),
        source,
        destination: format!(
            "oss://{}/{}",
            spec.destination.bucket, spec.destination.prefix
        ),
        mode: format!("{:?}", spec.mode).to_lowercase(),
        verification: format!("{:?}", spec.verification).to_lowercase(),
        started: manifest.started,
        finished,
        seconds: (finished - manifest.started).num_milliseconds() as f64 / 1000.0,
        verdict: verdict(&progress.tally).0.to_owned(),
        summary: verdict(&progress.tally).1,
        objects: progress.tally.clone(),
        tasks: progress.tasks_done,
        failed_tasks,
        failures_listed: listed,
        uploads_aborted: aborted,
        notes,
    };
    state
        .put(&layout::failures(job, run), csv.into_bytes().into())
        .await?;
    let carried = match carry.keys.is_empty() {
        true => None,
        false => {
            let key = layout::carry(job, run);
            let body = serde_json::to_vec(&carry).expect("json");
            state.put(&key, body.into()).await?;
            Some(key)
        }
    };
    write_report(state, &report).await?;
    // A retry covered a few keys, not the source: the watermark stays where the last full or
    // incremental run put it.
    if report.failed_tasks.is_empty() && progress.tally.failed_tasks == 0 && !manifest.keys_only {
        let mark = serde_json::json!({
            "run": run,
            "started": manifest.started,
            "carry": carried,
        });
        state
            .put(
                &layout::watermark(job),
                serde_json::to_vec(&mark).expect("json").into(),
            )
            .await?;
    }
    Ok(())
}

/// Writes report.json create-only. Two verifiers can both find the report missing and both
/// build one; each counted only the uploads it aborted itself, so a report already there
/// stands and gains the later writer's aborts instead of being overwritten.
async fn write_report(state: &dyn StateStore, report: &Report) -> Result<(), RoleError> {
    let key = layout::report(&report.job, &report.run);
    let body = serde_json::to_vec_pretty(report).expect("the report serialises");
    if state.put_if_absent(&key, body.into()).await?.is_some() || report.uploads_aborted == 0 {
        return Ok(());
    }
    let add = report.uploads_aborted;
    cas::update(state, &key, Layout::Pretty, |current: Option<Report>| {
        let mut stored = current.ok_or_else(|| RoleError::retry(format!("{key} vanished")))?;
        stored.uploads_aborted += add;
        Ok(Edit::Write(stored))
    })
    .await?;
    Ok(())
}

/// The verdict and a one-line summary a person reads first.
pub fn verdict(t: &Tally) -> (&'static str, String) {
    let problems = t.failed + t.needs_restore + t.failed_tasks;
    if problems == 0 {
        return (
            "complete",
            format!(
                "COMPLETE: {} objects in scope, {} copied and verified byte-exact, {} already identical",
                t.objects, t.copied, t.skipped
            ),
        );
    }
    let counted = if t.failed_tasks == 0 {
        format!("{} objects in scope", t.objects)
    } else {
        format!(
            "{} objects counted, {} tasks failed, scope unknown for what they covered \
             (failed_tasks in report.json names each)",
            t.objects, t.failed_tasks
        )
    };
    (
        "complete-with-problems",
        format!(
            "COMPLETE WITH PROBLEMS: {counted}; {} copied and verified, {} skipped, {} failed, \
             {} need restore — see failures.csv",
            t.copied, t.skipped, t.failed, t.needs_restore
        ),
    )
}

/// What a failed task left undecided: its work, less the rest of a range that a continuation
/// it sent (or an earlier delivery of it sent) went on to copy and count.
fn failed_scope(task: &ShardTask, result: &ChunkResult) -> String {
    let Work::Range {
        prefix,
        start_after,
        ..
    } = &task.work
    else {
        return task.work.describe();
    };
    let continued = result.spawned.iter().find_map(|next| match &next.work {
        Work::Range {
            start_after: Some(until),
            ..
        } if next.shard == task.shard => Some((until, next.id())),
        _ => None,
    });
    let Some((until, next)) = continued else {
        return task.work.describe();
    };
    let after = start_after
        .as_deref()
        .map_or_else(|| "the first key".to_owned(), |k| format!("after {k:?}"));
    format!(
        "keys under {prefix:?} from {after} to {until:?} inclusive (the rest of the range \
         went on in task {next})"
    )
}

/// Result records read at the same time while the report walks them: a run of millions of
/// objects has thousands of records, and one at a time the walk alone could outlast the
/// verifier's invocation.
const READ_CONCURRENCY: usize = 32;

/// Walks the recorded results from the root; returns failures.csv, failed tasks, rows listed,
/// and the keys to carry into the next incremental run (failed and needs-restore).
/// Records are read [`READ_CONCURRENCY`] at a time and taken in walk order, so the output is
/// the same however the reads interleave.
async fn collect(
    rt: &Runtime,
    manifest: &Manifest,
) -> Result<(String, Vec<FailedTask>, u64, Carry), RoleError> {
    use futures_util::{StreamExt, TryStreamExt, stream};

    let state = rt.ports.state.as_ref();
    let mut csv = String::from("key,size,outcome,reason\n");
    let mut failed_tasks = Vec::new();
    let mut listed = 0;
    let mut carry = Carry::default();
    let mut queue = VecDeque::from([manifest.root.clone()]);
    while !queue.is_empty() {
        let batch: Vec<ShardTask> = queue.drain(..queue.len().min(READ_CONCURRENCY)).collect();
        let results: Vec<(ShardTask, ChunkResult)> = stream::iter(batch)
            .map(|task| async move {
                let key = layout::result(&task);
                let result: ChunkResult = read_json(state, &key).await?.ok_or_else(|| {
                    RoleError::retry(format!("{key} is missing although progress counted it"))
                })?;
                Ok::<_, RoleError>((task, result))
            })
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        for (task, result) in results {
            listed += add_rows(&mut csv, &result);
            carry.keys.extend(result.objects.iter().filter_map(|o| {
                let carried = matches!(
                    o.result.outcome,
                    Outcome::Failed { .. } | Outcome::NeedsRestore
                );
                carried.then(|| o.result.key.clone())
            }));
            if let Some(error) = &result.error {
                failed_tasks.push(FailedTask {
                    task: task.id(),
                    error: error.clone(),
                    scope: failed_scope(&task, &result),
                });
            }
            queue.extend(result.spawned);
        }
    }
    Ok((csv, failed_tasks, listed, carry))
}

/// An event run's failures.csv as it stands, and how many rows it has. An event run has no
/// task tree to walk from a root (its tasks join as events arrive), so every result recorded
/// under it is read, in key order; results are recorded once per task, so each object's final
/// outcome is listed once, as the tally counts it.
pub async fn event_failures(
    state: &dyn StateStore,
    job: &str,
    run: &str,
) -> Result<(String, u64), RoleError> {
    let mut keys = state
        .list(&format!("{}/results/", layout::run_dir(job, run)))
        .await?;
    keys.sort();
    let mut csv = String::from("key,size,outcome,reason\n");
    let mut rows = 0;
    for key in keys {
        if let Some(result) = read_json::<ChunkResult>(state, &key).await? {
            rows += add_rows(&mut csv, &result);
        }
    }
    Ok((csv, rows))
}

/// Adds a result's rows to failures.csv; returns how many.
fn add_rows(csv: &mut String, result: &ChunkResult) -> u64 {
    let mut listed = 0;
    for object in &result.objects {
        let r = &object.result;
        let (outcome, reason) = match &r.outcome {
            Outcome::Failed { reason, .. } => ("failed", reason.clone()),
            Outcome::NeedsRestore => ("needs-restore", r.notes.join("; ")),
            // Copied, but something of it could not be carried (a metadata name or a tag OSS
            // refuses): listed, so nothing is left out silently.
            Outcome::Copied { .. } if !r.notes.is_empty() => {
                ("copied-with-notes", r.notes.join("; "))
            }
            _ => continue,
        };
        listed += 1;
        let _ = writeln!(
            csv,
            "{},{},{outcome},{}",
            field(&r.key),
            r.size,
            field(&reason)
        );
    }
    listed
}

/// A CSV field (RFC 4180): quoted when it holds a comma, quote or line break. A field that
/// begins with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, so a
/// spreadsheet opening failures.csv shows an object key as text instead of running it as a
/// formula (keys are the source's, and anyone who can write to the source picks them).
fn field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(field("plain/key.txt"), "plain/key.txt");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        for lead in ["+1", "-1", "@SUM(A1)", "\tx"] {
            assert_eq!(field(lead), format!("'{lead}"));
        }
        assert_eq!(field("\rx"), "\"'\rx\"");
        assert_eq!(field("a=b"), "a=b", "only a leading sign is neutralised");
    }
}
