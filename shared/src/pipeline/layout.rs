//! Where a run's documents live in the state store (architecture §4).

use sha2::{Digest, Sha256};

use super::message::ShardTask;

/// The job as last submitted: `jobs/<job>/job.json`.
pub fn job(job: &str) -> String {
    format!("jobs/{job}/job.json")
}

/// The job's watermark (`watermark.json`), where its next incremental run starts from.
pub fn watermark(job: &str) -> String {
    format!("jobs/{job}/watermark.json")
}

/// The job's cut-over times (`ferry cutover`): when ferry's mirror rule was enabled and
/// disabled, and T2.
pub fn cutover(job: &str) -> String {
    format!("jobs/{job}/cutover.json")
}

/// The job's current run, for a standalone restart to find the run it was doing.
pub fn current(job: &str) -> String {
    format!("jobs/{job}/current.json")
}

/// The job's event run for a day (UTC): `events-YYYYMMDD`.
pub fn event_run(day: chrono::NaiveDate) -> String {
    format!("events-{}", day.format("%Y%m%d"))
}

/// The folder of a run's documents: `jobs/<job>/runs/<run>`.
pub fn run_dir(job: &str, run: &str) -> String {
    format!("jobs/{job}/runs/{run}")
}

/// The job as the run was started with it: pinned, so a later start that rewrites the job's
/// job.json (an overlapping run, an edited file) does not change what this run's remaining
/// tasks do.
pub fn run_job(job: &str, run: &str) -> String {
    format!("{}/job.json", run_dir(job, run))
}

/// The run's `manifest.json`: what the run is, fixed when it is created.
pub fn manifest(job: &str, run: &str) -> String {
    format!("{}/manifest.json", run_dir(job, run))
}

/// The run's `progress.json`: issued and pending tasks, and the counts so far.
pub fn progress(job: &str, run: &str) -> String {
    format!("{}/progress.json", run_dir(job, run))
}

/// The run's `report.json`, written once when the run is complete.
pub fn report(job: &str, run: &str) -> String {
    format!("{}/report.json", run_dir(job, run))
}

/// The run's `failures.csv`: every object not copied for a reason the user must act on.
pub fn failures(job: &str, run: &str) -> String {
    format!("{}/failures.csv", run_dir(job, run))
}

/// `carry.json`: the keys a finished run left failed or needing restore, carried into the next
/// incremental run, which tries them again whatever their age.
pub fn carry(job: &str, run: &str) -> String {
    format!("{}/carry.json", run_dir(job, run))
}

/// A task's recorded result: `results/<shard>/<seq>.<hash>.json`, created once.
pub fn result(task: &ShardTask) -> String {
    let id = task.id();
    let rest = id.strip_prefix(&format!("{}.", task.shard)).unwrap_or(&id);
    format!(
        "{}/results/{}/{rest}.json",
        run_dir(&task.job, &task.run),
        task.shard
    )
}

/// The continuation the first delivery of a range task sent, created once before it is sent:
/// a later delivery that fails before sending its own records this one as spawned, so the
/// rest of the range is counted, not orphaned.
pub fn continuation(task: &ShardTask) -> String {
    format!(
        "{}/continuations/{}.json",
        run_dir(&task.job, &task.run),
        task.id()
    )
}

/// A chunk result too large for a queue message.
pub fn chunk(task: &ShardTask) -> String {
    format!(
        "{}/chunks/{}.json",
        run_dir(&task.job, &task.run),
        task.id()
    )
}

/// Which part tasks of a giant object's shared upload are done: one document per upload, so
/// two uploads of one object (twin deliveries of its range task) never mix their parts.
pub fn upload_done(job: &str, run: &str, bucket: &str, key: &str, upload_id: &str) -> String {
    let id = &hex::encode(Sha256::digest(upload_id.as_bytes()))[..16];
    upload(job, run, bucket, key).replace(".json", &format!(".{id}.done.json"))
}

/// Where the proven parts of one upload are recorded: one empty document per part,
/// `uploads/<hash>.<upload>.parts/<number>.<crc64 hex>.json`, so a resume learns every proof
/// from one listing and concurrent part uploads never write the same document.
pub fn upload_proofs(job: &str, run: &str, bucket: &str, key: &str, upload_id: &str) -> String {
    let id = &hex::encode(Sha256::digest(upload_id.as_bytes()))[..16];
    upload(job, run, bucket, key).replace(".json", &format!(".{id}.parts/"))
}

/// A multipart upload in flight for a destination object.
pub fn upload(job: &str, run: &str, bucket: &str, key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(bucket.as_bytes());
    hasher.update([0]);
    hasher.update(key.as_bytes());
    format!(
        "{}/uploads/{}.json",
        run_dir(job, run),
        &hex::encode(hasher.finalize())[..32]
    )
}
