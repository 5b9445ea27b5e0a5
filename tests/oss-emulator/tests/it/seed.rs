//! `Emulator::seed_objects`: bulk seeding stores objects exactly as PutObject would, and
//! refuses what it cannot do.

use crate::common;

use std::time::Duration;

use oss_emulator::Emulator;

#[tokio::test]
async fn seeded_objects_look_like_put_objects() {
    let emu = common::emulator().await;
    emu.create_bucket("other").unwrap();
    let objects = [("a/1", &b"hello"[..]), ("a/2", b""), ("中 文+%", b"x")];
    let stored = emu
        .seed_objects("bkt", objects.iter().map(|(k, d)| (*k, d.to_vec())))
        .unwrap();
    assert_eq!(stored, 3);
    for (key, data) in objects {
        emu.put_object("other", key, data.to_vec()).await.unwrap();
        let (seeded, put) = (emu.object_info("bkt", key), emu.object_info("other", key));
        let (seeded, put) = (seeded.unwrap(), put.unwrap());
        assert_eq!(
            (
                seeded.size,
                &seeded.etag,
                seeded.crc64,
                seeded.storage_class
            ),
            (put.size, &put.etag, put.crc64, put.storage_class),
            "{key}"
        );
        assert_eq!(emu.object_bytes("bkt", key).await.unwrap(), data);
    }
    assert_eq!(emu.keys("bkt").unwrap(), ["a/1", "a/2", "中 文+%"]);
    // Seeding is not a request.
    assert_eq!(emu.counters().total, 0);
}

#[tokio::test]
async fn seeding_refuses_bad_keys_missing_buckets_and_disk_storage() {
    let emu = common::emulator().await;
    let err = emu.seed_objects("bkt", [("/lead", vec![])]).unwrap_err();
    assert_eq!(err.code, "InvalidObjectName");
    let err = emu.seed_objects("nope", [("k", vec![])]).unwrap_err();
    assert_eq!(err.code, "NoSuchBucket");

    let dir = tempfile::tempdir().unwrap();
    let disk = Emulator::builder()
        .credentials(common::AK, common::SK)
        .data_dir(Some(dir.path().to_owned()))
        .restore_delay(Duration::from_millis(10))
        .start()
        .await
        .unwrap();
    disk.create_bucket("bkt").unwrap();
    let err = disk.seed_objects("bkt", [("k", vec![1u8])]).unwrap_err();
    assert!(err.message.contains("in-memory"), "{}", err.message);
    assert!(disk.keys("bkt").unwrap().is_empty());
}
