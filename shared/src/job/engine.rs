//! A job spec turned into the engine's settings: [`CopyOptions`] for copying one object,
//! [`WalkOptions`] for walking a key range, the source/destination scope, and the checks a
//! caller may want on their own (`validate`, `warnings`).

use std::sync::Arc;

use super::error::{Issue, JobError};
use super::location::SourceSpec;
use super::spec::JobSpec;
use super::validate;
use crate::source::ObjectInfo;
use crate::transfer::throttle::RateLimiter;
use crate::transfer::{ClassPolicy, CopyOptions, OverwritePolicy, WalkOptions};

impl JobSpec {
    /// Checks everything beyond JSON types again (a spec read by [`JobSpec::from_json`] has
    /// already passed); useful after changing a spec in code.
    pub fn validate(&self) -> Result<(), JobError> {
        let issues = validate::check(self);
        if issues.is_empty() {
            Ok(())
        } else {
            Err(JobError::new(issues))
        }
    }

    /// Valid settings that weaken what a run proves or protects (size-only verification,
    /// plain HTTP), for the CLI and the planner to show before starting.
    pub fn warnings(&self) -> Vec<Issue> {
        validate::warnings(self)
    }

    /// How each object is copied. Call it once per worker process: the bandwidth limiter it
    /// holds is shared by every copy made with these options.
    pub fn copy_options(&self) -> CopyOptions {
        let c = &self.concurrency;
        CopyOptions {
            multipart_threshold: c.multipart_threshold.bytes(),
            part_size: c.part_size.bytes(),
            part_concurrency: c.parts,
            storage_class: self.class_policy(),
            forbid_overwrite: self.overwrite == OverwritePolicy::Never,
            limiter: self
                .bandwidth_limit
                .map(|rate| Arc::new(RateLimiter::new(rate.bytes_per_second()))),
            ..CopyOptions::default()
        }
    }

    /// The job's part of a range walk: prefix, overwrite and archive policies, concurrency and
    /// the per-shard budget. Each shard task fills in `start_after` and `end`.
    pub fn walk_options(&self) -> WalkOptions {
        WalkOptions {
            prefix: self.source.prefix().to_owned(),
            overwrite: self.overwrite,
            object_concurrency: self.concurrency.objects,
            archive: self.archive.policy,
            restore_days: self.archive.days,
            restore_tier: self.archive.tier,
            max_objects: Some(self.sharding.max_keys_per_shard),
            max_bytes: Some(self.sharding.max_bytes_per_shard.bytes()),
            ..WalkOptions::default()
        }
    }

    /// Whether the job covers this source object (its `filters`).
    pub fn matches(&self, object: &ObjectInfo) -> bool {
        self.filters.matches(object)
    }

    /// The destination storage class: fixed by the job, or mapped from each source object.
    pub fn class_policy(&self) -> ClassPolicy {
        match &self.destination.storage_class {
            Some(class) => ClassPolicy::Fixed(class.clone()),
            None => ClassPolicy::Map,
        }
    }

    /// The source bucket, when objects can be copied inside OSS (CopyObject / UploadPartCopy)
    /// instead of through ferry: an OSS source on the same OSS service and region as the
    /// destination, read with the same credentials reference.
    pub fn server_side_source(&self) -> Option<&str> {
        let SourceSpec::Oss(source) = &self.source else {
            return None;
        };
        let same_service = source.place().store().is_some()
            && source.place().store() == self.destination.place().store();
        let same_credentials = source.credentials == self.destination.credentials;
        (same_service && same_credentials).then_some(source.bucket.as_str())
    }
}
