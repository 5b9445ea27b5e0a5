//! The planner role: create a run, then plan it (architecture §1).
//!
//! [`create_run`] records the job as submitted, the run manifest and the run's first progress
//! (one pending task: planning). Planning itself is a task like any other ([`Work::Plan`]):
//! [`plan_step`] discovers and splits the source into key ranges until its time is up, issues
//! one range task per range, and hands the rest of the planning on as a continuation — so a
//! planner near its deadline continues in a fresh invocation, and a planner that dies is
//! redelivered like any task.

use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::message::{ChunkResult, ShardTask, Work, shard_id};
use super::runs::{INCREMENTAL_OVERLAP, new_run_id};
use super::runtime::{Manifest, RunHandle, Runtime, read_json};
use super::verify::progress::Progress;
use super::{Ports, RoleError, layout};
use crate::job::JobSpec;
use crate::plan::{KeyRange, PlanCursor, PlanOptions};

/// Shard tasks sent per queue call.
const SEND_BATCH: usize = 100;

/// A request to start a run.
#[derive(Clone, Debug)]
pub struct RunRequest {
    /// The job file's text, as submitted.
    pub job_text: String,
    /// The run id; `None` for a new one derived from `started`. Give the same id again to make
    /// a retried start idempotent (the Lambda planner uses its request id).
    pub run: Option<String>,
    /// Copy only objects modified since the last complete run (minus an overlap).
    pub incremental: bool,
    /// Retry a finished run: only the objects it left failed or needing a restore (its
    /// carry.json), as `Keys` tasks, with no listing.
    pub retry: Option<String>,
    /// A run over exactly these source keys (a key list given by the user), with no listing:
    /// each is described by HEAD, the job's filters apply, and a key not at the source is
    /// reported failed.
    pub keys: Option<Vec<String>>,
    /// The run's start time (whole seconds): its id, and the watermark the next incremental
    /// run starts from.
    pub started: DateTime<Utc>,
}

/// Records the job, the manifest and the first progress. Idempotent for a given run id: a
/// second call returns the manifest the first one wrote.
pub async fn create_run(ports: &Ports, request: &RunRequest) -> Result<Manifest, RoleError> {
    let spec =
        JobSpec::from_json(&request.job_text).map_err(|e| RoleError::config(e.to_string()))?;
    let state = ports.state.as_ref();
    let job = spec.name.as_str();
    let run = request
        .run
        .clone()
        .unwrap_or_else(|| new_run_id(request.started));
    let watermark = match request.incremental {
        true => read_json::<serde_json::Value>(state, &layout::watermark(job)).await?,
        false => None,
    };
    let since = watermark
        .as_ref()
        .and_then(|w| w.get("started")?.as_str())
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc) - INCREMENTAL_OVERLAP);
    let carried = watermark
        .as_ref()
        .and_then(|w| w.get("carry")?.as_str())
        .map(str::to_owned);
    let (since, carried) = match (&request.retry, &request.keys) {
        (None, None) => (since, carried),
        (Some(of), None) => (None, Some(retry_carry(state, job, of).await?)),
        (None, Some(keys)) => (None, Some(key_list(state, &spec, &run, keys).await?)),
        (Some(_), Some(_)) => {
            return Err(RoleError::config(
                "a run retries a run or copies a key list, not both",
            ));
        }
    };
    let manifest = Manifest {
        v: super::message::VERSION,
        job: job.to_owned(),
        run: run.clone(),
        started: request.started,
        kind: super::runtime::RunKind::Listing,
        since,
        carried,
        keys_only: request.retry.is_some() || request.keys.is_some(),
        key_list: request.keys.is_some(),
        root: ShardTask::new(job, &run, "plan", 0, Work::Plan { cursor: None }),
    };
    state
        .put(&layout::job(job), Bytes::from(request.job_text.clone()))
        .await?;
    let manifest = record_run(state, &request.job_text, manifest, |m| {
        Progress::new(job, &run, m.started, std::slice::from_ref(&m.root))
    })
    .await?;
    let current = serde_json::json!({ "run": run });
    state
        .put(
            &layout::current(job),
            serde_json::to_vec(&current).expect("json").into(),
        )
        .await?;
    Ok(manifest)
}

/// The carry.json of the run a retry retries: its failed and needs-restore keys. A run with
/// no report has not finished (retry it once it has); a run with nothing to carry has nothing
/// to retry.
async fn retry_carry(
    state: &dyn crate::state::StateStore,
    job: &str,
    of: &str,
) -> Result<String, RoleError> {
    if state.get(&layout::report(job, of)).await?.is_none() {
        return Err(RoleError::config(format!(
            "run {of} of job {job} has no report: a run is retried once it has finished (`ferry status {job} --run {of}` shows where it is)"
        )));
    }
    let key = layout::carry(job, of);
    match state.get(&key).await? {
        Some(_) => Ok(key),
        None => Err(RoleError::config(format!(
            "run {of} of job {job} left no failed or needs-restore objects: there is nothing to retry"
        ))),
    }
}

/// Records a key list as the run's carried keys (`keys.json`, create-only: a retried start
/// keeps the first list) after checking every key is under the source prefix; returns its
/// state key.
async fn key_list(
    state: &dyn crate::state::StateStore,
    spec: &JobSpec,
    run: &str,
    keys: &[String],
) -> Result<String, RoleError> {
    let prefix = spec.source.prefix();
    if keys.is_empty() {
        return Err(RoleError::config(
            "the key list is empty: give one source key per line",
        ));
    }
    if let Some(outside) = keys.iter().find(|k| !k.starts_with(prefix) || k.is_empty()) {
        return Err(RoleError::config(format!(
            "key {outside:?} in the key list is not under the job's source.prefix {prefix:?}: \
             list keys as they are in the source bucket, under that prefix"
        )));
    }
    let mut keys = keys.to_vec();
    keys.sort();
    keys.dedup();
    let carry = super::runtime::Carry { keys };
    let key = format!("{}/keys.json", layout::run_dir(&spec.name, run));
    let body = Bytes::from(serde_json::to_vec(&carry).expect("keys serialise"));
    state.put_if_absent(&key, body).await?;
    Ok(key)
}

/// Records a run's documents, each create-only so a retried or racing start agrees: the job as
/// started (pinned, so later edits of job.json do not change this run), the manifest, and the
/// progress `progress` builds from the manifest that stands. Returns that manifest: this one,
/// or the one an earlier call wrote.
pub(crate) async fn record_run(
    state: &dyn crate::state::StateStore,
    job_text: &str,
    manifest: Manifest,
    progress: impl FnOnce(&Manifest) -> Progress,
) -> Result<Manifest, RoleError> {
    let (job, run) = (manifest.job.clone(), manifest.run.clone());
    state
        .put_if_absent(
            &layout::run_job(&job, &run),
            Bytes::from(job_text.to_owned()),
        )
        .await?;
    let body = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    let manifest = match state
        .put_if_absent(&layout::manifest(&job, &run), body.into())
        .await?
    {
        Some(_) => manifest,
        None => read_json(state, &layout::manifest(&job, &run))
            .await?
            .ok_or_else(|| RoleError::retry("manifest vanished"))?,
    };
    let body = serde_json::to_vec(&progress(&manifest)).expect("progress serialises");
    state
        .put_if_absent(&layout::progress(&job, &run), body.into())
        .await?;
    Ok(manifest)
}

/// One step of planning: ranges until `stop`, each issued as a shard task, and a continuation
/// of the planning if it is not finished.
pub async fn plan_step(
    rt: &Runtime,
    run: &RunHandle,
    task: &ShardTask,
    cursor: Option<serde_json::Value>,
    stop: Option<Instant>,
) -> Result<ChunkResult, RoleError> {
    if run.manifest.keys_only {
        return carried_only(rt, run, task).await;
    }
    let options = plan_options(run.spec());
    let source = run.connected.source.as_ref();
    let outcome = match cursor {
        None => crate::plan::plan_ranges(source, &options, stop).await,
        Some(value) => {
            let cursor = load_cursor(rt, value).await?;
            crate::plan::plan_continue(source, &options, cursor, stop).await
        }
    }
    .map_err(|e| match e {
        crate::plan::PlanError::Source(e) => RoleError {
            retryable: e.is_retryable(),
            message: format!("planning: {e}"),
        },
        other => RoleError::config(format!("planning: {other}")),
    })?;
    let stats = outcome.stats().clone();
    let (ranges, next) = outcome.into_parts();
    tracing::info!(
        ranges = ranges.len(),
        keys_read = stats.keys_read,
        list_requests = stats.list_requests,
        complete = next.is_none(),
        "planning step"
    );
    let ranges: Vec<KeyRange> = ranges.into_iter().map(|r| r.range).collect();
    let mut result = ChunkResult::new(task.clone());
    result.spawned = ranges.iter().map(|r| range_task(task, r)).collect();
    if task.seq == 0 {
        result.spawned.extend(carried_tasks(task, run));
    }
    if let Some(cursor) = next {
        let value = store_cursor(rt, task, &cursor).await?;
        result.spawned.push(task.continuation(Work::Plan {
            cursor: Some(value),
        }));
    }
    for batch in result.spawned.chunks(SEND_BATCH) {
        let bodies: Vec<String> = batch.iter().map(ShardTask::to_json).collect();
        rt.ports.work.send_batch(&bodies).await?;
    }
    Ok(result)
}

/// A retry's planning: the carried keys' tasks, and no listing.
async fn carried_only(
    rt: &Runtime,
    run: &RunHandle,
    task: &ShardTask,
) -> Result<ChunkResult, RoleError> {
    let mut result = ChunkResult::new(task.clone());
    result.spawned = carried_tasks(task, run);
    for batch in result.spawned.chunks(SEND_BATCH) {
        let bodies: Vec<String> = batch.iter().map(ShardTask::to_json).collect();
        rt.ports.work.send_batch(&bodies).await?;
    }
    Ok(result)
}

/// The first planning step's `Keys` tasks for the keys carried from the previous run (its
/// failures): tried again whatever their age; the listings pass over them.
fn carried_tasks(plan: &ShardTask, run: &RunHandle) -> Vec<ShardTask> {
    let mut keys: Vec<String> = run.carried.iter().cloned().collect();
    keys.sort();
    plan.split_keys(CARRIED, keys, false, 0)
}

/// The tag of carried-keys tasks' shards.
pub const CARRIED: &str = "carried";

fn range_task(plan: &ShardTask, range: &KeyRange) -> ShardTask {
    let work = Work::Range {
        prefix: range.prefix.clone(),
        start_after: range.start_after.clone(),
        end: range.end.clone(),
    };
    let shard = shard_id(&plan.job, &plan.run, &work);
    ShardTask::new(&plan.job, &plan.run, &shard, 0, work)
}

/// How the planner cuts a job's source prefix into ranges.
pub fn plan_options(spec: &JobSpec) -> PlanOptions {
    PlanOptions {
        prefix: spec.source.prefix().to_owned(),
        scan_depth: spec.sharding.scan_depth,
        // A range of about one task's budget: most ranges are one task, long ones a chain.
        target_keys_per_shard: spec.sharding.max_keys_per_shard.max(1),
        ..PlanOptions::default()
    }
}

/// Cursors larger than this travel through the state store instead of inside the message.
const INLINE_CURSOR_LIMIT: usize = 128 * 1024;

/// The cursor as the continuation task carries it: inline, or `{"stored": key}`.
async fn store_cursor(
    rt: &Runtime,
    task: &ShardTask,
    cursor: &PlanCursor,
) -> Result<serde_json::Value, RoleError> {
    let value = serde_json::to_value(cursor).expect("cursor serialises");
    let text = value.to_string();
    if text.len() <= INLINE_CURSOR_LIMIT {
        return Ok(value);
    }
    let key = format!(
        "{}/plan/{}.json",
        layout::run_dir(&task.job, &task.run),
        task.seq + 1
    );
    rt.ports.state.put(&key, Bytes::from(text)).await?;
    Ok(serde_json::json!({ "stored": key }))
}

async fn load_cursor(rt: &Runtime, value: serde_json::Value) -> Result<PlanCursor, RoleError> {
    let value = match value.get("stored").and_then(|k| k.as_str()) {
        Some(key) => read_json(rt.ports.state.as_ref(), key)
            .await?
            .ok_or_else(|| RoleError::retry(format!("planning cursor {key} is not stored yet")))?,
        None => value,
    };
    serde_json::from_value(value).map_err(|e| RoleError::config(format!("planning cursor: {e}")))
}
