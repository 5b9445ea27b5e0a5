//! The SQS adapter of the [`Queue`] port (aws-sdk-sqs), for distributed runs.
//!
//! [`SqsQueue::new`] takes a ready SDK client, so the caller decides region, endpoint and
//! credentials (Lambda's role in production, moto in tests). How the port's calls map:
//!
//! * `send_batch` → SendMessageBatch, split into batches of at most 10 entries and 1 MiB of
//!   bodies. SQS answers 200 even when some entries failed; those are sent again, up to
//!   [`ENTRY_ATTEMPTS`] times with backoff, before the call fails. Entries SQS blames on the
//!   sender (malformed body, …) fail at once: sending them again cannot help.
//! * `receive` → ReceiveMessage with long polling (SQS waits at most 20 s per call and in whole
//!   seconds, so a wait is rounded up to the next second and longer waits take several calls),
//!   asking for `ApproximateReceiveCount`. At most 10 messages per call.
//! * `ack` → DeleteMessageBatch (10 receipts per call), partial failures handled as for sends.
//! * `nack` → ChangeMessageVisibility; a delivery no longer in flight is left alone, as in the
//!   memory queue.
//!
//! Dead-letter queues are SQS's own redrive policy, configured on the queue; this adapter does
//! nothing for them. Every SDK failure becomes a [`QueueError`] whose kind says whether retrying
//! later can help; the SDK's own retries have already run when one surfaces.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName,
    SendMessageBatchRequestEntry,
};
use futures_util::{StreamExt, stream};
use tokio::time::Instant;

use super::{Delivery, Fut, MAX_MESSAGE_BYTES, Queue, QueueError, QueueErrorKind, check_bodies};
use crate::backoff::Backoff;

/// Entries per SQS batch call.
const MAX_BATCH_ENTRIES: usize = 10;
/// Sum of the bodies in one SendMessageBatch (SQS's limit equals the message limit).
const MAX_BATCH_BYTES: usize = MAX_MESSAGE_BYTES;
/// Longest long poll SQS allows per ReceiveMessage.
const MAX_WAIT_SECONDS: u64 = 20;
/// Longest visibility timeout SQS allows (12 h).
const MAX_VISIBILITY_SECONDS: u64 = 12 * 60 * 60;
/// How many times one entry of a batch is tried before the call fails.
pub const ENTRY_ATTEMPTS: u32 = 5;
/// Backoff before the n-th retry of failed entries (equal jitter, from 200 ms to 6.4 s).
const ENTRY_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(200), Duration::from_millis(6_400));
/// SendMessageBatch calls in flight at once for one `send_batch`.
const SEND_CONCURRENCY: usize = 4;

/// A batch call that failed: how many of its items were not done, and why.
struct Unsent {
    count: usize,
    error: QueueError,
}

/// A queue on SQS, named by its URL.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    /// The queue at `queue_url` (`https://sqs.<region>.amazonaws.com/<account>/<name>`), reached
    /// through `client`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> SqsQueue {
        SqsQueue {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// The queue's URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Sends one batch (≤ 10 entries, ≤ 1 MiB). On failure, also says how many of its bodies
    /// were not accepted.
    async fn send_one(&self, bodies: &[String]) -> Result<(), Unsent> {
        self.with_entry_retries("SendMessageBatch", bodies, |pending| async move {
            let entries = pending
                .into_iter()
                .map(|(id, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(id)
                        .message_body(body.as_str())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.error(QueueErrorKind::Permanent, e.to_string()))?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.classify("SendMessageBatch", e))?;
            Ok(out.failed().to_vec())
        })
        .await
    }

    async fn delete_one(&self, receipts: &[String]) -> Result<(), Unsent> {
        self.with_entry_retries("DeleteMessageBatch", receipts, |pending| async move {
            let entries = pending
                .into_iter()
                .map(|(id, receipt)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(id)
                        .receipt_handle(receipt.as_str())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.error(QueueErrorKind::Permanent, e.to_string()))?;
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.classify("DeleteMessageBatch", e))?;
            Ok(out.failed().to_vec())
        })
        .await
    }

    /// Runs one batch call (`call` gets `(entry id, item)` pairs and returns the failed entries)
    /// and calls it again with just the failed entries until none fail, an entry fails by the
    /// sender's fault, or [`ENTRY_ATTEMPTS`] run out.
    async fn with_entry_retries<'i, F, R>(
        &self,
        operation: &str,
        items: &'i [String],
        call: F,
    ) -> Result<(), Unsent>
    where
        F: Fn(Vec<(String, &'i String)>) -> R,
        R: Future<Output = Result<Vec<BatchResultErrorEntry>, QueueError>>,
    {
        let mut pending: Vec<(String, &String)> = items
            .iter()
            .enumerate()
            .map(|(i, item)| (i.to_string(), item))
            .collect();
        for attempt in 1..=ENTRY_ATTEMPTS {
            let failed = call(pending.clone()).await.map_err(|error| Unsent {
                count: pending.len(),
                error,
            })?;
            let Some(first) = failed.first() else {
                return Ok(());
            };
            let last = entry_error(failed.iter().find(|f| f.sender_fault()).unwrap_or(first));
            if failed.iter().any(|f| f.sender_fault()) {
                return Err(Unsent {
                    count: failed.len(),
                    error: self.error(
                        QueueErrorKind::Permanent,
                        format!("SQS {operation} refused entries as malformed ({last})"),
                    ),
                });
            }
            let failed_ids: HashSet<&str> = failed.iter().map(|f| f.id()).collect();
            pending.retain(|(id, _)| failed_ids.contains(id.as_str()));
            if pending.is_empty() || attempt == ENTRY_ATTEMPTS {
                return Err(Unsent {
                    count: failed.len(),
                    error: self.error(
                        QueueErrorKind::Transient,
                        format!(
                            "SQS {operation} entries still failed after {attempt} attempts \
                             ({last})"
                        ),
                    ),
                });
            }
            tokio::time::sleep(ENTRY_BACKOFF.equal_jitter(attempt)).await;
        }
        Ok(())
    }

    /// One error for a whole `send_batch` or `ack`: how many of `total` items were not done,
    /// and why (the first failure; Permanent wins over Transient, so a retry is not suggested
    /// for what cannot succeed).
    fn combine(
        &self,
        operation: &str,
        total: usize,
        failures: Vec<Unsent>,
    ) -> Result<(), QueueError> {
        let count: usize = failures.iter().map(|u| u.count).sum();
        let Some(worst) = failures
            .into_iter()
            .max_by_key(|u| u.error.kind == QueueErrorKind::Permanent)
        else {
            return Ok(());
        };
        let advice = match worst.error.kind {
            QueueErrorKind::Transient => "retry the whole call later",
            _ => "retrying will not help",
        };
        Err(self.error(
            worst.error.kind,
            format!(
                "{count} of {total} messages were not {operation}: {}; {advice}",
                worst.error.message
            ),
        ))
    }

    fn delivery(&self, message: &Message) -> Result<Delivery, QueueError> {
        let field = |value: Option<&str>, name: &str| {
            value.map(str::to_owned).ok_or_else(|| {
                self.error(
                    QueueErrorKind::Permanent,
                    format!("SQS ReceiveMessage returned a message without {name}"),
                )
            })
        };
        let receive_count = message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        Ok(Delivery {
            id: field(message.message_id(), "a MessageId")?,
            receipt: field(message.receipt_handle(), "a ReceiptHandle")?,
            body: field(message.body(), "a Body")?,
            receive_count,
        })
    }

    fn error(&self, kind: QueueErrorKind, message: impl Into<String>) -> QueueError {
        QueueError::new(kind, self.describe(), message)
    }

    /// Turns an SDK failure into a [`QueueError`] naming the operation, HTTP status, SQS error
    /// code and request id, by the one policy in [`crate::aws`].
    fn classify<E>(&self, operation: &str, err: SdkError<E, HttpResponse>) -> QueueError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        use crate::aws::Kind;
        let failure = crate::aws::read(&err);
        let kind = match failure.kind {
            Kind::TooLarge => QueueErrorKind::TooLarge,
            k if k.may_pass() => QueueErrorKind::Transient,
            _ => QueueErrorKind::Permanent,
        };
        self.error(kind, format!("SQS {operation} failed: {}", failure.text))
    }
}

impl Queue for SqsQueue {
    fn describe(&self) -> String {
        format!("sqs:{}", self.queue_url)
    }

    fn send_batch<'a>(&'a self, bodies: &'a [String]) -> Fut<'a, ()> {
        Box::pin(async move {
            check_bodies(&self.describe(), bodies)?;
            let sends: Vec<_> = batches(bodies)
                .into_iter()
                .map(|batch| self.send_one(batch))
                .collect();
            // Every batch runs to its end, so the error can say how many were not sent.
            let failures: Vec<Unsent> = stream::iter(sends)
                .buffer_unordered(SEND_CONCURRENCY)
                .filter_map(|result| async move { result.err() })
                .collect()
                .await;
            self.combine("sent", bodies.len(), failures)
        })
    }

    fn receive(&self, max: usize, wait: Duration) -> Fut<'_, Vec<Delivery>> {
        Box::pin(async move {
            if max == 0 {
                return Ok(Vec::new());
            }
            let max = max.min(MAX_BATCH_ENTRIES) as i32;
            let deadline = Instant::now() + wait;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let out = self
                    .client
                    .receive_message()
                    .queue_url(&self.queue_url)
                    .max_number_of_messages(max)
                    .wait_time_seconds(poll_seconds(left))
                    .message_system_attribute_names(
                        MessageSystemAttributeName::ApproximateReceiveCount,
                    )
                    .send()
                    .await
                    .map_err(|e| self.classify("ReceiveMessage", e))?;
                let deliveries = out
                    .messages()
                    .iter()
                    .map(|m| self.delivery(m))
                    .collect::<Result<Vec<_>, _>>()?;
                if !deliveries.is_empty() || Instant::now() >= deadline {
                    return Ok(deliveries);
                }
            }
        })
    }

    fn ack<'a>(&'a self, receipts: &'a [String]) -> Fut<'a, ()> {
        Box::pin(async move {
            let mut failures = Vec::new();
            for chunk in receipts.chunks(MAX_BATCH_ENTRIES) {
                if let Err(unsent) = self.delete_one(chunk).await {
                    failures.push(unsent);
                }
            }
            self.combine("acknowledged", receipts.len(), failures)
        })
    }

    fn nack<'a>(&'a self, receipt: &'a str, delay: Duration) -> Fut<'a, ()> {
        Box::pin(async move {
            let seconds = delay
                .as_secs_f64()
                .ceil()
                .min(MAX_VISIBILITY_SECONDS as f64) as i32;
            let result = self
                .client
                .change_message_visibility()
                .queue_url(&self.queue_url)
                .receipt_handle(receipt)
                .visibility_timeout(seconds)
                .send()
                .await;
            match result {
                Ok(_) => Ok(()),
                // Timed out or delivered again: it is not ours to hand back any more.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_message_not_inflight()) =>
                {
                    Ok(())
                }
                Err(e) => Err(self.classify("ChangeMessageVisibility", e)),
            }
        })
    }
}

/// Splits `bodies` into runs SendMessageBatch accepts: at most 10 entries and 1 MiB of bodies.
/// Every body is at most [`MAX_MESSAGE_BYTES`] (checked before), so no run is empty.
fn batches(bodies: &[String]) -> Vec<&[String]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, body) in bodies.iter().enumerate() {
        if i - start == MAX_BATCH_ENTRIES || bytes + body.len() > MAX_BATCH_BYTES {
            out.push(&bodies[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += body.len();
    }
    if start < bodies.len() {
        out.push(&bodies[start..]);
    }
    out
}

/// The long-poll time for one ReceiveMessage: what is left, rounded up to whole seconds (SQS's
/// unit), at most 20.
fn poll_seconds(left: Duration) -> i32 {
    left.as_secs_f64().ceil().min(MAX_WAIT_SECONDS as f64) as i32
}

fn entry_error(entry: &BatchResultErrorEntry) -> String {
    match entry.message() {
        Some(message) => format!("{}: {message}", entry.code()),
        None => entry.code().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(batches: &[&[String]]) -> Vec<usize> {
        batches.iter().map(|b| b.len()).collect()
    }

    #[test]
    fn batches_hold_at_most_ten_entries() {
        let bodies: Vec<String> = (0..25).map(|i| i.to_string()).collect();
        assert_eq!(sizes(&batches(&bodies)), [10, 10, 5]);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn batches_hold_at_most_one_mebibyte() {
        let big = "x".repeat(400 * 1024);
        let full = "y".repeat(MAX_MESSAGE_BYTES);
        let bodies = vec![big.clone(), big.clone(), big.clone(), full, "z".into()];
        assert_eq!(sizes(&batches(&bodies)), [2, 1, 1, 1]);
    }

    #[test]
    fn long_polls_round_up_and_stop_at_twenty_seconds() {
        assert_eq!(poll_seconds(Duration::ZERO), 0);
        assert_eq!(poll_seconds(Duration::from_millis(300)), 1);
        assert_eq!(poll_seconds(Duration::from_secs(2)), 2);
        assert_eq!(poll_seconds(Duration::from_secs(90)), 20);
    }
}
