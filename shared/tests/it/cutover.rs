//! The cut-over end to end on loopback (issue 9 points 6 and 7): moto's S3 is the source, the
//! OSS emulator the destination, and the emulator serves OSS's mirror back-to-origin from
//! moto, so the whole recipe runs as a user runs it — full run (T1), `enable`, reads through
//! the mirror, the switch (T2), applications writing to OSS, the final incremental run with
//! `if-newer`, `disable` — and ends with every object at the destination and accounted for.

use std::sync::Arc;
use std::time::Duration;

use ferry::cutover;
use ferry::deploy::connect::Secrets;
use ferry::job::JobSpec;
use ferry::oss::{
    GetObjectOptions, IndexDocument, Redirect, RoutingCondition, RoutingRule, WebsiteConfiguration,
};
use ferry::pipeline::standalone;

use crate::events::FollowWorld;

const DEST: &str = "follow-dst";

fn body(key: &str, version: u8) -> Vec<u8> {
    format!("{key} v{version} ")
        .repeat(40 + key.len())
        .into_bytes()
}

/// The source lets anyone read its objects, as it must for OSS's mirror (which fetches without
/// credentials) during the cut-over window.
async fn allow_anonymous_reads(world: &FollowWorld) {
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{}/*", world.bucket)
        }]
    });
    world
        .s3
        .put_bucket_policy()
        .bucket(&world.bucket)
        .policy(policy.to_string())
        .send()
        .await
        .unwrap();
}

/// A rule the bucket had before the cut-over: it must survive enable and disable.
fn legacy_rule() -> RoutingRule {
    RoutingRule {
        rule_number: 1,
        condition: RoutingCondition {
            key_prefix_equals: Some("legacy/".into()),
            http_error_code_returned_equals: Some(404),
            ..Default::default()
        },
        redirect: Redirect {
            redirect_type: Some("Mirror".into()),
            mirror_url: Some("http://127.0.0.1:9/".into()),
            ..Default::default()
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cutover_serves_misses_through_the_mirror_and_ends_with_every_object_accounted_for() {
    let world = FollowWorld::start("cutover", serde_json::json!({})).await;
    let mut job: serde_json::Value = serde_json::from_str(&world.job).unwrap();
    job["destination"]["prefix"] = "from-s3/".into();
    let job_text = job.to_string();
    let spec = JobSpec::from_json(&job_text).unwrap();
    let secrets: Arc<dyn Secrets> = world.secrets.clone();
    let dir = world.dir.path().to_str().unwrap().to_owned();
    let state = ferry::deploy::state_store(&dir).await.unwrap();
    let client = ferry::deploy::connect::destination_client(&spec, &secrets)
        .await
        .unwrap();

    // OSS fetches from the origin without credentials: the source lets anyone read its
    // objects for the cut-over window.
    allow_anonymous_reads(&world).await;

    // The history, copied by a full run: T1 is its start.
    let history: Vec<String> = (0..8)
        .map(|i| format!("hist/{i:02}.bin"))
        .chain(["hist/a b+c ü.txt".to_owned()])
        .collect();
    for key in &history {
        world.put(key, body(key, 1)).await;
    }
    let first = standalone::run(&job_text, world.options(), world.secrets.clone())
        .await
        .unwrap();
    assert_eq!(first.report.verdict, "complete", "{:?}", first.report);
    assert_eq!(first.report.objects.copied, history.len() as u64);
    let (t1, _) = cutover::last_complete_run(state.as_ref(), "cutover")
        .await
        .unwrap();
    assert_eq!(t1, Some(first.report.started));

    // The bucket already serves a website with a rule of its own.
    let own = WebsiteConfiguration {
        index_document: Some(IndexDocument {
            suffix: "index.html".into(),
            ..Default::default()
        }),
        routing_rules: vec![legacy_rule()],
        ..Default::default()
    };
    client.put_bucket_website(DEST, &own).await.unwrap();

    let enabled = cutover::enable(&client, &spec, state.as_ref())
        .await
        .unwrap();
    assert!(!enabled.already);
    assert_eq!((enabled.rule.rule_number, enabled.kept), (2, 1));
    let config = client.get_bucket_website(DEST).await.unwrap();
    assert_eq!(config.index_document, own.index_document, "kept");
    assert_eq!(config.routing_rules[0], legacy_rule(), "kept");
    assert_eq!(config.routing_rules[1], enabled.rule);
    let again = cutover::enable(&client, &spec, state.as_ref())
        .await
        .unwrap();
    assert!(again.already, "enabling twice changes nothing");
    assert_eq!(client.get_bucket_website(DEST).await.unwrap(), config);

    // Applications keep writing to the source after T1.
    for key in ["new/late.txt", "new/unread.txt"] {
        world.put(key, body(key, 1)).await;
    }
    world.put("hist/01.bin", body("hist/01.bin", 2)).await;
    world.put("hist/02.bin", body("hist/02.bin", 2)).await;

    // A read at OSS of a key not copied yet is served through the mirror and stored.
    let got = client
        .get_object(DEST, "from-s3/new/late.txt", &GetObjectOptions::default())
        .await
        .expect("a miss under the rule is fetched from the source");
    let got = got.body.collect().await.unwrap();
    assert_eq!(got.as_ref(), body("new/late.txt", 1).as_slice());
    assert!(
        world
            .dest
            .object_bytes(DEST, "from-s3/new/late.txt")
            .await
            .is_some()
    );
    // OSS does not fetch for a HEAD, nor for a key the source does not have either, nor
    // outside the rule's prefix.
    let head = client.head_object(DEST, "from-s3/new/unread.txt").await;
    assert_eq!(head.unwrap_err().status(), Some(404));
    let missing = client
        .get_object(
            DEST,
            "from-s3/new/nowhere.txt",
            &GetObjectOptions::default(),
        )
        .await;
    assert_eq!(missing.unwrap_err().code(), Some("NoSuchKey"));
    let outside = client
        .get_object(
            DEST,
            "elsewhere/new/unread.txt",
            &GetObjectOptions::default(),
        )
        .await;
    assert_eq!(outside.unwrap_err().code(), Some("NoSuchKey"));
    assert!(
        world
            .dest
            .object_bytes(DEST, "from-s3/new/unread.txt")
            .await
            .is_none()
    );

    // T2: applications switch to OSS, and one of them rewrites an object there.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    cutover::record_switch(state.as_ref(), "cutover", chrono::Utc::now())
        .await
        .unwrap();
    let app = b"written by the application at OSS after the switch".to_vec();
    world
        .dest
        .put_object(DEST, "from-s3/hist/02.bin", app.clone())
        .await
        .unwrap();

    // The final run: what changed since T1, never replacing what applications wrote after T2.
    let mut final_job = job.clone();
    final_job["overwrite"] = "if-newer".into();
    let mut options = world.options();
    options.incremental = true;
    let last = standalone::run(&final_job.to_string(), options, world.secrets.clone())
        .await
        .unwrap();
    let t = &last.report.objects;
    assert_eq!(last.report.verdict, "complete", "{:?}", last.report);
    assert_eq!(t.failed + t.needs_restore, 0);
    assert_eq!(t.copied, 2, "hist/01.bin v2 and new/unread.txt: {t:?}");
    assert_eq!(t.copied + t.skipped, t.objects, "{t:?}");

    let removed = cutover::disable(&client, &spec, state.as_ref())
        .await
        .unwrap();
    assert!(removed);
    let config = client.get_bucket_website(DEST).await.unwrap();
    assert_eq!(
        config.routing_rules,
        vec![legacy_rule()],
        "only ferry's rule goes"
    );
    assert_eq!(config.index_document, own.index_document);
    assert!(
        !cutover::disable(&client, &spec, state.as_ref())
            .await
            .unwrap()
    );

    // Every source object is at OSS with the source's bytes — except the one an application
    // rewrote after T2, which keeps the application's.
    let mut expected: Vec<(String, Vec<u8>)> = history
        .iter()
        .map(|k| (k.clone(), body(k, 1)))
        .filter(|(k, _)| k != "hist/01.bin" && k != "hist/02.bin")
        .collect();
    expected.push(("hist/01.bin".into(), body("hist/01.bin", 2)));
    expected.push(("hist/02.bin".into(), app));
    for key in ["new/late.txt", "new/unread.txt"] {
        expected.push((key.into(), body(key, 1)));
    }
    for (key, bytes) in &expected {
        let at = format!("from-s3/{key}");
        let got = world.dest.object_bytes(DEST, &at).await;
        assert_eq!(got.as_deref(), Some(bytes.as_slice()), "{at}");
    }

    let status = cutover::status(&client, &spec, state.as_ref())
        .await
        .unwrap();
    assert!(status.rule.is_none());
    assert_eq!(status.t1_run.as_deref(), Some(last.report.run.as_str()));
    assert!(status.record.switched_at.is_some() && status.record.disabled_at.is_some());
    let steps = cutover::plan("job.json", &dir, &status);
    assert_eq!(steps.len(), 7);
    assert!(
        steps[4]
            .command
            .contains("--incremental --overwrite if-newer"),
        "{steps:?}"
    );
    assert!(
        steps[3].done.is_some() && steps[6].done.is_some(),
        "{steps:?}"
    );
}

/// The rule ferry writes, for each kind of source: the origin is the bucket's URL, and the
/// destination prefix is taken off the key before it is asked for.
#[test]
fn the_mirror_rule_points_at_the_source_bucket() {
    let rule = |source: serde_json::Value, prefix: &str| {
        let job = serde_json::json!({
            "version": 1, "name": "j", "source": source,
            "destination": { "bucket": "dst", "region": "cn-hangzhou", "prefix": prefix }
        });
        cutover::mirror_rule(&JobSpec::from_json(&job.to_string()).unwrap(), 3).unwrap()
    };
    let aws = rule(
        serde_json::json!({"kind": "s3", "bucket": "photos", "prefix": "2024/", "region": "eu-west-1"}),
        "",
    );
    assert_eq!(
        aws.redirect.mirror_url.as_deref(),
        Some("https://photos.s3.eu-west-1.amazonaws.com/")
    );
    assert_eq!(aws.condition.key_prefix_equals.as_deref(), Some("2024/"));
    assert_eq!(aws.redirect.enable_replace_prefix, None);
    let dotted = rule(
        serde_json::json!({"kind": "s3", "bucket": "my.photos", "region": "eu-west-1"}),
        "from-s3/",
    );
    assert_eq!(
        dotted.redirect.mirror_url.as_deref(),
        Some("https://s3.eu-west-1.amazonaws.com/my.photos/")
    );
    assert_eq!(
        dotted.condition.key_prefix_equals.as_deref(),
        Some("from-s3/")
    );
    assert_eq!(
        (
            dotted.redirect.enable_replace_prefix,
            dotted.redirect.replace_key_prefix_with.as_deref()
        ),
        (Some(true), Some(""))
    );
    let minio = rule(
        serde_json::json!({"kind": "s3", "bucket": "b", "endpoint": "https://minio.example.com:9000", "path_style": true}),
        "",
    );
    assert_eq!(
        minio.redirect.mirror_url.as_deref(),
        Some("https://minio.example.com:9000/b/")
    );
    let oss = rule(
        serde_json::json!({"kind": "oss", "bucket": "old", "region": "cn-shanghai", "prefix": "a/"}),
        "b/",
    );
    assert_eq!(
        oss.redirect.mirror_url.as_deref(),
        Some("https://old.oss-cn-shanghai.aliyuncs.com/")
    );
    assert_eq!(oss.condition.key_prefix_equals.as_deref(), Some("b/a/"));
    assert_eq!(oss.redirect.replace_key_prefix_with.as_deref(), Some("a/"));

    let no_region = serde_json::json!({
        "version": 1, "name": "j", "source": {"kind": "s3", "bucket": "photos"},
        "destination": { "bucket": "dst", "region": "cn-hangzhou" }
    });
    let spec = JobSpec::from_json(&no_region.to_string()).unwrap();
    let err = cutover::mirror_rule(&spec, 1).unwrap_err().to_string();
    assert!(err.contains("source.region"), "{err}");
}

/// Issue 13 point 3: under `key_layout: relative` keys land as OssImport and rclone lay them out
/// (`2024/a.jpg` with source prefix `2024/` and destination prefix `from-s3/` becomes
/// `from-s3/a.jpg`); the next run finds them unchanged through the same mapping, and the
/// mirror rule fetches a miss from the source key it maps back to.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_relative_key_layout_drops_the_source_prefix_and_everything_follows_it() {
    let world = FollowWorld::start("relative", serde_json::json!({})).await;
    let mut job: serde_json::Value = serde_json::from_str(&world.job).unwrap();
    job["source"]["prefix"] = "2024/".into();
    job["destination"]["prefix"] = "from-s3/".into();
    job["destination"]["key_layout"] = "relative".into();
    let job_text = job.to_string();
    let spec = JobSpec::from_json(&job_text).unwrap();
    let secrets: Arc<dyn Secrets> = world.secrets.clone();
    let dir = world.dir.path().to_str().unwrap().to_owned();
    let state = ferry::deploy::state_store(&dir).await.unwrap();
    let client = ferry::deploy::connect::destination_client(&spec, &secrets)
        .await
        .unwrap();

    let keys = ["2024/a.jpg", "2024/sub/b c+ü.png", "2024/"];
    for key in keys {
        let data = if key.ends_with('/') {
            Vec::new()
        } else {
            body(key, 1)
        };
        world.put(key, data).await;
    }
    world.put("2025/outside.jpg", body("outside", 1)).await;
    let first = standalone::run(&job_text, world.options(), world.secrets.clone())
        .await
        .unwrap();
    assert_eq!(first.report.verdict, "complete", "{:?}", first.report);
    assert_eq!(first.report.objects.copied, 3, "{:?}", first.report.objects);
    for (source_key, dest_key) in [
        ("2024/a.jpg", "from-s3/a.jpg"),
        ("2024/sub/b c+ü.png", "from-s3/sub/b c+ü.png"),
    ] {
        assert_eq!(
            world.dest.object_bytes(DEST, dest_key).await.as_deref(),
            Some(body(source_key, 1).as_slice()),
            "{source_key} lands at {dest_key}"
        );
    }
    assert_eq!(
        world.dest.object_bytes(DEST, "from-s3/").await.as_deref(),
        Some(&[][..]),
        "the source prefix's folder marker becomes the destination prefix's"
    );
    assert!(
        world
            .dest
            .object_bytes(DEST, "from-s3/2024/a.jpg")
            .await
            .is_none()
    );
    assert!(
        world
            .dest
            .object_bytes(DEST, "from-s3/outside.jpg")
            .await
            .is_none()
    );

    // The next run compares through the same mapping: nothing is copied again.
    let second = standalone::run(&job_text, world.options(), world.secrets.clone())
        .await
        .unwrap();
    assert_eq!(second.report.verdict, "complete", "{:?}", second.report);
    assert_eq!(
        (second.report.objects.copied, second.report.objects.skipped),
        (0, 3),
        "{:?}",
        second.report.objects
    );

    // The mirror maps a miss back to its source key: from-s3/late.txt ← 2024/late.txt.
    allow_anonymous_reads(&world).await;
    cutover::enable(&client, &spec, state.as_ref())
        .await
        .unwrap();
    world.put("2024/late ü.txt", body("late", 1)).await;
    let got = client
        .get_object(DEST, "from-s3/late ü.txt", &GetObjectOptions::default())
        .await
        .expect("a miss under the destination prefix is fetched from the source prefix");
    assert_eq!(
        got.body.collect().await.unwrap().as_ref(),
        body("late", 1).as_slice()
    );
    cutover::disable(&client, &spec, state.as_ref())
        .await
        .unwrap();
}

/// Under the relative layout with no destination prefix, keys land at the bucket's root, and
/// the source prefix's own folder marker (which would have no name) is skipped with the
/// reason, never failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_relative_layout_into_the_bucket_root_skips_only_the_nameless_marker() {
    let world = FollowWorld::start("relroot", serde_json::json!({})).await;
    let mut job: serde_json::Value = serde_json::from_str(&world.job).unwrap();
    job["source"]["prefix"] = "2024/".into();
    job["destination"]["key_layout"] = "relative".into();
    for key in ["2024/a.jpg", "2024/"] {
        let data = if key.ends_with('/') {
            Vec::new()
        } else {
            body(key, 1)
        };
        world.put(key, data).await;
    }
    let run = standalone::run(&job.to_string(), world.options(), world.secrets.clone())
        .await
        .unwrap();
    assert_eq!(run.report.verdict, "complete", "{:?}", run.report);
    assert_eq!(
        (
            run.report.objects.copied,
            run.report.objects.skipped,
            run.report.objects.failed
        ),
        (1, 1, 0),
        "{:?}",
        run.report.objects
    );
    assert_eq!(
        world.dest.object_bytes(DEST, "a.jpg").await.as_deref(),
        Some(body("2024/a.jpg", 1).as_slice())
    );
    let rule = cutover::mirror_rule(&JobSpec::from_json(&job.to_string()).unwrap(), 1).unwrap();
    assert_eq!(rule.condition.key_prefix_equals, None);
    assert_eq!(rule.redirect.enable_replace_prefix, None);
    assert!(
        rule.redirect
            .mirror_url
            .as_deref()
            .unwrap()
            .ends_with("/relroot-src/2024/"),
        "{:?}",
        rule.redirect.mirror_url
    );
}
