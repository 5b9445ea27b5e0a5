//! What a run has done so far, read from its state alone — no queue, no connection to the source
//! or destination — so that `ferry status` answers the same for a standalone state folder and a
//! deployed stack's state bucket, while the run goes on or long after.
//!
//! The run is the one named, or the job's latest (`current.json`). Counts come from
//! `progress.json` (exact: every result applied once), the verdict from `report.json` once it is
//! written; rates are over the time since the run started.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::message::Tally;
use super::runtime::{Manifest, read_json};
use super::verify::progress::Progress;
use super::verify::report::Report;
use super::{RoleError, layout};
use crate::state::StateStore;

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Tasks are outstanding.
    Running,
    /// Every task is done; the report is not written yet.
    Finishing,
    /// The report is written: `verdict` says how it ended.
    Reported,
    /// An event run with tasks outstanding: events are being copied.
    Following,
    /// An event run with nothing outstanding: every event taken so far is copied or counted.
    UpToDate,
}

/// A run's status.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The job's name.
    pub job: String,
    /// The run's id.
    pub run: String,
    /// Where the run is.
    pub phase: Phase,
    /// `complete` or `complete-with-problems`, once reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// The report's one-line summary, once reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// When the run started.
    pub started: DateTime<Utc>,
    /// When the run finished; `None` while it is going on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime<Utc>>,
    /// Incremental runs: objects modified before this time are not in scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Objects counted so far, by outcome (exact, whatever the delivery order).
    pub objects: Tally,
    /// Tasks whose results were counted.
    pub tasks_done: u64,
    /// Tasks issued and still waiting for their result.
    pub tasks_pending: u64,
    /// Seconds from the start to the end, or to now while running.
    pub seconds: f64,
    /// Objects counted per second over `seconds`.
    pub objects_per_second: f64,
    /// Bytes counted per second over `seconds`.
    pub bytes_per_second: f64,
    /// Event runs: when the oldest event not yet copied happened, and how long ago that is —
    /// how far the destination is behind the source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_waiting_event: Option<DateTime<Utc>>,
    /// Event runs: seconds from `oldest_waiting_event` to now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behind_seconds: Option<f64>,
}

impl Status {
    /// One line for a person (or a log): where the run is and what it has counted.
    pub fn line(&self) -> String {
        let t = &self.objects;
        let state = match (&self.phase, &self.verdict) {
            (Phase::Reported, Some(verdict)) => verdict.clone(),
            (Phase::Reported, None) => "reported".into(),
            (Phase::Finishing, _) => "finishing".into(),
            (Phase::Running, _) => "running".into(),
            (Phase::Following, _) => "following events".into(),
            (Phase::UpToDate, _) => "up to date with the events taken".into(),
        };
        format!(
            "run {} of job {}: {state}; {} objects ({:.1} MiB) counted: {} copied, {} skipped, \
             {} failed, {} need restore, {} filtered out; {} tasks done, {} pending; \
             {:.0} objects/s, {:.1} MiB/s over {:.1} s",
            self.run,
            self.job,
            t.objects,
            t.bytes as f64 / 1048576.0,
            t.copied,
            t.skipped,
            t.failed,
            t.needs_restore,
            t.filtered,
            self.tasks_done,
            self.tasks_pending,
            self.objects_per_second,
            self.bytes_per_second / 1048576.0,
            self.seconds,
        ) + &match self.behind_seconds {
            Some(behind) => format!("; the oldest event not yet copied happened {behind:.0} s ago"),
            None => String::new(),
        }
    }
}

/// Reads the status of `run` of `job`, or of the job's latest run. `now` measures a running
/// run's rates.
pub async fn read(
    state: &dyn StateStore,
    job: &str,
    run: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Status, RoleError> {
    let run = match run {
        Some(run) => run.to_owned(),
        None => latest_run(state, job).await?,
    };
    let missing = || {
        RoleError::config(format!(
            "job {job:?} has no run {run:?} in {}: list the runs under jobs/{job}/runs/",
            state.describe()
        ))
    };
    let manifest: Manifest = read_json(state, &layout::manifest(job, &run))
        .await?
        .ok_or_else(missing)?;
    let progress: Progress = read_json(state, &layout::progress(job, &run))
        .await?
        .ok_or_else(missing)?;
    let report: Option<Report> = read_json(state, &layout::report(job, &run)).await?;
    let phase = match (&report, progress.is_complete()) {
        (Some(_), _) => Phase::Reported,
        _ if progress.open && progress.is_idle() => Phase::UpToDate,
        _ if progress.open => Phase::Following,
        (None, true) => Phase::Finishing,
        (None, false) => Phase::Running,
    };
    let end = progress.finished.unwrap_or(now);
    let seconds = ((end - progress.started).num_milliseconds().max(1) as f64) / 1000.0;
    let t = progress.tally.clone();
    Ok(Status {
        job: job.to_owned(),
        run,
        phase,
        verdict: report.as_ref().map(|r| r.verdict.clone()),
        summary: report.map(|r| r.summary),
        started: progress.started,
        finished: progress.finished,
        since: manifest.since,
        objects_per_second: t.objects as f64 / seconds,
        bytes_per_second: t.bytes as f64 / seconds,
        objects: t,
        tasks_done: progress.tasks_done,
        tasks_pending: progress.pending.len() as u64,
        seconds,
        oldest_waiting_event: progress.oldest_waiting(),
        behind_seconds: progress
            .oldest_waiting()
            .map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0),
    })
}

/// The job's latest run, or an error that says where to look.
async fn latest_run(state: &dyn StateStore, job: &str) -> Result<String, RoleError> {
    super::runs::latest_run(state, job).await?.ok_or_else(|| {
        RoleError::config(format!(
            "job {job:?} has no run in {}: check the job's name (the \"name\" in its job \
                 file) and the state location, or start a run first",
            state.describe()
        ))
    })
}
