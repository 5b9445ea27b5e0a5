//! Intake: the source's events in, tasks of the job's event run out (architecture §10).
//!
//! An event is a hint to look at a key, not data. Each events-queue message becomes one `Keys`
//! task of the job's **event run** for the event's day (`events-YYYYMMDD`, by the time S3 gave
//! the event): the task heads each key at the source *now* and copies what is there through the
//! normal copy path (the same differ, overwrite policy, proofs, stamps and verifier). So a late
//! or repeated event is satisfied by the current object, and an object deleted since is reported
//! skipped ("not at the source"); nothing is ever deleted at the destination.
//!
//! An event run is a run like the planner's, with its own `progress.json`, except that it is
//! *open*: tasks join it as events arrive ([`Progress::issue`]), and an empty `pending` means
//! "up to date", not "complete". Its tally counts every event message by the outcome of its
//! keys: copied, skipped (identical already, deleted since, filtered), or failed with a reason.
//!
//! Exactly once under duplicates: a message's task id is derived from the events it carries
//! (kind, key, sequencer, ETag, version, time), so SQS's redelivery of it and S3's duplicate
//! notification of the same event name the same task. Issuing reads progress, then looks for
//! the task's recorded result, then writes progress only if nobody wrote in between:
//!
//! * a task whose result is recorded is done: it is not issued again (its counts were taken);
//! * a task that is neither pending nor done joins `pending` *before* it is sent, so a result
//!   never arrives for a task progress does not expect;
//! * a task pending already is sent again only by a redelivery of a message (its first taker
//!   may have died between issuing and sending); a duplicate notification arriving as a
//!   message of its own sends nothing, so the object is not copied twice at once.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::cas::{self, Edit, Layout};
use super::message::{ShardTask, Work};
use super::runtime::{Manifest, RunKind, Runtime, read_json};
use super::transfer::Delivery;
use super::verify::progress::Progress;
use super::{RoleError, layout, planner};
use crate::events::{EventKind, SourceEvent};
use crate::job::JobSpec;
use crate::state::StateStore;

/// The shard tag of event tasks.
pub const EVENT: &str = "event";

/// What one events-queue message asks for: the keys to look at, by event run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Tasks for the keys the events name, for each event run the message touches.
    pub tasks: Vec<EventTask>,
    /// Events that ask for nothing (a test event, a tag or ACL change, a key outside the
    /// job's prefix), with why.
    pub ignored: Vec<String>,
}

/// A task for events, and when the oldest of them happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventTask {
    /// The task for the events' keys.
    pub task: ShardTask,
    /// When the oldest of the events happened.
    pub since: DateTime<Utc>,
}

/// Handles a batch of events-queue messages for `job`; one outcome per message (`Ok`: delete
/// it; it carries the event runs the message's tasks joined). A message that is not an S3
/// event, or an event from another bucket than the job's source, is a permanent error naming
/// why (SQS dead-letters it after its last delivery).
pub async fn handle_batch(
    rt: &Runtime,
    job: &str,
    deliveries: &[Delivery<'_>],
) -> Vec<Result<Vec<String>, RoleError>> {
    let (job_text, spec) = match current_job(rt, job).await {
        Ok(job) => job,
        Err(e) => return deliveries.iter().map(|_| Err(e.clone())).collect(),
    };
    let now = Utc::now();
    let wanted: Vec<Result<Wanted, RoleError>> = deliveries
        .iter()
        .map(|d| wanted(&spec, d.body, now))
        .collect();
    // One progress update per event run for the whole batch.
    let mut by_run: BTreeMap<String, Vec<(EventTask, bool)>> = BTreeMap::new();
    for (w, d) in wanted.iter().zip(deliveries) {
        for t in w.iter().flat_map(|w| &w.tasks) {
            let redelivered = d.receive_count > 1;
            by_run
                .entry(t.task.run.clone())
                .or_default()
                .push((t.clone(), redelivered));
        }
    }
    let mut failed_runs: BTreeMap<String, RoleError> = BTreeMap::new();
    for (run, tasks) in by_run {
        let issued = async {
            let to_send = issue(rt, (job, &job_text), &run, &tasks, now).await?;
            let bodies: Vec<String> = to_send.iter().map(ShardTask::to_json).collect();
            for chunk in bodies.chunks(10) {
                rt.ports.work.send_batch(chunk).await?;
            }
            Ok::<(), RoleError>(())
        }
        .await;
        if let Err(e) = issued {
            failed_runs.insert(run, e);
        }
    }
    wanted
        .into_iter()
        .map(|w| {
            let w = w?;
            for note in &w.ignored {
                tracing::info!(job, "event ignored: {note}");
            }
            if let Some(e) = w.tasks.iter().find_map(|t| failed_runs.get(&t.task.run)) {
                return Err(e.clone());
            }
            let mut runs: Vec<String> = w.tasks.iter().map(|t| t.task.run.clone()).collect();
            runs.dedup();
            Ok(runs)
        })
        .collect()
}

/// The job as last submitted (`jobs/<job>/job.json`): its text and its spec.
async fn current_job(rt: &Runtime, job: &str) -> Result<(String, JobSpec), RoleError> {
    let state = rt.ports.state.as_ref();
    let stored = state.get(&layout::job(job)).await?.ok_or_else(|| {
        RoleError::config(format!(
            "events for job {job:?}, but {} holds no job.json for it: start the job once (its full run) before sending it events",
            state.describe()
        ))
    })?;
    let text = String::from_utf8_lossy(&stored.body).into_owned();
    let spec = JobSpec::from_json(&text)
        .map_err(|e| RoleError::config(format!("stored job.json of {job}: {e}")))?;
    Ok((text, spec))
}

/// What one message asks of the job: a `Keys` task per event run it touches.
pub fn wanted(spec: &JobSpec, body: &str, now: DateTime<Utc>) -> Result<Wanted, RoleError> {
    let events = crate::events::parse(body)
        .map_err(|p| RoleError::config(format!("not an S3 event message: {}", p.0)))?;
    let mut out = Wanted::default();
    let mut keys: BTreeMap<String, Vec<&SourceEvent>> = BTreeMap::new();
    let mut since: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for event in &events {
        if event.bucket != spec.source.bucket() {
            return Err(RoleError::config(format!(
                "an event from bucket {:?}, but job {:?} copies from bucket {:?}: send this job's events queue only that bucket's notifications",
                event.bucket,
                spec.name,
                spec.source.bucket()
            )));
        }
        if !event.key.starts_with(spec.source.prefix()) {
            out.ignored.push(format!(
                "{:?} is outside the job's prefix {:?}",
                event.key,
                spec.source.prefix()
            ));
            continue;
        }
        if event.kind == EventKind::Other {
            out.ignored.push(format!(
                "{} of {:?} changes no bytes",
                event.name, event.key
            ));
            continue;
        }
        let time = event.time.unwrap_or(now);
        let run = layout::event_run(time.date_naive());
        let oldest = since.entry(run.clone()).or_insert(time);
        *oldest = (*oldest).min(time);
        keys.entry(run).or_default().push(event);
    }
    for (run, events) in keys {
        let since = since[&run];
        let tasks = event_tasks(&spec.name, &run, &events);
        out.tasks
            .extend(tasks.into_iter().map(|task| EventTask { task, since }));
    }
    Ok(out)
}

/// The tasks for one message's events of one run, named after the events themselves: a
/// redelivery or a duplicate notification names the same tasks.
fn event_tasks(job: &str, run: &str, events: &[&SourceEvent]) -> Vec<ShardTask> {
    let mut hasher = Sha256::new();
    for e in events {
        for part in [
            Some(e.name.as_str()),
            Some(e.key.as_str()),
            e.sequencer.as_deref(),
            e.etag.as_deref(),
            e.version_id.as_deref(),
        ] {
            hasher.update(part.unwrap_or("").as_bytes());
            hasher.update([0]);
        }
        hasher.update(e.time.map(|t| t.to_rfc3339()).unwrap_or_default());
        hasher.update([1]);
    }
    let shard = format!("{EVENT}s-{}", &hex::encode(hasher.finalize())[..16]);
    let mut keys: Vec<String> = events.iter().map(|e| e.key.clone()).collect();
    keys.sort();
    keys.dedup();
    let message = ShardTask::new(
        job,
        run,
        &shard,
        0,
        Work::Keys {
            keys: Vec::new(),
            force: false,
        },
    );
    message.split_keys(EVENT, keys, false, 0)
}

/// Creates the event run: the job pinned as it is now, a manifest, and open progress, each
/// create-only so racing intakes agree ([`planner::record_run`]).
async fn create_event_run(
    rt: &Runtime,
    job: &str,
    job_text: &str,
    run: &str,
    now: DateTime<Utc>,
) -> Result<(), RoleError> {
    let manifest = Manifest {
        v: super::message::VERSION,
        job: job.to_owned(),
        run: run.to_owned(),
        started: now,
        kind: RunKind::Events,
        since: None,
        carried: None,
        keys_only: false,
        key_list: false,
        // Never issued: an event run's tasks join as events arrive.
        root: ShardTask::new(
            job,
            run,
            EVENT,
            0,
            Work::Keys {
                keys: Vec::new(),
                force: false,
            },
        ),
    };
    planner::record_run(rt.ports.state.as_ref(), job_text, manifest, |m| {
        Progress::open(job, run, m.started)
    })
    .await?;
    Ok(())
}

/// Issues `tasks` into the open run and returns the ones to send: the new ones, and those
/// pending already that came with a redelivered message; none whose result is recorded.
async fn issue(
    rt: &Runtime,
    (job, job_text): (&str, &str),
    run: &str,
    tasks: &[(EventTask, bool)],
    now: DateTime<Utc>,
) -> Result<Vec<ShardTask>, RoleError> {
    let state = rt.ports.state.as_ref();
    let key = layout::progress(job, run);
    if state.get(&key).await?.is_none() {
        // The day's first event: the run is created, then updated like any other.
        create_event_run(rt, job, job_text, run, now).await?;
    }
    let key = &key;
    // Progress is read first, then the records: a task applied after that read changes the
    // version, so the write fails and the edit runs again on a fresh read.
    let (_, to_send) = cas::update_with(state, key, Layout::Compact, |progress| async move {
        let mut progress: Progress = progress.ok_or_else(|| {
            RoleError::retry(format!(
                "{key}: the event run's progress is missing; try again"
            ))
        })?;
        let mut to_send = Vec::new();
        let mut changed = false;
        for (EventTask { task, since }, redelivered) in tasks {
            if progress.pending.contains_key(&task.id()) {
                if *redelivered {
                    to_send.push(task.clone());
                }
                continue;
            }
            if state.get(&layout::result(task)).await?.is_some() {
                continue;
            }
            changed |= progress.issue(task, *since);
            to_send.push(task.clone());
        }
        let decided = if changed {
            Edit::Write(progress)
        } else {
            Edit::Keep(progress)
        };
        Ok((decided, to_send))
    })
    .await?;
    Ok(to_send)
}

/// How far back a restart looks for event runs with tasks still pending.
const RESUME_DAYS: i64 = 7;

/// The tasks still pending in the job's event runs of the last week (for a standalone
/// restart, whose queues died with the process, to send again).
pub async fn pending_event_tasks(rt: &Runtime, job: &str) -> Result<Vec<ShardTask>, RoleError> {
    let runs = recent_event_progress(rt.ports.state.as_ref(), job, Utc::now()).await?;
    Ok(runs
        .into_iter()
        .flat_map(|p| p.pending.into_values())
        .collect())
}

/// The progress of the job's event runs of the week up to `now`, newest first.
pub async fn recent_event_progress(
    state: &dyn StateStore,
    job: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Progress>, RoleError> {
    let today = now.date_naive();
    let mut out = Vec::new();
    for back in 0..=RESUME_DAYS {
        let run = layout::event_run(today - chrono::TimeDelta::days(back));
        if let Some(p) = read_json::<Progress>(state, &layout::progress(job, &run)).await? {
            out.push(p);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> JobSpec {
        let job = json!({
            "version": 1, "name": "photos",
            "source": { "kind": "s3", "bucket": "photos", "prefix": "2024/", "region": "eu-west-1" },
            "destination": { "bucket": "dst", "region": "cn-hangzhou" }
        });
        JobSpec::from_json(&job.to_string()).unwrap()
    }

    fn message(records: &[(&str, &str, &str, &str)]) -> String {
        let records: Vec<_> = records
            .iter()
            .map(|(name, bucket, key, time)| {
                json!({
                    "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
                    "eventTime": time, "eventName": name,
                    "s3": { "s3SchemaVersion": "1.0", "configurationId": "c",
                        "bucket": { "name": bucket, "arn": format!("arn:aws:s3:::{bucket}") },
                        "object": { "key": key, "size": 3, "eTag": "abc", "sequencer": "0A1B" } }
                })
            })
            .collect();
        json!({ "Records": records }).to_string()
    }

    const T: &str = "2026-12-04T10:00:00.000Z";

    #[test]
    fn an_event_names_its_key_in_the_event_run_of_its_day() {
        let body = message(&[("ObjectCreated:Put", "photos", "2024/a+b.jpg", T)]);
        let w = wanted(&spec(), &body, Utc::now()).unwrap();
        let [EventTask { task, since }] = w.tasks.as_slice() else {
            panic!("{w:?}")
        };
        assert_eq!(since.to_rfc3339(), "2026-12-04T10:00:00+00:00");
        assert_eq!(task.run, "events-20261204");
        assert!(task.shard.starts_with("event-"), "{}", task.shard);
        let Work::Keys { keys, force } = &task.work else {
            panic!("{task:?}")
        };
        assert_eq!(keys, &["2024/a b.jpg"]);
        assert!(!force);
        // A redelivery, or S3's duplicate of the same event, names the same task.
        assert_eq!(wanted(&spec(), &body, Utc::now()).unwrap(), w);
        // Another event for the same key is another task.
        let later = message(&[(
            "ObjectCreated:Put",
            "photos",
            "2024/a+b.jpg",
            "2026-12-04T10:00:01Z",
        )]);
        assert_ne!(
            wanted(&spec(), &later, Utc::now()).unwrap().tasks[0]
                .task
                .id(),
            task.id()
        );
    }

    #[test]
    fn deletes_are_looked_at_and_changes_of_no_bytes_are_not() {
        let body = message(&[
            ("ObjectRemoved:Delete", "photos", "2024/gone", T),
            ("ObjectTagging:Put", "photos", "2024/tagged", T),
            ("ObjectCreated:Put", "photos", "2023/old", T),
        ]);
        let w = wanted(&spec(), &body, Utc::now()).unwrap();
        let keys: Vec<_> = w
            .tasks
            .iter()
            .flat_map(|t| match &t.task.work {
                Work::Keys { keys, .. } => keys.clone(),
                _ => vec![],
            })
            .collect();
        assert_eq!(keys, ["2024/gone"]);
        assert_eq!(w.ignored.len(), 2, "{w:?}");
        assert!(
            w.ignored
                .iter()
                .any(|i| i.contains("outside the job's prefix"))
        );
        assert!(w.ignored.iter().any(|i| i.contains("changes no bytes")));
    }

    #[test]
    fn events_of_another_bucket_and_non_events_are_refused_with_the_reason() {
        let body = message(&[("ObjectCreated:Put", "other", "2024/a", T)]);
        let e = wanted(&spec(), &body, Utc::now()).unwrap_err();
        assert!(!e.retryable);
        assert!(
            e.message.contains("\"other\"") && e.message.contains("\"photos\""),
            "{e}"
        );
        let e = wanted(&spec(), "{\"hello\": 1}", Utc::now()).unwrap_err();
        assert!(
            !e.retryable && e.message.contains("not an S3 event message"),
            "{e}"
        );
        let test = json!({"Service":"Amazon S3","Event":"s3:TestEvent","Time":T,"Bucket":"photos"});
        assert_eq!(
            wanted(&spec(), &test.to_string(), Utc::now()).unwrap(),
            Wanted::default()
        );
    }

    #[test]
    fn a_message_spanning_midnight_feeds_both_days() {
        let body = message(&[
            (
                "ObjectCreated:Put",
                "photos",
                "2024/a",
                "2026-12-03T23:59:59.900Z",
            ),
            (
                "ObjectCreated:Put",
                "photos",
                "2024/b",
                "2026-12-04T00:00:00.100Z",
            ),
        ]);
        let w = wanted(&spec(), &body, Utc::now()).unwrap();
        let runs: Vec<_> = w.tasks.iter().map(|t| t.task.run.as_str()).collect();
        assert_eq!(runs, ["events-20261203", "events-20261204"]);
    }
}
