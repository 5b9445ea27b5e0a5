//! The planner at scale: a bucket of N objects (zero bytes each) in the OSS emulator, planned over
//! HTTP with ferry's planner defaults, in a child process so its peak memory is its own.
//!
//! The parent seeds an in-process emulator straight into its store (`Emulator::seed_objects`,
//! no HTTP) with a realistic layout — a big flat directory, nested tenant/date directories, a
//! two-level image tree and keys at the top — and runs `ferry-bench plan-worker` against it.
//! The worker plans the whole bucket and reports wall time, listings, keys read, shards and its
//! peak RSS (`VmHWM` of its own `/proc/self/status`, read after planning: a child's kernel
//! `ru_maxrss` would include its parent's memory at spawn, here a seeded emulator).

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use ferry::oss::{Credentials, OssClient};
use ferry::plan::{KeyRange, PlanOptions, PlanOutcome, PlannedRange, plan_ranges};
use ferry::source::oss::OssSource;
use ferry::source::s3::S3Source;
use ferry::source::{ListRequest, Source};
use futures_util::stream::{self, StreamExt};
use oss_emulator::Emulator;
use serde::{Deserialize, Serialize};

use crate::migrate::{AK, REGION, SK, SOURCE_BUCKET};
use crate::{proc_stats, procs};

/// The line the worker prints its result on.
const RESULT_TAG: &str = "PLAN-RESULT ";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum Dialect {
    /// ferry's OSS client (`OssSource`)
    Oss,
    /// aws-sdk-s3 against the emulator's S3 dialect (`S3Source`)
    S3,
}

/// Planner settings shared by the benchmark and its worker.
#[derive(clap::Args, Debug, Clone)]
pub struct Tuning {
    #[arg(long, value_enum, default_value = "oss")]
    pub dialect: Dialect,
    #[arg(long, default_value_t = PlanOptions::default().target_keys_per_shard)]
    pub target_keys_per_shard: u64,
    #[arg(long, default_value_t = PlanOptions::default().max_shards)]
    pub max_shards: u64,
    #[arg(long, default_value_t = PlanOptions::default().probe_keys)]
    pub probe_keys: u32,
    #[arg(long, default_value_t = PlanOptions::default().scan_depth)]
    pub scan_depth: u32,
    #[arg(long, default_value_t = PlanOptions::default().list_concurrency)]
    pub list_concurrency: usize,
}

impl Tuning {
    fn options(&self) -> PlanOptions {
        PlanOptions {
            target_keys_per_shard: self.target_keys_per_shard,
            max_shards: self.max_shards,
            probe_keys: self.probe_keys,
            scan_depth: self.scan_depth,
            list_concurrency: self.list_concurrency,
            ..PlanOptions::default()
        }
    }

    fn worker_args(&self) -> Vec<String> {
        let dialect = match self.dialect {
            Dialect::Oss => "oss",
            Dialect::S3 => "s3",
        };
        [
            ("--dialect", dialect.to_owned()),
            (
                "--target-keys-per-shard",
                self.target_keys_per_shard.to_string(),
            ),
            ("--max-shards", self.max_shards.to_string()),
            ("--probe-keys", self.probe_keys.to_string()),
            ("--scan-depth", self.scan_depth.to_string()),
            ("--list-concurrency", self.list_concurrency.to_string()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_owned(), v])
        .collect()
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Bucket sizes to plan, one child process each.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000_000u64, 100_000])]
    pub objects: Vec<u64>,
    #[command(flatten)]
    pub tuning: Tuning,
}

#[derive(clap::Args, Debug, Clone)]
pub struct WorkerArgs {
    /// The emulator to plan (`http://127.0.0.1:PORT`).
    #[arg(long)]
    pub endpoint: String,
    #[command(flatten)]
    pub tuning: Tuning,
}

/// What the worker measured.
#[derive(Debug, Serialize, Deserialize)]
struct Measured {
    seconds: f64,
    shards: u64,
    /// The plan's own idea of the object count (exact counts plus estimates).
    estimated: u64,
    /// Objects found by listing every range afterwards (not part of the timing).
    covered: u64,
    list_requests: u64,
    keys_read: u64,
    prefixes_read: u64,
    rounds: u64,
    /// User + system CPU of the planning alone.
    cpu_seconds: Option<f64>,
    peak_rss: Option<u64>,
    rss_before: Option<u64>,
}

/// One bucket size's results.
struct Row {
    objects: u64,
    seed_seconds: f64,
    m: Measured,
}

pub async fn run(args: Args, record: Option<&Path>) -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for &n in &args.objects {
        let emu = Emulator::builder()
            .credentials(AK, SK)
            .region(REGION)
            .start()
            .await
            .map_err(|e| e.to_string())?;
        emu.create_bucket(SOURCE_BUCKET)
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        let stored = emu
            .seed_objects(SOURCE_BUCKET, (0..n).map(|i| (layout_key(i), Vec::new())))
            .map_err(|e| e.to_string())?;
        let seed_seconds = started.elapsed().as_secs_f64();
        if stored != n {
            return Err(format!("seeded {stored} of {n} objects"));
        }
        let mut command = Command::new(&me);
        command
            .args(["plan-worker", "--endpoint", &emu.endpoint()])
            .args(args.tuning.worker_args());
        let run = tokio::task::spawn_blocking(move || procs::measure(command))
            .await
            .map_err(|e| e.to_string())??;
        if std::env::var_os("FERRY_PLAN_DUMP").is_some() {
            eprintln!("{}", run.output);
        }
        let m = parse(&run.output)?;
        if m.covered != n {
            return Err(format!(
                "listing the plan's ranges found {} of the {n} objects",
                m.covered
            ));
        }
        eprintln!("planned {n} objects in {:.2} s", m.seconds);
        rows.push(Row {
            objects: n,
            seed_seconds,
            m,
        });
        emu.shutdown().await;
    }
    let table = markdown(&args.tuning, &rows);
    println!("{table}");
    if let Some(path) = record {
        append(path, &table).map_err(|e| format!("cannot record in {}: {e}", path.display()))?;
        println!("recorded in {}", path.display());
    }
    Ok(())
}

fn parse(output: &str) -> Result<Measured, String> {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix(RESULT_TAG))
        .ok_or_else(|| format!("the worker printed no result: {output}"))?;
    serde_json::from_str(line).map_err(|e| format!("bad worker result {line:?}: {e}"))
}

/// Key `i` of the benchmark bucket. Shares: 40% one flat directory of hashed names, 45%
/// `tenants/tNN/YYYY-MM-DD/…` (64 tenants, dated), 10% `images/xN/…`, 5% at the top.
fn layout_key(i: u64) -> String {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16;
    match i % 20 {
        0..=7 => format!("events/{h:012x}.json.gz"),
        8..=16 => format!(
            "tenants/t{:02}/2024-{:02}-{:02}/obj-{i:09}.json",
            h % 64,
            h / 64 % 12 + 1,
            h / 768 % 28 + 1
        ),
        17 | 18 => format!(
            "images/{}{}/{i:09}.jpg",
            (b'a' + (h % 26) as u8) as char,
            h / 26 % 10
        ),
        _ => format!("top-{i:09}"),
    }
}

/// The child: plans the emulator's bucket and prints one `PLAN-RESULT {json}` line.
pub async fn worker(args: WorkerArgs) -> Result<(), String> {
    let source: Box<dyn Source> = match args.tuning.dialect {
        Dialect::Oss => {
            let client = OssClient::builder()
                .endpoint(&args.endpoint)
                .region(REGION)
                .credentials(Credentials::new(AK, SK))
                .allow_http(true)
                .build()
                .map_err(|e| e.to_string())?;
            Box::new(OssSource::new(client, SOURCE_BUCKET, ""))
        }
        Dialect::S3 => {
            let config =
                ferry::testing::s3_config(args.endpoint.clone(), REGION, SOURCE_BUCKET, AK, SK);
            Box::new(S3Source::new(config).await.map_err(|e| e.to_string())?)
        }
    };
    let rss_before = status_kib("VmRSS:");
    let cpu_before = proc_stats::cpu_time(std::process::id());
    let started = Instant::now();
    let outcome = plan_ranges(source.as_ref(), &args.tuning.options(), None)
        .await
        .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_after = proc_stats::cpu_time(std::process::id());
    let cpu_seconds = cpu_before
        .zip(cpu_after)
        .map(|(a, b)| (b - a).as_secs_f64());
    let PlanOutcome::Complete { ranges, stats } = outcome else {
        return Err("a plan without a deadline stopped early".into());
    };
    let peak_rss = status_kib("VmHWM:");
    if std::env::var_os("FERRY_PLAN_DUMP").is_some() {
        for r in &ranges {
            eprintln!("DUMP {} {} {:?}", r.estimated_keys, r.exact, r.range);
        }
        eprintln!("DUMP {stats:?}");
    }
    let covered = covered(source.as_ref(), &ranges).await?;
    let m = Measured {
        seconds,
        shards: ranges.len() as u64,
        estimated: ranges.iter().map(|r| r.estimated_keys).sum(),
        covered,
        list_requests: stats.list_requests,
        keys_read: stats.keys_read,
        prefixes_read: stats.prefixes_read,
        rounds: stats.rounds,
        cpu_seconds,
        peak_rss,
        rss_before,
    };
    println!(
        "{RESULT_TAG}{}",
        serde_json::to_string(&m).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// Lists every range as a transfer worker would and counts its keys; fails if a key turns up
/// outside its range or in two ranges (ranges are disjoint intervals in key order, so a key in
/// two would show as a listing out of order).
async fn covered(source: &dyn Source, ranges: &[PlannedRange]) -> Result<u64, String> {
    let counts = stream::iter(ranges)
        .map(|r| count_range(source, &r.range))
        .buffered(16)
        .collect::<Vec<_>>()
        .await;
    let mut total = 0;
    let mut previous_last: Option<String> = None;
    for (count, first, last) in counts.into_iter().collect::<Result<Vec<_>, _>>()? {
        if let (Some(prev), Some(first)) = (&previous_last, &first)
            && first <= prev
        {
            return Err(format!(
                "{first:?} is listed after {prev:?}: ranges overlap"
            ));
        }
        total += count;
        previous_last = last.or(previous_last);
    }
    Ok(total)
}

/// Keys in `range`: how many, the first and the last.
async fn count_range(
    source: &dyn Source,
    range: &KeyRange,
) -> Result<(u64, Option<String>, Option<String>), String> {
    let mut req = ListRequest {
        prefix: range.prefix.clone(),
        start_after: range.start_after.clone(),
        max_keys: 1000,
        ..Default::default()
    };
    let (mut count, mut first, mut last) = (0, None, None);
    loop {
        let page = source.list(&req).await.map_err(|e| e.to_string())?;
        let mut ended = false;
        for o in page.objects {
            if !range.contains(&o.key) {
                ended = true;
                break;
            }
            count += 1;
            first.get_or_insert_with(|| o.key.clone());
            last = Some(o.key);
        }
        match page.next {
            Some(token) if !ended => req.continuation = Some(token),
            _ => return Ok((count, first, last)),
        }
    }
}

/// A `kB` line of `/proc/self/status`, in bytes.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn markdown(tuning: &Tuning, rows: &[Row]) -> String {
    let mib = |b: Option<u64>| b.map_or("–".into(), |b| format!("{:.0}", b as f64 / 1048576.0));
    let mut s = format!(
        "**plan: buckets of zero-byte objects in the OSS emulator, planned over HTTP ({:?} dialect; target {} keys/shard, max {} shards, probes of {} keys, scan depth {}, {} listings in flight)**\n\n",
        tuning.dialect,
        tuning.target_keys_per_shard,
        tuning.max_shards,
        tuning.probe_keys,
        tuning.scan_depth,
        tuning.list_concurrency
    );
    s.push_str("| objects | shards | list requests | keys read | seconds | keys read/s | objects covered/s | planner peak RSS MiB | planner CPU s | estimated objects | seeding s |\n");
    s.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let m = &r.m;
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} | {:.0} | {:.0} | {} | {} | {} | {:.1} |\n",
            r.objects,
            m.shards,
            m.list_requests,
            m.keys_read,
            m.seconds,
            m.keys_read as f64 / m.seconds,
            r.objects as f64 / m.seconds,
            mib(m.peak_rss),
            m.cpu_seconds.map_or("–".into(), |c| format!("{c:.2}")),
            m.estimated,
            r.seed_seconds,
        ));
    }
    s
}

/// Appends the table under a heading with the date, the command and the machine, like the
/// other benchmarks' records.
fn append(path: &Path, table: &str) -> std::io::Result<()> {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(
        f,
        "\n### {} — `{command}`\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    )?;
    writeln!(f, "Machine: {cores} cores, loopback only.\n")?;
    writeln!(f, "{table}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_keys_are_distinct_and_valid() {
        let keys: std::collections::BTreeSet<String> = (0..200_000).map(layout_key).collect();
        assert_eq!(keys.len(), 200_000);
        assert!(keys.iter().all(|k| !k.starts_with('/') && k.len() < 1024));
    }
}
