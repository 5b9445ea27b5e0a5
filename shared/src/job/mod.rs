//! The job spec: the JSON file a user writes to describe a migration, its JSON Schema, its
//! validation, and its translation into engine settings.
//!
//! ```json
//! {
//!   "version": 1,
//!   "name": "photos-to-oss",
//!   "source": { "kind": "s3", "bucket": "acme-photos", "region": "us-east-1", "prefix": "2024/" },
//!   "destination": { "bucket": "acme-photos-cn", "region": "cn-hangzhou",
//!                    "credentials": { "secret": "ferry/oss-destination" } },
//!   "filters": { "include": ["**/*.jpg"] }
//! }
//! ```
//!
//! [`JobSpec::from_json`] reads a file and reports *every* problem at once ([`JobError`]), each
//! naming the JSON path, the value and the fix — unknown fields and wrong types as well as
//! values out of range, plain-HTTP endpoints without `allow_http`, a time window that is empty,
//! and a destination that overlaps its own source. [`schema`] gives the JSON Schema, whose
//! descriptions are the doc comments of the spec types. Secrets are never part of a job file:
//! `credentials` settings name a Secrets Manager secret or environment variables
//! ([`credentials`]), and an inline secret is refused as an unknown field.
//!
//! How each setting reaches the engine:
//!
//! | setting | engine |
//! |---|---|
//! | `version`, `name` | checked; `name` is the state-store segment `jobs/<name>/` |
//! | `source` (`kind: s3`) | [`S3SourceSpec::config`] → [`crate::source::s3::S3SourceConfig`] (credentials resolved by [`S3CredentialsRef::resolve`]) |
//! | `source` (`kind: oss`) | [`OssSourceSpec::client`] → [`crate::oss::OssClient`] for [`crate::source::oss::OssSource`] |
//! | `source.prefix` | [`WalkOptions::prefix`](crate::transfer::WalkOptions) (planner's listing root) |
//! | `destination.*` | [`DestinationSpec::client`] → [`crate::oss::OssClient`]; `bucket`/`prefix` → [`crate::transfer::Destination`] |
//! | `destination.endpoint_kind` / `endpoint` | [`crate::oss::Endpoint::public`] / `internal` / `accelerate` / `accelerate_overseas`, or the explicit URL |
//! | `destination.storage_class` | [`CopyOptions::storage_class`](crate::transfer::CopyOptions): `Fixed(class)`, or `Map` when unset |
//! | `filters` | [`Filters::matches`] / [`JobSpec::matches`] on each listed [`crate::source::ObjectInfo`] |
//! | `mode` | read by the planner and transfer roles: `audit` compares and reports, copies nothing |
//! | `overwrite` | [`WalkOptions::overwrite`](crate::transfer::WalkOptions); `never` also sets `CopyOptions::forbid_overwrite` |
//! | `archive.policy` / `days` / `tier` | `WalkOptions::archive` / `restore_days` / `restore_tier` |
//! | `sharding.scan_depth` | the planner's prefix discovery depth |
//! | `sharding.max_keys_per_shard` / `max_bytes_per_shard` | planner split size, and `WalkOptions::max_objects` / `max_bytes` (a worker's budget per shard) |
//! | `concurrency.objects` | `WalkOptions::object_concurrency` |
//! | `concurrency.parts` / `part_size` / `multipart_threshold` | `CopyOptions::part_concurrency` / `part_size` / `multipart_threshold` |
//! | `bandwidth_limit` | `CopyOptions::limiter` ([`crate::transfer::throttle::RateLimiter`]) |
//! | `verification` | read by the verifier: `crc64` compares CRC-64 (and source checksums), `size` sizes only |
//! | OSS source + destination on one service, same credentials | `Copier::server_side` ([`ServerSide::for_job`](crate::transfer::ServerSide::for_job)) |
//!
//! Files: `spec.rs` (the top-level shape), `location.rs` (source and destination),
//! `credentials.rs`, `filter.rs`, `glob.rs`, `size.rs` (sizes and rates), `parse.rs` (reading
//! with every error collected), `validate.rs`, `engine.rs` (the mapping above), `error.rs`,
//! `mirror.rs` (schemas for reused engine enums).

pub mod aliyun_cli;
pub mod credentials;
mod engine;
mod error;
mod filter;
mod glob;
pub mod key_list;
mod location;
mod mirror;
mod parse;
mod size;
mod spec;
mod validate;

pub use credentials::{
    CredentialsError, OssCredentialsRef, OssEnvVars, S3CredentialsRef, S3EnvVars,
};
pub use error::{Issue, JobError, TOP_LEVEL};
pub use filter::{Filters, Timestamp, TimestampError};
pub use glob::{Glob, GlobError};
pub use location::{
    DestinationSpec, EndpointKind, KeyLayout, OssSourceSpec, S3SourceSpec, SourceSpec,
};
pub use size::{Bandwidth, ByteSize, SizeError};
pub use spec::{
    ArchiveSpec, Concurrency, DeletePolicy, EventsSpec, JobSpec, Mode, Sharding, Verification,
};

/// The JSON Schema (draft 2020-12) of a job file, with a description for every setting. Editors
/// use it for completion and checking; `ferry` can print it for users.
pub fn schema() -> serde_json::Value {
    schemars::schema_for!(JobSpec).to_value()
}
