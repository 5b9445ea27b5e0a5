//! `ferry status JOB`: where a run is — counts, rate, tasks outstanding, the verdict once
//! reported — read from its state: the folder a standalone `ferry run` used, or a deployed
//! stack's state bucket (`s3://…`). Once, or again every few seconds until the run is reported.
//!
//! An event run (`--run events-YYYYMMDD`, kept by `ferry follow` or the deployed event path)
//! is never reported: it is *following* while tasks are outstanding and *up to date* when none
//! are.
//!
//! With `--stack NAME` the state is the deployed stack's state bucket, and a second line gives
//! the depth of its work, results and dead-letter queues (messages waiting and in flight).
//!
//! Exit status: `0` reported complete (or an event run up to date without problems); `3`
//! reported with problems (or up to date with failures); `4` not finished yet; `1` the status
//! could not be read (the message says what to fix).

use std::time::Duration;

use ferry::pipeline::status::{self, Phase, Status};

use crate::run::EXIT_PROBLEMS;
use crate::stack::{QueueDepth, StackArgs, depths_line};

/// Exit status of `ferry status` for a run that has not finished.
pub const EXIT_RUNNING: u8 = 4;

/// Which run, of which job, kept where: shared by `ferry status` and `ferry report`.
#[derive(clap::Args)]
pub struct RunRef {
    /// The job: its name, or its job file.
    pub job: String,
    /// The run id (the job's latest run by default); `events-YYYYMMDD` for a day's events.
    #[arg(long)]
    pub run: Option<String>,
    /// Where the run's state is: the folder `ferry run --state-dir` used, or s3://BUCKET/PREFIX
    /// for a deployed stack (AWS credentials from the usual chain).
    #[arg(long, visible_alias = "state-dir", default_value = "ferry-state")]
    pub state: String,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    at: RunRef,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
    /// Print the status again every `--interval` seconds until the run is reported.
    #[arg(long)]
    watch: bool,
    /// Seconds between two prints with `--watch`.
    #[arg(long, default_value_t = 5)]
    interval: u64,
    /// A deployed stack: its state bucket (instead of `--state`), and the depth of its work,
    /// results and dead-letter queues beside the run's counts.
    #[command(flatten)]
    stack: StackArgs,
}

pub async fn run(args: Args) -> Result<u8, String> {
    let job = job_name(&args.at.job)?;
    let stack = match args.stack.given() {
        true => Some(args.stack.resolve().await?),
        false => None,
    };
    let location = match &stack {
        Some(stack) => format!("s3://{}", stack.state_bucket),
        None => args.at.state.clone(),
    };
    let state = ferry::deploy::state_store(&location).await?;
    loop {
        let now = chrono::Utc::now();
        let status = status::read(state.as_ref(), &job, args.at.run.as_deref(), now)
            .await
            .map_err(|e| e.message)?;
        let depths = match &stack {
            Some(stack) => Some(stack.depths().await?),
            None => None,
        };
        print(&status, depths.as_deref(), args.json);
        if !args.watch || matches!(status.phase, Phase::Reported | Phase::UpToDate) {
            return Ok(exit_code(&status));
        }
        tokio::time::sleep(Duration::from_secs(args.interval.max(1))).await;
    }
}

/// A job file's `name`, or the argument itself when it is not a file.
pub fn job_name(arg: &str) -> Result<String, String> {
    let path = std::path::Path::new(arg);
    if !path.is_file() {
        return Ok(arg.to_owned());
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let spec = ferry::job::JobSpec::from_json(&text)
        .map_err(|e| format!("{} is not a valid job:\n{e}", path.display()))?;
    Ok(spec.name)
}

fn print(status: &Status, depths: Option<&[QueueDepth]>, json: bool) {
    if json {
        let mut doc = serde_json::to_value(status).expect("a status serialises");
        if let Some(depths) = depths {
            doc["queues"] = serde_json::to_value(depths).expect("depths serialise");
        }
        println!("{doc}");
        return;
    }
    println!("{}", status.line());
    if let Some(depths) = depths {
        println!("{}", depths_line(depths));
    }
}

pub fn exit_code(status: &Status) -> u8 {
    match (status.phase, status.verdict.as_deref()) {
        (Phase::Reported, Some("complete")) => 0,
        (Phase::Reported, _) => EXIT_PROBLEMS,
        (Phase::UpToDate, _) if status.objects.failed + status.objects.needs_restore == 0 => 0,
        (Phase::UpToDate, _) => EXIT_PROBLEMS,
        _ => EXIT_RUNNING,
    }
}
