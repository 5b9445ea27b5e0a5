//! The transfer engine with an S3 source — ferry's main use: a real moto server as the source,
//! the OSS emulator as the destination, both on loopback.
//!
//! What a user migrating from S3 relies on: every key OSS accepts arrives byte-exact and every
//! key it refuses fails with the rule it broke (property test); the source's own checksums (MD5
//! ETag, CRC64NVME, CRC32C) are checked against the bytes read, composite checksums of
//! multipart objects are not, and a mismatch is never counted copied nor left at the
//! destination; content headers, user metadata, tags and storage classes carry over; archived
//! objects need a restore and copy after it; a large object goes up in parallel parts.
//!
//! moto cannot answer 503 SlowDown, so the throttling test puts a small proxy in front of it
//! (`support/s3_throttle.rs`) that answers chosen requests with SlowDown.

use crate::support::moto;
use crate::support::s3_throttle;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_sdk_s3::Client as S3Client;
use aws_sdk_s3::primitives::{ByteStream as SdkBody, DateTime as AwsDateTime};
use aws_sdk_s3::types::{ChecksumAlgorithm, StorageClass as S3Class};
use bytes::Bytes;
use crc_fast::CrcAlgorithm;
use ferry::oss::StorageClass;
use ferry::source::s3::{S3Source, S3SourceConfig};
use ferry::source::{
    ArchiveState, ByteStream, RestoreOutcome, RestoreTier, Source, SourceChecksums,
};
use ferry::testing::data::seeded;
use ferry::testing::watched::Watched;
use ferry::transfer::integrity::{Inspector, Wanted, check_source};
use ferry::transfer::resume::MemoryLedger;
use ferry::transfer::{
    ArchivePolicy, ClassPolicy, Copier, CopyOptions, Destination, ObjectResult, Outcome,
    WalkOptions, walk_range,
};
use futures_util::StreamExt;
use md5::{Digest, Md5};
use moto::Moto;
use oss_emulator::{Emulator, FaultRule, StorageClass as EmuClass};
use proptest::prelude::*;
use s3_throttle::{Rule, ThrottleProxy};

// ---------------------------------------------------------------------------------------------
// helpers

const OSS_REGION: &str = "cn-hangzhou";
const OSS_AK: &str = "dst-ak";
const OSS_SK: &str = "dst-ak-secret";

async fn emulator(data_dir: Option<&Path>) -> Emulator {
    Emulator::builder()
        .credentials(OSS_AK, OSS_SK)
        .region(OSS_REGION)
        .data_dir(data_dir.map(Path::to_path_buf))
        .start()
        .await
        .expect("emulator starts")
}

/// The S3 source config of `bucket` at `endpoint` (moto, or a proxy in front of it).
fn s3_config(endpoint: String, bucket: &str) -> S3SourceConfig {
    ferry::testing::s3_config(
        endpoint,
        moto::REGION,
        bucket,
        moto::ACCESS_KEY_ID,
        moto::SECRET_ACCESS_KEY,
    )
}

async fn s3_source(moto: &Moto, bucket: &str) -> S3Source {
    S3Source::new(s3_config(moto.endpoint(), bucket))
        .await
        .expect("valid S3 config")
}

fn copier(source: Arc<dyn Source>, emu: &Emulator, bucket: &str, options: CopyOptions) -> Copier {
    Copier {
        source,
        dest: Destination::new(emu.client(), bucket, ""),
        options,
        ledger: Arc::new(MemoryLedger::new()),
        server_side: None,
    }
}

/// One test's world: a bucket of the same name on the shared moto and on its own emulator.
struct Job {
    moto: &'static Moto,
    s3: S3Client,
    bucket: String,
    dst: Emulator,
}

impl Job {
    async fn new(bucket: &str) -> Job {
        Job::with_data_dir(bucket, None).await
    }

    async fn with_data_dir(bucket: &str, data_dir: Option<&Path>) -> Job {
        let moto = Moto::shared();
        let s3 = moto.create_bucket(bucket).await;
        let dst = emulator(data_dir).await;
        dst.create_bucket(bucket).unwrap();
        Job {
            moto,
            s3,
            bucket: bucket.to_owned(),
            dst,
        }
    }

    async fn source(&self) -> S3Source {
        s3_source(self.moto, &self.bucket).await
    }

    /// A copier writing under `prefix` at the destination.
    async fn copier(&self, prefix: &str, options: CopyOptions) -> Copier {
        let mut c = copier(
            Arc::new(self.source().await),
            &self.dst,
            &self.bucket,
            options,
        );
        c.dest = Destination::new(self.dst.client(), &self.bucket, prefix);
        c
    }

    async fn put(&self, key: &str, data: &[u8]) -> String {
        put(&self.s3, &self.bucket, key, data).await
    }

    async fn stored(&self, key: &str) -> Option<Bytes> {
        self.dst.object_bytes(&self.bucket, key).await
    }
}

async fn put(s3: &S3Client, bucket: &str, key: &str, data: &[u8]) -> String {
    let out = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(SdkBody::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key:?}: {}", sdk_error(&e)));
    out.e_tag().unwrap_or_default().trim_matches('"').to_owned()
}

fn sdk_error(e: &(dyn std::error::Error + 'static)) -> String {
    aws_sdk_s3::error::DisplayErrorContext(e).to_string()
}

async fn walk(copier: &Copier, options: &WalkOptions) -> Vec<ObjectResult> {
    let mut results = Vec::new();
    walk_range(copier, options, &mut |r| results.push(r))
        .await
        .expect("walk succeeds");
    results.sort_by(|a, b| a.key.cmp(&b.key));
    results
}

fn result<'a>(results: &'a [ObjectResult], key: &str) -> &'a ObjectResult {
    results
        .iter()
        .find(|r| r.key == key)
        .unwrap_or_else(|| panic!("no result for {key:?}"))
}

fn copied(data: &[u8], multipart: bool) -> Outcome {
    Outcome::Copied {
        crc64: ferry::crc64::checksum(data),
        multipart,
    }
}

fn quick_retries() -> CopyOptions {
    CopyOptions {
        attempts: 2,
        retry_delay: Duration::from_millis(10),
        ..Default::default()
    }
}

/// Objects of 200,000 bytes or more go up in 128 KiB parts.
fn small_parts() -> CopyOptions {
    CopyOptions {
        multipart_threshold: 200_000,
        part_size: 128 * 1024,
        part_concurrency: 4,
        ..quick_retries()
    }
}

// ---------------------------------------------------------------------------------------------
// keys

/// The rule OSS refuses `key` by (protocol reference: keys are 1–1023 bytes of UTF-8 and do not
/// start with `/` or `\`), as a fragment the failure reason must contain; `None` if it accepts it.
fn oss_refuses(key: &str) -> Option<&'static str> {
    if key.len() > 1023 {
        Some("1023")
    } else if key.starts_with('/') || key.starts_with('\\') {
        Some("must not start with")
    } else {
        None
    }
}

fn base_key() -> impl Strategy<Value = String> {
    // Characters that stress URL encoding, XML, signing and sorting; no `.`, so no key has a
    // `.`/`..` segment (which S3 allows but no HTTP client can address unchanged).
    let alphabet = prop::sample::select(vec![
        'a', 'Z', '0', '/', ' ', '+', '%', '?', '#', '&', '=', '~', '\'', '"', '<', '_', 'é', '日',
        '😀',
    ]);
    prop::collection::vec(alphabet, 1..10)
        .prop_map(|chars| chars.into_iter().collect::<String>())
        .prop_filter("aws-sdk-s3 cannot address a whitespace-only key", |k| {
            !k.trim().is_empty()
        })
}

/// `key` padded with `x` to exactly `len` bytes.
fn padded(mut key: String, len: usize) -> String {
    while key.len() < len {
        key.push('x');
    }
    key
}

fn key_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => base_key(),
        1 => base_key().prop_map(|k| format!("{k}/")),
        1 => (base_key(), base_key()).prop_map(|(a, b)| format!("{a}//{b}")),
        1 => base_key().prop_map(|k| padded(k, 1023)),
        // S3 allows 1024 bytes, OSS 1023.
        1 => base_key().prop_map(|k| padded(k, 1024)),
        1 => base_key().prop_map(|k| format!("/{k}")),
        1 => base_key().prop_map(|k| format!("\\{k}")),
    ]
}

fn size_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(0usize), 6 => 1usize..4000, 1 => Just(250_000usize)]
}

/// One runtime and one emulator for every case of the property test (the emulator's server
/// task lives on this runtime, so it must outlive the cases).
fn prop_runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

fn prop_emulator() -> &'static Emulator {
    static EMU: OnceLock<Emulator> = OnceLock::new();
    EMU.get_or_init(|| prop_runtime().block_on(emulator(None)))
}

static KEY_CASES: AtomicUsize = AtomicUsize::new(0);

async fn check_keys(emu: &Emulator, objects: BTreeMap<String, usize>) {
    let moto = Moto::shared();
    let bucket = format!("keys-{}", KEY_CASES.fetch_add(1, Ordering::Relaxed));
    let s3 = moto.create_bucket(&bucket).await;
    emu.create_bucket(&bucket).unwrap();
    let mut data = BTreeMap::new();
    for (i, (key, size)) in objects.iter().enumerate() {
        let bytes = seeded(i as u64, *size);
        put(&s3, &bucket, key, &bytes).await;
        data.insert(key.clone(), bytes);
    }
    let options = small_parts();
    let threshold = options.multipart_threshold as usize;
    let copier = copier(
        Arc::new(s3_source(moto, &bucket).await),
        emu,
        &bucket,
        options,
    );
    let walk_options = WalkOptions {
        page_size: 7,
        object_concurrency: 8,
        ..Default::default()
    };
    let results = walk(&copier, &walk_options).await;
    let reported: Vec<&String> = results.iter().map(|r| &r.key).collect();
    assert_eq!(reported, data.keys().collect::<Vec<_>>(), "every key, once");
    for r in &results {
        let bytes = &data[&r.key];
        assert_eq!(r.size, bytes.len() as u64, "{:?}", r.key);
        match oss_refuses(&r.key) {
            None => {
                assert_eq!(
                    r.outcome,
                    copied(bytes, bytes.len() >= threshold),
                    "{:?}",
                    r.key
                );
                let stored = emu.object_bytes(&bucket, &r.key).await;
                assert_eq!(stored.as_deref(), Some(bytes.as_slice()), "{:?}", r.key);
            }
            Some(rule) => match &r.outcome {
                Outcome::Failed {
                    reason,
                    retryable: false,
                } if reason.contains(rule) => {}
                other => panic!("{:?} breaks OSS's key rules; got {other:?}", r.key),
            },
        }
    }
    let accepted: Vec<String> = data
        .keys()
        .filter(|k| oss_refuses(k).is_none())
        .cloned()
        .collect();
    assert_eq!(emu.keys(&bucket).unwrap(), accepted, "nothing else written");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, max_shrink_iters: 8, ..ProptestConfig::default() })]

    #[test]
    fn every_key_oss_accepts_arrives_byte_exact_and_the_others_fail_naming_the_rule(
        objects in prop::collection::btree_map(key_strategy(), size_strategy(), 1..=20),
    ) {
        let emu = prop_emulator();
        prop_runtime().block_on(check_keys(emu, objects));
    }
}

/// The edges the property test reaches only by chance, every run.
#[test]
fn the_key_rules_hold_at_their_edges() {
    let objects = BTreeMap::from([
        ("日".repeat(341), 10),                 // 1023 bytes of 3-byte characters
        ("é".repeat(512), 10),                  // 1024 bytes: S3 takes it, OSS does not
        (padded("big/".into(), 1024), 250_000), // refused before a multipart upload starts
        ("/leading-slash".into(), 10),
        ("\\leading-backslash".into(), 0),
        ("dir/".into(), 0),
        ("dir//double".into(), 10),
        ("50% off? #1 + more".into(), 0),
    ]);
    let emu = prop_emulator();
    prop_runtime().block_on(check_keys(emu, objects));
}

#[tokio::test]
async fn a_destination_prefix_counts_toward_the_key_limit() {
    let job = Job::new("prefix-limit").await;
    let key = padded("fits-in-s3-and-oss/".into(), 1020);
    let data = seeded(1, 5000);
    job.put(&key, &data).await;
    let into_root = job.copier("", quick_retries()).await;
    assert_eq!(into_root.copy(&key).await.outcome, copied(&data, false));
    let into_prefix = job.copier("migrated/", quick_retries()).await;
    match into_prefix.copy(&key).await.outcome {
        Outcome::Failed {
            reason,
            retryable: false,
        } if reason.contains("1023") => {}
        other => panic!("a 1029-byte destination key must fail: {other:?}"),
    }
    assert_eq!(job.dst.keys(&job.bucket).unwrap(), [key]);
}

// ---------------------------------------------------------------------------------------------
// checksums

async fn put_with_checksum(job: &Job, key: &str, data: &[u8], algorithm: ChecksumAlgorithm) {
    job.s3
        .put_object()
        .bucket(&job.bucket)
        .key(key)
        .body(SdkBody::from(data.to_vec()))
        .checksum_algorithm(algorithm)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key:?}: {}", sdk_error(&e)));
}

#[tokio::test]
async fn objects_copy_after_their_s3_checksum_is_checked_and_composites_are_not_checked() {
    let job = Job::new("checksums").await;
    let small = seeded(2, 300_000);
    let part1 = seeded(3, 5 * 1024 * 1024);
    let part2 = seeded(4, 100_000);
    let big: Vec<u8> = [part1.as_slice(), &part2].concat();
    job.put("md5", &small).await;
    put_with_checksum(&job, "nvme", &small, ChecksumAlgorithm::Crc64Nvme).await;
    put_with_checksum(&job, "c", &small, ChecksumAlgorithm::Crc32C).await;
    let (s3, bucket) = (&job.s3, &job.bucket);
    let parts: [&[u8]; 2] = [&part1, &part2];
    moto::multipart_put(
        s3,
        bucket,
        "composite-c",
        &parts,
        Some(ChecksumAlgorithm::Crc32C),
    )
    .await;
    moto::multipart_put(
        s3,
        bucket,
        "full-nvme",
        &parts,
        Some(ChecksumAlgorithm::Crc64Nvme),
    )
    .await;

    // What the copy will hold the bytes to, as HEAD reports it.
    let src = job.source().await;
    let sums = |key: &'static str| {
        let src = src.clone();
        async move { src.head(key).await.unwrap().checksums }
    };
    assert_eq!(sums("md5").await.md5, Some(Md5::digest(&small).into()));
    let nvme = crc_fast::checksum(CrcAlgorithm::Crc64Nvme, &small);
    assert_eq!(sums("nvme").await.crc64nvme, Some(nvme));
    let crc32c = crc_fast::checksum(CrcAlgorithm::Crc32Iscsi, &small) as u32;
    assert_eq!(sums("c").await.crc32c, Some(crc32c));
    assert_eq!(
        sums("composite-c").await,
        SourceChecksums::default(),
        "a composite CRC32C and a multipart ETag say nothing about the whole byte stream"
    );
    let big_nvme = crc_fast::checksum(CrcAlgorithm::Crc64Nvme, &big);
    assert_eq!(sums("full-nvme").await.crc64nvme, Some(big_nvme));

    let objects: [(&str, &[u8]); 5] = [
        ("md5", &small),
        ("nvme", &small),
        ("c", &small),
        ("composite-c", &big),
        ("full-nvme", &big),
    ];
    for (prefix, options, multipart) in [
        ("whole/", quick_retries(), false),
        ("parts/", small_parts(), true),
    ] {
        let copier = job.copier(prefix, options).await;
        for (key, data) in objects {
            let r = copier.copy(key).await;
            assert_eq!(r.outcome, copied(data, multipart), "{prefix}{key}");
            let stored = job.stored(&format!("{prefix}{key}")).await;
            assert_eq!(stored.as_deref(), Some(data), "{prefix}{key}");
        }
    }
}

#[tokio::test]
async fn a_checksum_that_disagrees_with_the_bytes_names_the_algorithm_and_both_values() {
    let data = seeded(5, 10_000);
    let stream: ByteStream = Box::pin(futures_util::stream::iter(
        data.chunks(3000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    ));
    let every = Wanted {
        md5: true,
        crc64nvme: true,
        crc32c: true,
    };
    let (mut stream, inspector) = Inspector::wrap(stream, every);
    while stream.next().await.is_some() {}
    let read = inspector.digests();
    let right = SourceChecksums {
        md5: Some(Md5::digest(&data).into()),
        crc64nvme: Some(crc_fast::checksum(CrcAlgorithm::Crc64Nvme, &data)),
        crc32c: Some(crc_fast::checksum(CrcAlgorithm::Crc32Iscsi, &data) as u32),
        oss_crc64: Some(ferry::crc64::checksum(&data)),
    };
    assert_eq!(check_source(&right, &read), Ok(()));

    let mut md5 = right.md5.unwrap();
    md5[15] ^= 1;
    let nvme = right.crc64nvme.unwrap() ^ 1;
    let crc32c = right.crc32c.unwrap() ^ 1;
    let oss = right.oss_crc64.unwrap() ^ 1;
    let cases = [
        (
            SourceChecksums {
                md5: Some(md5),
                ..right.clone()
            },
            [
                "MD5".to_owned(),
                hex::encode(md5),
                hex::encode(read.md5.unwrap()),
            ],
        ),
        (
            SourceChecksums {
                crc64nvme: Some(nvme),
                ..right.clone()
            },
            [
                "CRC-64/NVME".to_owned(),
                format!("{nvme:016x}"),
                format!("{:016x}", read.crc64nvme.unwrap()),
            ],
        ),
        (
            SourceChecksums {
                crc32c: Some(crc32c),
                ..right.clone()
            },
            [
                "CRC-32C".to_owned(),
                format!("{crc32c:08x}"),
                format!("{:08x}", read.crc32c.unwrap()),
            ],
        ),
        (
            SourceChecksums {
                oss_crc64: Some(oss),
                ..right.clone()
            },
            ["CRC-64".to_owned(), oss.to_string(), read.crc64.to_string()],
        ),
    ];
    for (wrong, names) in cases {
        let reason = check_source(&wrong, &read).unwrap_err().to_string();
        for name in names {
            assert!(reason.contains(&name), "{reason:?} should name {name}");
        }
    }
}

/// moto stores a checksum the uploader declares without checking it, so a source object whose
/// declared checksum disagrees with its bytes can be made for real.
async fn put_declaring(job: &Job, key: &str, data: &[u8], algorithm: ChecksumAlgorithm) {
    let call = job
        .s3
        .put_object()
        .bucket(&job.bucket)
        .key(key)
        .body(SdkBody::from(data.to_vec()))
        .checksum_algorithm(algorithm.clone());
    let call = match algorithm {
        ChecksumAlgorithm::Crc32C => call.checksum_crc32_c("AAAAAA=="),
        _ => call.checksum_crc64_nvme("AAAAAAAAAAA="),
    };
    call.send()
        .await
        .unwrap_or_else(|e| panic!("put {key:?}: {}", sdk_error(&e)));
}

#[tokio::test]
async fn bytes_that_disagree_with_the_source_checksum_fail_and_leave_nothing_at_the_destination() {
    let job = Job::new("liars").await;
    let data = seeded(6, 300_000);
    put_declaring(&job, "liar-c", &data, ChecksumAlgorithm::Crc32C).await;
    put_declaring(&job, "liar-nvme", &data, ChecksumAlgorithm::Crc64Nvme).await;
    job.put("honest", &data).await;
    let src = job.source().await;
    assert_eq!(src.head("liar-c").await.unwrap().checksums.crc32c, Some(0));
    assert_eq!(
        src.head("liar-nvme").await.unwrap().checksums.crc64nvme,
        Some(0)
    );

    // Read whole (single PUT) and in ranged parts (multipart). A second run must not take
    // what the first left behind for a finished copy.
    let runs = [("whole/", quick_retries()), ("parts/", small_parts())];
    for (prefix, options) in runs.into_iter().flat_map(|run| [run.clone(), run]) {
        let copier = job.copier(prefix, options).await;
        let results = walk(&copier, &WalkOptions::default()).await;
        assert_eq!(results.len(), 3);
        for r in &results {
            let dest_key = format!("{prefix}{}", r.key);
            if r.key == "honest" {
                assert!(
                    matches!(r.outcome, Outcome::Copied { .. } | Outcome::Skipped { .. }),
                    "{r:?}"
                );
                continue;
            }
            match &r.outcome {
                Outcome::Failed {
                    reason,
                    retryable: true,
                } => assert!(
                    reason.contains("CRC-32C")
                        || reason.contains("CRC-64/NVME")
                        || reason.contains("checksum mismatch"),
                    "{dest_key}: {reason}"
                ),
                other => panic!("{dest_key}: a checksum mismatch must fail, got {other:?}"),
            }
            assert!(
                job.dst.object_info(&job.bucket, &dest_key).is_none(),
                "{dest_key}: unproven bytes must not become the destination object"
            );
        }
    }
    let uploads = job
        .dst
        .client()
        .list_multipart_uploads(&job.bucket, &Default::default())
        .await
        .unwrap();
    assert!(uploads.uploads.is_empty(), "{:?}", uploads.uploads);
}

// ---------------------------------------------------------------------------------------------
// metadata

#[tokio::test]
async fn content_headers_metadata_tags_and_storage_classes_carry_over() {
    let dir = tempfile::tempdir().unwrap();
    let job = Job::with_data_dir("metadata", Some(dir.path())).await;
    let data = seeded(7, 4000);
    let expires = AwsDateTime::from_secs(2_114_380_800); // 2037-01-01T00:00:00Z
    let put = job
        .s3
        .put_object()
        .bucket(&job.bucket)
        .key("docs/report 1.pdf")
        .body(SdkBody::from(data.clone()))
        .content_type("application/pdf")
        .content_encoding("gzip")
        .content_disposition("attachment; filename=\"report 1.pdf\"")
        .content_language("de-CH")
        .cache_control("max-age=3600, public")
        .expires(expires)
        .metadata("owner", "team-a")
        .metadata("review-state", "approved")
        .metadata("my_name", "underscore")
        .metadata("v1.2", "dot")
        .tagging("project=ferry&stage=two%20words&contact=ops%40example.com")
        .storage_class(S3Class::StandardIa)
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().trim_matches('"').to_owned();
    for (key, class) in [
        ("instant", S3Class::GlacierIr),
        ("plain", S3Class::Standard),
    ] {
        job.s3
            .put_object()
            .bucket(&job.bucket)
            .key(key)
            .body(SdkBody::from(data.clone()))
            .storage_class(class)
            .send()
            .await
            .unwrap();
    }
    let copier = job.copier("", quick_retries()).await;
    let results = walk(&copier, &WalkOptions::default()).await;
    for r in &results {
        assert_eq!(r.outcome, copied(&data, false), "{}", r.key);
    }
    assert_eq!(
        job.stored("docs/report 1.pdf").await.as_deref(),
        Some(&data[..])
    );

    // Names and tags OSS refuses are reported on the object, one note each, not dropped
    // silently (S3 allows `@` in tags, OSS does not).
    let doc = result(&results, "docs/report 1.pdf");
    assert_eq!(doc.notes.len(), 3, "{:?}", doc.notes);
    for name in ["my_name", "v1.2", "tag \"contact\""] {
        assert!(
            doc.notes.iter().any(|n| n.contains(name)),
            "{:?}",
            doc.notes
        );
    }
    assert!(result(&results, "plain").notes.is_empty());

    let oss = job.dst.client();
    let head = oss
        .head_object(&job.bucket, "docs/report 1.pdf")
        .await
        .unwrap();
    assert_eq!(head.content_type.as_deref(), Some("application/pdf"));
    assert_eq!(head.content_encoding.as_deref(), Some("gzip"));
    assert_eq!(
        head.content_disposition.as_deref(),
        Some("attachment; filename=\"report 1.pdf\"")
    );
    assert_eq!(head.content_language.as_deref(), Some("de-CH"));
    assert_eq!(head.cache_control.as_deref(), Some("max-age=3600, public"));
    let expires_at = chrono::DateTime::parse_from_rfc2822(head.expires.as_deref().unwrap())
        .expect("Expires is an HTTP date");
    assert_eq!(expires_at.timestamp(), expires.secs());
    let user: BTreeMap<&str, &str> = head
        .metadata
        .iter()
        .filter(|(k, _)| !k.starts_with("ferry-"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        user,
        BTreeMap::from([("owner", "team-a"), ("review-state", "approved")])
    );
    assert_eq!(head.metadata.get("ferry-src-etag"), Some(&etag));
    assert!(head.metadata.contains_key("ferry-src-mtime"));
    assert_eq!(head.tagging_count, Some(2));
    // Read back through OSS's GetObjectTagging (the emulator's, proven with oss2).
    let mut tags = oss
        .get_object_tagging(&job.bucket, "docs/report 1.pdf")
        .await
        .unwrap();
    tags.sort();
    assert_eq!(
        tags,
        [
            ("project".to_owned(), "ferry".to_owned()),
            ("stage".to_owned(), "two words".to_owned())
        ]
    );

    let class = |key: &'static str| {
        let oss = oss.clone();
        let bucket = job.bucket.clone();
        async move { oss.head_object(&bucket, key).await.unwrap().storage_class }
    };
    assert_eq!(class("docs/report 1.pdf").await, Some(StorageClass::IA));
    assert_eq!(class("instant").await, Some(StorageClass::IA));
    assert_eq!(class("plain").await, Some(StorageClass::Standard));
    assert_eq!(
        oss.head_object(&job.bucket, "plain")
            .await
            .unwrap()
            .tagging_count,
        None
    );

    // A job can fix the class instead of mapping it.
    let fixed = job
        .copier(
            "fixed/",
            CopyOptions {
                storage_class: ClassPolicy::Fixed(StorageClass::Archive),
                ..quick_retries()
            },
        )
        .await;
    assert_eq!(
        fixed.copy("docs/report 1.pdf").await.outcome,
        copied(&data, false)
    );
    assert_eq!(
        class("fixed/docs/report 1.pdf").await,
        Some(StorageClass::Archive)
    );
}

// ---------------------------------------------------------------------------------------------
// archive

#[tokio::test]
async fn archived_objects_need_restore_and_copy_once_s3_restored_them() {
    let job = Job::new("archive").await;
    let data = seeded(8, 3000);
    for (key, class) in [
        ("cold", S3Class::Glacier),
        ("deep", S3Class::DeepArchive),
        ("warm", S3Class::Standard),
    ] {
        job.s3
            .put_object()
            .bucket(&job.bucket)
            .key(key)
            .body(SdkBody::from(data.clone()))
            .storage_class(class)
            .send()
            .await
            .unwrap();
    }
    let src = job.source().await;
    let copier = job.copier("", quick_retries()).await;
    let report = WalkOptions::default();
    let restore = WalkOptions {
        archive: ArchivePolicy::Restore,
        restore_days: 2,
        ..Default::default()
    };

    let first = walk(&copier, &report).await;
    for key in ["cold", "deep"] {
        let r = result(&first, key);
        assert_eq!(r.outcome, Outcome::NeedsRestore, "{key}");
        assert!(
            r.notes.is_empty(),
            "reporting asks for nothing: {:?}",
            r.notes
        );
        assert_eq!(
            src.head(key).await.unwrap().archive,
            ArchiveState::Archived,
            "reporting never restores"
        );
        assert!(job.stored(key).await.is_none());
    }
    assert_eq!(result(&first, "warm").outcome, copied(&data, false));

    let second = walk(&copier, &restore).await;
    for key in ["cold", "deep"] {
        let r = result(&second, key);
        assert_eq!(r.outcome, Outcome::NeedsRestore, "{key}");
        assert_eq!(r.notes, ["restore requested for 2 days"], "{key}");
    }
    assert!(matches!(
        result(&second, "warm").outcome,
        Outcome::Skipped { .. }
    ));

    // moto restores at once (its default state progression); the next walk copies.
    assert_eq!(
        src.head("cold").await.unwrap().archive,
        ArchiveState::Restored
    );
    assert_eq!(
        src.restore("cold", 2, RestoreTier::Standard).await.unwrap(),
        RestoreOutcome::AlreadyRestored
    );
    let third = walk(&copier, &restore).await;
    for (key, class) in [("cold", EmuClass::Archive), ("deep", EmuClass::ColdArchive)] {
        let r = result(&third, key);
        assert_eq!(r.outcome, copied(&data, false), "{key}");
        assert!(r.notes.is_empty(), "{key}: {:?}", r.notes);
        assert_eq!(job.stored(key).await.as_deref(), Some(&data[..]));
        let info = job.dst.object_info(&job.bucket, key).unwrap();
        assert_eq!(info.storage_class, class, "{key}");
    }
}

// ---------------------------------------------------------------------------------------------
// large objects

#[tokio::test]
async fn a_20_mib_object_goes_up_in_parallel_parts_and_arrives_byte_exact() {
    let job = Job::new("large").await;
    let data = seeded(9, 20 * 1024 * 1024 + 7);
    let (a, b) = data.split_at(10 * 1024 * 1024);
    moto::multipart_put(
        &job.s3,
        &job.bucket,
        "big.bin",
        &[a, b],
        Some(ChecksumAlgorithm::Crc64Nvme),
    )
    .await;
    let source = Arc::new(Watched::new(job.source().await));
    let head = source.head("big.bin").await.unwrap();
    assert!(
        head.checksums.crc64nvme.is_some(),
        "the parts are also checked against S3's full-object CRC64NVME"
    );
    // Slow part uploads make the parts overlap for certain.
    job.dst
        .add_fault(FaultRule::latency("UploadPart", Duration::from_millis(150)))
        .unwrap();
    let part_size = 5 * 1024 * 1024;
    let copier = copier(
        source.clone(),
        &job.dst,
        &job.bucket,
        CopyOptions {
            multipart_threshold: 8 * 1024 * 1024,
            part_size,
            part_concurrency: 4,
            ..quick_retries()
        },
    );
    let r = copier.copy("big.bin").await;
    assert_eq!(r.outcome, copied(&data, true));
    let info = job.dst.object_info(&job.bucket, "big.bin").unwrap();
    assert_eq!(info.crc64, Some(ferry::crc64::checksum(&data)));
    assert_eq!(info.object_type, "Multipart");
    assert_eq!(job.stored("big.bin").await.as_deref(), Some(&data[..]));
    let parts = data.len().div_ceil(part_size as usize) as u64;
    assert_eq!(
        job.dst
            .counters()
            .object(&job.bucket, "big.bin", "UploadPart"),
        parts
    );
    let peak = source.peak_reads();
    assert!(
        (2..=4).contains(&peak),
        "{peak} source reads open at once; want parallel parts, at most part_concurrency"
    );
}

// ---------------------------------------------------------------------------------------------
// throttling

fn slow_gets_of(bucket: &str, key: &str, count: Option<u64>) -> Rule {
    Rule {
        method: "GET".into(),
        target_contains: format!("/{bucket}/{key}"),
        // GetObjectTagging (HEAD's companion) goes through; only the reads are throttled.
        target_lacks: Some("tagging".into()),
        count,
    }
}

#[tokio::test]
async fn s3_slowdown_is_backed_off_and_a_lasting_one_fails_retryable_after_bounded_tries() {
    let job = Job::new("throttled").await;
    let data = seeded(10, 300_000);
    job.put("brief", &data).await;
    job.put("lasting", &data).await;

    // Two SlowDowns, then S3 serves: the copy backs off, tries again and succeeds.
    let brief =
        ThrottleProxy::start(job.moto.addr(), slow_gets_of(&job.bucket, "brief", Some(2))).await;
    let source = S3Source::new(s3_config(brief.endpoint(), &job.bucket))
        .await
        .unwrap();
    let c = copier(Arc::new(source), &job.dst, &job.bucket, quick_retries());
    assert_eq!(c.copy("brief").await.outcome, copied(&data, false));
    assert_eq!(brief.throttled(), 2);
    assert_eq!(job.stored("brief").await.as_deref(), Some(&data[..]));

    // S3 keeps throttling: the object fails, retryable, naming SlowDown, after
    // ferry's attempts × the SDK's attempts reads — no more.
    let lasting =
        ThrottleProxy::start(job.moto.addr(), slow_gets_of(&job.bucket, "lasting", None)).await;
    let mut config = s3_config(lasting.endpoint(), &job.bucket);
    config.max_attempts = 2;
    let source = S3Source::new(config).await.unwrap();
    let c = copier(Arc::new(source), &job.dst, &job.bucket, quick_retries());
    match c.copy("lasting").await.outcome {
        Outcome::Failed {
            reason,
            retryable: true,
        } if reason.contains("SlowDown") => {}
        other => panic!("a lasting SlowDown must fail retryable: {other:?}"),
    }
    assert_eq!(lasting.matched(), 2 * 2, "ferry attempts × SDK attempts");
    assert!(job.stored("lasting").await.is_none());
}
