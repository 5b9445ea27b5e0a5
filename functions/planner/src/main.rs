//! ferry's planner Lambda function: a planner input (from the CLI, a schedule or an operator)
//! → a new run, planned.
//!
//! Input: `{"job_key": "jobs/<name>/job.json"}` (a job already in the state store) or
//! `{"job": { …job spec… }}`, plus optional `"incremental": true` and `"run": "<id>"`.
//! Without `run`, the run id is derived from the invocation's request id, which Lambda keeps
//! across its own retries of an asynchronous invocation — so a retried start resumes the same
//! run instead of starting a second one. Planning continues on the work queue when this
//! invocation's time runs out.

use std::sync::Arc;

use ferry::pipeline::deploy::{Deployment, deadline_from_epoch_ms};
use ferry::pipeline::planner::{RunRequest, create_run};
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
    let run = input.run.unwrap_or_else(|| {
        let tail: String = event
            .context
            .request_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect();
        format!("{}-{tail}", started.format("%Y%m%dT%H%M%SZ"))
    });
    let request = RunRequest {
        job_text,
        run: Some(run),
        incremental: input.incremental,
        started,
    };
    let manifest = create_run(&state.rt.ports, &request).await?;
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
