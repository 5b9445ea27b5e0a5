//! `ferry cutover …`: switch applications to OSS while the source is still being copied.
//!
//! `enable` adds a mirror back-to-origin rule to the destination bucket so a read of a key OSS
//! does not have yet is fetched from the source; `switched` records T2; `disable` removes
//! ferry's rule (only it); `status` shows the rule, T1, T2 and the events still waiting;
//! `plan` prints the whole sequence as the exact commands for this job. The library module
//! `ferry::cutover` says why each step is there.
//!
//! Exit status: `0` done; `1` the step could not be taken (the message says what to fix).

use std::path::PathBuf;

use ferry::cutover;
use ferry::job::JobSpec;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    step: Step,
}

#[derive(clap::Subcommand)]
enum Step {
    /// Add ferry's mirror back-to-origin rule to the destination bucket (existing rules stay).
    Enable(Common),
    /// Remove ferry's mirror rule from the destination bucket (other rules stay).
    Disable(Common),
    /// Record T2: the moment applications were switched to OSS (now, or `--at`).
    Switched {
        #[command(flatten)]
        common: Common,
        /// When the switch happened (RFC 3339, e.g. 2026-12-04T18:00:00Z); now by default.
        #[arg(long)]
        at: Option<String>,
    },
    /// The rule, T1 (the last complete run), T2, and events still waiting to be copied.
    Status(Common),
    /// Print the whole cut-over for this job, step by step, as commands to run.
    Plan(Common),
}

#[derive(clap::Args)]
struct Common {
    /// The job file (JSON).
    job: PathBuf,
    /// Where the job's state is: the folder `ferry run --state-dir` uses, or s3://BUCKET/PREFIX
    /// for a deployed stack.
    #[arg(long, visible_alias = "state-dir", default_value = "ferry-state")]
    state: String,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> Result<(), String> {
    match args.step {
        Step::Enable(c) => enable(&c).await,
        Step::Disable(c) => disable(&c).await,
        Step::Switched { common, at } => switched(&common, at.as_deref()).await,
        Step::Status(c) => status(&c).await,
        Step::Plan(c) => plan(&c).await,
    }
}

fn spec(c: &Common) -> Result<JobSpec, String> {
    let text = std::fs::read_to_string(&c.job)
        .map_err(|e| format!("cannot read {}: {e}", c.job.display()))?;
    JobSpec::from_json(&text).map_err(|e| format!("{} is not a valid job:\n{e}", c.job.display()))
}

async fn client(spec: &JobSpec) -> Result<ferry::oss::OssClient, String> {
    let secrets = ferry::deploy::secrets_for(spec).await;
    ferry::deploy::connect::destination_client(spec, &secrets)
        .await
        .map_err(|e| e.message)
}

async fn enable(c: &Common) -> Result<(), String> {
    let spec = spec(c)?;
    let state = ferry::deploy::state_store(&c.state).await?;
    let done = cutover::enable(&client(&spec).await?, &spec, state.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    if c.json {
        println!(
            "{}",
            serde_json::json!({"rule": done.rule, "already": done.already, "kept": done.kept})
        );
        return Ok(());
    }
    let verb = if done.already {
        "was already on"
    } else {
        "is on"
    };
    println!(
        "back-to-origin {verb}: rule {} of bucket {} fetches keys under {:?} that OSS does not have from {} ({} other rules kept)",
        done.rule.rule_number,
        spec.destination.bucket,
        done.rule
            .condition
            .key_prefix_equals
            .as_deref()
            .unwrap_or(""),
        done.rule.redirect.mirror_url.as_deref().unwrap_or(""),
        done.kept
    );
    println!("OSS reads the origin without credentials: the source must let it read these keys.");
    Ok(())
}

async fn disable(c: &Common) -> Result<(), String> {
    let spec = spec(c)?;
    let state = ferry::deploy::state_store(&c.state).await?;
    let removed = cutover::disable(&client(&spec).await?, &spec, state.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    match (c.json, removed) {
        (true, _) => println!("{}", serde_json::json!({ "removed": removed })),
        (false, true) => println!(
            "back-to-origin is off: ferry's rule was removed from bucket {}",
            spec.destination.bucket
        ),
        (false, false) => println!(
            "back-to-origin was already off: bucket {} has no rule of this job",
            spec.destination.bucket
        ),
    }
    Ok(())
}

async fn switched(c: &Common, at: Option<&str>) -> Result<(), String> {
    let spec = spec(c)?;
    let at = match at {
        None => chrono::Utc::now(),
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map_err(|e| format!("--at {text:?} is not an RFC 3339 time ({e}): write it like 2026-12-04T18:00:00Z"))?
            .with_timezone(&chrono::Utc),
    };
    let state = ferry::deploy::state_store(&c.state).await?;
    cutover::record_switch(state.as_ref(), &spec.name, at)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "T2 recorded: {}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    Ok(())
}

async fn read_status(c: &Common, spec: &JobSpec) -> Result<cutover::Status, String> {
    let state = ferry::deploy::state_store(&c.state).await?;
    cutover::status(&client(spec).await?, spec, state.as_ref())
        .await
        .map_err(|e| e.to_string())
}

async fn status(c: &Common) -> Result<(), String> {
    let spec = spec(c)?;
    let status = read_status(c, &spec).await?;
    match c.json {
        true => println!(
            "{}",
            serde_json::to_string(&status).expect("status serialises")
        ),
        false => status.lines().iter().for_each(|l| println!("{l}")),
    }
    Ok(())
}

async fn plan(c: &Common) -> Result<(), String> {
    let spec = spec(c)?;
    let status = read_status(c, &spec).await?;
    let steps = cutover::plan(&c.job.display().to_string(), &c.state, &status);
    if c.json {
        println!(
            "{}",
            serde_json::to_string(&steps).expect("steps serialise")
        );
        return Ok(());
    }
    println!(
        "The cut-over of job {} to oss://{}:",
        spec.name, spec.destination.bucket
    );
    for (n, step) in steps.iter().enumerate() {
        println!("\n{}. {}", n + 1, step.title);
        println!("   {}", step.command);
        if let Some(done) = &step.done {
            println!("   done: {done}");
        }
    }
    println!(
        "\nThe source is never deleted by ferry: remove it yourself once you have signed off."
    );
    Ok(())
}
