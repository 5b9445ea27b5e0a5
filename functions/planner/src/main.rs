//! ferry's planner Lambda function: a planner input (from the CLI, a schedule or an operator)
//! → a new run, planned.
//!
//! Input: `{"job_key": "jobs/<name>/job.json"}` (a job already in the state store) or
//! `{"job": { …job spec… }}`, plus optional `"incremental": true`, `"run": "<id>"` and
//! `"retry": "<run id>"` (only the objects that finished run left failed or needing a restore,
//! without listing the source).
//! Without `run`, the run id is the start time plus the invocation's request id, which Lambda
//! keeps across its own retries of an asynchronous invocation — so a retried start finds the
//! unfinished run with its request id and resumes it instead of starting a second one.
//! Planning continues on the work queue when this invocation's time runs out.
//!
//! A start while the job's latest run is still unfinished (a schedule firing again before a
//! long run ends) does nothing and says so: two runs of one job would copy the same objects
//! twice over. `"overlap": true` starts a new run anyway (for a run known to be stuck).

use std::sync::Arc;

use ferry::deploy::{Deployment, deadline_from_epoch_ms};
use ferry::pipeline::planner::RunRequest;
use ferry::pipeline::runs::{self, Begun, StartRequest};
use ferry::pipeline::runtime::{Runtime, read_json};
use ferry::pipeline::transfer::{TransferSettings, run_task};
use lambda_runtime::{Error, LambdaEvent, service_fn, tracing};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    job_key: Option<String>,
    #[serde(default)]
    job: Option<Value>,
    #[serde(default)]
    incremental: bool,
    #[serde(default)]
    run: Option<String>,
    #[serde(default)]
    overlap: bool,
    #[serde(default)]
    retry: Option<String>,
}

struct State {
    rt: Runtime,
    settings: TransferSettings,
}

async fn handler(state: &State, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let input: Input = serde_json::from_value(event.payload).map_err(|e| {
        format!("planner input: {e}; send {{\"job_key\": \"jobs/<name>/job.json\"}} or {{\"job\": {{…}}}}")
    })?;
    let job_text = match (input.job_key, input.job) {
        (Some(key), None) => {
            let value: Value = read_json(state.rt.ports.state.as_ref(), &key)
                .await?
                .ok_or_else(|| {
                    format!("job_key {key:?} is not in the state store: upload the job there first")
                })?;
            value.to_string()
        }
        (None, Some(job)) => job.to_string(),
        _ => return Err("planner input needs exactly one of `job_key` and `job`".into()),
    };
    // Whole seconds, as the destination records write times: an object this run writes in its
    // first second is then recognised as the run's own on a redelivery.
    let started = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0);
    let tail: String = event
        .context
        .request_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    let start = StartRequest {
        run: input.run,
        tail: &tail,
        overlap: input.overlap,
        started,
    };
    // Lambda's retry of this very invocation (same request id, later clock) takes up the run
    // the first attempt created.
    let request = RunRequest {
        job_text,
        run: None,
        incremental: input.incremental,
        retry: input.retry.clone(),
        keys: None,
        started,
    };
    let begun = runs::begin(&state.rt.ports, &start, request).await?;
    let manifest = match begun {
        Begun::Run(manifest) => *manifest,
        Begun::Skipped { running } => {
            tracing::warn!(running = %running, "the job's latest run is unfinished; not starting another");
            return Ok(json!({
                "skipped": true,
                "running": running,
                "reason": format!(
                    "run {running} of this job has not finished; it is not started twice. \
                     Send \"overlap\": true to start a new run anyway (for a run that is stuck)"
                ),
            }));
        }
    };
    let limits = state.settings.limits(
        deadline_from_epoch_ms(event.context.deadline),
        std::time::Instant::now(),
    );
    run_task(&state.rt, &manifest.root, limits).await?;
    tracing::info!(job = %manifest.job, run = %manifest.run, "run planned");
    Ok(json!({ "job": manifest.job, "run": manifest.run, "started": manifest.started }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let deployment = Deployment::from_env().await?;
    let state = Arc::new(State {
        rt: Runtime::new(deployment.ports, deployment.secrets),
        settings: deployment.transfer,
    });
    lambda_runtime::run(service_fn(move |event| {
        let state = state.clone();
        async move { handler(&state, event).await }
    }))
    .await
}
