//! A local stand-in for Lambda's SQS event source mapping (ESM), so the distributed pipeline can
//! run end to end on loopback: real SQS semantics (moto), the real role handlers, no Lambda.
//!
//! What it does, as Lambda does it:
//!
//! * `concurrency` pollers per queue (Lambda's `MaximumConcurrency`), each receiving up to
//!   `batch_size` messages with a short long poll and invoking the handler with the batch
//!   (bodies, message ids, `ApproximateReceiveCount`) and a deadline (the function timeout);
//! * the handler answers with the ids of the records that failed (`batchItemFailures`); the
//!   others are deleted, the failed ones are left alone and come back after the queue's
//!   visibility timeout;
//! * an invocation that outlives the function timeout, panics, or is killed is a failed
//!   invocation: nothing of its batch is deleted, and SQS delivers it again. Dead-lettering
//!   after `maxReceiveCount` is SQS's own redrive policy, configured on the queue.
//!
//! [`Esm::kill`] aborts chosen in-flight invocations mid-work (their futures are dropped, as
//! when a Lambda sandbox dies), for tests of worker loss. [`Esm::in_flight`] shows what is
//! running, and [`Esm::stats`] what happened.
//!
//! Use it from a test module with `use crate::support::esm;`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry::queue::{Delivery, Queue};
use tokio::task::{AbortHandle, JoinHandle};

/// One message of a batch, as Lambda hands it to the function.
#[derive(Clone, Debug)]
pub struct Record {
    pub message_id: String,
    pub body: String,
    /// `ApproximateReceiveCount`: deliveries of this message, this one included.
    pub receive_count: u32,
}

/// One invocation of the function.
pub struct Invocation {
    pub records: Vec<Record>,
    /// When the function would be timed out (the invocation is then dropped).
    pub deadline: Instant,
}

/// The ids of the records that failed (Lambda's `batchItemFailures`).
pub type Failures = Vec<String>;

pub type Handler =
    Arc<dyn Fn(Invocation) -> Pin<Box<dyn Future<Output = Failures> + Send>> + Send + Sync>;

/// How the mapping polls and invokes.
#[derive(Clone, Debug)]
pub struct EsmConfig {
    /// Messages per invocation (1–10, SQS's receive limit).
    pub batch_size: usize,
    /// Invocations at the same time (pollers).
    pub concurrency: usize,
    /// Long-poll time of one receive (SQS counts whole seconds; keep it short so `stop` is quick).
    pub poll_wait: Duration,
    /// The function timeout: an invocation still running then is dropped. Keep it at or below
    /// the queue's visibility timeout, as Lambda requires.
    pub function_timeout: Duration,
}

impl Default for EsmConfig {
    fn default() -> Self {
        EsmConfig {
            batch_size: 1,
            concurrency: 1,
            poll_wait: Duration::from_secs(1),
            function_timeout: Duration::from_secs(10),
        }
    }
}

/// What the mapping did, for assertions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub invocations: u64,
    /// Deliveries handed to the function.
    pub received: u64,
    pub deleted: u64,
    /// Records the function reported failed.
    pub reported_failed: u64,
    /// Invocations killed by [`Esm::kill`].
    pub killed: u64,
    /// Invocations dropped at the function timeout.
    pub timed_out: u64,
    /// Invocations whose handler panicked.
    pub panicked: u64,
    /// Receive or delete calls that failed (retried by polling again).
    pub queue_errors: u64,
}

/// An invocation in flight.
#[derive(Clone, Debug)]
pub struct InFlight {
    pub id: u64,
    pub records: Vec<Record>,
    pub started: Instant,
}

struct Shared {
    name: String,
    queue: Arc<dyn Queue>,
    config: EsmConfig,
    handler: Handler,
    stop: AtomicBool,
    next_id: AtomicU64,
    in_flight: Mutex<HashMap<u64, (InFlight, AbortHandle)>>,
    /// Invocation ids aborted on purpose (told apart from a timeout or a panic).
    killed_ids: Mutex<Vec<u64>>,
    stats: Mutex<Stats>,
    /// Highest receive count seen per message id.
    deliveries: Mutex<HashMap<String, u32>>,
}

/// A running event source mapping; stopped by [`Esm::stop`], aborted when dropped.
pub struct Esm {
    shared: Arc<Shared>,
    pollers: Vec<JoinHandle<()>>,
}

impl Esm {
    /// Starts `config.concurrency` pollers on `queue`, invoking `handler`.
    pub fn start(name: &str, queue: Arc<dyn Queue>, config: EsmConfig, handler: Handler) -> Esm {
        assert!(
            (1..=10).contains(&config.batch_size),
            "batch_size {} is outside SQS's 1–10",
            config.batch_size
        );
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            queue,
            config,
            handler,
            stop: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            in_flight: Mutex::new(HashMap::new()),
            killed_ids: Mutex::new(Vec::new()),
            stats: Mutex::new(Stats::default()),
            deliveries: Mutex::new(HashMap::new()),
        });
        let pollers = (0..shared.config.concurrency.max(1))
            .map(|_| tokio::spawn(poll(shared.clone())))
            .collect();
        Esm { shared, pollers }
    }

    /// Stops polling and waits for the invocations in flight to end (each is bounded by the
    /// function timeout).
    pub async fn stop(mut self) -> Stats {
        self.shared.stop.store(true, Ordering::SeqCst);
        for poller in self.pollers.drain(..) {
            let _ = poller.await;
        }
        self.stats()
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats.lock().unwrap().clone()
    }

    /// The invocations running now.
    pub fn in_flight(&self) -> Vec<InFlight> {
        let map = self.shared.in_flight.lock().unwrap();
        let mut all: Vec<InFlight> = map.values().map(|(f, _)| f.clone()).collect();
        all.sort_by_key(|f| f.id);
        all
    }

    /// Kills the in-flight invocations `pick` chooses: their futures are dropped wherever they
    /// are, and none of their messages is deleted. Returns how many were killed.
    pub fn kill(&self, pick: impl Fn(&InFlight) -> bool) -> usize {
        let map = self.shared.in_flight.lock().unwrap();
        let mut killed = self.shared.killed_ids.lock().unwrap();
        let mut n = 0;
        for (flight, abort) in map.values() {
            if pick(flight) {
                killed.push(flight.id);
                abort.abort();
                n += 1;
            }
        }
        n
    }

    /// The highest `ApproximateReceiveCount` the function saw for each message id.
    pub fn receive_counts(&self) -> HashMap<String, u32> {
        self.shared.deliveries.lock().unwrap().clone()
    }
}

impl Drop for Esm {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for poller in &self.pollers {
            poller.abort();
        }
        for (_, abort) in self.shared.in_flight.lock().unwrap().values() {
            abort.abort();
        }
    }
}

/// One poller: receive, invoke, delete what succeeded; until stopped.
async fn poll(shared: Arc<Shared>) {
    let config = &shared.config;
    while !shared.stop.load(Ordering::SeqCst) {
        let batch = match shared
            .queue
            .receive(config.batch_size, config.poll_wait)
            .await
        {
            Ok(batch) => batch,
            Err(e) => {
                shared.stats.lock().unwrap().queue_errors += 1;
                eprintln!("[esm {}] receive failed: {e}", shared.name);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if batch.is_empty() {
            continue;
        }
        invoke(&shared, batch).await;
    }
}

async fn invoke(shared: &Arc<Shared>, batch: Vec<Delivery>) {
    let records: Vec<Record> = batch
        .iter()
        .map(|d| Record {
            message_id: d.id.clone(),
            body: d.body.clone(),
            receive_count: d.receive_count,
        })
        .collect();
    {
        let mut seen = shared.deliveries.lock().unwrap();
        for r in &records {
            let count = seen.entry(r.message_id.clone()).or_default();
            *count = (*count).max(r.receive_count);
        }
        let mut stats = shared.stats.lock().unwrap();
        stats.invocations += 1;
        stats.received += records.len() as u64;
    }
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let started = Instant::now();
    let deadline = started + shared.config.function_timeout;
    let call = (shared.handler)(Invocation {
        records: records.clone(),
        deadline,
    });
    // The function runs as its own task, so `kill` can drop it wherever it is; the timeout
    // drops it too, as Lambda's does.
    let task = tokio::spawn(async move { tokio::time::timeout_at(deadline.into(), call).await });
    {
        let flight = InFlight {
            id,
            records: records.clone(),
            started,
        };
        let mut map = shared.in_flight.lock().unwrap();
        map.insert(id, (flight, task.abort_handle()));
    }
    let outcome = task.await;
    shared.in_flight.lock().unwrap().remove(&id);
    let failures = match outcome {
        Ok(Ok(failures)) => failures,
        Ok(Err(_elapsed)) => {
            shared.stats.lock().unwrap().timed_out += 1;
            return;
        }
        Err(e) if e.is_cancelled() => {
            let was_killed = shared.killed_ids.lock().unwrap().contains(&id);
            let mut stats = shared.stats.lock().unwrap();
            if was_killed {
                stats.killed += 1;
            }
            return;
        }
        Err(_panic) => {
            shared.stats.lock().unwrap().panicked += 1;
            return;
        }
    };
    let done: Vec<String> = batch
        .iter()
        .filter(|d| !failures.contains(&d.id))
        .map(|d| d.receipt.clone())
        .collect();
    {
        let mut stats = shared.stats.lock().unwrap();
        stats.reported_failed += (batch.len() - done.len()) as u64;
    }
    if done.is_empty() {
        return;
    }
    match shared.queue.ack(&done).await {
        Ok(()) => shared.stats.lock().unwrap().deleted += done.len() as u64,
        Err(e) => {
            // Lambda retries deletes too; if they fail, the messages come back and the roles'
            // idempotence handles the repeat.
            shared.stats.lock().unwrap().queue_errors += 1;
            eprintln!("[esm {}] delete failed: {e}", shared.name);
        }
    }
}

/// The failed record ids of a batch, from one outcome per record.
pub fn failures_of<E: std::fmt::Display>(
    records: &[Record],
    outcomes: Vec<Result<(), E>>,
    log: &str,
) -> Failures {
    records
        .iter()
        .zip(outcomes)
        .filter_map(|(record, outcome)| match outcome {
            Ok(()) => None,
            Err(e) => {
                if !log.is_empty() {
                    eprintln!(
                        "[{log}] message {} (delivery {}) failed: {e}",
                        record.message_id, record.receive_count
                    );
                }
                Some(record.message_id.clone())
            }
        })
        .collect()
}
