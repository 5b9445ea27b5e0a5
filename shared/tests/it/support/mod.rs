//! Fixtures shared by the test modules: moto (S3, SQS, Secrets Manager on loopback), fault and
//! throttling proxies in front of it, an SQS event-source-mapping poller, emulator-backed OSS
//! clients and the two-emulator world the pipeline tests run in.

pub mod esm;
pub mod moto;
pub mod oss_client_support;
pub mod pipeline_support;
pub mod s3_faults;
pub mod s3_throttle;
