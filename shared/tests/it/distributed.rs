//! The distributed pipeline end to end on loopback, as it runs on AWS but without Lambda:
//!
//! * moto (one `moto_server` per test) holds the source bucket, the state bucket and the SQS
//!   work and results queues, each with a dead-letter queue (RedrivePolicy);
//! * the OSS emulator (in process) is the destination;
//! * `support/esm.rs` polls the queues as Lambda's SQS event source mapping does and invokes
//!   the real role handlers (`transfer::handle`, `verify::handle_batch`); the planner step is
//!   what the planner function does (`create_run`, then `run_task` on the run's root).
//!
//! The first test moves 15,000 objects (50 prefixes and one flat prefix of 5,000 keys); the
//! others hold the run-level invariants under what SQS and the network do to a real
//! deployment: every message delivered twice and out of order, 503s and connection resets on
//! both sides, a worker killed mid-shard, and poison messages. Every wait is bounded.
//!
//! Needs `.venv` (`scripts/setup-tools`) for moto. Run with
//! `cargo test -p ferry --test it distributed:: -- --nocapture` to see the timings.

use crate::support::esm;
use crate::support::moto;
use crate::support::s3_faults;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use chrono::SubsecRound;
use esm::{Esm, EsmConfig, Handler, Invocation};
use ferry::deploy::connect::StaticSecrets;
use ferry::pipeline::message::{ChunkResult, ShardTask, Work};
use ferry::pipeline::planner::{RunRequest, create_run};
use ferry::pipeline::runtime::{Manifest, Runtime, read_json};
use ferry::pipeline::transfer::{self, TransferSettings};
use ferry::pipeline::verify::progress::Progress;
use ferry::pipeline::verify::report::Report;
use ferry::pipeline::verify::{self, VerifierSettings};
use ferry::pipeline::{Ports, layout};
use ferry::plan::KeyRange;
use ferry::queue::sqs::SqsQueue;
use ferry::queue::{Delivery, Fut, Queue};
use ferry::secret::Secret;
use ferry::state::StateStore;
use ferry::state::s3::S3Store;
use ferry::testing::data::keyed;
use futures_util::{StreamExt, stream};
use moto::Moto;
use oss_emulator::{Emulator, FaultRule};
use s3_faults::{Action, FaultProxy};
use serde_json::json;

const JOB: &str = "dist-job";
const SOURCE_BUCKET: &str = "ferry-src";
const STATE_BUCKET: &str = "ferry-state";
const DEST_BUCKET: &str = "ferry-dst";
const OSS_REGION: &str = "cn-hangzhou";
const OSS_AK: &str = "dst-ak";

// ---------------------------------------------------------------------------------------------
// The cluster: moto, queues, state, destination

/// A queue's redrive and timing, as its template would set them.
#[derive(Clone, Copy, Debug)]
struct QueueSpec {
    visibility: Duration,
    max_receives: u32,
}

/// A queue and its dead-letter queue.
struct QueuePair {
    queue: Arc<SqsQueue>,
    dead: Arc<SqsQueue>,
    spec: QueueSpec,
}

/// One test's deployment: its own moto, the OSS emulator, the queues and the seeded source.
struct Cluster {
    moto: Moto,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    dest: Emulator,
    work: QueuePair,
    results: QueuePair,
    state: Arc<S3Store>,
    /// Seeded keys and their bytes.
    objects: BTreeMap<String, Vec<u8>>,
}

impl Cluster {
    async fn start(work: QueueSpec, results: QueueSpec) -> Cluster {
        let moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
        let s3 = moto.create_bucket(SOURCE_BUCKET).await;
        moto.create_bucket(STATE_BUCKET).await;
        let sqs = moto.sqs_client();
        let work = queue_pair(&sqs, "work", work).await;
        let results = queue_pair(&sqs, "results", results).await;
        let dest = Emulator::for_test(OSS_AK).await;
        dest.create_bucket(DEST_BUCKET).unwrap();
        let state = Arc::new(S3Store::new(s3.clone(), STATE_BUCKET, "ferry"));
        Cluster {
            moto,
            s3,
            sqs,
            dest,
            work,
            results,
            state,
            objects: BTreeMap::new(),
        }
    }

    /// Puts `keys` into the source bucket (0–2 KiB each), 16 at a time.
    async fn seed(&mut self, keys: Vec<String>) -> Duration {
        let started = Instant::now();
        let objects: Vec<(String, Vec<u8>)> = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| {
                let body = keyed(&key, (i * 7919) % 2049);
                (key, body)
            })
            .collect();
        let s3 = &self.s3;
        let failures: Vec<String> = stream::iter(objects.iter())
            .map(|(key, body)| async move {
                s3.put_object()
                    .bucket(SOURCE_BUCKET)
                    .key(key)
                    .body(aws_sdk_s3::primitives::ByteStream::from(body.clone()))
                    .send()
                    .await
                    .err()
                    .map(|e| format!("{key}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)))
            })
            .buffer_unordered(16)
            .filter_map(|failed| async move { failed })
            .collect()
            .await;
        assert!(
            failures.is_empty(),
            "seeding failed: {:?}",
            &failures[..failures.len().min(3)]
        );
        self.objects.extend(objects);
        started.elapsed()
    }

    /// The run ended complete and exact: every seeded object counted and copied, no task
    /// failed, the destination holds exactly the seeded keys with their bytes, and neither
    /// dead-letter queue holds a message.
    async fn assert_run_exact(&self, report: &Report) {
        let n = self.objects.len() as u64;
        assert_eq!(report.verdict, "complete", "{report:?}");
        assert_eq!(report.objects.objects, n);
        assert_eq!(report.objects.copied, n);
        assert!(report.failed_tasks.is_empty(), "{:?}", report.failed_tasks);
        let all: BTreeSet<String> = self.objects.keys().cloned().collect();
        assert_eq!(dest_keys(self), all);
        self.assert_destination(&all, 1).await;
        assert_eq!(self.depth(&self.work.dead).await, 0, "work DLQ");
        assert_eq!(self.depth(&self.results.dead).await, 0, "results DLQ");
        // `ferry status` reads the same from the state bucket: the job's latest run, reported.
        let now = chrono::Utc::now();
        let status = ferry::pipeline::status::read(self.state.as_ref(), JOB, None, now)
            .await
            .unwrap();
        assert_eq!(status.run, report.run);
        assert_eq!(status.phase, ferry::pipeline::status::Phase::Reported);
        assert_eq!(status.objects, report.objects, "{status:?}");
        assert_eq!(status.tasks_pending, 0);
    }

    /// Puts one object into the source bucket.
    async fn put_object(&mut self, key: &str, body: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(SOURCE_BUCKET)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("seeding {key}: {e}"));
        self.objects.insert(key.to_owned(), body);
    }

    /// The job: the source bucket at `source_endpoint` (moto, or a proxy in front of it) to the
    /// destination, credentials by secret reference, with `extra` merged in.
    fn job(&self, source_endpoint: &str, extra: serde_json::Value) -> String {
        let mut job = json!({
            "version": 1,
            "name": JOB,
            "source": {
                "kind": "s3", "bucket": SOURCE_BUCKET, "region": moto::REGION,
                "endpoint": source_endpoint, "path_style": true, "allow_http": true,
                "credentials": { "secret": "ferry/source" }
            },
            "destination": {
                "bucket": DEST_BUCKET, "region": OSS_REGION, "endpoint": self.dest.endpoint(),
                "allow_http": true, "credentials": { "secret": "ferry/destination" }
            },
            "concurrency": { "objects": 16 }
        });
        merge(&mut job, extra);
        job.to_string()
    }

    fn secrets(&self) -> Arc<StaticSecrets> {
        let source = json!({
            "access_key_id": moto::ACCESS_KEY_ID,
            "secret_access_key": moto::SECRET_ACCESS_KEY,
        });
        let destination = json!({ "access_key_id": OSS_AK, "access_key_secret": oss_emulator::test_secret(OSS_AK) });
        Arc::new(StaticSecrets(HashMap::from([
            ("ferry/source".to_owned(), Secret::new(source.to_string())),
            (
                "ferry/destination".to_owned(),
                Secret::new(destination.to_string()),
            ),
        ])))
    }

    /// The deployment's ports: the state bucket and both queues, as the functions see them.
    fn ports(&self) -> Ports {
        Ports {
            state: self.state.clone(),
            work: self.work.queue.clone(),
            results: self.results.queue.clone(),
        }
    }

    /// Asserts every seeded object in `keys` is at the destination with its size, and that
    /// every `sample`-th one is byte-exact; returns how many were checked byte for byte.
    async fn assert_destination(&self, keys: &BTreeSet<String>, sample: usize) -> usize {
        let mut compared = 0;
        for (i, key) in keys.iter().enumerate() {
            let body = &self.objects[key];
            let info = self
                .dest
                .object_info(DEST_BUCKET, key)
                .unwrap_or_else(|| panic!("{key:?} is missing at the destination"));
            assert_eq!(info.size, body.len() as u64, "{key:?} has the wrong size");
            if i % sample.max(1) == 0 {
                let got = self.dest.object_bytes(DEST_BUCKET, key).await.unwrap();
                assert!(got == body.as_slice(), "{key:?} differs at the destination");
                compared += 1;
            }
        }
        compared
    }

    /// Messages in a queue: visible, in flight and delayed.
    async fn depth(&self, queue: &SqsQueue) -> u64 {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue.queue_url())
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .expect("queue attributes");
        let attrs = out.attributes().cloned().unwrap_or_default();
        [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ]
        .iter()
        .filter_map(|name| attrs.get(name)?.parse::<u64>().ok())
        .sum()
    }
}

/// `name` with a dead-letter queue `name-dlq` that takes messages after `spec.max_receives`.
async fn queue_pair(sqs: &aws_sdk_sqs::Client, name: &str, spec: QueueSpec) -> QueuePair {
    let dead_url = create_queue(sqs, &format!("{name}-dlq"), vec![]).await;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&dead_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("QueueArn");
    let policy = json!({
        "deadLetterTargetArn": arn,
        "maxReceiveCount": spec.max_receives.to_string(),
    });
    let url = create_queue(
        sqs,
        name,
        vec![
            (
                QueueAttributeName::VisibilityTimeout,
                spec.visibility.as_secs().to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, policy.to_string()),
        ],
    )
    .await;
    QueuePair {
        queue: Arc::new(SqsQueue::new(sqs.clone(), url)),
        dead: Arc::new(SqsQueue::new(sqs.clone(), dead_url)),
        spec,
    }
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: Vec<(QueueAttributeName, String)>,
) -> String {
    let mut request = sqs.create_queue().queue_name(name);
    for (key, value) in attributes {
        request = request.attributes(key, value);
    }
    let out = request.send().await.unwrap_or_else(|e| {
        panic!(
            "creating queue {name}: {}",
            aws_sdk_sqs::error::DisplayErrorContext(&e)
        )
    });
    out.queue_url().expect("queue url").to_owned()
}

// ---------------------------------------------------------------------------------------------
// The functions, driven by event source mappings

/// How a test runs the pipeline.
struct Drive {
    transfer: EsmConfig,
    verifier: EsmConfig,
    /// Longest wait for the run to complete.
    limit: Duration,
}

impl Drive {
    /// Lambda-like mappings for `cluster`'s queues: function timeouts at the visibility timeouts.
    fn new(cluster: &Cluster, transfer_pollers: usize, verifier_pollers: usize) -> Drive {
        Drive {
            transfer: EsmConfig {
                batch_size: 1,
                concurrency: transfer_pollers,
                poll_wait: Duration::from_secs(1),
                function_timeout: cluster.work.spec.visibility,
            },
            verifier: EsmConfig {
                batch_size: 10,
                concurrency: verifier_pollers,
                poll_wait: Duration::from_secs(1),
                function_timeout: cluster.results.spec.visibility,
            },
            limit: Duration::from_secs(180),
        }
    }
}

/// A run in progress: its manifest and the two running mappings.
struct Pipeline {
    manifest: Manifest,
    state: Arc<dyn StateStore>,
    transfer: Esm,
    verifier: Esm,
    started: Instant,
    planned_in: Duration,
}

/// What a finished run left.
struct Finished {
    report: Report,
    progress: Progress,
    elapsed: Duration,
    transfer: esm::Stats,
    verifier: esm::Stats,
}

/// The transfer function: a batch of tasks, failures reported per record.
fn transfer_function(rt: Arc<Runtime>, settings: TransferSettings) -> Handler {
    Arc::new(move |invocation: Invocation| {
        let (rt, settings) = (rt.clone(), settings.clone());
        Box::pin(async move {
            let deliveries: Vec<transfer::Delivery> = invocation
                .records
                .iter()
                .map(|r| transfer::Delivery {
                    body: &r.body,
                    receive_count: r.receive_count,
                })
                .collect();
            let deadline = Some(invocation.deadline);
            let outcomes = transfer::handle_batch(&rt, &settings, &deliveries, deadline).await;
            esm::failures_of(&invocation.records, outcomes, "transfer")
        })
    })
}

/// The verifier function: the whole batch at once.
fn verifier_function(rt: Arc<Runtime>) -> Handler {
    Arc::new(move |invocation: Invocation| {
        let rt = rt.clone();
        Box::pin(async move {
            let bodies: Vec<String> = invocation.records.iter().map(|r| r.body.clone()).collect();
            let outcomes = verify::handle_batch(
                &rt,
                &verifier_settings(),
                &bodies,
                Some(invocation.deadline),
            )
            .await;
            esm::failures_of(&invocation.records, outcomes, "verifier")
        })
    })
}

/// Verifier settings for the test mappings' short function timeouts.
fn verifier_settings() -> VerifierSettings {
    VerifierSettings {
        reserve: Duration::from_secs(2),
        ..Default::default()
    }
}

/// Transfer settings matching the work queue: the delivery limit is its maxReceiveCount, and a
/// task stops starting work two seconds before the function timeout.
fn transfer_settings(cluster: &Cluster) -> TransferSettings {
    TransferSettings {
        reserve: Duration::from_secs(2),
        time_budget: None,
        max_receives: cluster.work.spec.max_receives,
    }
}

/// Creates the run and plans it (the planner function), then starts the mappings.
async fn start_run(
    cluster: &Cluster,
    ports: Ports,
    job_text: String,
    drive: &Drive,
    settings: TransferSettings,
) -> Pipeline {
    let secrets = cluster.secrets();
    let started = Instant::now();
    // Destination clocks count whole seconds: a run that starts on one recognises every write
    // of its own (for adopting them on redelivery).
    let request = RunRequest {
        job_text,
        run: Some(format!("run-{}", fastrand::u32(..))),
        incremental: false,
        retry: None,
        keys: None,
        started: chrono::Utc::now().trunc_subsecs(0),
    };
    let planner = Runtime::new(ports.clone(), secrets.clone());
    let manifest = create_run(&ports, &request)
        .await
        .expect("the run is created");
    let limits = settings.limits(Some(started + Duration::from_secs(60)), Instant::now());
    transfer::run_task(&planner, &manifest.root, limits)
        .await
        .expect("the first planning step runs");
    let planned_in = started.elapsed();
    let transfer = Esm::start(
        "transfer",
        ports.work.clone(),
        drive.transfer.clone(),
        transfer_function(
            Arc::new(Runtime::new(ports.clone(), secrets.clone())),
            settings,
        ),
    );
    let verifier = Esm::start(
        "verifier",
        ports.results.clone(),
        drive.verifier.clone(),
        verifier_function(Arc::new(Runtime::new(ports.clone(), secrets))),
    );
    Pipeline {
        manifest,
        state: ports.state.clone(),
        transfer,
        verifier,
        started,
        planned_in,
    }
}

impl Pipeline {
    /// Waits until progress.json says complete and report.json exists, printing progress now
    /// and then; panics with the progress so far after `limit`.
    async fn wait(&self, limit: Duration) -> (Report, Progress) {
        let (job, run) = (&self.manifest.job, &self.manifest.run);
        let deadline = Instant::now() + limit;
        let mut last_print = Instant::now();
        loop {
            // A read the state store refused (a test's injected fault) is read again.
            let progress: Option<Progress> =
                read_json(self.state.as_ref(), &layout::progress(job, run))
                    .await
                    .unwrap_or_default();
            if let Some(p) = &progress {
                if p.is_complete()
                    && let Ok(Some(report)) =
                        read_json::<Report>(self.state.as_ref(), &layout::report(job, run)).await
                {
                    return (report, p.clone());
                }
                if last_print.elapsed() > Duration::from_secs(15) {
                    last_print = Instant::now();
                    println!(
                        "  … {:>5.1}s: {} tasks done, {} pending, {} objects recorded",
                        self.started.elapsed().as_secs_f64(),
                        p.tasks_done,
                        p.pending.len(),
                        p.tally.objects
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "the run did not complete within {limit:?}; progress: {progress:?}; transfer \
                 {:?}; verifier {:?}",
                self.transfer.stats(),
                self.verifier.stats()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits for completion, then stops both mappings.
    async fn finish(self, limit: Duration) -> Finished {
        let (report, progress) = self.wait(limit).await;
        let elapsed = self.started.elapsed();
        let transfer = self.transfer.stop().await;
        let verifier = self.verifier.stop().await;
        Finished {
            report,
            progress,
            elapsed,
            transfer,
            verifier,
        }
    }
}

/// The recorded results reachable from the run's root, walked as the report walks them: the
/// number of tasks, of range tasks planned, and of objects recorded.
async fn walk_results(state: &dyn StateStore, manifest: &Manifest) -> (u64, u64, u64) {
    let (mut tasks, mut planned, mut objects) = (0, 0, 0);
    let mut queue = VecDeque::from([manifest.root.clone()]);
    while let Some(task) = queue.pop_front() {
        let key = layout::result(&task);
        let result: ChunkResult = read_json(state, &key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{key} is not recorded"));
        tasks += 1;
        objects += result.objects.len() as u64;
        if matches!(task.work, Work::Plan { .. }) {
            planned += result
                .spawned
                .iter()
                .filter(|t| matches!(t.work, Work::Range { .. }))
                .count() as u64;
        }
        queue.extend(result.spawned);
    }
    (tasks, planned, objects)
}

fn print_run(name: &str, finished: &Finished, planned_in: Duration) {
    let r = &finished.report;
    println!(
        "[{name}] {} in {:.1}s (planning {:.1}s): {} objects, {} copied, {} skipped, {} failed, \
         {} tasks ({} failed)\n  transfer {:?}\n  verifier {:?}",
        r.verdict,
        finished.elapsed.as_secs_f64(),
        planned_in.as_secs_f64(),
        r.objects.objects,
        r.objects.copied,
        r.objects.skipped,
        r.objects.failed,
        r.tasks,
        r.objects.failed_tasks,
        finished.transfer,
        finished.verifier
    );
}

// ---------------------------------------------------------------------------------------------
// helpers

fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
    match (base, extra) {
        (serde_json::Value::Object(b), serde_json::Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

/// `count` keys spread over `prefixes` top-level folders `p00/`, `p01/`, …; a few carry
/// characters that need encoding on every hop (URL, XML, JSON in queue messages).
fn tree_keys(prefixes: usize, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let folder = i % prefixes;
            if i % 997 == 0 {
                format!("p{folder:02}/文档 {i:05} a+b=c&d.bin")
            } else {
                format!("p{folder:02}/obj-{i:05}")
            }
        })
        .collect()
}

/// Every key at the destination, as a set.
fn dest_keys(cluster: &Cluster) -> BTreeSet<String> {
    cluster
        .dest
        .keys(DEST_BUCKET)
        .unwrap()
        .into_iter()
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. End to end: 15,000 objects

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn distributed_run_copies_fifteen_thousand_objects() {
    let test_started = Instant::now();
    let mut cluster = Cluster::start(
        QueueSpec {
            visibility: Duration::from_secs(10),
            max_receives: 5,
        },
        QueueSpec {
            visibility: Duration::from_secs(10),
            max_receives: 5,
        },
    )
    .await;
    let mut keys = tree_keys(50, 10_000);
    keys.extend((0..5_000).map(|i| format!("flat/k{i:05}")));
    let seeded_in = cluster.seed(keys).await;
    let n = cluster.objects.len() as u64;
    assert_eq!(n, 15_000);
    println!(
        "[e2e] seeded {n} objects in {:.1}s ({:.0}/s)",
        seeded_in.as_secs_f64(),
        n as f64 / seeded_in.as_secs_f64()
    );

    let max_keys = 250;
    let job = cluster.job(
        &cluster.moto.endpoint(),
        json!({ "sharding": { "max_keys_per_shard": max_keys } }),
    );
    let mut drive = Drive::new(&cluster, 4, 2);
    drive.limit = Duration::from_secs(480);
    let pipeline = start_run(
        &cluster,
        cluster.ports(),
        job,
        &drive,
        transfer_settings(&cluster),
    )
    .await;
    let (manifest, planned_in) = (pipeline.manifest.clone(), pipeline.planned_in);
    let finished = pipeline.finish(drive.limit).await;
    print_run("e2e", &finished, planned_in);
    let report = &finished.report;
    println!(
        "[e2e] {:.0} objects/s through the pipeline; whole test so far {:.1}s",
        n as f64 / finished.elapsed.as_secs_f64(),
        test_started.elapsed().as_secs_f64()
    );

    assert_eq!(report.verdict, "complete", "{report:?}");
    assert_eq!(report.objects.objects, n);
    assert_eq!(report.objects.copied, n);
    assert_eq!(
        report.objects.skipped + report.objects.failed + report.objects.failed_tasks,
        0
    );
    assert_eq!(
        report.objects.bytes,
        cluster
            .objects
            .values()
            .map(|b| b.len() as u64)
            .sum::<u64>()
    );
    assert!(report.failed_tasks.is_empty());
    assert_eq!(report.tasks, finished.progress.tasks_done);

    // The recorded results, walked from the root, hold exactly what the report counted; the
    // plan cut the source into many ranges, each walked by at least one task.
    let (tasks, planned, objects) = walk_results(cluster.state.as_ref(), &manifest).await;
    println!("[e2e] {planned} ranges planned, {tasks} tasks recorded");
    assert_eq!(tasks, report.tasks);
    assert_eq!(objects, n);
    assert!(planned > 10, "the plan produced only {planned} ranges");
    assert!(
        tasks > planned && tasks >= n / max_keys,
        "{tasks} tasks for {planned} ranges and {n} objects at {max_keys} per task"
    );

    // The destination holds exactly the source: every key, its size, a sample byte for byte.
    let all: BTreeSet<String> = cluster.objects.keys().cloned().collect();
    assert_eq!(
        dest_keys(&cluster),
        all,
        "the destination has other keys than the source"
    );
    let compared = cluster.assert_destination(&all, 50).await;
    assert!(compared >= 300);
    let puts = cluster.dest.counters().operation("PutObject");
    println!("[e2e] destination PutObject requests: {puts}");
    assert!(puts >= n, "{puts} PutObject requests for {n} objects");

    // Nothing was dead-lettered.
    assert_eq!(cluster.depth(&cluster.work.dead).await, 0, "work DLQ");
    assert_eq!(cluster.depth(&cluster.results.dead).await, 0, "results DLQ");
    println!(
        "[e2e] whole test {:.1}s",
        test_started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// 2a. Every message delivered twice, out of order

/// An SQS queue that sends every body twice: once at once (the batch shuffled), and once more
/// after a random delay, so copies arrive twice and out of order.
struct Twice {
    inner: Arc<SqsQueue>,
    max_delay: Duration,
    originals: AtomicU64,
    copies: Arc<AtomicU64>,
    pending: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Twice {
    fn new(inner: Arc<SqsQueue>, max_delay: Duration) -> Arc<Twice> {
        Arc::new(Twice {
            inner,
            max_delay,
            originals: AtomicU64::new(0),
            copies: Arc::new(AtomicU64::new(0)),
            pending: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Waits for the delayed copies still to be sent.
    async fn flush(&self) {
        let pending: Vec<_> = self.pending.lock().unwrap().drain(..).collect();
        for task in pending {
            task.await.expect("a delayed copy is sent");
        }
    }
}

impl Queue for Twice {
    fn describe(&self) -> String {
        format!("twice:{}", self.inner.describe())
    }

    fn send_batch<'a>(&'a self, bodies: &'a [String]) -> Fut<'a, ()> {
        Box::pin(async move {
            let mut now = bodies.to_vec();
            fastrand::shuffle(&mut now);
            self.inner.send_batch(&now).await?;
            self.originals
                .fetch_add(bodies.len() as u64, Ordering::SeqCst);
            let (inner, copies) = (self.inner.clone(), self.copies.clone());
            let delay = self.max_delay.mul_f64(fastrand::f64());
            let mut later = bodies.to_vec();
            fastrand::shuffle(&mut later);
            let task = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                inner.send_batch(&later).await.expect("the copy is sent");
                copies.fetch_add(later.len() as u64, Ordering::SeqCst);
            });
            self.pending.lock().unwrap().push(task);
            Ok(())
        })
    }

    fn receive(&self, max: usize, wait: Duration) -> Fut<'_, Vec<Delivery>> {
        self.inner.receive(max, wait)
    }

    fn ack<'a>(&'a self, receipts: &'a [String]) -> Fut<'a, ()> {
        self.inner.ack(receipts)
    }

    fn nack<'a>(&'a self, receipt: &'a str, delay: Duration) -> Fut<'a, ()> {
        self.inner.nack(receipt, delay)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_message_twice_and_out_of_order_counts_exactly() {
    fastrand::seed(41);
    let spec = QueueSpec {
        visibility: Duration::from_secs(10),
        max_receives: 5,
    };
    let mut cluster = Cluster::start(spec, spec).await;
    cluster.seed(tree_keys(6, 300)).await;
    let n = cluster.objects.len() as u64;
    let job = cluster.job(
        &cluster.moto.endpoint(),
        json!({ "sharding": { "max_keys_per_shard": 25 } }),
    );
    let work = Twice::new(cluster.work.queue.clone(), Duration::from_millis(1500));
    let results = Twice::new(cluster.results.queue.clone(), Duration::from_millis(1500));
    let ports = Ports {
        state: cluster.state.clone(),
        work: work.clone(),
        results: results.clone(),
    };
    // One transfer worker: a task's second copy runs after its first has finished. (Two
    // workers running the same task at the same moment may both write an object; what the
    // pipeline promises then is exact counts, which the other tests check with concurrency.)
    // Two verifiers do see copies of the same result at the same time.
    let drive = Drive::new(&cluster, 1, 2);
    let pipeline = start_run(&cluster, ports, job, &drive, transfer_settings(&cluster)).await;
    let (report, _) = pipeline.wait(drive.limit).await;
    let puts_at_completion = cluster.dest.counters().operation("PutObject");

    // Let every copy still on its way arrive and be handled, then stop.
    work.flush().await;
    results.flush().await;
    let drained = Instant::now();
    while cluster.depth(&cluster.work.queue).await + cluster.depth(&cluster.results.queue).await > 0
    {
        assert!(
            drained.elapsed() < Duration::from_secs(60),
            "the queues never drained"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let planned_in = pipeline.planned_in;
    let manifest = pipeline.manifest.clone();
    let finished = pipeline.finish(Duration::from_secs(5)).await;
    print_run("twice", &finished, planned_in);

    let sent = work.originals.load(Ordering::SeqCst);
    println!(
        "[twice] work: {sent} sent, {} copies; results: {} sent, {} copies",
        work.copies.load(Ordering::SeqCst),
        results.originals.load(Ordering::SeqCst),
        results.copies.load(Ordering::SeqCst)
    );
    assert!(sent > 12, "the run sent only {sent} tasks");
    assert_eq!(
        work.copies.load(Ordering::SeqCst),
        sent,
        "every task was sent twice"
    );
    assert_eq!(
        results.copies.load(Ordering::SeqCst),
        results.originals.load(Ordering::SeqCst),
        "every result was sent twice"
    );
    // Both copies of everything were handled (the root task was handled by the planner).
    assert!(
        finished.transfer.received >= 2 * sent,
        "{:?}",
        finished.transfer
    );
    assert!(
        finished.verifier.received >= 2 * results.originals.load(Ordering::SeqCst),
        "{:?}",
        finished.verifier
    );

    // Exact counts, and the report did not change when the late copies came.
    assert_eq!(finished.report, report);
    assert_eq!(report.verdict, "complete", "{report:?}");
    assert_eq!(report.objects.objects, n);
    assert_eq!(report.objects.copied, n);
    let (tasks, _, objects) = walk_results(cluster.state.as_ref(), &manifest).await;
    assert_eq!((tasks, objects), (report.tasks, n));
    let all: BTreeSet<String> = cluster.objects.keys().cloned().collect();
    assert_eq!(dest_keys(&cluster), all);
    cluster.assert_destination(&all, 1).await;
    // No object was written twice: a repeated task found its result recorded, or adopted
    // what its first copy wrote.
    let puts = cluster.dest.counters().operation("PutObject");
    assert_eq!(puts_at_completion, n);
    assert_eq!(puts, n, "{puts} PutObject requests for {n} objects");
}

// ---------------------------------------------------------------------------------------------
// 2b. 503s and connection resets on both sides

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn errors_and_resets_on_both_sides_lose_nothing() {
    let spec = QueueSpec {
        visibility: Duration::from_secs(10),
        max_receives: 5,
    };
    let mut cluster = Cluster::start(spec, spec).await;
    cluster.seed(tree_keys(10, 600)).await;
    let proxy = FaultProxy::start(
        cluster.moto.addr(),
        23,
        vec![
            s3_faults::FaultRule::any(Action::SlowDown, 0.05),
            s3_faults::FaultRule::any(Action::Reset, 0.02),
        ],
    )
    .await;
    cluster.dest.set_fault_seed(29);
    for op in ["PutObject", "HeadObject", "ListObjects", "ListObjectsV2"] {
        cluster
            .dest
            .add_fault(FaultRule::error(op, 503).rate(0.05))
            .unwrap();
        cluster
            .dest
            .add_fault(FaultRule::reset(op).rate(0.02))
            .unwrap();
    }
    let job = cluster.job(
        &proxy.endpoint(),
        json!({ "sharding": { "max_keys_per_shard": 40 } }),
    );
    let drive = Drive::new(&cluster, 3, 2);
    let pipeline = start_run(
        &cluster,
        cluster.ports(),
        job,
        &drive,
        transfer_settings(&cluster),
    )
    .await;
    let planned_in = pipeline.planned_in;
    let finished = pipeline.finish(drive.limit).await;
    print_run("faults", &finished, planned_in);
    let report = &finished.report;

    let source = proxy.counts();
    let dest: u64 = ["PutObject", "HeadObject", "ListObjects", "ListObjectsV2"]
        .iter()
        .map(|op| cluster.dest.counters().faults(op))
        .sum();
    println!("[faults] source proxy {source:?}; destination faults injected {dest}");
    assert!(source.slow_downs > 5 && source.resets > 2, "{source:?}");
    assert!(dest > 10, "destination faults injected: {dest}");
    cluster.assert_run_exact(report).await;
}

/// Issue 14 points 1 and 13: the S3 state store (moto, through its fault hook) answers 503 in
/// bursts longer than the SDK's own retries, and loses the answers of writes that took effect —
/// create-only result records, progress compare-and-swaps, range continuations and chunk
/// results: the retry meets its own write (412 Precondition Failed, or an ETag that moved).
/// Every object is counted once, the run completes, nothing is dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_store_bursts_and_lost_answers_lose_nothing() {
    let spec = QueueSpec {
        visibility: Duration::from_secs(10),
        max_receives: 8,
    };
    let mut cluster = Cluster::start(spec, spec).await;
    cluster.seed(tree_keys(6, 360)).await;
    let job = cluster.job(
        &cluster.moto.endpoint(),
        json!({ "sharding": { "max_keys_per_shard": 30 } }),
    );
    let drive = Drive::new(&cluster, 3, 2);
    let pipeline = start_run(
        &cluster,
        cluster.ports(),
        job,
        &drive,
        transfer_settings(&cluster),
    )
    .await;
    // Lost answers first (rules are taken in order), then one burst of 503s on every state
    // request, longer than the SDK's three attempts.
    let state = format!("/{STATE_BUCKET}/");
    for (method, path, count) in [
        ("PUT", "/results/", 12),
        ("PUT", "progress.json", 12),
        ("PUT", "/continuations/", 4),
        ("PUT", "/chunks/", 2),
        ("GET", "progress.json", 6),
    ] {
        let rule = json!({
            "count": count, "method": method, "path_contains": path, "phase": "after"
        });
        cluster.moto.inject_s3_fault(&rule.to_string());
    }
    let burst = json!({ "count": 40, "path_contains": state, "phase": "before" });
    cluster.moto.inject_s3_fault(&burst.to_string());
    let planned_in = pipeline.planned_in;
    let finished = pipeline.finish(drive.limit).await;
    print_run("state faults", &finished, planned_in);
    let injected = cluster.moto.s3_faults_injected();
    println!("[state faults] injected {injected}");
    assert!(injected >= 60, "the faults fired: {injected}");
    cluster.moto.clear_s3_faults();
    cluster.assert_run_exact(&finished.report).await;
}

/// Issue 14 point 5: every task keeps its invocation's deadline. Batches of ten work messages
/// share one short function timeout (6 s) against a slow destination, so the first tasks of a
/// batch take the time of the later ones, and the part tasks of a giant object (slow parts)
/// take longer than one invocation. Before, a later record of a batch, reached with less than
/// the reserve left, ran with no time limit at all and was killed at the timeout (its
/// delivery counted towards the dead-letter queue), and a part task had no cutoff. Now a
/// message not started in time is handed back unstarted, and a part task stops between parts
/// and comes again, resuming from its proven parts: no invocation runs into its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_and_part_tasks_keep_the_function_deadline() {
    let spec = QueueSpec {
        visibility: Duration::from_secs(6),
        max_receives: 4,
    };
    let mut cluster = Cluster::start(spec, spec).await;
    cluster.seed(tree_keys(4, 240)).await;
    let giant = keyed("giant/blob", (3 << 20) + 5);
    cluster.put_object("giant/blob", giant).await;
    for (op, ms) in [("PutObject", 120), ("UploadPart", 900)] {
        let rule = FaultRule::latency(op, Duration::from_millis(ms));
        cluster.dest.add_fault(rule).unwrap();
    }
    let job = cluster.job(
        &cluster.moto.endpoint(),
        json!({
            "sharding": { "max_keys_per_shard": 20, "max_bytes_per_shard": "1536KiB" },
            "concurrency": {
                "objects": 4, "parts": 1, "part_size": "256KiB", "multipart_threshold": "1MiB"
            }
        }),
    );
    let mut drive = Drive::new(&cluster, 2, 2);
    drive.transfer.batch_size = 10;
    let pipeline = start_run(
        &cluster,
        cluster.ports(),
        job,
        &drive,
        transfer_settings(&cluster),
    )
    .await;
    let planned_in = pipeline.planned_in;
    let finished = pipeline.finish(drive.limit).await;
    print_run("deadlines", &finished, planned_in);
    assert_eq!(finished.transfer.timed_out, 0, "{:?}", finished.transfer);
    assert_eq!(finished.verifier.timed_out, 0, "{:?}", finished.verifier);
    cluster.assert_run_exact(&finished.report).await;
    // 13 parts: each uploaded once, although its tasks were handed back between parts.
    let parts = cluster
        .dest
        .counters()
        .object(DEST_BUCKET, "giant/blob", "UploadPart");
    assert_eq!(parts, 13, "each part uploaded once");
}

// ---------------------------------------------------------------------------------------------
// 2c. A worker killed mid-shard

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_killed_mid_shard_is_redelivered_and_completes() {
    let spec = QueueSpec {
        visibility: Duration::from_secs(5),
        max_receives: 5,
    };
    let mut cluster = Cluster::start(spec, spec).await;
    cluster.seed(tree_keys(8, 640)).await;
    let n = cluster.objects.len() as u64;
    // Slow writes, so a shard's copy takes long enough to be caught in the middle.
    cluster
        .dest
        .add_fault(FaultRule::latency("PutObject", Duration::from_millis(40)))
        .unwrap();
    let job = cluster.job(
        &cluster.moto.endpoint(),
        json!({ "sharding": { "max_keys_per_shard": 100 }, "concurrency": { "objects": 4 } }),
    );
    let drive = Drive::new(&cluster, 3, 2);
    let pipeline = start_run(
        &cluster,
        cluster.ports(),
        job,
        &drive,
        transfer_settings(&cluster),
    )
    .await;

    // Find a range task being copied: some of its keys written, most not yet; kill it there.
    let watch = Instant::now();
    let (victim, present, total) = loop {
        assert!(
            watch.elapsed() < Duration::from_secs(60),
            "no range task was caught mid-copy"
        );
        let written = dest_keys(&cluster);
        let caught = pipeline
            .transfer
            .in_flight()
            .into_iter()
            .find_map(|flight| {
                let task = ShardTask::from_json(&flight.records[0].body).ok()?;
                let Work::Range {
                    prefix,
                    start_after,
                    end,
                } = task.work
                else {
                    return None;
                };
                let range = KeyRange {
                    prefix,
                    start_after,
                    end,
                };
                let keys: Vec<&String> = cluster
                    .objects
                    .keys()
                    .filter(|k| range.contains(k))
                    .collect();
                let present = keys.iter().filter(|k| written.contains(k.as_str())).count();
                (present >= 5 && present + 20 <= keys.len()).then_some((
                    flight,
                    present,
                    keys.len(),
                ))
            });
        if let Some((flight, present, total)) = caught {
            let killed = pipeline.transfer.kill(|f| f.id == flight.id);
            assert_eq!(killed, 1);
            break (flight.records[0].clone(), present, total);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "[kill] killed the worker of message {} with {present} of its range's {total} keys written",
        victim.message_id
    );
    pipeline.wait(drive.limit).await;
    // The killed delivery's message came back after the visibility timeout and was done.
    let deliveries = pipeline.transfer.receive_counts();
    assert!(
        deliveries.get(&victim.message_id).is_some_and(|n| *n >= 2),
        "the killed message was not delivered again: {:?}",
        deliveries.get(&victim.message_id)
    );
    // Its recorded result adopted what the killed delivery had written instead of copying it
    // again.
    let task = ShardTask::from_json(&victim.body).unwrap();
    let recorded: ChunkResult = read_json(cluster.state.as_ref(), &layout::result(&task))
        .await
        .unwrap()
        .expect("the killed task's result is recorded");
    let adopted = recorded.objects.iter().filter(|o| o.adopted).count();
    println!("[kill] the redelivery adopted {adopted} objects");
    assert!(
        adopted >= present,
        "{adopted} adopted, {present} were written before the kill"
    );
    let planned_in = pipeline.planned_in;
    let finished = pipeline.finish(Duration::from_secs(5)).await;
    print_run("kill", &finished, planned_in);
    let report = &finished.report;
    assert_eq!(finished.transfer.killed, 1, "{:?}", finished.transfer);
    assert_eq!(report.verdict, "complete", "{report:?}");
    assert_eq!(report.objects.objects, n);
    assert_eq!(report.objects.copied, n);
    let all: BTreeSet<String> = cluster.objects.keys().cloned().collect();
    assert_eq!(dest_keys(&cluster), all);
    cluster.assert_destination(&all, 1).await;
    let puts = cluster.dest.counters().operation("PutObject");
    println!("[kill] destination PutObject requests: {puts} for {n} objects");
    // What the killed worker had written was adopted on redelivery, not written again (a
    // write cut off mid-request may be repeated).
    assert!(
        puts >= n && puts <= n + 8,
        "{puts} PutObject requests for {n} objects"
    );
}

// ---------------------------------------------------------------------------------------------
// 2d. Poison messages

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_messages_are_dead_lettered_or_reported_and_the_run_completes() {
    // The source answers 500 to every listing of the `p05-denied/` folder for copying (the
    // planner's delimiter listings pass), through the SDK's own retries, so the task can never
    // succeed; its work-queue deliveries are limited to 3. The function timeout leaves room for
    // the SDK's backoff (up to 15 s over 5 attempts) on the last delivery.
    let work = QueueSpec {
        visibility: Duration::from_secs(20),
        max_receives: 3,
    };
    let results = QueueSpec {
        visibility: Duration::from_secs(10),
        max_receives: 5,
    };
    let mut cluster = Cluster::start(work, results).await;
    let mut keys = tree_keys(12, 360);
    let denied: BTreeSet<String> = (0..30).map(|i| format!("p05-denied/obj-{i:03}")).collect();
    keys.extend(denied.iter().cloned());
    cluster.seed(keys).await;
    let n = cluster.objects.len() as u64;
    let proxy = FaultProxy::start(
        cluster.moto.addr(),
        31,
        vec![
            s3_faults::FaultRule::any(
                Action::Error {
                    status: 500,
                    code: "InternalError".into(),
                },
                1.0,
            )
            .method("GET")
            .contains("prefix=p05-denied")
            .lacks("delimiter="),
        ],
    )
    .await;
    let job = cluster.job(
        &proxy.endpoint(),
        json!({ "sharding": { "max_keys_per_shard": 30 } }),
    );

    // (i) A message no ferry can read, on the work queue.
    let garbage = "{\"this is\": \"not a shard task\"}".to_owned();
    cluster
        .work
        .queue
        .send_batch(std::slice::from_ref(&garbage))
        .await
        .unwrap();

    let mut drive = Drive::new(&cluster, 3, 2);
    drive.transfer.function_timeout = Duration::from_secs(19);
    let pipeline = start_run(
        &cluster,
        cluster.ports(),
        job,
        &drive,
        transfer_settings(&cluster),
    )
    .await;
    let (report, _) = pipeline.wait(drive.limit).await;
    println!(
        "[poison] run complete after {:.1}s; waiting for the unreadable message to be dead-lettered",
        pipeline.started.elapsed().as_secs_f64()
    );

    // The unreadable message is dead-lettered by SQS after its third delivery (the mappings
    // keep polling meanwhile, which is what moves it).
    let watch = Instant::now();
    let dead: Vec<Delivery> = loop {
        assert!(
            watch.elapsed() < Duration::from_secs(90),
            "the unreadable message never reached the DLQ"
        );
        let got = cluster
            .work
            .dead
            .receive(10, Duration::from_secs(1))
            .await
            .unwrap();
        if !got.is_empty() {
            break got;
        }
    };
    let planned_in = pipeline.planned_in;
    let finished = pipeline.finish(Duration::from_secs(5)).await;
    print_run("poison", &finished, planned_in);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].body, garbage);
    assert_eq!(cluster.depth(&cluster.results.dead).await, 0, "results DLQ");

    // (ii) The task that can never succeed is recorded failed on its last delivery and
    // reported; everything else is copied.
    assert_eq!(finished.report, report);
    assert_eq!(report.verdict, "complete-with-problems", "{report:?}");
    assert_eq!(report.objects.failed_tasks, 1);
    assert_eq!(report.failed_tasks.len(), 1, "{:?}", report.failed_tasks);
    let failure = &report.failed_tasks[0].error;
    assert!(
        failure.contains("after 3 deliveries") && failure.contains("InternalError"),
        "{failure}"
    );
    let copied = n - denied.len() as u64;
    assert_eq!(report.objects.objects, copied, "{report:?}");
    assert_eq!(report.objects.copied, copied);
    assert!(
        report.summary.contains("1 tasks failed"),
        "{}",
        report.summary
    );
    let expected: BTreeSet<String> = cluster
        .objects
        .keys()
        .filter(|k| !denied.contains(*k))
        .cloned()
        .collect();
    assert_eq!(dest_keys(&cluster), expected);
    cluster.assert_destination(&expected, 1).await;
    let faulted = proxy.faulted();
    println!(
        "[poison] the source refused {} listings, e.g. {:?}",
        faulted.len(),
        faulted.first()
    );
    assert!(proxy.counts().errors >= 3, "{:?}", proxy.counts());
}
