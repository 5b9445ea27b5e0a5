//! ferry's planner Lambda function: a planner input event (CLI, schedule, S3 event) → a run plan.
//!
//! A thin shell: the engine lives in the `ferry` crate. Until the pipeline lands, it validates that
//! the event is JSON and answers that planning is not available yet, so a premature deployment
//! fails loudly instead of reporting an empty, "successful" run.

use lambda_runtime::{Error, LambdaEvent, service_fn, tracing};
use serde_json::Value;

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    tracing::info!(request_id = %event.context.request_id, "planner invoked");
    Err(format!(
        "ferry {} cannot plan yet: the pipeline is not part of this build (event had {} top-level fields)",
        env!("CARGO_PKG_VERSION"),
        event.payload.as_object().map_or(0, |o| o.len())
    )
    .into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(handler)).await
}
