//! ferry's verifier Lambda function: SQS results-queue batch → verify, record, progress,
//! report → partial batch failures.
//!
//! A thin shell around `ferry::pipeline::verify`: the whole batch is handled together (one
//! progress update for all its results); records that could not be recorded are listed in
//! `batchItemFailures` and come back.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use ferry::deploy::{Deployment, deadline_from_epoch_ms};
use ferry::pipeline::runtime::Runtime;
use ferry::pipeline::verify::{self, VerifierSettings};
use lambda_runtime::{Error, LambdaEvent, service_fn, tracing};

async fn handler(rt: &Runtime, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let deadline = deadline_from_epoch_ms(event.context.deadline);
    let records = event.payload.records;
    let bodies: Vec<String> = records
        .iter()
        .map(|r| r.body.clone().unwrap_or_default())
        .collect();
    let outcomes = verify::handle_batch(rt, &VerifierSettings::default(), &bodies, deadline).await;
    let mut response = SqsBatchResponse::default();
    for (record, outcome) in records.iter().zip(outcomes) {
        if let Err(e) = outcome {
            let id = record.message_id.clone().unwrap_or_default();
            tracing::warn!(message_id = %id, error = %e, "result not recorded; SQS will deliver it again");
            response.add_failure(id);
        }
    }
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let deployment = Deployment::from_env().await?;
    let rt = Arc::new(Runtime::new(deployment.ports, deployment.secrets));
    lambda_runtime::run(service_fn(move |event| {
        let rt = rt.clone();
        async move { handler(&rt, event).await }
    }))
    .await
}
