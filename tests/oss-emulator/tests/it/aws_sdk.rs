//! The real `aws-sdk-s3` client against the S3 dialect (path style, default checksum
//! behaviour, so uploads arrive aws-chunked with a CRC32 trailer).

use crate::common::*;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, StorageClass, Tag, Tagging};

fn client(emu: &oss_emulator::Emulator) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(Credentials::new(AK, SK, None, None, "test"))
        .region(Region::new(REGION))
        .endpoint_url(emu.endpoint())
        .force_path_style(true)
        .build();
    Client::from_conf(config)
}

#[tokio::test]
async fn put_get_head_list_copy_delete() {
    let emu = emulator().await;
    let s3 = client(&emu);
    s3.create_bucket()
        .bucket("sdk-bucket")
        .send()
        .await
        .expect("create bucket");
    s3.head_bucket()
        .bucket("sdk-bucket")
        .send()
        .await
        .expect("head bucket");
    let data = pattern(300_000, 8);
    s3.put_object()
        .bucket("sdk-bucket")
        .key("dir/obj 1.bin")
        .metadata("mtime", "1700000000")
        .storage_class(StorageClass::StandardIa)
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .expect("put");
    for k in ["dir/obj 2", "dir/sub/x", "top"] {
        s3.put_object()
            .bucket("sdk-bucket")
            .key(k)
            .body(ByteStream::from_static(b"v"))
            .send()
            .await
            .unwrap();
    }
    let info = emu.object_info("sdk-bucket", "dir/obj 1.bin").unwrap();
    assert_eq!(
        info.crc64,
        Some(ferry::crc64::checksum(&data)),
        "stored bytes are the decoded payload"
    );

    let head = s3
        .head_object()
        .bucket("sdk-bucket")
        .key("dir/obj 1.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(300_000));
    assert_eq!(head.storage_class(), Some(&StorageClass::StandardIa));
    assert_eq!(
        head.metadata().unwrap().get("mtime").map(String::as_str),
        Some("1700000000")
    );
    assert_eq!(
        head.e_tag(),
        Some(format!("\"{}\"", md5_hex_upper(&data).to_lowercase()).as_str())
    );

    let got = s3
        .get_object()
        .bucket("sdk-bucket")
        .key("dir/obj 1.bin")
        .range("bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_range(), Some("bytes 100-199/300000"));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        &data[100..200]
    );

    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket("sdk-bucket")
        .max_keys(2)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        keys.extend(
            page.unwrap()
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    assert_eq!(keys, ["dir/obj 1.bin", "dir/obj 2", "dir/sub/x", "top"]);
    let grouped = s3
        .list_objects_v2()
        .bucket("sdk-bucket")
        .prefix("dir/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = grouped
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["dir/sub/"]);
    let v1 = s3
        .list_objects()
        .bucket("sdk-bucket")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(v1.contents().len(), 1);

    s3.copy_object()
        .bucket("sdk-bucket")
        .key("copy")
        .copy_source("sdk-bucket/dir/obj%201.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(
        emu.object_bytes("sdk-bucket", "copy")
            .await
            .unwrap()
            .as_ref(),
        data.as_slice()
    );

    s3.delete_object()
        .bucket("sdk-bucket")
        .key("copy")
        .send()
        .await
        .unwrap();
    let err = s3
        .get_object()
        .bucket("sdk-bucket")
        .key("copy")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_no_such_key());
    let buckets = s3.list_buckets().send().await.unwrap();
    let names: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["bkt", "sdk-bucket"]);
    let loc = s3
        .get_bucket_location()
        .bucket("sdk-bucket")
        .send()
        .await
        .unwrap();
    assert_eq!(
        loc.location_constraint().map(|c| c.as_str()),
        Some("cn-hangzhou")
    );
}

#[tokio::test]
async fn multipart_upload_and_part_copy() {
    let emu = emulator().await;
    let s3 = client(&emu);
    let p1 = pattern(5 * 1024 * 1024, 1);
    let p2 = pattern(123_456, 2);
    let created = s3
        .create_multipart_upload()
        .bucket("bkt")
        .key("mp")
        .send()
        .await
        .unwrap();
    let id = created.upload_id().unwrap().to_owned();
    let mut parts = Vec::new();
    for (n, data) in [(1, &p1), (2, &p2)] {
        let r = s3
            .upload_part()
            .bucket("bkt")
            .key("mp")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap())
                .build(),
        );
    }
    let listed = s3
        .list_parts()
        .bucket("bkt")
        .key("mp")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.parts().len(), 2);
    s3.complete_multipart_upload()
        .bucket("bkt")
        .key("mp")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut whole = p1.clone();
    whole.extend_from_slice(&p2);
    let got = s3
        .get_object()
        .bucket("bkt")
        .key("mp")
        .send()
        .await
        .unwrap();
    assert!(got.e_tag().unwrap().ends_with("-2\""));
    assert!(got.body.collect().await.unwrap().into_bytes().as_ref() == whole.as_slice());
    assert_eq!(
        emu.object_info("bkt", "mp").unwrap().crc64,
        Some(ferry::crc64::checksum(&whole))
    );

    let id2 = s3
        .create_multipart_upload()
        .bucket("bkt")
        .key("mp2")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let copied = s3
        .upload_part_copy()
        .bucket("bkt")
        .key("mp2")
        .upload_id(&id2)
        .part_number(1)
        .copy_source("bkt/mp")
        .copy_source_range("bytes=0-1023")
        .send()
        .await
        .unwrap();
    let etag = copied
        .copy_part_result()
        .unwrap()
        .e_tag()
        .unwrap()
        .to_owned();
    s3.complete_multipart_upload()
        .bucket("bkt")
        .key("mp2")
        .upload_id(&id2)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        emu.object_bytes("bkt", "mp2").await.unwrap().as_ref(),
        &whole[..1024]
    );
    let id3 = s3
        .create_multipart_upload()
        .bucket("bkt")
        .key("gone")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    s3.abort_multipart_upload()
        .bucket("bkt")
        .key("gone")
        .upload_id(&id3)
        .send()
        .await
        .unwrap();
    assert_eq!(emu.counters().operation("AbortMultipartUpload"), 1);
}

fn tag_pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

#[tokio::test]
async fn object_tagging() {
    let emu = emulator().await;
    let s3 = client(&emu);
    s3.put_object()
        .bucket("bkt")
        .key("tagged")
        .tagging("a=1&b=two%20words")
        .body(ByteStream::from_static(b"v"))
        .send()
        .await
        .expect("put with tags");
    let got = s3
        .get_object_tagging()
        .bucket("bkt")
        .key("tagged")
        .send()
        .await
        .expect("get tagging");
    let expected = vec![("a".into(), "1".into()), ("b".into(), "two words".into())];
    assert_eq!(tag_pairs(got.tag_set()), expected);

    let tag = Tag::builder().key("c").value("3").build().unwrap();
    let tagging = Tagging::builder().tag_set(tag).build().unwrap();
    s3.put_object_tagging()
        .bucket("bkt")
        .key("tagged")
        .tagging(tagging)
        .send()
        .await
        .expect("put tagging");
    let got = s3
        .get_object()
        .bucket("bkt")
        .key("tagged")
        .send()
        .await
        .unwrap();
    assert_eq!(got.tag_count(), Some(1));

    s3.delete_object_tagging()
        .bucket("bkt")
        .key("tagged")
        .send()
        .await
        .expect("delete tagging");
    let got = s3
        .get_object_tagging()
        .bucket("bkt")
        .key("tagged")
        .send()
        .await
        .unwrap();
    assert!(got.tag_set().is_empty());
    let err = s3
        .get_object_tagging()
        .bucket("bkt")
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.into_service_error().meta().code(), Some("NoSuchKey"));
}
