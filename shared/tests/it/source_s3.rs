//! The S3 source adapter against a real moto server: listing (pagination, delimiters,
//! start-after, awkward keys), HEAD mapping (headers, metadata, tags, versions, checksums), ranged
//! and conditional GETs, archive objects and restores, and the config's safety checks.

use crate::support::moto;

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream as SdkBody, DateTime as AwsDateTime};
use aws_sdk_s3::types::{
    BucketVersioningStatus, ChecksumAlgorithm, StorageClass, VersioningConfiguration,
};
use crc_fast::CrcAlgorithm;
use ferry::secret::Secret;
use ferry::source::s3::{S3Credentials, S3Source, S3SourceConfig};
use ferry::source::{
    ArchiveState, GetRequest, ListPage, ListRequest, RestoreOutcome, RestoreTier, Source,
    SourceErrorKind,
};
use ferry::testing::data::seeded;
use futures_util::StreamExt;
use md5::{Digest, Md5};
use moto::Moto;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// helpers

fn config(moto: &Moto, bucket: &str) -> S3SourceConfig {
    ferry::testing::s3_config(
        moto.endpoint(),
        moto::REGION,
        bucket,
        moto::ACCESS_KEY_ID,
        moto::SECRET_ACCESS_KEY,
    )
}

async fn source(moto: &Moto, bucket: &str) -> S3Source {
    S3Source::new(config(moto, bucket))
        .await
        .expect("valid config")
}

async fn put(s3: &Client, bucket: &str, key: &str, body: &[u8]) -> String {
    let out = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(SdkBody::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "put {key:?}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        });
    out.e_tag().unwrap_or_default().trim_matches('"').to_owned()
}

/// Every page of a listing, `max_keys` at a time.
async fn list_all(src: &S3Source, mut req: ListRequest) -> (Vec<String>, Vec<String>, usize) {
    let (mut keys, mut prefixes, mut pages) = (Vec::new(), Vec::new(), 0);
    loop {
        let ListPage {
            objects,
            common_prefixes,
            next,
            unnamable,
        } = src.list(&req).await.expect("list");
        assert!(unnamable.is_empty(), "{unnamable:?}");
        pages += 1;
        assert!(
            objects.len() + common_prefixes.len() <= req.max_keys as usize,
            "page larger than max_keys"
        );
        keys.extend(objects.into_iter().map(|o| o.key));
        prefixes.extend(common_prefixes);
        match next {
            Some(token) => req.continuation = Some(token),
            None => return (keys, prefixes, pages),
        }
        assert!(pages < 10_000, "listing does not end");
    }
}

async fn read_all(
    src: &S3Source,
    req: GetRequest<'_>,
) -> Result<Vec<u8>, ferry::source::SourceError> {
    let mut stream = src.get(req).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// Keys that trip up URL encoding, XML and sorting.
fn awkward_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "plain",
        "with space",
        " leading space",
        "trailing space ",
        "plus+sign",
        "a+b c",
        "percent%20literal",
        "percent%",
        "question?mark",
        "hash#tag",
        "amp&eq=",
        "dir/",
        "dir//double",
        "dir/sub/file",
        "ünïcödé/ключ",
        "日本語のキー",
        "emoji😀",
        "tab\there",
        "quote\"apostrophe'",
        "lt<gt>",
        "~tilde",
        "back\\slash",
        "zero-byte",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    keys.push("k".repeat(1023));
    keys.push(format!("long/{}", "é".repeat(509))); // 5 + 1018 = 1023 bytes of UTF-8
    keys
}

// ---------------------------------------------------------------------------------------------
// list

#[tokio::test]
async fn listing_pages_every_awkward_key_once_in_byte_order() {
    let moto = Moto::shared();
    let bucket = "list-awkward";
    let s3 = moto.create_bucket(bucket).await;
    let keys = awkward_keys();
    for (i, key) in keys.iter().enumerate() {
        let body: Vec<u8> = if key == "zero-byte" || i % 3 == 0 {
            Vec::new()
        } else {
            seeded(i as u64, i * 7)
        };
        put(&s3, bucket, key, &body).await;
    }
    let src = source(moto, bucket).await;
    let mut want = keys.clone();
    want.sort(); // String order is UTF-8 byte order, the order S3 lists in.

    for max_keys in [1, 4, 1000] {
        let (got, prefixes, pages) = list_all(
            &src,
            ListRequest {
                max_keys,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(got, want, "max_keys {max_keys}");
        assert!(prefixes.is_empty());
        assert_eq!(
            pages,
            want.len().div_ceil(max_keys as usize),
            "max_keys {max_keys}"
        );
    }

    // Sizes and ETags come through the listing too.
    let page = src
        .list(&ListRequest {
            max_keys: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    for (i, key) in keys.iter().enumerate() {
        let info = page.objects.iter().find(|o| &o.key == key).unwrap();
        let body: Vec<u8> = if key == "zero-byte" || i % 3 == 0 {
            Vec::new()
        } else {
            seeded(i as u64, i * 7)
        };
        assert_eq!(info.size, body.len() as u64, "{key:?}");
        assert_eq!(
            info.etag.as_deref(),
            Some(md5_hex(&body).as_str()),
            "{key:?}"
        );
        assert_eq!(info.storage_class.as_deref(), Some("STANDARD"));
        assert_eq!(info.archive, ArchiveState::NotArchived);
        assert!(info.last_modified.is_some());

        // The listed key addresses the object: HEAD and GET find exactly these bytes.
        let head = src.head(&info.key).await.unwrap();
        assert_eq!((head.key.as_str(), head.size), (key.as_str(), info.size));
        assert_eq!(
            head.checksums.md5.map(hex::encode),
            Some(md5_hex(&body)),
            "{key:?}"
        );
        let got = read_all(
            &src,
            GetRequest {
                key: &info.key,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(got == body, "{key:?}: GET returned other bytes");
    }
}

#[tokio::test]
async fn delimiter_groups_common_prefixes_across_pages() {
    let moto = Moto::shared();
    let bucket = "list-delimiter";
    let s3 = moto.create_bucket(bucket).await;
    for key in [
        "tree/a",
        "tree/b/1",
        "tree/b/2",
        "tree/c/",
        "tree/c//d",
        "tree/d e/f",
        "tree/e+f/g",
        "tree/z",
        "tree2/x",
        "top",
    ] {
        put(&s3, bucket, key, b"x").await;
    }
    let src = source(moto, bucket).await;
    for max_keys in [1, 2, 1000] {
        let req = ListRequest {
            prefix: "tree/".into(),
            delimiter: Some("/".into()),
            max_keys,
            ..Default::default()
        };
        let (keys, prefixes, _) = list_all(&src, req).await;
        assert_eq!(keys, ["tree/a", "tree/z"], "max_keys {max_keys}");
        assert_eq!(
            prefixes,
            ["tree/b/", "tree/c/", "tree/d e/", "tree/e+f/"],
            "max_keys {max_keys}"
        );
    }
    // One level down: the object named like the prefix, and the `//` "directory".
    let req = ListRequest {
        prefix: "tree/c/".into(),
        delimiter: Some("/".into()),
        max_keys: 1000,
        ..Default::default()
    };
    let (keys, prefixes, _) = list_all(&src, req).await;
    assert_eq!(keys, ["tree/c/"]);
    assert_eq!(prefixes, ["tree/c//"]);
}

#[tokio::test]
async fn start_after_lists_strictly_later_keys() {
    let moto = Moto::shared();
    let bucket = "list-start-after";
    let s3 = moto.create_bucket(bucket).await;
    let keys = awkward_keys();
    for key in &keys {
        put(&s3, bucket, key, b"").await;
    }
    let src = source(moto, bucket).await;
    let mut sorted = keys.clone();
    sorted.sort();
    for after in [
        "plus+sign",
        "dir/",
        "with space",
        "ünïcödé/ключ",
        "a",
        "zzzz",
    ] {
        let req = ListRequest {
            start_after: Some(after.into()),
            max_keys: 3,
            ..Default::default()
        };
        let (got, _, _) = list_all(&src, req).await;
        let want: Vec<String> = sorted
            .iter()
            .filter(|k| k.as_str() > after)
            .cloned()
            .collect();
        assert_eq!(got, want, "start_after {after:?}");
    }
}

static PROP_BUCKETS: AtomicUsize = AtomicUsize::new(0);

fn key_strategy() -> impl Strategy<Value = String> {
    // Characters that stress encoding and ordering; no `.` so no key is a `./..` path segment.
    let alphabet = prop::sample::select(vec![
        'a', 'b', 'Z', '0', '/', ' ', '+', '%', '?', '#', '&', '=', '~', 'é', 'ß', '日', '😀',
        '\t', '"', '<',
    ]);
    // aws-sdk-s3 refuses to build a request for a whitespace-only key, so none are generated.
    prop::collection::vec(alphabet, 1..12)
        .prop_map(|chars| chars.into_iter().collect::<String>())
        .prop_filter("not whitespace only", |key| !key.trim().is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, max_shrink_iters: 16, ..ProptestConfig::default() })]

    #[test]
    fn random_key_sets_list_exactly_once_in_order(
        keys in prop::collection::btree_set(key_strategy(), 1..25),
        max_keys in 1u32..6,
        delimiter in prop::option::of(Just("/".to_owned())),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let moto = Moto::shared();
            let bucket = format!("prop-{}", PROP_BUCKETS.fetch_add(1, Ordering::Relaxed));
            let s3 = moto.create_bucket(&bucket).await;
            for key in &keys {
                put(&s3, &bucket, key, b"").await;
            }
            let src = source(moto, &bucket).await;
            let req = ListRequest { delimiter: delimiter.clone(), max_keys, ..Default::default() };
            let (got, prefixes, _) = list_all(&src, req).await;
            let (want_keys, want_prefixes) = expected_listing(&keys, delimiter.as_deref());
            assert_eq!(got, want_keys);
            assert_eq!(prefixes, want_prefixes);
        });
    }
}

/// What S3 should list for `keys` with an empty prefix: keys without the delimiter, and each
/// distinct "first segment + delimiter" once.
fn expected_listing(
    keys: &BTreeSet<String>,
    delimiter: Option<&str>,
) -> (Vec<String>, Vec<String>) {
    let Some(d) = delimiter else {
        return (keys.iter().cloned().collect(), Vec::new());
    };
    let mut plain = Vec::new();
    let mut prefixes = BTreeSet::new();
    for key in keys {
        match key.find(d) {
            Some(i) => {
                prefixes.insert(key[..i + d.len()].to_owned());
            }
            None => plain.push(key.clone()),
        }
    }
    (plain, prefixes.into_iter().collect())
}

// ---------------------------------------------------------------------------------------------
// head

#[tokio::test]
async fn head_maps_headers_metadata_tags_version_and_md5() {
    let moto = Moto::shared();
    let bucket = "head-full";
    let s3 = moto.create_bucket(bucket).await;
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let body = seeded(7, 3000);
    let expires = AwsDateTime::from_secs(2_114_380_800); // 2037-01-01T00:00:00Z
    let put = s3
        .put_object()
        .bucket(bucket)
        .key("docs/report 1.pdf")
        .body(SdkBody::from(body.clone()))
        .content_type("application/pdf")
        .content_encoding("identity")
        .content_disposition("attachment; filename=\"report 1.pdf\"")
        .content_language("de-CH")
        .cache_control("max-age=3600, public")
        .expires(expires)
        .metadata("owner", "team-a")
        .metadata("review-state", "approved")
        .tagging("project=ferry&stage=two%20words")
        .send()
        .await
        .unwrap();

    let src = source(moto, bucket).await;
    let head = src.head("docs/report 1.pdf").await.unwrap();
    assert_eq!(head.key, "docs/report 1.pdf");
    assert_eq!(head.size, body.len() as u64);
    assert_eq!(head.etag.as_deref(), Some(md5_hex(&body).as_str()));
    assert_eq!(head.checksums.md5.map(hex::encode), Some(md5_hex(&body)));
    assert_eq!(head.version_id.as_deref(), put.version_id());
    assert!(head.version_id.is_some());
    assert_eq!(head.content_type.as_deref(), Some("application/pdf"));
    assert_eq!(head.content_encoding.as_deref(), Some("identity"));
    assert_eq!(
        head.content_disposition.as_deref(),
        Some("attachment; filename=\"report 1.pdf\"")
    );
    assert_eq!(head.content_language.as_deref(), Some("de-CH"));
    assert_eq!(head.cache_control.as_deref(), Some("max-age=3600, public"));
    let expires_raw = head.expires.expect("Expires header");
    let parsed = chrono::DateTime::parse_from_rfc2822(&expires_raw).expect("HTTP date");
    assert_eq!(parsed.timestamp(), expires.secs());
    assert_eq!(
        head.user_metadata,
        [
            ("owner".to_owned(), "team-a".to_owned()),
            ("review-state".to_owned(), "approved".to_owned())
        ]
    );
    let mut tags = head.tags.clone();
    tags.sort();
    assert_eq!(
        tags,
        [
            ("project".to_owned(), "ferry".to_owned()),
            ("stage".to_owned(), "two words".to_owned())
        ]
    );
    assert_eq!(head.storage_class.as_deref(), Some("STANDARD"));
    assert_eq!(head.archive, ArchiveState::NotArchived);
    assert_eq!(head.checksums.crc64nvme, None, "no checksum was uploaded");
    assert!(head.last_modified.is_some());

    // Without tag fetching the tags stay empty and everything else is the same.
    let mut no_tags = config(moto, bucket);
    no_tags.fetch_tags = false;
    let head2 = S3Source::new(no_tags)
        .await
        .unwrap()
        .head("docs/report 1.pdf")
        .await
        .unwrap();
    assert!(head2.tags.is_empty());
    assert_eq!(head2.user_metadata, head.user_metadata);
}

#[tokio::test]
async fn head_has_no_md5_for_a_multipart_object() {
    let moto = Moto::shared();
    let bucket = "head-multipart";
    let s3 = moto.create_bucket(bucket).await;
    let part1 = seeded(1, 5 * 1024 * 1024);
    let part2 = seeded(2, 1234);
    let etag = moto::multipart_put(&s3, bucket, "big", &[&part1, &part2], None).await;
    assert!(etag.ends_with("-2"), "moto multipart ETag {etag}");

    let head = source(moto, bucket).await.head("big").await.unwrap();
    assert_eq!(head.size, (part1.len() + part2.len()) as u64);
    assert_eq!(head.etag.as_deref(), Some(etag.as_str()));
    assert_eq!(head.checksums.md5, None, "a multipart ETag is not an MD5");
}

#[tokio::test]
async fn head_ignores_composite_crc32c_of_a_multipart_object() {
    let moto = Moto::shared();
    let bucket = "head-composite";
    let s3 = moto.create_bucket(bucket).await;
    let part1 = seeded(3, 5 * 1024 * 1024);
    let part2 = seeded(4, 100);
    moto::multipart_put(
        &s3,
        bucket,
        "composite",
        &[&part1, &part2],
        Some(ChecksumAlgorithm::Crc32C),
    )
    .await;

    // The raw HEAD shows the trap: moto sends the composite CRC32C (a checksum of the parts'
    // checksums) with neither `-2` nor a checksum type, so it looks like a whole-object value.
    let raw = s3
        .head_object()
        .bucket(bucket)
        .key("composite")
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    let raw_crc = raw
        .checksum_crc32_c()
        .expect("moto returns the composite CRC32C");
    let whole: Vec<u8> = [part1.as_slice(), part2.as_slice()].concat();
    let whole_crc = crc_fast::checksum(CrcAlgorithm::Crc32Iscsi, &whole) as u32;
    assert_ne!(
        raw_crc,
        base64_of(&whole_crc.to_be_bytes()),
        "not a whole-object CRC32C"
    );

    let src = source(moto, bucket).await;
    let head = src.head("composite").await.unwrap();
    assert_eq!(
        head.checksums.crc32c, None,
        "a composite CRC32C says nothing about the whole object"
    );
    assert_eq!(head.checksums.md5, None);

    // Multipart with a full-object CRC64NVME: that one does describe the whole object.
    moto::multipart_put(
        &s3,
        bucket,
        "full-nvme",
        &[&part1, &part2],
        Some(ChecksumAlgorithm::Crc64Nvme),
    )
    .await;
    let head = src.head("full-nvme").await.unwrap();
    assert_eq!(
        head.checksums.crc64nvme,
        Some(crc_fast::checksum(CrcAlgorithm::Crc64Nvme, &whole))
    );
    assert_eq!(head.checksums.md5, None);
}

#[tokio::test]
async fn head_reports_full_object_crc64nvme_and_crc32c() {
    let moto = Moto::shared();
    let bucket = "head-crc";
    let s3 = moto.create_bucket(bucket).await;
    let body = seeded(9, 100_000);
    for (key, algorithm) in [
        ("nvme", ChecksumAlgorithm::Crc64Nvme),
        ("c", ChecksumAlgorithm::Crc32C),
    ] {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(SdkBody::from(body.clone()))
            .checksum_algorithm(algorithm)
            .send()
            .await
            .unwrap();
    }
    let src = source(moto, bucket).await;
    let nvme = src.head("nvme").await.unwrap();
    assert_eq!(
        nvme.checksums.crc64nvme,
        Some(crc_fast::checksum(CrcAlgorithm::Crc64Nvme, &body))
    );
    assert_eq!(nvme.checksums.md5.map(hex::encode), Some(md5_hex(&body)));
    let c = src.head("c").await.unwrap();
    assert_eq!(
        c.checksums.crc32c.map(u64::from),
        Some(crc_fast::checksum(CrcAlgorithm::Crc32Iscsi, &body))
    );
    assert_eq!(c.checksums.crc64nvme, None);

    // A whole-object GET is validated by the SDK against that checksum and comes back intact.
    let got = read_all(
        &src,
        GetRequest {
            key: "nvme",
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(got, body);
}

// ---------------------------------------------------------------------------------------------
// get

#[tokio::test]
async fn ranged_get_returns_exactly_the_requested_bytes() {
    let moto = Moto::shared();
    let bucket = "get-ranges";
    let s3 = moto.create_bucket(bucket).await;
    let body = seeded(11, 3 * 1024 * 1024 + 17);
    put(&s3, bucket, "blob", &body).await;
    let src = source(moto, bucket).await;
    let len = body.len() as u64;
    let ranges: [Range<u64>; 6] = [
        0..1,
        10..20,
        len - 1..len,
        0..len,
        1_000_000..2_500_001,
        4096..8192,
    ];
    for range in ranges {
        let got = read_all(
            &src,
            GetRequest {
                key: "blob",
                range: Some(range.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(got.len() as u64, range.end - range.start, "range {range:?}");
        assert!(
            got == body[range.start as usize..range.end as usize],
            "range {range:?} bytes differ"
        );
    }
    let whole = read_all(
        &src,
        GetRequest {
            key: "blob",
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(whole == body);

    // The stream delivers chunks as they arrive rather than one collected buffer.
    let mut stream = src
        .get(GetRequest {
            key: "blob",
            ..Default::default()
        })
        .await
        .unwrap();
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        chunk.unwrap();
        chunks += 1;
    }
    assert!(chunks > 1, "a 3 MiB body arrived in {chunks} chunk(s)");
}

#[tokio::test]
async fn ranges_past_the_end_or_empty_are_refused() {
    let moto = Moto::shared();
    let bucket = "get-bad-ranges";
    let s3 = moto.create_bucket(bucket).await;
    let body = seeded(12, 100);
    put(&s3, bucket, "small", &body).await;
    let src = source(moto, bucket).await;
    let get = |range: Range<u64>| {
        src.get(GetRequest {
            key: "small",
            range: Some(range),
            ..Default::default()
        })
    };

    let shortened = get(90..110).await.err().expect("range past the end");
    assert_eq!(shortened.kind, SourceErrorKind::Changed, "{shortened}");
    let beyond = get(200..300).await.err().expect("range beyond the end");
    assert_eq!(beyond.kind, SourceErrorKind::Changed, "{beyond}");
    let empty = get(5..5).await.err().expect("empty range");
    assert_eq!(empty.kind, SourceErrorKind::Permanent, "{empty}");
}

#[tokio::test]
async fn if_match_with_a_stale_etag_is_changed() {
    let moto = Moto::shared();
    let bucket = "get-if-match";
    let s3 = moto.create_bucket(bucket).await;
    let old = put(&s3, bucket, "doc", b"version one").await;
    let new = put(&s3, bucket, "doc", b"version two!").await;
    assert_ne!(old, new);
    let src = source(moto, bucket).await;

    let err = read_all(
        &src,
        GetRequest {
            key: "doc",
            if_match: Some(&old),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Changed, "{err}");
    assert!(err.message.contains("PreconditionFailed"), "{err}");
    let ranged = GetRequest {
        key: "doc",
        if_match: Some(&old),
        range: Some(0..4),
        ..Default::default()
    };
    assert_eq!(
        read_all(&src, ranged).await.unwrap_err().kind,
        SourceErrorKind::Changed
    );

    let ok = read_all(
        &src,
        GetRequest {
            key: "doc",
            if_match: Some(&new),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(ok, b"version two!");
}

#[tokio::test]
async fn version_id_pins_the_read() {
    let moto = Moto::shared();
    let bucket = "get-version";
    let s3 = moto.create_bucket(bucket).await;
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let first = s3
        .put_object()
        .bucket(bucket)
        .key("v")
        .body(SdkBody::from_static(b"first"))
        .send()
        .await
        .unwrap();
    put(&s3, bucket, "v", b"second").await;
    let src = source(moto, bucket).await;
    let pinned = GetRequest {
        key: "v",
        version_id: first.version_id(),
        ..Default::default()
    };
    assert_eq!(read_all(&src, pinned).await.unwrap(), b"first");
    assert_eq!(
        read_all(
            &src,
            GetRequest {
                key: "v",
                ..Default::default()
            }
        )
        .await
        .unwrap(),
        b"second"
    );
}

#[tokio::test]
async fn missing_objects_and_buckets_are_not_found() {
    let moto = Moto::shared();
    let bucket = "get-missing";
    moto.create_bucket(bucket).await;
    let src = source(moto, bucket).await;

    let head = src.head("nope").await.unwrap_err();
    assert_eq!(head.kind, SourceErrorKind::NotFound, "{head}");
    let get = read_all(
        &src,
        GetRequest {
            key: "nope",
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(get.kind, SourceErrorKind::NotFound, "{get}");
    assert!(get.message.contains("NoSuchKey"), "{get}");
    assert!(get.message.contains("request id"), "{get}");
    assert_eq!(get.resource, "get-missing/nope");
    let blank = src.head(" ").await.unwrap_err();
    assert_eq!(blank.kind, SourceErrorKind::Permanent, "{blank}");
    assert!(blank.message.contains("whitespace"), "{blank}");

    let no_bucket = source(moto, "no-such-bucket-here").await;
    let list = no_bucket
        .list(&ListRequest {
            max_keys: 10,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(list.kind, SourceErrorKind::NotFound, "{list}");
    assert!(list.message.contains("NoSuchBucket"), "{list}");
}

// ---------------------------------------------------------------------------------------------
// archive classes and restore

async fn put_class(s3: &Client, bucket: &str, key: &str, class: StorageClass) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(SdkBody::from_static(b"frozen bytes"))
        .storage_class(class)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn glacier_object_is_archived_until_restored() {
    let moto = Moto::shared();
    let bucket = "archive-glacier";
    let s3 = moto.create_bucket(bucket).await;
    put_class(&s3, bucket, "cold", StorageClass::Glacier).await;
    put_class(&s3, bucket, "deep", StorageClass::DeepArchive).await;
    put_class(&s3, bucket, "instant", StorageClass::GlacierIr).await;
    let src = source(moto, bucket).await;

    let page = src
        .list(&ListRequest {
            max_keys: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let state = |key: &str| {
        page.objects
            .iter()
            .find(|o| o.key == key)
            .map(|o| (o.storage_class.clone().unwrap(), o.archive))
    };
    assert_eq!(
        state("cold"),
        Some(("GLACIER".into(), ArchiveState::Archived))
    );
    assert_eq!(
        state("deep"),
        Some(("DEEP_ARCHIVE".into(), ArchiveState::Archived))
    );
    assert_eq!(
        state("instant"),
        Some(("GLACIER_IR".into(), ArchiveState::NotArchived))
    );

    let head = src.head("cold").await.unwrap();
    assert_eq!(head.storage_class.as_deref(), Some("GLACIER"));
    assert_eq!(head.archive, ArchiveState::Archived);
    let err = read_all(
        &src,
        GetRequest {
            key: "cold",
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::NeedsRestore, "{err}");
    assert!(err.message.contains("InvalidObjectState"), "{err}");
    // GLACIER_IR reads like STANDARD.
    assert_eq!(
        read_all(
            &src,
            GetRequest {
                key: "instant",
                ..Default::default()
            }
        )
        .await
        .unwrap(),
        b"frozen bytes"
    );

    assert_eq!(
        src.restore("cold", 2, RestoreTier::Bulk).await.unwrap(),
        RestoreOutcome::Started
    );
    // moto finishes a restore at once (its default "immediate" state progression).
    let head = src.head("cold").await.unwrap();
    assert_eq!(head.archive, ArchiveState::Restored);
    assert_eq!(head.storage_class.as_deref(), Some("GLACIER"));
    assert_eq!(
        read_all(
            &src,
            GetRequest {
                key: "cold",
                ..Default::default()
            }
        )
        .await
        .unwrap(),
        b"frozen bytes"
    );
    // Asking again for a restored object answers 200: already restored.
    assert_eq!(
        src.restore("cold", 3, RestoreTier::Standard).await.unwrap(),
        RestoreOutcome::AlreadyRestored
    );

    // A restore of a STANDARD object is a mistake, not a "needs restore".
    put(&s3, bucket, "warm", b"w").await;
    let err = src
        .restore("warm", 1, RestoreTier::Expedited)
        .await
        .unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Permanent, "{err}");
    assert!(
        src.restore("cold", 0, RestoreTier::Bulk).await.is_err(),
        "0 days is refused"
    );
}

/// With moto's restore progressing in time, HEAD shows the running restore, then the finished one.
#[tokio::test]
async fn head_follows_a_restore_in_progress() {
    // A private server: the state-manager setting is global to a moto process.
    let moto = Moto::start();
    set_restore_progression(&moto, 2);
    let bucket = "archive-progress";
    let s3 = moto.create_bucket(bucket).await;
    put_class(&s3, bucket, "cold", StorageClass::Glacier).await;
    let src = source(&moto, bucket).await;
    assert_eq!(
        src.head("cold").await.unwrap().archive,
        ArchiveState::Archived
    );
    assert_eq!(
        src.restore("cold", 1, RestoreTier::Standard).await.unwrap(),
        RestoreOutcome::Started
    );

    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        let state = src.head("cold").await.unwrap().archive;
        if seen.last() != Some(&state) {
            seen.push(state);
        }
        if seen.contains(&ArchiveState::Restoring) && state == ArchiveState::Restored {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let restoring = seen.iter().position(|s| *s == ArchiveState::Restoring);
    let restored = seen.iter().rposition(|s| *s == ArchiveState::Restored);
    assert!(
        matches!((restoring, restored), (Some(a), Some(b)) if a < b),
        "expected Restoring then Restored, saw {seen:?}"
    );
}

fn set_restore_progression(moto: &Moto, seconds: u32) {
    use std::io::{Read, Write};
    let body = format!(
        r#"{{"model_name":"s3::keyrestore","transition":{{"progression":"time","seconds":{seconds}}}}}"#
    );
    let request = format!(
        "POST /moto-api/state-manager/set-transition HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        moto.addr(),
        body.len()
    );
    let mut stream = std::net::TcpStream::connect(moto.addr()).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.") && response[9..].starts_with("20"),
        "set-transition: {response}"
    );
}

// ---------------------------------------------------------------------------------------------
// config

#[tokio::test]
async fn plain_http_endpoint_needs_the_allow_flag() {
    let moto = Moto::shared();
    let mut cfg = config(moto, "any-bucket");
    cfg.allow_http = false;
    let err = S3Source::new(cfg).await.unwrap_err();
    assert_eq!(err.field, "endpoint");
    let text = err.to_string();
    assert!(text.contains(&moto.endpoint()), "{text}");
    assert!(text.contains("allow_http"), "{text}");
    assert!(text.contains("https://"), "{text}");

    let mut https = config(moto, "any-bucket");
    https.allow_http = false;
    https.endpoint = Some("https://s3.example.com".into());
    assert!(S3Source::new(https).await.is_ok());
}

/// Turns a valid config into one that is wrong in one setting.
type Breakage = fn(&mut S3SourceConfig);

#[tokio::test]
async fn config_errors_name_the_field_and_the_fix() {
    let moto = Moto::shared();
    let cases: [(&str, Breakage); 5] = [
        ("bucket", |c| c.bucket = "s3://bucket/".into()),
        ("endpoint", |c| {
            c.endpoint = Some("ftp://example.com".into())
        }),
        ("max_attempts", |c| c.max_attempts = 0),
        ("credentials.secret_access_key", |c| {
            c.credentials = S3Credentials::Static {
                access_key_id: "AKID".into(),
                secret_access_key: Secret::new(""),
                session_token: None,
            }
        }),
        ("assume_role.role_arn", |c| {
            c.assume_role = Some(serde_json::from_str(r#"{"role_arn":"my-role"}"#).unwrap())
        }),
    ];
    for (field, break_it) in cases {
        let mut cfg = config(moto, "bucket-ok");
        break_it(&mut cfg);
        let err = S3Source::new(cfg).await.unwrap_err();
        assert_eq!(err.field, field, "{err}");
        assert!(!err.fix.is_empty());
    }
    // A password in the endpoint is refused without being echoed.
    let mut cfg = config(moto, "bucket-ok");
    cfg.endpoint = Some("https://user:hunter2@example.com".into());
    let err = S3Source::new(cfg).await.unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn debug_output_never_contains_secrets() {
    let moto = Moto::shared();
    let json = format!(
        r#"{{"bucket":"dbg-bucket","region":"us-east-1","endpoint":"{}","allow_http":true,"path_style":true,
            "credentials":{{"type":"static","access_key_id":"AKIDEXAMPLE",
                            "secret_access_key":"wJalrXUtnFEMI-SECRET-K7MDENG","session_token":"TOKEN-SECRET-abc123"}}}}"#,
        moto.endpoint()
    );
    let cfg: S3SourceConfig = serde_json::from_str(&json).unwrap();
    let debug = format!("{cfg:?} {cfg:#?}");
    assert!(!debug.contains("wJalrXUtnFEMI-SECRET-K7MDENG"), "{debug}");
    assert!(!debug.contains("TOKEN-SECRET-abc123"), "{debug}");
    assert!(debug.contains("AKIDEXAMPLE"));

    let src = S3Source::new(cfg).await.unwrap();
    let debug = format!("{src:?} {}", src.describe());
    assert!(!debug.contains("SECRET"), "{debug}");
    // Errors from requests carry no secrets either.
    let err = src.head("missing").await.unwrap_err().to_string();
    assert!(!err.contains("SECRET"), "{err}");
}

#[tokio::test]
async fn config_from_job_spec_json_and_describe() {
    let moto = Moto::shared();
    let bucket = "from-json";
    let s3 = moto.create_bucket(bucket).await;
    put(&s3, bucket, "data/one", b"1").await;
    let json = format!(
        r#"{{"bucket":"{bucket}","prefix":"data/","endpoint":"{}","allow_http":true,"path_style":true,
            "credentials":{{"type":"static","access_key_id":"{}","secret_access_key":"{}"}}}}"#,
        moto.endpoint(),
        moto::ACCESS_KEY_ID,
        moto::SECRET_ACCESS_KEY
    );
    let cfg: S3SourceConfig = serde_json::from_str(&json).unwrap();
    assert!(cfg.fetch_tags, "tags are fetched by default");
    assert_eq!(cfg.max_attempts, 5);
    assert!(
        cfg.region.is_none(),
        "an endpoint without region signs for us-east-1"
    );
    let src = S3Source::new(cfg).await.unwrap();
    assert_eq!(
        src.describe(),
        format!("s3://{bucket}/data/ ({})", moto.endpoint())
    );
    let page = src
        .list(&ListRequest {
            prefix: "data/".into(),
            max_keys: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.objects.len(), 1);

    let unknown =
        serde_json::from_str::<S3SourceConfig>(r#"{"bucket":"b","endpiont":"https://x"}"#)
            .unwrap_err();
    assert!(unknown.to_string().contains("endpiont"), "{unknown}");
    let default_chain: S3SourceConfig =
        serde_json::from_str(r#"{"bucket":"b","credentials":{"type":"default_chain"}}"#).unwrap();
    assert!(matches!(
        default_chain.credentials,
        S3Credentials::DefaultChain
    ));
}

/// The restore-status listing option is accepted by a store that does not know it (moto).
#[tokio::test]
async fn listing_with_restore_status_requested() {
    let moto = Moto::shared();
    let bucket = "list-restore-status";
    let s3 = moto.create_bucket(bucket).await;
    put_class(&s3, bucket, "cold", StorageClass::Glacier).await;
    put(&s3, bucket, "warm", b"w").await;
    let mut cfg = config(moto, bucket);
    cfg.list_restore_status = true;
    let src = S3Source::new(cfg).await.unwrap();
    let page = src
        .list(&ListRequest {
            max_keys: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let archive: Vec<_> = page
        .objects
        .iter()
        .map(|o| (o.key.as_str(), o.archive))
        .collect();
    assert_eq!(
        archive,
        [
            ("cold", ArchiveState::Archived),
            ("warm", ArchiveState::NotArchived)
        ]
    );
}

/// Assume-role goes through STS (moto serves it) before the S3 calls.
#[tokio::test]
async fn assume_role_credentials_are_used() {
    let moto = Moto::shared();
    let bucket = "assume-role";
    let s3 = moto.create_bucket(bucket).await;
    put(&s3, bucket, "k", b"v").await;
    let mut cfg = config(moto, bucket);
    cfg.assume_role = Some(
        serde_json::from_value(serde_json::json!({
            "role_arn": "arn:aws:iam::123456789012:role/ferry-reader",
            "session_name": "ferry-test",
            "sts_endpoint": moto.endpoint(),
        }))
        .unwrap(),
    );
    let src = S3Source::new(cfg).await.unwrap();
    let head = src.head("k").await.unwrap();
    assert_eq!(head.size, 1);
    let log = std::fs::read_to_string(moto.log_path()).unwrap_or_default();
    assert!(
        log.contains("\"POST / HTTP/1.1\" 200"),
        "no STS AssumeRole call in moto's log"
    );

    // With STS unreachable there are no credentials, so nothing is read.
    let mut dead_sts = config(moto, bucket);
    dead_sts.max_attempts = 1;
    dead_sts.assume_role = Some(
        serde_json::from_value(serde_json::json!({
            "role_arn": "arn:aws:iam::123456789012:role/ferry-reader",
            "sts_endpoint": format!("http://{}", dead_address()),
        }))
        .unwrap(),
    );
    let err = S3Source::new(dead_sts)
        .await
        .unwrap()
        .head("k")
        .await
        .unwrap_err();
    assert!(err.message.contains("credentials"), "{err}");
    assert!(
        err.is_retryable(),
        "an unreachable STS may come back: {err}"
    );
}

/// An address nothing listens on.
fn dead_address() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}
