//! The planner's state and its rounds.
//!
//! The state is the list of ranges not emitted yet, as [`Node`]s that tile the key space from the
//! last emitted cut to the end of the root, each with what is known about it ([`Work`]). A round:
//!
//! 1. split: every probed range estimated above the target is cut into pieces (no I/O);
//! 2. emit: the settled ranges at the front are merged and handed out (see [`State::emit`]);
//! 3. list: the first ranges that need a listing (up to [`ROUND_LISTINGS`] listings), all at
//!    once, with bounded concurrency; their results replace them, in key order.
//!
//! Everything depends only on the state and the listings, never on timing or on which listing
//! finished first, so a plan cut off between rounds and continued elsewhere ends the same.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use super::discover::{self, Counters, Listing};
use super::keys::common_prefix;
use super::split::{self, Probe, Probed};
use super::{KeyRange, PlanOptions, PlanStats, PlannedRange};
use crate::source::{Source, SourceError};

/// Listings per round (a discovery counts its page budget).
pub const ROUND_LISTINGS: u64 = 64;
/// A range is cut into at most this many pieces at once.
const MAX_FANOUT: u64 = 32;
/// What a round is assumed to take before one has been timed.
const FIRST_ROUND_GUESS: Duration = Duration::from_millis(100);

/// A range not emitted yet: the keys in `(lo, hi]` under the root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The cut on the left (`None`: the root's start).
    pub lo: Option<String>,
    /// The cut on the right, included (`None`: the root's end).
    pub hi: Option<String>,
    pub work: Work,
}

/// What is known about a range, and so what it needs next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Work {
    /// One directory found by a delimiter listing, not looked into yet.
    Subtree { prefix: String, depth: u32 },
    /// Not listed yet.
    Unknown,
    /// Probed without reaching its end: about `keys` keys.
    Estimated { keys: u64, probe: Probe },
    /// Estimated above the target, with keys in subdirectories of one directory: list that
    /// directory to estimate it by subdirectory (see `split::Nested`).
    Survey { keys: u64, probe: Probe },
    /// Settled: becomes a shard, alone or merged with its neighbours.
    Done { keys: u64, exact: bool },
}

impl Node {
    fn new(lo: Option<String>, hi: Option<String>, work: Work) -> Node {
        Node { lo, hi, work }
    }

    /// Shards this node stands for in the budget (a settled empty range merges away).
    fn weight(&self) -> u64 {
        u64::from(!matches!(self.work, Work::Done { keys: 0, .. }))
    }
}

/// The part of a plan a cursor carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    nodes: Vec<Node>,
    shards_emitted: u64,
    pub stats: PlanStats,
}

enum Task {
    Discover {
        index: usize,
        prefix: String,
        start_after: Option<String>,
        depth: u32,
    },
    Probe {
        index: usize,
        prefix: String,
        lo: Option<String>,
        hi: Option<String>,
    },
    Survey {
        index: usize,
        dir: String,
        start_after: Option<String>,
    },
}

impl Task {
    fn index(&self) -> usize {
        match self {
            Task::Discover { index, .. }
            | Task::Probe { index, .. }
            | Task::Survey { index, .. } => *index,
        }
    }
}

enum Found {
    Listing(Listing, u32),
    Probe(Probed),
    Survey(Listing),
}

impl State {
    pub fn new(options: &PlanOptions) -> State {
        let root = Work::Subtree {
            prefix: options.prefix.clone(),
            depth: 0,
        };
        State {
            nodes: vec![Node::new(None, None, root)],
            shards_emitted: 0,
            stats: PlanStats::default(),
        }
    }

    /// Runs rounds until the plan is complete (`true`) or the deadline is near (`false`),
    /// returning the ranges emitted meanwhile.
    pub async fn run(
        &mut self,
        source: &dyn Source,
        options: &PlanOptions,
        deadline: Option<Instant>,
    ) -> Result<(Vec<PlannedRange>, bool), SourceError> {
        let counters = Counters::default();
        self.stats.invocations += 1;
        let result = self.rounds(source, options, deadline, &counters).await;
        self.add(&counters);
        result
    }

    async fn rounds(
        &mut self,
        source: &dyn Source,
        options: &PlanOptions,
        deadline: Option<Instant>,
        counters: &Counters,
    ) -> Result<(Vec<PlannedRange>, bool), SourceError> {
        let mut emitted = Vec::new();
        let mut round_time = FIRST_ROUND_GUESS;
        loop {
            self.split_pass(options);
            emitted.extend(self.emit(options, false));
            // Task indices refer to the nodes as they are now, after emission.
            let tasks = self.tasks(options);
            if tasks.is_empty() {
                emitted.extend(self.emit(options, true));
                return Ok((emitted, true));
            }
            if self.over_listing_cap(options, counters) {
                self.give_up();
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() + round_time >= d) {
                return Ok((emitted, false));
            }
            let started = Instant::now();
            let round = run_tasks(source, options, &tasks, counters);
            let found = match deadline {
                None => round.await?,
                Some(d) => match tokio::time::timeout_at(d.into(), round).await {
                    Ok(found) => found?,
                    Err(_) => {
                        self.stats.abandoned_rounds += 1;
                        return Ok((emitted, false));
                    }
                },
            };
            self.apply(options, &tasks, found);
            self.stats.rounds += 1;
            round_time = round_time.max(started.elapsed());
        }
    }

    fn add(&mut self, c: &Counters) {
        let s = &mut self.stats;
        s.list_requests += c.list_requests.load(Ordering::Relaxed);
        s.discovery_requests += c.discovery_requests.load(Ordering::Relaxed);
        s.probe_requests += c.probe_requests.load(Ordering::Relaxed);
        s.keys_read += c.keys_read.load(Ordering::Relaxed);
        s.prefixes_read += c.prefixes_read.load(Ordering::Relaxed);
    }

    /// Shards used: emitted ones plus every range still open (merging only lowers this).
    fn in_use(&self) -> u64 {
        self.shards_emitted + self.nodes.iter().map(Node::weight).sum::<u64>()
    }

    /// A guard against pathological key spaces: listings never exceed a multiple of the shard
    /// budget (plus the discovery pages).
    fn over_listing_cap(&self, options: &PlanOptions, counters: &Counters) -> bool {
        let cap = 8 * options.max_shards + 100 * u64::from(options.discovery_pages);
        self.stats.list_requests + counters.list_requests.load(Ordering::Relaxed) >= cap
    }

    /// Settles every open range as it is.
    fn give_up(&mut self) {
        for node in &mut self.nodes {
            node.work = match &node.work {
                Work::Estimated { keys, .. } | Work::Survey { keys, .. } => Work::Done {
                    keys: *keys,
                    exact: false,
                },
                Work::Done { keys, exact } => Work::Done {
                    keys: *keys,
                    exact: *exact,
                },
                Work::Subtree { .. } | Work::Unknown => Work::Done {
                    keys: 0,
                    exact: false,
                },
            };
        }
    }

    /// The listings of the next round: the first ranges that need one, in key order.
    fn tasks(&self, options: &PlanOptions) -> Vec<Task> {
        let room = self.in_use() < options.max_shards;
        let mut budget = ROUND_LISTINGS;
        let mut tasks = Vec::new();
        for (index, node) in self.nodes.iter().enumerate() {
            let (task, cost) = match &node.work {
                Work::Subtree { prefix, depth } if *depth < options.scan_depth && room => {
                    let start_after = node.lo.clone().filter(|lo| lo >= prefix);
                    let task = Task::Discover {
                        index,
                        prefix: prefix.clone(),
                        start_after,
                        depth: *depth,
                    };
                    (task, u64::from(options.discovery_pages))
                }
                Work::Subtree { .. } | Work::Unknown => {
                    let task = Task::Probe {
                        index,
                        prefix: range_prefix(
                            &options.prefix,
                            node.lo.as_deref(),
                            node.hi.as_deref(),
                        ),
                        lo: node.lo.clone(),
                        hi: node.hi.clone(),
                    };
                    (task, 1)
                }
                Work::Survey { probe, .. } => {
                    let Some(nested) = &probe.nested else {
                        continue;
                    };
                    let dir = nested.dir.clone();
                    let start_after = node.lo.clone().filter(|lo| *lo >= dir);
                    let task = Task::Survey {
                        index,
                        dir,
                        start_after,
                    };
                    (task, u64::from(options.discovery_pages))
                }
                Work::Estimated { .. } | Work::Done { .. } => continue,
            };
            if !tasks.is_empty() && cost > budget {
                break;
            }
            budget = budget.saturating_sub(cost);
            tasks.push(task);
        }
        tasks
    }

    /// Replaces each listed range by what its listing showed, in key order, within the budget.
    fn apply(&mut self, options: &PlanOptions, tasks: &[Task], found: Vec<Found>) {
        let mut in_use = self.in_use();
        let mut replaced: BTreeMap<usize, Vec<Node>> = BTreeMap::new();
        for (task, found) in tasks.iter().zip(found) {
            let node = &self.nodes[task.index()];
            let allowed = (options.max_shards.saturating_sub(in_use) + node.weight()).max(1);
            let nodes = match found {
                Found::Listing(listing, depth) => {
                    discovered(options, node, listing, depth, allowed)
                }
                Found::Probe(probed) => self::probed(options, node, probed, allowed),
                Found::Survey(listing) => surveyed(options, node, listing, allowed),
            };
            in_use = in_use - node.weight() + nodes.iter().map(Node::weight).sum::<u64>();
            replaced.insert(task.index(), nodes);
        }
        self.replace(replaced);
    }

    fn replace(&mut self, mut replaced: BTreeMap<usize, Vec<Node>>) {
        if replaced.is_empty() {
            return;
        }
        let old = std::mem::take(&mut self.nodes);
        for (i, node) in old.into_iter().enumerate() {
            match replaced.remove(&i) {
                Some(nodes) => self.nodes.extend(nodes),
                None => self.nodes.push(node),
            }
        }
    }

    /// Cuts probed ranges estimated above the target, largest first while the budget lasts;
    /// settles the others.
    fn split_pass(&mut self, options: &PlanOptions) {
        let target = options.target_keys_per_shard;
        let mut candidates: Vec<(u64, usize)> = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match n.work {
                Work::Estimated { keys, .. } => Some((keys, i)),
                _ => None,
            })
            .collect();
        candidates.sort_by_key(|&(keys, i)| (std::cmp::Reverse(keys), i));
        let mut in_use = self.in_use();
        let mut replaced = BTreeMap::new();
        for (keys, i) in candidates {
            let node = &mut self.nodes[i];
            if let Work::Estimated { probe, .. } = &node.work
                && keys > target
                && probe.nested.is_some()
            {
                let probe = probe.clone();
                node.work = Work::Survey { keys, probe };
                continue;
            }
            let spare = options.max_shards.saturating_sub(in_use);
            let pieces = keys.div_ceil(target).min(spare + 1).min(MAX_FANOUT);
            let cuts = match &node.work {
                Work::Estimated { probe, .. } if pieces > 1 => {
                    let (root, hi) = (&options.prefix, node.hi.as_deref());
                    let structural = split::structural_cuts(root, hi, probe, pieces);
                    if structural.is_empty() {
                        split::cuts(root, hi, probe, pieces)
                    } else {
                        structural
                    }
                }
                _ => Vec::new(),
            };
            if cuts.is_empty() {
                node.work = Work::Done { keys, exact: false };
                continue;
            }
            in_use += cuts.len() as u64;
            replaced.insert(i, split_estimated(options, node, cuts));
        }
        self.replace(replaced);
    }

    /// Hands out the settled ranges at the front, merged left to right while their sizes add
    /// up to at most the target. The last group stays open (its right neighbour may still join
    /// it) unless `finished`. Greedy merging from a fixed start gives the same groups whenever
    /// it runs, so emitting early never changes the plan.
    fn emit(&mut self, options: &PlanOptions, finished: bool) -> Vec<PlannedRange> {
        let target = options.target_keys_per_shard;
        let mut out = Vec::new();
        let (mut start, mut keys, mut exact) = (0, 0u64, true);
        let mut i = 0;
        while let Some(Work::Done { keys: k, exact: e }) = self.nodes.get(i).map(|n| &n.work) {
            // A range known to be empty never stands alone: it is not counted against
            // `max_shards`, so it joins the group before it, or the one after.
            if i > start && keys > 0 && *k > 0 && keys.saturating_add(*k) > target {
                out.push(self.group(options, start, i, keys, exact));
                (start, keys, exact) = (i, 0, true);
            }
            keys = keys.saturating_add(*k);
            exact &= *e;
            i += 1;
        }
        if finished && i == self.nodes.len() && i > start {
            out.push(self.group(options, start, i, keys, exact));
            start = i;
        }
        self.nodes.drain(..start);
        self.shards_emitted += out.len() as u64;
        out
    }

    fn group(
        &self,
        options: &PlanOptions,
        start: usize,
        end: usize,
        keys: u64,
        exact: bool,
    ) -> PlannedRange {
        PlannedRange {
            range: key_range(
                &options.prefix,
                self.nodes[start].lo.clone(),
                self.nodes[end - 1].hi.clone(),
            ),
            estimated_keys: keys,
            exact,
        }
    }
}

/// Runs one round's listings, at most `list_concurrency` at a time; results in task order.
async fn run_tasks(
    source: &dyn Source,
    options: &PlanOptions,
    tasks: &[Task],
    counters: &Counters,
) -> Result<Vec<Found>, SourceError> {
    // Collected first: a lazy `map` closure here makes the future fail `Send` for callers
    // that spawn it (a higher-ranked lifetime the compiler cannot prove general).
    let listings: Vec<_> = tasks
        .iter()
        .map(|task| async move {
            match task {
                Task::Discover {
                    prefix,
                    start_after,
                    depth,
                    ..
                } => discover::list_level(source, options, prefix, start_after.clone(), counters)
                    .await
                    .map(|l| Found::Listing(l, *depth)),
                Task::Probe { prefix, lo, hi, .. } => split::probe(
                    source,
                    prefix,
                    lo.as_deref(),
                    hi.as_deref(),
                    options.probe_keys,
                    counters,
                )
                .await
                .map(Found::Probe),
                Task::Survey {
                    dir, start_after, ..
                } => discover::list_level(source, options, dir, start_after.clone(), counters)
                    .await
                    .map(Found::Survey),
            }
        })
        .collect();
    stream::iter(listings)
        .buffered(options.list_concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// The groups of a delimiter listing inside `node`, at most `allowed`, cuts tightened and
/// checked; `None` when the listing does not fit the range (a misbehaving store).
fn groups_in(node: &Node, listing: Listing, allowed: u64) -> Option<Vec<discover::Group>> {
    let in_range = |name: &str| {
        node.lo.as_deref().is_none_or(|lo| name > lo)
            && node.hi.as_deref().is_none_or(|hi| name <= hi)
    };
    let listing = Listing {
        entries: listing
            .entries
            .into_iter()
            .filter(|e| match e {
                discover::Entry::Key(k) | discover::Entry::Prefix(k) => in_range(k),
            })
            .collect(),
        complete: listing.complete,
    };
    let mut groups = discover::coarsen(discover::group(&listing), allowed as usize);
    discover::tighten(&mut groups);
    let mut prev = node.lo.as_deref();
    for cut in groups.iter().filter_map(|g| g.hi.as_deref()) {
        let inside = prev.is_none_or(|p| cut > p) && node.hi.as_deref().is_none_or(|h| cut < h);
        if !inside {
            return None;
        }
        prev = Some(cut);
    }
    Some(groups)
}

/// The ranges a delimiter listing of `node` (a directory at `depth`) shows.
fn discovered(
    options: &PlanOptions,
    node: &Node,
    listing: Listing,
    depth: u32,
    allowed: u64,
) -> Vec<Node> {
    let Some(groups) = groups_in(node, listing, allowed) else {
        return vec![Node::new(node.lo.clone(), node.hi.clone(), Work::Unknown)];
    };
    let mut spare = allowed.saturating_sub(groups.len() as u64);
    let mut out = Vec::new();
    let mut lo = node.lo.clone();
    for g in groups {
        let hi = g.hi.clone().or_else(|| node.hi.clone());
        if let Some(keys) = g.only_keys() {
            let pieces = settle_keys(options, lo.clone(), hi.clone(), &keys, spare);
            spare -= pieces.len() as u64 - 1;
            out.extend(pieces);
        } else {
            let work = match g.only_prefix() {
                Some(prefix) => Work::Subtree {
                    prefix: prefix.to_owned(),
                    depth: depth + 1,
                },
                None => Work::Unknown,
            };
            out.push(Node::new(lo.clone(), hi.clone(), work));
        }
        lo = hi;
    }
    out
}

/// The ranges a survey of `node` shows: its directory's entries, each subdirectory estimated
/// at the probe's keys per subdirectory, neighbours merged up to the target.
fn surveyed(options: &PlanOptions, node: &Node, listing: Listing, allowed: u64) -> Vec<Node> {
    let Work::Survey { keys, probe } = &node.work else {
        return vec![node.clone()];
    };
    let per_dir = probe.nested.as_ref().and_then(|n| n.keys_per_dir);
    // Without a usable listing, cut the range by its key space instead.
    let fallback = || {
        let mut probe = probe.clone();
        probe.nested = None;
        let work = Work::Estimated { keys: *keys, probe };
        vec![Node::new(node.lo.clone(), node.hi.clone(), work)]
    };
    let Some(groups) = groups_in(node, listing, allowed) else {
        return fallback();
    };
    let mut out: Vec<Node> = Vec::new();
    let mut lo = node.lo.clone();
    for g in groups {
        let hi = g.hi.clone().or_else(|| node.hi.clone());
        let work = survey_work(options, &g, per_dir);
        match (&work, out.last_mut()) {
            (
                Work::Done { keys, exact },
                Some(Node {
                    hi: prev_hi,
                    work:
                        Work::Done {
                            keys: prev_keys,
                            exact: prev_exact,
                        },
                    ..
                }),
            ) if *prev_keys + *keys <= options.target_keys_per_shard => {
                *prev_keys += *keys;
                *prev_exact &= *exact;
                *prev_hi = hi.clone();
            }
            _ => out.push(Node::new(lo.clone(), hi.clone(), work)),
        }
        lo = hi;
    }
    // Nothing learnt (one open range, the same as before): do not survey it again.
    let same = out.len() == 1 && !matches!(out[0].work, Work::Done { .. });
    if same { fallback() } else { out }
}

/// What a group of a surveyed directory is: keys counted, subdirectories estimated.
fn survey_work(options: &PlanOptions, g: &discover::Group, per_dir: Option<u64>) -> Work {
    if g.remainder {
        return Work::Unknown;
    }
    let dirs = g
        .entries
        .iter()
        .filter(|e| matches!(e, discover::Entry::Prefix(_)))
        .count() as u64;
    let keys = g.entries.len() as u64 - dirs;
    match (per_dir, g.only_prefix()) {
        _ if dirs == 0 => Work::Done { keys, exact: true },
        (Some(per_dir), _) => Work::Done {
            keys: per_dir * dirs + keys,
            exact: false,
        },
        (None, Some(prefix)) => Work::Subtree {
            prefix: prefix.to_owned(),
            depth: options.scan_depth,
        },
        (None, None) => Work::Unknown,
    }
}

/// A run of keys known one by one, as ranges of at most about the target each.
fn settle_keys(
    options: &PlanOptions,
    lo: Option<String>,
    hi: Option<String>,
    keys: &[String],
    spare: u64,
) -> Vec<Node> {
    let cuts = split::key_cuts(keys, options.target_keys_per_shard, spare);
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut lo = lo;
    let mut counted = 0usize;
    for cut in cuts {
        let upto = counted + keys[counted..].iter().take_while(|k| **k <= cut).count();
        let work = Work::Done {
            keys: (upto - counted) as u64,
            exact: true,
        };
        out.push(Node::new(lo, Some(cut.clone()), work));
        counted = upto;
        lo = Some(cut);
    }
    let work = Work::Done {
        keys: (keys.len() - counted) as u64,
        exact: true,
    };
    out.push(Node::new(lo, hi, work));
    out
}

/// What a probe of `node` shows: exact ranges when it saw everything, else an estimate.
fn probed(options: &PlanOptions, node: &Node, probed: Probed, allowed: u64) -> Vec<Node> {
    let (lo, hi) = (node.lo.clone(), node.hi.clone());
    match probed.summary(lo.as_deref()) {
        Some(probe) if !probed.complete => {
            let keys = split::estimate(&options.prefix, hi.as_deref(), &probe);
            vec![Node::new(lo, hi, Work::Estimated { keys, probe })]
        }
        _ => settle_keys(options, lo, hi, &probed.keys, allowed - 1),
    }
}

/// `node` cut at `cuts`: the first piece keeps the probe (re-estimated), the others are unknown.
fn split_estimated(options: &PlanOptions, node: &Node, cuts: Vec<String>) -> Vec<Node> {
    let Work::Estimated { probe, .. } = &node.work else {
        return vec![node.clone()];
    };
    let first_hi = cuts[0].clone();
    let keys = split::estimate(&options.prefix, Some(&first_hi), probe);
    let mut out = vec![Node::new(
        node.lo.clone(),
        Some(first_hi),
        Work::Estimated {
            keys,
            probe: probe.clone(),
        },
    )];
    let mut lo = cuts[0].clone();
    for cut in cuts.into_iter().skip(1) {
        out.push(Node::new(Some(lo), Some(cut.clone()), Work::Unknown));
        lo = cut;
    }
    out.push(Node::new(Some(lo), node.hi.clone(), Work::Unknown));
    out
}

/// The prefix to list `(lo, hi]` with: the common part of its bounds, or the root.
fn range_prefix(root: &str, lo: Option<&str>, hi: Option<&str>) -> String {
    match (lo, hi) {
        (Some(lo), Some(hi)) => {
            let end = format!("{hi}\u{0}");
            let common = common_prefix(lo, &end);
            if common.len() > root.len() && common.starts_with(root) {
                common.to_owned()
            } else {
                root.to_owned()
            }
        }
        _ => root.to_owned(),
    }
}

/// The [`KeyRange`] of `(lo, hi]` under the root.
pub fn key_range(root: &str, lo: Option<String>, hi: Option<String>) -> KeyRange {
    KeyRange {
        prefix: range_prefix(root, lo.as_deref(), hi.as_deref()),
        start_after: lo,
        end: hi.map(|h| format!("{h}\u{0}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ranges_put_the_cut_on_the_left() {
        let left = key_range("", None, Some("b".into()));
        let right = key_range("", Some("b".into()), None);
        for k in ["a", "b", "b\u{0}", "b\u{1}", "ba", "c"] {
            assert!(left.contains(k) != right.contains(k), "{k:?}");
        }
        assert!(left.contains("b") && right.contains("ba"));
    }

    #[test]
    fn key_range_prefix_is_the_common_part_of_its_bounds() {
        let r = key_range("", Some("logs".into()), Some("logs0".into()));
        assert_eq!(r.prefix, "logs");
        let r = key_range("data/", Some("data/a".into()), Some("data/b".into()));
        assert_eq!(r.prefix, "data/");
        let r = key_range("x", Some("xé1".into()), Some("xè".into()));
        assert_eq!(r.prefix, "x");
    }
}
