//! ferry's transfer Lambda function: SQS work-queue batch → one shard task per record →
//! partial batch failures. When the stack follows the source's events, records from the events
//! queue are events instead: each is issued as a task of the job's event run (`intake`).
//!
//! A thin shell around `ferry::pipeline::transfer`. A record whose task is done (copied, or
//! recorded failed after the queue's last allowed delivery) is deleted; any other is listed in
//! `batchItemFailures`, so SQS delivers it again and, past `maxReceiveCount`, dead-letters it.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use ferry::deploy::{Deployment, EventsWiring, deadline_from_epoch_ms};
use ferry::pipeline::intake;
use ferry::pipeline::runtime::Runtime;
use ferry::pipeline::transfer::{self, Delivery, TransferSettings};
use lambda_runtime::{Error, LambdaEvent, service_fn, tracing};

struct State {
    rt: Runtime,
    settings: TransferSettings,
    events: Option<EventsWiring>,
}

async fn handler(state: &State, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let deadline = deadline_from_epoch_ms(event.context.deadline);
    let records = event.payload.records;
    let deliveries: Vec<Delivery> = records
        .iter()
        .map(|record| Delivery {
            body: record.body.as_deref().unwrap_or_default(),
            receive_count: record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1),
        })
        .collect();
    let from_events = |arn: Option<&String>| {
        let wiring = state.events.as_ref();
        wiring.is_some_and(|w| arn.is_some_and(|a| *a == w.queue_arn))
    };
    // A batch comes from one event source mapping, so from one queue.
    let outcomes = match (records.first(), &state.events) {
        (Some(first), Some(wiring)) if from_events(first.event_source_arn.as_ref()) => {
            intake::handle_batch(&state.rt, &wiring.job, &deliveries)
                .await
                .into_iter()
                .map(|o| o.map(|_| ()))
                .collect()
        }
        _ => transfer::handle_batch(&state.rt, &state.settings, &deliveries, deadline).await,
    };
    let mut response = SqsBatchResponse::default();
    for (record, outcome) in records.iter().zip(outcomes) {
        if let Err(e) = outcome {
            let id = record.message_id.clone().unwrap_or_default();
            tracing::warn!(message_id = %id, error = %e, "task not done; SQS will deliver it again");
            response.add_failure(id);
        }
    }
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let deployment = Deployment::from_env().await?;
    let state = Arc::new(State {
        rt: Runtime::new(deployment.ports, deployment.secrets),
        settings: deployment.transfer,
        events: deployment.events,
    });
    lambda_runtime::run(service_fn(move |event| {
        let state = state.clone();
        async move { handler(&state, event).await }
    }))
    .await
}
