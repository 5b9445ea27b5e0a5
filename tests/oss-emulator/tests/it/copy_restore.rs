//! CopyObject (metadata and tagging directives, storage-class change, forbid-overwrite) and
//! RestoreObject (202 → 409 → 200, x-oss-restore, InvalidObjectState).

use std::time::Duration;

use crate::common::*;

#[tokio::test]
async fn copy_with_copy_and_replace_directives() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    oss.object("PUT", "src/中 文.txt")
        .header("content-type", "text/plain")
        .header("x-oss-meta-a", "1")
        .header("x-oss-tagging", "t=1")
        .body("copy me")
        .send()
        .await;
    let source = "/bkt/src/%E4%B8%AD%20%E6%96%87.txt";
    let r = oss
        .object("PUT", "dst/copy")
        .header("x-oss-copy-source", source)
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.xml("ETag"),
        Some(format!("\"{}\"", md5_hex_upper(b"copy me")))
    );
    assert!(r.xml("LastModified").is_some());
    let head = oss.object("HEAD", "dst/copy").send().await;
    assert_eq!(head.header("x-oss-meta-a").as_deref(), Some("1"));
    assert_eq!(head.header("content-type").as_deref(), Some("text/plain"));
    assert_eq!(head.header("x-oss-tagging-count").as_deref(), Some("1"));
    assert_eq!(
        head.header("x-oss-hash-crc64ecma"),
        Some(ferry::crc64::checksum(b"copy me").to_string())
    );

    let r = oss
        .object("PUT", "dst/replaced")
        .header("x-oss-copy-source", source)
        .header("x-oss-metadata-directive", "REPLACE")
        .header("x-oss-meta-b", "2")
        .header("x-oss-tagging-directive", "Replace")
        .header("x-oss-tagging", "x=1&y=2")
        .send()
        .await;
    assert_eq!(r.status, 200);
    let head = oss.object("HEAD", "dst/replaced").send().await;
    assert_eq!(head.header("x-oss-meta-a"), None);
    assert_eq!(head.header("x-oss-meta-b").as_deref(), Some("2"));
    assert_eq!(head.header("x-oss-tagging-count").as_deref(), Some("2"));
    assert_eq!(oss.get("dst/replaced").await.text(), "copy me");

    let r = oss
        .object("PUT", "dst/x")
        .header("x-oss-copy-source", "/bkt/none")
        .send()
        .await;
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchKey"));
    let r = oss
        .object("PUT", "dst/x")
        .header("x-oss-copy-source", source)
        .header("x-oss-metadata-directive", "MOVE")
        .send()
        .await;
    assert_eq!(r.code(), "InvalidArgument");
    let r = oss
        .object("PUT", "dst/copy")
        .header("x-oss-copy-source", source)
        .header("x-oss-forbid-overwrite", "true")
        .send()
        .await;
    assert_eq!(r.code(), "FileAlreadyExists");
    let r = oss
        .object("PUT", "dst/x")
        .header("x-oss-copy-source", source)
        .header("x-oss-copy-source-if-match", "\"00\"")
        .send()
        .await;
    assert_eq!((r.status, r.code().as_str()), (412, "PreconditionFailed"));
}

#[tokio::test]
async fn copy_onto_itself_changes_the_storage_class() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    oss.object("PUT", "sc")
        .header("x-oss-meta-keep", "yes")
        .body("data")
        .send()
        .await;
    let r = oss
        .object("PUT", "sc")
        .header("x-oss-copy-source", "/bkt/sc")
        .header("x-oss-storage-class", "Archive")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let head = oss.object("HEAD", "sc").send().await;
    assert_eq!(
        head.header("x-oss-storage-class").as_deref(),
        Some("Archive")
    );
    assert_eq!(head.header("x-oss-meta-keep").as_deref(), Some("yes"));
    assert_eq!(oss.get("sc").await.code(), "InvalidObjectState");
}

#[tokio::test]
async fn restore_lifecycle() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    oss.object("PUT", "cold")
        .header("x-oss-storage-class", "Archive")
        .body("frozen")
        .send()
        .await;
    let r = oss.get("cold").await;
    assert_eq!((r.status, r.code().as_str()), (403, "InvalidObjectState"));
    assert!(
        oss.object("HEAD", "cold")
            .send()
            .await
            .header("x-oss-restore")
            .is_none()
    );
    let copy = oss
        .object("PUT", "cold-copy")
        .header("x-oss-copy-source", "/bkt/cold")
        .send()
        .await;
    assert_eq!(
        copy.code(),
        "InvalidObjectState",
        "copying an unrestored archive object is refused"
    );

    let r = oss.object("POST", "cold").query("restore", "").send().await;
    assert_eq!(r.status, 202, "{}", r.text());
    let r = oss.object("POST", "cold").query("restore", "").send().await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "RestoreAlreadyInProgress")
    );
    let head = oss.object("HEAD", "cold").send().await;
    assert_eq!(
        head.header("x-oss-restore").as_deref(),
        Some("ongoing-request=\"true\"")
    );
    assert_eq!(oss.get("cold").await.code(), "InvalidObjectState");
    let listed = oss
        .bucket("GET", "bkt")
        .query("list-type", "2")
        .send()
        .await;
    assert_eq!(
        listed.xml("RestoreInfo").as_deref(),
        Some("ongoing-request=\"true\"")
    );

    tokio::time::sleep(Duration::from_millis(400)).await;
    let head = oss.object("HEAD", "cold").send().await;
    let restore = head.header("x-oss-restore").unwrap();
    assert!(
        restore.starts_with("ongoing-request=\"false\", expiry-date=\""),
        "{restore}"
    );
    assert!(restore.ends_with(" GMT\""), "{restore}");
    assert_eq!(oss.get("cold").await.text(), "frozen");
    let body = "<RestoreRequest><Days>3</Days></RestoreRequest>";
    let r = oss
        .object("POST", "cold")
        .query("restore", "")
        .header("content-type", "application/xml")
        .body(body)
        .send()
        .await;
    assert_eq!(r.status, 200, "restoring a restored object extends it");
    assert!(emu.object_info("bkt", "cold").unwrap().readable);
}

#[tokio::test]
async fn restore_rules_per_class() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    oss.put("std", "x").await;
    let r = oss.object("POST", "std").query("restore", "").send().await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "OperationNotSupported")
    );
    oss.object("PUT", "ca")
        .header("x-oss-storage-class", "ColdArchive")
        .body("x")
        .send()
        .await;
    let body = "<RestoreRequest><Days>30</Days><JobParameters><Tier>Bulk</Tier></JobParameters></RestoreRequest>";
    let r = oss
        .object("POST", "ca")
        .query("restore", "")
        .body(body)
        .send()
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        r.header("x-oss-object-restore-priority").as_deref(),
        Some("Bulk")
    );
    oss.object("PUT", "ar")
        .header("x-oss-storage-class", "Archive")
        .body("x")
        .send()
        .await;
    let r = oss
        .object("POST", "ar")
        .query("restore", "")
        .body("<RestoreRequest><Days>30</Days></RestoreRequest>")
        .send()
        .await;
    assert_eq!(r.code(), "InvalidArgument", "Archive allows 1-7 days");
    let r = oss
        .object("POST", "ar")
        .query("restore", "")
        .body("<RestoreRequest><Days>")
        .send()
        .await;
    assert_eq!(r.code(), "MalformedXML");
    let r = oss
        .object("POST", "nothing")
        .query("restore", "")
        .send()
        .await;
    assert_eq!(r.code(), "NoSuchKey");
}

#[tokio::test]
async fn restore_delay_is_adjustable_and_completable_in_process() {
    let emu = emulator().await;
    emu.set_restore_delay(Duration::from_secs(3600));
    let oss = Oss::v4(&emu);
    oss.object("PUT", "dc")
        .header("x-oss-storage-class", "DeepColdArchive")
        .body("x")
        .send()
        .await;
    assert_eq!(
        oss.object("POST", "dc")
            .query("restore", "")
            .send()
            .await
            .status,
        202
    );
    assert!(emu.object_info("bkt", "dc").unwrap().restoring());
    emu.complete_restore("bkt", "dc").unwrap();
    assert_eq!(oss.get("dc").await.text(), "x");
}
