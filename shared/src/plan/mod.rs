//! # Planning: cutting a bucket into key ranges
//!
//! The planner turns "everything under a prefix" (the *root*) into [`KeyRange`]s that transfer workers list
//! and copy independently (architecture §1, §3 `Work::Range`). It must do so in bounded
//! time and memory whatever the bucket size, so it never lists every object: it reads a few
//! pages to learn the bucket's shape and guesses the rest.
//!
//! ## How
//!
//! 1. **Discovery.** A delimiter (`/`) listing of the root, and of each "directory" found, down
//!    to [`PlanOptions::scan_depth`] levels, with up to [`PlanOptions::list_concurrency`]
//!    listings in flight. Directories become ranges of their own; runs of plain keys between
//!    them become ranges whose size is known exactly. A level that turns out flat (mostly keys,
//!    more than a page) is not read further: the rest of it goes to step 2.
//! 2. **Splitting.** A range whose size is unknown is *probed*: one listing of
//!    [`PlanOptions::probe_keys`] keys from its start. If the probe reaches the range's end the
//!    size is exact; otherwise the spacing of the probed keys gives an estimate (see `keys.rs`)
//!    and a range estimated above [`PlanOptions::target_keys_per_shard`] is cut into pieces at
//!    strings between its last probed key and its end. Every piece is probed in turn, so a bad
//!    guess is corrected by the next probe; empty pieces cost one request and merge away.
//! 3. **Emission.** Settled ranges are merged left to right while their sizes add up to at most
//!    the target, and emitted in key order. At most [`PlanOptions::max_shards`] ranges come out.
//!
//! Keys read are bounded by (listings × page size), and listings by a small multiple of
//! `max_shards` plus the discovery pages — never by the bucket size. [`PlanStats`] counts them.
//!
//! ## Exact cover, by construction
//!
//! Ranges are the intervals between sorted *cuts*: a cut `c` sends every key `<= c` to the range
//! on its left and every key `> c` to the one on its right. Whatever the listings said, and even
//! for keys created after planning, every key under the root falls in exactly one range. A
//! range's `start_after` is its left cut; its `end` (exclusive) is its right cut followed by
//! U+0000 — the smallest string above the cut — so `key < end` means `key <= cut`. Cuts are keys
//! that were listed, directory ends (`logs/` → `logs0`), or strings made between keys; all are
//! valid UTF-8 and under 1024 bytes (OSS's `start-after` limit). `end` is never sent to a store.
//!
//! ## Bounded time
//!
//! Work proceeds in rounds of at most 64 listings. Before a round the planner checks that the
//! round still fits before the deadline (judged by its longest round so far); a round the
//! deadline interrupts is dropped. Then it returns what it has settled, with a [`PlanCursor`]
//! (serde) for [`plan_continue`] in a fresh invocation. A continued plan emits exactly the ranges
//! the uninterrupted plan would have emitted after that point: rounds are deterministic (same
//! listings → same ranges, in the same order), which shard ids depend on.

mod discover;
mod engine;
mod keys;
mod split;
pub mod survey;

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::source::{Source, SourceError};

pub use keys::MAX_CUT_BYTES;

/// The keys `K` with `K` starting with `prefix`, `K > start_after` (if any) and `K < end`
/// (if any), in UTF-8 byte order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyRange {
    /// Only keys starting with this prefix.
    pub prefix: String,
    /// Only keys after this one (the range's left cut); `None` from the first key.
    #[serde(default)]
    pub start_after: Option<String>,
    /// Only keys before this one (exclusive); `None` up to the last key under `prefix`.
    #[serde(default)]
    pub end: Option<String>,
}

impl KeyRange {
    /// Every key under `prefix`.
    pub fn whole(prefix: impl Into<String>) -> Self {
        KeyRange {
            prefix: prefix.into(),
            start_after: None,
            end: None,
        }
    }

    /// Whether `key` falls in the range.
    pub fn contains(&self, key: &str) -> bool {
        key.starts_with(&self.prefix)
            && self.start_after.as_deref().is_none_or(|s| key > s)
            && self.end.as_deref().is_none_or(|e| key < e)
    }
}

/// How to plan. `Default` suits buckets of any size; every field is checked by
/// [`PlanOptions::validate`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanOptions {
    /// Plan the keys under this prefix ("" for the whole bucket): the plan's root.
    pub prefix: String,
    /// Levels of delimiter listing: 0 lists none, 1 the root only, 2 the root and each
    /// directory found in it, … (default 2).
    pub scan_depth: u32,
    /// Listings in flight at once (1–64, default 16). Does not change the plan.
    pub list_concurrency: usize,
    /// Keys per probe listing (2–1000, default 100). Larger probes estimate better and read
    /// more.
    pub probe_keys: u32,
    /// A range is small enough to be one shard at about this many keys (default 10,000).
    pub target_keys_per_shard: u64,
    /// At most this many ranges (default 10,000).
    pub max_shards: u64,
    /// Pages read per delimiter listing before the rest of a level is left to probes
    /// (1–100, default 2).
    pub discovery_pages: u32,
    /// Entries per delimiter listing page (1–1000, default 1000).
    pub discovery_page_keys: u32,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            prefix: String::new(),
            scan_depth: 2,
            list_concurrency: 16,
            probe_keys: 100,
            target_keys_per_shard: 10_000,
            max_shards: 10_000,
            discovery_pages: 2,
            discovery_page_keys: 1000,
        }
    }
}

impl PlanOptions {
    /// Checks every field; the error names the field, its value and the fix.
    pub fn validate(&self) -> Result<(), PlanError> {
        let bad = |field: &'static str, value: String, fix: &str| {
            Err(PlanError::Options {
                field,
                value,
                fix: fix.to_owned(),
            })
        };
        if self.prefix.len() > MAX_CUT_BYTES {
            return bad(
                "prefix",
                format!("{} bytes", self.prefix.len()),
                "use a prefix shorter than 1024 bytes",
            );
        }
        if !(1..=engine::ROUND_LISTINGS as usize).contains(&self.list_concurrency) {
            return bad(
                "list_concurrency",
                self.list_concurrency.to_string(),
                "use 1 to 64 (16 is the default)",
            );
        }
        if !(2..=1000).contains(&self.probe_keys) {
            return bad(
                "probe_keys",
                self.probe_keys.to_string(),
                "use 2 to 1000 (100 is the default)",
            );
        }
        if self.target_keys_per_shard == 0 {
            return bad("target_keys_per_shard", "0".into(), "use at least 1");
        }
        if self.max_shards == 0 {
            return bad("max_shards", "0".into(), "use at least 1");
        }
        if !(1..=100).contains(&self.discovery_pages) {
            return bad(
                "discovery_pages",
                self.discovery_pages.to_string(),
                "use 1 to 100 (2 is the default)",
            );
        }
        if !(1..=1000).contains(&self.discovery_page_keys) {
            return bad(
                "discovery_page_keys",
                self.discovery_page_keys.to_string(),
                "use 1 to 1000 (1000 is the default)",
            );
        }
        Ok(())
    }

    /// The first field (other than `list_concurrency`) where `self` and `other` differ.
    fn shape_difference(&self, other: &PlanOptions) -> Option<(&'static str, String, String)> {
        let fields: [(&'static str, String, String); 7] = [
            (
                "prefix",
                format!("{:?}", self.prefix),
                format!("{:?}", other.prefix),
            ),
            (
                "scan_depth",
                self.scan_depth.to_string(),
                other.scan_depth.to_string(),
            ),
            (
                "probe_keys",
                self.probe_keys.to_string(),
                other.probe_keys.to_string(),
            ),
            (
                "target_keys_per_shard",
                self.target_keys_per_shard.to_string(),
                other.target_keys_per_shard.to_string(),
            ),
            (
                "max_shards",
                self.max_shards.to_string(),
                other.max_shards.to_string(),
            ),
            (
                "discovery_pages",
                self.discovery_pages.to_string(),
                other.discovery_pages.to_string(),
            ),
            (
                "discovery_page_keys",
                self.discovery_page_keys.to_string(),
                other.discovery_page_keys.to_string(),
            ),
        ];
        fields.into_iter().find(|(_, a, b)| a != b)
    }
}

/// One range of the plan, with what the planner knows of its size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRange {
    /// The keys the range covers.
    pub range: KeyRange,
    /// Keys in the range when it was planned: counted if `exact`, else estimated from probes.
    pub estimated_keys: u64,
    /// Whether `estimated_keys` was counted (true) or estimated from probes (false).
    pub exact: bool,
}

/// Counters of the planner's work, summed over every invocation of one plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlanStats {
    /// List requests sent (delimiter listings and probes).
    pub list_requests: u64,
    /// Delimiter listing pages among them.
    pub discovery_requests: u64,
    /// Probe listings among them.
    pub probe_requests: u64,
    /// Objects the listings returned: what the planner read.
    pub keys_read: u64,
    /// Common prefixes ("directories") the delimiter listings returned.
    pub prefixes_read: u64,
    /// Rounds of listings applied.
    pub rounds: u64,
    /// Rounds the deadline cut off (redone by the next invocation).
    pub abandoned_rounds: u64,
    /// Calls of `plan_ranges` / `plan_continue`.
    pub invocations: u64,
}

/// Where a plan stopped: pass it to [`plan_continue`]. Serializable so a fresh invocation (a
/// new Lambda) can pick it up; its size grows with the ranges not yet emitted (at most
/// `max_shards`, typically a few hundred bytes each).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanCursor {
    version: u32,
    options: PlanOptions,
    state: engine::State,
}

const CURSOR_VERSION: u32 = 1;

impl PlanCursor {
    /// Counters so far.
    pub fn stats(&self) -> &PlanStats {
        &self.state.stats
    }
}

/// What one invocation produced. In both cases `ranges` are the ranges settled by this
/// invocation, in key order; ranges emitted by earlier invocations of the same plan are never
/// repeated, and `stats` count every invocation of this plan so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanOutcome {
    /// The plan is complete.
    Complete {
        /// The ranges settled by this invocation, in key order.
        ranges: Vec<PlannedRange>,
        /// Counters over every invocation of this plan.
        stats: PlanStats,
    },
    /// The deadline came first: continue with [`plan_continue`] and `cursor`.
    Partial {
        /// The ranges settled by this invocation, in key order.
        ranges: Vec<PlannedRange>,
        /// Where to continue the plan.
        cursor: PlanCursor,
        /// Counters over every invocation of this plan so far.
        stats: PlanStats,
    },
}

impl PlanOutcome {
    /// Whether the plan is complete (no cursor to continue with).
    pub fn is_complete(&self) -> bool {
        matches!(self, PlanOutcome::Complete { .. })
    }

    /// The ranges settled by this invocation, in key order.
    pub fn ranges(&self) -> &[PlannedRange] {
        match self {
            PlanOutcome::Complete { ranges, .. } | PlanOutcome::Partial { ranges, .. } => ranges,
        }
    }

    /// Counters over every invocation of this plan so far.
    pub fn stats(&self) -> &PlanStats {
        match self {
            PlanOutcome::Complete { stats, .. } | PlanOutcome::Partial { stats, .. } => stats,
        }
    }

    /// The ranges, and the cursor to continue with (`None` when complete).
    pub fn into_parts(self) -> (Vec<PlannedRange>, Option<PlanCursor>) {
        match self {
            PlanOutcome::Complete { ranges, .. } => (ranges, None),
            PlanOutcome::Partial { ranges, cursor, .. } => (ranges, Some(cursor)),
        }
    }
}

/// Why planning failed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A listing failed (after the adapter's own retries). Nothing was lost: call again with the
    /// last cursor you received (or from the start); the ranges come out the same.
    #[error("planning failed: {0}")]
    Source(#[from] SourceError),
    /// A plan option is out of range.
    #[error("plan option `{field}` = {value} is out of range; {fix}")]
    Options {
        /// The option's name.
        field: &'static str,
        /// The value given.
        value: String,
        /// What to use instead.
        fix: String,
    },
    /// A cursor was continued with options other than those the plan started with.
    #[error(
        "the plan cursor was made with `{field}` = {cursor}, but this call passes {given}; continue with the options the plan started with"
    )]
    CursorMismatch {
        /// The first option that differs.
        field: &'static str,
        /// Its value in the cursor.
        cursor: String,
        /// Its value in this call.
        given: String,
    },
    /// The cursor was written in a format version this build cannot read.
    #[error(
        "plan cursor version {0} cannot be read by this build (it reads version {CURSOR_VERSION}); start the plan again"
    )]
    CursorVersion(u32),
}

/// For callers that handle source errors only: option and cursor errors are permanent.
impl From<PlanError> for SourceError {
    fn from(e: PlanError) -> SourceError {
        match e {
            PlanError::Source(e) => e,
            other => SourceError::new(
                crate::source::SourceErrorKind::Permanent,
                "plan",
                other.to_string(),
            ),
        }
    }
}

/// Plans the keys under `options.prefix`. With a `deadline`, stops in time and returns a cursor
/// instead of running into it (a deadline already past returns at once, having listed nothing).
pub async fn plan_ranges(
    source: &dyn Source,
    options: &PlanOptions,
    deadline: Option<Instant>,
) -> Result<PlanOutcome, PlanError> {
    options.validate()?;
    let state = engine::State::new(options);
    run(source, options, state, deadline).await
}

/// Continues a plan from the cursor of an earlier invocation, with the same options
/// (`list_concurrency` may differ).
pub async fn plan_continue(
    source: &dyn Source,
    options: &PlanOptions,
    cursor: PlanCursor,
    deadline: Option<Instant>,
) -> Result<PlanOutcome, PlanError> {
    options.validate()?;
    if cursor.version != CURSOR_VERSION {
        return Err(PlanError::CursorVersion(cursor.version));
    }
    if let Some((field, was, now)) = cursor.options.shape_difference(options) {
        return Err(PlanError::CursorMismatch {
            field,
            cursor: was,
            given: now,
        });
    }
    run(source, options, cursor.state, deadline).await
}

async fn run(
    source: &dyn Source,
    options: &PlanOptions,
    mut state: engine::State,
    deadline: Option<Instant>,
) -> Result<PlanOutcome, PlanError> {
    let (ranges, complete) = state.run(source, options, deadline).await?;
    let stats = state.stats.clone();
    Ok(if complete {
        PlanOutcome::Complete { ranges, stats }
    } else {
        let cursor = PlanCursor {
            version: CURSOR_VERSION,
            options: options.clone(),
            state,
        };
        PlanOutcome::Partial {
            ranges,
            cursor,
            stats,
        }
    })
}
