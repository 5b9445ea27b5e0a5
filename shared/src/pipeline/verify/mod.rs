//! The verifier role: chunk results in; each copied object checked at the destination on its
//! own; each result recorded exactly once; progress kept; the report written when the run is
//! complete (architecture §1, invariants 1–4). Its pieces live together here: the role in
//! this file, the run's progress document in [`progress`], the report and failures.csv in
//! [`report`], and their table and CSV forms for people in [`report_text`].
//!
//! Exactly once, although messages come at least once and in any order:
//!
//! 1. The first delivery of a task's result verifies it and writes
//!    `results/<shard>/<seq>.<hash>.json` create-only. A later delivery finds the file and uses
//!    *it*, not the message, so every delivery agrees on what was recorded.
//! 2. Re-checks it issued (objects whose destination did not match) are sent again on every
//!    delivery until progress has taken the result; their ids are stable, so duplicates are
//!    recorded once.
//! 3. Progress is a read-modify-write guarded by the state store's version
//!    ([`Progress::record`] is idempotent), retried on conflict.
//! 4. Whoever sees the run complete writes the report; a run complete without a report (a
//!    verifier died in between) gets one from the next verifier that looks.

use futures_util::{StreamExt, stream};

pub mod progress;
pub mod report;
pub mod report_text;

use crate::job::Verification;
use crate::pipeline::cas::{self, Edit, Layout};
use crate::pipeline::message::{ChunkResult, ObjectRecord, ResultMessage, ShardTask};
use crate::pipeline::runtime::{RunHandle, Runtime, read_json};
use crate::pipeline::{RoleError, layout};
use crate::transfer::Outcome;
use progress::Progress;

/// How the verifier checks and re-checks.
#[derive(Clone, Debug)]
pub struct VerifierSettings {
    /// Copies of one object tried before a destination mismatch is reported failed.
    pub max_attempts: u32,
    /// Destination HEADs at the same time.
    pub head_concurrency: usize,
    /// Time kept in hand before the invocation's deadline: a result reached inside it is
    /// handed back unstarted, leaving the time for the progress update (and the report).
    pub reserve: std::time::Duration,
}

impl Default for VerifierSettings {
    fn default() -> Self {
        VerifierSettings {
            max_attempts: 3,
            head_concurrency: 16,
            reserve: std::time::Duration::from_secs(60),
        }
    }
}

/// Prefix of the shards of re-check tasks the verifier issues.
const RECHECK: &str = "verify";

/// Handles a batch of results-queue messages; one outcome per message (`Ok`: delete it).
///
/// A message reached when less than the reserve is left before `deadline` is handed back
/// unstarted: sent to the results queue again as it came, and this delivery deleted (it does
/// not count towards the dead-letter queue). An invocation without a usable deadline handles
/// every message.
pub async fn handle_batch(
    rt: &Runtime,
    settings: &VerifierSettings,
    bodies: &[String],
    deadline: Option<std::time::Instant>,
) -> Vec<Result<(), RoleError>> {
    let clock = crate::pipeline::BatchClock::new(deadline, settings.reserve);
    let mut outcomes = Vec::with_capacity(bodies.len());
    let mut recorded: Vec<(usize, ChunkResult)> = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        if clock.out_of_time() {
            tracing::info!("no time left in this invocation; handing the result back unstarted");
            let sent = rt
                .ports
                .results
                .send_batch(std::slice::from_ref(body))
                .await;
            outcomes.push(sent.map_err(RoleError::from));
            continue;
        }
        match record_one(rt, settings, body).await {
            Ok(result) => {
                outcomes.push(Ok(()));
                recorded.push((i, result));
            }
            Err(e) => outcomes.push(Err(e)),
        }
    }
    // Results of different runs may share a batch: progress is per run.
    let mut runs: Vec<(String, String)> = recorded
        .iter()
        .map(|(_, r)| (r.task.job.clone(), r.task.run.clone()))
        .collect();
    runs.sort();
    runs.dedup();
    for (job, run) in runs {
        let mine: Vec<&ChunkResult> = recorded
            .iter()
            .filter(|(_, r)| r.task.job == job && r.task.run == run)
            .map(|(_, r)| r)
            .collect();
        if let Err(e) = apply_progress(rt, &job, &run, &mine).await {
            for (i, r) in &recorded {
                if r.task.job == job && r.task.run == run {
                    outcomes[*i] = Err(RoleError {
                        retryable: e.retryable,
                        message: e.message.clone(),
                    });
                }
            }
        }
    }
    outcomes
}

/// Verifies and records one result (or reads the one recorded before); returns what is recorded.
async fn record_one(
    rt: &Runtime,
    settings: &VerifierSettings,
    body: &str,
) -> Result<ChunkResult, RoleError> {
    let incoming = match ResultMessage::from_json(body)? {
        ResultMessage::Inline { result } => *result,
        ResultMessage::Stored { key, .. } => read_json(rt.ports.state.as_ref(), &key)
            .await?
            .ok_or_else(|| {
                RoleError::retry(format!("chunk result {key} is not in the state store yet"))
            })?,
    };
    let key = layout::result(&incoming.task);
    let state = rt.ports.state.as_ref();
    let recorded = match read_json::<ChunkResult>(state, &key).await? {
        Some(recorded) => recorded,
        None => {
            // Only copies are checked at the destination: a result without any (a task that
            // failed as a whole because its run cannot connect) is recorded without connecting.
            let copies = incoming
                .objects
                .iter()
                .any(|o| matches!(o.result.outcome, Outcome::Copied { .. }));
            let run = match copies {
                true => Some(rt.run(&incoming.task.job, &incoming.task.run).await?),
                false => None,
            };
            let checked = verify(run.as_deref(), settings, incoming).await?;
            let body = serde_json::to_vec(&checked).expect("a result serialises");
            match state.put_if_absent(&key, body.into()).await? {
                Some(_) => checked,
                // Another verifier recorded it first: its record stands.
                None => read_json(state, &key)
                    .await?
                    .ok_or_else(|| RoleError::retry(format!("{key} vanished")))?,
            }
        }
    };
    let rechecks: Vec<String> = recorded
        .spawned
        .iter()
        .filter(|t| t.shard.starts_with(RECHECK))
        .map(ShardTask::to_json)
        .collect();
    if !rechecks.is_empty() {
        rt.ports.work.send_batch(&rechecks).await?;
    }
    Ok(recorded)
}

/// Checks every copied object at the destination: size, and CRC-64 unless the job verifies
/// sizes only. Mismatches become a re-copy task, or failures once attempts are used up.
async fn verify(
    run: Option<&RunHandle>,
    settings: &VerifierSettings,
    mut result: ChunkResult,
) -> Result<ChunkResult, RoleError> {
    let sizes_only = run.is_some_and(|r| r.spec().verification == Verification::Size);
    let objects = std::mem::take(&mut result.objects);
    let checked: Vec<Result<(ObjectRecord, Option<String>), RoleError>> = stream::iter(objects)
        .map(|record| check(run, sizes_only, record))
        .buffered(settings.head_concurrency.max(1))
        .collect()
        .await;
    let mut mismatched = Vec::new();
    for entry in checked {
        let (mut record, problem) = entry?;
        match problem {
            None => result.objects.push(record),
            Some(problem) if result.task.attempt + 1 >= settings.max_attempts => {
                record.result.outcome = Outcome::Failed {
                    reason: format!(
                        "failed after {} attempts: {problem}",
                        result.task.attempt + 1
                    ),
                    retryable: true,
                };
                result.objects.push(record);
            }
            Some(problem) => {
                tracing::warn!(key = %record.result.key, %problem, "copying again");
                mismatched.push(record.result.key);
            }
        }
    }
    let attempt = result.task.attempt + 1;
    let rechecks = result.task.split_keys(RECHECK, mismatched, true, attempt);
    result.spawned.extend(rechecks);
    Ok(result)
}

/// One object's check: `Some(problem)` when the destination does not hold what was copied.
async fn check(
    run: Option<&RunHandle>,
    sizes_only: bool,
    record: ObjectRecord,
) -> Result<(ObjectRecord, Option<String>), RoleError> {
    let crc64 = match &record.result.outcome {
        Outcome::Copied { crc64, .. } => *crc64,
        // A copy that failed for a reason that may pass (throttling, resets, a source read cut
        // short) after the transfer's own retries gets another task, like a mismatch.
        Outcome::Failed {
            retryable: true,
            reason,
        } => {
            let problem = reason.clone();
            return Ok((record, Some(problem)));
        }
        _ => return Ok((record, None)),
    };
    let Some(run) = run else {
        return Err(RoleError::retry(
            "a copy to check, and no connection to check it with",
        ));
    };
    let dest = &run.connected.dest;
    let key = dest.key_for(&record.result.key);
    let problem = match dest.head_object(&key).await {
        Ok(meta) if meta.content_length != record.result.size => Some(format!(
            "destination holds {} bytes, the source had {}",
            meta.content_length, record.result.size
        )),
        Ok(_) if sizes_only => None,
        Ok(meta) => match meta.crc64 {
            Some(found) if found == crc64 => None,
            Some(found) => Some(format!(
                "destination CRC-64 {found:016x}, the source bytes had {crc64:016x}"
            )),
            None => Some("destination reports no CRC-64".to_owned()),
        },
        Err(e) if e.status() == Some(404) => Some("not found at the destination".to_owned()),
        Err(e) if e.is_retryable() => return Err(RoleError::retry(format!("destination: {e}"))),
        Err(e) => Some(format!("destination HEAD failed: {e}")),
    };
    Ok((record, problem))
}

/// Adds recorded results to the run's progress, and writes the report when the run is complete.
async fn apply_progress(
    rt: &Runtime,
    job: &str,
    run: &str,
    results: &[&ChunkResult],
) -> Result<(), RoleError> {
    let key = layout::progress(job, run);
    let progress = cas::update(rt.ports.state.as_ref(), &key, Layout::Compact, |current| {
        let Some(mut progress): Option<Progress> = current else {
            return Err(RoleError::config(format!(
                "run {run} of job {job} has no progress.json"
            )));
        };
        let mut changed = false;
        for r in results {
            changed |= progress.record(&r.task.id(), &r.tally(), &r.spawned);
        }
        if changed && progress.is_complete() && progress.finished.is_none() {
            progress.finished = Some(chrono::Utc::now());
        }
        Ok(match changed {
            true => Edit::Write(progress),
            false => Edit::Keep(progress),
        })
    })
    .await?;
    if progress.is_complete() {
        report::ensure(rt, &progress).await?;
    }
    Ok(())
}
