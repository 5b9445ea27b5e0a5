//! Request authentication.
//!
//! Five schemes are accepted, each checked against an [`Identity`]: the AccessKey pair current
//! when the request arrived (tests may rotate it while the server runs, see
//! [`crate::Emulator::rotate_credentials`]) and the region. They are OSS V4 (header and
//! presigned URL), OSS V1 (header and presigned URL) — verified with
//! ferry's own canonicalisation from `ferry::oss::sign`, so the SDK interop tests prove both the
//! client and this server — and AWS SigV4 (header and presigned), for OSS's S3-compatible
//! dialect, whose canonicalisation lives in [`aws_v4`]. Any STS token is accepted as long as it
//! is non-empty and covered by the signature. Anonymous requests are refused.

pub mod aws_v4;
pub mod oss_v1;
pub mod oss_v4;

use chrono::{DateTime, Utc};

use crate::error::ApiError;
use crate::request::RequestInfo;
use crate::state::Identity;
use crate::xml::iso8601;

/// Requests more than this far from the server clock are refused (`RequestTimeTooSkewed`).
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// What a successful check tells the operations.
#[derive(Clone, Debug, Default)]
pub struct Verified {
    /// For S3 requests that signed their payload: the hex SHA-256 the body must have.
    pub payload_sha256: Option<String>,
}

/// Checks the request's signature.
pub fn verify(
    info: &RequestInfo,
    cfg: &Identity,
    now: DateTime<Utc>,
) -> Result<Verified, ApiError> {
    if let Some(auth) = info.h("authorization") {
        let auth = auth.trim();
        if let Some(rest) = auth.strip_prefix("OSS4-HMAC-SHA256 ") {
            return oss_v4::verify_header(info, cfg, rest, now).map(|_| Verified::default());
        }
        if let Some(rest) = auth.strip_prefix("OSS ") {
            return oss_v1::verify_header(info, cfg, rest, now).map(|_| Verified::default());
        }
        if let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 ") {
            return aws_v4::verify_header(info, cfg, rest, now);
        }
        let scheme = auth.split_whitespace().next().unwrap_or("");
        return Err(ApiError::invalid_argument(format!(
            "Authorization scheme '{scheme}' is not supported; sign with OSS4-HMAC-SHA256, OSS (V1) or AWS4-HMAC-SHA256"
        )));
    }
    if info.has_q("x-oss-signature") || info.has_q("x-oss-signature-version") {
        return oss_v4::verify_query(info, cfg, now).map(|_| Verified::default());
    }
    if info.has_q("OSSAccessKeyId") || info.has_q("Signature") {
        return oss_v1::verify_query(info, cfg, now).map(|_| Verified::default());
    }
    if info.has_q("X-Amz-Algorithm") || info.has_q("X-Amz-Signature") {
        return aws_v4::verify_query(info, cfg, now);
    }
    Err(ApiError::access_denied(
        "Anonymous access is forbidden: sign the request (OSS V4, OSS V1 or AWS SigV4) with the emulator's AccessKey.",
    ))
}

/// Refuses request times more than [`MAX_SKEW_SECS`] away from `now`, the server's clock (the
/// emulator instance's, which may be offset from real time).
///
/// As OSS answers: 403 `RequestTimeTooSkewed`, "The difference between the request time and the
/// current time is too large.", with `MaxAllowedSkewMilliseconds` (900000), `RequestTime` and
/// `ServerTime` in the document, both ISO 8601 with a `.000` fraction
/// (`2024-09-23T06:32:40.000Z`).
pub fn check_skew(request_time: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), ApiError> {
    let skew = (now - request_time).num_seconds().abs();
    if skew > MAX_SKEW_SECS {
        return Err(ApiError::new(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        )
        .with(
            "MaxAllowedSkewMilliseconds",
            (MAX_SKEW_SECS * 1000).to_string(),
        )
        .with("RequestTime", iso8601(request_time.timestamp_millis()))
        .with("ServerTime", iso8601(now.timestamp_millis())));
    }
    Ok(())
}

/// The AccessKey id must be the current one.
pub fn check_access_key(given: &str, cfg: &Identity) -> Result<(), ApiError> {
    if given != cfg.access_key_id {
        return Err(ApiError::new(
            403,
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
        )
        .with("OSSAccessKeyId", given));
    }
    Ok(())
}

/// A security token, when present, must not be empty (there is no STS here to validate it).
pub fn check_token(token: Option<&str>) -> Result<(), ApiError> {
    match token {
        Some(t) if t.trim().is_empty() => Err(ApiError::new(
            403,
            "InvalidSecurityToken",
            "The security token you provided is empty.",
        )),
        _ => Ok(()),
    }
}

/// Compares signatures without an early exit.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The `SignatureDoesNotMatch` error, echoing what the server signed.
pub fn mismatch(string_to_sign: &str, provided: &str) -> ApiError {
    ApiError::new(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    )
    .with("StringToSign", string_to_sign)
    .with("SignatureProvided", provided)
}

/// Splits `A=1, B=2,C=3` into pairs (whitespace after commas is optional).
pub fn parse_fields(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|part| {
            let part = part.trim();
            let (k, v) = part.split_once('=')?;
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_and_without_spaces() {
        let f = parse_fields("Credential=a/b, AdditionalHeaders=host;range,Signature=ff");
        assert_eq!(field(&f, "Credential"), Some("a/b"));
        assert_eq!(field(&f, "AdditionalHeaders"), Some("host;range"));
        assert_eq!(field(&f, "Signature"), Some("ff"));
    }

    #[test]
    fn skew_error_names_both_times_as_oss_does() {
        let now = crate::time::parse_compact("20240923T063240Z").unwrap();
        assert!(check_skew(now - chrono::Duration::minutes(15), now).is_ok());
        let e = check_skew(now - chrono::Duration::minutes(16), now).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code.as_str()),
            (403, "RequestTimeTooSkewed")
        );
        assert_eq!(
            e.message,
            "The difference between the request time and the current time is too large."
        );
        let extra: Vec<(&str, &str)> = e
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            extra,
            [
                ("MaxAllowedSkewMilliseconds", "900000"),
                ("RequestTime", "2024-09-23T06:16:40.000Z"),
                ("ServerTime", "2024-09-23T06:32:40.000Z"),
            ]
        );
    }

    #[test]
    fn constant_time_compare() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
