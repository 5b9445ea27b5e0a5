//! The one error type of the OSS client, and what is worth retrying.
//!
//! Callers mostly need two answers: *what happened* (the OSS error code, HTTP status, request id
//! to quote to support) and *should I try again* ([`Error::is_retryable`]). The classification
//! follows the official SDKs' retryers: server-side and throttling failures,
//! clock skew and broken connections are transient; a missing key, a refused signature or a
//! client bug is not.
//!
//! Nothing here ever holds a credential. The one place a secret could leak — the STS token
//! inside a V1 string-to-sign that OSS echoes back — is redacted on the way in.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Codes that are transient even though their HTTP status is not (the official SDKs retry them).
const RETRYABLE_CODES: &[&str] = &[
    "RequestTimeTooSkewed",
    "BadRequest",
    // The server gave up waiting for the request body; a fresh attempt usually succeeds.
    "RequestTimeout",
];

/// An error from the OSS client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// OSS answered with an error status.
    #[error(transparent)]
    Service(Box<ServiceError>),
    /// The request or response did not make it across the network.
    #[error("OSS {operation}: {kind} error: {message}")]
    Transport {
        /// The operation ferry was performing (`PutObject`, `ListObjectsV2`, …).
        operation: &'static str,
        /// What kind of network failure it was.
        kind: TransportKind,
        /// What the HTTP client reported.
        message: String,
    },
    /// The request body (the caller's stream) failed or had the wrong length. Retryable: the
    /// caller re-opens its source and tries again.
    #[error("OSS {operation}: request body failed: {message}")]
    Body {
        /// The operation ferry was performing.
        operation: &'static str,
        /// What went wrong with the body.
        message: String,
    },
    /// The bytes OSS stored are not the bytes ferry sent or read (CRC-64 differs).
    #[error(
        "OSS {operation}: CRC-64 mismatch for {resource}: client computed {client}, server reports {server} (request id {request_id})"
    )]
    ChecksumMismatch {
        /// The operation ferry was performing.
        operation: &'static str,
        /// What the request addressed (`bucket/key`).
        resource: String,
        /// The CRC-64 ferry computed over the bytes it sent or read.
        client: u64,
        /// The CRC-64 OSS reported (`x-oss-hash-crc64ecma`).
        server: u64,
        /// `x-oss-request-id` of the response, to quote to support.
        request_id: String,
    },
    /// OSS answered 2xx but the body or headers could not be understood.
    #[error("OSS {operation}: invalid response (request id {request_id}): {message}")]
    InvalidResponse {
        /// The operation ferry was performing.
        operation: &'static str,
        /// `x-oss-request-id` of the response, to quote to support.
        request_id: String,
        /// What could not be understood.
        message: String,
    },
    /// The client configuration is unusable (endpoint, region, credentials, retry settings).
    #[error("invalid OSS client configuration: {0}")]
    InvalidConfig(String),
    /// A request argument is unusable (bucket name, key, header value).
    #[error("invalid {name} {value:?}: {fix}")]
    InvalidArgument {
        /// What the argument is (`bucket name`, `metadata name`, …).
        name: &'static str,
        /// The value given.
        value: String,
        /// What would be accepted instead.
        fix: String,
    },
}

/// What kind of network failure a [`Error::Transport`] was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// Could not connect (refused, DNS, TLS handshake).
    Connect,
    /// A configured timeout fired.
    Timeout,
    /// The connection broke while sending the request or reading the response head.
    Request,
    /// The connection broke while reading the response body.
    Body,
    /// Anything else reqwest reports (not retried).
    Other,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Connect => "connect",
            TransportKind::Timeout => "timeout",
            TransportKind::Request => "connection",
            TransportKind::Body => "response body",
            TransportKind::Other => "HTTP client",
        })
    }
}

/// An error response from OSS, with everything it said about itself.
#[derive(Debug, Clone, Default)]
pub struct ServiceError {
    /// The operation ferry was performing (`PutObject`, `ListObjectsV2`, …).
    pub operation: &'static str,
    /// `bucket/key`, `bucket/` or `/` — what the request addressed.
    pub resource: String,
    /// The HTTP status code.
    pub status: u16,
    /// OSS error code (`NoSuchKey`); empty when the response carried no error document.
    pub code: String,
    /// `<Message>`: OSS's description of the error; may be empty.
    pub message: String,
    /// `x-oss-request-id` (or `<RequestId>`), to quote to support; may be empty.
    pub request_id: String,
    /// `<HostId>`: the endpoint host that answered.
    pub host_id: String,
    /// The detailed error number (`0003-00000201`), from the body or `x-oss-ec`.
    pub ec: String,
    /// For `SignatureDoesNotMatch`: the string OSS signed (STS token redacted).
    pub string_to_sign: Option<String>,
    /// For `SignatureDoesNotMatch`: the string ferry signed, to diff against the server's.
    pub client_string_to_sign: Option<String>,
    /// The server's `Date` header, used to correct clock skew.
    pub server_time: Option<DateTime<Utc>>,
    /// `x-oss-qos-delay-time`: how long OSS asks the client to wait before retrying.
    pub qos_delay: Option<Duration>,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = if self.code.is_empty() {
            "(no error code)"
        } else {
            &self.code
        };
        write!(
            f,
            "OSS {} {}: HTTP {} {code}",
            self.operation, self.resource, self.status
        )?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        write!(
            f,
            " (request id {}",
            if self.request_id.is_empty() {
                "-"
            } else {
                &self.request_id
            }
        )?;
        if !self.ec.is_empty() {
            write!(f, ", EC {}", self.ec)?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for ServiceError {}

impl ServiceError {
    /// Whether trying the same request again may succeed: 5xx, 401, 408, 429 and a few transient
    /// codes.
    pub fn is_retryable(&self) -> bool {
        self.status >= 500
            || matches!(self.status, 401 | 408 | 429)
            || RETRYABLE_CODES.contains(&self.code.as_str())
    }
}

impl Error {
    /// Whether trying the same request again may succeed (as the official SDKs decide it).
    ///
    /// `InvalidDigest` is not: the bytes themselves were wrong, so the caller re-reads its source
    /// (once) rather than resending the same bytes.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Service(e) => e.is_retryable(),
            Error::Transport { kind, .. } => *kind != TransportKind::Other,
            Error::Body { .. } | Error::ChecksumMismatch { .. } => true,
            Error::InvalidResponse { .. }
            | Error::InvalidConfig(_)
            | Error::InvalidArgument { .. } => false,
        }
    }

    /// Whether OSS refused the credentials themselves (an unknown or disabled AccessKey, an
    /// expired or invalid STS token, a secret that does not match): fresh credentials may help
    /// where retrying the same ones cannot.
    pub fn is_credentials_error(&self) -> bool {
        matches!(
            self.code(),
            Some(
                "InvalidAccessKeyId"
                    | "SecurityTokenExpired"
                    | "InvalidSecurityToken"
                    | "SignatureDoesNotMatch"
            )
        )
    }

    /// The service error, if OSS answered with one.
    pub fn service(&self) -> Option<&ServiceError> {
        match self {
            Error::Service(e) => Some(e),
            _ => None,
        }
    }

    /// The OSS error code (`NoSuchKey`), if OSS answered with one.
    pub fn code(&self) -> Option<&str> {
        self.service()
            .map(|e| e.code.as_str())
            .filter(|c| !c.is_empty())
    }

    /// The HTTP status, if OSS answered.
    pub fn status(&self) -> Option<u16> {
        self.service().map(|e| e.status)
    }

    /// The OSS request id, when there was a response.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Service(e) => Some(e.request_id.as_str()),
            Error::ChecksumMismatch { request_id, .. }
            | Error::InvalidResponse { request_id, .. } => Some(request_id.as_str()),
            _ => None,
        }
        .filter(|r| !r.is_empty())
    }

    /// The object or bucket does not exist (`NoSuchKey`, `NoSuchBucket`, or a 404 HEAD).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    pub(crate) fn invalid_argument(
        name: &'static str,
        value: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Error::InvalidArgument {
            name,
            value: value.into(),
            fix: fix.into(),
        }
    }

    /// Maps a reqwest failure to a transport error. reqwest's own message never includes
    /// headers, so no credential can slip through here.
    pub(crate) fn from_reqwest(operation: &'static str, err: reqwest::Error) -> Self {
        let kind = if err.is_timeout() {
            TransportKind::Timeout
        } else if err.is_connect() {
            TransportKind::Connect
        } else if err.is_body() || err.is_decode() {
            TransportKind::Body
        } else if err.is_request() {
            TransportKind::Request
        } else {
            TransportKind::Other
        };
        Error::Transport {
            operation,
            kind,
            message: error_chain(&err),
        }
    }
}

impl From<ServiceError> for Error {
    fn from(e: ServiceError) -> Self {
        Error::Service(Box::new(e))
    }
}

/// An error and its sources on one line; reqwest's top-level message alone ("error sending
/// request") hides the useful part (connection reset, refused, …).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Replaces the STS token in a V1 string-to-sign (header line or presign sub-resource).
pub(crate) fn redact_string_to_sign(s: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for line in s.split('\n') {
        if line
            .to_ascii_lowercase()
            .starts_with("x-oss-security-token:")
        {
            out.push("x-oss-security-token:***".to_owned());
        } else {
            out.push(redact_query_token(line));
        }
    }
    out.join("\n")
}

fn redact_query_token(line: &str) -> String {
    let Some(start) = line.find("security-token=") else {
        return line.to_owned();
    };
    let value_start = start + "security-token=".len();
    let value_end = line[value_start..]
        .find('&')
        .map_or(line.len(), |i| value_start + i);
    format!("{}***{}", &line[..value_start], &line[value_end..])
}

impl From<super::endpoint::EndpointError> for Error {
    fn from(e: super::endpoint::EndpointError) -> Self {
        Error::InvalidConfig(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: &str) -> Error {
        ServiceError {
            operation: "GetObject",
            resource: "b/k".into(),
            status,
            code: code.into(),
            ..Default::default()
        }
        .into()
    }

    #[test]
    fn classification_follows_the_reference() {
        for (status, code) in [
            (500, "InternalError"),
            (503, "ServiceUnavailable"),
            (502, ""),
            (401, ""),
            (408, ""),
            (429, ""),
            (403, "RequestTimeTooSkewed"),
            (400, "BadRequest"),
        ] {
            assert!(
                service(status, code).is_retryable(),
                "{status} {code} should be retryable"
            );
        }
        for (status, code) in [
            (404, "NoSuchKey"),
            (404, "NoSuchBucket"),
            (404, "NoSuchUpload"),
            (403, "AccessDenied"),
            (403, "SignatureDoesNotMatch"),
            (403, "InvalidObjectState"),
            (400, "InvalidPart"),
            (400, "EntityTooSmall"),
            (400, "InvalidPartOrder"),
            (409, "FileAlreadyExists"),
            (400, "InvalidDigest"),
        ] {
            assert!(
                !service(status, code).is_retryable(),
                "{status} {code} should not be retryable"
            );
        }
    }

    #[test]
    fn non_service_classification() {
        let t = |kind| Error::Transport {
            operation: "PutObject",
            kind,
            message: "reset".into(),
        };
        assert!(t(TransportKind::Connect).is_retryable());
        assert!(t(TransportKind::Request).is_retryable());
        assert!(t(TransportKind::Body).is_retryable());
        assert!(t(TransportKind::Timeout).is_retryable());
        assert!(!t(TransportKind::Other).is_retryable());
        let crc = Error::ChecksumMismatch {
            operation: "UploadPart",
            resource: "b/k".into(),
            client: 1,
            server: 2,
            request_id: "r".into(),
        };
        assert!(crc.is_retryable());
        assert!(
            Error::Body {
                operation: "PutObject",
                message: "source reset".into()
            }
            .is_retryable()
        );
        assert!(!Error::InvalidConfig("x".into()).is_retryable());
        assert!(
            !Error::InvalidResponse {
                operation: "ListParts",
                request_id: "r".into(),
                message: "bad".into()
            }
            .is_retryable()
        );
    }

    #[test]
    fn display_names_code_message_request_id_and_status() {
        let e: Error = ServiceError {
            operation: "GetObject",
            resource: "bucket/key.txt".into(),
            status: 404,
            code: "NoSuchKey".into(),
            message: "The specified key does not exist.".into(),
            request_id: "RID123".into(),
            ec: "0026-00000001".into(),
            ..Default::default()
        }
        .into();
        let text = e.to_string();
        for part in [
            "GetObject",
            "bucket/key.txt",
            "404",
            "NoSuchKey",
            "The specified key does not exist.",
            "RID123",
            "0026-00000001",
        ] {
            assert!(text.contains(part), "{text} lacks {part}");
        }
        assert_eq!(e.code(), Some("NoSuchKey"));
        assert_eq!(e.request_id(), Some("RID123"));
        assert!(e.is_not_found());
    }

    #[test]
    fn tokens_are_redacted_from_strings_to_sign() {
        let v1 = "PUT\n\n\nDate\nx-oss-meta-a:b\nx-oss-security-token:CAIS-secret-token\n/b/k";
        let r = redact_string_to_sign(v1);
        assert!(!r.contains("CAIS-secret-token"));
        assert!(r.contains("x-oss-security-token:***"));
        assert!(r.contains("x-oss-meta-a:b"));
        let presign = "GET\n\n\n1700000000\n/b/k?security-token=CAIS-secret&versionId=1";
        let r = redact_string_to_sign(presign);
        assert!(!r.contains("CAIS-secret"));
        assert!(r.ends_with("?security-token=***&versionId=1"));
    }
}
