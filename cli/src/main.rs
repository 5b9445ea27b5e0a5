//! `ferry`: the command line. A thin shell around the `ferry` engine crate: it parses arguments,
//! starts what a command needs and prints results; the work itself lives in the engine.

mod cutover;
mod demo;
mod estimate;
mod follow;
mod plan;
mod report;
mod run;
mod stack;
mod start;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ferry",
    version,
    about = "Migrate S3, S3-compatible and OSS buckets into Alibaba Cloud OSS, and prove it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a migration end to end on local emulators (no cloud account needed) and print the report.
    Demo(demo::Args),
    /// Start a run on a deployed stack (its outputs name the state bucket and queues).
    Start(start::Args),
    /// Run a job in this process: plan, copy, verify, report. Re-run to resume an interrupted run.
    Run(run::Args),
    /// Copy again only what a finished run left failed or needing a restore (no listing).
    Retry {
        #[command(flatten)]
        args: run::Args,
        /// The finished run to retry (`ferry status JOB` names the latest).
        #[arg(long = "run", value_name = "RUN")]
        of: String,
    },
    /// Keep the destination current from the source bucket's events (an SQS queue it notifies).
    Follow(follow::Args),
    /// Switch applications to OSS: mirror back-to-origin on and off, T2, status and the plan.
    Cutover(cutover::Args),
    /// What a run would copy, counted from the source's listings; writes nothing (`--dry-run`).
    Plan(plan::Args),
    /// Before a run: time, functions, requests and cost, from a listing, a manifest or totals.
    Estimate(estimate::Args),
    /// Where a run is: counts, rate, tasks outstanding, the verdict once reported.
    Status(status::Args),
    /// A run's report: a table for people, or report.json / failures.csv for tools.
    Report(report::Args),
    /// Print the JSON Schema of job files.
    Schema,
    /// Check a job file: every problem is reported with its field, value and fix.
    Validate {
        /// The job file (JSON).
        job: std::path::PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs();
    let result = match cli.command {
        Command::Run(args) => match run::run(args).await {
            Ok(0) => Ok(()),
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        Command::Retry { args, of } => match run::retry(args, of).await {
            Ok(0) => Ok(()),
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        Command::Start(args) => match start::run(args).await {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        Command::Demo(args) => demo::run(args).await,
        Command::Cutover(args) => cutover::run(args).await,
        Command::Plan(args) => plan::run(args).await,
        Command::Estimate(args) => estimate::run(args).await,
        Command::Follow(args) => match follow::run(args).await {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        Command::Status(args) => match status::run(args).await {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        Command::Report(args) => match report::run(args).await {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&ferry::job::schema()).expect("schema serialises")
            );
            Ok(())
        }
        Command::Validate { job } => validate(&job),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, warnings and up by default (`RUST_LOG` changes it); credentials never appear
/// in them.
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn validate(path: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let spec = ferry::job::JobSpec::from_json(&text)
        .map_err(|e| format!("{} is not a valid job:\n{e}", path.display()))?;
    for warning in spec.warnings() {
        eprintln!("warning: {warning}");
    }
    println!("{}: valid job {:?}", path.display(), spec.name);
    Ok(())
}
