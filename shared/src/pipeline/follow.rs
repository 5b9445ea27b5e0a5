//! Standalone mode's event follower (architecture §10): reads the source's events from a queue
//! (S3 → SQS, S3 → SNS → SQS, EventBridge → SQS) and keeps the destination current, with the
//! transfer workers and the verifier of a standalone run in the same process.
//!
//! Events become tasks of the job's event runs ([`super::intake`]); their progress is
//! in the state directory, so a follower killed at any moment and started again sends the
//! tasks still pending and carries on. An events-queue message is deleted only once its tasks
//! are issued: a message the follower could not take is delivered again by the queue, and a
//! message that is no event at all is left for the queue's dead-letter queue.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::message::ShardTask;
use super::runtime::{Runtime, read_json};
use super::standalone::{Options, Workers, local_ports, settle, until_full};
use super::transfer::Delivery;
use super::verify::progress::Progress;
use super::verify::report;
use super::{RoleError, intake, layout};
use crate::deploy::connect::Secrets;
use crate::job::JobSpec;
use crate::queue::Queue;
use crate::state::local::LocalStore;

/// When a follower stops by itself.
#[derive(Clone, Copy, Debug)]
pub struct Until {
    /// Stop once the events queue has been empty this long and every event run touched is up
    /// to date; `None` to follow until stopped.
    pub idle: Option<Duration>,
}

/// What a follower did: each event run it touched, as it stands when it stopped.
#[derive(Debug)]
pub struct Followed {
    /// Each event run the follower touched, as it stood when the follower stopped.
    pub runs: Vec<Progress>,
    /// Event-queue messages taken (deleted from the queue).
    pub messages: u64,
    /// Messages left on the queue because they are not events of this job, with why.
    pub refused: Vec<String>,
    /// Event runs with objects that failed, need a restore or were copied with notes: how
    /// many, listed in the run's failures.csv (written when the follower stops).
    pub failures: Vec<(String, u64)>,
}

/// Follows the job's events until `until` says stop.
pub async fn follow(
    job_text: &str,
    options: Options,
    secrets: Arc<dyn Secrets>,
    events: Arc<dyn Queue>,
    until: Until,
) -> Result<Followed, RoleError> {
    let spec = JobSpec::from_json(job_text).map_err(|e| RoleError::config(e.to_string()))?;
    let state = Arc::new(LocalStore::open(&options.state_dir).map_err(RoleError::from)?);
    let (ports, work, results) = local_ports(state.clone());
    let rt = Arc::new(Runtime::new(ports, secrets));
    // Intake reads the job as last submitted, like the planner's runs.
    rt.ports
        .state
        .put(&layout::job(&spec.name), job_text.to_owned().into())
        .await?;
    let pending = intake::pending_event_tasks(&rt, &spec.name).await?;
    let mut touched: BTreeSet<String> = pending.iter().map(|t| t.run.clone()).collect();
    let bodies: Vec<String> = pending.iter().map(ShardTask::to_json).collect();
    work.send_batch(&bodies).await?;

    let workers = Workers::start(&rt, &work, &results, &options);
    let taken = tokio::select! {
        taken = take_events(&rt, &spec.name, events.as_ref(), until, &mut touched) => taken,
        full = until_full(&state) => Err(RoleError::config(full)),
    };
    workers.stop().await;
    let (messages, refused) = taken?;
    let state = rt.ports.state.as_ref();
    let (mut runs, mut failures) = (Vec::new(), Vec::new());
    for run in touched {
        if let Some(p) = read_json(state, &layout::progress(&spec.name, &run)).await? {
            runs.push(p);
        }
        let (csv, rows) = report::event_failures(state, &spec.name, &run).await?;
        if rows > 0 {
            state
                .put(&layout::failures(&spec.name, &run), csv.into())
                .await?;
            failures.push((run, rows));
        }
    }
    Ok(Followed {
        runs,
        messages,
        refused,
        failures,
    })
}

/// The intake loop: events in, tasks issued, messages deleted; returns when idle long enough.
async fn take_events(
    rt: &Runtime,
    job: &str,
    events: &dyn Queue,
    until: Until,
    touched: &mut BTreeSet<String>,
) -> Result<(u64, Vec<String>), RoleError> {
    let (mut messages, mut reasons) = (0u64, Vec::new());
    let mut refused = BTreeSet::new();
    let mut quiet_since = Instant::now();
    loop {
        let batch = events.receive(10, Duration::from_secs(1)).await?;
        if batch.is_empty() {
            if let Some(idle) = until.idle
                && quiet_since.elapsed() >= idle
                && up_to_date(rt, job, touched).await?
            {
                return Ok((messages, reasons));
            }
            continue;
        }
        let deliveries: Vec<Delivery> = batch
            .iter()
            .map(|d| Delivery {
                body: &d.body,
                receive_count: d.receive_count,
            })
            .collect();
        let outcomes = intake::handle_batch(rt, job, &deliveries).await;
        for (delivery, outcome) in batch.iter().zip(outcomes) {
            let outcome = match outcome {
                Ok(runs) => {
                    messages += 1;
                    touched.extend(runs);
                    quiet_since = Instant::now();
                    Ok(())
                }
                // Not this job's event: left for the queue's dead-letter queue. Seeing it
                // again does not keep the follower from going idle.
                Err(e) if !e.retryable => {
                    if refused.insert(delivery.id.clone()) {
                        tracing::error!(message = %delivery.id, "events queue: {e}");
                        reasons.push(format!("message {}: {e}", delivery.id));
                    }
                    Err(e)
                }
                Err(e) => {
                    quiet_since = Instant::now();
                    Err(e)
                }
            };
            settle(events, &delivery.receipt, outcome, delivery.receive_count).await;
        }
    }
}

/// Every event run touched has nothing pending.
async fn up_to_date(rt: &Runtime, job: &str, runs: &BTreeSet<String>) -> Result<bool, RoleError> {
    for run in runs {
        let progress: Option<Progress> =
            read_json(rt.ports.state.as_ref(), &layout::progress(job, run)).await?;
        if progress.is_some_and(|p| !p.is_idle()) {
            return Ok(false);
        }
    }
    Ok(true)
}
