//! `oss-emulator`: runs the OSS protocol server until SIGTERM or SIGINT.
//!
//! The first line on stdout is `listening on http://ADDR:PORT`; tools wait for it to learn the
//! port. Logs go to stderr (`RUST_LOG`, default `warn`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use oss_emulator::{Emulator, FaultRule};

/// An Alibaba Cloud OSS protocol server for tests, demos and benchmarks.
#[derive(Parser, Debug)]
#[command(name = "oss-emulator", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The AccessKey id requests must be signed with.
    #[arg(long, env = "OSS_EMULATOR_ACCESS_KEY_ID")]
    access_key_id: String,
    /// The AccessKey secret requests must be signed with.
    #[arg(long, env = "OSS_EMULATOR_ACCESS_KEY_SECRET", hide_env_values = true)]
    access_key_secret: String,
    /// Region id signatures must use (an `oss-` prefix is accepted and dropped).
    #[arg(long, default_value = "cn-hangzhou")]
    region: String,
    /// Keep data on disk here (it survives restarts); default: in memory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// How long RestoreObject takes, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    restore_delay_ms: u64,
    /// A fault rule, e.g. `op=PutObject,status=503,rate=0.05` (repeatable).
    #[arg(long = "fault", value_parser = parse_fault)]
    faults: Vec<FaultRule>,
    /// Seed of the fault RNG (default: random).
    #[arg(long)]
    fault_seed: Option<u64>,
    /// Extra base domain for virtual-hosted addressing, `bucket.<domain>` (repeatable).
    #[arg(long = "domain")]
    domains: Vec<String>,
    /// Bucket to create at start (repeatable).
    #[arg(long = "bucket")]
    buckets: Vec<String>,
    /// How far the server's clock is from real time, in milliseconds (negative: behind); used
    /// for the Date header, the 15-minute skew check and every stored time.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, value_parser = parse_offset)]
    clock_offset_ms: i64,
}

fn parse_offset(s: &str) -> Result<i64, String> {
    let ms: i64 = s.parse().map_err(|e| format!("{e}"))?;
    chrono::TimeDelta::try_milliseconds(ms)
        .map(|_| ms)
        .ok_or_else(|| "out of range".to_owned())
}

fn parse_fault(s: &str) -> Result<FaultRule, String> {
    s.parse::<FaultRule>().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("oss-emulator: error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oss-emulator: error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = Emulator::builder()
        .credentials(args.access_key_id, args.access_key_secret)
        .region(args.region)
        .listen(args.listen)
        .data_dir(args.data_dir)
        .restore_delay(Duration::from_millis(args.restore_delay_ms))
        .clock_offset(chrono::TimeDelta::milliseconds(args.clock_offset_ms));
    if let Some(seed) = args.fault_seed {
        builder = builder.fault_seed(seed);
    }
    for rule in args.faults {
        builder = builder.fault(rule);
    }
    for d in args.domains {
        builder = builder.domain(d);
    }
    for b in args.buckets {
        builder = builder.bucket(b);
    }
    let emu = builder.start().await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", emu.endpoint())?;
        out.flush()?;
    }
    wait_for_signal().await?;
    emu.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
