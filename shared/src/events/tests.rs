//! The shapes AWS delivers, written as AWS documents them (with sequencers, user identity and
//! request parameters, which moto leaves out); moto's own bodies are read in
//! `tests/it/events.rs`.

use proptest::prelude::*;
use serde_json::json;

use super::*;

/// An S3 event notification record as S3 sends it to SQS.
fn record(name: &str, key: &str, sequencer: &str) -> Value {
    json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "eu-west-1",
        "eventTime": "2026-11-30T08:15:02.123Z",
        "eventName": name,
        "userIdentity": { "principalId": "AWS:AIDAEXAMPLE" },
        "requestParameters": { "sourceIPAddress": "203.0.113.9" },
        "responseElements": { "x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD" },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "ferry-events",
            "bucket": { "name": "photos", "ownerIdentity": { "principalId": "A3NL1KOZZKExample" }, "arn": "arn:aws:s3:::photos" },
            "object": { "key": key, "size": 1024, "eTag": "d41d8cd98f00b204e9800998ecf8427e", "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko", "sequencer": sequencer }
        }
    })
}

fn notification(records: Vec<Value>) -> String {
    json!({ "Records": records }).to_string()
}

/// An SNS notification carrying `message`, as SNS delivers it to SQS with raw delivery off.
fn sns(message: &str) -> String {
    json!({
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:photos-events",
        "Subject": "Amazon S3 Notification",
        "Message": message,
        "Timestamp": "2026-11-30T08:15:02.456Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6bkkOxYDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q=",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:eu-west-1:123456789012:photos-events:0b1f6a72"
    })
    .to_string()
}

/// An EventBridge event from S3, as a rule delivers it to SQS.
fn bridge(detail_type: &str, key: &str) -> String {
    json!({
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-11-30T08:15:02Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:s3:::photos"],
        "detail": {
            "version": "0",
            "bucket": { "name": "photos" },
            "object": { "key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184", "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e", "sequencer": "00617F08299329D189" },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject"
        }
    })
    .to_string()
}

#[test]
fn an_s3_notification_keeps_what_ordering_and_checks_need() {
    let body = notification(vec![
        record(
            "ObjectCreated:Put",
            "red+flower%2Bthorn.jpg",
            "0055AED6DCD90281E5",
        ),
        record(
            "ObjectRemoved:DeleteMarkerCreated",
            "a/b",
            "0055AED6DCD90281E6",
        ),
        record("ObjectRestore:Completed", "cold/x", "0A"),
        record("ObjectTagging:Put", "a/b", "0B"),
    ]);
    let events = parse(&body).unwrap();
    let kinds: Vec<&EventKind> = events.iter().map(|e| &e.kind).collect();
    use EventKind::*;
    assert_eq!(kinds, [&Created, &Removed, &RestoreCompleted, &Other]);
    let first = &events[0];
    assert_eq!(first.key, "red flower+thorn.jpg");
    assert_eq!(first.bucket, "photos");
    assert_eq!(first.name, "ObjectCreated:Put");
    assert_eq!(first.size, Some(1024));
    assert_eq!(
        first.etag.as_deref(),
        Some("d41d8cd98f00b204e9800998ecf8427e")
    );
    assert_eq!(
        first.version_id.as_deref(),
        Some("096fKKXTRTtl3on89fVO.nfljtsv6qko")
    );
    assert_eq!(first.sequencer.as_deref(), Some("0055AED6DCD90281E5"));
    assert!(first.time.is_some());
}

#[test]
fn sns_wrapped_and_raw_deliveries_read_the_same() {
    let inner = notification(vec![record(
        "ObjectCreated:CompleteMultipartUpload",
        "k%C3%BC+1",
        "01",
    )]);
    let raw = parse(&inner).unwrap();
    let wrapped = parse(&sns(&inner)).unwrap();
    assert_eq!(raw, wrapped);
    assert_eq!(raw[0].key, "kü 1");
}

#[test]
fn the_test_event_asks_for_nothing() {
    let test = json!({
        "Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-30T08:00:00.000Z",
        "Bucket": "photos", "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"
    })
    .to_string();
    assert_eq!(parse(&test).unwrap(), []);
    assert_eq!(parse(&sns(&test)).unwrap(), [], "through SNS too");
}

#[test]
fn eventbridge_events_read_like_notifications() {
    let created = parse(&bridge("Object Created", "red+flower%2Bthorn.jpg")).unwrap();
    assert_eq!(created.len(), 1);
    let e = &created[0];
    assert_eq!(e.kind, EventKind::Created);
    assert_eq!(e.key, "red flower+thorn.jpg");
    assert_eq!(e.sequencer.as_deref(), Some("00617F08299329D189"));
    assert_eq!(
        e.version_id.as_deref(),
        Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e")
    );
    assert_eq!(e.size, Some(5));
    let kind = |t| parse(&bridge(t, "k")).unwrap()[0].kind.clone();
    assert_eq!(kind("Object Deleted"), EventKind::Removed);
    assert_eq!(
        kind("Object Restore Completed"),
        EventKind::RestoreCompleted
    );
    assert_eq!(kind("Object Tags Added"), EventKind::Other);
}

/// Every message that is not a source event is poison, with a reason that says what it was.
#[test]
fn anything_else_is_poison_with_a_reason() {
    let cases = [
        ("not json", "not JSON"),
        ("[1, 2]", "not an object"),
        (r#"{"hello": "world"}"#, "[\"hello\"]"),
        (
            r#"{"Records": [{"eventName": "ObjectCreated:Put"}]}"#,
            "does not parse",
        ),
        (
            &notification(vec![{
                let mut r = record("ObjectCreated:Put", "k", "01");
                r["eventSource"] = json!("aws:dynamodb");
                r
            }]),
            "aws:dynamodb",
        ),
        (
            &notification(vec![record("ObjectCreated:Put", "%FF%FE", "01")]),
            "UTF-8",
        ),
        (&sns("not json either"), "SNS notification's Message"),
        (&sns(&sns("{}")), "SNS notification's Message"),
        (
            &bridge("Object Created", "k").replace("aws.s3", "aws.ec2"),
            "aws.ec2",
        ),
        (
            &bridge("Object Created", "k").replace("\"bucket\"", "\"pail\""),
            "detail does not parse",
        ),
    ];
    for (body, reason) in cases {
        let Poison(why) = parse(body).expect_err(body);
        assert!(why.contains(reason), "{body}: {why}");
    }
}

#[test]
fn sequencers_compare_after_padding() {
    use std::cmp::Ordering::*;
    assert_eq!(
        sequencer_order("0055AED6DCD90281E5", "0055AED6DCD90281E6"),
        Less
    );
    assert_eq!(
        sequencer_order("FF", "0100"),
        Less,
        "the shorter is padded, not truncated"
    );
    assert_eq!(sequencer_order("0a", "0A"), Equal);
}

/// S3's form encoding of a key, as the notification documents it.
fn form_encode(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%20", "+")
}

proptest! {
    /// Whatever the key, what S3 sends decodes back to it, in both shapes.
    #[test]
    fn any_key_decodes_back(key in "\\PC{1,40}") {
        let body = notification(vec![record("ObjectCreated:Put", &form_encode(&key), "01")]);
        prop_assert_eq!(&parse(&body).unwrap()[0].key, &key);
        let body = bridge("Object Created", &form_encode(&key));
        prop_assert_eq!(&parse(&body).unwrap()[0].key, &key);
    }
}
