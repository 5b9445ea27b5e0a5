//! What a job would copy, counted without copying anything: `ferry plan job.json --dry-run`.
//!
//! The planner cuts the source prefix into key ranges as for a run; each range is then listed
//! in full (several at once) and every object is counted: in scope or filtered out by the
//! job's filters, archived (it needs a restore before it can be copied) or not, and by the
//! first folder under the source prefix, so a user sees where the bytes are before the run.
//! It reads the source's listings only — no GET, no HEAD, nothing at the destination, nothing
//! in a state store — and costs one listing request per 1,000 keys plus the planner's probes.

use std::collections::BTreeMap;

use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Serialize;

use super::{KeyRange, PlanOptions, PlanOutcome, plan_ranges};
use crate::estimate::workload::Sizer;
use crate::job::JobSpec;
use crate::source::{ArchiveState, ListRequest, ObjectInfo, Source, SourceError};

/// Objects and their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    /// How many objects.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl Count {
    fn add(&mut self, object: &ObjectInfo) {
        self.objects += 1;
        self.bytes += object.size;
    }

    fn merge(&mut self, other: Count) {
        self.objects += other.objects;
        self.bytes += other.bytes;
    }
}

/// The counts of a dry run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Survey {
    /// Objects a run would consider (under the prefix, through the filters).
    pub in_scope: Count,
    /// Of those, the archived ones: they need a restore before they can be copied.
    pub archived: Count,
    /// Of those, objects whose keys are not UTF-8: OSS cannot name them, so a run reports each
    /// failed with that reason.
    pub unnamable: Count,
    /// Of those, readable objects at or above the job's multipart threshold: copied in parts.
    pub readable_multipart: Count,
    /// The parts of `readable_multipart`, at the job's part size.
    pub parts: u64,
    /// Objects under the prefix that the job's filters leave out.
    pub filtered_out: Count,
    /// In-scope objects by the first folder under the source prefix (`2024/`); keys with no
    /// folder of their own under it count under the empty name.
    pub by_prefix: BTreeMap<String, Count>,
    /// Ranges the planner cut the prefix into.
    pub ranges: u64,
    /// Transfer tasks a run would walk them in: one per range, and one more for each
    /// `sharding.max_keys_per_shard` keys a range holds beyond the first.
    pub tasks: u64,
    /// Listing requests made: the planner's and the ranges'.
    pub list_requests: u64,
}

impl Survey {
    fn merge(&mut self, other: Survey) {
        self.in_scope.merge(other.in_scope);
        self.archived.merge(other.archived);
        self.unnamable.merge(other.unnamable);
        self.readable_multipart.merge(other.readable_multipart);
        self.parts += other.parts;
        self.filtered_out.merge(other.filtered_out);
        for (prefix, count) in other.by_prefix {
            self.by_prefix.entry(prefix).or_default().merge(count);
        }
        self.list_requests += other.list_requests;
        self.tasks += other.tasks;
    }

    fn count(&mut self, spec: &JobSpec, object: &ObjectInfo) {
        if !spec.filters.matches(object) {
            self.filtered_out.add(object);
            return;
        }
        self.in_scope.add(object);
        // Listings rarely say whether a restore is done; Restored, when they do, is readable.
        if matches!(
            object.archive,
            ArchiveState::Archived | ArchiveState::Restoring
        ) {
            self.archived.add(object);
        } else {
            let mut sizer = Sizer::new(spec);
            if sizer.is_large(object.size) {
                sizer.add_readable(object.size);
                self.readable_multipart.merge(sizer.large);
                self.parts += sizer.parts;
            }
        }
        // A listing that strays outside the prefix is counted whole, never cut mid-character.
        let rest = object
            .key
            .strip_prefix(spec.source.prefix())
            .unwrap_or(&object.key);
        let top = rest.find('/').map_or("", |end| &rest[..=end]);
        self.by_prefix
            .entry(top.to_owned())
            .or_default()
            .add(object);
    }
}

/// Counts what `spec` would copy from `source`, listing up to `concurrency` ranges at once.
pub async fn survey(
    source: &dyn Source,
    spec: &JobSpec,
    options: &PlanOptions,
    concurrency: usize,
) -> Result<Survey, SourceError> {
    let (ranges, stats) = match plan_ranges(source, options, None).await? {
        PlanOutcome::Complete { ranges, stats } => (ranges, stats),
        // Not expected without a deadline; the ranges so far would undercount, so refuse.
        PlanOutcome::Partial { .. } => {
            return Err(SourceError::new(
                crate::source::SourceErrorKind::Permanent,
                "plan",
                "the plan stopped before the end without a deadline",
            ));
        }
    };
    let mut total = Survey {
        ranges: ranges.len() as u64,
        list_requests: stats.list_requests,
        ..Survey::default()
    };
    let mut counted = stream::iter(ranges)
        .map(|planned| count_range(source, spec, planned.range))
        .buffer_unordered(concurrency.max(1));
    while let Some(range) = counted.try_next().await? {
        total.merge(range);
    }
    Ok(total)
}

/// Lists one range to its end and counts what it holds.
async fn count_range(
    source: &dyn Source,
    spec: &JobSpec,
    range: KeyRange,
) -> Result<Survey, SourceError> {
    let mut survey = Survey::default();
    let (mut listed, mut listed_bytes) = (0u64, 0u64);
    let mut req = ListRequest {
        prefix: range.prefix.clone(),
        start_after: range.start_after.clone(),
        max_keys: 1000,
        ..Default::default()
    };
    loop {
        let page = source.list(&req).await?;
        survey.list_requests += 1;
        let before_end = |key: &[u8]| range.end.as_deref().is_none_or(|end| key < end.as_bytes());
        let mut past_end = false;
        for object in &page.objects {
            if !before_end(object.key.as_bytes()) {
                past_end = true;
                break;
            }
            survey.count(spec, object);
            listed += 1;
            listed_bytes += object.size;
        }
        for odd in page.unnamable.iter().filter(|o| before_end(&o.bytes)) {
            if spec.filters.matches(&odd.info) {
                survey.unnamable.add(&odd.info);
            }
            survey.count(spec, &odd.info);
            listed += 1;
            listed_bytes += odd.info.size;
        }
        match page.next {
            Some(next) if !past_end => req.continuation = Some(next),
            _ => {
                // A task walks at most max_keys_per_shard keys and max_bytes_per_shard bytes,
                // then hands the rest on.
                let sharding = &spec.sharding;
                survey.tasks = listed
                    .div_ceil(sharding.max_keys_per_shard.max(1))
                    .max(listed_bytes.div_ceil(sharding.max_bytes_per_shard.bytes().max(1)))
                    .max(1);
                return Ok(survey);
            }
        }
    }
}
