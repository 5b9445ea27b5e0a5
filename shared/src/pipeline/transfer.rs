//! The transfer role: one shard task in, one chunk result out (architecture §1).
//!
//! For a key range it lists up to the budget (objects, bytes, time), sends the rest of the
//! range back to the work queue as a continuation *before* copying anything — so a long range
//! is walked by a pipeline of workers, and a worker that dies mid-copy loses nothing the
//! continuation does not cover — then copies what it listed, and sends one [`ChunkResult`].
//! Objects it has no time left to start are handed back as a `Keys` task, and so are copies
//! still running at the cutoff (a third of the reserve before the deadline): they are stopped,
//! so an invocation never runs into its deadline (invariant 6); a multipart copy resumes from
//! its recorded parts when the handed-back task reaches it.
//!
//! Redelivery is harmless: the continuation has the same id, and objects this run already
//! wrote are *adopted* (confirmed by HEAD and counted copied) instead of copied again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::message::{ChunkResult, ObjectRecord, ResultMessage, ShardTask, Work};
use super::runtime::{RunHandle, Runtime};
use super::{RoleError, giant, layout, planner};
use crate::job::DeletePolicy;
use crate::source::{ListRequest, ObjectInfo, RestoreOutcome, SourceErrorKind, UnnamableObject};
use crate::transfer::diff::{Decision, Differ, Finding};
use crate::transfer::metadata::STAMP_ETAG;
use crate::transfer::{ArchivePolicy, ObjectResult, Outcome};

/// Results larger than this go to the state store, and the message carries a pointer.
const INLINE_RESULT_LIMIT: usize = 256 * 1024;

/// How a transfer worker budgets its time.
#[derive(Clone, Debug)]
pub struct TransferSettings {
    /// Time kept in hand before the deadline: no listing or new copy starts inside it.
    pub reserve: Duration,
    /// The time a task may take when the invocation has no usable deadline (standalone mode,
    /// cargo-lambda's emulator); `None` for no limit.
    pub time_budget: Option<Duration>,
    /// The queue's delivery limit: the delivery that reaches it records the task's failure
    /// instead of failing again, so the run still completes.
    pub max_receives: u32,
}

impl Default for TransferSettings {
    fn default() -> Self {
        TransferSettings {
            reserve: Duration::from_secs(30),
            time_budget: None,
            max_receives: 5,
        }
    }
}

impl TransferSettings {
    /// The time limits of one invocation: from its deadline if it has a usable one (further
    /// away than the reserve), otherwise from the configured budget, with no cutoff — nothing
    /// stops the process mid-copy then.
    pub fn limits(&self, deadline: Option<Instant>, now: Instant) -> Limits {
        match deadline.filter(|d| *d > now + self.reserve) {
            Some(d) => Limits {
                stop: Some(d - self.reserve),
                cutoff: Some(d - self.reserve / 3),
                last_delivery: false,
            },
            None => Limits {
                stop: self.time_budget.map(|b| now + b),
                cutoff: None,
                last_delivery: false,
            },
        }
    }
}

/// When a task stops starting work, and when it stops the copies still running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// No listing page or new copy starts after this.
    pub stop: Option<Instant>,
    /// Copies still running now are stopped and handed back; the rest of the reserve sends
    /// the hand-back and the result.
    pub cutoff: Option<Instant>,
    /// This is the queue's last delivery of the task: what cannot be decided now is recorded
    /// failed, object by object, instead of failing the task again.
    pub last_delivery: bool,
}

/// One work-queue message as Lambda hands it over: its body and `ApproximateReceiveCount`.
pub struct Delivery<'a> {
    /// The message body (a shard task as JSON).
    pub body: &'a str,
    /// How many times the message has been delivered, this delivery included.
    pub receive_count: u32,
}

/// Handles a batch of work-queue messages one after another; one outcome per message (`Ok`:
/// delete it).
///
/// The batch shares one deadline. A message reached when less than the reserve is left — the
/// ones before it took the time — is not started: it is handed back, sent to the work queue
/// again as it came, and this delivery deleted. It does not count as a delivery that failed,
/// so a long batch never pushes its last tasks towards the dead-letter queue. (An invocation
/// that had no usable deadline to begin with runs by the time budget instead: handing every
/// message back would loop for ever.)
pub async fn handle_batch(
    rt: &Runtime,
    settings: &TransferSettings,
    deliveries: &[Delivery<'_>],
    deadline: Option<Instant>,
) -> Vec<Result<(), RoleError>> {
    let clock = super::BatchClock::new(deadline, settings.reserve);
    let mut outcomes = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        let outcome = match clock.out_of_time() {
            true => hand_back_unstarted(rt, delivery.body).await,
            false => {
                handle(
                    rt,
                    settings,
                    delivery.body,
                    delivery.receive_count,
                    deadline,
                )
                .await
            }
        };
        outcomes.push(outcome);
    }
    outcomes
}

/// Sends a message this invocation has no time to start back to the work queue, unchanged.
/// The task's id is in its body, so a copy that also arrives another way is done once.
async fn hand_back_unstarted(rt: &Runtime, body: &str) -> Result<(), RoleError> {
    tracing::info!("no time left in this invocation; handing the task back unstarted");
    rt.ports.work.send_batch(&[body.to_owned()]).await?;
    Ok(())
}

/// Handles one work-queue message. `Ok` means the message is done and may be deleted; an error
/// means it should be delivered again.
///
/// The delivery that gives up (a permanent error, or the queue's last delivery) records what it
/// got to: the objects it decided, the tasks it had already sent — their results count under
/// this one, so nothing they do is dropped from the run's counts — and the error, with what the
/// task covered, for the report.
pub async fn handle(
    rt: &Runtime,
    settings: &TransferSettings,
    body: &str,
    receive_count: u32,
    deadline: Option<Instant>,
) -> Result<(), RoleError> {
    // An unreadable message cannot be tied to a run; it goes to the dead-letter queue, where
    // the operator sees it.
    let task = ShardTask::from_json(body)?;
    let mut limits = settings.limits(deadline, Instant::now());
    limits.last_delivery = receive_count >= settings.max_receives;
    let mut result = ChunkResult::new(task.clone());
    match do_task(rt, &task, limits, &mut result).await {
        Ok(Step::Recorded | Step::HandedBack) => Ok(()),
        Ok(Step::Done) => send_result(rt, &result).await,
        Err(e) if !e.retryable || limits.last_delivery => {
            tracing::warn!(task = %task.id(), error = %e, "recording the task as failed");
            let error = format!(
                "task failed after {receive_count} deliveries: {}",
                e.message
            );
            if matches!(task.work, Work::Parts { .. }) {
                match giant::give_up(rt, &task, &error).await {
                    // The object is counted (by this task or the one that owns it).
                    Ok(record) => {
                        result.objects.extend(record);
                        return send_result(rt, &result).await;
                    }
                    Err(e) => {
                        tracing::warn!(task = %task.id(), error = %e, "could not mark the upload failed")
                    }
                }
            }
            result.error = Some(error);
            adopt_earlier_continuation(rt, &task, &mut result).await?;
            send_result(rt, &result).await
        }
        Err(e) => Err(e),
    }
}

/// Does one task and sends its result.
pub async fn run_task(rt: &Runtime, task: &ShardTask, limits: Limits) -> Result<(), RoleError> {
    let mut result = ChunkResult::new(task.clone());
    match do_task(rt, task, limits, &mut result).await? {
        Step::Recorded | Step::HandedBack => Ok(()),
        Step::Done => send_result(rt, &result).await,
    }
}

/// How a task ended when it did not fail.
enum Step {
    /// An earlier delivery recorded it; its record was sent to the verifier again.
    Recorded,
    /// `result` is complete and is to be sent.
    Done,
    /// The task was sent to the work queue again, unfinished; that delivery sends the result.
    HandedBack,
}

/// Does one task into `result`. Everything the task sends on is in `result.spawned` as soon as
/// it is sent, so a failure later in the task still accounts for it.
async fn do_task(
    rt: &Runtime,
    task: &ShardTask,
    limits: Limits,
    result: &mut ChunkResult,
) -> Result<Step, RoleError> {
    let stop = limits.stop;
    // A task whose result is already recorded was done by an earlier delivery, which also sent
    // everything it spawned: doing it again would only multiply duplicates down its chain. But
    // the record may never have reached progress (a process killed between the verifier's
    // create-only record and its progress update, then resumed from progress.json): so the
    // recorded result is sent to the verifier again, by pointer. Applying it is idempotent.
    let recorded = layout::result(task);
    if rt.ports.state.get(&recorded).await?.is_some() {
        tracing::info!(task = %task.id(), "already recorded; sending the record to the verifier");
        let message = ResultMessage::Stored {
            v: super::message::VERSION,
            key: recorded,
        };
        rt.ports.results.send_batch(&[message.to_json()]).await?;
        return Ok(Step::Recorded);
    }
    let run = rt.run(&task.job, &task.run).await?;
    match &task.work {
        Work::Plan { cursor } => {
            *result = planner::plan_step(rt, &run, task, cursor.clone(), stop).await?;
        }
        Work::Range {
            prefix,
            start_after,
            end,
        } => {
            let listed =
                list_range(&run, prefix, start_after.clone(), end.as_deref(), stop).await?;
            result.filtered = listed.filtered;
            if let Some(after) = listed.resume_after {
                let next = task.continuation(Work::Range {
                    prefix: prefix.clone(),
                    start_after: Some(after),
                    end: end.clone(),
                });
                // Noted before it is sent (the first delivery's note stays), so a later
                // delivery that fails before sending one still accounts for this one.
                let note = Bytes::from(next.to_json());
                rt.ports
                    .state
                    .put_if_absent(&layout::continuation(task), note)
                    .await?;
                rt.ports.work.send_batch(&[next.to_json()]).await?;
                result.spawned.push(next);
            }
            for o in listed.unnamable {
                match run.in_scope(&o.info) {
                    true => result.objects.push(unnamable_failure(o)),
                    false => result.filtered += 1,
                }
            }
            copy_all(rt, &run, task, listed.objects, false, limits, result).await?;
        }
        Work::Parts {
            upload,
            first,
            last,
            of,
        } => match giant::upload_parts(rt, &run, upload, (*first, *last, *of), stop).await? {
            giant::PartsStep::Reported(record) => result.objects.push(record),
            giant::PartsStep::Done => {}
            // Out of time between parts: the same task again resumes from the proven parts.
            giant::PartsStep::Stopped => {
                rt.ports.work.send_batch(&[task.to_json()]).await?;
                return Ok(Step::HandedBack);
            }
        },
        Work::Keys { keys, force } => {
            let (mut objects, unheaded) = head_keys(&run, keys, limits, result).await?;
            // Keys carried from the previous run were in its scope, and an event names any
            // key under the prefix: the job's filters still apply.
            if task.shard.starts_with(super::planner::CARRIED) || run.is_events() {
                let before = objects.len();
                objects.retain(|o| run.spec().matches(o));
                result.filtered += (before - objects.len()) as u64;
            }
            hand_back_keys(rt, task, "unheaded", unheaded, *force, result).await?;
            copy_all(rt, &run, task, objects, *force, limits, result).await?;
        }
    }
    Ok(Step::Done)
}

/// Sends `keys` back to the work queue as `Keys` tasks split off `task`, and records them as
/// spawned, so their results count under this task's.
async fn hand_back_keys(
    rt: &Runtime,
    task: &ShardTask,
    tag: &str,
    mut keys: Vec<String>,
    force: bool,
    result: &mut ChunkResult,
) -> Result<(), RoleError> {
    if keys.is_empty() {
        return Ok(());
    }
    keys.sort();
    let rest = task.split_keys(tag, keys, force, task.attempt);
    let bodies: Vec<String> = rest.iter().map(ShardTask::to_json).collect();
    rt.ports.work.send_batch(&bodies).await?;
    result.spawned.extend(rest);
    Ok(())
}

/// A range task recorded failed without having sent a continuation itself: if an earlier
/// delivery sent one, that continuation's chain is running and copying the rest of the range,
/// so it is recorded as spawned. Its objects are counted, and the failure covers only the part
/// of the range before it.
async fn adopt_earlier_continuation(
    rt: &Runtime,
    task: &ShardTask,
    result: &mut ChunkResult,
) -> Result<(), RoleError> {
    if !matches!(task.work, Work::Range { .. }) || !result.spawned.is_empty() {
        return Ok(());
    }
    let Some(note) = rt.ports.state.get(&layout::continuation(task)).await? else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(&note.body);
    let earlier = ShardTask::from_json(&text)
        .map_err(|e| RoleError::config(format!("{}: {e}", layout::continuation(task))))?;
    result.spawned.push(earlier);
    Ok(())
}

/// Sends a result to the results queue, through the state store when it is large.
pub async fn send_result(rt: &Runtime, result: &ChunkResult) -> Result<(), RoleError> {
    let inline = ResultMessage::Inline {
        result: Box::new(result.clone()),
    }
    .to_json();
    let message = if inline.len() <= INLINE_RESULT_LIMIT {
        inline
    } else {
        let key = layout::chunk(&result.task);
        let body = serde_json::to_vec(result).expect("a result serialises");
        rt.ports.state.put(&key, body.into()).await?;
        ResultMessage::Stored {
            v: super::message::VERSION,
            key,
        }
        .to_json()
    };
    rt.ports.results.send_batch(&[message]).await?;
    Ok(())
}

struct Listed {
    objects: Vec<ObjectInfo>,
    /// Objects of the range whose keys are not UTF-8: failed by name.
    unnamable: Vec<UnnamableObject>,
    filtered: u64,
    /// Where the rest of the range starts, when the budget ran out first.
    resume_after: Option<String>,
}

/// Lists the range up to the job's per-task budget.
async fn list_range(
    run: &RunHandle,
    prefix: &str,
    start_after: Option<String>,
    end: Option<&str>,
    stop: Option<Instant>,
) -> Result<Listed, RoleError> {
    let sharding = &run.spec().sharding;
    let (max_objects, max_bytes) = (
        sharding.max_keys_per_shard,
        sharding.max_bytes_per_shard.bytes(),
    );
    let mut listed = Listed {
        objects: Vec::new(),
        unnamable: Vec::new(),
        filtered: 0,
        resume_after: None,
    };
    let (mut bytes, mut last) = (0u64, None::<String>);
    let mut order = ListingOrder::new(prefix, start_after.clone());
    let mut req = ListRequest {
        prefix: prefix.to_owned(),
        start_after,
        max_keys: 1000,
        ..Default::default()
    };
    loop {
        let page = run
            .connected
            .source
            .list(&req)
            .await
            .map_err(source_error)?;
        let in_range =
            |o: &UnnamableObject| end.is_none_or(|end| o.bytes.as_slice() < end.as_bytes());
        listed
            .unnamable
            .extend(page.unnamable.into_iter().filter(in_range));
        for object in page.objects {
            order.check(&object.key)?;
            if end.is_some_and(|end| object.key.as_str() >= end) {
                return Ok(listed);
            }
            last = Some(object.key.clone());
            if run.is_carried(&object.key) {
                continue;
            }
            if run.in_scope(&object) {
                bytes += object.size;
                listed.objects.push(object);
            } else {
                listed.filtered += 1;
            }
            let full = listed.objects.len() as u64 >= max_objects || bytes >= max_bytes;
            if full {
                // The continuation lists what comes after `last` again, unnamable keys too.
                let done = last.clone().unwrap_or_default();
                listed
                    .unnamable
                    .retain(|o| o.bytes.as_slice() <= done.as_bytes());
                listed.resume_after = last;
                return Ok(listed);
            }
        }
        match page.next {
            None => return Ok(listed),
            Some(token) if req.continuation.as_ref() == Some(&token) => {
                return Err(untrusted_listing(format!(
                    "the source returned the same continuation token twice under prefix {prefix:?}"
                )));
            }
            Some(token) => req.continuation = Some(token),
        }
        if stop.is_some_and(|s| Instant::now() >= s) && last.is_some() {
            listed.resume_after = last;
            return Ok(listed);
        }
    }
}

/// What a range task takes from a listing on trust: keys under its prefix, strictly
/// ascending from where it started. A store that breaks this (keys out of order, outside the
/// prefix, or `start-after` ignored, which would list the same page for ever) would make the
/// range drop or repeat objects silently, so the task fails with the store's fault named
/// instead, and the report names its range.
struct ListingOrder<'a> {
    prefix: &'a str,
    previous: Option<String>,
}

impl<'a> ListingOrder<'a> {
    fn new(prefix: &'a str, start_after: Option<String>) -> Self {
        ListingOrder {
            prefix,
            previous: start_after,
        }
    }

    fn check(&mut self, key: &str) -> Result<(), RoleError> {
        if !key.starts_with(self.prefix) {
            return Err(untrusted_listing(format!(
                "the source listed {key:?}, outside the prefix {:?}",
                self.prefix
            )));
        }
        if let Some(previous) = &self.previous
            && key <= previous.as_str()
        {
            return Err(untrusted_listing(format!(
                "the source listed {key:?} after {previous:?}: keys out of order (or start-after ignored)"
            )));
        }
        self.previous = Some(key.to_owned());
        Ok(())
    }
}

fn untrusted_listing(what: String) -> RoleError {
    RoleError {
        retryable: false,
        message: format!(
            "{what}; ferry copies only from listings in ascending key order (S3 ListObjectsV2 order), so this range was not copied"
        ),
    }
}

/// An object whose key is not UTF-8 cannot be named at OSS: failed, by the key as listed.
fn unnamable_failure(o: UnnamableObject) -> ObjectRecord {
    let reason = format!(
        "the source key {:?} (percent-encoded as listed) is not UTF-8; OSS object names are UTF-8, so it cannot be copied: rename it at the source",
        o.listed
    );
    ObjectResult {
        key: o.listed,
        size: o.info.size,
        source_etag: o.info.etag,
        outcome: Outcome::Failed {
            reason,
            retryable: false,
        },
        notes: Vec::new(),
    }
    .into()
}

/// Looks up the objects of a `Keys` task. A key gone from the source is reported skipped; a key
/// that cannot be read (403, a permanent error, or any error on the last delivery) is failed
/// with its reason, alone: its neighbours are still copied. Keys not reached by the stop time
/// are returned, to be handed back.
async fn head_keys(
    run: &RunHandle,
    keys: &[String],
    limits: Limits,
    result: &mut ChunkResult,
) -> Result<(Vec<ObjectInfo>, Vec<String>), RoleError> {
    let last_delivery = limits.last_delivery;
    let mut sorted = keys.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut objects = Vec::new();
    let mut pending = sorted.into_iter();
    while let Some(key) = pending.next() {
        // Out of time: the keys not yet described are handed back.
        if limits.stop.is_some_and(|s| Instant::now() >= s) {
            let unheaded = std::iter::once(key).chain(pending).collect();
            return Ok((objects, unheaded));
        }
        let outcome = match run.connected.source.head(&key).await {
            Ok(head) => {
                objects.push(described(head));
                continue;
            }
            Err(e) if e.kind == SourceErrorKind::NotFound && propagates_deletes(run) => {
                match propagate_delete(run, &key, last_delivery).await? {
                    Gone::Counted(outcome) => outcome,
                    Gone::Back(object) => {
                        objects.push(object);
                        continue;
                    }
                }
            }
            // A key the user listed must be there: its absence is theirs to see in failures.
            Err(e) if e.kind == SourceErrorKind::NotFound && run.manifest.key_list => {
                Outcome::Failed {
                    reason: "named by the key list but not at the source".into(),
                    retryable: false,
                }
            }
            Err(e) if e.kind == SourceErrorKind::NotFound => Outcome::Skipped {
                reason: match run.is_events() {
                    true => "not at the source (deleted); the destination keeps what it has".into(),
                    false => "deleted at the source after it was listed".into(),
                },
            },
            Err(e) if e.is_retryable() && !last_delivery => return Err(source_error(e)),
            Err(e) => Outcome::Failed {
                reason: format!("source: {e}"),
                retryable: false,
            },
        };
        result.objects.push(
            ObjectResult {
                key,
                size: 0,
                source_etag: None,
                outcome,
                notes: Vec::new(),
            }
            .into(),
        );
    }
    Ok((objects, Vec::new()))
}

/// Decides and copies `objects` (in key order), up to the stop time; what is left, and what
/// is still running at the cutoff, is handed back as a `Keys` task.
async fn copy_all(
    rt: &Runtime,
    run: &Arc<RunHandle>,
    task: &ShardTask,
    objects: Vec<ObjectInfo>,
    force: bool,
    limits: Limits,
    result: &mut ChunkResult,
) -> Result<(), RoleError> {
    let connected = &run.connected;
    let spec = run.spec();
    let prefix = match &task.work {
        Work::Range { prefix, .. } => prefix.clone(),
        _ => spec.source.prefix().to_owned(),
    };
    if run.is_audit() {
        return audit(run, &prefix, &objects, limits, result).await;
    }
    let decisions = if force {
        vec![Decision::Copy; objects.len()]
    } else {
        let mut differ = Differ::new(&connected.dest, spec.overwrite, &prefix)
            .with_run_start(run.manifest.started);
        match differ.decide(&objects).await {
            Ok(decisions) => decisions,
            // The last delivery counts what it listed and could not decide, each object failed
            // with the reason, rather than leaving them out of the run's counts.
            Err(e) if limits.last_delivery => {
                let reason = format!("destination listing failed, not decided: {e}");
                fail_each(&objects, &reason, result);
                return Ok(());
            }
            Err(e) => return Err(RoleError::retry(format!("destination listing: {e}"))),
        }
    };
    let mut to_copy = Vec::new();
    for (object, decision) in objects.into_iter().zip(decisions) {
        match decision {
            Decision::Skip(reason) => result
                .objects
                .push(record(&object, Outcome::Skipped { reason })),
            decision => to_copy.push((object, decision)),
        }
    }
    // Objects larger than one task's byte budget are spread over part tasks.
    let (giants, to_copy): (Vec<_>, Vec<_>) = to_copy
        .into_iter()
        .partition(|(object, _)| giant::is_giant(run, object.size));
    for (object, decision) in giants {
        if decision == Decision::Adopt
            && let Some(adopted) = adopt(run, &object).await
        {
            result.objects.push(adopted);
            continue;
        }
        match giant::start(rt, run, task, &object.key).await? {
            Ok(tasks) => result.spawned.extend(tasks),
            Err(outcome) => result.objects.push(record(&object, outcome)),
        }
    }
    let copied_from = result.objects.len();
    let left = copy_each(run, to_copy, limits, result).await?;
    hand_back_keys(rt, task, "rest", left, force, result).await?;
    if run.is_events() {
        let changed = changed_since_copied(run, result, copied_from).await?;
        hand_back_keys(rt, task, "changed", changed, false, result).await?;
    }
    Ok(())
}

/// Records every one of `objects` failed for `reason`, for good: the last delivery counts what
/// it listed and could not decide rather than leaving it out of the run's counts.
fn fail_each(objects: &[ObjectInfo], reason: &str, result: &mut ChunkResult) {
    for object in objects {
        let outcome = Outcome::Failed {
            reason: reason.to_owned(),
            retryable: false,
        };
        result.objects.push(record(object, outcome));
    }
}

/// `mode: audit`: compares each object with the destination and records what was found — a
/// match as skipped, anything else as failed with its class — and writes nothing anywhere
/// but the state store. Every object is compared whatever the overwrite policy; a forced
/// (retry) task is compared too.
async fn audit(
    run: &RunHandle,
    prefix: &str,
    objects: &[ObjectInfo],
    limits: Limits,
    result: &mut ChunkResult,
) -> Result<(), RoleError> {
    let mut differ = Differ::new(&run.connected.dest, run.spec().overwrite, prefix);
    let findings = match differ.audit(objects).await {
        Ok(findings) => findings,
        Err(e) if limits.last_delivery => {
            let reason = format!("audit: destination listing failed, not compared: {e}");
            fail_each(objects, &reason, result);
            return Ok(());
        }
        Err(e) => return Err(RoleError::retry(format!("destination listing: {e}"))),
    };
    for (object, finding) in objects.iter().zip(findings) {
        let outcome = match finding {
            Finding::Matches(how) => Outcome::Skipped {
                reason: format!("audit: {how}"),
            },
            Finding::Differs(what) => Outcome::Failed {
                reason: format!("audit: {what}"),
                retryable: false,
            },
        };
        result.objects.push(record(object, outcome));
    }
    Ok(())
}

/// An event run's copies, checked against the source once more after they were written: two
/// events for one key can be copied by two workers at once, and the one that read the older
/// object may write last. A copy whose source has changed since (another ETag now) is taken out
/// of the result and its key returned, to be copied again; the newest write is always followed
/// by a check that sees the newest object, so the destination never ends older than the
/// source. A source that changes after this check sends an event of its own.
async fn changed_since_copied(
    run: &RunHandle,
    result: &mut ChunkResult,
    from: usize,
) -> Result<Vec<String>, RoleError> {
    let mut changed = std::collections::BTreeSet::new();
    for record in &result.objects[from..] {
        if !matches!(record.result.outcome, Outcome::Copied { .. }) {
            continue;
        }
        let now = match run.connected.source.head(&record.result.key).await {
            Ok(head) => head.etag,
            // Deleted since: the copy is of the last object there was.
            Err(e) if e.kind == SourceErrorKind::NotFound => record.result.source_etag.clone(),
            // Nothing is taken out of the result before every check answered.
            Err(e) => return Err(source_error(e)),
        };
        if now != record.result.source_etag {
            tracing::info!(key = %record.result.key, "changed at the source while it was copied; copying again");
            changed.insert(record.result.key.clone());
        }
    }
    let mut i = 0;
    result.objects.retain(|record| {
        i += 1;
        i <= from || !changed.contains(&record.result.key)
    });
    Ok(changed.into_iter().collect())
}

/// Copies `to_copy`, `concurrency` at a time, each copy its own tokio task so a worker's copies
/// use every core. Returns the keys not copied: not started by the stop time, or stopped at the
/// cutoff.
async fn copy_each(
    run: &Arc<RunHandle>,
    to_copy: Vec<(ObjectInfo, Decision)>,
    limits: Limits,
    result: &mut ChunkResult,
) -> Result<Vec<String>, RoleError> {
    let concurrency = run.spec().concurrency.objects.max(1);
    let mut left = Vec::new();
    // The set aborts its copies when dropped: at the cutoff, or if this task is dropped.
    let mut running = tokio::task::JoinSet::new();
    let mut keys = std::collections::HashMap::new();
    let mut pending = to_copy.into_iter();
    loop {
        while running.len() < concurrency {
            let Some((object, decision)) = pending.next() else {
                break;
            };
            if limits.stop.is_some_and(|s| Instant::now() >= s) {
                left.push(object.key);
                continue;
            }
            let run = run.clone();
            let key = object.key.clone();
            let handle = running.spawn(async move { copy_one(&run, &object, decision).await });
            keys.insert(handle.id(), key);
        }
        let next = running.join_next_with_id();
        let joined = match limits.cutoff {
            None => next.await,
            Some(cutoff) => match tokio::time::timeout_at(cutoff.into(), next).await {
                Ok(joined) => joined,
                Err(_) => break,
            },
        };
        match joined {
            Some(Ok((_, record))) => result.objects.push(record),
            Some(Err(e)) => return Err(RoleError::retry(format!("a copy task died: {e}"))),
            None => return Ok(left),
        }
    }
    // The cutoff: copies that finish meanwhile still count; the others are handed back.
    left.extend(pending.map(|(object, _)| object.key));
    running.abort_all();
    while let Some(joined) = running.join_next_with_id().await {
        match joined {
            Ok((_, record)) => result.objects.push(record),
            Err(e) if e.is_cancelled() => left.extend(keys.remove(&e.id())),
            Err(e) => return Err(RoleError::retry(format!("a copy task died: {e}"))),
        }
    }
    tracing::info!(
        handed_back = left.len(),
        "cutoff reached; copies still running handed back"
    );
    Ok(left)
}

async fn copy_one(run: &RunHandle, object: &ObjectInfo, decision: Decision) -> ObjectRecord {
    let copier = &run.connected.copier;
    if decision == Decision::Adopt
        && let Some(adopted) = adopt(run, object).await
    {
        return adopted;
    }
    // The listing (or the HEAD of a `Keys` task) described the object: a small readable one
    // is then copied with one source GET instead of HEAD + GET.
    let mut result = copier.copy_listed(object).await;
    if result.outcome == Outcome::NeedsRestore
        && run.spec().archive.policy == ArchivePolicy::Restore
    {
        let archive = &run.spec().archive;
        let note = match copier
            .source
            .restore(&object.key, archive.days, archive.tier)
            .await
        {
            Ok(RestoreOutcome::Started) => format!("restore requested for {} days", archive.days),
            Ok(RestoreOutcome::AlreadyInProgress) => "restore already in progress".to_owned(),
            Ok(RestoreOutcome::AlreadyRestored) => {
                "already restored; copy on the next run".to_owned()
            }
            Err(e) => format!("restore request failed: {e}"),
        };
        result.notes.push(note);
    }
    ObjectRecord {
        result,
        version_id: None,
        last_modified: object.last_modified,
        adopted: false,
    }
}

/// An object this run wrote before (an earlier delivery of this task): counted copied if the
/// destination carries this source version and a CRC-64, without copying it again.
async fn adopt(run: &RunHandle, object: &ObjectInfo) -> Option<ObjectRecord> {
    let dest = &run.connected.dest;
    let meta = dest.head_object(&dest.key_for(&object.key)).await.ok()?;
    let same = meta.content_length == object.size
        && object.etag.is_some()
        && meta.metadata.get(STAMP_ETAG) == object.etag.as_ref();
    let crc64 = meta.crc64.filter(|_| same)?;
    let multipart = meta.etag.as_deref().is_some_and(|e| e.contains('-'));
    // Marked, not noted: notes on a copied object are what could not be carried, and the
    // report lists each such object.
    let mut adopted = record(object, Outcome::Copied { crc64, multipart });
    adopted.adopted = true;
    Some(adopted)
}

fn record(object: &ObjectInfo, outcome: Outcome) -> ObjectRecord {
    ObjectRecord {
        result: ObjectResult {
            key: object.key.clone(),
            size: object.size,
            source_etag: object.etag.clone(),
            outcome,
            notes: Vec::new(),
        },
        version_id: None,
        last_modified: object.last_modified,
        adopted: false,
    }
}

/// A HEAD's answer as a listing would have described the object.
fn described(head: crate::source::ObjectHead) -> ObjectInfo {
    ObjectInfo {
        key: head.key,
        size: head.size,
        etag: head.etag,
        last_modified: head.last_modified,
        storage_class: head.storage_class,
        archive: head.archive,
    }
}

fn propagates_deletes(run: &RunHandle) -> bool {
    run.is_events() && run.connected.spec.events.delete_policy == DeletePolicy::Propagate
}

/// A key gone at the source, under `delete_policy: propagate`.
enum Gone {
    /// Counted: deleted at the destination too, or kept there, with the reason.
    Counted(Outcome),
    /// Back at the source by the time the destination's copy was deleted: copy it.
    Back(ObjectInfo),
}

/// Deletes the destination's copy of a key the source no longer has — only a copy ferry wrote
/// (it carries ferry's stamp; anything else was written by someone else and stays) — then
/// looks at the source once more: a key written again meanwhile is copied, so a delete racing
/// a re-creation never leaves the destination without the object.
async fn propagate_delete(
    run: &RunHandle,
    key: &str,
    last_delivery: bool,
) -> Result<Gone, RoleError> {
    let dest = &run.connected.dest;
    let dest_key = dest.key_for(key);
    let failed = |what: &str, e: crate::oss::Error| match e.is_retryable() && !last_delivery {
        true => Err(RoleError::retry(format!(
            "destination {what} {dest_key}: {e}"
        ))),
        false => Ok(Gone::Counted(Outcome::Failed {
            reason: format!("deleted at the source; destination {what}: {e}"),
            retryable: false,
        })),
    };
    let skipped = |reason: &str| {
        Ok(Gone::Counted(Outcome::Skipped {
            reason: reason.into(),
        }))
    };
    let meta = match dest.head_object(&dest_key).await {
        Ok(meta) => meta,
        Err(e) if e.is_not_found() => {
            return skipped("deleted at the source; not at the destination either");
        }
        Err(e) => return failed("HEAD", e),
    };
    if !meta.metadata.contains_key(STAMP_ETAG) {
        return skipped(
            "deleted at the source; the destination's object stays: ferry did not write it",
        );
    }
    if let Err(e) = dest.delete_object(&dest_key).await {
        return failed("DELETE", e);
    }
    match run.connected.source.head(key).await {
        Ok(head) => Ok(Gone::Back(described(head))),
        Err(e) if e.kind == SourceErrorKind::NotFound => skipped(
            "deleted at the source, and at the destination too (events.delete_policy: propagate)",
        ),
        Err(e) if e.is_retryable() && !last_delivery => Err(source_error(e)),
        // Deleted at the destination, and the source cannot say whether it is back: the
        // object's own event, if it comes back, copies it.
        Err(e) => Ok(Gone::Counted(Outcome::Failed {
            reason: format!("deleted at both ends; the source could not be read again: {e}"),
            retryable: false,
        })),
    }
}

fn source_error(e: crate::source::SourceError) -> RoleError {
    RoleError {
        retryable: e.is_retryable(),
        message: format!("source: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::ListingOrder;

    #[test]
    fn a_listing_is_taken_only_in_ascending_order_under_its_prefix() {
        let mut order = ListingOrder::new("p/", Some("p/b".into()));
        assert!(order.check("p/c").is_ok());
        assert!(order.check("p/d").is_ok());
        // Out of order, a repeat, and a store that ignored start-after.
        for bad in ["p/a", "p/d", "p/b"] {
            let e = order.check(bad).unwrap_err();
            assert!(!e.retryable);
            assert!(e.message.contains("out of order"), "{}", e.message);
            assert!(e.message.contains(bad), "{}", e.message);
        }
        let e = order.check("q/x").unwrap_err();
        assert!(e.message.contains("outside the prefix"), "{}", e.message);
        assert!(ListingOrder::new("", None).check("").is_ok());
    }
}
