//! `ferry report JOB`: a run's report as a table for people (counts by outcome, failures
//! grouped by reason), as the report.json it is (`--format json`), or as its failures.csv
//! (`--format csv`). Reads the same state `ferry status` reads.
//!
//! An event run (`events-YYYYMMDD`) never writes report.json: its table is its status line and
//! its failures as they stand.
//!
//! Exit status: `0` reported complete; `3` reported with problems; `4` not reported yet; `1`
//! the report could not be read (the message says what to fix).

use ferry::pipeline::layout;
use ferry::pipeline::status::{self, Phase};
use ferry::pipeline::verify::report::Report;
use ferry::pipeline::verify::{report, report_text};

use crate::run::EXIT_PROBLEMS;
use crate::status::EXIT_RUNNING;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    at: crate::status::RunRef,
    /// `table` for people, `json` (report.json) or `csv` (failures.csv) for tools.
    #[arg(long, default_value = "table", value_parser = ["table", "json", "csv"])]
    format: String,
}

pub async fn run(args: Args) -> Result<u8, String> {
    let job = crate::status::job_name(&args.at.job)?;
    let state = ferry::deploy::state_store(&args.at.state).await?;
    let state = state.as_ref();
    let status = status::read(state, &job, args.at.run.as_deref(), chrono::Utc::now())
        .await
        .map_err(|e| e.message)?;
    let run = status.run.as_str();
    if matches!(status.phase, Phase::Following | Phase::UpToDate) {
        let (csv, _) = report::event_failures(state, &job, run)
            .await
            .map_err(|e| e.message)?;
        print_event_run(&status, &csv, &args.format)?;
        return Ok(crate::status::exit_code(&status));
    }
    let read = |key: String| async move {
        state
            .get(&key)
            .await
            .map(|found| found.map(|v| v.body))
            .map_err(|e| format!("cannot read {key}: {e}"))
    };
    let Some(body) = read(layout::report(&job, run)).await? else {
        eprintln!(
            "run {run} of job {job} is not reported yet ({}): `ferry status {job}` shows where it is",
            status.line()
        );
        return Ok(EXIT_RUNNING);
    };
    let parsed: Report = serde_json::from_slice(&body)
        .map_err(|e| format!("{} is not a report: {e}", layout::report(&job, run)))?;
    let csv = read(layout::failures(&job, run)).await?.unwrap_or_default();
    let csv = String::from_utf8_lossy(&csv);
    match args.format.as_str() {
        "json" => println!("{}", String::from_utf8_lossy(&body)),
        "csv" => print!("{csv}"),
        _ => print!("{}", report_text::table(&parsed, &groups(&csv)?)),
    }
    Ok(match parsed.verdict.as_str() {
        "complete" => 0,
        _ => EXIT_PROBLEMS,
    })
}

fn groups(csv: &str) -> Result<Vec<report_text::Group>, String> {
    report_text::groups(csv).map_err(|e| format!("failures.csv cannot be read: {e}"))
}

fn print_event_run(status: &status::Status, csv: &str, format: &str) -> Result<(), String> {
    match format {
        "json" => println!(
            "{}",
            serde_json::to_string(status).expect("a status serialises")
        ),
        "csv" => print!("{csv}"),
        _ => {
            println!("{}", status.line());
            for g in groups(csv)? {
                println!(
                    "  {:>8}  {:<17} {} (e.g. {:?})",
                    g.objects, g.outcome, g.reason, g.example
                );
            }
        }
    }
    Ok(())
}
