//! The event path's cost and latency (issue 9 point 8): N objects already at the source, one
//! S3 `ObjectCreated:Put` notification each on an in-process events queue, and `ferry follow`'s
//! engine (`pipeline::follow`) taking them with the defaults — the path a follower and the
//! stack's transfer function run. Both servers are in-process OSS emulators (the source in its
//! S3 dialect), so their counters give the requests per event-copied object, by operation; the
//! state is a local folder, whose writes are counted as they start.
//!
//! Then latency: with the follower idle, one object at a time is written at the source and its
//! event sent; the time until the event run counts it copied and verified is the latency.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::deploy::connect::StaticSecrets;
use ferry::pipeline::follow::{self, Until};
use ferry::pipeline::standalone::Options;
use ferry::pipeline::verify::progress::Progress;
use ferry::queue::Queue;
use ferry::queue::memory::{MemoryQueue, QueueSettings};
use oss_emulator::Emulator;

const SRC: &str = "events-src";
const DST: &str = "events-dst";
const JOB: &str = "events-bench";

#[derive(clap::Args)]
pub struct Args {
    /// Objects copied from their events.
    #[arg(long, default_value_t = 2000)]
    objects: usize,
    /// Bytes per object.
    #[arg(long, default_value_t = 16 * 1024)]
    size: usize,
    /// Shard tasks worked on at the same time (`ferry follow --workers`).
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Single events timed one after another, for the latency.
    #[arg(long, default_value_t = 20)]
    probes: usize,
}

pub async fn run(args: Args, record: Option<&Path>) -> Result<(), String> {
    let (source, dest) = (emulator("src-ak").await?, emulator("dst-ak").await?);
    source.create_bucket(SRC).map_err(|e| e.to_string())?;
    dest.create_bucket(DST).map_err(|e| e.to_string())?;
    let keys: Vec<String> = (0..args.objects).map(|i| format!("ev/{i:06}")).collect();
    let body = bytes::Bytes::from(vec![7u8; args.size]);
    source
        .seed_objects(SRC, keys.iter().map(|k| (k.clone(), body.clone())))
        .map_err(|e| e.to_string())?;
    let job = job(&source, &dest);
    let dir = std::env::temp_dir().join(format!("ferry-bench-events-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let events = Arc::new(MemoryQueue::new(
        "events",
        QueueSettings {
            visibility_timeout: Duration::from_secs(3600),
            max_receives: None,
        },
    ));
    for chunk in keys.chunks(10) {
        let bodies: Vec<String> = chunk.iter().map(|k| notification(k, args.size)).collect();
        events
            .send_batch(&bodies)
            .await
            .map_err(|e| e.to_string())?;
    }

    source.reset_counters();
    dest.reset_counters();
    let writes = ferry::state::local::writes_started();
    let idle = Duration::from_millis(500);
    let began = Instant::now();
    let followed = follow::follow(
        &job,
        options(&dir, args.workers),
        secrets(&source, &dest),
        events.clone(),
        Until { idle: Some(idle) },
    )
    .await
    .map_err(|e| e.to_string())?;
    let elapsed = began.elapsed().saturating_sub(idle);
    let writes = ferry::state::local::writes_started() - writes;
    let copied: u64 = followed.runs.iter().map(|r| r.tally.copied).sum();
    if copied != args.objects as u64 {
        return Err(format!(
            "{copied} of {} objects copied: {followed:?}",
            args.objects
        ));
    }
    let (src, dst) = (source.counters(), dest.counters());
    let per = |n: u64| n as f64 / args.objects as f64;
    let mut table = format!(
        "#### Event path: {} objects × {} B, one S3 notification each, {} workers\n\n\
         | measure | value |\n|---|---:|\n\
         | objects/s (event taken → verified) | {:.0} |\n",
        args.objects,
        args.size,
        args.workers,
        args.objects as f64 / elapsed.as_secs_f64()
    );
    for (side, counters, ops) in [
        (
            "source",
            &src,
            &["HeadObject", "GetObject", "ListObjectsV2"][..],
        ),
        (
            "destination",
            &dst,
            &["PutObject", "HeadObject", "GetObject", "ListObjectsV2"][..],
        ),
    ] {
        for op in ops {
            let n = counters.operation(op);
            table.push_str(&format!("| {side} {op} per object | {:.2} |\n", per(n)));
        }
    }
    table.push_str(&format!(
        "| state writes per object | {:.2} |\n| event messages | {} |\n",
        per(writes),
        followed.messages
    ));

    let latencies = probe(&source, &dest, &job, &dir, &args, events).await?;
    table.push_str(&format!(
        "| latency, one event (median of {}) | {:.0} ms |\n| latency, slowest | {:.0} ms |\n",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    ));
    println!("{table}");
    if let Some(path) = record {
        append(path, &table).map_err(|e| format!("cannot record in {}: {e}", path.display()))?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// With a follower running and idle, writes one object and sends its event, `probes` times;
/// each time, waits until the event run counts it copied. Milliseconds, sorted.
async fn probe(
    source: &Emulator,
    dest: &Emulator,
    job: &str,
    dir: &Path,
    args: &Args,
    events: Arc<MemoryQueue>,
) -> Result<Vec<f64>, String> {
    let (job, options, secrets) = (
        job.to_owned(),
        options(dir, args.workers),
        secrets(source, dest),
    );
    let until = Until {
        idle: Some(Duration::from_secs(2)),
    };
    let queue = events.clone();
    let follower =
        tokio::spawn(async move { follow::follow(&job, options, secrets, queue, until).await });
    let progress = dir.join(format!(
        "jobs/{JOB}/runs/events-{}/progress.json",
        chrono::Utc::now().format("%Y%m%d")
    ));
    let copied = || {
        std::fs::read(&progress)
            .ok()
            .and_then(|b| serde_json::from_slice::<Progress>(&b).ok())
            .map_or(0, |p| p.tally.copied)
    };
    let mut out = Vec::new();
    for i in 0..args.probes {
        let before = copied();
        let key = format!("probe/{i:04}");
        source
            .put_object(SRC, &key, vec![9u8; args.size])
            .await
            .map_err(|e| e.to_string())?;
        let began = Instant::now();
        events
            .send_batch(&[notification(&key, args.size)])
            .await
            .map_err(|e| e.to_string())?;
        while copied() == before {
            if began.elapsed() > Duration::from_secs(30) {
                return Err(format!("{key}: not copied within 30 s"));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        out.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    let followed = tokio::time::timeout(Duration::from_secs(60), follower)
        .await
        .map_err(|_| "the follower did not stop within 60 s".to_owned())?
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let _ = followed;
    out.sort_by(f64::total_cmp);
    Ok(out)
}

async fn emulator(ak: &str) -> Result<Emulator, String> {
    Emulator::builder()
        .credentials(ak, format!("{ak}-secret"))
        .region("cn-hangzhou")
        .start()
        .await
        .map_err(|e| e.to_string())
}

fn job(source: &Emulator, dest: &Emulator) -> String {
    serde_json::json!({
        "version": 1, "name": JOB,
        "source": {
            "kind": "s3", "bucket": SRC, "region": "cn-hangzhou", "endpoint": source.endpoint(),
            "path_style": true, "allow_http": true, "credentials": { "secret": "src" }
        },
        "destination": {
            "bucket": DST, "region": "cn-hangzhou", "endpoint": dest.endpoint(),
            "allow_http": true, "credentials": { "secret": "dst" }
        }
    })
    .to_string()
}

fn secrets(source: &Emulator, dest: &Emulator) -> Arc<StaticSecrets> {
    let (s, d) = (source.access_key_id(), dest.access_key_id());
    let secret = |v: serde_json::Value| ferry::secret::Secret::new(v.to_string());
    Arc::new(StaticSecrets(
        [
            (
                "src".to_owned(),
                secret(serde_json::json!({"access_key_id": s, "secret_access_key": format!("{s}-secret")})),
            ),
            (
                "dst".to_owned(),
                secret(serde_json::json!({"access_key_id": d, "access_key_secret": format!("{d}-secret")})),
            ),
        ]
        .into(),
    ))
}

fn options(dir: &Path, workers: usize) -> Options {
    let mut options = Options::new(dir);
    options.workers = workers;
    options
}

/// S3's notification for one PutObject, as it arrives on an SQS queue.
fn notification(key: &str, size: usize) -> String {
    let now = chrono::Utc::now();
    serde_json::json!({ "Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "cn-hangzhou",
        "eventTime": now.to_rfc3339(), "eventName": "ObjectCreated:Put",
        "s3": { "s3SchemaVersion": "1.0", "configurationId": "bench",
            "bucket": { "name": SRC, "arn": format!("arn:aws:s3:::{SRC}") },
            "object": { "key": key, "size": size,
                "sequencer": format!("{:016X}", now.timestamp_nanos_opt().unwrap_or(0)) } }
    }]})
    .to_string()
}

fn append(path: &Path, table: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    writeln!(
        f,
        "\n### {} — `{command}`\n\nMachine: {} cores, loopback only.\n\n{table}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
}
