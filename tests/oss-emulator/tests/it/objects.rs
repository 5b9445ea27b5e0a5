//! PutObject / GetObject / HeadObject / DeleteObject semantics and their errors.

use crate::common::*;

#[tokio::test]
async fn put_then_head_returns_every_stored_header() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let data = pattern(1000, 1);
    let put = oss
        .object("PUT", "h/obj.txt")
        .header("content-type", "text/plain")
        .header("cache-control", "no-cache")
        .header("content-disposition", "attachment; filename=\"a.txt\"")
        .header("content-encoding", "identity")
        .header("content-language", "en")
        .header("expires", "Wed, 21 Oct 2037 07:28:00 GMT")
        .header("x-oss-meta-Author", "alice")
        .header("x-oss-meta-empty-ok", "")
        .header("x-oss-storage-class", "IA")
        .header("x-oss-tagging", "team=a&env=test")
        .body(data.clone())
        .send()
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    let etag = format!("\"{}\"", md5_hex_upper(&data));
    let crc = ferry::crc64::checksum(&data).to_string();
    assert_eq!(put.header("etag"), Some(etag.clone()));
    assert_eq!(put.header("x-oss-hash-crc64ecma"), Some(crc.clone()));

    let head = oss.object("HEAD", "h/obj.txt").send().await;
    assert_eq!(head.status, 200);
    let h = |n: &str| head.header(n).unwrap_or_else(|| panic!("HEAD lacks {n}"));
    assert_eq!(h("content-length"), "1000");
    assert_eq!(h("content-type"), "text/plain");
    assert_eq!(h("etag"), etag);
    assert!(h("last-modified").ends_with(" GMT"));
    assert_eq!(h("x-oss-object-type"), "Normal");
    assert_eq!(h("x-oss-storage-class"), "IA");
    assert_eq!(h("x-oss-hash-crc64ecma"), crc);
    assert_eq!(h("x-oss-meta-author"), "alice");
    assert_eq!(h("x-oss-tagging-count"), "2");
    assert_eq!(h("cache-control"), "no-cache");
    assert_eq!(h("content-disposition"), "attachment; filename=\"a.txt\"");
    assert_eq!(h("content-encoding"), "identity");
    assert_eq!(h("content-language"), "en");
    assert_eq!(h("expires"), "Wed, 21 Oct 2037 07:28:00 GMT");
    assert_eq!(h("content-md5"), md5_b64(&data));
    assert!(head.header("x-oss-request-id").is_some());
    assert!(head.body.is_empty());

    let get = oss.get("h/obj.txt").await;
    assert_eq!(get.body.as_ref(), data.as_slice());
}

#[tokio::test]
async fn content_md5_is_checked() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let r = oss
        .object("PUT", "m")
        .header("content-md5", &md5_b64(b"abc"))
        .body("abc")
        .send()
        .await;
    assert_eq!(r.status, 200);
    let r = oss
        .object("PUT", "m2")
        .header("content-md5", &md5_b64(b"abd"))
        .body("abc")
        .send()
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidDigest"));
    let r = oss
        .object("PUT", "m2")
        .header("content-md5", "not-base64!")
        .body("abc")
        .send()
        .await;
    assert_eq!(r.code(), "InvalidDigest");
    assert!(emu.object_info("bkt", "m2").is_none());
}

#[tokio::test]
async fn forbid_overwrite_keeps_the_first_object() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let r = oss
        .object("PUT", "f")
        .header("x-oss-forbid-overwrite", "true")
        .body("one")
        .send()
        .await;
    assert_eq!(r.status, 200);
    let r = oss
        .object("PUT", "f")
        .header("x-oss-forbid-overwrite", "true")
        .body("two")
        .send()
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "FileAlreadyExists"));
    let r = oss
        .object("PUT", "f")
        .header("x-oss-forbid-overwrite", "false")
        .body("three")
        .send()
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(oss.get("f").await.text(), "three");
}

#[tokio::test]
async fn storage_class_metadata_and_tag_rules() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let r = oss
        .object("PUT", "s")
        .header("x-oss-storage-class", "Glacier")
        .body("x")
        .send()
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidArgument"));
    assert_eq!(r.header("x-oss-ec").as_deref(), Some("0013-00000101"));
    let r = oss
        .object("PUT", "s")
        .header("x-oss-meta-bad_name", "x")
        .body("x")
        .send()
        .await;
    assert_eq!(r.code(), "InvalidArgument");
    let big = "v".repeat(8 * 1024);
    let r = oss
        .object("PUT", "s")
        .header("x-oss-meta-big", &big)
        .body("x")
        .send()
        .await;
    assert_eq!(r.code(), "InvalidArgument");
    let ok = "v".repeat(8 * 1024 - 10);
    let r = oss
        .object("PUT", "s")
        .header("x-oss-meta-big", &ok)
        .body("x")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let eleven: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
    let r = oss
        .object("PUT", "t")
        .header("x-oss-tagging", &eleven.join("&"))
        .body("x")
        .send()
        .await;
    assert_eq!(r.code(), "InvalidArgument");
    for class in [
        "Standard",
        "IA",
        "Archive",
        "ColdArchive",
        "DeepColdArchive",
    ] {
        let key = format!("class-{class}");
        let r = oss
            .object("PUT", &key)
            .header("x-oss-storage-class", class)
            .body("x")
            .send()
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            oss.object("HEAD", &key)
                .send()
                .await
                .header("x-oss-storage-class")
                .as_deref(),
            Some(class)
        );
    }
}

#[tokio::test]
async fn object_name_rules() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let longest = "k".repeat(1023);
    assert_eq!(oss.put(&longest, "x").await.status, 200);
    assert_eq!(oss.get(&longest).await.text(), "x");
    for bad in [
        "k".repeat(1024),
        "/leading-slash".to_owned(),
        "\\leading-backslash".to_owned(),
    ] {
        let r = oss.put(&bad, "x").await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "InvalidObjectName"),
            "{bad:.20}"
        );
    }
    // A 1024-byte UTF-8 key made of 3-byte characters is refused too (bytes, not characters).
    let r = oss.put(&"中".repeat(342), "x").await;
    assert_eq!(r.code(), "InvalidObjectName");
}

#[tokio::test]
async fn ranges_default_and_standard_behaviour() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let data = pattern(1000, 3);
    oss.put("r", data.clone()).await;
    let whole_crc = ferry::crc64::checksum(&data).to_string();

    let r = oss
        .object("GET", "r")
        .header("range", "bytes=10-19")
        .send()
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range").as_deref(),
        Some("bytes 10-19/1000")
    );
    assert_eq!(r.body.as_ref(), &data[10..20]);
    assert_eq!(
        r.header("x-oss-hash-crc64ecma"),
        Some(whole_crc.clone()),
        "ranges report the whole-object CRC"
    );

    let r = oss
        .object("GET", "r")
        .header("range", "bytes=-5")
        .send()
        .await;
    assert_eq!((r.status, r.body.as_ref()), (206, &data[995..]));
    let r = oss
        .object("GET", "r")
        .header("range", "bytes=990-")
        .send()
        .await;
    assert_eq!((r.status, r.body.len()), (206, 10));

    // Invalid ranges: the whole object, unless the client asks for standard behaviour.
    let r = oss
        .object("GET", "r")
        .header("range", "bytes=500-5000")
        .send()
        .await;
    assert_eq!((r.status, r.body.len()), (200, 1000));
    assert!(r.header("content-range").is_none());
    let r = oss
        .object("GET", "r")
        .header("range", "bytes=2000-3000")
        .send()
        .await;
    assert_eq!((r.status, r.body.len()), (200, 1000));
    let std_range = |range: &'static str| {
        oss.object("GET", "r")
            .header("range", range)
            .header("x-oss-range-behavior", "standard")
    };
    let r = std_range("bytes=2000-3000").send().await;
    assert_eq!((r.status, r.code().as_str()), (416, "InvalidRange"));
    assert_eq!(r.header("content-range").as_deref(), Some("bytes */1000"));
    let r = std_range("bytes=500-5000").send().await;
    assert_eq!(
        (r.status, r.header("content-range").as_deref()),
        (206, Some("bytes 500-999/1000"))
    );
    assert_eq!(r.body.as_ref(), &data[500..]);
}

#[tokio::test]
async fn response_overrides_and_conditionals() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let put = oss
        .object("PUT", "c")
        .header("content-type", "text/plain")
        .body("data")
        .send()
        .await;
    let etag = put.header("etag").unwrap();
    let r = oss
        .object("GET", "c")
        .query("response-content-type", "application/json")
        .query(
            "response-content-disposition",
            "attachment; filename=x.json",
        )
        .query("response-cache-control", "max-age=5")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        r.header("content-disposition").as_deref(),
        Some("attachment; filename=x.json")
    );
    assert_eq!(r.header("cache-control").as_deref(), Some("max-age=5"));
    // The same with V1, where response-* are signed sub-resources.
    let r = Oss::v1(&emu)
        .object("GET", "c")
        .query("response-content-type", "a/b")
        .send()
        .await;
    assert_eq!(r.header("content-type").as_deref(), Some("a/b"));

    let cond = |name: &'static str, value: String| oss.object("GET", "c").header(name, &value);
    assert_eq!(cond("if-match", etag.clone()).send().await.status, 200);
    assert_eq!(
        cond("if-match", "\"0000\"".into()).send().await.code(),
        "PreconditionFailed"
    );
    assert_eq!(cond("if-none-match", etag.clone()).send().await.status, 304);
    assert_eq!(
        cond("if-none-match", "\"0000\"".into()).send().await.status,
        200
    );
    let future = "Wed, 21 Oct 2037 07:28:00 GMT".to_owned();
    let past = "Wed, 21 Oct 2015 07:28:00 GMT".to_owned();
    assert_eq!(
        cond("if-modified-since", future.clone())
            .send()
            .await
            .status,
        304
    );
    assert_eq!(
        cond("if-modified-since", past.clone()).send().await.status,
        200
    );
    let r = cond("if-unmodified-since", past).send().await;
    assert_eq!((r.status, r.code().as_str()), (412, "PreconditionFailed"));
    assert_eq!(cond("if-unmodified-since", future).send().await.status, 200);
}

#[tokio::test]
async fn delete_is_idempotent_and_missing_things_have_their_codes() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    oss.put("d", "x").await;
    assert_eq!(oss.object("DELETE", "d").send().await.status, 204);
    assert_eq!(oss.object("DELETE", "d").send().await.status, 204);
    let r = oss.get("d").await;
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchKey"));
    assert_eq!(r.header("x-oss-ec").as_deref(), Some("0026-00000001"));
    let r = oss
        .req("GET", Some("no-such-bucket"), Some("k"))
        .send()
        .await;
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchBucket"));
    let r = oss
        .req("DELETE", Some("no-such-bucket"), Some("k"))
        .send()
        .await;
    assert_eq!(r.code(), "NoSuchBucket");
    let r = oss
        .req("PUT", Some("no-such-bucket"), Some("k"))
        .body("x")
        .send()
        .await;
    assert_eq!(r.code(), "NoSuchBucket");
}

#[tokio::test]
async fn delete_multiple_objects() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    for k in ["a", "b", "c"] {
        oss.put(k, "x").await;
    }
    let body = "<Delete><Quiet>false</Quiet><Object><Key>a</Key></Object><Object><Key>b</Key></Object><Object><Key>zz</Key></Object></Delete>";
    let r = oss
        .bucket("POST", "bkt")
        .query("delete", "")
        .header("content-md5", &md5_b64(body.as_bytes()))
        .body(body)
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.xml_all("Key"), ["a", "b", "zz"]);
    assert_eq!(emu.keys("bkt").unwrap(), ["c"]);
}

#[tokio::test]
async fn large_objects_stream_through_intact() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let data = pattern(24 << 20, 9);
    let r = oss.put("big", data.clone()).await;
    assert_eq!(
        r.header("x-oss-hash-crc64ecma"),
        Some(ferry::crc64::checksum(&data).to_string())
    );
    let got = oss.get("big").await;
    assert_eq!(got.body.len(), data.len());
    assert!(got.body.as_ref() == data.as_slice());
    let part = oss
        .object("GET", "big")
        .header("range", "bytes=10000000-10999999")
        .send()
        .await;
    assert!(part.body.as_ref() == &data[10_000_000..11_000_000]);
}

#[tokio::test]
async fn delete_multiple_with_url_encoding_takes_raw_keys_and_encodes_the_answer() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let key = "50% off+more/a b";
    oss.put(key, "x").await;
    let body = format!("<Delete><Quiet>false</Quiet><Object><Key>{key}</Key></Object></Delete>");
    let r = oss
        .bucket("POST", "bkt")
        .query("delete", "")
        .query("encoding-type", "url")
        .body(body)
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.xml_all("Key"), ["50%25%20off%2Bmore/a%20b"]);
    assert!(emu.object_info("bkt", key).is_none());
}
