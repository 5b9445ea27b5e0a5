//! One reading of AWS SDK errors for every adapter that talks to AWS — the S3 source
//! (`source::s3`), the SQS queue (`queue::sqs`) and the S3 state store (`state::s3`).
//!
//! [`read`] turns an SDK failure into a [`Failure`]: a [`Kind`] from one policy table
//! ([`kind_of`]) and a message naming the HTTP status, error code, the service's message and
//! the request ids. Each adapter maps the kind onto its own error kinds (a queue or a state
//! store has no "needs restore"), so the same answer means the same thing everywhere: a 501 is
//! permanent for all three, a credential chain that found nothing is an access problem for all
//! three, and a throttled or 5xx answer is worth retrying for all three.
//!
//! SDK errors never carry credentials, so the message is safe to log and report.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::{RequestId, RequestIdExt};

/// What kind of failure an AWS answer (or the lack of one) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The object, bucket or queue does not exist.
    NotFound,
    /// The credentials or a policy refuse the request, or no credentials were found.
    AccessDenied,
    /// The object is archived and must be restored before it can be read.
    NeedsRestore,
    /// The service asks to slow down (503 SlowDown, 429, throttling codes).
    Throttled,
    /// May pass on its own: a 5xx, a timeout, a connection that broke.
    Transient,
    /// A condition on the request failed: the object changed (412, 416).
    Changed,
    /// The request or message is larger than the service accepts.
    TooLarge,
    /// Will fail the same way again: a malformed request, an operation the store lacks.
    Permanent,
}

impl Kind {
    /// Whether retrying later can help.
    pub fn may_pass(self) -> bool {
        matches!(self, Kind::Throttled | Kind::Transient)
    }
}

/// An SDK failure read once: its kind, and what to tell the user.
#[derive(Debug)]
pub struct Failure {
    /// How the failure should be handled: retried later or not.
    pub kind: Kind,
    /// The service's error code, when it answered with one.
    pub code: Option<String>,
    /// For example `HTTP 503 SlowDown: Please reduce your request rate (request id …)`.
    pub text: String,
}

/// Reads an SDK failure of any AWS client (the SDK crates share one error type).
pub fn read<E>(err: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (kind, what) = match err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code();
            let detail = ctx
                .err()
                .message()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            let shown = code.unwrap_or("(no error code)");
            (
                kind_of(code, status),
                format!("HTTP {status} {shown}{detail}"),
            )
        }
        SdkError::TimeoutError(_) => (
            Kind::Transient,
            format!("timed out: {}", DisplayErrorContext(err)),
        ),
        SdkError::DispatchFailure(failure) => {
            let text = DisplayErrorContext(err).to_string();
            (
                dispatch_kind(failure.is_user(), failure.is_other(), &text),
                text,
            )
        }
        SdkError::ResponseError(_) => (Kind::Transient, DisplayErrorContext(err).to_string()),
        _ => (Kind::Permanent, DisplayErrorContext(err).to_string()),
    };
    let ids = request_ids(err.request_id(), err.extended_request_id());
    Failure {
        kind,
        code: err.code().map(str::to_owned),
        text: format!("{what}{ids}"),
    }
}

/// The policy table: an AWS error code and HTTP status → [`Kind`]. A known code decides
/// before the status does (SQS answers throttling with 403 OverLimit, S3 an archived object
/// with 403 InvalidObjectState).
pub fn kind_of(code: Option<&str>, status: u16) -> Kind {
    use Kind::*;
    // Query-compatible codes come prefixed (`AWS.SimpleQueueService.NonExistentQueue`).
    let code = code
        .map(|c| c.rsplit('.').next().unwrap_or(c))
        .unwrap_or("");
    match (code, status) {
        ("InvalidObjectState", _) => NeedsRestore,
        ("BatchRequestTooLong" | "MessageTooLong" | "EntityTooLarge", _) => TooLarge,
        (
            "SlowDown"
            | "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TooManyRequests"
            | "RequestThrottled"
            | "KmsThrottled"
            | "OverLimit"
            | "ServiceUnavailable",
            _,
        )
        | (_, 429 | 503) => Throttled,
        ("RequestTimeout" | "InternalError" | "InternalFailure", _) => Transient,
        ("NoSuchKey" | "NoSuchBucket" | "NoSuchVersion" | "NotFound" | "NonExistentQueue", _)
        | (_, 404) => NotFound,
        ("PreconditionFailed", _) | (_, 412) => Changed,
        // A range starting past the end: the object is shorter than HEAD said.
        ("InvalidRange", _) | (_, 416) => Changed,
        (c, _) if is_credentials_refusal(Some(c)) => AccessDenied,
        ("AccessDenied" | "AccessDeniedException", _) | (_, 401 | 403) => AccessDenied,
        // A store that lacks an operation will lack it on the next attempt too.
        ("NotImplemented", _) | (_, 501) => Permanent,
        (_, 500..=599) => Transient,
        _ => Permanent,
    }
}

/// Error codes that refuse the credentials themselves (not what they may do): credentials
/// that can be read again (a rotated key) are worth reading again before retrying.
pub fn is_credentials_refusal(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" | "InvalidToken")
    )
}

/// A request that never got an HTTP answer: network and timeouts are transient; a credential
/// chain that found nothing is an access problem; a malformed request is permanent. Credential
/// failures arrive as "other" dispatch failures whose text is all there is to tell a missing
/// credential from an STS / metadata endpoint that could not be reached.
fn dispatch_kind(is_user: bool, is_other: bool, text: &str) -> Kind {
    let lower = text.to_ascii_lowercase();
    let network = ["io error", "timed out", "timeout", "connect", "dns"]
        .iter()
        .any(|w| lower.contains(w));
    if is_user {
        Kind::Permanent
    } else if is_other && lower.contains("credential") && !network {
        Kind::AccessDenied
    } else {
        Kind::Transient
    }
}

fn request_ids(id: Option<&str>, extended: Option<&str>) -> String {
    match (id, extended) {
        (Some(id), Some(ext)) => format!(" (request id {id}, extended request id {ext})"),
        (Some(id), None) => format!(" (request id {id})"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::Kind::*;
    use super::{dispatch_kind, kind_of};

    /// The one policy, row by row: what S3 and SQS answer, and what ferry makes of it.
    #[test]
    fn the_policy_table() {
        let rows: &[(Option<&str>, u16, super::Kind)] = &[
            (Some("InvalidObjectState"), 403, NeedsRestore),
            (Some("AccessDenied"), 403, AccessDenied),
            (Some("InvalidAccessKeyId"), 403, AccessDenied),
            (Some("ExpiredToken"), 400, AccessDenied),
            (None, 401, AccessDenied),
            (None, 404, NotFound),
            (Some("NoSuchBucket"), 404, NotFound),
            (
                Some("AWS.SimpleQueueService.NonExistentQueue"),
                400,
                NotFound,
            ),
            (Some("SlowDown"), 503, Throttled),
            (Some("RequestThrottled"), 400, Throttled),
            (Some("OverLimit"), 403, Throttled),
            (Some("ServiceUnavailable"), 503, Throttled),
            (None, 429, Throttled),
            (None, 503, Throttled),
            (Some("InternalError"), 500, Transient),
            (Some("InternalFailure"), 500, Transient),
            (Some("RequestTimeout"), 400, Transient),
            (None, 502, Transient),
            (Some("PreconditionFailed"), 412, Changed),
            (None, 416, Changed),
            (Some("BatchRequestTooLong"), 400, TooLarge),
            (Some("AWS.SimpleQueueService.MessageTooLong"), 400, TooLarge),
            (Some("NotImplemented"), 501, Permanent),
            (None, 501, Permanent),
            (Some("InvalidArgument"), 400, Permanent),
            (None, 400, Permanent),
        ];
        for (code, status, kind) in rows {
            assert_eq!(kind_of(*code, *status), *kind, "{code:?} {status}");
        }
    }

    #[test]
    fn answers_that_never_came() {
        assert_eq!(dispatch_kind(true, false, "invalid uri"), Permanent);
        assert_eq!(
            dispatch_kind(false, true, "the credential provider was not enabled"),
            AccessDenied
        );
        assert_eq!(
            dispatch_kind(false, true, "failed to load credentials: connect error"),
            Transient,
            "a credential endpoint that could not be reached may answer later"
        );
        assert_eq!(dispatch_kind(false, false, "io error: reset"), Transient);
    }
}
