//! Source events as S3 really sends them (issue 9 point 1): moto's S3 notifies moto's SQS
//! directly, and through moto's SNS with raw delivery on and off; every body that arrives is
//! read by `ferry::events::parse`. AWS-shaped bodies with sequencers, and EventBridge's, are
//! tested beside the parser (`shared/src/events/tests.rs`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration, TopicConfiguration};
use ferry::events::{EventKind, SourceEvent, parse};

use crate::support::moto::Moto;

/// Keys a user really has: spaces, a plus, a percent sign, non-ASCII, brackets.
const KEYS: [&str; 4] = ["plain.txt", "a b+c.txt", "ü/ß x%.txt", "dir/(1) copy.jpg"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_notifications_are_read_directly_and_through_sns_raw_or_wrapped() {
    let moto = Moto::shared();
    let bucket = "events-src";
    let s3 = moto.create_bucket(bucket).await;
    let sqs = moto.sqs_client();
    let mut queues = Vec::new();
    for name in ["events-direct", "events-sns-wrapped", "events-sns-raw"] {
        queues.push(queue(&sqs, name).await);
    }
    let topic = between(
        "TopicArn",
        &moto
            .sns(&[("Action", "CreateTopic"), ("Name", "events")])
            .await,
    );
    for (i, (_, arn)) in queues.iter().enumerate().skip(1) {
        let subscribed = moto
            .sns(&[
                ("Action", "Subscribe"),
                ("TopicArn", &topic),
                ("Protocol", "sqs"),
                ("Endpoint", arn),
            ])
            .await;
        if i == 2 {
            let subscription = between("SubscriptionArn", &subscribed);
            moto.sns(&[
                ("Action", "SetSubscriptionAttributes"),
                ("SubscriptionArn", &subscription),
                ("AttributeName", "RawMessageDelivery"),
                ("AttributeValue", "true"),
            ])
            .await;
        }
    }
    let events = [
        Event::from("s3:ObjectCreated:*"),
        Event::from("s3:ObjectRemoved:*"),
    ];
    let config = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .queue_arn(&queues[0].1)
                .set_events(Some(events.to_vec()))
                .build()
                .unwrap(),
        )
        .topic_configurations(
            TopicConfiguration::builder()
                .topic_arn(&topic)
                .set_events(Some(events.to_vec()))
                .build()
                .unwrap(),
        )
        .build();
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(config)
        .send()
        .await
        .unwrap();
    for key in KEYS {
        let body = ByteStream::from(key.as_bytes().to_vec());
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .send()
            .await
            .unwrap();
    }
    s3.delete_object()
        .bucket(bucket)
        .key(KEYS[1])
        .send()
        .await
        .unwrap();

    let mut expected: BTreeSet<(String, String)> = KEYS
        .iter()
        .map(|k| ("created".to_owned(), k.to_string()))
        .collect();
    expected.insert(("removed".into(), KEYS[1].into()));
    for ((url, _), wrapped) in queues.iter().zip([false, true, false]) {
        let bodies = receive(&sqs, url, expected.len() + 1).await;
        let mut tests = 0;
        let mut seen = BTreeSet::new();
        for body in &bodies {
            assert_eq!(
                body.contains("\"Type\": \"Notification\"")
                    || body.contains("\"Type\":\"Notification\""),
                wrapped,
                "{url}: {body}"
            );
            let read = parse(body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"));
            tests += usize::from(read.is_empty());
            for event in read {
                assert_eq!(event.bucket, bucket);
                assert!(event.time.is_some());
                seen.insert(summary(&event));
            }
        }
        assert_eq!(seen, expected, "{url}: {bodies:#?}");
        assert_eq!(tests, 1, "{url}: one s3:TestEvent, read as nothing to do");
        let created = bodies.iter().flat_map(|b| parse(b).unwrap());
        let sizes: Vec<Option<u64>> = created
            .filter(|e| e.kind == EventKind::Created)
            .map(|e| e.size)
            .collect();
        let wanted: Vec<Option<u64>> = KEYS.iter().map(|k| Some(k.len() as u64)).collect();
        assert_eq!(sizes, wanted, "{url}: sizes come with the events");
    }
}

fn summary(event: &SourceEvent) -> (String, String) {
    let kind = match event.kind {
        EventKind::Created => "created",
        EventKind::Removed => "removed",
        EventKind::RestoreCompleted => "restored",
        EventKind::Other => "other",
    };
    (kind.to_owned(), event.key.clone())
}

/// Creates a queue; returns its URL and ARN.
async fn queue(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn = attrs.attributes.unwrap()[&QueueAttributeName::QueueArn].clone();
    (url, arn)
}

/// Receives until `n` messages have arrived (and are deleted), or 20 s have passed.
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str, n: usize) -> Vec<String> {
    let began = Instant::now();
    let mut bodies = Vec::new();
    while bodies.len() < n && began.elapsed() < Duration::from_secs(20) {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for message in got.messages.unwrap_or_default() {
            bodies.push(message.body.unwrap_or_default());
            let receipt = message.receipt_handle.unwrap();
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(receipt)
                .send()
                .await
                .unwrap();
        }
    }
    bodies
}

/// The text of the first `<tag>…</tag>` in an XML answer.
fn between(tag: &str, xml: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml.find(&open).map(|i| i + open.len());
    let end = xml.find(&format!("</{tag}>"));
    match (start, end) {
        (Some(s), Some(e)) if s <= e => xml[s..e].to_owned(),
        _ => panic!("no <{tag}> in {xml}"),
    }
}

/// The follower end to end (issue 9 points 2, 3 and 7): a full run copies the history; then the
/// source takes writes — new keys, an overwrite, two overwrites of one key, a multipart upload,
/// a server-side copy, a delete — and moto's S3 notifies moto's SQS. Every notification is
/// delivered twice and in reverse order, with one message that is no event. The follower makes
/// the destination equal to the source, keeps the deleted object (the default delete policy
/// reports), counts each event once, and leaves the stray message for the dead-letter queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_follower_keeps_the_destination_current_under_duplicate_reordered_events() {
    use ferry::pipeline::standalone;

    let world = FollowWorld::start("follow", serde_json::json!({})).await;
    let (s3, sqs, url, bucket) = (&world.s3, &world.sqs, &world.url, world.bucket.as_str());
    let put = |key: &'static str, body: Vec<u8>| world.put(key, body);
    let history = ["hist/a", "hist/b", "hist/c", "hist/d", "hist/e"];
    for key in history {
        put(key, format!("{key} v1").into_bytes()).await;
    }
    let (dest, job, secrets) = (&world.dest, &world.job, world.secrets.clone());
    let options = || world.options();
    let full = tokio::time::timeout(
        Duration::from_secs(120),
        standalone::run(job, options(), secrets.clone()),
    )
    .await
    .expect("the full run ends within 2 minutes")
    .expect("the full run completes");
    assert_eq!(full.report.objects.copied, history.len() as u64);
    // The history's events and S3's test event are drained: the full run copied those objects.
    receive(sqs, url, history.len() + 1).await;

    // The application keeps writing.
    put("live/new one.txt", b"new".to_vec()).await;
    put("live/a+b%.txt", b"plus and percent".to_vec()).await;
    put("hist/a", b"hist/a v2".to_vec()).await;
    put("hist/b", b"hist/b v2".to_vec()).await;
    put("hist/b", b"hist/b v3, the newest".to_vec()).await;
    let big: Vec<u8> = (0..(6u32 << 20)).map(|i| (i % 251) as u8).collect();
    crate::support::moto::multipart_put(
        s3,
        bucket,
        "live/big.bin",
        &[&big[..5 << 20], &big[5 << 20..]],
        None,
    )
    .await;
    s3.copy_object()
        .bucket(bucket)
        .key("live/copy-of-c")
        .copy_source(format!("{bucket}/hist/c"))
        .send()
        .await
        .unwrap();
    s3.delete_object()
        .bucket(bucket)
        .key("hist/d")
        .send()
        .await
        .unwrap();
    // Nine notifications: moto sends two for the multipart upload (ObjectCreated:Put and
    // ObjectCreated:CompleteMultipartUpload).
    let events = 9;
    let mut bodies = receive(sqs, url, events).await;
    assert_eq!(bodies.len(), events, "{bodies:#?}");
    // Every notification twice, newest first, and one message that is no event.
    bodies.reverse();
    let twice: Vec<String> = bodies.iter().chain(bodies.iter()).cloned().collect();
    for body in twice.iter().chain([&"{\"hello\": 1}".to_owned()]) {
        sqs.send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let followed = world.follow(url).await;

    // The destination equals the source, key by key; the deleted object is kept.
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        listed.extend(page.contents().iter().map(|o| o.key().unwrap().to_owned()));
        token = page.next_continuation_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(listed.len(), history.len() + 4 - 1);
    for key in &listed {
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        let at_dest = dest.object_bytes("follow-dst", key).await;
        assert!(
            at_dest.as_deref() == Some(&body[..]),
            "{key:?} differs at the destination"
        );
    }
    assert_eq!(
        dest.object_bytes("follow-dst", "hist/d").await.as_deref(),
        Some(&b"hist/d v1"[..]),
        "a delete at the source is reported, not propagated"
    );

    // Counted once per event, duplicates and all.
    assert_eq!(followed.messages, 2 * events as u64, "{followed:?}");
    assert_eq!(followed.refused.len(), 1, "{followed:?}");
    assert!(
        followed.refused[0].contains("not an S3 event message"),
        "{followed:?}"
    );
    let [run] = followed.runs.as_slice() else {
        panic!("one event run: {followed:?}")
    };
    assert!(run.run.starts_with("events-") && run.open && run.pending.is_empty());
    assert_eq!(run.tasks_done, events as u64, "one task per distinct event");
    // Each object's outcome, for the messages below.
    let outcomes: Vec<String> = walk(world.dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/events-"))
        .filter(|p| p.to_string_lossy().contains("/results/"))
        .flat_map(|p| {
            let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            r["objects"].as_array().cloned().unwrap_or_default()
        })
        .map(|o| format!("{} {} {}", o["key"], o["outcome"], o["reason"]))
        .collect();
    let tally = &run.tally;
    let why = format!("{tally:?} {outcomes:#?}");
    assert_eq!(tally.objects, events as u64, "{why}");
    assert_eq!(tally.failed, 0, "{why}");
    // hist/d is skipped (deleted); of the two events of hist/b and of live/big.bin, the second
    // to run finds the newest object there already, unless both ran at once.
    assert_eq!(tally.copied + tally.skipped, events as u64, "{why}");
    assert!((1..=3).contains(&tally.skipped), "{why}");
}

/// An S3 notification of one object created now; `key` is given form-encoded, as S3 sends it
/// (`a+b` for the key `a b`).
fn created_event(bucket: &str, key: &str) -> String {
    serde_json::json!({ "Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "cn-hangzhou",
        "eventTime": chrono::Utc::now().to_rfc3339(), "eventName": "ObjectCreated:Put",
        "s3": { "s3SchemaVersion": "1.0", "configurationId": "c",
            "bucket": { "name": bucket, "arn": format!("arn:aws:s3:::{bucket}") },
            "object": { "key": key, "size": 9, "sequencer": "0062E99A88DC407460" } }
    }]})
    .to_string()
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        match path.is_dir() {
            true => out.extend(walk(&path)),
            false => out.push(path),
        }
    }
    out
}

/// A source bucket on moto that notifies a queue, an OSS emulator as the destination, a job
/// between them and a state folder: what a follower needs.
pub(crate) struct FollowWorld {
    pub(crate) s3: aws_sdk_s3::Client,
    pub(crate) sqs: aws_sdk_sqs::Client,
    pub(crate) bucket: String,
    /// The queue the bucket notifies.
    pub(crate) url: String,
    pub(crate) dest: oss_emulator::Emulator,
    pub(crate) job: String,
    pub(crate) secrets: std::sync::Arc<ferry::deploy::connect::StaticSecrets>,
    pub(crate) dir: tempfile::TempDir,
}

impl FollowWorld {
    /// `name` names the bucket and the queue; `extra` is merged into the job.
    pub(crate) async fn start(name: &str, extra: serde_json::Value) -> FollowWorld {
        let moto = Moto::shared();
        let bucket = format!("{name}-src");
        let s3 = moto.create_bucket(&bucket).await;
        let sqs = moto.sqs_client();
        let (url, arn) = queue(&sqs, &format!("{name}-events")).await;
        let config = NotificationConfiguration::builder()
            .queue_configurations(
                QueueConfiguration::builder()
                    .queue_arn(&arn)
                    .events(Event::from("s3:ObjectCreated:*"))
                    .events(Event::from("s3:ObjectRemoved:*"))
                    .events(Event::from("s3:ObjectRestore:Completed"))
                    .build()
                    .unwrap(),
            )
            .build();
        s3.put_bucket_notification_configuration()
            .bucket(&bucket)
            .notification_configuration(config)
            .send()
            .await
            .unwrap();
        let dest = oss_emulator::Emulator::for_test("dst-ak").await;
        dest.create_bucket("follow-dst").unwrap();
        let mut job = serde_json::json!({
            "version": 1,
            "name": name,
            "source": {
                "kind": "s3", "bucket": bucket, "region": crate::support::moto::REGION,
                "endpoint": moto.endpoint(), "path_style": true, "allow_http": true,
                "credentials": { "secret": "src" }
            },
            "destination": {
                "bucket": "follow-dst", "region": "cn-hangzhou", "endpoint": dest.endpoint(),
                "allow_http": true, "credentials": { "secret": "dst" }
            },
            "concurrency": { "multipart_threshold": "5MiB", "part_size": "5MiB" }
        });
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            job[k] = v;
        }
        let secret = |v: serde_json::Value| ferry::secret::Secret::new(v.to_string());
        let secrets = ferry::deploy::connect::StaticSecrets(
            [
                (
                    "src".to_owned(),
                    secret(serde_json::json!({
                        "access_key_id": crate::support::moto::ACCESS_KEY_ID,
                        "secret_access_key": crate::support::moto::SECRET_ACCESS_KEY,
                    })),
                ),
                (
                    "dst".to_owned(),
                    secret(serde_json::json!({
                        "access_key_id": "dst-ak", "access_key_secret": "dst-ak-secret"
                    })),
                ),
            ]
            .into(),
        );
        FollowWorld {
            s3,
            sqs,
            bucket,
            url,
            dest,
            job: job.to_string(),
            secrets: std::sync::Arc::new(secrets),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) async fn put(&self, key: &str, body: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
    }

    pub(crate) fn options(&self) -> ferry::pipeline::standalone::Options {
        let mut o = ferry::pipeline::standalone::Options::new(self.dir.path());
        o.workers = 3;
        o
    }

    /// Follows `queue` until it has been idle for 3 s, within 2 minutes.
    async fn follow(&self, queue: &str) -> ferry::pipeline::follow::Followed {
        let events = std::sync::Arc::new(ferry::queue::sqs::SqsQueue::new(self.sqs.clone(), queue));
        let until = ferry::pipeline::follow::Until {
            idle: Some(Duration::from_secs(3)),
        };
        let follow = ferry::pipeline::follow::follow(
            &self.job,
            self.options(),
            self.secrets.clone(),
            events,
            until,
        );
        tokio::time::timeout(Duration::from_secs(120), follow)
            .await
            .expect("the follower goes idle within 2 minutes")
            .expect("the follower runs")
    }
}

/// The destination never ends older than the source (issue 9 point 2): an object overwritten
/// at the source while its event's copy is being written — and whose own event never comes —
/// is copied again, because an event run checks the source once more after each write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_object_overwritten_while_its_event_is_copied_ends_newest_at_the_destination() {
    // 2 MiB read at 512 KiB/s: the copy takes about 4 s, time to overwrite the source meanwhile.
    let world = FollowWorld::start(
        "follow-race",
        serde_json::json!({ "bandwidth_limit": "512KiB/s" }),
    )
    .await;
    let key = "race/photo.jpg";
    let (v1, v2) = (vec![1u8; 2 << 20], vec![2u8; 2 << 20]);
    world.put(key, v1).await;
    // Only the first write's event reaches the follower, through a queue of its own.
    let bodies = receive(&world.sqs, &world.url, 2).await;
    let created: Vec<&String> = bodies
        .iter()
        .filter(|b| !parse(b).unwrap().is_empty())
        .collect();
    assert_eq!(created.len(), 1, "{bodies:#?}");
    let (fed, _) = queue(&world.sqs, "follow-race-fed").await;
    world
        .sqs
        .send_message()
        .queue_url(&fed)
        .message_body(created[0])
        .send()
        .await
        .unwrap();

    let follow = world.follow(&fed);
    let overwrite = async {
        // Once the event's task is issued, the copy of v1 is under way.
        let progress = world.dir.path().join(format!(
            "jobs/follow-race/runs/events-{}/progress.json",
            chrono::Utc::now().format("%Y%m%d")
        ));
        let began = std::time::Instant::now();
        while began.elapsed() < Duration::from_secs(30) {
            let text = std::fs::read_to_string(&progress).unwrap_or_default();
            if text.contains(key) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        world.put(key, v2.clone()).await;
    };
    let (followed, ()) = tokio::join!(follow, overwrite);

    let at_dest = world.dest.object_bytes("follow-dst", key).await.unwrap();
    assert!(
        at_dest[..] == v2[..],
        "the destination holds the older object: {followed:?}"
    );
    let [run] = followed.runs.as_slice() else {
        panic!("one event run: {followed:?}")
    };
    let t = &run.tally;
    assert_eq!((t.objects, t.copied, t.failed), (1, 1, 0), "{t:?}");
    assert_eq!(
        run.tasks_done, 2,
        "the event's task and the copy-again task: {run:?}"
    );
}

/// Duplicates at the same moment, a follower that died with tasks issued, and a redelivery
/// after the copy (issue 9 point 3): eight intakes take the same notification at once and issue
/// one task, sent once; a follower started afterwards sends the pending task again itself (the
/// queue it was sent to died with its process) and copies it once; the same message delivered
/// again after that is done already and issues nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_duplicates_and_a_restart_count_an_event_once() {
    use crate::support::pipeline_support::{DEST, SOURCE, World};
    use ferry::pipeline::runtime::{Runtime, read_json};
    use ferry::pipeline::transfer::Delivery;
    use ferry::pipeline::verify::progress::Progress;
    use ferry::pipeline::{Ports, intake, layout};
    use ferry::queue::Queue;
    use ferry::queue::memory::{MemoryQueue, QueueSettings};
    use ferry::state::StateStore;
    use std::sync::Arc;

    let mut world = World::start().await;
    world.put("photos/a b.jpg", b"the photo".to_vec()).await;
    let job = world.job(serde_json::json!({}));
    let dir = tempfile::tempdir().unwrap();
    let settings = || QueueSettings {
        visibility_timeout: Duration::from_secs(3600),
        max_receives: None,
    };
    // The process that dies: its queues go with it.
    let lost_work = Arc::new(MemoryQueue::new("work", settings()));
    let state = Arc::new(ferry::state::local::LocalStore::open(dir.path()).unwrap());
    let rt = Runtime::new(
        Ports {
            state: state.clone(),
            work: lost_work.clone(),
            results: Arc::new(MemoryQueue::new("results", settings())),
        },
        Arc::new(world.secrets()),
    );
    state
        .put(&layout::job("test-job"), job.clone().into())
        .await
        .unwrap();
    let body = created_event(SOURCE, "photos/a+b.jpg");
    let delivery = |receive_count| Delivery {
        body: &body,
        receive_count,
    };

    let first = [delivery(1)];
    let takes = (0..8).map(|_| intake::handle_batch(&rt, "test-job", &first));
    for outcome in futures_util::future::join_all(takes).await {
        assert!(outcome[0].is_ok(), "{outcome:?}");
    }
    let sent = lost_work
        .receive(10, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(sent.len(), 1, "one task, sent once: {sent:?}");
    let run = layout::event_run(chrono::Utc::now().date_naive());
    let progress: Progress = read_json(state.as_ref(), &layout::progress("test-job", &run))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(progress.pending.len(), 1, "{progress:?}");
    // How far behind: the event is waiting, since its own time.
    let later = chrono::Utc::now() + chrono::TimeDelta::seconds(30);
    let status = ferry::pipeline::status::read(state.as_ref(), "test-job", Some(&run), later)
        .await
        .unwrap();
    assert_eq!(status.phase, ferry::pipeline::status::Phase::Following);
    assert!(
        status
            .behind_seconds
            .is_some_and(|b| (30.0..40.0).contains(&b)),
        "{status:?}"
    );
    assert!(
        status.line().contains("oldest event not yet copied"),
        "{}",
        status.line()
    );

    // A new follower; S3's duplicate of the notification is waiting on the events queue.
    let events = Arc::new(MemoryQueue::new("events", settings()));
    events
        .send_batch(std::slice::from_ref(&body))
        .await
        .unwrap();
    let mut options = ferry::pipeline::standalone::Options::new(dir.path());
    options.workers = 2;
    let until = ferry::pipeline::follow::Until {
        idle: Some(Duration::from_secs(2)),
    };
    let follow = ferry::pipeline::follow::follow(
        &job,
        options,
        Arc::new(world.secrets()),
        events.clone(),
        until,
    );
    let followed = tokio::time::timeout(Duration::from_secs(60), follow)
        .await
        .expect("the follower goes idle within a minute")
        .expect("the follower runs");
    let [done] = followed.runs.as_slice() else {
        panic!("{followed:?}")
    };
    assert!(
        done.pending.is_empty() && done.waiting.is_empty(),
        "{done:?}"
    );
    let status = ferry::pipeline::status::read(state.as_ref(), "test-job", Some(&run), later)
        .await
        .unwrap();
    assert_eq!(status.phase, ferry::pipeline::status::Phase::UpToDate);
    assert_eq!(status.behind_seconds, None);
    assert_eq!(
        (done.tasks_done, done.tally.objects, done.tally.copied),
        (1, 1, 1),
        "{done:?}"
    );
    assert_eq!(
        world
            .dest
            .object_bytes(DEST, "photos/a b.jpg")
            .await
            .as_deref(),
        Some(&b"the photo"[..])
    );
    assert_eq!(
        world.dest.counters().operation("PutObject"),
        1,
        "copied once"
    );

    // The message again, redelivered after all that: done, so nothing is issued or sent.
    let again = intake::handle_batch(&rt, "test-job", &[delivery(2)]).await;
    assert!(again[0].is_ok(), "{again:?}");
    let after: Progress = read_json(state.as_ref(), &layout::progress("test-job", &run))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((after.tasks_done, after.pending.len()), (1, 0), "{after:?}");
    let resent = lost_work
        .receive(10, Duration::from_millis(200))
        .await
        .unwrap();
    assert!(resent.is_empty(), "{resent:?}");
}

/// An event whose object cannot be written is counted failed, and the follower lists it — key,
/// outcome and reason — in the event run's failures.csv, beside the events that were copied.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_runs_failures_are_listed_by_key_with_the_reason() {
    use crate::support::pipeline_support::{SOURCE, World};
    use ferry::queue::Queue;
    use ferry::queue::memory::{MemoryQueue, QueueSettings};
    use std::sync::Arc;

    let mut world = World::start().await;
    world.put("in/ok.txt", b"fine".to_vec()).await;
    world.put("in/refused.txt", b"refused".to_vec()).await;
    world
        .dest
        .add_fault(oss_emulator::FaultRule::error("PutObject", 403).key_prefix("in/refused"))
        .unwrap();
    let job = world.job(serde_json::json!({}));
    let dir = tempfile::tempdir().unwrap();
    let events = Arc::new(MemoryQueue::new(
        "events",
        QueueSettings {
            visibility_timeout: Duration::from_secs(3600),
            max_receives: None,
        },
    ));
    for key in ["in/ok.txt", "in/refused.txt"] {
        events
            .send_batch(&[created_event(SOURCE, key)])
            .await
            .unwrap();
    }
    let mut options = ferry::pipeline::standalone::Options::new(dir.path());
    options.workers = 2;
    let until = ferry::pipeline::follow::Until {
        idle: Some(Duration::from_secs(2)),
    };
    let follow =
        ferry::pipeline::follow::follow(&job, options, Arc::new(world.secrets()), events, until);
    let followed = tokio::time::timeout(Duration::from_secs(60), follow)
        .await
        .expect("the follower goes idle within a minute")
        .expect("the follower runs");
    let [run] = followed.runs.as_slice() else {
        panic!("{followed:?}")
    };
    assert_eq!((run.tally.copied, run.tally.failed), (1, 1), "{run:?}");
    assert_eq!(followed.failures, [(run.run.clone(), 1)]);
    let csv = std::fs::read_to_string(
        ferry::pipeline::standalone::run_dir(dir.path(), "test-job", &run.run).join("failures.csv"),
    )
    .unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(
        rows[1].starts_with("in/refused.txt,7,failed,") && rows[1].contains("403"),
        "{csv}"
    );
}

/// `events.delete_policy: propagate` (issue 9 point 2): a delete at the source removes the
/// destination's copy only when ferry wrote it; an object an application wrote at OSS stays; a
/// key deleted and written again at once ends with the new object; a key that never reached
/// the destination is counted. moto's S3 sends the real notifications.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deletes_propagate_only_to_objects_ferry_wrote() {
    let world = FollowWorld::start(
        "follow-deletes",
        serde_json::json!({ "events": { "delete_policy": "propagate" } }),
    )
    .await;
    let dst = "follow-dst";
    for key in ["del/ferry.txt", "del/again.txt", "keep/app.txt"] {
        world.put(key, format!("{key} v1").into_bytes()).await;
    }
    let first = world.follow(&world.url).await;
    assert_eq!(first.runs[0].tally.copied, 3, "{first:?}");

    // An application writes one key at OSS itself (no stamp of ferry's).
    let app = b"the application's own object".to_vec();
    world
        .dest
        .put_object(dst, "keep/app.txt", app.clone())
        .await
        .unwrap();
    // The destination's answer to ferry's delete of del/ferry.txt is lost after the delete ran.
    let lost = oss_emulator::FaultRule::reset("DeleteObject")
        .after_response()
        .key_prefix("del/ferry.txt")
        .count(1);
    world.dest.add_fault(lost).unwrap();
    // Deletes at the source; one key written again right away; one never copied.
    for key in ["del/ferry.txt", "del/again.txt", "keep/app.txt"] {
        world
            .s3
            .delete_object()
            .bucket(&world.bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    }
    world
        .put("del/again.txt", b"del/again.txt v2".to_vec())
        .await;
    world.put("gone/never.txt", b"short-lived".to_vec()).await;
    world
        .s3
        .delete_object()
        .bucket(&world.bucket)
        .key("gone/never.txt")
        .send()
        .await
        .unwrap();
    let second = world.follow(&world.url).await;

    let at = |key: &'static str| world.dest.object_bytes(dst, key);
    assert_eq!(
        at("del/ferry.txt").await,
        None,
        "ferry's copy of a deleted key goes"
    );
    assert_eq!(at("keep/app.txt").await.as_deref(), Some(app.as_slice()));
    assert_eq!(
        at("del/again.txt").await.as_deref(),
        Some(b"del/again.txt v2".as_slice()),
        "a key written again after its delete is at the destination"
    );
    assert_eq!(at("gone/never.txt").await, None);
    assert_eq!(
        world.dest.counters().faults("DeleteObject"),
        1,
        "the delete's answer was lost once"
    );
    let t: ferry::pipeline::message::Tally =
        second.runs.iter().fold(Default::default(), |mut sum, run| {
            sum.merge(&run.tally);
            sum
        });
    assert_eq!((t.failed, t.needs_restore), (0, 0), "{second:?}");
}

/// ObjectRestore:Completed (issue 9 point 2): an archived object the event path counted as
/// needing a restore is copied when S3 says its restore completed — nobody runs the job again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_archived_object_is_copied_when_its_restore_completes() {
    use aws_sdk_s3::types::{RestoreRequest, StorageClass};

    let world = FollowWorld::start("follow-restore", serde_json::json!({})).await;
    let body = b"frozen until restored".to_vec();
    world
        .s3
        .put_object()
        .bucket(&world.bucket)
        .key("cold/a.bin")
        .storage_class(StorageClass::Glacier)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let first = world.follow(&world.url).await;
    assert_eq!(first.runs[0].tally.needs_restore, 1, "{first:?}");
    assert_eq!(
        world.dest.object_bytes("follow-dst", "cold/a.bin").await,
        None
    );

    // moto notifies ObjectRestore:Completed when the object's state is next read after the
    // restore request: here, by the HEAD an operator polling the restore would send.
    world
        .s3
        .restore_object()
        .bucket(&world.bucket)
        .key("cold/a.bin")
        .restore_request(RestoreRequest::builder().days(1).build())
        .send()
        .await
        .unwrap();
    let head = world
        .s3
        .head_object()
        .bucket(&world.bucket)
        .key("cold/a.bin");
    let restore = head.send().await.unwrap().restore().map(str::to_owned);
    assert!(
        restore
            .as_deref()
            .is_some_and(|r| r.contains("ongoing-request=\"false\"")),
        "{restore:?}"
    );
    let second = world.follow(&world.url).await;
    let at_dest = world.dest.object_bytes("follow-dst", "cold/a.bin").await;
    assert_eq!(at_dest.as_deref(), Some(body.as_slice()), "{second:?}");
    assert_eq!(second.messages, 1, "the restore's notification: {second:?}");
    let t = &second.runs[0].tally;
    assert_eq!((t.copied, t.failed), (1, 0), "{t:?}");
}
