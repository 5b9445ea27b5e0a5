//! Object tagging (`?tagging`): PutObjectTagging replaces the whole set, GetObjectTagging shows
//! it, DeleteObjectTagging clears it; OSS's limits and error codes; `x-oss-tagging-count`
//! agreeing with the set; the header form on PutObject, multipart and copy; the S3 dialect;
//! and tags on disk.

use std::time::Duration;

use crate::common::*;
use oss_emulator::Emulator;

fn pairs(tags: &[(&str, &str)]) -> Vec<(String, String)> {
    tags.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A `<Tagging>` body; keys and values are inserted as they are (escape them yourself).
fn tagging_xml(tags: &[(&str, &str)]) -> String {
    let tags: String = tags
        .iter()
        .map(|(k, v)| format!("<Tag><Key>{k}</Key><Value>{v}</Value></Tag>"))
        .collect();
    format!("<Tagging><TagSet>{tags}</TagSet></Tagging>")
}

async fn put_tagging(oss: &Oss, key: &str, body: impl Into<bytes::Bytes>) -> Resp {
    oss.object("PUT", key)
        .query("tagging", "")
        .body(body)
        .send()
        .await
}

async fn get_tagging(oss: &Oss, key: &str) -> Resp {
    oss.object("GET", key).query("tagging", "").send().await
}

async fn delete_tagging(oss: &Oss, key: &str) -> Resp {
    oss.object("DELETE", key).query("tagging", "").send().await
}

/// The tags GetObjectTagging shows, in document order.
fn tags_of(r: &Resp) -> Vec<(String, String)> {
    assert_eq!(r.status, 200, "{}", r.text());
    r.xml_all("Key")
        .into_iter()
        .zip(r.xml_all("Value"))
        .collect()
}

async fn tagging_count(oss: &Oss, key: &str) -> Option<String> {
    let head = oss.object("HEAD", key).send().await;
    assert_eq!(head.status, 200);
    head.header("x-oss-tagging-count")
}

#[tokio::test]
async fn put_get_delete_in_both_signature_versions() {
    let emu = emulator().await;
    for (oss, key) in [(Oss::v4(&emu), "v4 obj"), (Oss::v1(&emu), "v1/obj+中")] {
        let r = oss
            .object("PUT", key)
            .header("x-oss-tagging", "a=1&b=x%20y")
            .body("data")
            .send()
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let r = get_tagging(&oss, key).await;
        assert_eq!(tags_of(&r), pairs(&[("a", "1"), ("b", "x y")]));
        assert!(r.text().contains("<Tagging><TagSet><Tag><Key>a</Key>"));
        assert!(
            r.header("content-type")
                .is_some_and(|t| t.contains("application/xml"))
        );

        let r = put_tagging(&oss, key, tagging_xml(&[("c", "3")])).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.body.is_empty());
        assert_eq!(tags_of(&get_tagging(&oss, key).await), pairs(&[("c", "3")]));
        assert_eq!(tagging_count(&oss, key).await.as_deref(), Some("1"));

        let r = delete_tagging(&oss, key).await;
        assert_eq!(r.status, 204, "{}", r.text());
        let r = get_tagging(&oss, key).await;
        assert!(tags_of(&r).is_empty());
        assert!(r.text().contains("<TagSet></TagSet>"));
        assert_eq!(tagging_count(&oss, key).await, None);
        assert_eq!(delete_tagging(&oss, key).await.status, 204, "idempotent");
    }
    let counters = emu.counters();
    assert_eq!(counters.operation("PutObjectTagging"), 2);
    assert_eq!(counters.operation("GetObjectTagging"), 6);
    assert_eq!(counters.operation("DeleteObjectTagging"), 4);
}

#[tokio::test]
async fn put_replaces_the_set_and_leaves_the_object_alone() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    oss.object("PUT", "k")
        .header("x-oss-tagging", "old1=1&old2=2&old3=3")
        .body("payload")
        .send()
        .await;
    let before = oss.object("HEAD", "k").send().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let set = [(" 中文 key ", "v +-=._:/"), ("b", ""), ("c", "3")];
    let r = put_tagging(&oss, "k", tagging_xml(&set)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(tags_of(&get_tagging(&oss, "k").await), pairs(&set));
    assert_eq!(tagging_count(&oss, "k").await.as_deref(), Some("3"));
    let after = oss.object("HEAD", "k").send().await;
    for name in ["last-modified", "etag", "content-length"] {
        assert_eq!(after.header(name), before.header(name), "{name}");
    }
    assert_eq!(oss.get("k").await.text(), "payload");

    // An empty TagSet is a valid (empty) set.
    let r = put_tagging(&oss, "k", "<Tagging><TagSet/></Tagging>").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(tags_of(&get_tagging(&oss, "k").await).is_empty());
    assert_eq!(tagging_count(&oss, "k").await, None);
}

#[tokio::test]
async fn limits_and_refused_tags() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    oss.put("k", "x").await;
    let (k128, v256) = ("k".repeat(128), "v".repeat(256));
    let ten: Vec<(String, String)> = (0..10).map(|i| (format!("k{i}"), "v".into())).collect();
    let ten_refs: Vec<(&str, &str)> = ten.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for ok in [vec![(k128.as_str(), v256.as_str())], ten_refs.clone()] {
        let r = put_tagging(&oss, "k", tagging_xml(&ok)).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(tagging_count(&oss, "k").await.as_deref(), Some("10"));

    let mut eleven = ten_refs.clone();
    eleven.push(("k10", "v"));
    let (k129, v257) = ("k".repeat(129), "v".repeat(257));
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (eleven, "BadRequest"),
        (vec![(k129.as_str(), "v")], "InvalidTag"),
        (vec![("k", v257.as_str())], "InvalidTag"),
        (vec![("", "v")], "InvalidTag"),
        (vec![("a&amp;b", "v")], "InvalidTag"),
        (vec![("a", "50%")], "InvalidTag"),
        (vec![("mail", "a@b")], "InvalidTag"),
        (vec![("d", "1"), ("d", "2")], "InvalidTag"),
    ];
    for (set, code) in cases {
        let r = put_tagging(&oss, "k", tagging_xml(&set)).await;
        assert_eq!((r.status, r.code().as_str()), (400, code), "{set:?}");
    }
    let r = put_tagging(&oss, "k", tagging_xml(&[("d", "1"), ("d", "2")])).await;
    assert_eq!(r.header("x-oss-ec").as_deref(), Some("0010-00000210"));
    assert_eq!(
        tags_of(&get_tagging(&oss, "k").await),
        ten,
        "a refused set changes nothing"
    );
}

#[tokio::test]
async fn malformed_bodies_are_refused() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    oss.put("k", "x").await;
    put_tagging(&oss, "k", tagging_xml(&[("keep", "me")])).await;
    for body in [
        "",
        "not xml",
        "<Tagging><TagSet><Tag><Key>a</Key></TagSet></Tagging>",
        "<Tagging></Tagging>",
        "<Other><TagSet/></Other>",
    ] {
        let r = put_tagging(&oss, "k", body).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "MalformedXML"),
            "{body}"
        );
    }
    let r = put_tagging(&oss, "k", "<XMLTag><TagSet/></XMLTag>").await;
    assert_eq!(r.header("x-oss-ec").as_deref(), Some("0010-00000102"));

    let body = tagging_xml(&[("a", "1")]);
    let r = oss
        .object("PUT", "k")
        .query("tagging", "")
        .header("content-md5", &md5_b64(b"something else"))
        .body(body.clone())
        .send()
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidDigest"));
    assert_eq!(
        tags_of(&get_tagging(&oss, "k").await),
        pairs(&[("keep", "me")])
    );
    let r = oss
        .object("PUT", "k")
        .query("tagging", "")
        .header("content-md5", &md5_b64(body.as_bytes()))
        .body(body)
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn missing_objects_and_buckets() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    for r in [
        get_tagging(&oss, "nope").await,
        put_tagging(&oss, "nope", tagging_xml(&[("a", "1")])).await,
        delete_tagging(&oss, "nope").await,
    ] {
        assert_eq!(
            (r.status, r.code().as_str()),
            (404, "NoSuchKey"),
            "{}",
            r.text()
        );
        assert_eq!(r.xml("Key").as_deref(), Some("nope"));
    }
    assert!(
        emu.object_info("bkt", "nope").is_none(),
        "no object appears"
    );
    let r = oss
        .req("GET", Some("no-such-bucket"), Some("k"))
        .query("tagging", "")
        .send()
        .await;
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchBucket"));
}

#[tokio::test]
async fn header_tags_follow_the_same_rules() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let put_with = |key: &'static str, tags: &'static str| {
        oss.object("PUT", key)
            .header("x-oss-tagging", tags)
            .body("x")
            .send()
    };
    let r = put_with("k", "aa=bb=cc").await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidArgument"));
    assert_eq!(r.header("x-oss-ec").as_deref(), Some("0010-00000219"));
    for bad in ["mail=a%40b", "k=v&k=w", "=v"] {
        let r = put_with("k", bad).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "InvalidArgument"),
            "{bad}"
        );
    }
    assert!(emu.object_info("bkt", "k").is_none());
    let r = put_with("k", "a%3Db=c%3Dd&flag").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        tags_of(&get_tagging(&oss, "k").await),
        pairs(&[("a=b", "c=d"), ("flag", "")])
    );

    // Multipart uploads keep the tags given at initiation.
    let r = oss
        .object("POST", "mp")
        .query("uploads", "")
        .header("x-oss-tagging", "m=1")
        .send()
        .await;
    let upload_id = r.xml("UploadId").unwrap();
    let part = oss
        .object("PUT", "mp")
        .query("partNumber", "1")
        .query("uploadId", &upload_id)
        .body("part")
        .send()
        .await;
    let etag = part.header("etag").unwrap();
    let done = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let r = oss
        .object("POST", "mp")
        .query("uploadId", &upload_id)
        .body(done)
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        tags_of(&get_tagging(&oss, "mp").await),
        pairs(&[("m", "1")])
    );

    // Copies take the source's tags, or the request's with the Replace directive.
    let copy = |dst: &'static str| {
        oss.object("PUT", dst)
            .header("x-oss-copy-source", "/bkt/mp")
            .header("x-oss-tagging", "r=2")
    };
    assert_eq!(copy("c1").send().await.status, 200);
    assert_eq!(
        tags_of(&get_tagging(&oss, "c1").await),
        pairs(&[("m", "1")])
    );
    let r = copy("c2")
        .header("x-oss-tagging-directive", "Replace")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        tags_of(&get_tagging(&oss, "c2").await),
        pairs(&[("r", "2")])
    );
}

#[tokio::test]
async fn s3_dialect() {
    let emu = emulator().await;
    let s3 = S3::new(&emu);
    let q = [("tagging", "")];
    let r = s3
        .send("PUT", "/bkt/s3 obj", &[], &[("x-amz-tagging", "a=1")], "x")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s3.send("GET", "/bkt/s3 obj", &q, &[], "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(
        "<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet><Tag><Key>a</Key><Value>1</Value></Tag>"
    ));

    let body = tagging_xml(&[("b", "2"), ("c", "3")]);
    let r = s3.send("PUT", "/bkt/s3 obj", &q, &[], body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let head = s3.send("HEAD", "/bkt/s3 obj", &[], &[], "").await;
    assert_eq!(head.header("x-amz-tagging-count").as_deref(), Some("2"));
    // One store: the OSS dialect sees what the S3 dialect wrote.
    let oss = Oss::v4(&emu);
    assert_eq!(
        tags_of(&get_tagging(&oss, "s3 obj").await),
        pairs(&[("b", "2"), ("c", "3")])
    );

    let r = s3
        .send(
            "PUT",
            "/bkt/s3 obj",
            &q,
            &[],
            tagging_xml(&[("bad&amp;", "v")]),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidTag"));
    assert!(r.xml("Resource").is_some(), "an S3 error document");
    let r = s3.send("DELETE", "/bkt/s3 obj", &q, &[], "").await;
    assert_eq!(r.status, 204);
    let r = s3.send("GET", "/bkt/missing", &q, &[], "").await;
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchKey"));
}

#[tokio::test]
async fn tags_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let start = || {
        Emulator::builder()
            .credentials(AK, SK)
            .region(REGION)
            .data_dir(Some(tmp.path().to_owned()))
            .start()
    };
    {
        let emu = start().await.unwrap();
        emu.create_bucket("bkt").unwrap();
        let oss = Oss::v4(&emu);
        oss.put("k", "x").await;
        let r = put_tagging(&oss, "k", tagging_xml(&[("kept", "on disk")])).await;
        assert_eq!(r.status, 200, "{}", r.text());
        emu.shutdown().await;
    }
    let emu = start().await.unwrap();
    let oss = Oss::v4(&emu);
    assert_eq!(
        tags_of(&get_tagging(&oss, "k").await),
        pairs(&[("kept", "on disk")])
    );
}
