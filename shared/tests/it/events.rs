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
