//! The job spec's shape: every setting a user can write, its default, and (in the doc comments,
//! which become the JSON Schema's descriptions) what it means. Checks beyond JSON types live
//! in `validate.rs`; the mapping onto engine settings in `engine.rs`.

use schemars::JsonSchema;
use serde::Deserialize;

use super::filter::Filters;
use super::location::{DestinationSpec, SourceSpec};
use super::mirror;
use super::size::{Bandwidth, ByteSize};
use crate::source::RestoreTier;
use crate::transfer::{ArchivePolicy, OverwritePolicy};

/// A ferry migration job: what to copy from where into which OSS bucket, and how.
///
/// Only `version`, `name`, `source` and `destination` are required; everything else has a
/// default suited to most migrations. Secrets never appear in a job file: `credentials`
/// settings name a Secrets Manager secret or environment variables.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "ferry job")]
pub struct JobSpec {
    /// The version of this format. This ferry reads version 1.
    #[schemars(extend("const" = 1))]
    pub version: u32,
    /// The job's id: 1 to 63 lower-case letters, digits and hyphens, starting with a letter or
    /// digit (`photos-to-oss`). Runs, progress and reports are stored under it, so two jobs
    /// must not share a name.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{0,62}$"))]
    pub name: String,
    /// Where objects are copied from: `{"kind": "s3", …}` or `{"kind": "oss", …}`.
    pub source: SourceSpec,
    /// The OSS bucket objects are copied into.
    pub destination: DestinationSpec,
    /// Which source objects the job covers (keys, modification times, sizes). All by default.
    #[serde(default)]
    pub filters: Filters,
    /// `copy` (default) copies and verifies; `audit` only compares source and destination and
    /// reports what differs, writing nothing.
    #[serde(default)]
    pub mode: Mode,
    /// When an object already at the destination is copied again: `if-different` (default),
    /// `never`, `always` or `if-newer`.
    #[serde(default)]
    #[schemars(with = "mirror::OverwritePolicy")]
    pub overwrite: OverwritePolicy,
    /// What to do with archived source objects that are not restored.
    #[serde(default)]
    pub archive: ArchiveSpec,
    /// How the key space is split into shards (units of work for the transfer workers).
    #[serde(default)]
    pub sharding: Sharding,
    /// How much happens at once, and object sizes for multipart uploads.
    #[serde(default)]
    pub concurrency: Concurrency,
    /// Cap on the bytes per second read from the source, shared by all copies of one worker
    /// process (`"200MB/s"`, `"100Mbit/s"`). No cap when unset.
    #[serde(default)]
    pub bandwidth_limit: Option<Bandwidth>,
    /// How copies are proven: `crc64` (default) or `size`.
    #[serde(default)]
    pub verification: Verification,
    /// What the event path (`ferry follow`, the stack's events queue) does beyond copying.
    #[serde(default)]
    pub events: EventsSpec,
}

/// What source events do beyond copying what they name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsSpec {
    /// A delete at the source: `report` (default) counts it and keeps the destination's object;
    /// `propagate` also deletes the destination's object, but only one ferry wrote (it carries
    /// ferry's stamp) and only while the key is still gone at the source.
    #[serde(default)]
    pub delete_policy: DeletePolicy,
}

/// What a delete at the source does at the destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeletePolicy {
    /// Count it (skipped, "not at the source"); the destination keeps its object.
    #[default]
    Report,
    /// Delete the destination's object too, when ferry wrote it.
    Propagate,
}

/// Copy, or only compare.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Copy what differs, then verify every copy at the destination.
    #[default]
    Copy,
    /// Compare source and destination and report what is missing or different; copy nothing.
    Audit,
}

/// How a copy is proven.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verification {
    /// CRC-64 of the bytes read from the source must equal the CRC-64 OSS computed of what it
    /// stored, and the source's own checksums (S3 MD5 ETag, CRC64NVME/CRC32C, OSS CRC-64) are
    /// checked against the same bytes. The default.
    #[default]
    Crc64,
    /// Only the destination object's size is compared. Proves much less: a corrupted copy of
    /// the right length passes.
    Size,
}

/// What to do with archived source objects (S3 Glacier / Deep Archive, OSS Archive classes)
/// that are not restored.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSpec {
    /// `report` (default): list them as `needs-restore`. `restore`: also ask the source to
    /// restore them, so a later run copies them.
    #[serde(default)]
    #[schemars(with = "mirror::ArchivePolicy")]
    pub policy: ArchivePolicy,
    /// With `restore`: how many days restored copies stay readable (1–365, default 3).
    #[serde(default = "default_restore_days")]
    #[schemars(range(min = 1, max = 365))]
    pub days: u32,
    /// With `restore`: `expedited`, `standard` (default) or `bulk`.
    #[serde(default)]
    #[schemars(with = "mirror::RestoreTier")]
    pub tier: RestoreTier,
}

impl Default for ArchiveSpec {
    fn default() -> Self {
        ArchiveSpec {
            policy: ArchivePolicy::Report,
            days: default_restore_days(),
            tier: RestoreTier::Standard,
        }
    }
}

/// How the source key space is split into shards.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sharding {
    /// How many `/` levels below the source prefix the planner lists to find prefixes to
    /// split on (0–16, default 2). Deeper finds more parallelism in deep trees but lists more.
    #[serde(default = "default_scan_depth")]
    #[schemars(range(min = 0, max = 16))]
    pub scan_depth: u32,
    /// A shard holds at most this many keys; one worker walks at most this many before handing
    /// the rest of its range back (default 10000).
    #[serde(default = "default_max_keys")]
    #[schemars(range(min = 1, max = 10_000_000))]
    pub max_keys_per_shard: u64,
    /// A shard holds at most this many bytes (default `"16GiB"`, at least `"1MiB"`).
    #[serde(default = "default_max_bytes")]
    pub max_bytes_per_shard: ByteSize,
}

impl Default for Sharding {
    fn default() -> Self {
        Sharding {
            scan_depth: default_scan_depth(),
            max_keys_per_shard: default_max_keys(),
            max_bytes_per_shard: default_max_bytes(),
        }
    }
}

/// How much runs at once, and how large objects are split.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Concurrency {
    /// Objects copied at the same time by one worker (1–1024, default 32).
    #[serde(default = "default_objects")]
    #[schemars(range(min = 1, max = 1024))]
    pub objects: usize,
    /// Parts of one large object uploaded at the same time (1–64, default 4).
    #[serde(default = "default_parts")]
    #[schemars(range(min = 1, max = 64))]
    pub parts: usize,
    /// Size of each multipart part (`"100KiB"` to `"5GiB"`, default `"16MiB"`); grown
    /// automatically for objects that would need more than 10,000 parts.
    #[serde(default = "default_part_size")]
    pub part_size: ByteSize,
    /// Objects of at least this size are copied by multipart upload, smaller ones by one PUT
    /// (`"100KiB"` to `"5GiB"`, default `"64MiB"`).
    #[serde(default = "default_multipart_threshold")]
    pub multipart_threshold: ByteSize,
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency {
            objects: default_objects(),
            parts: default_parts(),
            part_size: default_part_size(),
            multipart_threshold: default_multipart_threshold(),
        }
    }
}

fn default_restore_days() -> u32 {
    3
}

fn default_scan_depth() -> u32 {
    2
}

fn default_max_keys() -> u64 {
    10_000
}

fn default_max_bytes() -> ByteSize {
    ByteSize::gib(16)
}

fn default_objects() -> usize {
    32
}

fn default_parts() -> usize {
    4
}

fn default_part_size() -> ByteSize {
    ByteSize::mib(16)
}

fn default_multipart_threshold() -> ByteSize {
    ByteSize::mib(64)
}
