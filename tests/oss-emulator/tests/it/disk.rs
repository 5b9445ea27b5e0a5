//! Disk storage: everything survives a restart, deleted data leaves the disk.

use std::time::Duration;

use crate::common::*;
use oss_emulator::Emulator;

async fn start(dir: &std::path::Path) -> Emulator {
    Emulator::builder()
        .credentials(AK, SK)
        .region(REGION)
        .data_dir(Some(dir.to_owned()))
        .restore_delay(Duration::from_millis(50))
        .start()
        .await
        .unwrap()
}

fn blob_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("blobs")).unwrap().count()
}

#[tokio::test]
async fn objects_uploads_and_settings_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = pattern(300_000, 1);
    let (upload_id, part_etag);
    {
        let emu = start(dir).await;
        emu.create_bucket("bkt").unwrap();
        let oss = Oss::v4(&emu);
        let r = oss
            .object("PUT", "dir/中文 key")
            .header("x-oss-meta-a", "1")
            .header("content-type", "text/x")
            .body(data.clone())
            .send()
            .await;
        assert_eq!(r.status, 200);
        oss.object("PUT", "cold")
            .header("x-oss-storage-class", "Archive")
            .body("c")
            .send()
            .await;
        assert_eq!(
            oss.object("POST", "cold")
                .query("restore", "")
                .send()
                .await
                .status,
            202
        );
        oss.bucket("PUT", "bkt").query("website", "").body("<WebsiteConfiguration><IndexDocument><Suffix>i.html</Suffix></IndexDocument></WebsiteConfiguration>").send().await;
        // A finished multipart object and one still in progress.
        let id = oss
            .object("POST", "mp")
            .query("uploads", "")
            .send()
            .await
            .xml("UploadId")
            .unwrap();
        let e1 = oss
            .object("PUT", "mp")
            .query("partNumber", "1")
            .query("uploadId", &id)
            .body(data[..200_000].to_vec())
            .send()
            .await
            .header("etag")
            .unwrap();
        let e2 = oss
            .object("PUT", "mp")
            .query("partNumber", "2")
            .query("uploadId", &id)
            .body(data[200_000..].to_vec())
            .send()
            .await
            .header("etag")
            .unwrap();
        let body = format!(
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{e1}</ETag></Part><Part><PartNumber>2</PartNumber><ETag>{e2}</ETag></Part></CompleteMultipartUpload>"
        );
        assert_eq!(
            oss.object("POST", "mp")
                .query("uploadId", &id)
                .body(body)
                .send()
                .await
                .status,
            200
        );
        upload_id = oss
            .object("POST", "open")
            .query("uploads", "")
            .send()
            .await
            .xml("UploadId")
            .unwrap();
        part_etag = oss
            .object("PUT", "open")
            .query("partNumber", "1")
            .query("uploadId", &upload_id)
            .body("part-one")
            .send()
            .await
            .header("etag")
            .unwrap();
        emu.shutdown().await;
    }
    let emu = start(dir).await;
    let oss = Oss::v4(&emu);
    let r = oss.get("dir/中文 key").await;
    assert!(r.body.as_ref() == data.as_slice());
    assert_eq!(r.header("x-oss-meta-a").as_deref(), Some("1"));
    assert_eq!(r.header("content-type").as_deref(), Some("text/x"));
    assert_eq!(
        r.header("x-oss-hash-crc64ecma"),
        Some(ferry::crc64::checksum(&data).to_string())
    );
    let mp = oss.get("mp").await;
    assert!(mp.body.as_ref() == data.as_slice());
    assert_eq!(mp.header("x-oss-object-type").as_deref(), Some("Multipart"));
    assert_eq!(
        mp.header("x-oss-hash-crc64ecma"),
        Some(ferry::crc64::checksum(&data).to_string())
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(
        oss.get("cold").await.text(),
        "c",
        "the restore finished while the emulator was down"
    );
    assert!(
        oss.bucket("GET", "bkt")
            .query("website", "")
            .send()
            .await
            .text()
            .contains("i.html")
    );
    let parts = oss
        .object("GET", "open")
        .query("uploadId", &upload_id)
        .send()
        .await;
    assert_eq!(parts.xml("ETag"), Some(part_etag.clone()));
    let body = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{part_etag}</ETag></Part></CompleteMultipartUpload>"
    );
    assert_eq!(
        oss.object("POST", "open")
            .query("uploadId", &upload_id)
            .body(body)
            .send()
            .await
            .status,
        200
    );
    assert_eq!(oss.get("open").await.text(), "part-one");
    let cfg = admin(&emu, "GET", "config", "").await.json();
    assert_eq!(cfg["storage"], "disk");
}

#[tokio::test]
async fn deleting_and_overwriting_free_disk_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let emu = start(dir).await;
    emu.create_bucket("bkt").unwrap();
    let oss = Oss::v4(&emu);
    oss.put("a", "1").await;
    oss.put("b", "2").await;
    assert_eq!(blob_count(dir), 2);
    oss.put("a", "3").await;
    assert_eq!(blob_count(dir), 2, "the overwritten data file is gone");
    oss.object("DELETE", "b").send().await;
    assert_eq!(blob_count(dir), 1);
    // A refused upload (bad Content-MD5) leaves nothing behind.
    oss.object("PUT", "c")
        .header("content-md5", &md5_b64(b"other"))
        .body("4")
        .send()
        .await;
    assert_eq!(blob_count(dir), 1);
    let id = oss
        .object("POST", "m")
        .query("uploads", "")
        .send()
        .await
        .xml("UploadId")
        .unwrap();
    oss.object("PUT", "m")
        .query("partNumber", "1")
        .query("uploadId", &id)
        .body("p")
        .send()
        .await;
    oss.object("PUT", "m")
        .query("partNumber", "1")
        .query("uploadId", &id)
        .body("q")
        .send()
        .await;
    assert_eq!(blob_count(dir), 2, "a re-uploaded part replaces its file");
    oss.object("DELETE", "m")
        .query("uploadId", &id)
        .send()
        .await;
    assert_eq!(blob_count(dir), 1);
    emu.shutdown().await;

    std::fs::write(dir.join("blobs").join("orphan"), b"left over").unwrap();
    let emu = start(dir).await;
    assert_eq!(
        blob_count(dir),
        1,
        "files no sidecar mentions are removed at start"
    );
    assert_eq!(Oss::v4(&emu).get("a").await.text(), "3");
}
