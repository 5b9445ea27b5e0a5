//! Multipart upload: CRC-64 combination, ETag format, part rules and errors, listings.

use crate::common::*;
use md5::{Digest, Md5};

async fn initiate(oss: &Oss, key: &str) -> String {
    let r = oss
        .object("POST", key)
        .query("uploads", "")
        .header("x-oss-meta-owner", "bob")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.xml("Key").as_deref(), Some(key));
    r.xml("UploadId").expect("UploadId")
}

async fn upload_part(oss: &Oss, key: &str, id: &str, n: u32, data: &[u8]) -> Resp {
    oss.object("PUT", key)
        .query("partNumber", &n.to_string())
        .query("uploadId", id)
        .header("content-md5", &md5_b64(data))
        .body(data.to_vec())
        .send()
        .await
}

fn complete_body(parts: &[(u32, String)]) -> String {
    let inner: String = parts
        .iter()
        .map(|(n, e)| format!("<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"))
        .collect();
    format!("<CompleteMultipartUpload>{inner}</CompleteMultipartUpload>")
}

async fn complete(oss: &Oss, key: &str, id: &str, parts: &[(u32, String)]) -> Resp {
    oss.object("POST", key)
        .query("uploadId", id)
        .body(complete_body(parts))
        .send()
        .await
}

#[tokio::test]
async fn three_parts_combine_crc_and_etag_like_the_reference() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    // The CRC-64 vector buffer of `ferry::crc64`'s tests: b[i] = i % 251, parts of
    // 102400/102400/51200.
    let buf: Vec<u8> = (0..256000u32).map(|i| (i % 251) as u8).collect();
    let ranges = [0..102400, 102400..204800, 204800..256000];
    let id = initiate(&oss, "mp/obj").await;
    let mut parts = Vec::new();
    let expected_part_crcs = [
        5409316634556368277u64,
        8193091521729089674,
        3500614162694175473,
    ];
    for (i, r) in ranges.iter().enumerate() {
        let n = i as u32 + 1;
        let resp = upload_part(&oss, "mp/obj", &id, n, &buf[r.clone()]).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(
            resp.header("x-oss-hash-crc64ecma"),
            Some(expected_part_crcs[i].to_string())
        );
        parts.push((n, resp.header("etag").unwrap()));
    }
    let listed = oss
        .object("GET", "mp/obj")
        .query("uploadId", &id)
        .send()
        .await;
    assert_eq!(
        listed.xml_all("HashCrc64ecma"),
        expected_part_crcs.map(|c| c.to_string())
    );
    assert_eq!(listed.xml_all("Size"), ["102400", "102400", "51200"]);

    let done = complete(&oss, "mp/obj", &id, &parts).await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(
        done.header("x-oss-hash-crc64ecma").as_deref(),
        Some("13522109751786571237")
    );
    assert_eq!(
        done.xml("ETag").as_deref(),
        Some("\"C1AA43FFAC5C2D7F3B4FE289C009A2C6-3\"")
    );
    assert!(done.xml("Location").unwrap().ends_with("/bkt/mp/obj"));

    let head = oss.object("HEAD", "mp/obj").send().await;
    assert_eq!(
        head.header("x-oss-object-type").as_deref(),
        Some("Multipart")
    );
    assert_eq!(
        head.header("etag").as_deref(),
        Some("\"C1AA43FFAC5C2D7F3B4FE289C009A2C6-3\"")
    );
    assert_eq!(
        head.header("x-oss-hash-crc64ecma").as_deref(),
        Some("13522109751786571237")
    );
    assert_eq!(head.header("x-oss-meta-owner").as_deref(), Some("bob"));
    assert!(oss.get("mp/obj").await.body.as_ref() == buf.as_slice());
    let ranged = oss
        .object("GET", "mp/obj")
        .header("range", "bytes=102000-103000")
        .send()
        .await;
    assert!(
        ranged.body.as_ref() == &buf[102000..103001],
        "a range across the part boundary"
    );
    let r = oss
        .object("GET", "mp/obj")
        .query("uploadId", &id)
        .send()
        .await;
    assert_eq!(r.code(), "NoSuchUpload", "completed uploads are gone");
}

#[tokio::test]
async fn etag_is_md5_of_part_md5s() {
    let emu = emulator().await;
    let oss = Oss::v1(&emu);
    let a = pattern(100 * 1024, 1);
    let b = pattern(10, 2);
    let id = initiate(&oss, "e").await;
    let ea = upload_part(&oss, "e", &id, 1, &a)
        .await
        .header("etag")
        .unwrap();
    let eb = upload_part(&oss, "e", &id, 7, &b)
        .await
        .header("etag")
        .unwrap();
    let done = complete(&oss, "e", &id, &[(1, ea), (7, eb)]).await;
    assert_eq!(
        done.status,
        200,
        "non-contiguous part numbers are fine: {}",
        done.text()
    );
    let mut m = Md5::new();
    m.update(Md5::digest(&a));
    m.update(Md5::digest(&b));
    assert_eq!(
        done.xml("ETag"),
        Some(format!("\"{}-2\"", hex::encode_upper(m.finalize())))
    );
}

#[tokio::test]
async fn part_rules_and_complete_errors() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let id = initiate(&oss, "k").await;
    let small = pattern(1000, 1);
    let big = pattern(102400, 2);
    for bad in ["0", "10001", "x"] {
        let r = oss
            .object("PUT", "k")
            .query("partNumber", bad)
            .query("uploadId", &id)
            .body("x")
            .send()
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "InvalidArgument"),
            "partNumber {bad}"
        );
    }
    let r = oss
        .object("PUT", "k")
        .query("partNumber", "1")
        .query("uploadId", &id)
        .header("content-md5", &md5_b64(b"other"))
        .body(small.clone())
        .send()
        .await;
    assert_eq!(r.code(), "InvalidDigest");
    let r = upload_part(&oss, "k", "no-such-upload", 1, &small).await;
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchUpload"));

    let e1_small = upload_part(&oss, "k", &id, 1, &small)
        .await
        .header("etag")
        .unwrap();
    let e2 = upload_part(&oss, "k", &id, 2, &big)
        .await
        .header("etag")
        .unwrap();
    let r = complete(&oss, "k", &id, &[(1, e1_small.clone()), (2, e2.clone())]).await;
    assert_eq!((r.status, r.code().as_str()), (400, "EntityTooSmall"));
    // Re-uploading part 1 replaces it.
    let e1 = upload_part(&oss, "k", &id, 1, &big)
        .await
        .header("etag")
        .unwrap();
    let r = complete(&oss, "k", &id, &[(2, e2.clone()), (1, e1.clone())]).await;
    assert_eq!(r.code(), "InvalidPartOrder");
    let r = complete(&oss, "k", &id, &[(1, e1_small), (2, e2.clone())]).await;
    assert_eq!(
        r.code(),
        "InvalidPart",
        "the replaced part's ETag no longer matches"
    );
    let r = complete(&oss, "k", &id, &[(1, e1.clone()), (3, e2.clone())]).await;
    assert_eq!(r.code(), "InvalidPart");
    let r = oss
        .object("POST", "k")
        .query("uploadId", &id)
        .body("<Complete")
        .send()
        .await;
    assert_eq!(r.code(), "MalformedXML");
    let r = complete(&oss, "k", "nope", &[(1, e1.clone())]).await;
    assert_eq!(r.code(), "NoSuchUpload");
    let r = complete(&oss, "k", &id, &[(1, e1), (2, e2)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(oss.get("k").await.body.len() == 2 * 102400);
}

#[tokio::test]
async fn complete_all_and_forbid_overwrite() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    oss.put("exists", "old").await;
    let id = initiate(&oss, "exists").await;
    upload_part(&oss, "exists", &id, 1, &pattern(200 * 1024, 1)).await;
    upload_part(&oss, "exists", &id, 2, b"tail").await;
    let r = oss
        .object("POST", "exists")
        .query("uploadId", &id)
        .header("x-oss-complete-all", "yes")
        .header("x-oss-forbid-overwrite", "true")
        .send()
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "FileAlreadyExists"));
    assert_eq!(oss.get("exists").await.text(), "old");
    let r = oss
        .object("POST", "exists")
        .query("uploadId", &id)
        .header("x-oss-complete-all", "yes")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.xml("ETag").unwrap().ends_with("-2\""));
    let mut whole = pattern(200 * 1024, 1);
    whole.extend_from_slice(b"tail");
    assert_eq!(
        r.header("x-oss-hash-crc64ecma"),
        Some(ferry::crc64::checksum(&whole).to_string())
    );
}

#[tokio::test]
async fn abort_list_parts_paging_and_list_uploads() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let id = initiate(&oss, "dir/a").await;
    for n in 1..=5 {
        upload_part(&oss, "dir/a", &id, n, &[n as u8; 10]).await;
    }
    let page = oss
        .object("GET", "dir/a")
        .query("uploadId", &id)
        .query("max-parts", "2")
        .query("part-number-marker", "1")
        .send()
        .await;
    assert_eq!(page.xml_all("PartNumber"), ["2", "3"]);
    assert_eq!(page.xml("IsTruncated").as_deref(), Some("true"));
    assert_eq!(page.xml("NextPartNumberMarker").as_deref(), Some("3"));

    let id2 = initiate(&oss, "dir/b").await;
    let id3 = initiate(&oss, "other").await;
    let ups = oss.bucket("GET", "bkt").query("uploads", "").send().await;
    assert_eq!(ups.xml_all("Key"), ["dir/a", "dir/b", "other"]);
    let ups = oss
        .bucket("GET", "bkt")
        .query("uploads", "")
        .query("delimiter", "/")
        .send()
        .await;
    assert_eq!(ups.xml_all("Key"), ["other"]);
    assert_eq!(ups.xml_all("Prefix")[1..], ["dir/"]);
    let ups = oss
        .bucket("GET", "bkt")
        .query("uploads", "")
        .query("max-uploads", "1")
        .send()
        .await;
    assert_eq!(
        (ups.xml_all("Key"), ups.xml("IsTruncated")),
        (vec!["dir/a".to_owned()], Some("true".to_owned()))
    );
    let r = oss.bucket("DELETE", "bkt").send().await;
    assert_eq!(
        r.code(),
        "BucketNotEmpty",
        "unfinished uploads keep a bucket"
    );

    for (k, i) in [("dir/a", &id), ("dir/b", &id2), ("other", &id3)] {
        assert_eq!(
            oss.object("DELETE", k)
                .query("uploadId", i)
                .send()
                .await
                .status,
            204
        );
    }
    let r = oss
        .object("DELETE", "dir/a")
        .query("uploadId", &id)
        .send()
        .await;
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchUpload"));
    assert!(
        oss.bucket("GET", "bkt")
            .query("uploads", "")
            .send()
            .await
            .xml_all("Key")
            .is_empty()
    );
}

#[tokio::test]
async fn upload_part_copy_with_ranges() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let src = pattern(300 * 1024, 5);
    oss.put("src/big obj", src.clone()).await;
    let id = initiate(&oss, "dst").await;
    let copy = |n: &str, range: &str| {
        oss.object("PUT", "dst")
            .query("partNumber", n)
            .query("uploadId", &id)
            .header("x-oss-copy-source", "/bkt/src/big%20obj")
            .header("x-oss-copy-source-range", range)
    };
    let r1 = copy("1", "bytes=0-204799").send().await;
    assert_eq!(r1.status, 200, "{}", r1.text());
    assert_eq!(
        r1.xml("ETag"),
        Some(format!("\"{}\"", md5_hex_upper(&src[..204800])))
    );
    let r2 = copy("2", "bytes=204800-307199").send().await;
    let bad = copy("3", "bytes=999999-1000000").send().await;
    assert_eq!((bad.status, bad.code().as_str()), (416, "InvalidRange"));
    let parts = [(1, r1.xml("ETag").unwrap()), (2, r2.xml("ETag").unwrap())];
    let done = complete(&oss, "dst", &id, &parts).await;
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(
        done.header("x-oss-hash-crc64ecma"),
        Some(ferry::crc64::checksum(&src).to_string())
    );
    assert!(oss.get("dst").await.body.as_ref() == src.as_slice());
}
