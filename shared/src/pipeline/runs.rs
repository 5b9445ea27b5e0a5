//! The rules for starting a run, in one place for the planner function and standalone mode.
//!
//! * **Run ids** are the start time, readable and sortable, and a tail ([`run_id`]): random for
//!   a new run ([`new_run_id`]), the Lambda request id for a planner invocation, so Lambda's
//!   retry of the same invocation finds the run its first attempt made.
//! * **A job runs once at a time.** A start while the job's latest run is unfinished would copy
//!   the same objects twice over, so it is skipped, resumed or overlapped — [`decide`] says
//!   which — and standalone mode resumes it ([`unfinished_run`]).
//! * **Incremental runs** reach back [`INCREMENTAL_OVERLAP`] before the previous complete run's
//!   start (its watermark), so an object written while that run was listing is not missed.

use chrono::{DateTime, TimeDelta, Utc};

use super::planner::{RunRequest, create_run};
use super::runtime::{Manifest, read_json};
use super::verify::progress::Progress;
use super::{Ports, RoleError, layout};
use crate::state::StateStore;

/// Incremental runs reach back this far before the previous run's start, so an object written
/// while that run was listing is not missed.
pub const INCREMENTAL_OVERLAP: TimeDelta = TimeDelta::minutes(15);

/// A run id: the start time in whole seconds (UTC) and `tail`.
pub fn run_id(started: DateTime<Utc>, tail: &str) -> String {
    format!("{}-{tail}", started.format("%Y%m%dT%H%M%SZ"))
}

/// A new run's id, with a random tail (two runs started in one second differ).
pub fn new_run_id(started: DateTime<Utc>) -> String {
    run_id(started, &new_tail())
}

/// A random run id tail, for a start that has no request id of its own.
pub fn new_tail() -> String {
    format!("{:04x}", fastrand::u16(..))
}

/// The job's latest run (`current.json`, written when a run is created); `None` before its
/// first.
pub async fn latest_run(state: &dyn StateStore, job: &str) -> Result<Option<String>, RoleError> {
    let current: Option<serde_json::Value> = read_json(state, &layout::current(job)).await?;
    Ok(current.and_then(|c| Some(c.get("run")?.as_str()?.to_owned())))
}

/// The job's latest run and its progress, if that run has not finished. `None` when the job
/// has no run yet or its latest finished.
pub async fn unfinished_run(
    state: &dyn StateStore,
    job: &str,
) -> Result<Option<(String, Progress)>, RoleError> {
    let Some(run) = latest_run(state, job).await? else {
        return Ok(None);
    };
    let progress: Option<Progress> = read_json(state, &layout::progress(job, &run)).await?;
    Ok(progress.filter(|p| !p.is_complete()).map(|p| (run, p)))
}

/// What a start request does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// Create (or, for an id that exists, take up again) the run with this id.
    Run(String),
    /// Start nothing: this unfinished run of the job is still going.
    Skip {
        /// The unfinished run.
        running: String,
    },
}

/// A start request, as the planner function receives it.
#[derive(Clone, Debug)]
pub struct StartRequest<'a> {
    /// The run id the caller asked for, if any: that run is created or taken up, whatever else
    /// is running.
    pub run: Option<String>,
    /// The tail of this request's new run id; a latest run ending in it is this very request's
    /// earlier attempt, taken up again.
    pub tail: &'a str,
    /// Start a new run even while the latest is unfinished (for a run known to be stuck).
    pub overlap: bool,
    /// The new run's start time.
    pub started: DateTime<Utc>,
}

/// Decides a start from the request and the job's unfinished run, if any.
pub fn decide(request: &StartRequest<'_>, unfinished: Option<String>) -> Start {
    if let Some(run) = &request.run {
        return Start::Run(run.clone());
    }
    match unfinished {
        Some(running) if running.ends_with(&format!("-{}", request.tail)) => Start::Run(running),
        Some(running) if !request.overlap => Start::Skip { running },
        _ => Start::Run(run_id(request.started, request.tail)),
    }
}

/// What [`begin`] did.
#[derive(Debug)]
pub enum Begun {
    /// The run is created (or taken up): its manifest, whose root task plans it.
    Run(Box<Manifest>),
    /// Nothing: this unfinished run of the job is still going.
    Skipped {
        /// The unfinished run.
        running: String,
    },
}

/// Starts a run as every deployed start does (the planner function, `ferry start`): reads the
/// job's unfinished run, [`decide`]s, and creates the run from `request` (its `run` and
/// `started` come from the decision and `start`). The caller then plans it — the planner in
/// its own invocation, `ferry start` by sending the root task to the work queue.
pub async fn begin(
    ports: &Ports,
    start: &StartRequest<'_>,
    mut request: RunRequest,
) -> Result<Begun, RoleError> {
    let job = crate::job::JobSpec::from_json(&request.job_text)
        .map_err(|e| RoleError::config(e.to_string()))?
        .name;
    let unfinished = unfinished_run(ports.state.as_ref(), &job).await?;
    request.run = match decide(start, unfinished.map(|(run, _)| run)) {
        Start::Run(run) => Some(run),
        Start::Skip { running } => return Ok(Begun::Skipped { running }),
    };
    request.started = start.started;
    Ok(Begun::Run(Box::new(create_run(ports, &request).await?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(run: Option<&str>, overlap: bool) -> StartRequest<'static> {
        StartRequest {
            run: run.map(str::to_owned),
            tail: "abc123",
            overlap,
            started: DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    #[test]
    fn a_start_runs_skips_or_takes_up_its_own_attempt() {
        let new = Start::Run("20260102T030405Z-abc123".into());
        assert_eq!(decide(&request(None, false), None), new);
        let other = Some("20260101T000000Z-zzz".to_owned());
        assert_eq!(
            decide(&request(None, false), other.clone()),
            Start::Skip {
                running: "20260101T000000Z-zzz".into()
            }
        );
        assert_eq!(decide(&request(None, true), other.clone()), new);
        let mine = Some("20260102T030404Z-abc123".to_owned());
        assert_eq!(
            decide(&request(None, false), mine),
            Start::Run("20260102T030404Z-abc123".into())
        );
        assert_eq!(
            decide(&request(Some("given"), false), other),
            Start::Run("given".into())
        );
    }

    #[test]
    fn run_ids_sort_by_start_time() {
        let early = new_run_id(Utc::now() - TimeDelta::seconds(5));
        let late = new_run_id(Utc::now());
        assert!(early < late, "{early} < {late}");
        assert_eq!(early.len(), "20260102T030405Z-abcd".len());
    }
}
