//! The S3-compatible dialect, driven with hand-signed AWS SigV4 requests.

use crate::common::*;
use bytes::Bytes;
use chrono::Utc;
use ferry::oss::sign::{uri_encode, uri_encode_path};

const NS: &str = "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"";

#[tokio::test]
async fn buckets_objects_and_cross_dialect_reads() {
    let emu = emulator().await;
    let s3 = S3::new(&emu);
    let r = s3.send("PUT", "/s3-bucket", &[], &[], "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s3.send("PUT", "/s3-bucket", &[], &[], "").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "BucketAlreadyOwnedByYou")
    );
    assert!(
        r.xml("Resource").is_some() && r.xml("EC").is_none(),
        "S3 error documents: {}",
        r.text()
    );
    assert_eq!(
        s3.send("HEAD", "/s3-bucket", &[], &[], "").await.status,
        200
    );
    let missing = s3.send("HEAD", "/nope-bucket", &[], &[], "").await;
    assert_eq!((missing.status, missing.body.len()), (404, 0));

    let data = b"hello from s3".to_vec();
    let r = s3
        .send(
            "PUT",
            "/s3-bucket/dir/a b.txt",
            &[],
            &[
                ("x-amz-meta-mtime", "1700000000"),
                ("x-amz-storage-class", "STANDARD_IA"),
                ("content-type", "text/plain"),
            ],
            data.clone(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let etag = format!("\"{}\"", md5_hex_upper(&data).to_lowercase());
    assert_eq!(r.header("etag"), Some(etag.clone()));
    assert!(r.header("x-amz-request-id").is_some());

    let head = s3
        .send("HEAD", "/s3-bucket/dir/a b.txt", &[], &[], "")
        .await;
    assert_eq!(
        head.header("x-amz-meta-mtime").as_deref(),
        Some("1700000000")
    );
    assert_eq!(
        head.header("x-amz-storage-class").as_deref(),
        Some("STANDARD_IA")
    );
    assert_eq!(head.header("content-length").as_deref(), Some("13"));
    assert_eq!(head.header("etag"), Some(etag));

    let ranged = s3
        .send(
            "GET",
            "/s3-bucket/dir/a b.txt",
            &[],
            &[("range", "bytes=0-4")],
            "",
        )
        .await;
    assert_eq!((ranged.status, ranged.text().as_str()), (206, "hello"));
    let ranged = s3
        .send(
            "GET",
            "/s3-bucket/dir/a b.txt",
            &[],
            &[("range", "bytes=6-100")],
            "",
        )
        .await;
    assert_eq!(
        (ranged.status, ranged.text().as_str()),
        (206, "from s3"),
        "S3 clips an over-long range"
    );

    // The same object through the OSS dialect.
    let oss = Oss::v4(&emu);
    let via_oss = oss
        .req("HEAD", Some("s3-bucket"), Some("dir/a b.txt"))
        .send()
        .await;
    assert_eq!(
        via_oss.header("x-oss-meta-mtime").as_deref(),
        Some("1700000000")
    );
    assert_eq!(via_oss.header("x-oss-storage-class").as_deref(), Some("IA"));
    oss.object("PUT", "from-oss")
        .header("x-oss-meta-k", "v")
        .header("x-oss-storage-class", "Archive")
        .body("o")
        .send()
        .await;
    let via_s3 = s3.send("HEAD", "/bkt/from-oss", &[], &[], "").await;
    assert_eq!(via_s3.header("x-amz-meta-k").as_deref(), Some("v"));
    assert_eq!(
        via_s3.header("x-amz-storage-class").as_deref(),
        Some("GLACIER")
    );
    let frozen = s3.send("GET", "/bkt/from-oss", &[], &[], "").await;
    assert_eq!(
        (frozen.status, frozen.code().as_str()),
        (403, "InvalidObjectState")
    );
    let r = s3.send("POST", "/bkt/from-oss", &[("restore", "")], &[], "<RestoreRequest xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Days>1</Days></RestoreRequest>").await;
    assert_eq!(r.status, 202, "{}", r.text());

    let list = s3
        .send(
            "GET",
            "/s3-bucket",
            &[("list-type", "2"), ("delimiter", "/")],
            &[],
            "",
        )
        .await;
    assert!(list.text().contains(NS), "{}", list.text());
    assert_eq!(list.xml_all("Prefix")[1..], ["dir/"]);
    assert_eq!(list.xml("KeyCount").as_deref(), Some("1"));
    let list = s3
        .send("GET", "/s3-bucket", &[("prefix", "dir/")], &[], "")
        .await;
    assert_eq!(list.xml_all("Key"), ["dir/a b.txt"]);
    assert_eq!(list.xml("StorageClass").as_deref(), Some("STANDARD_IA"));

    let buckets = s3.send("GET", "/", &[], &[], "").await;
    assert_eq!(buckets.xml_all("Name"), ["bkt", "s3-bucket"]);
    let loc = s3
        .send("GET", "/s3-bucket", &[("location", "")], &[], "")
        .await;
    assert!(
        loc.text().contains(">cn-hangzhou</LocationConstraint>"),
        "{}",
        loc.text()
    );

    assert_eq!(
        s3.send("DELETE", "/s3-bucket/dir/a b.txt", &[], &[], "")
            .await
            .status,
        204
    );
    let gone = s3.send("GET", "/s3-bucket/dir/a b.txt", &[], &[], "").await;
    assert_eq!((gone.status, gone.code().as_str()), (404, "NoSuchKey"));
}

#[tokio::test]
async fn payload_hashes_and_aws_chunked_bodies() {
    let emu = emulator().await;
    let s3 = S3::new(&emu);
    let r = s3
        .send_with_hash(
            "PUT",
            "/bkt/h",
            &[],
            &[],
            Bytes::from_static(b"abc"),
            &sha256_hex(b"abd"),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "XAmzContentSHA256Mismatch")
    );
    assert!(emu.object_info("bkt", "h").is_none());
    let r = s3
        .send_with_hash(
            "PUT",
            "/bkt/u",
            &[],
            &[],
            Bytes::from_static(b"abc"),
            "UNSIGNED-PAYLOAD",
        )
        .await;
    assert_eq!(r.status, 200);

    let payload = pattern(70_000, 4);
    let mut framed = Vec::new();
    for chunk in payload.chunks(65536) {
        framed.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        framed.extend_from_slice(chunk);
        framed.extend_from_slice(b"\r\n");
    }
    framed.extend_from_slice(b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n");
    let len = payload.len().to_string();
    let headers = [
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", len.as_str()),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
    ];
    let r = s3
        .send_with_hash(
            "PUT",
            "/bkt/chunked",
            &[],
            &headers,
            Bytes::from(framed),
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        emu.object_bytes("bkt", "chunked").await.unwrap().as_ref(),
        payload.as_slice()
    );
    assert_eq!(
        emu.object_info("bkt", "chunked").unwrap().content_type,
        None,
        "aws-chunked is not stored as an encoding"
    );

    let signed = b"5;chunk-signature=0123\r\nhello\r\n0;chunk-signature=4567\r\n\r\n".to_vec();
    let headers = [
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "5"),
    ];
    let r = s3
        .send_with_hash(
            "PUT",
            "/bkt/signed-chunks",
            &[],
            &headers,
            Bytes::from(signed),
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(Oss::v4(&emu).get("signed-chunks").await.text(), "hello");
    let head = Oss::v4(&emu).object("HEAD", "signed-chunks").send().await;
    assert!(head.header("content-encoding").is_none());

    let wrong_len = [
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "6"),
    ];
    let body = Bytes::from_static(b"5\r\nhello\r\n0\r\n\r\n");
    let r = s3
        .send_with_hash(
            "PUT",
            "/bkt/bad",
            &[],
            &wrong_len,
            body,
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        )
        .await;
    assert_eq!(r.code(), "IncompleteBody");
}

#[tokio::test]
async fn multipart_and_copies() {
    let emu = emulator().await;
    let s3 = S3::new(&emu);
    let created = s3
        .send(
            "POST",
            "/bkt/mp",
            &[("uploads", "")],
            &[("x-amz-meta-a", "1")],
            "",
        )
        .await;
    assert!(created.text().contains(NS));
    let id = created.xml("UploadId").unwrap();
    let p1 = pattern(5 * 1024 * 1024, 1);
    let p2 = pattern(1000, 2);
    let e1 = s3
        .send(
            "PUT",
            "/bkt/mp",
            &[("partNumber", "1"), ("uploadId", &id)],
            &[],
            p1.clone(),
        )
        .await
        .header("etag")
        .unwrap();
    let e2 = s3
        .send(
            "PUT",
            "/bkt/mp",
            &[("partNumber", "2"), ("uploadId", &id)],
            &[],
            p2.clone(),
        )
        .await
        .header("etag")
        .unwrap();
    assert_eq!(e2, format!("\"{}\"", md5_hex_upper(&p2).to_lowercase()));
    let parts = s3
        .send("GET", "/bkt/mp", &[("uploadId", &id)], &[], "")
        .await;
    assert_eq!(parts.xml_all("PartNumber"), ["1", "2"]);
    let body = format!(
        "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Part><ETag>{e1}</ETag><PartNumber>1</PartNumber><ChecksumCRC32>x</ChecksumCRC32></Part><Part><ETag>{e2}</ETag><PartNumber>2</PartNumber></Part></CompleteMultipartUpload>"
    );
    let done = s3
        .send("POST", "/bkt/mp", &[("uploadId", &id)], &[], body)
        .await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert!(done.xml("ETag").unwrap().ends_with("-2\""));
    let mut whole = p1.clone();
    whole.extend_from_slice(&p2);
    assert_eq!(
        emu.object_info("bkt", "mp").unwrap().crc64,
        Some(ferry::crc64::checksum(&whole))
    );

    let id2 = s3
        .send("POST", "/bkt/mp-copy", &[("uploads", "")], &[], "")
        .await
        .xml("UploadId")
        .unwrap();
    let copied = s3
        .send(
            "PUT",
            "/bkt/mp-copy",
            &[("partNumber", "1"), ("uploadId", &id2)],
            &[
                ("x-amz-copy-source", "bkt/mp"),
                ("x-amz-copy-source-range", "bytes=0-99"),
            ],
            "",
        )
        .await;
    assert_eq!(copied.status, 200, "{}", copied.text());
    assert!(copied.text().contains("<CopyPartResult"));
    let aborted = s3
        .send("DELETE", "/bkt/mp-copy", &[("uploadId", &id2)], &[], "")
        .await;
    assert_eq!(aborted.status, 204);

    let copy = s3
        .send(
            "PUT",
            "/bkt/copy",
            &[],
            &[("x-amz-copy-source", "/bkt/mp")],
            "",
        )
        .await;
    assert_eq!(copy.status, 200, "{}", copy.text());
    assert!(copy.text().contains("<CopyObjectResult"));
    assert_eq!(
        emu.object_bytes("bkt", "copy").await.unwrap().len(),
        whole.len()
    );
    let to_itself = s3
        .send(
            "PUT",
            "/bkt/copy",
            &[],
            &[("x-amz-copy-source", "/bkt/copy")],
            "",
        )
        .await;
    assert_eq!(
        (to_itself.status, to_itself.code().as_str()),
        (400, "InvalidRequest")
    );
    let reclass = s3
        .send(
            "PUT",
            "/bkt/copy",
            &[],
            &[
                ("x-amz-copy-source", "/bkt/copy"),
                ("x-amz-storage-class", "GLACIER"),
            ],
            "",
        )
        .await;
    assert_eq!(reclass.status, 200);
    assert_eq!(
        emu.object_info("bkt", "copy").unwrap().storage_class,
        oss_emulator::StorageClass::Archive
    );
}

#[tokio::test]
async fn sigv4_failures() {
    let emu = emulator().await;
    let mut s3 = S3::new(&emu);
    s3.secret = "wrong".into();
    let r = s3.send("GET", "/bkt/k", &[], &[], "").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "SignatureDoesNotMatch")
    );
    assert!(
        r.xml("StringToSign")
            .unwrap()
            .starts_with("AWS4-HMAC-SHA256\n")
    );
    assert!(r.xml("CanonicalRequest").is_some());
    let mut s3 = S3::new(&emu);
    s3.region = "us-east-1".into();
    let r = s3.send("GET", "/bkt/k", &[], &[], "").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "AuthorizationHeaderMalformed")
    );
    s3.region = "oss-cn-hangzhou".into();
    assert_eq!(
        s3.send("GET", "/bkt/k", &[], &[], "").await.code(),
        "NoSuchKey",
        "oss-<region> is accepted too"
    );
}

/// An S3 presigned GET URL, signed independently of the emulator.
fn presign_s3(endpoint: &str, path: &str, expires: u64, t: chrono::DateTime<Utc>) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let host = endpoint.trim_start_matches("http://");
    let amz_date = t.format("%Y%m%dT%H%M%SZ").to_string();
    let scope = format!("{}/{REGION}/s3/aws4_request", &amz_date[..8]);
    let mut query = [
        ("X-Amz-Algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
        ("X-Amz-Credential".to_owned(), format!("{AK}/{scope}")),
        ("X-Amz-Date".to_owned(), amz_date.clone()),
        ("X-Amz-Expires".to_owned(), expires.to_string()),
        ("X-Amz-SignedHeaders".to_owned(), "host".to_owned()),
    ];
    query.sort();
    let cq: String = query
        .iter()
        .map(|(k, v)| format!("{}={}", uri_encode(k), uri_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let canonical = format!(
        "GET\n{}\n{cq}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD",
        uri_encode_path(path)
    );
    let sts = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let mut key = format!("AWS4{SK}").into_bytes();
    for part in [&amz_date[..8], REGION, "s3", "aws4_request", &sts] {
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        m.update(part.as_bytes());
        key = m.finalize().into_bytes().to_vec();
    }
    format!(
        "{endpoint}{}?{cq}&X-Amz-Signature={}",
        uri_encode_path(path),
        hex::encode(key)
    )
}

#[tokio::test]
async fn sigv4_presigned_urls() {
    let emu = emulator().await;
    Oss::v4(&emu).put("pre sign", "presigned body").await;
    let url = presign_s3(&emu.endpoint(), "/bkt/pre sign", 300, Utc::now());
    let r = get_url(&url).await;
    assert_eq!((r.status, r.text().as_str()), (200, "presigned body"));
    let tampered = url.replace("X-Amz-Expires=300", "X-Amz-Expires=301");
    assert_eq!(get_url(&tampered).await.code(), "SignatureDoesNotMatch");
    let old = presign_s3(
        &emu.endpoint(),
        "/bkt/pre sign",
        60,
        Utc::now() - chrono::Duration::seconds(120),
    );
    let r = get_url(&old).await;
    assert_eq!((r.status, r.code().as_str()), (403, "AccessDenied"));
}

#[tokio::test]
async fn virtual_hosted_s3_requests() {
    let emu = emulator().await;
    Oss::v4(&emu).put("vh key", "vhost").await;
    let port = emu.addr().port();
    let host = format!("bkt.localhost:{port}");
    let http = reqwest::Client::builder()
        .resolve("bkt.localhost", emu.addr())
        .build()
        .unwrap();
    // In virtual-hosted style the canonical URI is the key path alone.
    let headers = sigv4_headers(
        "GET",
        &host,
        "/vh key",
        &[],
        &[],
        &sha256_hex(b""),
        REGION,
        SK,
        Utc::now(),
    );
    let r = send_raw(
        &http,
        "GET",
        &format!("http://{host}/vh%20key"),
        &headers,
        Bytes::new(),
    )
    .await;
    assert_eq!((r.status, r.text().as_str()), (200, "vhost"));
    let list_q = vec![("list-type".to_owned(), "2".to_owned())];
    let headers = sigv4_headers(
        "GET",
        &host,
        "/",
        &list_q,
        &[],
        &sha256_hex(b""),
        REGION,
        SK,
        Utc::now(),
    );
    let r = send_raw(
        &http,
        "GET",
        &format!("http://{host}/?list-type=2"),
        &headers,
        Bytes::new(),
    )
    .await;
    assert_eq!(r.xml_all("Key"), ["vh key"]);
}
