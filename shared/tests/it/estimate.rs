//! `ferry estimate`'s model: hand-computed cases for each part of it (requests, time, the
//! limits no number of functions can pass, cost), the price table's overrides, the manifest
//! reader, and one check against a real run — the requests the emulators counted during a
//! standalone run must be within 10% of what the estimate predicted from the same listing.

use crate::support::pipeline_support as support;

use std::sync::Arc;
use std::time::Duration;

use ferry::estimate::table::{Table, Tier, tiered};
use ferry::estimate::workload::Workload;
use ferry::estimate::{Bound, Estimate, Fleet, estimate};
use ferry::job::JobSpec;
use ferry::pipeline::standalone::{self, Options};
use ferry::testing::data::keyed;
use oss_emulator::CounterSnapshot;
use serde_json::json;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn job(extra: serde_json::Value) -> JobSpec {
    let mut doc = json!({
        "version": 1, "name": "estimate",
        "source": { "kind": "s3", "bucket": "src", "region": "us-east-1" },
        "destination": { "bucket": "dst", "region": "cn-hangzhou" }
    });
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    JobSpec::from_json(&doc.to_string()).expect("valid job")
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= want.abs() * 1e-9 + 1e-9,
        "{what}: got {got}, computed by hand {want}"
    );
}

// ---------------------------------------------------------------------------------------------
// hand-computed cases

/// 1,000,000 objects of 1 MiB from Amazon S3, 50 functions, shipped table.
#[test]
fn a_million_small_objects_by_hand() {
    let spec = job(json!({}));
    let work = Workload::from_totals(&spec, 1_000_000, 1_000_000 * MIB);
    let e = estimate(&spec, &work, &Fleet::lambda(), &Table::shipped(), Some(1.0));
    // Default 10,000 keys per task: 100 tasks. Listings: 1,000 pages + a last page per task +
    // the planner's root = 1,101; the fresh destination: one page per task and the sweep for
    // abandoned uploads.
    assert_eq!(e.tasks, 100);
    let r = e.requests;
    assert_eq!(
        (r.source_list, r.source_head, r.source_get),
        (1_101, 0, 1_000_000)
    );
    assert_eq!(
        (r.oss_list, r.oss_put, r.oss_head),
        (101, 1_000_000, 1_000_000)
    );
    // Objects a GET describes cost a tagging call only when they have tags.
    assert_eq!(r.source_tagging, 0);
    // Time: 1e6 objects / 100 per s + 1e6 MiB / 60 MiB/s + 1,202 pages / 10 per s.
    let transfer = 10_000.0 + 1_000_000.0 / 60.0 + 120.2;
    close(e.transfer_seconds, transfer, "transfer seconds");
    close(e.verifier_seconds, 2_000.0, "verifier seconds");
    // 50 functions: 535.7 s; OSS 3,000,101 requests / 10,000 = 300 s; S3 1e6 GETs / 5,500 =
    // 181.8 s: the functions bound it.
    close(e.wall_seconds, transfer / 50.0, "wall seconds");
    assert_eq!(e.bound, Bound::Functions);
    // One day: 26,786.8 s of work / 86,400 → 1 function.
    assert_eq!(e.deadline.as_ref().unwrap().functions, Some(1));
    // Lambda: GB-s = 26,786.77 × 1769/1024 + 2,000 × 512/1024 + 1 (planner, 1,024 MB).
    let gb_s = transfer * 1769.0 / 1024.0 + 1_000.0 + 1.0;
    close(e.gb_seconds, gb_s, "GB-seconds");
    close(e.cost.lambda_compute, gb_s * 0.0000166667, "Lambda compute");
    // 1 planner + 100 transfer + 10 verifier calls.
    assert_eq!(r.lambda_invocations, 111);
    // SQS: 3 × 100 + 100 + 2 × 10 + idle polls 2 queues × 0.25/s × 535.7 s = 267.
    assert_eq!(r.sqs, 420 + (0.5 * transfer / 50.0) as u64);
    // S3: 1,101 LIST at 0.005/1000 + 1e6 GET at 0.0004/1000, state 100 + 10 + 0 + 3 PUT and
    // 200 + 10 GET.
    let s3 = 1_101.0 * 0.005 / 1000.0 + 1e6 * 0.0004 / 1000.0;
    let state = 113.0 * 0.005 / 1000.0 + 210.0 * 0.0004 / 1000.0;
    close(
        e.cost.source_and_state_requests.unwrap(),
        s3 + state,
        "S3 requests",
    );
    // Egress: 976.5625 GiB in the first band at 0.09.
    close(e.cost.source_egress.unwrap(), 976.5625 * 0.09, "S3 egress");
    // OSS: 1e6 PUT at 0.01/10,000 + 1,000,101 GET-type at 0.01/10,000.
    close(e.cost.oss_requests, 1.0 + 1.000101, "OSS requests");
    close(
        e.cost.oss_storage_per_month,
        976.5625 * 0.02,
        "OSS storage per month",
    );
    let during = 976.5625 * 0.02 * (transfer / 50.0 / (30.0 * 86_400.0)) / 2.0;
    close(
        e.cost.oss_storage_during_run,
        during,
        "OSS storage during the run",
    );
    let c = &e.cost;
    let total = c.lambda_compute
        + c.lambda_requests
        + c.sqs
        + s3
        + state
        + 976.5625 * 0.09
        + 2.000101
        + during;
    close(c.total, total, "total");
}

/// Ten 1 GiB objects: 64 parts of 16 MiB each.
#[test]
fn large_objects_are_counted_part_by_part() {
    let spec = job(json!({}));
    let work = Workload::from_totals(&spec, 10, 10 * GIB);
    assert_eq!((work.large.objects, work.parts), (10, 640));
    let e = estimate(&spec, &work, &Fleet::standalone(), &Table::shipped(), None);
    let r = e.requests;
    // HEAD (and its tags) + a ranged GET per part; Initiate + a part upload per part +
    // Complete; the HEAD.
    assert_eq!(
        (r.source_head, r.source_tagging, r.source_get),
        (10, 10, 640)
    );
    assert_eq!((r.oss_put, r.oss_head), (660, 10));
    // Standalone: no functions, queues or state to pay for.
    assert_eq!((r.sqs, r.state_put, r.lambda_invocations), (0, 0, 0));
    assert_eq!(e.cost.lambda_compute, 0.0);
    // One task (10 keys, 10 GiB < 16 GiB); pages: source 1 + 1 + 1, destination 1 + the
    // sweep + the clock check. 640 part requests / 100 + 10,240 MiB / 60 + 6 pages / 10.
    assert_eq!(e.tasks, 1);
    close(
        e.transfer_seconds,
        6.4 + 10_240.0 / 60.0 + 0.6,
        "transfer seconds",
    );
}

/// Past 10,000 parts the part size grows, as the copy does.
#[test]
fn parts_follow_the_copys_part_size_growth() {
    let spec = job(json!({}));
    let work = Workload::from_totals(&spec, 1, 1 << 40);
    assert_eq!(work.parts, 10_000);
}

#[test]
fn a_deadline_past_osss_request_rate_cannot_be_met_by_more_functions() {
    let spec = job(json!({}));
    // 2e9 tiny objects: 6e9 OSS requests / 10,000 per s = 6.9 days.
    let work = Workload::from_totals(&spec, 2_000_000_000, 2_000_000_000 * 1024);
    let e = estimate(&spec, &work, &Fleet::lambda(), &Table::shipped(), Some(3.0));
    let d = e.deadline.unwrap();
    assert_eq!(d.functions, None);
    assert!(d.note.unwrap().contains("OSS's requests per second"));
    // With the whole account's concurrency the OSS limit sets the wall time.
    let mut fleet = Fleet::lambda();
    fleet.functions = 1000;
    let e = estimate(&spec, &work, &fleet, &Table::shipped(), None);
    assert_eq!(e.bound, Bound::OssRequestRate);
}

#[test]
fn one_prefix_on_s3_is_bounded_by_its_get_rate() {
    let spec = job(json!({}));
    // A source slower than OSS per object: 1,000 GETs per second per prefix.
    let table = Table::with_overrides(r#"{"limits": {"s3_get_per_second_per_prefix": 1000}}"#, "t")
        .unwrap();
    let mut work = Workload::from_totals(&spec, 10_000_000, 10_000_000);
    let mut fleet = Fleet::lambda();
    fleet.functions = 1000;
    let one = estimate(&spec, &work, &fleet, &table, None);
    assert_eq!(one.bound, Bound::SourceRequestRate);
    close(one.wall_seconds, 10_000_000.0 / 1_000.0, "S3-bound wall");
    // Spread over 100 top-level prefixes, OSS's limit is the tighter one.
    work.top_prefixes = 100;
    let spread = estimate(&spec, &work, &fleet, &table, None);
    assert_eq!(spread.bound, Bound::OssRequestRate);
}

#[test]
fn an_oss_copy_on_one_service_moves_no_bytes_and_pays_no_egress() {
    let spec = job(json!({
        "source": { "kind": "oss", "bucket": "old", "region": "cn-hangzhou" }
    }));
    assert!(spec.server_side_source().is_some());
    let work = Workload::from_totals(&spec, 1000, 1000 * MIB);
    let e = estimate(&spec, &work, &Fleet::lambda(), &Table::shipped(), None);
    assert_eq!((e.requests.source_head, e.requests.source_get), (1000, 0));
    assert_eq!(e.cost.source_egress, Some(0.0));
}

#[test]
fn an_s3_compatible_source_is_not_priced_unless_told() {
    let spec = job(json!({
        "source": { "kind": "s3", "bucket": "b", "endpoint": "https://minio.example.com" }
    }));
    let work = Workload::from_totals(&spec, 10, 10 * MIB);
    let e = estimate(&spec, &work, &Fleet::standalone(), &Table::shipped(), None);
    assert_eq!(e.cost.source_egress, None);
    assert!(e.notes.iter().any(|n| n.contains("other_egress_per_gib")));
    let table =
        Table::with_overrides(r#"{"prices": {"other_egress_per_gib": 0.01}}"#, "p.json").unwrap();
    let e = estimate(&spec, &work, &Fleet::standalone(), &table, None);
    close(
        e.cost.source_egress.unwrap(),
        10.0 / 1024.0 * 0.01,
        "priced egress",
    );
}

// ---------------------------------------------------------------------------------------------
// the table

#[test]
fn tiered_egress_prices_each_band_at_its_own_rate() {
    let tiers = Table::shipped().prices.s3_egress_tiers;
    close(tiered(&tiers, 0.0), 0.0, "nothing");
    // 20 TiB: 10 TiB at 0.09 and 10 TiB at 0.085.
    close(
        tiered(&tiers, 20.0 * 1024.0),
        10_240.0 * 0.09 + 10_240.0 * 0.085,
        "20 TiB",
    );
    // 200 TiB: 10 + 40 + 100 TiB in the first three bands, 50 TiB at 0.05.
    let want = 10_240.0 * 0.09 + 40_960.0 * 0.085 + 102_400.0 * 0.07 + 51_200.0 * 0.05;
    close(tiered(&tiers, 200.0 * 1024.0), want, "200 TiB");
    let flat = [Tier {
        up_to_tib: None,
        per_gib: 0.5,
    }];
    close(tiered(&flat, 3.0), 1.5, "one band");
}

#[test]
fn overrides_change_only_what_they_name_and_refuse_what_is_not_in_the_table() {
    let shipped = Table::shipped();
    let t = Table::with_overrides(
        r#"{"prices": {"s3_get_head_per_1000": 0.001}, "throughput": {"mib_per_second": 200}}"#,
        "mine.json",
    )
    .unwrap();
    assert_eq!(t.prices.s3_get_head_per_1000, 0.001);
    assert_eq!(t.throughput.mib_per_second, 200.0);
    assert_eq!(
        t.prices.s3_put_list_per_1000,
        shipped.prices.s3_put_list_per_1000
    );
    assert_eq!(t.limits, shipped.limits);

    let e = Table::with_overrides(r#"{"prices": {"s3_get_per_1000": 1}}"#, "mine.json")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mine.json") && e.contains("s3_get_per_1000"),
        "{e}"
    );
    let e = Table::with_overrides(r#"{"throughput": {"mib_per_second": 0}}"#, "mine.json")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("throughput.mib_per_second") && e.contains("above 0"),
        "{e}"
    );
    let e = Table::with_overrides("[1]", "mine.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("JSON object"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// the manifest

#[test]
fn a_manifest_counts_the_rows_the_job_would_copy() {
    let spec = job(json!({
        "source": { "kind": "s3", "bucket": "src", "region": "us-east-1", "prefix": "2024/" },
        "filters": { "include": ["**/*.jpg"] }
    }));
    let csv = "key,size\n2024/a/1.jpg,100\n2024/a/2.png,100\n2024/b/3.jpg,70000000\n\
               2023/4.jpg,5\n\"2024/c,d/5.jpg\",7\n";
    let w = Workload::from_manifest(&spec, "m.csv", csv.as_bytes()).unwrap();
    assert_eq!((w.small.objects, w.small.bytes), (2, 107));
    assert_eq!((w.large.objects, w.large.bytes), (1, 70_000_000));
    // 70,000,000 bytes in 16 MiB parts: 5.
    assert_eq!(w.parts, 5);
    assert_eq!(w.top_prefixes, 3);
}

#[test]
fn a_manifest_row_without_a_size_is_refused_by_line_and_value() {
    let spec = job(json!({}));
    let e = Workload::from_manifest(&spec, "m.csv", "a,1\nb,12kB\n".as_bytes()).unwrap_err();
    assert!(
        e.contains("m.csv line 2") && e.contains("\"12kB\"") && e.contains("key,size"),
        "{e}"
    );
    let timed = job(json!({ "filters": { "modified_since": "2024-01-01T00:00:00Z" } }));
    let e = Workload::from_manifest(&timed, "m.csv", "a,1\n".as_bytes()).unwrap_err();
    assert!(e.contains("--from-listing"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// against a real run

/// Requests of the classes the estimate predicts, as an emulator counted them.
fn measured(c: &CounterSnapshot) -> [u64; 3] {
    let list = ["ListObjects", "ListObjectsV2", "ListMultipartUploads"]
        .iter()
        .map(|op| c.operation(op))
        .sum();
    let writes = [
        "PutObject",
        "InitiateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
    ]
    .iter()
    .map(|op| c.operation(op))
    .sum();
    [
        list,
        c.operation("HeadObject") + c.operation("GetObject"),
        writes,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_runs_requests_are_within_ten_percent_of_the_estimate() {
    let mut world = support::World::start().await;
    world.seed(7, 2_400, 48 * 1024).await;
    for i in 0..4 {
        let key = format!("big/{i}.bin");
        world.put(&key, keyed(&key, 12 * MIB as usize + i)).await;
    }
    let text = world.job(json!({ "sharding": { "max_keys_per_shard": 500 } }));
    let spec = JobSpec::from_json(&text).unwrap();
    let secrets: Arc<dyn ferry::deploy::connect::Secrets> = Arc::new(world.secrets());
    let source = ferry::deploy::connect::source_for(&spec, &secrets)
        .await
        .unwrap();
    let options = ferry::pipeline::planner::plan_options(&spec);
    let survey = ferry::plan::survey::survey(source.as_ref(), &spec, &options, 4)
        .await
        .unwrap();
    let work = Workload::from_survey(&survey);
    assert_eq!(work.objects(), world.objects.len() as u64);
    let e: Estimate = estimate(&spec, &work, &Fleet::standalone(), &Table::shipped(), None);

    world.source.reset_counters();
    world.dest.reset_counters();
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new(dir.path());
    options.workers = 3;
    let run = standalone::run(&text, options, Arc::new(world.secrets()));
    let report = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the run finishes within 2 minutes")
        .expect("the run completes")
        .report;
    assert_eq!(report.objects.copied, world.objects.len() as u64);

    let (src, dst) = (world.source.counters(), world.dest.counters());
    let r = e.requests;
    let checks = [
        ("source LIST", measured(&src)[0], r.source_list),
        (
            "source HEAD + GET",
            measured(&src)[1],
            r.source_head + r.source_get,
        ),
        (
            "source tagging",
            src.operation("GetObjectTagging"),
            r.source_tagging,
        ),
        ("OSS LIST", measured(&dst)[0], r.oss_list),
        ("OSS writes", measured(&dst)[2], r.oss_put),
        ("OSS HEAD", dst.operation("HeadObject"), r.oss_head),
        (
            "all requests, both sides",
            src.total + dst.total,
            r.source_list + r.source_head + r.source_tagging + r.source_get + r.oss_total(),
        ),
    ];
    for (what, got, predicted) in checks {
        eprintln!("{what}: measured {got}, estimated {predicted}");
    }
    for (what, got, predicted) in checks {
        let off = (got as f64 - predicted as f64).abs() / predicted.max(1) as f64;
        assert!(
            off <= 0.10,
            "{what}: the run made {got} requests, the estimate said {predicted} ({:.0}% off)\n\
             source: {:?}\ndestination: {:?}",
            off * 100.0,
            src.by_operation,
            dst.by_operation
        );
    }
}
