//! Shared setup for the `oss_client_*` integration tests: an in-process emulator on
//! 127.0.0.1:0, clients configured for it, and deterministic test data.

#![allow(dead_code)]

use std::time::Duration;

use ferry::oss::{Credentials, OssClient, OssClientBuilder, RetryConfig, SignatureVersion};
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
    OssClient::builder()
        .endpoint(emu.endpoint())
        .region(REGION)
        .credentials(Credentials::new(AK, SK))
        .allow_http(true)
        .retry(fast_retry())
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

/// Deterministic pseudo-random bytes (xorshift), different per seed.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}
