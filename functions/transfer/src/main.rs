//! ferry's transfer Lambda function: an SQS batch → transfer work, reporting partial batch failures.
//!
//! A thin shell: the engine lives in the `ferry` crate. Until the pipeline lands, every record is
//! returned in `batchItemFailures`, so SQS keeps (and eventually dead-letters) the messages rather
//! than deleting work that was never done.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn, tracing};

async fn handler(event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    for record in event.payload.records {
        let id = record.message_id.unwrap_or_default();
        tracing::warn!(message_id = %id, "transfer is not part of this build; returning the message to the queue");
        response.add_failure(id);
    }
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(handler)).await
}
