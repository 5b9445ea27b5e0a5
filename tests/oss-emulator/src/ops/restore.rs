//! RestoreObject for Archive, ColdArchive and DeepColdArchive objects.
//!
//! The first request answers 202 and starts a restore that finishes after the configured
//! delay (`--restore-delay-ms`, [`State::restore_delay`](crate::state::State::restore_delay));
//! asking again while it runs is 409 `RestoreAlreadyInProgress`; asking once it finished is 200
//! and extends the expiry. The state shows in `x-oss-restore` and in listings' `RestoreInfo`.

use http::Response;
use serde::Deserialize;

use super::Ctx;
use crate::body::{Body, Payload};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::request::Dialect;
use crate::store::model::{Restore, RestoreState, StorageClass};

const DAY_MS: i64 = 24 * 3600 * 1000;

#[derive(Deserialize, Default)]
struct RestoreRequest {
    #[serde(rename = "Days", default)]
    days: Option<i64>,
    #[serde(rename = "JobParameters", default)]
    job: Option<JobParameters>,
    #[serde(rename = "GlacierJobParameters", default)]
    glacier_job: Option<JobParameters>,
}

#[derive(Deserialize, Default)]
struct JobParameters {
    #[serde(rename = "Tier", default)]
    tier: Option<String>,
}

fn day_limit(class: StorageClass) -> i64 {
    if class == StorageClass::Archive {
        7
    } else {
        365
    }
}

pub async fn restore(ctx: &Ctx<'_>, payload: Payload) -> Result<Response<Body>, ApiError> {
    let (bucket, key) = (ctx.bucket(), ctx.key());
    let body = payload.read_all(64 * 1024).await?;
    let request: RestoreRequest = if body.iter().all(|b| b.is_ascii_whitespace()) {
        RestoreRequest::default()
    } else {
        crate::xml::parse(&body)?
    };
    let obj = ctx.state.store.object(bucket, key)?;
    let class = obj.meta.attrs.storage_class;
    if !class.is_archive() {
        return Err(match ctx.req.dialect {
            Dialect::Oss => ApiError::new(
                400,
                "OperationNotSupported",
                format!(
                    "RestoreObject applies to Archive, ColdArchive and DeepColdArchive objects; this one is {}.",
                    class.oss_name()
                ),
            ),
            Dialect::S3 => ApiError::new(
                403,
                "InvalidObjectState",
                "Restore is not allowed for the object's current storage class",
            ),
        });
    }
    let days = request.days.unwrap_or(1);
    if !(1..=day_limit(class)).contains(&days) {
        return Err(ApiError::invalid_argument(format!(
            "Days {days} is invalid for {}: use 1 to {}",
            class.oss_name(),
            day_limit(class)
        )));
    }
    let tier = request
        .job
        .or(request.glacier_job)
        .and_then(|j| j.tier)
        .unwrap_or_else(|| "Standard".to_owned());
    if !["Expedited", "Standard", "Bulk"].contains(&tier.as_str()) {
        return Err(ApiError::invalid_argument(format!(
            "Tier '{tier}' is invalid: use Expedited, Standard or Bulk"
        )));
    }
    let now = ctx.state.now_millis();
    let delay = ctx.state.restore_delay().as_millis() as i64;
    let status =
        ctx.state
            .store
            .update_object(bucket, key, |meta| match meta.restore_state(now) {
                RestoreState::InProgress => Err(ApiError::new(
                    409,
                    "RestoreAlreadyInProgress",
                    "The archive file's restore is in progress.",
                )),
                RestoreState::Restored { .. } => {
                    if let Some(r) = &mut meta.restore {
                        r.expiry_ms = now + days * DAY_MS;
                    }
                    Ok(200)
                }
                RestoreState::Frozen => {
                    meta.restore = Some(Restore {
                        ready_at_ms: now + delay,
                        expiry_ms: now + delay + days * DAY_MS,
                    });
                    Ok(202)
                }
            })?;
    let mut reply = Reply::new(status);
    if class != StorageClass::Archive && ctx.req.dialect == Dialect::Oss {
        reply = reply.header("x-oss-object-restore-priority", &tier);
    }
    Ok(reply.empty())
}
