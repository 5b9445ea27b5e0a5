//! Small objects cost one source request: a listed object below the multipart threshold is
//! opened with one GET whose headers describe it (no HEAD), read by the S3 adapter's lean GET
//! once it has learned the address from the SDK, and still copied with its metadata, tags and
//! checksum proof. Also: an object replaced or deleted between the listing and the GET is
//! handled as what the GET found, a failed lean read falls back to the SDK, and copies overlap
//! across listing pages.
//!
//! Sources: the OSS emulator's S3 dialect (it counts requests per operation) and moto (tags,
//! S3 checksums).

use crate::support::moto;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream as SdkBody;
use aws_sdk_s3::types::{ChecksumAlgorithm, StorageClass as S3Class};
use bytes::Bytes;
use ferry::oss::RequestBody;
use ferry::oss::types::ObjectOptions;
use ferry::source::s3::S3Source;
use ferry::source::{Opened, Source};
use ferry::testing::data::seeded;
use ferry::testing::watched::Watched;
use ferry::transfer::resume::MemoryLedger;
use ferry::transfer::{
    Copier, CopyOptions, Destination, ObjectResult, Outcome, WalkOptions, walk_range,
};
use futures_util::StreamExt;
use oss_emulator::{Emulator, FaultRule};

const REGION: &str = "cn-hangzhou";

/// The emulator's S3 dialect as an S3 source (SigV4 with the emulator's own key pair).
async fn s3_source_of(emu: &Emulator, bucket: &str) -> S3Source {
    let ak = emu.access_key_id().to_owned();
    let mut config = ferry::testing::s3_config(
        emu.endpoint(),
        REGION,
        bucket,
        &ak,
        &oss_emulator::test_secret(&ak),
    );
    config.max_attempts = 2;
    S3Source::new(config).await.expect("valid S3 config")
}

fn copier(source: Arc<dyn Source>, dst: &Emulator, options: CopyOptions) -> Copier {
    Copier {
        source,
        dest: Destination::new(dst.client(), "dst", ""),
        options,
        ledger: Arc::new(MemoryLedger::new()),
        server_side: None,
    }
}

fn quick() -> CopyOptions {
    CopyOptions {
        attempts: 2,
        retry_delay: Duration::from_millis(10),
        ..Default::default()
    }
}

fn copied(data: &[u8], multipart: bool) -> Outcome {
    Outcome::Copied {
        crc64: ferry::crc64::checksum(data),
        multipart,
    }
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

/// Source and destination emulators with buckets `src` and `dst`.
struct World {
    src: Emulator,
    dst: Emulator,
}

impl World {
    async fn new() -> World {
        let (src, dst) = (
            Emulator::for_test("src-ak").await,
            Emulator::for_test("dst-ak").await,
        );
        src.create_bucket("src").unwrap();
        dst.create_bucket("dst").unwrap();
        World { src, dst }
    }

    async fn put(&self, key: &str, data: &[u8], options: &ObjectOptions) -> String {
        let out = self
            .src
            .client()
            .put_object("src", key, RequestBody::from_bytes(data.to_vec()), options)
            .await
            .unwrap_or_else(|e| panic!("seed {key:?}: {e}"));
        out.etag.unwrap_or_default().trim_matches('"').to_owned()
    }
}

fn with_metadata(content_type: &str, owner: &str) -> ObjectOptions {
    ObjectOptions {
        content_type: Some(content_type.into()),
        cache_control: Some("max-age=60, public".into()),
        metadata: BTreeMap::from([("owner".to_owned(), owner.to_owned())]),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_small_object_costs_one_source_request_and_keeps_metadata_and_proof() {
    let w = World::new().await;
    let mut data = BTreeMap::new();
    for i in 0..6u64 {
        let len = [0, 1, 4000, 16 * 1024, 70_000, 5][i as usize];
        data.insert(format!("obj/{i}"), seeded(i, len));
    }
    let mut etags = BTreeMap::new();
    for (key, bytes) in &data {
        let etag = w.put(key, bytes, &with_metadata("text/plain", key)).await;
        etags.insert(key.clone(), etag);
    }
    let source = Arc::new(s3_source_of(&w.src, "src").await);
    let c = copier(source.clone(), &w.dst, quick());
    w.src.reset_counters();
    let options = WalkOptions {
        page_size: 2,
        object_concurrency: 4,
        ..Default::default()
    };
    let results = walk(&c, &options).await;

    let counters = w.src.counters();
    assert_eq!(counters.operation("HeadObject"), 0, "{counters:?}");
    assert_eq!(counters.operation("GetObject"), 6, "one GET per object");
    assert_eq!(counters.operation("ListObjectsV2"), 3, "three pages of two");
    assert!(source.reads_fast(), "the lean GET learned the address");

    let dst = w.dst.client();
    for (key, bytes) in &data {
        let r = result(&results, key);
        assert_eq!(r.outcome, copied(bytes, false), "{key}");
        assert_eq!(r.size, bytes.len() as u64);
        let etag = r.source_etag.as_deref().map(str::to_ascii_lowercase);
        assert_eq!(etag, Some(etags[key].to_ascii_lowercase()), "{key}");
        let stored = w.dst.object_bytes("dst", key).await;
        assert_eq!(stored.as_deref(), Some(bytes.as_slice()), "{key}");
        let head = dst.head_object("dst", key).await.unwrap();
        assert_eq!(head.content_type.as_deref(), Some("text/plain"), "{key}");
        assert_eq!(head.cache_control.as_deref(), Some("max-age=60, public"));
        assert_eq!(head.metadata.get("owner"), Some(key), "{key}");
        let stamp = head
            .metadata
            .get("ferry-src-etag")
            .map(|e| e.to_ascii_lowercase());
        assert_eq!(stamp, Some(etags[key].to_ascii_lowercase()), "{key}");
        assert!(head.metadata.contains_key("ferry-src-mtime"), "{key}");
    }
}

/// Everything `head` says about an object must also come out of `open`, through the SDK (the
/// first read, which teaches the lean GET) and through the lean GET (the reads after it).
#[tokio::test]
async fn opening_describes_an_object_exactly_as_head_does_and_reads_its_bytes() {
    let moto = moto::Moto::shared();
    let bucket = "one-read-heads";
    let s3 = moto.create_bucket(bucket).await;
    let data = seeded(7, 5000);
    s3.put_object()
        .bucket(bucket)
        .key("rich/report 1.pdf")
        .body(SdkBody::from(data.clone()))
        .content_type("application/pdf")
        .content_encoding("gzip")
        .content_disposition("attachment; filename=\"report 1.pdf\"")
        .content_language("de-CH")
        .cache_control("max-age=3600, public")
        .expires(aws_sdk_s3::primitives::DateTime::from_secs(2_114_380_800))
        .metadata("owner", "team-a")
        .metadata("review-state", "approved, twice")
        .tagging("project=ferry&stage=two%20words")
        .storage_class(S3Class::StandardIa)
        .checksum_algorithm(ChecksumAlgorithm::Crc32C)
        .send()
        .await
        .expect("put rich");
    for (key, algorithm) in [
        ("plain", None),
        ("nvme", Some(ChecksumAlgorithm::Crc64Nvme)),
    ] {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(SdkBody::from(data.clone()))
            .set_checksum_algorithm(algorithm)
            .send()
            .await
            .expect("put");
    }
    let config = ferry::testing::s3_config(
        moto.endpoint(),
        moto::REGION,
        bucket,
        moto::ACCESS_KEY_ID,
        moto::SECRET_ACCESS_KEY,
    );
    let source = S3Source::new(config).await.unwrap();
    for round in 0..3 {
        for key in ["rich/report 1.pdf", "plain", "nvme"] {
            let head = source.head(key).await.unwrap();
            let Opened { head: opened, body } = source.open(key).await.unwrap();
            assert_eq!(opened, head, "round {round}, {key}");
            let read: Vec<Bytes> = body.map(|c| c.unwrap()).collect().await;
            assert_eq!(read.concat(), data, "round {round}, {key}");
        }
        assert!(source.reads_fast(), "after round {round}");
    }
    let rich = source.head("rich/report 1.pdf").await.unwrap();
    assert_eq!(rich.tags.len(), 2, "tags are read: {:?}", rich.tags);
    assert!(rich.checksums.crc32c.is_some(), "{:?}", rich.checksums);
    assert!(
        source
            .head("nvme")
            .await
            .unwrap()
            .checksums
            .crc64nvme
            .is_some()
    );
}

#[tokio::test]
async fn an_object_replaced_or_deleted_after_listing_is_copied_as_the_get_found_it() {
    let w = World::new().await;
    let old = seeded(1, 3000);
    for key in ["changed", "grown", "gone", "same"] {
        w.put(key, &old, &with_metadata("text/old", "old")).await;
    }
    let newer = seeded(2, 5000);
    let big = seeded(3, 350 * 1024);
    let src = w.src.client();
    let (newer_c, big_c) = (newer.clone(), big.clone());
    let change = async move {
        let options = with_metadata("text/new", "new");
        src.put_object("src", "changed", RequestBody::from_bytes(newer_c), &options)
            .await
            .unwrap();
        src.put_object("src", "grown", RequestBody::from_bytes(big_c), &options)
            .await
            .unwrap();
        src.delete_object("src", "gone").await.unwrap();
    };
    let source = Watched::new(s3_source_of(&w.src, "src").await).after_first_listing(change);
    let options = CopyOptions {
        multipart_threshold: 300 * 1024,
        part_size: 100 * 1024,
        ..quick()
    };
    let c = copier(Arc::new(source), &w.dst, options);
    let results = walk(&c, &WalkOptions::default()).await;

    let dst = w.dst.client();
    for (key, data, multipart) in [("changed", &newer, false), ("grown", &big, true)] {
        let r = result(&results, key);
        assert_eq!(r.outcome, copied(data, multipart), "{key}");
        assert_eq!(
            r.size,
            data.len() as u64,
            "{key}: the size read, not the size listed"
        );
        let now = w
            .src
            .object_info("src", key)
            .unwrap()
            .etag
            .to_ascii_lowercase();
        assert_eq!(
            r.source_etag
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some(now.as_str()),
            "{key}"
        );
        assert_eq!(
            w.dst.object_bytes("dst", key).await.as_deref(),
            Some(data.as_slice())
        );
        let head = dst.head_object("dst", key).await.unwrap();
        assert_eq!(head.content_type.as_deref(), Some("text/new"), "{key}");
        assert_eq!(head.metadata.get("owner").map(String::as_str), Some("new"));
        assert_eq!(
            head.metadata
                .get("ferry-src-etag")
                .map(|e| e.to_ascii_lowercase()),
            Some(now),
            "{key}: the stamp names the version copied"
        );
    }
    match &result(&results, "gone").outcome {
        Outcome::Failed {
            reason,
            retryable: false,
        } if reason.contains("NotFound") => {}
        other => panic!("a deleted object fails as not found: {other:?}"),
    }
    assert!(w.dst.object_info("dst", "gone").is_none());
    assert_eq!(result(&results, "same").outcome, copied(&old, false));
}

#[tokio::test]
async fn a_failed_or_broken_lean_read_is_read_again_and_still_proven() {
    let w = World::new().await;
    let data: Vec<Vec<u8>> = (0..3).map(|i| seeded(10 + i, 20_000)).collect();
    for (i, d) in data.iter().enumerate() {
        w.put(&format!("k{i}"), d, &ObjectOptions::default()).await;
    }
    let source = Arc::new(s3_source_of(&w.src, "src").await);
    let c = copier(source.clone(), &w.dst, quick());
    let listed = |key: &str, d: &[u8]| ferry::source::ObjectInfo {
        key: key.into(),
        size: d.len() as u64,
        etag: None,
        last_modified: None,
        storage_class: None,
        archive: Default::default(),
    };
    // The first read goes through the SDK and teaches the lean GET.
    assert_eq!(
        c.copy_listed(&listed("k0", &data[0])).await.outcome,
        copied(&data[0], false)
    );
    assert!(source.reads_fast());

    // A lean read answered 503: the same attempt reads through the SDK instead.
    w.src.reset_counters();
    w.src
        .add_fault(FaultRule::error("GetObject", 503).count(1))
        .unwrap();
    assert_eq!(
        c.copy_listed(&listed("k1", &data[1])).await.outcome,
        copied(&data[1], false)
    );
    let counters = w.src.counters();
    assert_eq!(counters.status("GetObject", 503), 1);
    assert_eq!(counters.object("src", "k1", "GetObject"), 2, "{counters:?}");
    assert!(
        source.reads_fast(),
        "one failure does not turn the lean GET off"
    );

    // A lean body cut short: the attempt fails (the length is proven) and the retry reads again.
    w.src.clear_faults();
    w.src.reset_counters();
    w.src
        .add_fault(FaultRule::truncate("GetObject").count(1))
        .unwrap();
    assert_eq!(
        c.copy_listed(&listed("k2", &data[2])).await.outcome,
        copied(&data[2], false)
    );
    assert_eq!(w.src.counters().object("src", "k2", "GetObject"), 2);
    assert_eq!(
        w.dst.object_bytes("dst", "k2").await.as_deref(),
        Some(data[2].as_slice())
    );
}

#[tokio::test]
async fn copies_overlap_across_listing_pages() {
    let w = World::new().await;
    let data = seeded(20, 2000);
    for i in 0..12 {
        w.put(&format!("p/{i:02}"), &data, &ObjectOptions::default())
            .await;
    }
    // Slow reads make the copies overlap for certain (listings stay fast).
    w.src
        .add_fault(FaultRule::latency("GetObject", Duration::from_millis(150)))
        .unwrap();
    let source = Arc::new(Watched::new(s3_source_of(&w.src, "src").await));
    let c = copier(source.clone(), &w.dst, quick());
    let options = WalkOptions {
        page_size: 2,
        object_concurrency: 6,
        ..Default::default()
    };
    let results = walk(&c, &options).await;
    assert_eq!(results.len(), 12);
    assert!(results.iter().all(|r| r.outcome == copied(&data, false)));
    let peak = source.peak_reads();
    assert!(
        (3..=6).contains(&peak),
        "{peak} copies at once with pages of 2 and a concurrency of 6: pages must not wait for each other"
    );
}
