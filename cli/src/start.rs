//! `ferry start job.json --stack NAME`: starts a run on a deployed stack. The job is checked
//! here first (every problem with its field and fix), then the run is created in the stack's
//! state bucket exactly as the planner function creates one (`runs::begin`: a job runs once
//! at a time) and its first task — planning — goes on the work queue, where the stack's
//! functions take it up. Prints the run id.
//!
//! Exit status: `0` started; `4` not started because the job's latest run has not finished
//! (`--overlap` starts one anyway); `1` the job, the stack or AWS could not be read (the message
//! says what to fix).

use ferry::pipeline::planner::RunRequest;
use ferry::pipeline::runs::{self, Begun, StartRequest};

use crate::stack::StackArgs;
use crate::status::EXIT_RUNNING;

#[derive(clap::Args)]
pub struct Args {
    /// The job file (JSON).
    job: std::path::PathBuf,
    #[command(flatten)]
    stack: StackArgs,
    /// Copy only what changed since the job's last complete run, plus what it left failed.
    #[arg(long)]
    incremental: bool,
    /// Copy exactly the keys in FILE instead of listing the source (one per line, or the
    /// first column of a `.csv`); the list is stored with the run.
    #[arg(long, value_name = "FILE", conflicts_with = "incremental")]
    keys: Option<std::path::PathBuf>,
    /// Start a new run even though the job's latest run has not finished (for a stuck run).
    #[arg(long)]
    overlap: bool,
    /// Print what was started as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> Result<u8, String> {
    let (job_text, spec) = crate::plan::read_job_text(&args.job)?;
    for warning in spec.warnings() {
        eprintln!("warning: {warning}");
    }
    let stack = args.stack.resolve().await?;
    let ports = stack.ports().await?;
    let started = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0);
    let tail = runs::new_tail();
    let start = StartRequest {
        run: None,
        tail: &tail,
        overlap: args.overlap,
        started,
    };
    let keys = args
        .keys
        .as_deref()
        .map(crate::run::read_keys)
        .transpose()?;
    let request = RunRequest {
        job_text,
        run: None,
        incremental: args.incremental,
        retry: None,
        keys,
        started,
    };
    let begun = runs::begin(&ports, &start, request).await.map_err(|e| {
        format!(
            "starting the run in s3://{}: {}",
            stack.state_bucket, e.message
        )
    })?;
    let manifest = match begun {
        Begun::Run(manifest) => *manifest,
        Begun::Skipped { running } => {
            let message = format!(
                "run {running} of job {} has not finished; not starting another (it would copy \
                 the same objects twice). Watch it with `ferry status {} --stack …`, or start \
                 anyway with --overlap if it is stuck",
                spec.name, spec.name
            );
            match args.json {
                true => println!(
                    "{}",
                    serde_json::json!({ "skipped": true, "running": running })
                ),
                false => eprintln!("ferry: {message}"),
            }
            return Ok(EXIT_RUNNING);
        }
    };
    ports
        .work
        .send_batch(&[manifest.root.to_json()])
        .await
        .map_err(|e| format!("sending the run's first task to {}: {e}", stack.work_queue))?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "job": manifest.job, "run": manifest.run, "started": manifest.started,
                "state": format!("s3://{}", stack.state_bucket),
            })
        );
    } else {
        println!("{}", manifest.run);
        eprintln!(
            "started run {} of job {}; watch it with `ferry status {} --stack {}`",
            manifest.run,
            manifest.job,
            manifest.job,
            args.stack.stack.as_deref().unwrap_or("NAME")
        );
    }
    Ok(0)
}
