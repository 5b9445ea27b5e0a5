//! The planner against real listings: the OSS emulator through `OssSource` (OSS dialect) and
//! `S3Source` (the emulator's S3 dialect, and moto). Every test lists the emitted ranges with the
//! same source and checks that they cover the bucket's keys exactly once.

use crate::support::moto;
use ferry::testing::watched::Watched;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ferry::plan::{
    KeyRange, PlanCursor, PlanOptions, PlanOutcome, PlannedRange, plan_continue, plan_ranges,
};
use ferry::source::oss::OssSource;
use ferry::source::s3::S3Source;
use ferry::source::{ListRequest, Source};
use oss_emulator::{Emulator, FaultRule};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const AK: &str = "plan-ak";
const SK: &str = "plan-secret";
const REGION: &str = "cn-hangzhou";
const BUCKET: &str = "plan";

// ---------------------------------------------------------------------------------------------
// helpers

async fn emulator() -> Emulator {
    let emu = Emulator::builder()
        .credentials(AK, SK)
        .region(REGION)
        .fault_seed(11)
        .start()
        .await
        .expect("emulator starts");
    emu.create_bucket(BUCKET).unwrap();
    emu
}

fn seed<'a>(emu: &Emulator, keys: impl IntoIterator<Item = &'a String>) {
    emu.seed_objects(BUCKET, keys.into_iter().map(|k| (k.clone(), Vec::new())))
        .expect("seed");
}

fn oss_source(emu: &Emulator) -> OssSource {
    OssSource::new(emu.client(), BUCKET, "")
}

async fn s3_source(endpoint: String, region: &str, bucket: &str, ak: &str, sk: &str) -> S3Source {
    let mut config = ferry::testing::s3_config(endpoint, region, bucket, ak, sk);
    config.fetch_tags = false;
    S3Source::new(config).await.expect("valid S3 config")
}

/// The emulator through its S3 dialect.
async fn emulator_s3(emu: &Emulator) -> S3Source {
    s3_source(emu.endpoint(), REGION, BUCKET, AK, SK).await
}

/// Every key of `range`, listed with `source` the way a transfer worker walks it.
async fn list_range(source: &dyn Source, range: &KeyRange) -> Vec<String> {
    let mut req = ListRequest {
        prefix: range.prefix.clone(),
        start_after: range.start_after.clone(),
        max_keys: 1000,
        ..Default::default()
    };
    let mut keys = Vec::new();
    loop {
        let page = source.list(&req).await.expect("listing a range");
        let before_end = |k: &String| range.end.as_deref().is_none_or(|e| k.as_str() < e);
        let past_end = page.objects.iter().any(|o| !before_end(&o.key));
        keys.extend(page.objects.into_iter().map(|o| o.key).filter(before_end));
        match page.next {
            Some(token) if !past_end => req.continuation = Some(token),
            _ => return keys,
        }
    }
}

/// Lists every range; fails unless together they hold each of `expected` exactly once.
async fn assert_exact_cover(
    source: &dyn Source,
    ranges: &[PlannedRange],
    expected: &BTreeSet<String>,
) {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for planned in ranges {
        for key in list_range(source, &planned.range).await {
            assert!(
                planned.range.contains(&key),
                "{key:?} listed for {:?}",
                planned.range
            );
            assert!(seen.insert(key.clone()), "{key:?} is in two ranges");
        }
    }
    let missing: Vec<_> = expected.difference(&seen).take(5).collect();
    let extra: Vec<_> = seen.difference(expected).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "ranges miss {missing:?} and add {extra:?}; ranges: {ranges:#?}"
    );
}

async fn plan_all(
    source: &dyn Source,
    options: &PlanOptions,
) -> (Vec<PlannedRange>, ferry::plan::PlanStats) {
    match plan_ranges(source, options, None).await.expect("plan") {
        PlanOutcome::Complete { ranges, stats } => (ranges, stats),
        PlanOutcome::Partial { .. } => panic!("a plan without deadline is complete"),
    }
}

fn keys(items: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    items.into_iter().collect()
}

/// A bucket of `n` objects shaped like real data: a few nested "tenant" directories, one big
/// flat directory, some keys at the top.
fn layout(n: usize) -> BTreeSet<String> {
    keys((0..n).map(|i| match i % 10 {
        0..=3 => format!("flat/{:08}", i * 7919 % 100_000_000),
        4..=8 => format!(
            "tenants/t{:02}/2024-{:02}/obj-{i:07}.json",
            i % 7,
            i % 12 + 1
        ),
        _ => format!("top-{i:06}"),
    }))
}

// ---------------------------------------------------------------------------------------------
// exact cover, whatever the keys

/// Keys with the bytes that break naive planners: multi-byte chars, spaces, `+`, `%`, `//`,
/// trailing `/`, keys equal to directory names.
fn key_strategy() -> impl Strategy<Value = BTreeSet<String>> {
    let random = proptest::collection::btree_set("[ab/ +%é中😀.~0Z]{1,7}", 0..45);
    let tricky = proptest::sample::subsequence(
        vec![
            "d",
            "d/",
            "d/x",
            "d//y",
            "d/x/",
            "d0",
            "d.",
            "d/é",
            "a+b",
            "a%2F",
            "sp ace/k",
            "中/文",
            "😀/1",
            "z\u{FFFD}",
            "a",
            "a/",
            "a/a/",
            "a/a/a",
        ],
        0..18,
    );
    (random, tricky).prop_map(|(random, tricky)| {
        random
            .into_iter()
            .chain(tricky.into_iter().map(str::to_owned))
            .map(|k| {
                if k.starts_with('/') {
                    format!("x{k}")
                } else {
                    k
                }
            })
            .collect()
    })
}

fn options_strategy() -> impl Strategy<Value = PlanOptions> {
    (
        prop_oneof![Just(""), Just("a"), Just("a/"), Just("d"), Just("中")],
        0u32..=3,
        2u32..=5,
        1u64..=8,
        1u64..=30,
        1u32..=3,
        1u32..=4,
    )
        .prop_map(
            |(prefix, scan_depth, probe_keys, target, max_shards, pages, page_keys)| PlanOptions {
                prefix: prefix.to_owned(),
                scan_depth,
                list_concurrency: 4,
                probe_keys,
                target_keys_per_shard: target,
                max_shards,
                discovery_pages: pages,
                discovery_page_keys: page_keys,
            },
        )
}

#[test]
fn ranges_cover_every_key_exactly_once() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let emu = rt.block_on(emulator());
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (key_strategy(), options_strategy(), any::<bool>());
    runner
        .run(&strategy, |(all, options, s3)| {
            rt.block_on(async {
                emu.delete_bucket(BUCKET).unwrap();
                emu.create_bucket(BUCKET).unwrap();
                seed(&emu, &all);
                let source: Box<dyn Source> = if s3 {
                    Box::new(emulator_s3(&emu).await)
                } else {
                    Box::new(oss_source(&emu))
                };
                let (ranges, _) = plan_all(source.as_ref(), &options).await;
                assert!(ranges.len() as u64 <= options.max_shards, "{ranges:?}");
                let expected: BTreeSet<String> = all
                    .iter()
                    .filter(|k| k.starts_with(&options.prefix))
                    .cloned()
                    .collect();
                assert_exact_cover(source.as_ref(), &ranges, &expected).await;
                // The same answer by the ranges' own definition, for every key.
                for k in &expected {
                    let n = ranges.iter().filter(|r| r.range.contains(k)).count();
                    assert_eq!(n, 1, "{k:?} is in {n} ranges");
                }
                for r in &ranges {
                    let cut = r.range.start_after.as_deref().unwrap_or("");
                    assert!(cut.len() < 1024, "start-after of {} bytes", cut.len());
                }
            });
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// shapes

#[tokio::test]
async fn a_flat_prefix_splits_into_several_shards() {
    let emu = emulator().await;
    let all = keys((0..5000).map(|i| format!("flat/{i:05}")));
    seed(&emu, &all);
    let source = Watched::new(oss_source(&emu));
    let options = PlanOptions {
        target_keys_per_shard: 500,
        probe_keys: 50,
        ..PlanOptions::default()
    };
    let (ranges, stats) = plan_all(&source, &options).await;
    assert!(
        (5..=40).contains(&ranges.len()),
        "{} ranges: {ranges:#?}",
        ranges.len()
    );
    assert!(stats.keys_read < 5000, "{stats:?}");
    assert_eq!(stats.keys_read, source.keys());
    assert_exact_cover(&oss_source(&emu), &ranges, &all).await;
}

#[tokio::test]
async fn fifty_prefixes_are_discovered_and_become_their_own_ranges() {
    let emu = emulator().await;
    let mut all = keys((0..50).flat_map(|p| (0..30).map(move |i| format!("p{p:02}/obj-{i:03}"))));
    all.extend(["index.html".to_owned(), "p07".to_owned(), "p49/".to_owned()]);
    seed(&emu, &all);
    let source = oss_source(&emu);
    // 31: `p49/` holds its 30 keys and the key `p49/` itself.
    let options = PlanOptions {
        target_keys_per_shard: 31,
        probe_keys: 10,
        ..PlanOptions::default()
    };
    let (ranges, stats) = plan_all(&source, &options).await;
    assert!(stats.prefixes_read >= 50, "{stats:?}");
    for p in 0..50 {
        let dir = format!("p{p:02}/");
        let holding: Vec<&PlannedRange> = ranges
            .iter()
            .filter(|r| {
                all.iter()
                    .any(|k| k.starts_with(&dir) && r.range.contains(k))
            })
            .collect();
        assert_eq!(holding.len(), 1, "{dir} is spread over {holding:#?}");
        let only_dir = all
            .iter()
            .filter(|k| holding[0].range.contains(k))
            .all(|k| k.starts_with(&dir) || k.as_str() == "p07" || k.as_str() == "index.html");
        assert!(only_dir, "{:?} holds more than {dir}", holding[0]);
        assert!(holding[0].exact, "{dir}: sizes come from the listing");
    }
    assert_exact_cover(&source, &ranges, &all).await;
}

#[tokio::test]
async fn keys_read_stay_far_below_the_bucket_size() {
    let emu = emulator().await;
    let all = keys((0..20_000).map(|i| format!("k{:08x}", i * 2_654_435_761u64 % (1 << 32))));
    seed(&emu, &all);
    let source = Watched::new(oss_source(&emu));
    let options = PlanOptions {
        target_keys_per_shard: 2000,
        probe_keys: 100,
        ..PlanOptions::default()
    };
    emu.reset_counters();
    let (ranges, stats) = plan_all(&source, &options).await;
    let read = source.keys();
    let requests = source.pages();
    assert_eq!(emu.counters().operation("ListObjectsV2"), requests);
    assert_eq!((stats.keys_read, stats.list_requests), (read, requests));
    // One discovery page, then probes of at most 100 keys.
    let bound = u64::from(options.discovery_page_keys) + (requests - 1) * 100;
    assert!(read <= bound, "read {read} > {bound}");
    assert!(read < 20_000 / 4, "read {read} keys of 20000: {stats:?}");
    assert!(ranges.len() >= 5, "{ranges:#?}");
    assert_exact_cover(&oss_source(&emu), &ranges, &all).await;
}

#[tokio::test]
async fn the_same_bucket_gives_the_same_ranges_over_either_dialect() {
    let emu = emulator().await;
    let all = layout(6000);
    seed(&emu, &all);
    let options = PlanOptions {
        target_keys_per_shard: 300,
        probe_keys: 20,
        ..PlanOptions::default()
    };
    let oss = oss_source(&emu);
    let (first, _) = plan_all(&oss, &options).await;
    let (second, _) = plan_all(&oss, &options).await;
    assert_eq!(first, second);
    let (over_s3, _) = plan_all(&emulator_s3(&emu).await, &options).await;
    assert_eq!(first, over_s3);
    assert!(first.len() >= 10, "{first:#?}");
    let concurrency_1 = PlanOptions {
        list_concurrency: 1,
        ..options
    };
    assert_eq!(plan_all(&oss, &concurrency_1).await.0, first);
    assert_exact_cover(&oss, &first, &all).await;
}

#[tokio::test]
async fn shard_budget_is_respected() {
    let emu = emulator().await;
    let all = layout(3000);
    seed(&emu, &all);
    let options = PlanOptions {
        target_keys_per_shard: 10,
        probe_keys: 10,
        max_shards: 7,
        ..PlanOptions::default()
    };
    let (ranges, _) = plan_all(&oss_source(&emu), &options).await;
    assert!((1..=7).contains(&ranges.len()), "{ranges:#?}");
    assert_exact_cover(&oss_source(&emu), &ranges, &all).await;
}

#[tokio::test]
async fn an_empty_bucket_is_one_empty_range() {
    let emu = emulator().await;
    let (ranges, _) = plan_all(&oss_source(&emu), &PlanOptions::default()).await;
    assert_eq!(ranges.len(), 1);
    assert_eq!(ranges[0].range, KeyRange::whole(""));
    assert_eq!((ranges[0].estimated_keys, ranges[0].exact), (0, true));
}

// ---------------------------------------------------------------------------------------------
// deadlines

fn continue_json(cursor: PlanCursor) -> PlanCursor {
    // Through JSON, as a fresh invocation receives it.
    serde_json::from_str(&serde_json::to_string(&cursor).unwrap()).unwrap()
}

#[tokio::test]
async fn a_past_deadline_returns_at_once_and_the_continuation_plans_the_same() {
    let emu = emulator().await;
    let all = layout(4000);
    seed(&emu, &all);
    let source = oss_source(&emu);
    let options = PlanOptions {
        target_keys_per_shard: 200,
        probe_keys: 20,
        ..PlanOptions::default()
    };
    let (uninterrupted, _) = plan_all(&source, &options).await;

    let past = Instant::now() - Duration::from_secs(1);
    let outcome = plan_ranges(&source, &options, Some(past)).await.unwrap();
    let PlanOutcome::Partial {
        ranges,
        cursor,
        stats,
    } = outcome
    else {
        panic!("a past deadline cannot complete a plan");
    };
    assert!(ranges.is_empty());
    assert_eq!(stats.list_requests, 0);
    let outcome = plan_continue(&source, &options, continue_json(cursor), None)
        .await
        .unwrap();
    assert!(outcome.is_complete());
    assert_eq!(outcome.ranges(), uninterrupted.as_slice());
}

#[tokio::test]
async fn many_short_invocations_emit_the_uninterrupted_plan_once() {
    let emu = emulator().await;
    let all = layout(8000);
    seed(&emu, &all);
    let source = oss_source(&emu);
    let options = PlanOptions {
        target_keys_per_shard: 100,
        probe_keys: 20,
        ..PlanOptions::default()
    };
    let (uninterrupted, _) = plan_all(&source, &options).await;
    // Slow listings, short invocations: each one gets a round or two done.
    emu.add_fault(FaultRule::latency(
        "ListObjectsV2",
        Duration::from_millis(25),
    ))
    .unwrap();
    let mut emitted: Vec<PlannedRange> = Vec::new();
    let mut cursor: Option<PlanCursor> = None;
    let mut invocations = 0;
    loop {
        invocations += 1;
        assert!(invocations < 300, "no progress");
        let deadline = Some(Instant::now() + Duration::from_millis(300));
        let outcome = match cursor.take() {
            None => plan_ranges(&source, &options, deadline).await,
            Some(c) => plan_continue(&source, &options, continue_json(c), deadline).await,
        }
        .unwrap();
        let (ranges, next) = outcome.into_parts();
        emitted.extend(ranges);
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert!(invocations >= 3, "only {invocations} invocations");
    assert_eq!(emitted, uninterrupted);
}

#[tokio::test]
async fn a_cursor_only_continues_the_plan_it_came_from() {
    let emu = emulator().await;
    let source = oss_source(&emu);
    let options = PlanOptions::default();
    let past = Some(Instant::now() - Duration::from_secs(1));
    let (_, cursor) = plan_ranges(&source, &options, past)
        .await
        .unwrap()
        .into_parts();
    let other = PlanOptions {
        target_keys_per_shard: 5,
        ..options.clone()
    };
    let err = plan_continue(&source, &other, cursor.unwrap(), None)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("target_keys_per_shard") && text.contains("10000"),
        "{text}"
    );
    let bad = PlanOptions {
        probe_keys: 1,
        ..options
    };
    let err = plan_ranges(&source, &bad, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("probe_keys") && err.contains("2 to 1000"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Amazon S3 semantics (moto)

#[tokio::test]
async fn moto_ranges_cover_awkward_keys_exactly_once() {
    let moto = moto::Moto::shared();
    let bucket = "ferry-plan";
    let s3 = moto.create_bucket(bucket).await;
    let mut all: BTreeSet<String> = layout(240);
    all.extend(
        [
            "d",
            "d/",
            "d//x",
            "d/ sp",
            "d/+plus",
            "d/%25",
            "中/文/1",
            "😀",
            "a b/c",
            "z/",
        ]
        .map(str::to_owned),
    );
    let puts = all.iter().map(|key| {
        let s3 = s3.clone();
        async move {
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .body(Vec::new().into())
                .send()
                .await
                .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
        }
    });
    futures_util::future::join_all(puts).await;
    let source = s3_source(
        moto.endpoint(),
        moto::REGION,
        bucket,
        moto::ACCESS_KEY_ID,
        moto::SECRET_ACCESS_KEY,
    )
    .await;
    let options = PlanOptions {
        target_keys_per_shard: 20,
        probe_keys: 5,
        discovery_page_keys: 7,
        ..PlanOptions::default()
    };
    let (ranges, _) = plan_all(&source, &options).await;
    assert!(ranges.len() >= 8, "{ranges:#?}");
    assert_exact_cover(&source, &ranges, &all).await;
}
