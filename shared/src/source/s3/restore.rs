//! RestoreObject for archived objects: the tier, the days, and whether S3 started a restore,
//! found one in progress, or had the object restored already (200 against 202).

use super::*;

impl S3Source {
    pub(super) async fn restore_object(
        &self,
        key: &str,
        days: u32,
        tier: RestoreTier,
    ) -> Result<RestoreOutcome, SourceError> {
        let resource = format!("{}/{}", self.bucket, key);
        check_key(key, &resource)?;
        let days = i32::try_from(days)
            .ok()
            .filter(|d| *d >= 1)
            .ok_or_else(|| {
                SourceError::new(
                    SourceErrorKind::Permanent,
                    &resource,
                    format!("restore for {days} days: use 1 or more days"),
                )
            })?;
        let job = GlacierJobParameters::builder()
            .tier(s3_tier(tier))
            .build()
            .map_err(|e| {
                SourceError::new(
                    SourceErrorKind::Permanent,
                    &resource,
                    format!("building the restore request: {e}"),
                )
            })?;
        let request = RestoreRequest::builder()
            .days(days)
            .glacier_job_parameters(job)
            .build();
        let status = Arc::new(AtomicU16::new(0));
        let sent = self
            .client
            .restore_object()
            .bucket(&self.bucket)
            .set_request_payer(self.request_payer.clone())
            .key(key)
            .restore_request(request)
            .customize()
            .interceptor(StatusRecorder(status.clone()))
            .send()
            .await;
        match sent {
            // 202 Accepted: a restore started; 200 OK: already restored (expiry extended).
            Ok(_) if status.load(Ordering::Relaxed) == 200 => Ok(RestoreOutcome::AlreadyRestored),
            Ok(_) => Ok(RestoreOutcome::Started),
            Err(e) if e.code() == Some("RestoreAlreadyInProgress") => {
                Ok(RestoreOutcome::AlreadyInProgress)
            }
            Err(e) if e.code() == Some("InvalidObjectState") => {
                let mut err = self.classify("RestoreObject", &resource, e);
                err.kind = SourceErrorKind::Permanent;
                err.message = format!(
                    "the object is not in an archive storage class: {}",
                    err.message
                );
                Err(err)
            }
            Err(e) => Err(self.classify("RestoreObject", &resource, e)),
        }
    }
}

fn s3_tier(tier: RestoreTier) -> Tier {
    match tier {
        RestoreTier::Expedited => Tier::Expedited,
        RestoreTier::Standard => Tier::Standard,
        RestoreTier::Bulk => Tier::Bulk,
    }
}

/// Records the HTTP status of a response: RestoreObject's output does not say whether S3
/// answered 200 (already restored) or 202 (started).
#[derive(Debug)]
struct StatusRecorder(Arc<AtomicU16>);

impl Intercept for StatusRecorder {
    fn name(&self) -> &'static str {
        "ferry::StatusRecorder"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0
            .store(context.response().status().as_u16(), Ordering::Relaxed);
        Ok(())
    }
}
