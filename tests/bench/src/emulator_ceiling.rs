//! The OSS emulator's own ceiling on loopback, in memory: MB/s for PUT and GET of large objects
//! and requests/s for small ones, at high concurrency. Every migration benchmark moves data
//! through this server, so its numbers are the upper bound those results are read against.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::proc_stats;
use crate::raw_oss::RawOss;
use crate::report::{Row, Table};

const AK: &str = "bench-ak";
const SK: &str = "bench-sk";
const REGION: &str = "cn-hangzhou";
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

struct Emulator {
    child: Child,
    endpoint: String,
}

async fn start_emulator(bin: &std::path::Path) -> Result<Emulator, String> {
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--access-key-id", AK, "--access-key-secret", SK, "--region", REGION])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the emulator {}: {e} (build it: cargo build --release -p oss-emulator)", bin.display()))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .map_err(|_| "the emulator did not print its address within 30 s".to_owned())?
        .map_err(|e| e.to_string())?
        .ok_or("the emulator exited before printing its address")?;
    let endpoint = first
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected first line from the emulator: {first:?}"))?
        .to_owned();
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Emulator { child, endpoint })
}

/// Runs `count` operations with `concurrency` in flight; returns (elapsed, bytes moved).
async fn drive<F, Fut>(count: usize, concurrency: usize, op: F) -> Result<(Duration, u64), String>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<u64, String>>,
{
    let start = Instant::now();
    let results: Vec<Result<u64, String>> = stream::iter(0..count).map(op).buffer_unordered(concurrency).collect().await;
    let elapsed = start.elapsed();
    let mut bytes = 0;
    for r in results {
        bytes += r?;
    }
    Ok((elapsed, bytes))
}

pub async fn run(args: Args) -> Result<Table, String> {
    let bin = match &args.emulator {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("oss-emulator"),
    };
    let emu = start_emulator(&bin).await?;
    let pid = emu.child.id().ok_or("the emulator exited")?;
    let oss = Arc::new(RawOss::new(&emu.endpoint, AK, SK, REGION));
    oss.create_bucket(BUCKET).await?;

    let large = Bytes::from(pseudo_random(args.large_mib << 20));
    let small = Bytes::from(pseudo_random(args.small_kib << 10));
    let mut table = Table::new(format!(
        "OSS emulator ceiling (in memory, loopback): {} × {} MiB at {} in flight; {} × {} KiB at {} in flight",
        args.large_count, args.large_mib, args.large_concurrency, args.small_count, args.small_kib, args.small_concurrency
    ));

    let mut measure = async |name: &str, count: usize, concurrency: usize, kind: Kind| -> Result<(), String> {
        let cpu_before = proc_stats::cpu_time(pid).unwrap_or_default();
        let (elapsed, bytes) = match kind {
            Kind::PutLarge => {
                drive(count, concurrency, |i| {
                    let (oss, body) = (oss.clone(), large.clone());
                    async move { oss.put(BUCKET, &format!("large/{i:05}"), body.clone()).await.map(|_| body.len() as u64) }
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
                    async move { oss.put(BUCKET, &format!("small/{i:07}"), body.clone()).await.map(|_| body.len() as u64) }
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
        let cpu = proc_stats::cpu_time(pid).unwrap_or_default().saturating_sub(cpu_before);
        table.push(Row::new(name, count as u64, bytes, elapsed).server(proc_stats::peak_rss(pid), cpu));
        Ok(())
    };
    measure("PUT large", args.large_count, args.large_concurrency, Kind::PutLarge).await?;
    measure("GET large", args.large_count, args.large_concurrency, Kind::GetLarge).await?;
    measure("PUT small", args.small_count, args.small_concurrency, Kind::PutSmall).await?;
    measure("GET small", args.small_count, args.small_concurrency, Kind::GetSmall).await?;
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

/// Incompressible, reproducible bytes (xorshift), so nothing on the path can shortcut them.
pub fn pseudo_random(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
