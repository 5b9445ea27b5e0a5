//! What a run will copy, in the terms the estimate needs: objects below and above the
//! multipart threshold (and the parts of the latter), archived objects, how many top-level
//! folders share the load, and — when the source was listed — the listing requests a run
//! will make. Three ways in: the source's listing (`ferry plan`'s survey), a manifest of keys
//! and sizes, or bare totals.

use std::collections::BTreeSet;
use std::io::BufRead;

use serde::Serialize;

use crate::job::JobSpec;
use crate::plan::survey::{Count, Survey};
use crate::source::ObjectInfo;
use crate::transfer::part_size_for;

/// What a run will copy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Workload {
    /// Where the figures come from, in words (shown with the estimate).
    pub from: String,
    /// Readable objects below the multipart threshold: one GET and one PUT each.
    pub small: Count,
    /// Readable objects at or above the threshold, copied in parts.
    pub large: Count,
    /// The parts of `large`, at the job's part size (grown for objects past 10,000 parts).
    pub parts: u64,
    /// Archived objects: a run reports them as needing a restore (one HEAD each) and copies
    /// nothing of them until they are restored.
    pub archived: Count,
    /// Objects whose keys OSS cannot name (not UTF-8): reported failed, nothing copied.
    pub unnamable: Count,
    /// Top-level folders under the source prefix (at least 1): S3 scales its request rate
    /// per prefix.
    pub top_prefixes: u64,
    /// Listing requests the source will answer, when a listing measured them (the planner's
    /// probes and one per 1,000 keys of each range).
    pub list_requests: Option<u64>,
    /// Key ranges the planner cut the prefix into, when the planner ran.
    pub ranges: Option<u64>,
    /// Transfer tasks a run walks the ranges in, when the listing counted them.
    pub tasks: Option<u64>,
}

impl Workload {
    /// Objects in scope, whatever becomes of them.
    pub fn objects(&self) -> u64 {
        self.small.objects + self.large.objects + self.archived.objects + self.unnamable.objects
    }

    /// Bytes in scope.
    pub fn bytes(&self) -> u64 {
        self.small.bytes + self.large.bytes + self.archived.bytes + self.unnamable.bytes
    }

    /// Objects a run copies now.
    pub fn copied(&self) -> Count {
        Count {
            objects: self.small.objects + self.large.objects,
            bytes: self.small.bytes + self.large.bytes,
        }
    }

    /// From `ferry plan`'s survey of the source (the listing a run will make).
    pub fn from_survey(survey: &Survey) -> Workload {
        let mut small = survey.in_scope;
        for taken in [survey.readable_multipart, survey.archived, survey.unnamable] {
            small.objects = small.objects.saturating_sub(taken.objects);
            small.bytes = small.bytes.saturating_sub(taken.bytes);
        }
        Workload {
            from: format!("the source's listing ({} requests)", survey.list_requests),
            small,
            large: survey.readable_multipart,
            parts: survey.parts,
            archived: survey.archived,
            unnamable: survey.unnamable,
            top_prefixes: (survey.by_prefix.len() as u64).max(1),
            list_requests: Some(survey.list_requests),
            ranges: Some(survey.ranges),
            tasks: Some(survey.tasks),
        }
    }

    /// From totals alone: `objects` objects of `bytes` bytes, assumed all of the average
    /// size, in one top-level folder (the most cautious reading of S3's per-prefix rate).
    pub fn from_totals(spec: &JobSpec, objects: u64, bytes: u64) -> Workload {
        let mut sizer = Sizer::new(spec);
        if let Some(average) = bytes.checked_div(objects) {
            let mut one = Sizer::new(spec);
            one.add_readable(average);
            sizer.small.objects = one.small.objects * objects;
            sizer.large.objects = one.large.objects * objects;
            sizer.parts = one.parts * objects;
            // All the bytes, not the average times the count (the remainder of the division).
            if one.large.objects > 0 {
                sizer.large.bytes = bytes;
            } else {
                sizer.small.bytes = bytes;
            }
        }
        Workload {
            from: format!(
                "the totals given, all objects of the average size {}",
                crate::pipeline::verify::report_text::size(bytes.checked_div(objects).unwrap_or(0))
            ),
            small: sizer.small,
            large: sizer.large,
            parts: sizer.parts,
            top_prefixes: 1,
            ..Workload::default()
        }
    }

    /// From a manifest: CSV rows of `key,size` (a header row naming them is allowed, further
    /// columns are ignored), such as a bucket inventory's key and size columns. The job's
    /// prefix and filters choose the rows in scope, as a listing would; a job filtering by
    /// modification time is refused (a manifest has no times), naming the fix.
    pub fn from_manifest(
        spec: &JobSpec,
        name: &str,
        reader: impl BufRead,
    ) -> Result<Workload, String> {
        let filters = &spec.filters;
        if filters.modified_since.is_some() || filters.modified_before.is_some() {
            return Err(format!(
                "the job filters by modification time and {name} has no times; fix: estimate \
                 with --from-listing, or with the time filters removed"
            ));
        }
        let mut rows = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(reader);
        let mut sizer = Sizer::new(spec);
        let mut folders = BTreeSet::new();
        let prefix = spec.source.prefix();
        for (index, row) in rows.records().enumerate() {
            let line = index + 1;
            let row = row.map_err(|e| format!("{name} line {line}: {e}"))?;
            let (key, size) = (row.get(0).unwrap_or(""), row.get(1).unwrap_or("").trim());
            if line == 1 && key.eq_ignore_ascii_case("key") && size.eq_ignore_ascii_case("size") {
                continue;
            }
            let size: u64 = size.parse().map_err(|_| {
                format!(
                    "{name} line {line}: size {size:?} of key {key:?} is not a number of bytes; \
                     fix: write rows as key,size (for example `photos/a.jpg,52311`)"
                )
            })?;
            let Some(rest) = key.strip_prefix(prefix) else {
                continue;
            };
            let object = ObjectInfo {
                key: key.to_owned(),
                size,
                ..ObjectInfo::default()
            };
            if !filters.matches(&object) {
                continue;
            }
            folders.insert(rest.find('/').map_or("", |end| &rest[..=end]).to_owned());
            sizer.add_readable(size);
        }
        Ok(Workload {
            from: format!("{name} (keys and sizes; archived objects are not told apart)"),
            small: sizer.small,
            large: sizer.large,
            parts: sizer.parts,
            top_prefixes: (folders.len() as u64).max(1),
            ..Workload::default()
        })
    }
}

/// Sorts readable objects into small and large by the job's threshold, counting parts.
pub(crate) struct Sizer {
    threshold: u64,
    part_size: u64,
    pub small: Count,
    pub large: Count,
    pub parts: u64,
}

impl Sizer {
    pub fn new(spec: &JobSpec) -> Sizer {
        Sizer {
            threshold: spec.concurrency.multipart_threshold.bytes(),
            part_size: spec.concurrency.part_size.bytes(),
            small: Count::default(),
            large: Count::default(),
            parts: 0,
        }
    }

    pub fn is_large(&self, size: u64) -> bool {
        size >= self.threshold
    }

    pub fn add_readable(&mut self, size: u64) {
        if self.is_large(size) {
            self.large.objects += 1;
            self.large.bytes += size;
            self.parts += size.div_ceil(part_size_for(size, self.part_size)).max(1);
        } else {
            self.small.objects += 1;
            self.small.bytes += size;
        }
    }
}
