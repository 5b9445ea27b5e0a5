//! Run progress and exact completion (invariants 2 and 3).
//!
//! Every task is *issued* by a result already recorded (the planner's first step is issued when
//! the run is created), and is *done* when its own result is recorded. The run is complete when
//! nothing issued is still waiting for its result. Results may arrive in any order and more
//! than once, so:
//!
//! * a result whose task is pending is applied: its counts are added, it leaves `pending`, and
//!   the tasks it spawned join `pending`;
//! * a result whose task is not pending is parked in `early`: either its parent's result has not
//!   arrived yet (then applying the parent applies it too), or it was applied already or belongs
//!   to an execution whose result lost the race (then nothing ever claims it and it is dropped
//!   when the run completes). Counts are only ever added on apply, and each task leaves
//!   `pending` once, so a duplicate never counts twice.
//!
//! `pending` holds whole tasks, not just ids, so a standalone run killed at any moment can put
//! its outstanding work back on a fresh queue. Both maps hold only work in flight, so this
//! document stays small however large the run.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::pipeline::message::{ShardTask, Tally};

/// `progress.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The document's format version.
    pub v: u32,
    /// The job's name.
    pub job: String,
    /// The run's id.
    pub run: String,
    /// When the run was created.
    pub started: DateTime<Utc>,
    /// Issued tasks still waiting for their result, by task id.
    pub pending: BTreeMap<String, ShardTask>,
    /// Results recorded before their task was issued, by task id.
    #[serde(default)]
    pub early: BTreeMap<String, Parked>,
    /// Counts over every applied result.
    pub tally: Tally,
    /// Tasks whose results were applied.
    pub tasks_done: u64,
    /// When the run completed (nothing issued left pending); `None` until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime<Utc>>,
    /// An event run: tasks join it as events arrive ([`Progress::issue`]), so an empty
    /// `pending` means "up to date", not "complete"; it never completes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open: bool,
    /// Open runs: for each pending task, when the oldest event it stands for happened (the
    /// tasks a task spawns inherit its time), so the run can say how far behind it is.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub waiting: BTreeMap<String, DateTime<Utc>>,
}

/// A result waiting for its task to be issued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parked {
    /// The result's counts, added when it is applied.
    pub tally: Tally,
    /// The tasks the result issued, which join `pending` when it is applied.
    pub spawned: Vec<ShardTask>,
}

impl Progress {
    /// A new run whose first issued tasks are `roots`.
    pub fn new(job: &str, run: &str, started: DateTime<Utc>, roots: &[ShardTask]) -> Self {
        Progress {
            v: crate::pipeline::message::VERSION,
            job: job.to_owned(),
            run: run.to_owned(),
            started,
            pending: roots.iter().map(|t| (t.id(), t.clone())).collect(),
            early: BTreeMap::new(),
            tally: Tally::default(),
            tasks_done: 0,
            finished: None,
            open: false,
            waiting: BTreeMap::new(),
        }
    }

    /// A new event run: open, nothing issued yet.
    pub fn open(job: &str, run: &str, started: DateTime<Utc>) -> Self {
        Progress {
            open: true,
            ..Progress::new(job, run, started, &[])
        }
    }

    /// Issues a task into an open run, for events that happened at `since`. Returns whether
    /// it was added: false when it is pending already. The caller must know it is not done
    /// (its result not recorded), since done tasks leave no trace here.
    pub fn issue(&mut self, task: &ShardTask, since: DateTime<Utc>) -> bool {
        let id = task.id();
        if self.pending.contains_key(&id) {
            return false;
        }
        self.waiting.insert(id.clone(), since);
        match self.early.remove(&id) {
            // Its result came first (a stray execution): applied now, like a parent's child.
            Some(parked) => {
                self.pending.insert(id.clone(), task.clone());
                self.apply(&id, parked.tally, parked.spawned);
            }
            None => {
                self.pending.insert(id, task.clone());
            }
        }
        true
    }

    /// Records one task's result. Returns whether anything changed (a duplicate of an applied
    /// result changes nothing the counts or completion depend on).
    pub fn record(&mut self, task_id: &str, tally: &Tally, spawned: &[ShardTask]) -> bool {
        if self.is_complete() {
            return false;
        }
        if self.pending.contains_key(task_id) {
            self.apply(task_id, tally.clone(), spawned.to_vec());
            if self.is_complete() {
                // Whatever is still parked was never issued by a recorded result.
                self.early.clear();
            }
            return true;
        }
        if self.early.contains_key(task_id) {
            return false;
        }
        self.early.insert(
            task_id.to_owned(),
            Parked {
                tally: tally.clone(),
                spawned: spawned.to_vec(),
            },
        );
        true
    }

    fn apply(&mut self, task_id: &str, tally: Tally, spawned: Vec<ShardTask>) {
        let mut work = vec![(task_id.to_owned(), tally, spawned)];
        while let Some((id, tally, spawned)) = work.pop() {
            self.pending.remove(&id);
            let since = self.waiting.remove(&id);
            self.tally.merge(&tally);
            self.tasks_done += 1;
            for child in spawned {
                let child_id = child.id();
                if let Some(since) = since {
                    self.waiting.insert(child_id.clone(), since);
                }
                match self.early.remove(&child_id) {
                    Some(parked) => work.push((child_id, parked.tally, parked.spawned)),
                    None => {
                        self.pending.insert(child_id, child);
                    }
                }
            }
        }
    }

    /// Every issued task has its result, and no more can be issued.
    pub fn is_complete(&self) -> bool {
        !self.open && self.pending.is_empty()
    }

    /// Open runs: when the oldest event not yet copied happened.
    pub fn oldest_waiting(&self) -> Option<DateTime<Utc>> {
        self.waiting.values().min().copied()
    }

    /// Every issued task has its result (for an open run: up to date, for now).
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::message::Work;
    use proptest::prelude::*;

    fn task(shard: &str, seq: u32) -> ShardTask {
        ShardTask::new(
            "j",
            "r",
            shard,
            seq,
            Work::Keys {
                keys: vec![],
                force: false,
            },
        )
    }

    fn tally(objects: u64) -> Tally {
        Tally {
            objects,
            copied: objects,
            ..Tally::default()
        }
    }

    /// A tree of tasks: node i's children, and each node's object count.
    #[derive(Debug, Clone)]
    struct Tree {
        tasks: Vec<ShardTask>,
        children: Vec<Vec<usize>>,
        objects: Vec<u64>,
    }

    fn tree() -> impl Strategy<Value = Tree> {
        // Each node after the root picks an earlier node as its parent.
        (1usize..40)
            .prop_flat_map(|n| {
                let parents: Vec<_> = (1..n).map(|i| 0..i).collect();
                (parents, proptest::collection::vec(0u64..50, n))
            })
            .prop_map(|(parents, objects)| {
                let n = objects.len();
                let tasks = (0..n).map(|i| task(&format!("s{i}"), 0)).collect();
                let mut children = vec![Vec::new(); n];
                for (i, p) in parents.into_iter().enumerate() {
                    children[p].push(i + 1);
                }
                Tree {
                    tasks,
                    children,
                    objects,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Results delivered in any order, each any number of times, with strays mixed in:
        /// the run completes exactly when the last distinct result arrives, with exact counts.
        #[test]
        fn completion_is_exact(
            tree in tree(),
            order in proptest::collection::vec(any::<prop::sample::Index>(), 1..120),
            strays in proptest::collection::vec(0u64..50, 0..4),
        ) {
            let n = tree.tasks.len();
            // Every node at least once, then random duplicates, in a shuffled order.
            let mut deliveries: Vec<usize> = (0..n).collect();
            deliveries.extend(order.iter().map(|i| i.index(n)));
            let mut shuffled = Vec::new();
            for (k, i) in order.iter().enumerate() {
                if !deliveries.is_empty() {
                    let at = i.index(deliveries.len());
                    shuffled.push(deliveries.remove(at));
                }
                if k % 7 == 0 && k / 7 < strays.len() {
                    shuffled.push(usize::MAX - k);
                }
            }
            shuffled.extend(deliveries);

            let mut progress = Progress::new("j", "r", Utc::now(), &tree.tasks[..1]);
            let mut seen = std::collections::BTreeSet::new();
            for d in shuffled {
                if d >= n {
                    let stray = task(&format!("stray{d}"), 0);
                    progress.record(&stray.id(), &tally(1000), &[]);
                    continue;
                }
                seen.insert(d);
                let spawned: Vec<_> = tree.children[d].iter().map(|&c| tree.tasks[c].clone()).collect();
                progress.record(&tree.tasks[d].id(), &tally(tree.objects[d]), &spawned);
                if seen.len() < n {
                    prop_assert!(!progress.is_complete());
                }
            }
            prop_assert!(progress.is_complete());
            prop_assert_eq!(progress.tally.objects, tree.objects.iter().sum::<u64>());
            prop_assert_eq!(progress.tasks_done, n as u64);
            prop_assert!(progress.early.is_empty());
        }
    }

    #[test]
    fn an_open_run_knows_how_far_behind_it_is_until_the_last_child_is_done() {
        let at = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        let mut progress = Progress::open("j", "r", at(0));
        let (a, b, child) = (task("a", 0), task("b", 0), task("child", 0));
        assert!(progress.issue(&a, at(10)));
        assert!(progress.issue(&b, at(20)));
        assert!(!progress.issue(&a, at(30)), "pending already");
        assert_eq!(progress.oldest_waiting(), Some(at(10)));
        // `a` hands part of its work to a child: the child still stands for the old event.
        progress.record(&a.id(), &tally(1), std::slice::from_ref(&child));
        assert_eq!(progress.oldest_waiting(), Some(at(10)));
        progress.record(&child.id(), &tally(1), &[]);
        assert_eq!(progress.oldest_waiting(), Some(at(20)));
        progress.record(&b.id(), &tally(1), &[]);
        assert_eq!(progress.oldest_waiting(), None);
        assert!(
            progress.is_idle() && !progress.is_complete(),
            "open runs never complete"
        );
        assert_eq!(progress.tally.objects, 3);
    }

    #[test]
    fn child_before_parent_is_not_completion() {
        let root = task("root", 0);
        let child = task("child", 0);
        let mut progress = Progress::new("j", "r", Utc::now(), std::slice::from_ref(&root));
        progress.record(&child.id(), &tally(2), &[]);
        assert!(!progress.is_complete());
        progress.record(&root.id(), &tally(1), std::slice::from_ref(&child));
        assert!(progress.is_complete());
        assert_eq!(progress.tally.objects, 3);
    }
}
