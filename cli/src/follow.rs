//! `ferry follow job.json --queue URL`: keeps the destination current from the source's
//! events — the SQS queue the source bucket notifies (directly, through SNS, or through an
//! EventBridge rule) — in this process, with the same copy path, proofs and state folder as
//! `ferry run`.
//!
//! Each event is a hint to look at its key: the object there now is copied (an event for a
//! version already overwritten is satisfied by the newer one; a deleted object is reported
//! skipped and kept at the destination). Events are counted in the job's event run of their day,
//! `events-YYYYMMDD`, which `ferry status JOB --run events-YYYYMMDD` shows. Stopped at any
//! moment, `ferry follow` started again carries on: the queue keeps what was not taken, the
//! state folder what was taken and not yet copied.
//!
//! Exit status: `0` every event taken is copied or counted; `3` some objects failed; `1` the
//! follower could not run (the message says what to fix).

use std::path::PathBuf;
use std::time::Duration;

use ferry::pipeline::follow::{self, Until};
use ferry::pipeline::standalone::Options;

use crate::run::EXIT_PROBLEMS;

#[derive(clap::Args)]
pub struct Args {
    /// The job file (JSON). Its source bucket is the bucket whose events are followed.
    job: PathBuf,
    /// The events queue's URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`). Read with the
    /// usual AWS credential chain; the region comes from `AWS_REGION` or the URL.
    #[arg(long)]
    queue: String,
    /// The state folder; the same one as the job's `ferry run`.
    #[arg(long, default_value = "ferry-state")]
    state_dir: PathBuf,
    /// Shard tasks worked on at the same time.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Stop once the queue has been empty this many seconds and every event taken is copied.
    /// Without it, follow until interrupted (Ctrl-C).
    #[arg(long)]
    idle: Option<u64>,
}

pub async fn run(args: Args) -> Result<u8, String> {
    let text = std::fs::read_to_string(&args.job)
        .map_err(|e| format!("cannot read {}: {e}", args.job.display()))?;
    let spec = ferry::job::JobSpec::from_json(&text)
        .map_err(|e| format!("{} is not a valid job:\n{e}", args.job.display()))?;
    let queue = ferry::deploy::events_queue(&args.queue).await?;
    let mut options = Options::new(&args.state_dir);
    options.workers = args.workers;
    let secrets = ferry::deploy::secrets_for(&spec).await;
    let until = Until {
        idle: args.idle.map(Duration::from_secs),
    };
    eprintln!(
        "following the events of bucket {} from {}{}",
        spec.source.bucket(),
        args.queue,
        match args.idle {
            Some(s) => format!(" until idle for {s} s"),
            None => " (Ctrl-C stops; run again to carry on)".to_owned(),
        }
    );
    let followed = tokio::select! {
        followed = follow::follow(&text, options, secrets, queue, until) => {
            followed.map_err(|e| e.to_string())?
        }
        _ = tokio::signal::ctrl_c() => {
            eprintln!("stopped; events taken and not yet copied carry on at the next `ferry follow`");
            return Ok(0);
        }
    };
    println!("{} event messages taken", followed.messages);
    let mut failed = 0;
    for p in &followed.runs {
        let t = &p.tally;
        failed += t.failed + t.needs_restore;
        println!(
            "{}: {} objects looked at: {}; {} tasks pending",
            p.run,
            t.objects,
            t.outcomes(),
            p.pending.len()
        );
    }
    for (run, rows) in &followed.failures {
        let path = ferry::pipeline::standalone::run_dir(&args.state_dir, &spec.name, run);
        println!(
            "{run}: {rows} objects to look at: {}",
            path.join("failures.csv").display()
        );
    }
    for refused in &followed.refused {
        println!("left on the queue (its dead-letter queue takes it): {refused}");
    }
    Ok(if failed == 0 { 0 } else { EXIT_PROBLEMS })
}
