//! The `Queue` port: how shard tasks reach transfer workers and chunk results reach the verifier.
//!
//! The semantics are SQS's, because that is what distributed mode runs on, and the standalone
//! queue imitates them so the same roles are tested against the same behaviour:
//!
//! * delivery is at least once: a received message stays invisible for the visibility timeout
//!   and comes back unless it is acknowledged;
//! * order is not kept;
//! * each delivery counts; after `max_receives` deliveries a message moves to the dead-letter
//!   queue, if there is one.
//!
//! Adapters: [`memory`] (standalone mode, tests) and [`sqs`] (aws-sdk-sqs). Both refuse an empty
//! body and a body over [`MAX_MESSAGE_BYTES`] before sending anything.
//!
//! Where the adapters differ (callers must not rely on either behaviour):
//!
//! * acknowledging or handing back with a *stale* receipt (the message was delivered again
//!   since): the memory queue ignores it; SQS (and moto) may still delete the message or change
//!   its visibility;
//! * one `receive` returns at most 10 messages from SQS, any number from the memory queue.

pub mod memory;
pub mod sqs;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// One delivery of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The message's id; the same on every delivery of that message.
    pub id: String,
    /// Names this delivery for [`Queue::ack`] and [`Queue::nack`].
    pub receipt: String,
    /// The message body.
    pub body: String,
    /// How many times the message has been delivered, this delivery included.
    pub receive_count: u32,
}

/// A queue failed. Messages are never lost by a failed call: a failed send sends nothing the
/// caller is told was sent, and an unacknowledged message is delivered again.
#[derive(Debug, thiserror::Error)]
#[error("queue {queue}: {message}")]
pub struct QueueError {
    /// Whether the failure is worth retrying, or the message too large.
    pub kind: QueueErrorKind,
    /// The queue, as [`Queue::describe`] names it.
    pub queue: String,
    /// What went wrong.
    pub message: String,
}

/// The kind of a [`QueueError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueErrorKind {
    /// Worth retrying (throttling, 5xx, connection errors).
    Transient,
    /// A message is larger than the queue accepts.
    TooLarge,
    /// Anything else (missing queue, access denied, bad receipt).
    Permanent,
}

impl QueueError {
    /// An error of `kind` from `queue`.
    pub fn new(kind: QueueErrorKind, queue: impl Into<String>, message: impl Into<String>) -> Self {
        QueueError {
            kind,
            queue: queue.into(),
            message: message.into(),
        }
    }
}

/// What the queue's calls return.
pub type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, QueueError>> + Send + 'a>>;

/// The largest message body any adapter accepts (SQS's limit), in bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// A work or results queue. Object-safe so roles hold `Arc<dyn Queue>`.
pub trait Queue: Send + Sync {
    /// A short description for logs (`sqs:https://…/ferry-work`, `memory:work`).
    fn describe(&self) -> String;

    /// Sends every body (any number; adapters split into batches the service accepts). Returns
    /// only when all were accepted; on error, none of the bodies may be assumed sent.
    fn send_batch<'a>(&'a self, bodies: &'a [String]) -> Fut<'a, ()>;

    /// Up to `max` messages, waiting up to `wait` for the first one. Returns as soon as at least
    /// one message is there; an empty list means none came within `wait`.
    fn receive(&self, max: usize, wait: Duration) -> Fut<'_, Vec<Delivery>>;

    /// Deletes delivered messages: their work is done. Receipts of messages already deleted are
    /// accepted (a retried ack succeeds).
    fn ack<'a>(&'a self, receipts: &'a [String]) -> Fut<'a, ()>;

    /// Gives a delivery back: the message becomes visible again after `delay`.
    fn nack<'a>(&'a self, receipt: &'a str, delay: Duration) -> Fut<'a, ()>;
}

/// Refuses the bodies no adapter may send: empty ones (SQS needs at least one character) and
/// ones over [`MAX_MESSAGE_BYTES`]. Checked before anything is sent, so a refused batch sends
/// nothing.
pub(crate) fn check_bodies(queue: &str, bodies: &[String]) -> Result<(), QueueError> {
    for (index, body) in bodies.iter().enumerate() {
        if body.is_empty() {
            return Err(QueueError::new(
                QueueErrorKind::Permanent,
                queue,
                format!(
                    "message {index} of the batch has an empty body; a message needs at least \
                     one character; nothing was sent"
                ),
            ));
        }
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(QueueError::new(
                QueueErrorKind::TooLarge,
                queue,
                format!(
                    "message {index} of the batch is {} bytes, over the {MAX_MESSAGE_BYTES}-byte limit; \
                     store large payloads in the state store and send a pointer; nothing was sent",
                    body.len()
                ),
            ));
        }
    }
    Ok(())
}
