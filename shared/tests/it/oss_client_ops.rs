//! ferry's OSS client against the OSS emulator over real sockets: every operation, V4 and V1
//! signatures, STS tokens, presigned URLs and both addressing styles.

use crate::support::oss_client_support;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use ferry::crc64;
use ferry::oss::*;
use futures_util::{StreamExt, TryStreamExt, stream};
use oss_client_support::*;
use oss_emulator::Emulator;

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

async fn put(client: &OssClient, key: &str, bytes: &[u8]) -> PutObjectOutput {
    client
        .put_object(
            BUCKET,
            key,
            RequestBody::from_bytes(bytes.to_vec()),
            &ObjectOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("PutObject {key}: {e}"))
}

async fn get_all(client: &OssClient, key: &str) -> Bytes {
    client
        .get_object(BUCKET, key, &GetObjectOptions::default())
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn put_head_get_delete_round_trip_with_headers() {
    let emu = emulator().await;
    let client = client(&emu);
    let bytes = seeded(1, 300_000);
    let mut options = ObjectOptions {
        content_type: s("text/plain"),
        cache_control: s("max-age=60"),
        content_disposition: s("attachment; filename=\"a.txt\""),
        content_encoding: s("identity"),
        expires: s("Thu, 01 Jan 2037 00:00:00 GMT"),
        storage_class: Some(StorageClass::IA),
        tags: vec![("team".into(), "data eng".into()), ("k".into(), "v".into())],
        ..Default::default()
    };
    options
        .metadata
        .insert("ferry-src-etag".into(), "abc123".into());
    options.metadata.insert("Owner".into(), "bob".into());
    let out = client
        .put_object(
            BUCKET,
            "dir/a file+1.txt",
            RequestBody::from_bytes(bytes.clone()),
            &options,
        )
        .await
        .unwrap();
    assert_eq!(out.crc64, crc64::checksum(&bytes));
    assert!(!out.request_id.is_empty());
    let stored = emu
        .object_info(BUCKET, "dir/a file+1.txt")
        .expect("object stored under its real key");
    assert_eq!(stored.crc64, Some(out.crc64));
    assert_eq!(
        out.etag.as_deref(),
        Some(format!("\"{}\"", stored.etag).as_str())
    );

    let meta = client
        .head_object(BUCKET, "dir/a file+1.txt")
        .await
        .unwrap();
    assert_eq!(meta.content_length, 300_000);
    assert_eq!(meta.crc64, Some(out.crc64));
    assert_eq!(meta.etag, out.etag);
    assert_eq!(meta.content_type.as_deref(), Some("text/plain"));
    assert_eq!(meta.cache_control.as_deref(), Some("max-age=60"));
    assert_eq!(
        meta.content_disposition.as_deref(),
        Some("attachment; filename=\"a.txt\"")
    );
    assert_eq!(meta.storage_class, Some(StorageClass::IA));
    assert_eq!(meta.object_type.as_deref(), Some("Normal"));
    assert_eq!(meta.metadata.get("owner").map(String::as_str), Some("bob"));
    assert_eq!(
        meta.metadata.get("ferry-src-etag").map(String::as_str),
        Some("abc123")
    );
    assert_eq!(meta.tagging_count, Some(2));
    assert!(meta.last_modified.is_some());
    assert!(meta.request_id.is_some());

    let got = client
        .get_object(BUCKET, "dir/a file+1.txt", &GetObjectOptions::default())
        .await
        .unwrap();
    assert_eq!(got.meta.crc64, Some(out.crc64));
    assert_eq!(got.object_size(), 300_000);
    assert!(got.content_range.is_none());
    let mut body = got.body;
    let mut received = Vec::new();
    while let Some(chunk) = body.next().await {
        received.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(received, bytes);
    assert_eq!(
        body.crc64(),
        out.crc64,
        "the GET body computes CRC-64 as it streams"
    );
    assert_eq!(body.bytes_read(), 300_000);

    client
        .delete_object(BUCKET, "dir/a file+1.txt")
        .await
        .unwrap();
    let err = client
        .head_object(BUCKET, "dir/a file+1.txt")
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    client
        .delete_object(BUCKET, "dir/a file+1.txt")
        .await
        .expect("deleting a missing key succeeds");
    emu.shutdown().await;
}

#[tokio::test]
async fn get_ranges_and_conditions() {
    let emu = emulator().await;
    let client = client(&emu);
    let bytes = seeded(2, 10_000);
    let out = put(&client, "r", &bytes).await;

    let ranged = GetObjectOptions {
        range: Some(ByteRange::new(100, 50)),
        ..Default::default()
    };
    let got = client.get_object(BUCKET, "r", &ranged).await.unwrap();
    assert_eq!(
        got.content_range,
        Some(ContentRange {
            start: 100,
            end: 149,
            total: 10_000
        })
    );
    assert_eq!(got.object_size(), 10_000);
    assert_eq!(
        got.meta.crc64,
        Some(out.crc64),
        "OSS reports the whole object's CRC on ranged GETs"
    );
    let part = got
        .body
        .collect()
        .await
        .expect("a ranged body is not checked against the whole-object CRC");
    assert_eq!(&part[..], &bytes[100..150]);

    let tail = GetObjectOptions {
        range: Some(ByteRange::from(9_990)),
        ..Default::default()
    };
    let got = client.get_object(BUCKET, "r", &tail).await.unwrap();
    assert_eq!(&got.body.collect().await.unwrap()[..], &bytes[9_990..]);

    let etag = out.etag.clone().unwrap();
    let matching = GetObjectOptions {
        conditions: Conditions {
            if_match: Some(etag.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        client
            .get_object(BUCKET, "r", &matching)
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .len(),
        10_000
    );
    let stale = GetObjectOptions {
        conditions: Conditions {
            if_match: s("\"0000\""),
            ..Default::default()
        },
        ..Default::default()
    };
    let err = client.get_object(BUCKET, "r", &stale).await.unwrap_err();
    assert_eq!(err.status(), Some(412), "{err}");
    let unchanged = GetObjectOptions {
        conditions: Conditions {
            if_none_match: Some(etag),
            ..Default::default()
        },
        ..Default::default()
    };
    let err = client
        .get_object(BUCKET, "r", &unchanged)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(304), "{err}");
    assert!(!err.is_retryable());
    emu.shutdown().await;
}

#[tokio::test]
async fn streaming_upload_checks_crc_and_stores_every_byte() {
    let emu = emulator().await;
    let client = client(&emu);
    let bytes = seeded(3, 1_000_003);
    let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
        .chunks(65_536)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let body = RequestBody::from_stream(bytes.len() as u64, stream::iter(chunks));
    assert!(!body.is_replayable());
    let out = client
        .put_object(BUCKET, "streamed", body, &ObjectOptions::default())
        .await
        .unwrap();
    assert_eq!(out.crc64, crc64::checksum(&bytes));
    assert_eq!(emu.object_bytes(BUCKET, "streamed").await.unwrap(), bytes);
    emu.shutdown().await;
}

#[tokio::test]
async fn listing_decodes_keys_and_pages_through_everything() {
    let emu = emulator().await;
    let client = client(&emu);
    let keys = [
        "a/1.txt",
        "a/2 space.txt",
        "a/3+plus.txt",
        "a/4%percent.txt",
        "a/sub/5.txt",
        "a/中文/6.txt",
        "a/tab\tnew.txt",
        "b/7.txt",
        "top.txt",
    ];
    for (i, k) in keys.iter().enumerate() {
        put(&client, k, &seeded(i as u64, 10 + i)).await;
    }

    let page = client
        .list_objects_v2(
            BUCKET,
            &ListObjectsOptions {
                prefix: s("a/"),
                delimiter: s("/"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let names: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        names,
        [
            "a/1.txt",
            "a/2 space.txt",
            "a/3+plus.txt",
            "a/4%percent.txt",
            "a/tab\tnew.txt"
        ]
    );
    assert_eq!(page.common_prefixes, ["a/sub/", "a/中文/"]);
    assert!(!page.is_truncated);
    assert_eq!(page.objects[0].size, 10);
    assert!(page.objects[0].last_modified.is_some() && page.objects[0].etag.is_some());
    assert_eq!(page.objects[0].storage_class, Some(StorageClass::Standard));

    let pages: Vec<ListObjectsPage> = client
        .list_objects_v2_pages(
            BUCKET,
            ListObjectsOptions {
                max_keys: Some(2),
                ..Default::default()
            },
        )
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 5);
    assert!(
        pages[..4]
            .iter()
            .all(|p| p.is_truncated && p.next_continuation_token.is_some())
    );
    let all: Vec<String> = pages
        .iter()
        .flat_map(|p| p.objects.iter().map(|o| o.key.clone()))
        .collect();
    let mut expected: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    expected.sort();
    assert_eq!(all, expected, "every key exactly once, in byte order");

    let after = client
        .list_objects_v2(
            BUCKET,
            &ListObjectsOptions {
                start_after: s("a/中文/6.txt"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        after
            .objects
            .iter()
            .map(|o| o.key.as_str())
            .collect::<Vec<_>>(),
        ["b/7.txt", "top.txt"],
        "byte order: 't' sorts before '中'"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn multipart_upload_lists_completes_and_combines_crc() {
    let emu = emulator().await;
    let client = client(&emu);
    let parts: Vec<Vec<u8>> = vec![
        seeded(10, 102_400),
        seeded(11, 102_400),
        seeded(12, 102_400),
        seeded(13, 777),
    ];
    let mut options = ObjectOptions {
        content_type: s("application/x-test"),
        ..Default::default()
    };
    options.metadata.insert("origin".into(), "s3".into());
    let upload_id = client
        .initiate_multipart_upload(BUCKET, "big/object.bin", &options)
        .await
        .unwrap();
    assert!(!upload_id.is_empty());

    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let out = client
            .upload_part(
                BUCKET,
                "big/object.bin",
                &upload_id,
                i as u32 + 1,
                RequestBody::from_bytes(p.clone()),
            )
            .await
            .unwrap();
        assert_eq!(out.crc64, crc64::checksum(p));
        assert_eq!(out.size, p.len() as u64);
        done.push(out);
    }

    let first = client
        .list_parts(
            BUCKET,
            "big/object.bin",
            &upload_id,
            &ListPartsOptions {
                max_parts: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(first.is_truncated);
    assert_eq!(first.parts.len(), 3);
    assert_eq!(first.next_part_number_marker, Some(3));
    let listed = client
        .list_all_parts(BUCKET, "big/object.bin", &upload_id)
        .await
        .unwrap();
    assert_eq!(listed.len(), 4);
    for (l, d) in listed.iter().zip(&done) {
        assert_eq!(
            (l.part_number, &l.etag, l.size, l.crc64),
            (d.part_number, &d.etag, d.size, Some(d.crc64))
        );
    }

    let uploads = client
        .list_multipart_uploads(BUCKET, &ListUploadsOptions::default())
        .await
        .unwrap();
    assert_eq!(
        uploads
            .uploads
            .iter()
            .map(|u| (u.key.as_str(), u.upload_id.as_str()))
            .collect::<Vec<_>>(),
        [("big/object.bin", upload_id.as_str())]
    );

    let list = CompleteParts::List(
        done.iter()
            .map(|d| CompletedPart {
                part_number: d.part_number,
                etag: d.etag.clone(),
            })
            .collect(),
    );
    let out = client
        .complete_multipart_upload(
            BUCKET,
            "big/object.bin",
            &upload_id,
            &list,
            &CompleteOptions::default(),
        )
        .await
        .unwrap();
    let combined = done
        .iter()
        .fold(0, |acc, d| crc64::combine(acc, d.crc64, d.size));
    assert_eq!(
        out.crc64,
        Some(combined),
        "the server's whole-object CRC equals the combined part CRCs"
    );
    assert!(
        out.etag.as_deref().is_some_and(|e| e.ends_with("-4\"")),
        "{:?}",
        out.etag
    );

    let meta = client.head_object(BUCKET, "big/object.bin").await.unwrap();
    assert_eq!(meta.crc64, Some(combined));
    assert_eq!(meta.content_length, 307_977);
    assert_eq!(meta.object_type.as_deref(), Some("Multipart"));
    assert_eq!(meta.content_type.as_deref(), Some("application/x-test"));
    assert_eq!(meta.metadata.get("origin").map(String::as_str), Some("s3"));
    assert_eq!(get_all(&client, "big/object.bin").await, parts.concat());
    assert!(
        client
            .list_multipart_uploads(BUCKET, &ListUploadsOptions::default())
            .await
            .unwrap()
            .uploads
            .is_empty()
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn streamed_parts_complete_all_and_abort() {
    let emu = emulator().await;
    let client = client(&emu);
    let id = client
        .initiate_multipart_upload(BUCKET, "all", &ObjectOptions::default())
        .await
        .unwrap();
    let a = seeded(20, 150_000);
    let b = seeded(21, 10);
    for (n, bytes) in [(1, &a), (2, &b)] {
        let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
            .chunks(4096)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let body = RequestBody::from_stream(bytes.len() as u64, stream::iter(chunks));
        let out = client
            .upload_part(BUCKET, "all", &id, n, body)
            .await
            .unwrap();
        assert_eq!(out.crc64, crc64::checksum(bytes));
    }
    let out = client
        .complete_multipart_upload(
            BUCKET,
            "all",
            &id,
            &CompleteParts::All,
            &CompleteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        out.crc64,
        Some(crc64::checksum(&[a.clone(), b.clone()].concat()))
    );
    assert_eq!(get_all(&client, "all").await, [a, b].concat());

    // Several uploads, listed one per page, then aborted.
    let mut ids = Vec::new();
    for key in ["u/1", "u/2", "u/3"] {
        ids.push((
            key,
            client
                .initiate_multipart_upload(BUCKET, key, &ObjectOptions::default())
                .await
                .unwrap(),
        ));
    }
    let pages: Vec<ListUploadsPage> = client
        .list_multipart_uploads_pages(
            BUCKET,
            ListUploadsOptions {
                max_uploads: Some(1),
                prefix: s("u/"),
                ..Default::default()
            },
        )
        .try_collect()
        .await
        .unwrap();
    let seen: Vec<(String, String)> = pages
        .iter()
        .flat_map(|p| {
            p.uploads
                .iter()
                .map(|u| (u.key.clone(), u.upload_id.clone()))
        })
        .collect();
    assert_eq!(
        seen,
        ids.iter()
            .map(|(k, i)| (k.to_string(), i.clone()))
            .collect::<Vec<_>>()
    );
    for (key, id) in &ids {
        client
            .abort_multipart_upload(BUCKET, key, id)
            .await
            .unwrap();
    }
    assert!(
        client
            .list_multipart_uploads(BUCKET, &ListUploadsOptions::default())
            .await
            .unwrap()
            .uploads
            .is_empty()
    );
    let err = client
        .list_parts(BUCKET, "u/1", &ids[0].1, &ListPartsOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("NoSuchUpload"));
    emu.shutdown().await;
}

#[tokio::test]
async fn server_side_copies() {
    let emu = emulator().await;
    let client = client(&emu);
    emu.create_bucket("ferry-src").unwrap();
    let bytes = seeded(30, 250_000);
    let mut options = ObjectOptions {
        content_type: s("image/png"),
        ..Default::default()
    };
    options.metadata.insert("a".into(), "1".into());
    client
        .put_object(
            "ferry-src",
            "src/中 file.bin",
            RequestBody::from_bytes(bytes.clone()),
            &options,
        )
        .await
        .unwrap();
    let source = CopySource::new("ferry-src", "src/中 file.bin");

    let out = client
        .copy_object(BUCKET, "copy/same", &source, &CopyObjectOptions::default())
        .await
        .unwrap();
    assert!(out.etag.is_some() && out.last_modified.is_some());
    let meta = client.head_object(BUCKET, "copy/same").await.unwrap();
    assert_eq!(meta.content_type.as_deref(), Some("image/png"));
    assert_eq!(meta.metadata.get("a").map(String::as_str), Some("1"));
    assert_eq!(meta.crc64, Some(crc64::checksum(&bytes)));

    let mut replaced = ObjectOptions {
        content_type: s("text/csv"),
        storage_class: Some(StorageClass::IA),
        ..Default::default()
    };
    replaced.metadata.insert("b".into(), "2".into());
    let opts = CopyObjectOptions {
        metadata_directive: MetadataDirective::Replace,
        object: replaced,
        ..Default::default()
    };
    client
        .copy_object(BUCKET, "copy/replaced", &source, &opts)
        .await
        .unwrap();
    let meta = client.head_object(BUCKET, "copy/replaced").await.unwrap();
    assert_eq!(meta.content_type.as_deref(), Some("text/csv"));
    assert_eq!(meta.storage_class, Some(StorageClass::IA));
    assert_eq!(meta.metadata.keys().collect::<Vec<_>>(), ["b"]);
    assert_eq!(get_all(&client, "copy/replaced").await, bytes);

    let id = client
        .initiate_multipart_upload(BUCKET, "copy/parts", &ObjectOptions::default())
        .await
        .unwrap();
    let ranges = [ByteRange::new(0, 150_000), ByteRange::new(150_000, 100_000)];
    let mut parts = Vec::new();
    for (i, range) in ranges.iter().enumerate() {
        let opts = UploadPartCopyOptions {
            range: Some(*range),
            ..Default::default()
        };
        let out = client
            .upload_part_copy(BUCKET, "copy/parts", &id, i as u32 + 1, &source, &opts)
            .await
            .unwrap();
        parts.push(CompletedPart {
            part_number: out.part_number,
            etag: out.etag,
        });
    }
    client
        .complete_multipart_upload(
            BUCKET,
            "copy/parts",
            &id,
            &CompleteParts::List(parts),
            &CompleteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(get_all(&client, "copy/parts").await, bytes);

    let unchanged = CopyObjectOptions {
        source_conditions: Conditions {
            if_none_match: client
                .head_object("ferry-src", "src/中 file.bin")
                .await
                .unwrap()
                .etag,
            ..Default::default()
        },
        ..Default::default()
    };
    let err = client
        .copy_object(BUCKET, "copy/cond", &source, &unchanged)
        .await
        .unwrap_err();
    assert!(matches!(err.status(), Some(304 | 412)), "{err}");
    emu.shutdown().await;
}

#[tokio::test]
async fn archived_objects_restore_then_read() {
    let emu = emulator().await;
    let client = client(&emu);
    let bytes = seeded(40, 5_000);
    let opts = ObjectOptions {
        storage_class: Some(StorageClass::ColdArchive),
        ..Default::default()
    };
    client
        .put_object(
            BUCKET,
            "cold",
            RequestBody::from_bytes(bytes.clone()),
            &opts,
        )
        .await
        .unwrap();
    let meta = client.head_object(BUCKET, "cold").await.unwrap();
    assert_eq!(meta.storage_class, Some(StorageClass::ColdArchive));
    assert_eq!(meta.restore, None);

    let restore = RestoreOptions {
        days: 2,
        tier: Some(RestoreTier::Bulk),
        version_id: None,
    };
    assert_eq!(
        client
            .restore_object(BUCKET, "cold", &restore)
            .await
            .unwrap(),
        RestoreOutcome::Started
    );
    assert_eq!(
        client
            .restore_object(BUCKET, "cold", &restore)
            .await
            .unwrap(),
        RestoreOutcome::InProgress
    );
    assert_eq!(
        client.head_object(BUCKET, "cold").await.unwrap().restore,
        Some(RestoreState::InProgress)
    );
    assert_eq!(
        client
            .get_object(BUCKET, "cold", &GetObjectOptions::default())
            .await
            .unwrap_err()
            .code(),
        Some("InvalidObjectState")
    );

    emu.complete_restore(BUCKET, "cold").unwrap();
    let meta = client.head_object(BUCKET, "cold").await.unwrap();
    assert!(
        matches!(
            meta.restore,
            Some(RestoreState::Restored { expiry: Some(_) })
        ),
        "{:?}",
        meta.restore
    );
    assert_eq!(get_all(&client, "cold").await, bytes);
    assert_eq!(
        client
            .restore_object(BUCKET, "cold", &restore)
            .await
            .unwrap(),
        RestoreOutcome::AlreadyRestored
    );
    emu.shutdown().await;
}

fn mirror_config() -> WebsiteConfiguration {
    WebsiteConfiguration {
        index_document: Some(IndexDocument {
            suffix: "index.html".into(),
            ..Default::default()
        }),
        error_document: Some(ErrorDocument {
            key: "error.html".into(),
            http_status: Some(404),
        }),
        routing_rules: vec![
            RoutingRule {
                rule_number: 1,
                condition: RoutingCondition {
                    key_prefix_equals: s("images/"),
                    http_error_code_returned_equals: Some(404),
                    ..Default::default()
                },
                redirect: Redirect {
                    redirect_type: s("Mirror"),
                    mirror_url: s("https://origin.example.com/"),
                    mirror_pass_query_string: Some(true),
                    mirror_follow_redirect: Some(true),
                    mirror_check_md5: Some(false),
                    mirror_headers: Some(MirrorHeaders {
                        pass_all: Some(false),
                        pass: vec!["x-a".into()],
                        remove: vec!["x-b".into()],
                        set: vec![MirrorHeaderSet {
                            key: "x-c".into(),
                            value: "v".into(),
                        }],
                    }),
                    ..Default::default()
                },
            },
            RoutingRule {
                rule_number: 2,
                condition: RoutingCondition {
                    http_error_code_returned_equals: Some(404),
                    ..Default::default()
                },
                redirect: Redirect {
                    redirect_type: s("Mirror"),
                    mirror_url: s("https://fallback.example.com/"),
                    ..Default::default()
                },
            },
        ],
    }
}

#[tokio::test]
async fn website_configuration_round_trips() {
    let emu = emulator().await;
    let client = client(&emu);
    let err = client.get_bucket_website(BUCKET).await.unwrap_err();
    assert_eq!(err.code(), Some("NoSuchWebsiteConfiguration"), "{err}");
    let config = mirror_config();
    client.put_bucket_website(BUCKET, &config).await.unwrap();
    assert_eq!(client.get_bucket_website(BUCKET).await.unwrap(), config);
    client.delete_bucket_website(BUCKET).await.unwrap();
    assert_eq!(
        client.get_bucket_website(BUCKET).await.unwrap_err().code(),
        Some("NoSuchWebsiteConfiguration")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn bucket_lifecycle_info_and_location() {
    let emu = emulator().await;
    let client = client(&emu);
    let opts = PutBucketOptions {
        storage_class: Some(StorageClass::IA),
        data_redundancy_type: s("LRS"),
        acl: None,
    };
    client.put_bucket("ferry-new", &opts).await.unwrap();
    let page = client
        .list_buckets(&ListBucketsOptions::default())
        .await
        .unwrap();
    let names: Vec<&str> = page.buckets.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["ferry-new", "ferry-test"]);
    let prefixed = client
        .list_buckets(&ListBucketsOptions {
            prefix: s("ferry-n"),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(prefixed.buckets.len(), 1);

    let info = client.get_bucket_info("ferry-new").await.unwrap();
    assert_eq!(info.name, "ferry-new");
    assert_eq!(info.location.as_deref(), Some("oss-cn-hangzhou"));
    assert_eq!(info.region().as_deref(), Some("cn-hangzhou"));
    assert_eq!(info.storage_class, Some(StorageClass::IA));
    assert!(info.creation_date.is_some());
    assert_eq!(
        client.get_bucket_location("ferry-new").await.unwrap(),
        "oss-cn-hangzhou"
    );
    assert_eq!(
        region_id(&client.get_bucket_location("ferry-new").await.unwrap()).unwrap(),
        client.region()
    );

    put(&client, "x", b"x").await;
    assert_eq!(
        client.delete_bucket(BUCKET).await.unwrap_err().code(),
        Some("BucketNotEmpty")
    );
    client.delete_bucket("ferry-new").await.unwrap();
    assert_eq!(
        client
            .get_bucket_info("ferry-new")
            .await
            .unwrap_err()
            .code(),
        Some("NoSuchBucket")
    );
    emu.shutdown().await;
}

/// Every request kind again, signed with V1.
#[tokio::test]
async fn v1_signatures_cover_the_operations() {
    let emu = emulator().await;
    let client = client_v1(&emu);
    assert_eq!(client.signature_version(), SignatureVersion::V1);
    let bytes = seeded(50, 120_000);
    let mut options = ObjectOptions {
        content_type: s("text/plain"),
        ..Default::default()
    };
    options.metadata.insert("m".into(), "v".into());
    client
        .put_object(
            BUCKET,
            "v1/中 a+b.txt",
            RequestBody::from_bytes(bytes.clone()),
            &options,
        )
        .await
        .unwrap();
    let ranged = GetObjectOptions {
        range: Some(ByteRange::new(5, 5)),
        ..Default::default()
    };
    assert_eq!(
        &client
            .get_object(BUCKET, "v1/中 a+b.txt", &ranged)
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()[..],
        &bytes[5..10]
    );
    assert_eq!(
        client
            .head_object(BUCKET, "v1/中 a+b.txt")
            .await
            .unwrap()
            .metadata
            .get("m")
            .map(String::as_str),
        Some("v")
    );

    for i in 0..3 {
        put(&client, &format!("v1/k{i}"), b"x").await;
    }
    let pages: Vec<ListObjectsPage> = client
        .list_objects_v2_pages(
            BUCKET,
            ListObjectsOptions {
                prefix: s("v1/"),
                max_keys: Some(1),
                ..Default::default()
            },
        )
        .try_collect()
        .await
        .expect("continuation-token is signed as a V1 sub-resource");
    assert_eq!(pages.len(), 4);

    let id = client
        .initiate_multipart_upload(BUCKET, "v1/mp", &options)
        .await
        .unwrap();
    let part = client
        .upload_part(
            BUCKET,
            "v1/mp",
            &id,
            1,
            RequestBody::from_bytes(bytes.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        client
            .list_all_parts(BUCKET, "v1/mp", &id)
            .await
            .unwrap()
            .len(),
        1
    );
    let parts = CompleteParts::List(vec![CompletedPart {
        part_number: 1,
        etag: part.etag,
    }]);
    client
        .complete_multipart_upload(BUCKET, "v1/mp", &id, &parts, &CompleteOptions::default())
        .await
        .unwrap();
    client
        .copy_object(
            BUCKET,
            "v1/copy",
            &CopySource::new(BUCKET, "v1/mp"),
            &CopyObjectOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(get_all(&client, "v1/copy").await, bytes);
    client
        .put_bucket_website(BUCKET, &mirror_config())
        .await
        .unwrap();
    assert_eq!(
        client.get_bucket_website(BUCKET).await.unwrap(),
        mirror_config()
    );
    assert_eq!(
        client.get_bucket_location(BUCKET).await.unwrap(),
        "oss-cn-hangzhou"
    );
    assert_eq!(client.get_bucket_info(BUCKET).await.unwrap().name, BUCKET);
    client.delete_object(BUCKET, "v1/copy").await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn sts_tokens_are_sent_and_signed_with_v4_and_v1() {
    let emu = emulator().await;
    for version in [SignatureVersion::V4, SignatureVersion::V1] {
        let creds =
            Credentials::new(AK, SK).with_security_token("CAIS-temporary-token/with+chars=");
        let client = builder(&emu)
            .credentials(creds)
            .signature_version(version)
            .build()
            .unwrap();
        let key = format!("sts/{version:?}");
        put(&client, &key, b"temporary").await;
        assert_eq!(get_all(&client, &key).await, &b"temporary"[..]);
        let url = client
            .presign_get(BUCKET, &key, Duration::from_secs(300))
            .unwrap();
        assert!(url.contains("security-token="), "{url}");
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(
            resp.status(),
            200,
            "{version:?}: {}",
            resp.text().await.unwrap()
        );
        assert_eq!(&resp.bytes().await.unwrap()[..], b"temporary");
        assert!(!format!("{client:?}").contains("CAIS-temporary-token"));
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn presigned_urls_work_with_a_plain_http_client() {
    let emu = emulator().await;
    let plain = reqwest::Client::new();
    for client in [client(&emu), client_v1(&emu)] {
        let version = client.signature_version();
        let bytes = seeded(60, 4_096);
        let key = format!("presigned/{version:?}/a b+c.bin");
        let put_url = client
            .presign(
                reqwest::Method::PUT,
                BUCKET,
                &key,
                &[],
                Duration::from_secs(300),
            )
            .unwrap();
        let resp = plain
            .put(&put_url)
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            200,
            "{version:?} PUT: {}",
            resp.text().await.unwrap()
        );

        let get_url = client
            .presign_get(BUCKET, &key, Duration::from_secs(300))
            .unwrap();
        let resp = plain.get(&get_url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.bytes().await.unwrap(), bytes);

        let query = [(
            "response-content-type".to_owned(),
            "application/x-ferry".to_owned(),
        )];
        let url = client
            .presign(
                reqwest::Method::GET,
                BUCKET,
                &key,
                &query,
                Duration::from_secs(300),
            )
            .unwrap();
        let resp = plain.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/x-ferry");

        // Signed an hour in the past with a 60 s lifetime: expired.
        client.set_clock_offset(chrono::Duration::hours(-1));
        let expired = client
            .presign_get(BUCKET, &key, Duration::from_secs(60))
            .unwrap();
        client.set_clock_offset(chrono::Duration::zero());
        let resp = plain.get(&expired).send().await.unwrap();
        assert_eq!(resp.status(), 403, "{version:?}: an expired URL is refused");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn virtual_hosted_addressing_reaches_the_bucket_by_host_name() {
    let emu = Emulator::builder()
        .credentials(AK, SK)
        .region(REGION)
        .domain("oss-emu.test")
        .bucket(BUCKET)
        .start()
        .await
        .unwrap();
    let port = emu.addr().port();
    let client = builder(&emu)
        .endpoint(format!("http://oss-emu.test:{port}"))
        .resolve(format!("{BUCKET}.oss-emu.test"), emu.addr())
        .resolve("oss-emu.test", emu.addr())
        .build()
        .unwrap();
    assert_eq!(client.addressing(), Addressing::VirtualHosted);
    assert_eq!(
        client.url(BUCKET, Some("k")).unwrap(),
        format!("http://{BUCKET}.oss-emu.test:{port}/k")
    );
    put(&client, "vh/key one", b"hosted").await;
    assert_eq!(get_all(&client, "vh/key one").await, &b"hosted"[..]);
    let page = client
        .list_objects_v2(BUCKET, &ListObjectsOptions::default())
        .await
        .unwrap();
    assert_eq!(page.objects[0].key, "vh/key one");
    assert_eq!(
        client
            .list_buckets(&ListBucketsOptions::default())
            .await
            .unwrap()
            .buckets
            .len(),
        1
    );
    assert_eq!(
        emu.object_bytes(BUCKET, "vh/key one").await.unwrap(),
        &b"hosted"[..]
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn object_meta_lists_user_metadata_exactly() {
    let emu = emulator().await;
    let client = client(&emu);
    let mut metadata = BTreeMap::new();
    metadata.insert("ferry-src-etag".to_owned(), "\"abc\"".to_owned());
    metadata.insert(
        "ferry-src-mtime".to_owned(),
        "2024-01-02T03:04:05Z".to_owned(),
    );
    let opts = ObjectOptions {
        metadata: metadata.clone(),
        ..Default::default()
    };
    client
        .put_object(BUCKET, "meta", RequestBody::from_bytes(&b"m"[..]), &opts)
        .await
        .unwrap();
    assert_eq!(
        client.head_object(BUCKET, "meta").await.unwrap().metadata,
        metadata
    );
    emu.shutdown().await;
}
