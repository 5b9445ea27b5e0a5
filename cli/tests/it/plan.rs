//! `ferry plan job.json --dry-run` (issue 11 point 1): the real binary counts what a run would
//! copy — in scope, archived, filtered out, by top-level folder — exactly, from listings alone:
//! no GET or HEAD at the source, no request at the destination, no state written. And
//! `ferry estimate` (point 2) through the same binary: from the listing, a manifest, totals,
//! with its errors for bad input.

use std::collections::BTreeMap;
use std::time::Duration;

use oss_emulator::process::output_within;
use oss_emulator::{Emulator, PutOptions, StorageClass};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_counts_exactly_and_touches_nothing_but_listings() {
    let source = Emulator::for_test("plan-src-ak").await;
    let dest = Emulator::for_test("plan-dst-ak").await;
    source.create_bucket("src").unwrap();
    dest.create_bucket("dst").unwrap();
    // Expected counts, kept as the objects are made: folder → (objects, bytes).
    let mut folders: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let put = async |key: String, size: usize, class: StorageClass| {
        let options = PutOptions {
            storage_class: class,
            ..Default::default()
        };
        source
            .put_object_with("src", &key, vec![7u8; size], options)
            .await
            .unwrap();
    };
    for i in 0..1_250u64 {
        let (folder, size) = match i % 3 {
            0 => ("2024/", 100 + i as usize),
            1 => ("logs/", 10),
            _ => ("photos/", 2_000),
        };
        put(
            format!("data/{folder}{i:05}.bin"),
            size,
            StorageClass::Standard,
        )
        .await;
        let entry = folders.entry(folder).or_default();
        entry.0 += 1;
        entry.1 += size as u64;
    }
    put("data/top-level.txt".into(), 5, StorageClass::Standard).await;
    folders.insert("", (1, 5));
    for key in ["data/cold/a.bin", "data/cold/b.bin"] {
        put(key.into(), 1_000, StorageClass::Archive).await;
    }
    folders.insert("cold/", (2, 2_000));
    for key in ["data/tmp/x.part", "data/tmp/y.part", "outside/z.bin"] {
        put(key.into(), 300, StorageClass::Standard).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let job = serde_json::json!({
        "version": 1, "name": "plan-job",
        "source": {
            "kind": "oss", "bucket": "src", "region": "cn-hangzhou", "prefix": "data/",
            "endpoint": source.endpoint(), "allow_http": true,
            "credentials": { "env": { "access_key_id_var": "T_SRC_AK", "access_key_secret_var": "T_SRC_SK" } }
        },
        "destination": {
            "bucket": "dst", "region": "cn-hangzhou", "endpoint": dest.endpoint(), "allow_http": true,
            "credentials": { "env": { "access_key_id_var": "T_DST_AK", "access_key_secret_var": "T_DST_SK" } }
        },
        "filters": { "exclude": ["**/*.part"] },
        "sharding": { "max_keys_per_shard": 200 }
    });
    let path = dir.path().join("job.json");
    std::fs::write(&path, job.to_string()).unwrap();
    source.reset_counters();

    let plan = |json: bool| {
        let mut cmd = crate::ferry_signed_by(&source, &dest);
        cmd.current_dir(dir.path())
            .args(["plan", "--dry-run"])
            .arg(&path);
        if json {
            cmd.arg("--json");
        }
        let out = output_within(&mut cmd, Duration::from_secs(120)).expect("ferry plan ends");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let doc: serde_json::Value = serde_json::from_str(plan(true).trim()).unwrap();
    let count =
        |v: &serde_json::Value| (v["objects"].as_u64().unwrap(), v["bytes"].as_u64().unwrap());
    let all: (u64, u64) = folders.values().fold((0, 0), |t, c| (t.0 + c.0, t.1 + c.1));
    assert_eq!(count(&doc["in_scope"]), all, "{doc}");
    assert_eq!(count(&doc["archived"]), (2, 2_000));
    assert_eq!(
        count(&doc["filtered_out"]),
        (2, 600),
        "outside/ is not under the prefix"
    );
    for (folder, expected) in &folders {
        assert_eq!(count(&doc["by_prefix"][folder]), *expected, "{folder:?}");
    }
    assert_eq!(doc["by_prefix"].as_object().unwrap().len(), folders.len());
    let listings = doc["list_requests"].as_u64().unwrap();
    assert!(listings >= 2, "{listings}");

    let counters = source.counters();
    let reads: u64 = counters
        .by_operation
        .iter()
        .filter(|(op, _)| !op.starts_with("List") && op.as_str() != "GetBucketInfo")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        reads, 0,
        "only listings at the source: {:?}",
        counters.by_operation
    );
    assert_eq!(
        counters.operation("ListObjectsV2") + counters.operation("ListObjects"),
        listings,
        "the listings reported are the listings made"
    );
    assert_eq!(dest.counters().total, 0, "nothing at the destination");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "nothing written beside the job file");

    let table = plan(false);
    for said in [
        "in scope",
        "1,253 objects",
        "archived",
        "filtered out",
        "photos/",
        "nothing was copied",
        "estimate: about",
    ] {
        assert!(table.contains(said), "{said:?} not in:\n{table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estimate_reads_the_listing_a_manifest_or_totals_and_names_bad_input() {
    let source = Emulator::for_test("est-src-ak").await;
    let dest = Emulator::for_test("est-dst-ak").await;
    source.create_bucket("src").unwrap();
    dest.create_bucket("dst").unwrap();
    for i in 0..40 {
        let body = vec![1u8; 1000 + i];
        source
            .put_object("src", &format!("a/{i:03}"), body)
            .await
            .unwrap();
    }
    source
        .put_object("src", "b/large.bin", vec![2u8; 300 * 1024])
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let job = serde_json::json!({
        "version": 1, "name": "estimate-job",
        "source": {
            "kind": "oss", "bucket": "src", "region": "cn-hangzhou",
            "endpoint": source.endpoint(), "allow_http": true,
            "credentials": { "env": { "access_key_id_var": "T_SRC_AK", "access_key_secret_var": "T_SRC_SK" } }
        },
        "destination": {
            "bucket": "dst", "region": "cn-hangzhou", "endpoint": dest.endpoint(), "allow_http": true,
            "credentials": { "env": { "access_key_id_var": "T_DST_AK", "access_key_secret_var": "T_DST_SK" } }
        },
        "concurrency": { "multipart_threshold": "200KiB", "part_size": "100KiB" }
    });
    let path = dir.path().join("job.json");
    std::fs::write(&path, job.to_string()).unwrap();
    let estimate = |args: &[&str]| {
        let mut cmd = crate::ferry_signed_by(&source, &dest);
        cmd.current_dir(dir.path())
            .arg("estimate")
            .arg(&path)
            .args(args);
        output_within(&mut cmd, Duration::from_secs(120)).expect("ferry estimate ends")
    };

    let out = estimate(&["--json", "--days", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let w = &doc["workload"];
    assert_eq!(w["small"]["objects"], 40, "{doc}");
    assert_eq!(w["large"]["objects"], 1);
    assert_eq!(w["parts"], 3, "300 KiB in 100 KiB parts");
    assert_eq!(
        doc["requests"]["source_get"], 43,
        "40 whole objects and 3 parts"
    );
    assert_eq!(doc["deadline"]["functions"], 1);
    assert!(doc["cost"]["total"].as_f64().unwrap() > 0.0);
    assert_eq!(
        dest.counters().total,
        0,
        "an estimate touches nothing at the destination"
    );

    let out = estimate(&["--standalone"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for said in [
        "41 objects",
        "one ferry run process",
        "source GET",
        "cost (USD",
        "total",
    ] {
        assert!(text.contains(said), "{said:?} not in:\n{text}");
    }

    let manifest = dir.path().join("keys.csv");
    std::fs::write(&manifest, "key,size\nx/1,10\nx/2,ten\n").unwrap();
    let out = estimate(&["--manifest", manifest.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("line 3") && err.contains("\"ten\""), "{err}");

    let prices = dir.path().join("prices.json");
    std::fs::write(&prices, r#"{"prices": {"lambda_per_gb_second": 1}}"#).unwrap();
    let out = estimate(&[
        "--objects",
        "10",
        "--bytes",
        "1GiB",
        "--prices",
        prices.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("lambda_per_gb_second") && err.contains("prices.json"),
        "{err}"
    );

    let out = estimate(&["--objects", "10", "--bytes", "1GiB", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["workload"]["small"]["objects"], 0, "{doc}");
    assert_eq!(doc["workload"]["large"]["objects"], 10);
}
