//! The in-process adapter of the [`Queue`] port: standalone runs and tests.
//!
//! [`MemoryQueue`] imitates a standard SQS queue closely enough that the roles behave the same on
//! both:
//!
//! * a received message is hidden for the visibility timeout and becomes visible again unless it
//!   is acknowledged; every delivery raises its receive count;
//! * with a dead-letter queue ([`MemoryQueue::with_dead_letter`]) and
//!   [`QueueSettings::max_receives`] = N, a message already delivered N times moves to the
//!   dead-letter queue when it would be delivered the (N+1)-th time, as SQS's redrive policy does.
//!   It keeps its id there and starts with a receive count of 0. Without a dead-letter queue
//!   `max_receives` does nothing (SQS has no limit without a redrive policy either);
//! * `receive` waits (long polling) until a message is sent, handed back, or reappears.
//!
//! Deliberate differences from SQS: messages come out in the order they became visible; one
//! receive may return more than 10; an ack or nack with a *stale* receipt (the message was
//! delivered again since) changes nothing, so a worker whose lease ran out can never delete the
//! delivery another worker now holds. (SQS may still delete the message in that case.)
//!
//! The runner of a standalone run learns that no work is left from [`MemoryQueue::counts`] and
//! [`MemoryQueue::is_empty`]: a queue is empty when no message is visible and none is in flight.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Delivery, Fut, Queue, QueueError, QueueErrorKind, check_bodies};

/// How a [`MemoryQueue`] treats deliveries (the SQS queue attributes of the same names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSettings {
    /// How long a received, unacknowledged message stays hidden before it is delivered again.
    pub visibility_timeout: Duration,
    /// Deliveries after which a message moves to the dead-letter queue (SQS `maxReceiveCount`).
    /// Only applies with a dead-letter queue.
    pub max_receives: Option<u32>,
}

impl Default for QueueSettings {
    /// SQS's defaults: 30 s visibility, no redrive.
    fn default() -> Self {
        QueueSettings {
            visibility_timeout: Duration::from_secs(30),
            max_receives: None,
        }
    }
}

/// How many messages a [`MemoryQueue`] holds, by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Ready to be received now (SQS `ApproximateNumberOfMessages`).
    pub visible: usize,
    /// Received and neither acknowledged nor timed out yet, or handed back with a delay
    /// (SQS `ApproximateNumberOfMessagesNotVisible`).
    pub in_flight: usize,
}

/// An in-process queue with SQS semantics. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct MemoryQueue {
    name: String,
    settings: QueueSettings,
    dead_letter: Option<Arc<MemoryQueue>>,
    state: Mutex<State>,
    /// Wakes waiting receivers when a message becomes visible through a call (send, nack).
    /// Messages that reappear after their timeout are found by the receivers' own timers.
    arrived: Notify,
}

/// Message keys and delivery numbers, unique in the process so ids and receipts never repeat,
/// also across queues (a message moved to a dead-letter queue keeps its id).
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);
static NEXT_DELIVERY: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Default)]
struct State {
    messages: HashMap<u64, Stored>,
    /// Keys in the order they became visible. May hold keys since acknowledged or delivered;
    /// those are skipped when popped (see `Stored::hidden_until`).
    visible: VecDeque<u64>,
    /// Hidden messages by the time they reappear.
    hidden: BTreeSet<(Instant, u64)>,
}

#[derive(Debug)]
struct Stored {
    id: String,
    body: String,
    receive_count: u32,
    /// The receipt of the latest delivery; the only one ack and nack act on.
    receipt: Option<String>,
    /// `Some` while the message is hidden (in `State::hidden`), `None` while visible.
    hidden_until: Option<Instant>,
}

impl MemoryQueue {
    /// An empty queue. `name` appears in [`Queue::describe`] and in errors.
    pub fn new(name: impl Into<String>, settings: QueueSettings) -> MemoryQueue {
        MemoryQueue {
            name: name.into(),
            settings,
            dead_letter: None,
            state: Mutex::new(State::default()),
            arrived: Notify::new(),
        }
    }

    /// Sends messages delivered `settings.max_receives` times to `queue` instead of delivering
    /// them again.
    pub fn with_dead_letter(mut self, queue: Arc<MemoryQueue>) -> MemoryQueue {
        self.dead_letter = Some(queue);
        self
    }

    /// The queue's name, as given to [`MemoryQueue::new`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The queue's settings.
    pub fn settings(&self) -> QueueSettings {
        self.settings
    }

    /// The dead-letter queue, if one is set.
    pub fn dead_letter(&self) -> Option<&Arc<MemoryQueue>> {
        self.dead_letter.as_ref()
    }

    /// Visible and in-flight messages right now.
    pub fn counts(&self) -> QueueCounts {
        let mut state = self.lock();
        state.reveal(Instant::now());
        QueueCounts {
            visible: state.messages.len() - state.hidden.len(),
            in_flight: state.hidden.len(),
        }
    }

    /// Every message the queue holds: visible plus in flight.
    pub fn len(&self) -> usize {
        self.lock().messages.len()
    }

    /// True when no message is visible and none is in flight: nothing can be delivered any
    /// more unless someone sends.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages received and not yet acknowledged, whose visibility timeout still runs.
    pub fn in_flight(&self) -> usize {
        self.counts().in_flight
    }

    /// Messages a receive would get now.
    pub fn visible(&self) -> usize {
        self.counts().visible
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock, so a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds messages (new, or moved here from another queue) and wakes receivers.
    fn push(&self, messages: impl IntoIterator<Item = (String, String)>) {
        {
            let mut state = self.lock();
            for (id, body) in messages {
                let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
                state.messages.insert(
                    key,
                    Stored {
                        id,
                        body,
                        receive_count: 0,
                        receipt: None,
                        hidden_until: None,
                    },
                );
                state.visible.push_back(key);
            }
        }
        self.arrived.notify_waiters();
    }

    /// Takes up to `max` visible messages, moving those past `max_receives` to the dead-letter
    /// queue. Also returns when the next hidden message reappears, for the caller's wait.
    fn take(&self, max: usize) -> (Vec<Delivery>, Option<Instant>) {
        let now = Instant::now();
        let mut state = self.lock();
        state.reveal(now);
        let mut out = Vec::new();
        let mut dead = Vec::new();
        let State {
            messages,
            visible,
            hidden,
        } = &mut *state;
        while out.len() < max {
            let Some(key) = visible.pop_front() else {
                break;
            };
            let Some(message) = messages.get_mut(&key) else {
                continue; // acknowledged while visible
            };
            if message.hidden_until.is_some() {
                continue; // a stale entry: delivered since it was queued here
            }
            if self.exhausted(message.receive_count) {
                if let Some(message) = messages.remove(&key) {
                    dead.push((message.id, message.body));
                }
                continue;
            }
            let until = now + self.settings.visibility_timeout;
            hidden.insert((until, key));
            out.push(message.deliver(key, until));
        }
        let next = state.hidden.first().map(|(at, _)| *at);
        // Lock order is always queue → its dead-letter queue, and a queue can only take a
        // dead-letter queue built before it, so there is no cycle to deadlock on.
        if let (Some(dlq), false) = (&self.dead_letter, dead.is_empty()) {
            dlq.push(dead);
        }
        (out, next)
    }

    fn exhausted(&self, receive_count: u32) -> bool {
        match (self.settings.max_receives, &self.dead_letter) {
            (Some(limit), Some(_)) => receive_count >= limit,
            _ => false,
        }
    }

    /// The key a receipt names, or an error for a receipt this adapter never issues.
    fn receipt_key(&self, receipt: &str) -> Result<u64, QueueError> {
        receipt
            .split_once(':')
            .and_then(|(key, _)| key.parse().ok())
            .ok_or_else(|| {
                QueueError::new(
                    QueueErrorKind::Permanent,
                    self.describe(),
                    format!(
                        "receipt {receipt:?} is not a receipt of a memory queue; pass the \
                         `receipt` of a Delivery this queue returned"
                    ),
                )
            })
    }
}

impl State {
    /// Makes hidden messages whose time has come visible again.
    fn reveal(&mut self, now: Instant) {
        while let Some(&(at, key)) = self.hidden.first() {
            if at > now {
                break;
            }
            self.hidden.pop_first();
            if let Some(message) = self.messages.get_mut(&key) {
                message.hidden_until = None;
                self.visible.push_back(key);
            }
        }
    }

    /// The message `receipt` names if that receipt is its latest delivery.
    fn current(&mut self, key: u64, receipt: &str) -> Option<&mut Stored> {
        self.messages
            .get_mut(&key)
            .filter(|m| m.receipt.as_deref() == Some(receipt))
    }
}

impl Stored {
    /// One more delivery: a new receipt, one more receive, hidden until `until` (the caller
    /// records it in `State::hidden`).
    fn deliver(&mut self, key: u64, until: Instant) -> Delivery {
        let delivery = NEXT_DELIVERY.fetch_add(1, Ordering::Relaxed);
        let receipt = format!("{key}:{delivery}");
        self.receive_count += 1;
        self.receipt = Some(receipt.clone());
        self.hidden_until = Some(until);
        Delivery {
            id: self.id.clone(),
            receipt,
            body: self.body.clone(),
            receive_count: self.receive_count,
        }
    }
}

impl Queue for MemoryQueue {
    fn describe(&self) -> String {
        format!("memory:{}", self.name)
    }

    fn send_batch<'a>(&'a self, bodies: &'a [String]) -> Fut<'a, ()> {
        Box::pin(async move {
            check_bodies(&self.describe(), bodies)?;
            self.push(bodies.iter().map(|body| {
                let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
                (format!("m{key}"), body.clone())
            }));
            Ok(())
        })
    }

    fn receive(&self, max: usize, wait: Duration) -> Fut<'_, Vec<Delivery>> {
        Box::pin(async move {
            let deadline = Instant::now() + wait;
            loop {
                // Registered before looking, so a send between the look and the wait still
                // wakes this receiver.
                let arrived = self.arrived.notified();
                tokio::pin!(arrived);
                arrived.as_mut().enable();
                let (batch, next_reveal) = self.take(max);
                if !batch.is_empty() || max == 0 || Instant::now() >= deadline {
                    return Ok(batch);
                }
                let until = next_reveal.map_or(deadline, |at| at.min(deadline));
                let _ = tokio::time::timeout_at(until, arrived).await;
            }
        })
    }

    fn ack<'a>(&'a self, receipts: &'a [String]) -> Fut<'a, ()> {
        Box::pin(async move {
            let keys = receipts
                .iter()
                .map(|r| self.receipt_key(r))
                .collect::<Result<Vec<_>, _>>()?;
            let mut state = self.lock();
            for (key, receipt) in keys.into_iter().zip(receipts) {
                let Some(message) = state.current(key, receipt) else {
                    continue; // already deleted, or delivered again since: leave it
                };
                if let Some(until) = message.hidden_until {
                    state.hidden.remove(&(until, key));
                }
                state.messages.remove(&key);
            }
            Ok(())
        })
    }

    fn nack<'a>(&'a self, receipt: &'a str, delay: Duration) -> Fut<'a, ()> {
        Box::pin(async move {
            let key = self.receipt_key(receipt)?;
            let now = Instant::now();
            {
                let mut state = self.lock();
                // Only a delivery still in flight can be handed back; for one that timed out,
                // was delivered again or was acknowledged this changes nothing.
                let Some(message) = state.current(key, receipt) else {
                    return Ok(());
                };
                let Some(until) = message.hidden_until else {
                    return Ok(());
                };
                let again = now + delay;
                message.hidden_until = Some(again);
                state.hidden.remove(&(until, key));
                state.hidden.insert((again, key));
                state.reveal(now);
            }
            if delay.is_zero() {
                self.arrived.notify_waiters();
            }
            Ok(())
        })
    }
}
