//! The two messages of the pipeline (architecture §3): a [`ShardTask`] on the work queue, a
//! [`ChunkResult`] on the results queue.
//!
//! Both are JSON with a version field, and both are safe to process twice. A task's id is a
//! hash of what it asks for (job, run, shard, position, work), so the same work planned or
//! handed back twice gets the same id, and the verifier records it once.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::transfer::{ObjectResult, Outcome};

/// The message format version. A reader refuses versions it does not know instead of guessing.
pub const VERSION: u32 = 1;

/// The most key bytes one `Keys` task carries: a quarter of the queue's message limit, so a
/// task stays far inside it whatever else it holds, and a result listing several still goes
/// through the state store by pointer.
pub const MAX_KEYS_BYTES: usize = crate::queue::MAX_MESSAGE_BYTES / 4;

/// One unit of work for a transfer worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardTask {
    /// The message format version ([`VERSION`] when written).
    pub v: u32,
    /// The job this task belongs to.
    pub job: String,
    /// The run of the job this task belongs to.
    pub run: String,
    /// Stable id of the shard this task belongs to (its continuation chain shares it).
    pub shard: String,
    /// Position in the shard's continuation chain.
    pub seq: u32,
    /// How many times this work was handed out again after a failed verification.
    #[serde(default)]
    pub attempt: u32,
    /// What the task asks the worker to do.
    pub work: Work,
}

/// What a task asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Work {
    /// The keys under `prefix` after `start_after` and before `end`: list them, copy them.
    Range {
        /// The source prefix the range lies under.
        prefix: String,
        /// Only keys after this one; `None` starts at the first key under `prefix`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_after: Option<String>,
        /// Only keys before this one; `None` runs to the last key under `prefix`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end: Option<String>,
    },
    /// These objects, by key (re-checks after a failed verification, objects handed back
    /// before a deadline).
    Keys {
        /// The source keys to copy.
        keys: Vec<String>,
        /// Copy without asking the overwrite policy (a re-copy after a failed verification).
        #[serde(default)]
        force: bool,
    },
    /// Parts `first..=last` of one giant object's shared multipart upload; `of` tasks share it,
    /// and the one that finishes last completes it.
    Parts {
        /// The shared multipart upload the parts belong to.
        upload: crate::transfer::parts::SharedUpload,
        /// The first part number of this task (1-based, inclusive).
        first: u32,
        /// The last part number of this task (inclusive).
        last: u32,
        /// How many part tasks share the upload.
        of: u32,
    },
    /// A step of planning: discover and split the source, starting from `cursor` (none for
    /// the first step).
    Plan {
        /// Where planning resumes; `None` for the first step.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<serde_json::Value>,
    },
}

impl Work {
    /// What the work covers, in words, for a report that names what a failed task left
    /// undecided.
    pub fn describe(&self) -> String {
        match self {
            Work::Plan { .. } => "planning of the source (scope unknown)".to_owned(),
            Work::Range {
                prefix,
                start_after,
                end,
            } => {
                let after = start_after
                    .as_deref()
                    .map_or_else(|| "the first key".to_owned(), |k| format!("after {k:?}"));
                let until = end
                    .as_deref()
                    .map_or_else(|| "the end".to_owned(), |k| format!("before {k:?}"));
                format!("keys under {prefix:?} from {after} to {until}")
            }
            Work::Keys { keys, .. } => match keys.as_slice() {
                [one] => format!("the key {one:?}"),
                [first, .., last] => format!("{} keys from {first:?} to {last:?}", keys.len()),
                [] => "no keys".to_owned(),
            },
            Work::Parts {
                upload,
                first,
                last,
                of,
            } => format!(
                "parts {first}..={last} of the {of} part tasks of the object {:?}",
                upload.key
            ),
        }
    }
}

impl ShardTask {
    /// A first task (`seq` as given, attempt 0) at the current message version.
    pub fn new(job: &str, run: &str, shard: &str, seq: u32, work: Work) -> Self {
        ShardTask {
            v: VERSION,
            job: job.to_owned(),
            run: run.to_owned(),
            shard: shard.to_owned(),
            seq,
            attempt: 0,
            work,
        }
    }

    /// The task's id: `<shard>.<seq>.<hash of everything>`. Readable in logs, and two tasks
    /// that ask for different work never share one.
    pub fn id(&self) -> String {
        let body = serde_json::to_vec(self).expect("a task serialises");
        let digest = Sha256::digest(&body);
        format!("{}.{}.{}", self.shard, self.seq, &hex::encode(digest)[..12])
    }

    /// The next task in this shard's chain.
    pub fn continuation(&self, work: Work) -> ShardTask {
        ShardTask {
            seq: self.seq + 1,
            attempt: 0,
            work,
            ..self.clone()
        }
    }

    /// Tasks for `keys` split off this one, as many as it takes for each to stay within
    /// [`MAX_KEYS_BYTES`] of keys: a hand-back or re-check of many long keys would otherwise
    /// exceed the queue's message limit, and a message the queue refuses is work never done.
    pub fn split_keys(
        &self,
        tag: &str,
        keys: Vec<String>,
        force: bool,
        attempt: u32,
    ) -> Vec<ShardTask> {
        let mut tasks = Vec::new();
        let (mut chunk, mut bytes) = (Vec::new(), 0);
        for key in keys {
            // The key as JSON: control characters grow to six bytes each when escaped.
            let size = serde_json::to_string(&key).map_or(key.len() * 6, |k| k.len()) + 1;
            if !chunk.is_empty() && bytes + size > MAX_KEYS_BYTES {
                tasks.push(self.split_off(tag, std::mem::take(&mut chunk), force, attempt));
                bytes = 0;
            }
            bytes += size;
            chunk.push(key);
        }
        if !chunk.is_empty() {
            tasks.push(self.split_off(tag, chunk, force, attempt));
        }
        tasks
    }

    /// A task for `keys` split off this one (handed back before a deadline, or re-checked):
    /// a shard of its own, named after this task and the keys.
    pub fn split_off(&self, tag: &str, keys: Vec<String>, force: bool, attempt: u32) -> ShardTask {
        let mut hasher = Sha256::new();
        hasher.update(self.id().as_bytes());
        hasher.update(tag.as_bytes());
        for key in &keys {
            hasher.update(key.as_bytes());
            hasher.update([0]);
        }
        let shard = format!("{tag}-{}", &hex::encode(hasher.finalize())[..16]);
        ShardTask {
            shard,
            seq: 0,
            attempt,
            work: Work::Keys { keys, force },
            ..self.clone()
        }
    }

    /// The task as a queue message body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a task serialises")
    }

    /// Parses a queue message body, refusing unknown versions.
    pub fn from_json(text: &str) -> Result<ShardTask, MessageError> {
        let task: ShardTask = parse(text, "shard task")?;
        check_version(task.v, "shard task")?;
        Ok(task)
    }
}

/// A shard id derived from what it covers, so planning a run twice gives the same ids.
pub fn shard_id(job: &str, run: &str, range: &Work) -> String {
    let mut hasher = Sha256::new();
    hasher.update(job.as_bytes());
    hasher.update([0]);
    hasher.update(run.as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(range).expect("work serialises"));
    format!("s{}", &hex::encode(hasher.finalize())[..16])
}

/// One object's outcome as the transfer reported it, and as the verifier recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// The object's outcome as the transfer reported it.
    #[serde(flatten)]
    pub result: ObjectResult,
    /// The source object's version id, when one was reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The source object's last-modified time, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
    /// Copied by an earlier delivery of the same task in this run, and adopted (confirmed by
    /// HEAD) instead of copied again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
}

impl From<ObjectResult> for ObjectRecord {
    fn from(result: ObjectResult) -> Self {
        ObjectRecord {
            result,
            version_id: None,
            last_modified: None,
            adopted: false,
        }
    }
}

/// What a task did: its outcomes, and the tasks it handed on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkResult {
    /// The message format version ([`VERSION`] when written).
    pub v: u32,
    /// The task this result is for.
    pub task: ShardTask,
    /// Tasks this task issued (continuation, keys handed back, planned shards). The run is not
    /// complete until each of them has a result too.
    #[serde(default)]
    pub spawned: Vec<ShardTask>,
    /// One record per object the task handled.
    #[serde(default)]
    pub objects: Vec<ObjectRecord>,
    /// Objects listed in the task's range and left out by the job's filters.
    #[serde(default)]
    pub filtered: u64,
    /// The task itself failed (its range could not be listed, its job cannot be read) after
    /// every delivery the queue allows; reported as a failed task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The results-queue message: a result inline, or where to read it when it is too large for
/// a queue message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ResultMessage {
    /// The result, in the message itself.
    Inline {
        /// The task's result.
        result: Box<ChunkResult>,
    },
    /// The result was too large for a queue message and is stored in the state store.
    Stored {
        /// The message format version ([`VERSION`] when written).
        v: u32,
        /// The state-store key the result is stored under.
        key: String,
    },
}

impl ResultMessage {
    /// The message as a results-queue message body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a result serialises")
    }

    /// Parses a results-queue message body, refusing unknown versions.
    pub fn from_json(text: &str) -> Result<ResultMessage, MessageError> {
        let message: ResultMessage = parse(text, "chunk result")?;
        let v = match &message {
            ResultMessage::Inline { result } => result.v,
            ResultMessage::Stored { v, .. } => *v,
        };
        check_version(v, "chunk result")?;
        Ok(message)
    }
}

impl ChunkResult {
    /// An empty result for `task`, at the current message version.
    pub fn new(task: ShardTask) -> Self {
        ChunkResult {
            v: VERSION,
            task,
            spawned: Vec::new(),
            objects: Vec::new(),
            filtered: 0,
            error: None,
        }
    }

    /// Counts of this result's outcomes.
    pub fn tally(&self) -> Tally {
        let mut tally = Tally::default();
        for object in &self.objects {
            tally.add(&object.result);
        }
        tally.filtered = self.filtered;
        tally.failed_tasks = u64::from(self.error.is_some());
        tally
    }
}

/// Outcome counts, added up along the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Objects with an outcome.
    pub objects: u64,
    /// Total size of those objects, in bytes.
    pub bytes: u64,
    /// Objects copied.
    pub copied: u64,
    /// Bytes copied.
    pub copied_bytes: u64,
    /// Objects skipped on purpose (for example already identical at the destination).
    pub skipped: u64,
    /// Objects archived at the source that must be restored before they can be copied.
    pub needs_restore: u64,
    /// Objects that failed to copy.
    pub failed: u64,
    /// Objects listed and left out by the job's filters.
    #[serde(default)]
    pub filtered: u64,
    /// Tasks recorded failed as a whole (their objects are unknown).
    #[serde(default)]
    pub failed_tasks: u64,
}

impl Tally {
    /// The outcomes, for a person: `3 copied (1.5 MiB), 1 skipped, 0 failed, …`.
    pub fn outcomes(&self) -> String {
        format!(
            "{} copied ({:.1} MiB), {} skipped, {} failed, {} need restore, {} filtered out",
            self.copied,
            self.copied_bytes as f64 / 1048576.0,
            self.skipped,
            self.failed,
            self.needs_restore,
            self.filtered
        )
    }

    /// Counts one object's outcome.
    pub fn add(&mut self, result: &ObjectResult) {
        self.objects += 1;
        self.bytes += result.size;
        match &result.outcome {
            Outcome::Copied { .. } => {
                self.copied += 1;
                self.copied_bytes += result.size;
            }
            Outcome::Skipped { .. } => self.skipped += 1,
            Outcome::NeedsRestore => self.needs_restore += 1,
            Outcome::Failed { .. } => self.failed += 1,
        }
    }

    /// Adds another tally's counts to this one.
    pub fn merge(&mut self, other: &Tally) {
        self.objects += other.objects;
        self.bytes += other.bytes;
        self.copied += other.copied;
        self.copied_bytes += other.copied_bytes;
        self.skipped += other.skipped;
        self.needs_restore += other.needs_restore;
        self.failed += other.failed;
        self.filtered += other.filtered;
        self.failed_tasks += other.failed_tasks;
    }
}

/// A message that cannot be read. Never retried: the same bytes would fail the same way.
#[derive(Debug, thiserror::Error)]
#[error("unreadable {what}: {problem}")]
pub struct MessageError {
    /// Which kind of message it was (`shard task`, `chunk result`).
    pub what: &'static str,
    /// What was wrong with it, and where.
    pub problem: String,
}

fn parse<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &'static str,
) -> Result<T, MessageError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| MessageError {
        what,
        problem: format!("at `{}`: {}", e.path(), e.inner()),
    })
}

fn check_version(v: u32, what: &'static str) -> Result<(), MessageError> {
    if v == VERSION {
        Ok(())
    } else {
        Err(MessageError {
            what,
            problem: format!(
                "version {v}, this ferry reads version {VERSION}; run the same ferry version \
                 for the whole run"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: Option<&str>) -> Work {
        Work::Range {
            prefix: "p/".into(),
            start_after: start.map(str::to_owned),
            end: None,
        }
    }

    #[test]
    fn ids_follow_the_work() {
        let a = ShardTask::new("j", "r", "s1", 0, range(None));
        assert_eq!(a.id(), a.clone().id());
        assert_ne!(a.id(), a.continuation(range(Some("k"))).id());
        assert_ne!(
            a.continuation(range(Some("k"))).id(),
            a.continuation(range(Some("l"))).id()
        );
        assert!(a.id().starts_with("s1.0."));
    }

    #[test]
    fn round_trips_and_refuses_other_versions() {
        let task = ShardTask::new("j", "r", "s1", 3, range(Some("k")));
        assert_eq!(ShardTask::from_json(&task.to_json()).unwrap(), task);
        let newer = task.to_json().replace("\"v\":1", "\"v\":2");
        let err = ShardTask::from_json(&newer).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
        let broken = ShardTask::from_json("{\"v\":1,\"job\":3}").unwrap_err();
        assert!(broken.to_string().contains("job"), "{broken}");
    }

    #[test]
    fn split_keys_keeps_every_task_within_the_message_limit() {
        let t = ShardTask::new("j", "r", "s", 0, Work::Plan { cursor: None });
        // 10,000 keys of 150+ bytes: about 1.6 MB in one task, over the queue's limit.
        let keys: Vec<String> = (0..10_000)
            .map(|i| format!("{i:05}/{}\u{1}", "k".repeat(150)))
            .collect();
        let tasks = t.split_keys("rest", keys.clone(), false, 0);
        assert!(tasks.len() > 1);
        let mut seen = Vec::new();
        for task in &tasks {
            assert!(task.to_json().len() <= crate::queue::MAX_MESSAGE_BYTES / 2);
            let Work::Keys { keys, .. } = &task.work else {
                panic!("a keys task")
            };
            seen.extend(keys.iter().cloned());
        }
        assert_eq!(seen, keys, "every key once, in order");
        let shards: std::collections::BTreeSet<_> = tasks.iter().map(|t| &t.shard).collect();
        assert_eq!(
            shards.len(),
            tasks.len(),
            "each chunk is a shard of its own"
        );
        assert_eq!(tasks, t.split_keys("rest", keys, false, 0), "stable ids");
        assert_eq!(t.split_keys("rest", vec![], false, 0), vec![]);
    }

    #[test]
    fn split_off_names_depend_on_keys() {
        let t = ShardTask::new("j", "r", "s1", 0, range(None));
        let a = t.split_off("rest", vec!["a".into()], false, 0);
        let b = t.split_off("rest", vec!["b".into()], false, 0);
        assert_ne!(a.shard, b.shard);
        assert_eq!(
            a.shard,
            t.split_off("rest", vec!["a".into()], false, 0).shard
        );
    }
}
