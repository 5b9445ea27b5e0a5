//! The OSS emulator's own ceiling on loopback, in memory: MB/s for PUT and GET of large objects
//! and requests/s for small ones, at high concurrency. Every migration benchmark moves data
//! through this server, so its numbers are the upper bound those results are read against.

use ferry::testing::data::seeded;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};

use crate::proc_stats;
use crate::procs::{EmulatorProcess, emulator_path};
use crate::raw_oss::RawOss;
use crate::report::{Row, Table};

use crate::migrate::{AK, REGION, SK};
const BUCKET: &str = "ceiling";

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The emulator binary (default: `oss-emulator` beside this benchmark's executable).
    #[arg(long)]
    pub emulator: Option<std::path::PathBuf>,
    /// Number of large objects.
    #[arg(long, default_value_t = 32)]
    pub large_count: usize,
    /// Size of each large object, MiB.
    #[arg(long, default_value_t = 64)]
    pub large_mib: usize,
    /// Requests in flight for large objects.
    #[arg(long, default_value_t = 8)]
    pub large_concurrency: usize,
    /// Number of small objects.
    #[arg(long, default_value_t = 20_000)]
    pub small_count: usize,
    /// Size of each small object, KiB.
    #[arg(long, default_value_t = 16)]
    pub small_kib: usize,
    /// Requests in flight for small objects.
    #[arg(long, default_value_t = 128)]
    pub small_concurrency: usize,
}

/// Runs `count` operations with `concurrency` in flight; returns (elapsed, bytes moved).
async fn drive<F, Fut>(count: usize, concurrency: usize, op: F) -> Result<(Duration, u64), String>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<u64, String>>,
{
    let start = Instant::now();
    let results: Vec<Result<u64, String>> = stream::iter(0..count)
        .map(op)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = start.elapsed();
    let mut bytes = 0;
    for r in results {
        bytes += r?;
    }
    Ok((elapsed, bytes))
}

pub async fn run(args: Args) -> Result<Table, String> {
    let emu = EmulatorProcess::start(&emulator_path(args.emulator.as_deref())?)?;
    let pid = emu.pid();
    let oss = Arc::new(RawOss::new(&emu.endpoint, AK, SK, REGION));
    oss.create_bucket(BUCKET).await?;

    let large = Bytes::from(seeded(0, args.large_mib << 20));
    let small = Bytes::from(seeded(0, args.small_kib << 10));
    let mut table = Table::new(format!(
        "OSS emulator ceiling (in memory, loopback): {} × {} MiB at {} in flight; {} × {} KiB at {} in flight",
        args.large_count,
        args.large_mib,
        args.large_concurrency,
        args.small_count,
        args.small_kib,
        args.small_concurrency
    ));

    let mut measure =
        async |name: &str, count: usize, concurrency: usize, kind: Kind| -> Result<(), String> {
            let cpu_before = proc_stats::cpu_time(pid).unwrap_or_default();
            let (elapsed, bytes) = match kind {
                Kind::PutLarge => {
                    drive(count, concurrency, |i| {
                        let (oss, body) = (oss.clone(), large.clone());
                        async move {
                            oss.put(BUCKET, &format!("large/{i:05}"), body.clone())
                                .await
                                .map(|_| body.len() as u64)
                        }
                    })
                    .await?
                }
                Kind::GetLarge => {
                    drive(count, concurrency, |i| {
                        let oss = oss.clone();
                        async move { oss.get(BUCKET, &format!("large/{i:05}")).await }
                    })
                    .await?
                }
                Kind::PutSmall => {
                    drive(count, concurrency, |i| {
                        let (oss, body) = (oss.clone(), small.clone());
                        async move {
                            oss.put(BUCKET, &format!("small/{i:07}"), body.clone())
                                .await
                                .map(|_| body.len() as u64)
                        }
                    })
                    .await?
                }
                Kind::GetSmall => {
                    drive(count, concurrency, |i| {
                        let oss = oss.clone();
                        async move { oss.get(BUCKET, &format!("small/{i:07}")).await }
                    })
                    .await?
                }
            };
            let cpu = proc_stats::cpu_time(pid)
                .unwrap_or_default()
                .saturating_sub(cpu_before);
            table.push(
                Row::new(name, count as u64, bytes, elapsed).server(proc_stats::peak_rss(pid), cpu),
            );
            Ok(())
        };
    measure(
        "PUT large",
        args.large_count,
        args.large_concurrency,
        Kind::PutLarge,
    )
    .await?;
    measure(
        "GET large",
        args.large_count,
        args.large_concurrency,
        Kind::GetLarge,
    )
    .await?;
    measure(
        "PUT small",
        args.small_count,
        args.small_concurrency,
        Kind::PutSmall,
    )
    .await?;
    measure(
        "GET small",
        args.small_count,
        args.small_concurrency,
        Kind::GetSmall,
    )
    .await?;
    drop(emu);
    Ok(table)
}

#[derive(Clone, Copy)]
enum Kind {
    PutLarge,
    GetLarge,
    PutSmall,
    GetSmall,
}
