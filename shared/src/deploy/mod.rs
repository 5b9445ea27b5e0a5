//! Wiring ferry to where it runs — kept apart from the roles in [`crate::pipeline`], which only
//! see ports.
//!
//! [`connect`] turns a job spec into live connections (source, destination, copier) and is the
//! one place credentials are resolved. This module itself is distributed mode's wiring: the
//! ports and secret store a Lambda function uses, read from its environment (set by the SAM
//! template in `infra/`).
//!
//! | variable | meaning |
//! |---|---|
//! | `FERRY_STATE_BUCKET` | the state store's S3 bucket |
//! | `FERRY_STATE_PREFIX` | optional key prefix inside it |
//! | `FERRY_WORK_QUEUE_URL` | the work queue (shard tasks) |
//! | `FERRY_RESULTS_QUEUE_URL` | the results queue (chunk results) |
//! | `FERRY_MAX_RECEIVES` | the work queue's `maxReceiveCount` (default 5) |
//! | `FERRY_TIME_BUDGET_SECS` | a task's time when the invocation has no usable deadline |
//! | `FERRY_EVENTS_QUEUE_ARN` | the events queue, when the stack follows the source's events |
//! | `FERRY_EVENTS_JOB` | the job whose event runs count those events |
//!
//! AWS clients come from the standard chain (`AWS_REGION`, the function's role, and
//! `AWS_ENDPOINT_URL` for local stand-ins such as moto).

pub mod connect;

use std::sync::Arc;
use std::time::Duration;

use crate::pipeline::Ports;
use crate::pipeline::transfer::TransferSettings;
use crate::queue::sqs::SqsQueue;
use crate::state::s3::S3Store;
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use connect::{SecretError, SecretFut, Secrets};

/// A deployment's ports and secret store.
pub struct Deployment {
    /// The state store and the work and results queues (`FERRY_STATE_*`, `FERRY_*_QUEUE_URL`).
    pub ports: Ports,
    /// Secrets Manager, for the secrets a job names.
    pub secrets: Arc<dyn Secrets>,
    /// How transfer workers budget their time (`FERRY_MAX_RECEIVES`, `FERRY_TIME_BUDGET_SECS`).
    pub transfer: TransferSettings,
    /// The events queue the transfer function also reads, when the stack follows events.
    pub events: Option<EventsWiring>,
}

/// Which queue's messages are the source's events, and for which job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventsWiring {
    /// The events queue's ARN (`FERRY_EVENTS_QUEUE_ARN`).
    pub queue_arn: String,
    /// The job whose event runs count those events (`FERRY_EVENTS_JOB`).
    pub job: String,
}

/// Why a function's environment does not describe a deployment. Each names the variable and
/// what to set it to; the SAM template sets them all, so these mean a hand-made function.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeployError {
    /// A required variable is not set (or is empty).
    #[error("environment variable {0} is not set: the function's template sets it")]
    Missing(&'static str),
    /// A variable is set to a value that cannot be used.
    #[error("{name} is {value:?}: set it to {fix}")]
    Invalid {
        /// The variable's name.
        name: &'static str,
        /// The value it holds.
        value: String,
        /// What to set it to.
        fix: &'static str,
    },
    /// Only one of `FERRY_EVENTS_QUEUE_ARN` and `FERRY_EVENTS_JOB` is set.
    #[error(
        "FERRY_EVENTS_QUEUE_ARN and FERRY_EVENTS_JOB go together: set both (the template does \
         when FollowEvents is on) or neither"
    )]
    EventsHalfSet,
}

impl Deployment {
    /// Reads the environment; the error names the variable that is missing or wrong.
    pub async fn from_env() -> Result<Deployment, DeployError> {
        Self::from_lookup(&|name| std::env::var(name).ok()).await
    }

    /// Like [`Deployment::from_env`], reading variables through `env` instead of the process
    /// environment.
    pub async fn from_lookup(
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Deployment, DeployError> {
        let need = |name: &'static str| {
            env(name)
                .filter(|v| !v.is_empty())
                .ok_or(DeployError::Missing(name))
        };
        let bucket = need("FERRY_STATE_BUCKET")?;
        let prefix = env("FERRY_STATE_PREFIX").unwrap_or_default();
        let work_url = need("FERRY_WORK_QUEUE_URL")?;
        let results_url = need("FERRY_RESULTS_QUEUE_URL")?;
        let mut transfer = TransferSettings::default();
        if let Some(v) = env("FERRY_MAX_RECEIVES") {
            transfer.max_receives = v.parse().map_err(|_| DeployError::Invalid {
                name: "FERRY_MAX_RECEIVES",
                value: v.clone(),
                fix: "the work queue's maxReceiveCount, a whole number",
            })?;
        }
        if let Some(v) = env("FERRY_TIME_BUDGET_SECS") {
            let secs: u64 = v.parse().map_err(|_| DeployError::Invalid {
                name: "FERRY_TIME_BUDGET_SECS",
                value: v.clone(),
                fix: "a number of seconds",
            })?;
            transfer.time_budget = Some(Duration::from_secs(secs));
        }
        let events = match (env("FERRY_EVENTS_QUEUE_ARN"), env("FERRY_EVENTS_JOB")) {
            (Some(queue_arn), Some(job)) if !queue_arn.is_empty() && !job.is_empty() => {
                Some(EventsWiring { queue_arn, job })
            }
            (None, None) => None,
            _ => {
                return Err(DeployError::EventsHalfSet);
            }
        };
        let shared = aws_config::load_from_env().await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&shared)
                .force_path_style(env("FERRY_STATE_PATH_STYLE").is_some())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::new(&shared);
        let secrets = aws_sdk_secretsmanager::Client::new(&shared);
        Ok(Deployment {
            ports: Ports {
                state: Arc::new(S3Store::new(s3, bucket, prefix)),
                work: Arc::new(SqsQueue::new(sqs.clone(), work_url)),
                results: Arc::new(SqsQueue::new(sqs, results_url)),
            },
            secrets: Arc::new(SecretsManager(secrets)),
            transfer,
            events,
        })
    }
}

/// The state store a command line names: `s3://bucket/prefix` (a deployed stack's state bucket,
/// reached with the standard AWS configuration chain; `FERRY_STATE_PATH_STYLE` set for stores
/// that need path-style addressing) or a local folder (a standalone run's `--state-dir`).
pub async fn state_store(location: &str) -> Result<Arc<dyn crate::state::StateStore>, String> {
    if let Some(rest) = location.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!(
                "state location {location:?} names no bucket: write s3://BUCKET or s3://BUCKET/PREFIX"
            ));
        }
        let shared = aws_config::load_from_env().await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&shared)
                .force_path_style(std::env::var_os("FERRY_STATE_PATH_STYLE").is_some())
                .build(),
        );
        return Ok(Arc::new(S3Store::new(s3, bucket, prefix)));
    }
    let path = std::path::Path::new(location);
    if !path.is_dir() {
        return Err(format!(
            "state folder {location:?} does not exist: give the --state-dir the run used, or \
             s3://BUCKET/PREFIX for a deployed stack"
        ));
    }
    crate::state::local::LocalStore::open(path)
        .map(|s| Arc::new(s) as Arc<dyn crate::state::StateStore>)
        .map_err(|e| e.to_string())
}

/// The events queue a command line names by URL (`ferry follow --queue`), read with the
/// standard AWS chain; the region from `AWS_REGION`, or else from the URL.
pub async fn events_queue(url: &str) -> Result<Arc<dyn crate::queue::Queue>, String> {
    if !url.starts_with("https://") && !url.starts_with("http://") {
        return Err(format!(
            "--queue {url:?} is not a queue URL: give it as https://sqs.REGION.amazonaws.com/ACCOUNT/NAME"
        ));
    }
    let mut loader = aws_config::from_env();
    if std::env::var_os("AWS_REGION").is_none()
        && let Some(region) = region_of_queue(url)
    {
        loader = loader.region(aws_config::Region::new(region));
    }
    let client = aws_sdk_sqs::Client::new(&loader.load().await);
    Ok(Arc::new(SqsQueue::new(client, url)))
}

/// `eu-west-1` from `https://sqs.eu-west-1.amazonaws.com/…`.
fn region_of_queue(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let rest = host.strip_prefix("sqs.")?;
    Some(rest.split('.').next()?.to_owned()).filter(|r| !r.is_empty())
}

/// Secrets Manager as the secret store.
pub struct SecretsManager(pub aws_sdk_secretsmanager::Client);

impl SecretsManager {
    /// A client from the standard AWS configuration chain (environment, profile, role).
    pub async fn from_env() -> SecretsManager {
        SecretsManager(aws_sdk_secretsmanager::Client::new(
            &aws_config::load_from_env().await,
        ))
    }
}

/// The secret store a job needs: Secrets Manager when it names a secret, none otherwise (so a
/// job with environment-variable credentials needs no AWS configuration at all).
pub async fn secrets_for(spec: &crate::job::JobSpec) -> Arc<dyn Secrets> {
    let source_secret = match &spec.source {
        crate::job::SourceSpec::S3(s3) => s3.credentials.secret_id().is_some(),
        crate::job::SourceSpec::Oss(oss) => oss.credentials.secret_id().is_some(),
    };
    if source_secret || spec.destination.credentials.secret_id().is_some() {
        Arc::new(SecretsManager::from_env().await)
    } else {
        Arc::new(connect::NoSecrets)
    }
}

impl Secrets for SecretsManager {
    fn fetch<'a>(&'a self, id: &'a str) -> SecretFut<'a> {
        Box::pin(async move {
            // The SDK has already retried transient errors with backoff (standard mode).
            let out = self
                .0
                .get_secret_value()
                .secret_id(id)
                .send()
                .await
                .map_err(|e| secret_error(id, &e))?;
            out.secret_string().map(str::to_owned).ok_or_else(|| {
                SecretError::permanent(format!(
                    "Secrets Manager secret {id:?} has no text value: store it as a JSON string"
                ))
            })
        })
    }
}

/// Classifies a failed GetSecretValue: throttling, server errors, timeouts and network
/// failures are worth another delivery; a missing secret or a refused permission is not.
fn secret_error<E>(id: &str, e: &SdkError<E, HttpResponse>) -> SecretError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (retryable, what) = match e {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().unwrap_or("(no error code)");
            let retryable = status >= 500
                || status == 429
                || matches!(
                    code,
                    "InternalServiceError" | "ThrottlingException" | "RequestTimeout"
                );
            let message = ctx.err().message().unwrap_or_default();
            (retryable, format!("HTTP {status} {code} {message}"))
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => (
            true,
            aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
        ),
        _ => (
            false,
            aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
        ),
    };
    let hint = match retryable {
        true => "a transient error; the task is tried again",
        false => "check the name and that the function's role may read it",
    };
    SecretError {
        message: format!(
            "cannot read Secrets Manager secret {id:?}: {}; {hint}",
            what.trim_end()
        ),
        retryable,
    }
}

/// A Lambda deadline (milliseconds since the epoch) as an `Instant`, or `None` when it is not
/// in the future — cargo-lambda's emulator sends a constant that is — so the configured time
/// budget applies instead.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Option<std::time::Instant> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let left = i64::try_from(deadline_ms).ok()? - now_ms;
    (left > 0).then(|| std::time::Instant::now() + Duration::from_millis(left as u64))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_events_queue_region_comes_from_its_url() {
        let url = "https://sqs.eu-west-1.amazonaws.com/123456789012/events";
        assert_eq!(super::region_of_queue(url).as_deref(), Some("eu-west-1"));
        assert_eq!(super::region_of_queue("http://127.0.0.1:5000/123/q"), None);
    }
}
