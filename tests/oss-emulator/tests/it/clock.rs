//! Per-instance clocks: an emulator whose clock is off real time (the client's clock is wrong
//! from its point of view) refuses requests signed with real time, says its own time in `Date`,
//! and writes its own time into every stored time.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ferry::oss::sign::SignatureVersion;
use oss_emulator::Emulator;

use crate::common::*;

/// The server's clock is 20 minutes behind real time.
fn behind() -> TimeDelta {
    TimeDelta::minutes(-20)
}

/// Dates have whole seconds and requests take a moment: allow this much either way.
const SLACK: TimeDelta = TimeDelta::seconds(5);

async fn emulator_with_offset(offset: TimeDelta) -> Emulator {
    let emu = Emulator::builder()
        .credentials(AK, SK)
        .region(REGION)
        .clock_offset(offset)
        .start()
        .await
        .expect("emulator starts");
    emu.create_bucket("bkt").unwrap();
    emu
}

#[track_caller]
fn assert_near(actual: DateTime<Utc>, expected: DateTime<Utc>, what: &str) {
    let diff = actual - expected;
    assert!(
        diff.abs() <= SLACK,
        "{what}: {actual} is {diff} away from the expected {expected}"
    );
}

fn http_date(resp: &Resp, name: &str) -> DateTime<Utc> {
    let value = resp
        .header(name)
        .unwrap_or_else(|| panic!("no {name} header"));
    DateTime::parse_from_rfc2822(&value)
        .unwrap_or_else(|e| panic!("{name} '{value}': {e}"))
        .with_timezone(&Utc)
}

fn iso_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("'{text}': {e}"))
        .with_timezone(&Utc)
}

/// The offset a client learns from a response's `Date`: server time minus local time.
fn learned_offset(resp: &Resp) -> TimeDelta {
    http_date(resp, "date") - Utc::now()
}

#[tokio::test]
async fn a_request_signed_with_the_real_clock_is_too_skewed_and_date_shows_the_server_clock() {
    let emu = emulator_with_offset(behind()).await;
    assert_eq!(emu.clock_offset(), behind());
    assert_near(emu.now(), Utc::now() + behind(), "Emulator::now");
    for version in [SignatureVersion::V4, SignatureVersion::V1] {
        let r = Oss::new(&emu, version).put("k", "x").await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (403, "RequestTimeTooSkewed"),
            "{version:?}: {}",
            r.text()
        );
        assert_eq!(
            r.xml("Message").as_deref(),
            Some("The difference between the request time and the current time is too large.")
        );
        assert_eq!(r.xml("EC").as_deref(), Some("0002-00000504"));
        assert_eq!(
            r.xml("MaxAllowedSkewMilliseconds").as_deref(),
            Some("900000")
        );
        let date = http_date(&r, "date");
        assert_near(date, Utc::now() + behind(), "Date of the refusal");
        // The document names both clocks, in OSS's ISO 8601 form with `.000`.
        let request_time = r.xml("RequestTime").expect("RequestTime");
        let server_time = r.xml("ServerTime").expect("ServerTime");
        assert!(server_time.ends_with(".000Z"), "{server_time}");
        assert_near(iso_time(&request_time), Utc::now(), "RequestTime");
        assert_near(iso_time(&server_time), date, "ServerTime");
    }
    // The S3 dialect (SigV4 signed with real time) is refused the same way.
    let r = S3::new(&emu).send("PUT", "/bkt/k", &[], &[], "x").await;
    assert_eq!((r.status, r.code().as_str()), (403, "RequestTimeTooSkewed"));
    assert_near(http_date(&r, "date"), Utc::now() + behind(), "S3 Date");
    // A presigned URL made with real time starts 20 minutes in the server's future.
    let url = Oss::v4(&emu)
        .object("GET", "k")
        .presign(Duration::from_secs(3600));
    assert_eq!(get_url(&url).await.code(), "RequestTimeTooSkewed");
    assert!(emu.object_info("bkt", "k").is_none());
}

#[tokio::test]
async fn a_request_signed_with_the_server_time_from_date_is_accepted() {
    let emu = emulator_with_offset(behind()).await;
    for version in [SignatureVersion::V4, SignatureVersion::V1] {
        let oss = Oss::new(&emu, version);
        let refused = oss.put("k", "x").await;
        assert_eq!(refused.code(), "RequestTimeTooSkewed");
        // What a client does with such an answer: sign with its clock corrected by `Date`.
        let offset = learned_offset(&refused);
        assert!((offset - behind()).abs() <= SLACK, "learned {offset}");
        let put = oss
            .object("PUT", "k")
            .body("hello")
            .at(Utc::now() + offset)
            .send()
            .await;
        assert_eq!(put.status, 200, "{version:?}: {}", put.text());
        let get = oss.object("GET", "k").at(Utc::now() + offset).send().await;
        assert_eq!((get.status, get.text().as_str()), (200, "hello"));
        // 14 minutes off the server's clock is still within the window, in both directions.
        for off in [TimeDelta::minutes(14), TimeDelta::minutes(-14)] {
            let r = oss
                .object("GET", "k")
                .at(Utc::now() + offset + off)
                .send()
                .await;
            assert_eq!(r.status, 200, "{version:?} {off}: {}", r.text());
        }
    }
    let url = Oss::v4(&emu)
        .object("GET", "k")
        .at(emu.now())
        .presign(Duration::from_secs(60));
    assert_eq!(get_url(&url).await.status, 200);
}

#[tokio::test]
async fn objects_written_get_the_server_time() {
    let emu = emulator_with_offset(behind()).await;
    let oss = Oss::v4(&emu);
    let at = || emu.now();
    let expected = || Utc::now() + behind();

    // PutObject: HEAD's Last-Modified and ListObjectsV2's LastModified.
    let put = oss.object("PUT", "put").body("data").at(at()).send().await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert_near(http_date(&put, "date"), expected(), "Date of the PUT");
    let head = oss.object("HEAD", "put").at(at()).send().await;
    assert_eq!(head.status, 200);
    assert_near(
        http_date(&head, "last-modified"),
        expected(),
        "Last-Modified",
    );
    let list = oss
        .bucket("GET", "bkt")
        .query("list-type", "2")
        .at(at())
        .send()
        .await;
    assert_eq!(list.status, 200, "{}", list.text());
    let listed = list.xml("LastModified").expect("LastModified");
    assert_near(iso_time(&listed), expected(), "ListObjectsV2 LastModified");

    // CopyObject.
    let copy = oss
        .object("PUT", "copy")
        .header("x-oss-copy-source", "/bkt/put")
        .at(at())
        .send()
        .await;
    assert_eq!(copy.status, 200, "{}", copy.text());
    assert_near(
        iso_time(&copy.xml("LastModified").expect("LastModified")),
        expected(),
        "CopyObject LastModified",
    );
    let head = oss.object("HEAD", "copy").at(at()).send().await;
    assert_near(http_date(&head, "last-modified"), expected(), "copy");

    // Multipart: Initiated, the part's LastModified and the completed object.
    let init = oss
        .object("POST", "mp")
        .query("uploads", "")
        .at(at())
        .send()
        .await;
    let id = init.xml("UploadId").expect("UploadId");
    let uploads = oss
        .bucket("GET", "bkt")
        .query("uploads", "")
        .at(at())
        .send()
        .await;
    assert_near(
        iso_time(&uploads.xml("Initiated").expect("Initiated")),
        expected(),
        "Initiated",
    );
    let part = oss
        .object("PUT", "mp")
        .query("partNumber", "1")
        .query("uploadId", &id)
        .body("part one")
        .at(at())
        .send()
        .await;
    assert_eq!(part.status, 200, "{}", part.text());
    let etag = part.header("etag").unwrap();
    let parts = oss
        .object("GET", "mp")
        .query("uploadId", &id)
        .at(at())
        .send()
        .await;
    assert_near(
        iso_time(&parts.xml("LastModified").expect("part LastModified")),
        expected(),
        "part LastModified",
    );
    let done = oss
        .object("POST", "mp")
        .query("uploadId", &id)
        .body(format!(
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
        ))
        .at(at())
        .send()
        .await;
    assert_eq!(done.status, 200, "{}", done.text());
    let head = oss.object("HEAD", "mp").at(at()).send().await;
    assert_near(http_date(&head, "last-modified"), expected(), "multipart");

    // The in-process API writes with the same clock.
    emu.put_object("bkt", "direct", "d").await.unwrap();
    let head = oss.object("HEAD", "direct").at(at()).send().await;
    assert_near(http_date(&head, "last-modified"), expected(), "put_object");
}

#[tokio::test]
async fn offset_zero_behaves_as_before() {
    let emu = emulator().await;
    assert_eq!(emu.clock_offset(), TimeDelta::zero());
    let oss = Oss::v4(&emu);
    let put = oss.put("k", "x").await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert_near(http_date(&put, "date"), Utc::now(), "Date");
    let head = oss.object("HEAD", "k").send().await;
    assert_near(
        http_date(&head, "last-modified"),
        Utc::now(),
        "Last-Modified",
    );
    let list = oss
        .bucket("GET", "bkt")
        .query("list-type", "2")
        .send()
        .await;
    assert_near(
        iso_time(&list.xml("LastModified").unwrap()),
        Utc::now(),
        "LastModified",
    );
    // 16 minutes off real time is still refused.
    let r = oss
        .object("GET", "k")
        .at(Utc::now() - TimeDelta::minutes(16))
        .send()
        .await;
    assert_eq!((r.status, r.code().as_str()), (403, "RequestTimeTooSkewed"));
    assert_near(http_date(&r, "date"), Utc::now(), "Date of the refusal");
}

#[tokio::test]
async fn the_offset_changes_at_run_time_and_each_emulator_keeps_its_own() {
    let emu = emulator().await;
    let other = emulator().await;
    let oss = Oss::v4(&emu);
    assert_eq!(oss.put("before", "x").await.status, 200);

    emu.set_clock_offset(behind());
    let r = oss.get("before").await;
    assert_eq!(r.code(), "RequestTimeTooSkewed");
    assert_near(http_date(&r, "date"), Utc::now() + behind(), "after set");
    // Another emulator in the same process still runs on real time.
    let r = Oss::v4(&other).put("k", "x").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_near(http_date(&r, "date"), Utc::now(), "other emulator");
    // Times already stored do not move.
    let head = oss.object("HEAD", "before").at(emu.now()).send().await;
    assert_near(
        http_date(&head, "last-modified"),
        Utc::now(),
        "stored before",
    );

    // The admin API: PUT and GET /-/admin/clock, and the offset in /-/admin/config.
    let r = admin(&emu, "PUT", "clock", r#"{"offset_ms": 1200000}"#).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(emu.clock_offset(), TimeDelta::minutes(20));
    let clock = admin(&emu, "GET", "clock", "").await;
    assert_near(
        http_date(&clock, "date"),
        Utc::now() + TimeDelta::minutes(20),
        "admin Date",
    );
    let clock = clock.json();
    assert_eq!(clock["offset_ms"].as_i64(), Some(1_200_000));
    let now_ms = clock["now_ms"].as_i64().unwrap();
    assert_near(
        DateTime::from_timestamp_millis(now_ms).unwrap(),
        Utc::now() + TimeDelta::minutes(20),
        "admin now_ms",
    );
    assert_eq!(
        admin(&emu, "GET", "config", "").await.json()["clock_offset_ms"].as_i64(),
        Some(1_200_000)
    );
    let r = oss.get("before").await;
    assert_eq!(r.code(), "RequestTimeTooSkewed");
    let r = oss
        .object("GET", "before")
        .at(Utc::now() + TimeDelta::minutes(20))
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    for bad in ["", "{}", r#"{"offset_ms":"x"}"#, r#"{"offset":1}"#] {
        let r = admin(&emu, "PUT", "clock", bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    assert_eq!(
        admin(&emu, "PUT", "clock", r#"{"offset_ms":0}"#)
            .await
            .status,
        204
    );
    assert_eq!(oss.get("before").await.status, 200);
}
