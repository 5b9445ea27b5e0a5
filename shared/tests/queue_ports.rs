//! The `Queue` port: the conformance suite (`ferry::testing::queue`), run against the memory queue and against SQS on a
//! real moto server, so the standalone and distributed modes see the same delivery semantics.
//!
//! What the roles rely on: a message is delivered, hidden while worked on, and gone once
//! acknowledged; an unacknowledged one comes back after the visibility timeout (or at once when
//! handed back) with a higher receive count; after `max_receives` deliveries it lands in the
//! dead-letter queue; batches of any size arrive whole; an oversized body is refused before
//! anything is sent; concurrent receivers never hold the same message at once.
//!
//! A test binary of its own, not a module of `it`: the concurrent-receiver check drives moto's
//! SQS hard, and beside the pipeline suites' load on two cores moto has been seen to hand one
//! message to two receivers.
//!
//! moto cannot make SendMessageBatch fail part of a batch, which SQS does under load, so those
//! tests put a small proxy in front of moto (`EntryFaults` below) that withholds chosen entries
//! from moto and reports them failed, as SQS would.

#[path = "it/support/moto.rs"]
mod moto;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::QueueAttributeName;
use ferry::queue::memory::{MemoryQueue, QueueCounts, QueueSettings};
use ferry::queue::sqs::{ENTRY_ATTEMPTS, SqsQueue};
use ferry::queue::{Queue, QueueErrorKind};
use ferry::testing::queue::{Maker, Setup, bodies, conformance, receipts, receive_n};
use moto::Moto;

// ---------------------------------------------------------------------------------------------
// memory queue

struct MemoryMaker;

impl Maker for MemoryMaker {
    fn make<'a>(
        &'a self,
        case: &'a str,
        visibility: Duration,
        max_receives: Option<u32>,
    ) -> Pin<Box<dyn Future<Output = Setup> + Send + 'a>> {
        Box::pin(async move {
            let (queue, dead) = memory_pair(case, visibility, max_receives);
            Setup { queue, dead }
        })
    }
}

fn memory_pair(
    name: &str,
    visibility: Duration,
    max_receives: Option<u32>,
) -> (Arc<MemoryQueue>, Arc<MemoryQueue>) {
    let dead = Arc::new(MemoryQueue::new(
        format!("{name}-dlq"),
        QueueSettings::default(),
    ));
    let settings = QueueSettings {
        visibility_timeout: visibility,
        max_receives,
    };
    let queue = MemoryQueue::new(name, settings).with_dead_letter(dead.clone());
    (Arc::new(queue), dead)
}

#[tokio::test]
async fn memory_queue_conforms() {
    conformance(&MemoryMaker).await;
}

#[tokio::test]
async fn memory_queue_counts_tell_a_runner_when_work_is_done() {
    let (queue, _) = memory_pair("counts", Duration::from_millis(300), None);
    assert!(queue.is_empty());
    queue
        .send_batch(&["a".to_owned(), "b".into()])
        .await
        .unwrap();
    let counts = |visible, in_flight| QueueCounts { visible, in_flight };
    assert_eq!((queue.counts(), queue.len()), (counts(2, 0), 2));

    let got = queue.receive(1, Duration::ZERO).await.unwrap();
    assert_eq!(queue.counts(), counts(1, 1));
    assert_eq!((queue.visible(), queue.in_flight()), (1, 1));
    assert!(!queue.is_empty(), "a message in flight is work not done");

    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        queue.counts(),
        counts(2, 0),
        "the timed-out delivery is visible again"
    );

    let rest = queue.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(rest.len(), 2);
    queue.ack(&receipts(&rest)).await.unwrap();
    assert!(queue.is_empty(), "{:?}", queue.counts());
    assert_eq!(got[0].receive_count, 1);
}

#[tokio::test]
async fn memory_queue_ignores_a_stale_receipt() {
    let (queue, _) = memory_pair("stale", Duration::from_millis(200), None);
    queue.send_batch(&["lease".to_owned()]).await.unwrap();
    let first = queue.receive(1, Duration::ZERO).await.unwrap();
    let second = queue.receive(1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(
        second[0].receive_count, 2,
        "delivered again after the timeout"
    );

    // The first worker's lease ran out; its late ack and nack must not touch the new delivery.
    queue
        .ack(&receipts(&first))
        .await
        .expect("a stale ack is accepted");
    queue.nack(&first[0].receipt, Duration::ZERO).await.unwrap();
    assert_eq!(
        queue.counts().in_flight,
        1,
        "the new delivery is still held"
    );

    queue.ack(&receipts(&second)).await.unwrap();
    assert!(queue.is_empty());
}

#[tokio::test]
async fn memory_queue_refuses_foreign_receipts() {
    let (queue, _) = memory_pair("foreign", Duration::from_secs(1), None);
    let err = queue.ack(&["AQEB-not-ours".to_owned()]).await.unwrap_err();
    assert_eq!(err.kind, QueueErrorKind::Permanent);
    assert!(err.to_string().contains("AQEB-not-ours"), "{err}");
    assert!(queue.nack("garbage", Duration::ZERO).await.is_err());
}

#[tokio::test]
async fn memory_queue_without_dead_letter_keeps_delivering() {
    let settings = QueueSettings {
        visibility_timeout: Duration::from_secs(5),
        max_receives: Some(1),
    };
    let queue = MemoryQueue::new("no-dlq", settings);
    queue.send_batch(&["kept".to_owned()]).await.unwrap();
    for expected in 1..=3 {
        let got = queue.receive(1, Duration::ZERO).await.unwrap();
        assert_eq!(
            got[0].receive_count, expected,
            "no dead-letter queue, no limit"
        );
        queue.nack(&got[0].receipt, Duration::ZERO).await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// SQS on moto

static QUEUES: AtomicUsize = AtomicUsize::new(0);

fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(moto::REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            moto::ACCESS_KEY_ID,
            moto::SECRET_ACCESS_KEY,
            None,
            None,
            "moto",
        ))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// Creates a queue (unique name) with `attributes`; returns its URL.
async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    case: &str,
    attributes: &[(QueueAttributeName, String)],
) -> String {
    let name = format!("{case}-{}", QUEUES.fetch_add(1, Ordering::Relaxed));
    let mut request = sqs.create_queue().queue_name(&name);
    for (key, value) in attributes {
        request = request.attributes(key.clone(), value);
    }
    let out = request.send().await.unwrap_or_else(|e| {
        panic!(
            "creating queue {name}: {}",
            aws_sdk_sqs::error::DisplayErrorContext(&e)
        )
    });
    out.queue_url().expect("queue url").to_owned()
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes");
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .expect("QueueArn")
        .clone()
}

struct SqsMaker {
    sqs: aws_sdk_sqs::Client,
}

impl Maker for SqsMaker {
    fn make<'a>(
        &'a self,
        case: &'a str,
        visibility: Duration,
        max_receives: Option<u32>,
    ) -> Pin<Box<dyn Future<Output = Setup> + Send + 'a>> {
        Box::pin(async move {
            let sqs = &self.sqs;
            let dead_url = create_queue(sqs, &format!("{case}-dlq"), &[]).await;
            let mut attributes = vec![(
                QueueAttributeName::VisibilityTimeout,
                visibility.as_secs().to_string(),
            )];
            if let Some(max) = max_receives {
                let arn = queue_arn(sqs, &dead_url).await;
                let policy = serde_json::json!({
                    "deadLetterTargetArn": arn,
                    "maxReceiveCount": max.to_string(),
                });
                attributes.push((QueueAttributeName::RedrivePolicy, policy.to_string()));
            }
            let url = create_queue(sqs, case, &attributes).await;
            Setup {
                queue: Arc::new(SqsQueue::new(sqs.clone(), url)),
                dead: Arc::new(SqsQueue::new(sqs.clone(), dead_url)),
            }
        })
    }
}

#[tokio::test]
async fn sqs_queue_conforms() {
    let moto = Moto::shared();
    conformance(&SqsMaker {
        sqs: sqs_client(&moto.endpoint()),
    })
    .await;
}

#[tokio::test]
async fn sqs_errors_name_the_queue_and_their_kind() {
    let moto = Moto::shared();
    let sqs = sqs_client(&moto.endpoint());
    let missing = format!("{}/123456789012/no-such-queue", moto.endpoint());
    let queue = SqsQueue::new(sqs, missing.clone());
    let err = queue.receive(1, Duration::ZERO).await.unwrap_err();
    assert_eq!(err.kind, QueueErrorKind::Permanent, "{err}");
    assert!(err.to_string().contains(&missing), "{err}");
    assert_eq!(queue.describe(), format!("sqs:{missing}"));

    // Nothing listens on the port: a connection failure is worth retrying.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let queue = SqsQueue::new(sqs_client(&endpoint), format!("{endpoint}/1/q"));
    let err = tokio::time::timeout(Duration::from_secs(30), queue.send_batch(&["x".to_owned()]))
        .await
        .expect("bounded")
        .unwrap_err();
    assert_eq!(err.kind, QueueErrorKind::Transient, "{err}");
    assert!(
        err.to_string().contains("1 of 1 messages were not sent"),
        "{err}"
    );
}

#[tokio::test]
async fn sqs_entries_failed_in_a_batch_are_sent_again() {
    let moto = Moto::shared();
    let direct = sqs_client(&moto.endpoint());
    let url = create_queue(&direct, "flaky", &[]).await;
    let proxy = EntryFaults::start(moto.addr(), "flaky", 2, false).await;
    let queue = SqsQueue::new(sqs_client(&proxy.endpoint()), url.clone());

    let sent: Vec<String> = (0..25)
        .map(|i| match i % 8 {
            3 => format!("flaky-{i:02}"),
            _ => format!("fine-{i:02}"),
        })
        .collect();
    queue
        .send_batch(&sent)
        .await
        .expect("failed entries retried");
    assert_eq!(proxy.withheld(), 3 * 2, "each flaky entry failed twice");

    let reader = SqsQueue::new(direct, url);
    let got = receive_n(&reader, 25, Duration::from_secs(15)).await;
    let mut expected = sent.clone();
    expected.sort();
    assert_eq!(bodies(&got), expected, "every body exactly once");
}

#[tokio::test]
async fn sqs_entries_failing_every_attempt_fail_the_call() {
    let moto = Moto::shared();
    let direct = sqs_client(&moto.endpoint());
    let url = create_queue(&direct, "failing", &[]).await;
    let proxy = EntryFaults::start(moto.addr(), "flaky", u32::MAX, false).await;
    let queue = SqsQueue::new(sqs_client(&proxy.endpoint()), url);

    let sent: Vec<String> = (0..12)
        .map(|i| match i {
            1 | 11 => format!("flaky-{i}"),
            _ => format!("fine-{i}"),
        })
        .collect();
    let err = queue.send_batch(&sent).await.unwrap_err();
    assert_eq!(err.kind, QueueErrorKind::Transient, "{err}");
    let text = err.to_string();
    assert!(text.contains("2 of 12 messages were not sent"), "{text}");
    assert!(
        text.contains(&format!("after {ENTRY_ATTEMPTS} attempts")),
        "{text}"
    );
    assert_eq!(proxy.withheld(), 2 * ENTRY_ATTEMPTS as usize);
}

#[tokio::test]
async fn sqs_entries_refused_as_malformed_are_not_retried() {
    let moto = Moto::shared();
    let direct = sqs_client(&moto.endpoint());
    let url = create_queue(&direct, "malformed", &[]).await;
    let proxy = EntryFaults::start(moto.addr(), "bad", u32::MAX, true).await;
    let queue = SqsQueue::new(sqs_client(&proxy.endpoint()), url);

    let err = queue
        .send_batch(&["good".to_owned(), "bad".into()])
        .await
        .unwrap_err();
    assert_eq!(err.kind, QueueErrorKind::Permanent, "{err}");
    assert!(
        err.to_string().contains("1 of 2 messages were not sent"),
        "{err}"
    );
    assert_eq!(proxy.withheld(), 1, "a sender fault is not tried again");
}

// ---------------------------------------------------------------------------------------------
// a proxy that fails chosen SendMessageBatch entries

/// Forwards SQS requests to moto. In SendMessageBatch requests it withholds entries whose body
/// starts with `prefix` (each body its first `times` times) and answers them as failed with
/// `InternalError`, or with `InvalidMessageContents` and SenderFault when `sender_fault`.
/// Each request arrives on its own connection (the proxy answers `Connection: close`).
struct EntryFaults {
    addr: std::net::SocketAddr,
    withheld: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

struct FaultRule {
    upstream: std::net::SocketAddr,
    prefix: String,
    times: u32,
    sender_fault: bool,
    seen: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    withheld: Arc<AtomicUsize>,
}

impl EntryFaults {
    async fn start(
        upstream: std::net::SocketAddr,
        prefix: &str,
        times: u32,
        sender_fault: bool,
    ) -> EntryFaults {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let withheld = Arc::new(AtomicUsize::new(0));
        let rule = Arc::new(FaultRule {
            upstream,
            prefix: prefix.to_owned(),
            times,
            sender_fault,
            seen: Default::default(),
            withheld: withheld.clone(),
        });
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(proxy_one(socket, rule.clone()));
            }
        });
        EntryFaults {
            addr,
            withheld,
            task,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Entries answered as failed so far.
    fn withheld(&self) -> usize {
        self.withheld.load(Ordering::SeqCst)
    }
}

impl Drop for EntryFaults {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultRule {
    /// Splits a SendMessageBatch body into what goes to moto and the entries to fail.
    fn split(&self, body: &[u8]) -> (Vec<u8>, Vec<serde_json::Value>) {
        let mut request: serde_json::Value = serde_json::from_slice(body).expect("JSON request");
        let entries = request["Entries"].as_array().cloned().unwrap_or_default();
        let mut seen = self.seen.lock().unwrap();
        let (mut kept, mut failed) = (Vec::new(), Vec::new());
        for entry in entries {
            let text = entry["MessageBody"].as_str().unwrap_or("").to_owned();
            let count = seen.entry(text.clone()).or_insert(0);
            if text.starts_with(&self.prefix) && *count < self.times {
                *count += 1;
                self.withheld.fetch_add(1, Ordering::SeqCst);
                let (code, fault) = match self.sender_fault {
                    true => ("InvalidMessageContents", true),
                    false => ("InternalError", false),
                };
                failed.push(serde_json::json!({
                    "Id": entry["Id"], "SenderFault": fault, "Code": code,
                    "Message": "withheld by the test proxy",
                }));
            } else {
                kept.push(entry);
            }
        }
        request["Entries"] = serde_json::Value::Array(kept);
        (serde_json::to_vec(&request).unwrap(), failed)
    }
}

async fn proxy_one(mut client: tokio::net::TcpStream, rule: Arc<FaultRule>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some((head, body)) = read_message(&mut client).await else {
        return;
    };
    let batch = header(&head, "x-amz-target") == Some("AmazonSQS.SendMessageBatch");
    let (body, failed) = if batch {
        rule.split(&body)
    } else {
        (body, Vec::new())
    };
    // An all-withheld batch never reaches moto, which refuses empty batches.
    let (status_line, mut response) = if batch && rule_kept_nothing(&body) {
        (
            "HTTP/1.1 200 OK".to_owned(),
            serde_json::json!({ "Successful": [] }),
        )
    } else {
        let Ok(mut upstream) = tokio::net::TcpStream::connect(rule.upstream).await else {
            return;
        };
        let head = with_length(&head, body.len());
        if upstream.write_all(&head).await.is_err() || upstream.write_all(&body).await.is_err() {
            return;
        }
        let mut answer = Vec::new();
        if upstream.read_to_end(&mut answer).await.is_err() {
            return;
        }
        if !batch {
            let _ = client.write_all(&answer).await;
            return;
        }
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("HTTP response head");
        let status = String::from_utf8_lossy(&answer[..split])
            .lines()
            .next()
            .unwrap_or("")
            .to_owned();
        let json = serde_json::from_slice(&answer[split + 4..]).unwrap_or_default();
        (status, json)
    };
    if !failed.is_empty() {
        let list = response["Failed"].as_array().cloned().unwrap_or_default();
        response["Failed"] = serde_json::Value::Array([list, failed].concat());
    }
    let body = serde_json::to_vec(&response).unwrap();
    let head = format!(
        "{status_line}\r\nContent-Type: application/x-amz-json-1.0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = client.write_all(head.as_bytes()).await;
    let _ = client.write_all(&body).await;
    let _ = client.shutdown().await;
}

fn rule_kept_nothing(body: &[u8]) -> bool {
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    request["Entries"].as_array().is_some_and(|e| e.is_empty())
}

/// Reads one HTTP request: its head (with the blank line) and its Content-Length body.
async fn read_message(stream: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut data = Vec::new();
    let mut chunk = [0u8; 16384];
    let end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let length: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = data[end..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    Some((head, body))
}

fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// The request head with its Content-Length set to `length` and the connection closed after.
fn with_length(head: &str, length: usize) -> Vec<u8> {
    let mut out = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("connection") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ));
    out.into_bytes()
}
