//! `ferry-bench`: ferry's benchmark harness. Benchmarks are not tests: they print throughput,
//! objects/s, peak memory and CPU per GB, and `--record FILE` appends the results, with the
//! command that produced them, to a Markdown file kept in the repo (see `tests/bench/RESULTS.md`).
//!
//! Run them from a release build: `cargo run --release -p ferry-bench -- <benchmark> [--record tests/bench/RESULTS.md]`.

mod emulator_ceiling;
mod events;
mod migrate;
mod plan;
mod proc_stats;
mod procs;
mod raw_oss;
mod report;
mod soak;
mod worker;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "ferry's benchmarks (loopback only)")]
struct Cli {
    /// Append the results to this Markdown file.
    #[arg(long, global = true)]
    record: Option<std::path::PathBuf>,
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// The OSS emulator's own ceiling: PUT/GET MB/s of large objects, requests/s of small ones.
    EmulatorCeiling(emulator_ceiling::Args),
    /// The event path: requests, state writes and latency per event-copied object.
    Events(events::Args),
    /// Migration datasets from an S3 server to the OSS emulator: ferry, rclone and a raw pipe.
    Migrate(migrate::Args),
    /// The planner at scale: buckets of N objects in the emulator, planned over HTTP.
    Plan(plan::Args),
    /// (internal) The planner of `plan`, run as its own process.
    #[command(hide = true)]
    PlanWorker(plan::WorkerArgs),
    /// A whole `ferry run` of N objects between two emulator processes injecting faults, then
    /// every object read back with oss2 (run by hand; exits 1 when the result is not exact).
    Soak(soak::Args),
    /// (internal) One contender of `migrate`, run as its own process.
    #[command(hide = true)]
    Worker(worker::Args),
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let tables = match cli.bench {
        Bench::EmulatorCeiling(args) => emulator_ceiling::run(args).await.map(|t| vec![t]),
        Bench::Migrate(args) => migrate::run(args).await,
        Bench::Plan(args) => {
            // Prints and records its own table (its columns are not throughput's).
            if let Err(e) = plan::run(args, cli.record.as_deref()).await {
                eprintln!("benchmark failed: {e}");
                std::process::exit(1);
            }
            return;
        }
        Bench::Events(args) => {
            if let Err(e) = events::run(args, cli.record.as_deref()).await {
                eprintln!("benchmark failed: {e}");
                std::process::exit(1);
            }
            return;
        }
        Bench::Soak(args) => {
            // Prints and records its own tables, exact or not.
            match soak::run(args, cli.record.as_deref()).await {
                Ok(true) => {}
                Ok(false) => {
                    eprintln!("soak: the result is NOT exact (see the table)");
                    std::process::exit(1);
                }
                Err(e) => {
                    eprintln!("benchmark failed: {e}");
                    std::process::exit(1);
                }
            }
            return;
        }
        Bench::PlanWorker(args) => {
            if let Err(e) = plan::worker(args).await {
                eprintln!("plan worker failed: {e}");
                std::process::exit(1);
            }
            return;
        }
        Bench::Worker(args) => {
            if let Err(e) = worker::run(args).await {
                eprintln!("worker failed: {e}");
                std::process::exit(1);
            }
            return;
        }
    };
    let tables = match tables {
        Ok(t) => t,
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            std::process::exit(1);
        }
    };
    for t in &tables {
        println!("{}", t.markdown());
    }
    if let Some(path) = cli.record {
        if let Err(e) = report::record(&path, &command, &tables) {
            eprintln!("cannot record results in {}: {e}", path.display());
            std::process::exit(1);
        }
        println!("recorded in {}", path.display());
    }
}
