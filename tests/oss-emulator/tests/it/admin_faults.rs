//! The admin API (faults, counters, buckets, config) and what injected faults do to clients.

use std::time::{Duration, Instant};

use crate::common::*;
use oss_emulator::FaultRule;

#[tokio::test]
async fn error_faults_fire_count_times_with_qos_header() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let r = admin(
        &emu,
        "POST",
        "faults",
        r#"{"op":"PutObject","status":503,"qos_delay_ms":1500,"count":2}"#,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_u64().unwrap();
    for _ in 0..2 {
        let r = oss.put("k", "v").await;
        assert_eq!((r.status, r.code().as_str()), (503, "ServiceUnavailable"));
        assert_eq!(r.header("x-oss-qos-delay-time").as_deref(), Some("1500"));
        assert!(r.xml("EC").is_some() && r.header("x-oss-request-id").is_some());
    }
    assert!(
        emu.object_info("bkt", "k").is_none(),
        "a fault before the operation changes nothing"
    );
    assert_eq!(oss.put("k", "v").await.status, 200);
    assert_eq!(
        oss.get("k").await.status,
        200,
        "other operations are not affected"
    );
    let listed = admin(&emu, "GET", "faults", "").await.json();
    assert_eq!(listed["faults"][0]["id"].as_u64(), Some(id));
    assert_eq!(listed["faults"][0]["fired"].as_u64(), Some(2));
    assert_eq!(listed["seed"].as_u64(), Some(7));
    let c = emu.counters();
    assert_eq!(
        (
            c.status("PutObject", 503),
            c.status("PutObject", 200),
            c.faults("PutObject")
        ),
        (2, 1, 2)
    );
    assert_eq!(
        admin(&emu, "DELETE", &format!("faults/{id}"), "")
            .await
            .status,
        204
    );
    assert_eq!(
        admin(&emu, "DELETE", &format!("faults/{id}"), "")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn latency_reset_and_truncate_faults() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let data = pattern(100_000, 3);
    oss.put("obj", data.clone()).await;

    emu.add_fault(FaultRule::latency("HeadObject", Duration::from_millis(250)).count(1))
        .unwrap();
    let t = Instant::now();
    assert_eq!(oss.object("HEAD", "obj").send().await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(250));

    emu.add_fault(FaultRule::reset("GetObject").count(1))
        .unwrap();
    let url = format!("{}/bkt/obj", emu.endpoint());
    let signed = |oss: &Oss| {
        let signable = ferry::oss::sign::Signable {
            method: "GET",
            bucket: Some("bkt"),
            key: Some("obj"),
            query: &[],
            headers: &[],
        };
        oss.signer
            .sign_header(&signable, chrono::Utc::now(), &[])
            .headers
    };
    let mut rb = reqwest::Client::new().get(&url);
    for (k, v) in signed(&oss) {
        rb = rb.header(k, v);
    }
    let err = rb
        .send()
        .await
        .expect_err("the connection is dropped without a response");
    assert!(
        err.is_request() || err.is_connect() || err.to_string().contains("connection"),
        "{err}"
    );

    emu.add_fault(FaultRule::truncate("GetObject").after_bytes(1000).count(1))
        .unwrap();
    let mut rb = reqwest::Client::new().get(&url);
    for (k, v) in signed(&oss) {
        rb = rb.header(k, v);
    }
    let resp = rb.send().await.expect("headers arrive");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.content_length(),
        Some(100_000),
        "the full length is announced"
    );
    assert!(resp.bytes().await.is_err(), "but the body is cut short");

    assert_eq!(
        oss.get("obj").await.body.len(),
        100_000,
        "count-limited faults stop firing"
    );
    let c = emu.counters();
    assert_eq!(c.by_status.get("reset"), Some(&1));
    assert_eq!(c.faults("GetObject"), 2);
}

#[tokio::test]
async fn after_phase_applies_the_change_but_loses_the_response() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    emu.add_fault(FaultRule::error("PutObject", 500).after_response().count(1))
        .unwrap();
    let r = oss.put("k", "stored anyway").await;
    assert_eq!((r.status, r.code().as_str()), (500, "InternalError"));
    assert_eq!(
        emu.object_bytes("bkt", "k").await.unwrap().as_ref(),
        b"stored anyway"
    );
}

#[tokio::test]
async fn seeded_rates_are_reproducible_and_filters_apply() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    oss.put("a/1", "x").await;
    oss.put("b/1", "x").await;
    let run = || async {
        admin(&emu, "DELETE", "faults", "").await;
        assert_eq!(
            admin(&emu, "PUT", "faults/seed", r#"{"seed":42}"#)
                .await
                .status,
            204
        );
        admin(
            &emu,
            "POST",
            "faults",
            r#"{"op":"GetObject","kind":"error","status":500,"rate":0.5,"key_prefix":"a/"}"#,
        )
        .await;
        let mut pattern = Vec::new();
        for _ in 0..24 {
            pattern.push(oss.get("a/1").await.status);
            assert_eq!(
                oss.get("b/1").await.status,
                200,
                "key_prefix limits the rule"
            );
        }
        pattern
    };
    let first = run().await;
    let second = run().await;
    assert_eq!(first, second);
    let failures = first.iter().filter(|s| **s == 500).count();
    assert!((3..=21).contains(&failures), "rate 0.5 gave {failures}/24");
}

#[tokio::test]
async fn invalid_rules_and_unknown_routes_are_clear_errors() {
    let emu = emulator().await;
    for body in [
        r#"{"op":"PutObject"}"#,
        r#"{"status":200}"#,
        r#"{"status":500,"rate":1.5}"#,
        r#"{"status":500,"bogus":1}"#,
        "not json",
    ] {
        let r = admin(&emu, "POST", "faults", body).await;
        assert_eq!(r.status, 400, "{body}");
        assert!(r.json()["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let r = admin(&emu, "GET", "nothing-here", "").await;
    assert_eq!(r.status, 404);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("no admin route")
    );
    assert_eq!(
        admin(&emu, "GET", "health", "").await.json()["status"],
        "ok"
    );
}

#[tokio::test]
async fn counters_per_operation_and_object() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    oss.put("x", "1").await;
    oss.put("x", "2").await;
    oss.get("x").await;
    oss.get("missing").await;
    oss.bucket("GET", "bkt")
        .query("list-type", "2")
        .send()
        .await;
    let c = admin(&emu, "GET", "counters", "").await.json();
    assert_eq!(c["total"], 5);
    assert_eq!(c["by_operation"]["PutObject"], 2);
    assert_eq!(c["by_operation"]["ListObjectsV2"], 1);
    assert_eq!(c["by_operation_status"]["GetObject"]["404"], 1);
    let objects = c["by_object"].as_array().unwrap();
    let put_x = objects
        .iter()
        .find(|o| o["key"] == "x" && o["operation"] == "PutObject")
        .unwrap();
    assert_eq!(
        (put_x["bucket"].as_str(), put_x["count"].as_u64()),
        (Some("bkt"), Some(2))
    );
    let list = objects
        .iter()
        .find(|o| o["operation"] == "ListObjectsV2")
        .unwrap();
    assert!(list["key"].is_null());
    assert_eq!(emu.counters().object("bkt", "x", "GetObject"), 1);
    assert_eq!(admin(&emu, "DELETE", "counters", "").await.status, 204);
    assert_eq!(emu.counters().total, 0);
}

#[tokio::test]
async fn admin_buckets_and_config() {
    let emu = emulator().await;
    let r = admin(
        &emu,
        "PUT",
        "buckets/made-by-admin",
        r#"{"storage_class":"IA"}"#,
    )
    .await;
    assert_eq!((r.status, r.json()["created"].as_bool()), (201, Some(true)));
    assert_eq!(
        admin(&emu, "PUT", "buckets/made-by-admin", "").await.status,
        200
    );
    assert_eq!(admin(&emu, "PUT", "buckets/Bad_Name", "").await.status, 400);
    let names = admin(&emu, "GET", "buckets", "").await.json();
    assert_eq!(
        names["buckets"],
        serde_json::json!(["bkt", "made-by-admin"])
    );
    let oss = Oss::v4(&emu);
    oss.req("PUT", Some("made-by-admin"), Some("k"))
        .body("x")
        .send()
        .await;
    assert_eq!(
        oss.req("HEAD", Some("made-by-admin"), Some("k"))
            .send()
            .await
            .header("x-oss-storage-class")
            .as_deref(),
        Some("IA")
    );
    assert_eq!(
        admin(&emu, "DELETE", "buckets/made-by-admin", "")
            .await
            .status,
        204,
        "force delete with contents"
    );
    assert_eq!(
        admin(&emu, "DELETE", "buckets/made-by-admin", "")
            .await
            .status,
        404
    );

    assert_eq!(
        admin(&emu, "PUT", "config", r#"{"restore_delay_ms":5}"#)
            .await
            .status,
        204
    );
    let cfg = admin(&emu, "GET", "config", "").await.json();
    assert_eq!(
        (
            cfg["restore_delay_ms"].as_u64(),
            cfg["storage"].as_str(),
            cfg["region"].as_str()
        ),
        (Some(5), Some("memory"), Some("cn-hangzhou"))
    );
    // The admin API is not reachable through a bucket host.
    let http = reqwest::Client::builder()
        .resolve("bkt.localhost", emu.addr())
        .build()
        .unwrap();
    let r = send_raw(
        &http,
        "GET",
        &format!("http://bkt.localhost:{}/-/admin/health", emu.addr().port()),
        &[],
        Default::default(),
    )
    .await;
    assert_eq!(
        r.status, 403,
        "a virtual-hosted request is a normal (unsigned) object request"
    );
}

#[tokio::test]
async fn s3_requests_get_s3_shaped_fault_errors() {
    let emu = emulator().await;
    emu.add_fault(FaultRule::error("*", 503).code("SlowDown").count(1))
        .unwrap();
    let r = S3::new(&emu).send("GET", "/bkt/k", &[], &[], "").await;
    assert_eq!((r.status, r.code().as_str()), (503, "SlowDown"));
    assert!(r.xml("Resource").is_some());
}
