//! The migration benchmark: three datasets copied from an S3 server to the OSS emulator, by
//! ferry, by rclone and by a raw GET→PUT pipe with no checks (the ceiling), on the same servers
//! in the same run.
//!
//! The S3 server is an OSS emulator speaking OSS's S3-compatible dialect (the one rclone and
//! aws-sdk-s3 use against real OSS); every contender copies into a fresh destination emulator.
//! Each contender runs as its own process, so its peak RSS and CPU time are its own (`wait4`).
//!
//! For quick checks, `--contenders ferry,raw` skips rclone and `--datasets small` the large sets;
//! `FERRY_BENCH_WRAP="perf record -g -o FILE --"` runs the ferry and raw workers under a
//! profiler (then the measured CPU and RSS include the profiler: do not record such runs).

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};

use crate::procs::{self, EmulatorProcess};
use crate::raw_oss::RawOss;
use crate::report::{Row, Table};
use ferry::testing::data::seeded;

pub const AK: &str = "bench-ak";
pub const SK: &str = "bench-sk";
pub const REGION: &str = "cn-hangzhou";
pub const SOURCE_BUCKET: &str = "bench-src";
pub const DEST_BUCKET: &str = "bench-dst";

/// rclone's flags, tuned for loopback S3→S3 with many small objects and a few large ones.
pub const RCLONE_FLAGS: &[&str] = &[
    "--transfers=64",
    "--checkers=64",
    "--fast-list",
    "--s3-upload-cutoff=64M",
    "--s3-chunk-size=16M",
    "--s3-upload-concurrency=4",
    "--retries=1",
    "--low-level-retries=3",
    "--stats=0",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Dataset {
    /// 20,000 × 16 KiB
    Small,
    /// 200 × 8 MiB
    Medium,
    /// 4 × 1 GiB
    Large,
}

impl Dataset {
    fn spec(self) -> (&'static str, usize, usize) {
        match self {
            Dataset::Small => ("small", 20_000, 16 << 10),
            Dataset::Medium => ("medium", 200, 8 << 20),
            Dataset::Large => ("large", 4, 1 << 30),
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[arg(long, value_delimiter = ',', default_values = ["small", "medium", "large"])]
    pub datasets: Vec<Dataset>,
    /// The emulator binary (default: `oss-emulator` beside this executable).
    #[arg(long)]
    pub emulator: Option<PathBuf>,
    /// The rclone binary.
    #[arg(long, default_value = "rclone")]
    pub rclone: String,
    /// Objects copied at the same time by ferry and the raw pipe.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Scale every dataset's object count down by this factor (quick runs).
    #[arg(long, default_value_t = 1)]
    pub scale_down: usize,
    /// Which contenders to run (all three for a recorded comparison; fewer for quick checks).
    #[arg(long, value_delimiter = ',', default_values = ["ferry", "rclone", "raw"])]
    pub contenders: Vec<Contender>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Contender {
    /// ferry's engine (`worker ferry`)
    Ferry,
    /// rclone copy
    Rclone,
    /// the raw GET→PUT pipe (`worker raw`)
    Raw,
}

impl Contender {
    fn label(self) -> &'static str {
        match self {
            Contender::Ferry => "ferry",
            Contender::Rclone => "rclone",
            Contender::Raw => "raw GET→PUT",
        }
    }
}

pub async fn run(args: Args) -> Result<Vec<Table>, String> {
    let emulator = procs::emulator_path(args.emulator.as_deref())?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut tables = Vec::new();
    for dataset in &args.datasets {
        let (name, count, size) = dataset.spec();
        let count = (count / args.scale_down.max(1)).max(1);
        let source = EmulatorProcess::start(&emulator)?;
        seed(&source.endpoint, name, count, size).await?;
        let mut table = Table::new(format!(
            "{name}: {count} × {} from an S3 server to the OSS emulator (loopback, in memory)",
            human(size as u64)
        ));
        for &contender in &args.contenders {
            let dest = EmulatorProcess::start(&emulator)?;
            RawOss::new(&dest.endpoint, AK, SK, REGION)
                .create_bucket(DEST_BUCKET)
                .await?;
            let command = match contender {
                Contender::Ferry => worker(
                    &me,
                    "ferry",
                    &source.endpoint,
                    &dest.endpoint,
                    name,
                    count,
                    args.concurrency,
                ),
                Contender::Rclone => rclone(&args.rclone, &source.endpoint, &dest.endpoint, name),
                Contender::Raw => worker(
                    &me,
                    "raw",
                    &source.endpoint,
                    &dest.endpoint,
                    name,
                    count,
                    args.concurrency,
                ),
            };
            let run = procs::measure(command)?;
            let contender = contender.label();
            let copied = RawOss::new(&dest.endpoint, AK, SK, REGION)
                .count(DEST_BUCKET, name)
                .await?;
            if copied != count {
                return Err(format!(
                    "{contender} copied {copied} of {count} objects in {name}: {}",
                    run.output
                ));
            }
            table.push(
                Row::new(contender, count as u64, (count * size) as u64, run.elapsed)
                    .server(run.peak_rss, run.cpu),
            );
        }
        tables.push(table);
    }
    Ok(tables)
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b => format!("{} KiB", b >> 10),
    }
}

/// Fills the source bucket with `count` reproducible objects `name/0000000…`.
async fn seed(endpoint: &str, name: &str, count: usize, size: usize) -> Result<(), String> {
    let oss = RawOss::new(endpoint, AK, SK, REGION);
    oss.create_bucket(SOURCE_BUCKET).await?;
    // Small objects share one buffer; large ones are generated as they are sent, so this
    // process stays small (a child's peak RSS starts from its parent's when it is spawned).
    let body = Bytes::from(seeded(0, size.min(1 << 20)));
    let concurrency = if size >= 256 << 20 { 2 } else { 32 };
    let results: Vec<Result<(), String>> = stream::iter(0..count)
        .map(|i| {
            let (oss, body) = (oss.clone(), body.clone());
            let key = format!("{name}/{i:07}");
            async move {
                if size <= 1 << 20 {
                    oss.put(SOURCE_BUCKET, &key, body).await
                } else {
                    oss.put_generated(SOURCE_BUCKET, &key, size as u64).await
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.into_iter().collect()
}

fn worker(
    me: &Path,
    kind: &str,
    src: &str,
    dst: &str,
    name: &str,
    count: usize,
    concurrency: usize,
) -> Command {
    // `FERRY_BENCH_WRAP="perf record -g -o /tmp/ferry.data --"` runs the worker under a profiler
    // (the measured CPU and RSS are then the wrapper's too: for profiling, not for recording).
    let wrap = std::env::var("FERRY_BENCH_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace();
    let mut c = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(me);
            c
        }
        None => Command::new(me),
    };
    c.args([
        "worker",
        kind,
        "--source",
        src,
        "--destination",
        dst,
        "--prefix",
    ])
    .arg(format!("{name}/"))
    .args([
        "--count",
        &count.to_string(),
        "--concurrency",
        &concurrency.to_string(),
    ]);
    c
}

fn rclone(bin: &str, src: &str, dst: &str, name: &str) -> Command {
    let mut c = Command::new(bin);
    for (remote, endpoint) in [("SRC", src), ("DST", dst)] {
        let var = |k: &str| format!("RCLONE_CONFIG_{remote}_{k}");
        c.env(var("TYPE"), "s3")
            .env(var("PROVIDER"), "Other")
            .env(var("ENDPOINT"), endpoint)
            .env(var("ACCESS_KEY_ID"), AK)
            .env(var("SECRET_ACCESS_KEY"), SK)
            .env(var("REGION"), REGION)
            .env(var("FORCE_PATH_STYLE"), "true");
    }
    // rclone's AWS SDK refuses to start when AWS_CA_BUNDLE is set and its transport is custom;
    // loopback HTTP needs no CA anyway.
    c.env_remove("AWS_CA_BUNDLE")
        .env("RCLONE_CONFIG", "/dev/null")
        .arg("copy")
        .arg(format!("SRC:{SOURCE_BUCKET}/{name}"))
        .arg(format!("DST:{DEST_BUCKET}/{name}"))
        .args(RCLONE_FLAGS);
    c
}
