//! # ferry — the engine
//!
//! ferry migrates object data into Alibaba Cloud OSS from Amazon S3, any S3-compatible store and
//! other OSS buckets. This crate is the engine; the Lambda functions (`functions/*`) and the
//! command line (`cli`) are thin shells around it.
//!
//! Modules follow the architecture (`docs/architecture.md` in this repository):
//!
//! * [`oss`] — ferry's own OSS client: signing (V4 by default, V1 for older accounts), requests,
//!   XML, typed errors and retries.
//! * [`job`] — the job spec users write (JSON, with a JSON Schema), its validation, and its
//!   translation into engine settings.
//! * [`crc64`] — CRC-64/XZ, the checksum OSS reports in `x-oss-hash-crc64ecma`, with `combine` so
//!   part checksums prove the whole object.
//! * [`source`] — the `Source` port (list, head, get, restore) and its adapters for S3 and OSS.
//! * [`transfer`] — copying one object into OSS (single PUT or multipart), proven by CRC-64.
//! * [`plan`] — the planner's prefix discovery and key-range splitting, bounded in time and
//!   memory whatever the bucket size.
//! * [`queue`] and [`state`] — the ports the pipeline runs on: in-memory queue or SQS, local
//!   directory or S3 with conditional writes.
//! * [`estimate`] — before a run: time, functions, requests and cost, from a listing, a
//!   manifest or totals, and a price table that ships with ferry.
//! * [`pipeline`] — the three roles (planner, transfer, verifier), their messages, progress,
//!   the report, and the standalone runner.
//! * [`secret`] — a string that never prints itself, for credentials.
//! * [`events`] — source events (S3 notifications direct, through SNS, or from EventBridge)
//!   read into one shape.
//! * [`aws`] — one reading of AWS SDK errors (one policy table) for the S3 source, the SQS queue
//!   and the S3 state store.
//! * [`backoff`] — the one backoff every retry loop takes its waits from.
//! * `testing` (feature `testing`) — the ports' conformance suites, run against every adapter.

#![warn(missing_docs)]

pub mod aws;
pub mod backoff;
pub mod crc64;
pub mod cutover;
pub mod deploy;
pub mod estimate;
pub mod events;
pub mod job;
pub mod oss;
pub mod pipeline;
pub mod plan;
pub mod queue;
pub mod secret;
pub mod source;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transfer;
