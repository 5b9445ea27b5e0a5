//! S3 failures as [`SourceError`]s: the kind by the one policy in [`crate::aws`], and a refused
//! key pair that can be read again marked for reading.

use super::*;

impl S3Source {
    /// [`classify`], and when S3 refused the credentials themselves and they can be read again
    /// ([`credentials::Refreshing`]): marks them refused and makes the error retryable, so the
    /// retry signs with fresh ones instead of failing the object.
    pub(super) fn classify<E>(
        &self,
        operation: &str,
        resource: &str,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> SourceError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let refused = matches!(&err, SdkError::ServiceError(ctx)
            if crate::aws::is_credentials_refusal(ctx.err().code()));
        let mut error = classify(operation, resource, err);
        if let (true, Some(refreshing)) = (refused, &self.refreshing) {
            refreshing.refused();
            error.kind = SourceErrorKind::Transient;
        }
        error
    }
}

/// Turns an SDK failure into a [`SourceError`] the engine can act on, by the one policy in
/// [`crate::aws`]. The message names the operation, HTTP status, S3 error code and request ids.
fn classify<E>(
    operation: &str,
    resource: &str,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use crate::aws::Kind;
    let failure = crate::aws::read(&err);
    let kind = match failure.kind {
        Kind::NotFound => SourceErrorKind::NotFound,
        Kind::AccessDenied => SourceErrorKind::AccessDenied,
        Kind::NeedsRestore => SourceErrorKind::NeedsRestore,
        Kind::Throttled => SourceErrorKind::Throttled,
        Kind::Transient => SourceErrorKind::Transient,
        Kind::Changed => SourceErrorKind::Changed,
        Kind::TooLarge | Kind::Permanent => SourceErrorKind::Permanent,
    };
    SourceError::new(
        kind,
        resource,
        format!("S3 {operation} failed: {}", failure.text),
    )
}
