//! The `Queue` conformance suite: the delivery semantics the roles rely on, the same in
//! standalone and distributed mode.
//!
//! A message is delivered, hidden while worked on, and gone once acknowledged; an
//! unacknowledged one comes back after the visibility timeout (or at once when handed back)
//! with a higher receive count; after `max_receives` deliveries it lands in the dead-letter
//! queue; batches of any size arrive whole; an oversized body is refused before anything is
//! sent; concurrent receivers never hold the same message at once. ferry's tests run it against
//! the memory queue and SQS on moto.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::queue::{Delivery, MAX_MESSAGE_BYTES, Queue, QueueErrorKind};

/// Every conformance run must finish within this.
const SUITE_LIMIT: Duration = Duration::from_secs(120);

/// A fresh queue for one case, with its dead-letter queue.
pub struct Setup {
    /// The queue under test.
    pub queue: Arc<dyn Queue>,
    /// Where its messages go after `max_receives` deliveries.
    pub dead: Arc<dyn Queue>,
}

/// Makes fresh, empty queues with the given visibility timeout and (for the dead-letter case)
/// maximum receives.
pub trait Maker: Sync {
    /// Queues named after `case` (each case gets its own).
    fn make<'a>(
        &'a self,
        case: &'a str,
        visibility: Duration,
        max_receives: Option<u32>,
    ) -> Pin<Box<dyn Future<Output = Setup> + Send + 'a>>;
}

/// Runs every case against queues `maker` makes. Panics (with the case's message) when a queue
/// breaks a rule; bounded in time.
pub async fn conformance(maker: &dyn Maker) {
    let suite = async {
        send_receive_ack(maker).await;
        redelivery_after_visibility_timeout(maker).await;
        dead_letter_after_max_receives(maker).await;
        batches_of_any_size(maker).await;
        too_large_and_empty_bodies_send_nothing(maker).await;
        receive_waits_for_a_send(maker).await;
        concurrent_receivers_never_share_a_message(maker).await;
    };
    tokio::time::timeout(SUITE_LIMIT, suite)
        .await
        .expect("the queue conformance suite finished in time");
}

/// Receives until `n` messages came or `limit` passed.
/// Receives until `n` messages arrived or `limit` passed.
pub async fn receive_n(queue: &dyn Queue, n: usize, limit: Duration) -> Vec<Delivery> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        let batch = queue
            .receive(10, Duration::from_secs(1))
            .await
            .expect("receive");
        assert!(
            batch.len() <= 10,
            "asked for at most 10, got {}",
            batch.len()
        );
        got.extend(batch);
    }
    got
}

/// The deliveries' bodies, sorted (queues keep no order).
pub fn bodies(deliveries: &[Delivery]) -> Vec<String> {
    let mut bodies: Vec<String> = deliveries.iter().map(|d| d.body.clone()).collect();
    bodies.sort();
    bodies
}

/// The deliveries' receipts, to acknowledge them.
pub fn receipts(deliveries: &[Delivery]) -> Vec<String> {
    deliveries.iter().map(|d| d.receipt.clone()).collect()
}

async fn send_receive_ack(maker: &dyn Maker) {
    let visibility = Duration::from_secs(1);
    let Setup { queue, .. } = maker.make("basic", visibility, None).await;
    let sent = vec!["alpha".to_owned(), "beta".into(), "gamma ü 🚢".into()];
    queue.send_batch(&sent).await.expect("send");

    let got = receive_n(&*queue, 3, Duration::from_secs(10)).await;
    assert_eq!(bodies(&got), sent, "the three bodies arrive intact");
    assert!(
        got.iter().all(|d| d.receive_count == 1),
        "first delivery: {got:?}"
    );
    let ids: HashSet<_> = got.iter().map(|d| &d.id).collect();
    let receipt_set: HashSet<_> = got.iter().map(|d| &d.receipt).collect();
    assert_eq!(
        (ids.len(), receipt_set.len()),
        (3, 3),
        "ids and receipts unique"
    );

    queue.ack(&receipts(&got)).await.expect("ack");
    queue
        .ack(&receipts(&got))
        .await
        .expect("acknowledging again succeeds");
    // Unacknowledged they would be back after the visibility timeout.
    tokio::time::sleep(visibility + Duration::from_millis(500)).await;
    let again = queue.receive(10, Duration::from_secs(1)).await.unwrap();
    assert!(
        again.is_empty(),
        "acknowledged messages came back: {again:?}"
    );
}

async fn redelivery_after_visibility_timeout(maker: &dyn Maker) {
    let visibility = Duration::from_secs(2);
    let Setup { queue, .. } = maker.make("redeliver", visibility, None).await;
    queue.send_batch(&["work".to_owned()]).await.unwrap();

    let first = receive_n(&*queue, 1, Duration::from_secs(5)).await;
    assert_eq!(first.len(), 1);
    let hidden = queue.receive(10, Duration::ZERO).await.unwrap();
    assert!(
        hidden.is_empty(),
        "a received message is hidden: {hidden:?}"
    );

    let started = Instant::now();
    let second = queue.receive(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(second.len(), 1, "redelivered after the visibility timeout");
    assert!(
        started.elapsed() >= visibility - Duration::from_millis(600),
        "redelivered too early: {:?}",
        started.elapsed()
    );
    let (a, b) = (&first[0], &second[0]);
    assert_eq!((&b.id, &b.body, b.receive_count), (&a.id, &a.body, 2));
    assert_ne!(a.receipt, b.receipt, "each delivery has its own receipt");

    // Handed back without delay it is visible at once, not after the timeout.
    queue.nack(&b.receipt, Duration::ZERO).await.expect("nack");
    let started = Instant::now();
    let third = queue.receive(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(third.len(), 1);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "a nacked message waited {:?}",
        started.elapsed()
    );
    assert_eq!((&third[0].id, third[0].receive_count), (&a.id, 3));

    // Handed back with a delay it stays hidden that long.
    queue
        .nack(&third[0].receipt, Duration::from_secs(30))
        .await
        .unwrap();
    tokio::time::sleep(visibility + Duration::from_millis(500)).await;
    let held = queue.receive(10, Duration::ZERO).await.unwrap();
    assert!(
        held.is_empty(),
        "the nack delay replaces the timeout: {held:?}"
    );
}

async fn dead_letter_after_max_receives(maker: &dyn Maker) {
    let Setup { queue, dead } = maker.make("redrive", Duration::from_secs(2), Some(2)).await;
    queue.send_batch(&["poison".to_owned()]).await.unwrap();

    let mut id = None;
    for expected in 1..=2 {
        let got = receive_n(&*queue, 1, Duration::from_secs(5)).await;
        assert_eq!(got.len(), 1, "delivery {expected}");
        assert_eq!(got[0].receive_count, expected);
        id = Some(got[0].id.clone());
        queue.nack(&got[0].receipt, Duration::ZERO).await.unwrap();
    }
    let third = queue.receive(10, Duration::from_secs(1)).await.unwrap();
    assert!(third.is_empty(), "delivered a third time: {third:?}");

    let moved = receive_n(&*dead, 1, Duration::from_secs(5)).await;
    assert_eq!(moved.len(), 1, "the message is in the dead-letter queue");
    assert_eq!(
        (moved[0].body.as_str(), Some(&moved[0].id)),
        ("poison", id.as_ref())
    );
}

async fn batches_of_any_size(maker: &dyn Maker) {
    let Setup { queue, .. } = maker.make("batch25", Duration::from_secs(30), None).await;
    let sent: Vec<String> = (0..25).map(|i| format!("task-{i:02}")).collect();
    queue
        .send_batch(&sent)
        .await
        .expect("25 bodies in one call");
    queue.send_batch(&[]).await.expect("an empty batch is fine");

    let got = receive_n(&*queue, 25, Duration::from_secs(15)).await;
    assert_eq!(bodies(&got), sent);
    let ids: HashSet<_> = got.iter().map(|d| &d.id).collect();
    assert_eq!(ids.len(), 25, "message ids are unique");
    queue
        .ack(&receipts(&got))
        .await
        .expect("25 receipts in one ack");
}

async fn too_large_and_empty_bodies_send_nothing(maker: &dyn Maker) {
    let Setup { queue, .. } = maker.make("limits", Duration::from_secs(30), None).await;
    let too_large = vec![
        "small-1".to_owned(),
        "x".repeat(MAX_MESSAGE_BYTES + 1),
        "small-2".to_owned(),
    ];
    let err = queue.send_batch(&too_large).await.unwrap_err();
    assert_eq!(err.kind, QueueErrorKind::TooLarge, "{err}");
    assert!(
        err.to_string()
            .contains(&format!("{}", MAX_MESSAGE_BYTES + 1)),
        "{err}"
    );

    let err = queue
        .send_batch(&["small-3".to_owned(), String::new()])
        .await
        .unwrap_err();
    assert_eq!(err.kind, QueueErrorKind::Permanent, "{err}");
    assert!(err.to_string().contains("empty body"), "{err}");

    let nothing = queue.receive(10, Duration::from_secs(1)).await.unwrap();
    assert!(
        nothing.is_empty(),
        "a refused batch sent: {:?}",
        bodies(&nothing)
    );

    // The limit itself is fine.
    let largest = "y".repeat(MAX_MESSAGE_BYTES);
    queue
        .send_batch(std::slice::from_ref(&largest))
        .await
        .expect("1 MiB body");
    let got = receive_n(&*queue, 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].body == largest, "the 1 MiB body arrived intact");
}

async fn receive_waits_for_a_send(maker: &dyn Maker) {
    let Setup { queue, .. } = maker.make("longpoll", Duration::from_secs(30), None).await;
    let started = Instant::now();
    let (got, _) = tokio::join!(queue.receive(10, Duration::from_secs(8)), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        queue.send_batch(&["late".to_owned()]).await.unwrap();
    });
    let got = got.unwrap();
    assert_eq!(bodies(&got), ["late"]);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the waiting receive returned only after {:?}",
        started.elapsed()
    );
}

async fn concurrent_receivers_never_share_a_message(maker: &dyn Maker) {
    let Setup { queue, .. } = maker
        .make("concurrent", Duration::from_secs(30), None)
        .await;
    let sent: Vec<String> = (0..40).map(|i| format!("shard-{i:02}")).collect();
    queue.send_batch(&sent).await.unwrap();

    let receiver = |_: usize| {
        let queue = queue.clone();
        async move {
            let mut mine = Vec::new();
            loop {
                let batch = queue.receive(3, Duration::from_secs(1)).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch);
            }
        }
    };
    let all: Vec<Delivery> = join_all((0..4).map(receiver)).await.concat();
    let ids: HashSet<_> = all.iter().map(|d| &d.id).collect();
    assert_eq!(
        ids.len(),
        all.len(),
        "a message went to two receivers at once"
    );
    assert_eq!(bodies(&all), sent, "every message was received once");
}
