//! The Source and Destination conformance suites (`ferry::testing`) against every adapter ferry
//! ships: the S3 source on moto and on the OSS emulator's S3 dialect, the OSS source on the
//! emulator, and the destination on the emulator signed with V4 and V1, with and without a key
//! prefix. The Queue and StateStore suites run in `queue_ports` and `state_ports`.

use crate::support::moto::{self, Moto};
use crate::support::oss_client_support::{AK, BUCKET, REGION, SK, client, client_v1, emulator};

use aws_sdk_s3::primitives::ByteStream as SdkBody;
use ferry::source::oss::OssSource;
use ferry::source::s3::S3Source;
use ferry::testing::{destination, s3_config, source};
use ferry::transfer::Destination;

#[tokio::test]
async fn the_s3_source_on_moto_conforms() {
    let moto = Moto::shared();
    let bucket = "conformance-source";
    let s3 = moto.create_bucket(bucket).await;
    for (key, body) in source::fixture() {
        s3.put_object()
            .bucket(bucket)
            .key(&key)
            .body(SdkBody::from(body))
            .send()
            .await
            .expect("seed the fixture");
    }
    let config = s3_config(
        moto.endpoint(),
        moto::REGION,
        bucket,
        moto::ACCESS_KEY_ID,
        moto::SECRET_ACCESS_KEY,
    );
    let s3_source = S3Source::new(config).await.expect("valid config");
    source::conformance(&s3_source).await;
}

/// The emulator holding the source fixture in its one bucket.
async fn seeded_emulator() -> oss_emulator::Emulator {
    let emu = emulator().await;
    for (key, body) in source::fixture() {
        emu.put_object(BUCKET, &key, body).await.expect("seed");
    }
    emu
}

#[tokio::test]
async fn the_s3_source_on_the_emulators_s3_dialect_conforms() {
    let emu = seeded_emulator().await;
    let config = s3_config(emu.endpoint(), REGION, BUCKET, AK, SK);
    let s3_source = S3Source::new(config).await.expect("valid config");
    source::conformance(&s3_source).await;
}

#[tokio::test]
async fn the_oss_source_conforms() {
    let emu = seeded_emulator().await;
    source::conformance(&OssSource::new(client(&emu), BUCKET, "")).await;
}

#[tokio::test]
async fn the_destination_conforms_signed_v4_and_v1_with_and_without_a_prefix() {
    let emu = emulator().await;
    destination::conformance(&Destination::new(client(&emu), BUCKET, "")).await;
    destination::conformance(&Destination::new(client_v1(&emu), BUCKET, "v1/prefix/")).await;
}
