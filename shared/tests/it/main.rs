//! The engine's integration tests, as one test binary: every module here links the AWS SDK,
//! and one link instead of fifteen is most of what a clean CI build spends on tests. Each
//! module is one concern (a client, a port, a role, the pipeline end to end); shared fixtures
//! live in [`support`]. Run one with `cargo test -p ferry --test it MODULE::`.
//!
//! Two stay binaries of their own: `oss_client_big` measures its process's peak RSS, which
//! tests running beside it would inflate, and `queue_ports` checks moto's SQS under concurrent
//! receivers, which it fails beside the pipeline suites' load.

mod support;

mod conformance;
mod cutover;
mod distributed;
mod estimate;
mod events;
mod job_spec;
mod oss_client_errors;
mod oss_client_ops;
mod oss_client_retry;
mod pipeline;
mod plan;
mod signing_vectors;
mod source_s3;
mod source_s3_errors;
mod state_ports;
mod transfer_one_read;
mod transfer_oss;
mod transfer_s3;
