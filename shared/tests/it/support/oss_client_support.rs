//! Shared setup for the `oss_client_*` integration tests: an in-process emulator on
//! 127.0.0.1:0, clients configured for it, and deterministic test data.

#![allow(dead_code)]

#[allow(unused_imports)] // not every test binary that includes this file uses it
pub use ferry::testing::data::seeded;
use std::time::Duration;

use ferry::oss::{OssClient, OssClientBuilder, RetryConfig, SignatureVersion};
use oss_emulator::Emulator;

pub const AK: &str = "LTAI5tFerryTestKey";
pub const SK: &str = "ferry-test-secret-do-not-print";
pub const REGION: &str = "cn-hangzhou";
pub const BUCKET: &str = "ferry-test";

/// An emulator with one bucket, a fixed fault seed and quick restores.
pub async fn emulator() -> Emulator {
    Emulator::builder()
        .credentials(AK, SK)
        .region(REGION)
        .fault_seed(7)
        .restore_delay(Duration::from_secs(3600))
        .bucket(BUCKET)
        .start()
        .await
        .expect("emulator starts")
}

/// Fast retries so fault tests finish quickly.
pub fn fast_retry() -> RetryConfig {
    RetryConfig {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    }
}

pub fn builder(emu: &Emulator) -> OssClientBuilder {
    emu.client_builder().retry(fast_retry())
}

pub fn client(emu: &Emulator) -> OssClient {
    builder(emu).build().expect("client builds")
}

pub fn client_v1(emu: &Emulator) -> OssClient {
    builder(emu)
        .signature_version(SignatureVersion::V1)
        .build()
        .expect("client builds")
}
