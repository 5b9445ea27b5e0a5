//! Standalone mode (architecture §9): planner, a pool of transfer workers and the verifier in
//! one process, with in-memory queues and a local state directory.
//!
//! The queues live in memory, but nothing the run needs does: `progress.json` holds every task
//! still waiting for its result. Killed at any moment and started again with the same job and
//! state directory, the runner finds the unfinished run (`current.json`), puts its pending tasks
//! back on fresh queues and carries on; tasks that had run are recorded once, and objects
//! already written by this run are adopted, not copied again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::message::ShardTask;
use super::planner::{self, RunRequest};
use super::runtime::{Runtime, read_json};
use super::transfer::{self, TransferSettings};
use super::verify::progress::Progress;
use super::verify::report::{self, Report};
use super::verify::{self, VerifierSettings};
use super::{Ports, RoleError, layout};
use crate::deploy::connect::Secrets;
use crate::job::JobSpec;
use crate::queue::Queue;
use crate::queue::memory::{MemoryQueue, QueueSettings};
use crate::state::local::LocalStore;

/// What a standalone run is told.
pub struct Options {
    /// Where the run's state lives; the same directory resumes an interrupted run.
    pub state_dir: PathBuf,
    /// Shard tasks worked on at the same time.
    pub workers: usize,
    /// The transfer role's budgets (time per task, deliveries before giving up).
    pub transfer: TransferSettings,
    /// How the verifier checks copies.
    pub verifier: VerifierSettings,
    /// Start a new run even when the state directory holds an unfinished one.
    pub fresh: bool,
    /// Copy only what changed since the last complete run.
    pub incremental: bool,
    /// Retry this finished run: only the objects it left failed or needing a restore, without
    /// listing the source. Starts a new run (like `fresh`).
    pub retry: Option<String>,
    /// Copy exactly these source keys, without listing (a key list). Starts a new run.
    pub keys: Option<Vec<String>>,
    /// Called with the current progress a few times a second.
    pub on_progress: Option<ProgressFn>,
    /// Count the objects in scope alongside the run (one extra listing of the source), so
    /// progress can show a total and an ETA.
    pub count_scope: bool,
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(&View) + Send + Sync>;

/// What the progress callback sees.
pub struct View<'a> {
    /// The run's progress document as it stands.
    pub progress: &'a Progress,
    /// Objects and bytes in scope counted so far, and whether counting is finished.
    pub scope: Option<(u64, u64, bool)>,
}

impl Options {
    /// The defaults (4 workers, a new run only when none is unfinished) over `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Options {
            state_dir: state_dir.into(),
            workers: 4,
            transfer: TransferSettings::default(),
            verifier: VerifierSettings::default(),
            fresh: false,
            incremental: false,
            retry: None,
            keys: None,
            on_progress: None,
            count_scope: false,
        }
    }
}

/// How a standalone run ended.
#[derive(Debug)]
pub struct Finished {
    /// The run's report, as written to report.json.
    pub report: Report,
    /// Where report.json and failures.csv are.
    pub run_dir: PathBuf,
    /// Whether this invocation resumed an interrupted run.
    pub resumed: bool,
}

/// Runs the job to completion and returns its report.
pub async fn run(
    job_text: &str,
    options: Options,
    secrets: Arc<dyn Secrets>,
) -> Result<Finished, RoleError> {
    let spec = JobSpec::from_json(job_text).map_err(|e| RoleError::config(e.to_string()))?;
    let state = Arc::new(LocalStore::open(&options.state_dir).map_err(RoleError::from)?);
    let finished = run_with(spec, job_text, options, secrets, state.clone()).await;
    // Whatever write met the full directory first, the user is told what to do about it.
    finished.map_err(|e| state.full().map(RoleError::config).unwrap_or(e))
}

async fn run_with(
    spec: JobSpec,
    job_text: &str,
    options: Options,
    secrets: Arc<dyn Secrets>,
    state: Arc<LocalStore>,
) -> Result<Finished, RoleError> {
    let (ports, work, results) = local_ports(state.clone());
    let rt = Arc::new(Runtime::new(ports.clone(), secrets.clone()));

    let fresh = options.fresh || options.retry.is_some() || options.keys.is_some();
    let (run, resumed) = match resumable_run(&rt, &spec.name, fresh).await? {
        Some((run, pending)) => {
            warn_if_job_changed(&rt, &spec.name, &run, job_text).await;
            let bodies: Vec<String> = pending.iter().map(ShardTask::to_json).collect();
            work.send_batch(&bodies).await?;
            (run, true)
        }
        None => {
            let offset = crate::deploy::connect::destination_clock_offset(&spec, &secrets).await;
            let started = run_start(offset).await;
            let request = RunRequest {
                job_text: job_text.to_owned(),
                run: None,
                incremental: options.incremental,
                retry: options.retry.clone(),
                keys: options.keys.clone(),
                started,
            };
            let manifest = planner::create_run(&ports, &request).await?;
            work.send_batch(&[manifest.root.to_json()]).await?;
            (manifest.run, false)
        }
    };

    let workers = Workers::start(&rt, &work, &results, &options);
    let scope = Arc::new(ScopeCount::default());
    if options.count_scope && options.on_progress.is_some() {
        let (rt, scope) = (rt.clone(), scope.clone());
        let (job, run) = (spec.name.clone(), run.clone());
        tokio::spawn(async move { count_scope(&rt, &job, &run, &scope).await });
    }
    let shown = options.count_scope.then_some(scope.as_ref());
    let outcome = tokio::select! {
        outcome = watch(&rt, &spec.name, &run, options.on_progress.as_deref(), shown) => outcome,
        full = until_full(&state) => Err(RoleError::config(full)),
    };
    workers.stop().await;
    let report = outcome?;
    Ok(Finished {
        report,
        run_dir: options.state_dir.join(layout::run_dir(&spec.name, &run)),
        resumed,
    })
}

/// One process's ports: in-memory work and results queues over the state directory.
pub(super) fn local_ports(state: Arc<LocalStore>) -> (Ports, Arc<MemoryQueue>, Arc<MemoryQueue>) {
    let work = Arc::new(MemoryQueue::new("work", queue_settings()));
    let results = Arc::new(MemoryQueue::new("results", queue_settings()));
    let ports = Ports {
        state,
        work: work.clone(),
        results: results.clone(),
    };
    (ports, work, results)
}

fn queue_settings() -> QueueSettings {
    QueueSettings {
        // In one process a delivery is only lost with the process itself, and then the queue
        // is gone too: redelivery comes from progress.json, not from visibility timeouts.
        visibility_timeout: Duration::from_secs(24 * 3600),
        max_receives: None,
    }
}

/// A resumed run keeps the job it started with (layout::run_job); a job file edited since
/// does not apply to it, and the user is told so.
async fn warn_if_job_changed(rt: &Runtime, job: &str, run: &str, job_text: &str) {
    let pinned = rt.ports.state.get(&layout::run_job(job, run)).await;
    if let Ok(Some(pinned)) = pinned
        && pinned.body != job_text.as_bytes()
    {
        tracing::warn!(
            run,
            "the job file changed since run {run} started; the run resumes with the job it started with. Run with --fresh to start a new run with the changed job"
        );
    }
}

/// The job's unfinished run and its pending tasks, if there is one to resume (the rules:
/// [`super::runs`]). A latest run that completed without its report gets the report first.
async fn resumable_run(
    rt: &Runtime,
    job: &str,
    fresh: bool,
) -> Result<Option<(String, Vec<ShardTask>)>, RoleError> {
    if fresh {
        return Ok(None);
    }
    let state = rt.ports.state.as_ref();
    let Some(run) = super::runs::latest_run(state, job).await? else {
        return Ok(None);
    };
    let run = run.as_str();
    let Some(progress) = read_json::<Progress>(state, &layout::progress(job, run)).await? else {
        return Ok(None);
    };
    if progress.is_complete() {
        // Complete, maybe without a report if the process died in between: finish that.
        if state.get(&layout::report(job, run)).await?.is_none() {
            report::ensure(rt, &progress).await?;
        }
        return Ok(None);
    }
    let pending = progress.pending.into_values().collect();
    Ok(Some((run.to_owned(), resume_tasks(state, pending).await?)))
}

/// The tasks to put back on the fresh queues: every pending task, and every task that a
/// pending task's *recorded* result spawned, recursively. The old queues died with the process:
/// a result the verifier recorded but progress had not taken yet (the process stopped in
/// between) spawned tasks whose messages were only in them. The recorded tasks themselves
/// re-send their records (see `transfer::handle`), so progress takes them and their children,
/// and the children must be on the queue to run.
async fn resume_tasks(
    state: &dyn crate::state::StateStore,
    pending: Vec<ShardTask>,
) -> Result<Vec<ShardTask>, RoleError> {
    let mut seen = std::collections::HashSet::new();
    let mut queue = std::collections::VecDeque::from(pending);
    let mut tasks = Vec::new();
    while let Some(task) = queue.pop_front() {
        if !seen.insert(task.id()) {
            continue;
        }
        let recorded: Option<super::message::ChunkResult> =
            read_json(state, &layout::result(&task)).await?;
        if let Some(result) = recorded {
            queue.extend(result.spawned);
        }
        tasks.push(task);
    }
    Ok(tasks)
}

/// The run's start time, by the servers' clock. The start is compared with times the servers
/// write (the source's Last-Modified for an incremental run's watermark, OSS's for recognising
/// this run's own writes), so a local clock that is off — by more than the incremental
/// overlap, objects written between two runs would be skipped — is corrected by OSS's
/// (`offset`). Within the `Date` header's one-second resolution the local clock is kept.
async fn run_start(offset: Option<chrono::TimeDelta>) -> DateTime<Utc> {
    let offset = offset
        .filter(|o| o.num_seconds().abs() > 2)
        .unwrap_or_default();
    if !offset.is_zero() {
        tracing::warn!(
            offset_seconds = offset.num_seconds(),
            "this machine's clock is off OSS's; the run's start time is taken from OSS's clock"
        );
    }
    let now = Utc::now() + offset;
    next_whole_second(now).await
}

/// Waits for the next whole second. Destination clocks count whole seconds, so starting a run
/// on one tells this run's writes apart from the previous run's (see `Differ::with_run_start`).
async fn next_whole_second(now: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::{SubsecRound, TimeDelta};
    let next = now.trunc_subsecs(0) + TimeDelta::seconds(1);
    let wait = (next - now).to_std().unwrap_or_default();
    tokio::time::sleep(wait).await;
    next
}

/// The transfer workers and the verifier of one process, on its in-memory queues.
pub(super) struct Workers {
    stop: Arc<AtomicBool>,
    loops: Vec<tokio::task::JoinHandle<()>>,
}

impl Workers {
    pub(super) fn start(
        rt: &Arc<Runtime>,
        work: &Arc<MemoryQueue>,
        results: &Arc<MemoryQueue>,
        options: &Options,
    ) -> Workers {
        let stop = Arc::new(AtomicBool::new(false));
        let mut loops = Vec::new();
        for _ in 0..options.workers.max(1) {
            let settings = options.transfer.clone();
            let (rt, work, stop) = (rt.clone(), work.clone(), stop.clone());
            loops.push(tokio::spawn(transfer_loop(rt, work, settings, stop)));
        }
        let settings = options.verifier.clone();
        let (rt, results, stop_v) = (rt.clone(), results.clone(), stop.clone());
        loops.push(tokio::spawn(verifier_loop(rt, results, settings, stop_v)));
        Workers { stop, loops }
    }

    /// Stops the loops after the message each is on.
    pub(super) async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.loops {
            let _ = task.await;
        }
    }
}

async fn transfer_loop(
    rt: Arc<Runtime>,
    work: Arc<MemoryQueue>,
    settings: TransferSettings,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        let Ok(batch) = work.receive(1, Duration::from_millis(200)).await else {
            continue;
        };
        for delivery in batch {
            let done =
                transfer::handle(&rt, &settings, &delivery.body, delivery.receive_count, None)
                    .await;
            settle(
                work.as_ref(),
                &delivery.receipt,
                done,
                delivery.receive_count,
            )
            .await;
        }
    }
}

async fn verifier_loop(
    rt: Arc<Runtime>,
    results: Arc<MemoryQueue>,
    settings: VerifierSettings,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        let Ok(batch) = results.receive(10, Duration::from_millis(200)).await else {
            continue;
        };
        let bodies: Vec<String> = batch.iter().map(|d| d.body.clone()).collect();
        let outcomes = verify::handle_batch(&rt, &settings, &bodies, None).await;
        for (delivery, done) in batch.iter().zip(outcomes) {
            settle(
                results.as_ref(),
                &delivery.receipt,
                done,
                delivery.receive_count,
            )
            .await;
        }
    }
}

/// The wait before a failed delivery comes back: from 400 ms up to 25.6 s, as SQS's visibility
/// timeout would space them in distributed mode.
const REDELIVERY_BACKOFF: crate::backoff::Backoff =
    crate::backoff::Backoff::new(Duration::from_millis(400), Duration::from_millis(25_600));

/// Acks a finished delivery, or gives it back with a growing delay.
pub(super) async fn settle(
    queue: &dyn Queue,
    receipt: &str,
    done: Result<(), RoleError>,
    count: u32,
) {
    match done {
        Ok(()) => {
            let _ = queue.ack(&[receipt.to_owned()]).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, deliveries = count, "will retry");
            let delay = REDELIVERY_BACKOFF.equal_jitter(count);
            let _ = queue.nack(receipt, delay).await;
        }
    }
}

/// Waits until the state directory is found full. Every role's write then fails, and with
/// nothing to free space they would retry for ever: the run stops instead, and says how to go
/// on (the same command resumes it).
pub(super) async fn until_full(state: &LocalStore) -> String {
    loop {
        if let Some(why) = state.full() {
            return why;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls progress until the run is complete and reported.
async fn watch(
    rt: &Runtime,
    job: &str,
    run: &str,
    on_progress: Option<&(dyn Fn(&View) + Send + Sync)>,
    scope: Option<&ScopeCount>,
) -> Result<Report, RoleError> {
    let state = rt.ports.state.as_ref();
    let mut last_report_check = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Some(progress) = read_json::<Progress>(state, &layout::progress(job, run)).await?
        else {
            continue;
        };
        if let Some(callback) = on_progress {
            callback(&View {
                progress: &progress,
                scope: scope.map(ScopeCount::get),
            });
        }
        if !progress.is_complete() {
            continue;
        }
        if let Some(report) = read_json::<Report>(state, &layout::report(job, run)).await? {
            return Ok(report);
        }
        // Complete but not yet reported: the verifier writes it right after; if it failed to,
        // write it here.
        if last_report_check.elapsed() > Duration::from_secs(2) {
            report::ensure(rt, &progress).await?;
            last_report_check = Instant::now();
        }
    }
}

/// Objects and bytes in scope, counted by a listing that runs beside the copy.
#[derive(Default)]
struct ScopeCount {
    objects: AtomicU64,
    bytes: AtomicU64,
    done: AtomicBool,
}

impl ScopeCount {
    fn get(&self) -> (u64, u64, bool) {
        (
            self.objects.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
            self.done.load(Ordering::Relaxed),
        )
    }
}

/// Lists the whole source once, counting what is in scope. Best effort: on an error the
/// count stays unfinished and progress shows no ETA.
async fn count_scope(rt: &Runtime, job: &str, run: &str, scope: &ScopeCount) {
    let Ok(handle) = rt.run(job, run).await else {
        return;
    };
    let mut req = crate::source::ListRequest {
        prefix: handle.spec().source.prefix().to_owned(),
        max_keys: 1000,
        ..Default::default()
    };
    loop {
        let Ok(page) = handle.connected.source.list(&req).await else {
            return;
        };
        for object in page.objects.iter().filter(|o| handle.in_scope(o)) {
            scope.objects.fetch_add(1, Ordering::Relaxed);
            scope.bytes.fetch_add(object.size, Ordering::Relaxed);
        }
        match page.next {
            Some(token) => req.continuation = Some(token),
            None => break,
        }
    }
    scope.done.store(true, Ordering::Relaxed);
}

/// The state directory's path for a run (for printing).
pub fn run_dir(state_dir: &Path, job: &str, run: &str) -> PathBuf {
    state_dir.join(layout::run_dir(job, run))
}
