//! Copying objects into OSS (architecture §6) and proving the bytes arrived (invariant 4).
//!
//! [`Copier::copy`] reads one object from a [`Source`](crate::source::Source) and writes it to a
//! [`Destination`]: one streamed PutObject below the multipart threshold, otherwise a multipart
//! upload whose parts are ranged GETs streamed into UploadPart, several at a time. Nothing is
//! buffered whole: memory is bounded by part concurrency × HTTP chunks, whatever the object size.
//! A multipart copy records its upload ([`resume`]) and, when retried, continues from the parts
//! OSS already holds.
//!
//! Every outcome is explicit — copied (with the CRC-64 computed over the bytes read from the
//! source, which equals the one OSS reports), needs-restore, or failed with a reason — so a run's
//! counts always add up to the objects in scope.

mod copy;
mod destination;
pub mod diff;
pub mod integrity;
pub mod metadata;
mod multipart;
pub mod parts;
mod reconcile;
pub mod resume;
mod server_side;
pub mod throttle;
mod walk;

pub use copy::Copier;
pub use destination::{Destination, ServerSide};
pub use diff::OverwritePolicy;
pub use metadata::ClassPolicy;
pub use walk::{ArchivePolicy, RangeSummary, WalkError, WalkOptions, walk_range};

/// How one object is copied.
#[derive(Clone, Debug)]
pub struct CopyOptions {
    /// Objects of at least this many bytes go by multipart upload.
    pub multipart_threshold: u64,
    /// Part size; grown automatically so an object never needs more than 10,000 parts.
    pub part_size: u64,
    /// Parts of one object uploaded at the same time.
    pub part_concurrency: usize,
    /// The destination storage class.
    pub storage_class: ClassPolicy,
    /// Refuse to replace an existing destination object (`x-oss-forbid-overwrite`).
    pub forbid_overwrite: bool,
    /// Attempts per object for failures that may pass (the client retries each request too;
    /// these cover what it cannot replay: a source stream that broke or was altered).
    pub attempts: u32,
    /// Pause before the second attempt, doubled for each further one.
    pub retry_delay: std::time::Duration,
    /// A bandwidth limit shared by every stream this copier reads.
    pub limiter: Option<std::sync::Arc<throttle::RateLimiter>>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            multipart_threshold: 64 << 20,
            part_size: 16 << 20,
            part_concurrency: 4,
            storage_class: ClassPolicy::Map,
            forbid_overwrite: false,
            attempts: 3,
            retry_delay: std::time::Duration::from_millis(500),
            limiter: None,
        }
    }
}

/// What happened to one object.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Written, and OSS's CRC-64 equals the CRC-64 of the bytes read from the source.
    Copied {
        /// The CRC-64 of the object, as OSS reports it (`x-oss-hash-crc64ecma`).
        crc64: u64,
        /// Whether it was written by multipart upload.
        multipart: bool,
    },
    /// Not copied, on purpose (already identical at the destination, filtered, …).
    Skipped {
        /// Why it was not copied.
        reason: String,
    },
    /// Archived at the source; it must be restored before it can be read.
    NeedsRestore,
    /// Not copied; `retryable` says whether trying again may help.
    Failed {
        /// What went wrong.
        reason: String,
        /// Whether trying again may help.
        retryable: bool,
    },
}

/// One object's result.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectResult {
    /// The source key.
    pub key: String,
    /// The object's size, in bytes.
    pub size: u64,
    /// The source object's ETag (without quotes), when known.
    pub source_etag: Option<String>,
    /// What happened to the object.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// What could not be carried faithfully (a metadata name or a tag OSS refuses), or what
    /// was done instead (a restore requested). A copied object with notes is listed in the
    /// report's failures.csv as `copied-with-notes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The part size to use for an object: at least `preferred`, and large enough for ≤ 10,000 parts.
pub fn part_size_for(size: u64, preferred: u64) -> u64 {
    const MAX_PARTS: u64 = 10_000;
    let min_for_count = size.div_ceil(MAX_PARTS);
    preferred
        .max(min_for_count)
        .max(crate::oss::ops::multipart::MIN_PART_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_size_keeps_part_count_within_the_limit() {
        assert_eq!(part_size_for(100 << 20, 16 << 20), 16 << 20);
        let huge = 5u64 << 40; // 5 TiB
        let part = part_size_for(huge, 16 << 20);
        assert!(huge.div_ceil(part) <= 10_000);
        assert_eq!(part_size_for(1, 1), 100 * 1024);
    }
}
