//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`) for the S3-compatible dialect.
//!
//! S3's canonicalisation differs from OSS V4 in ways that matter: the canonical URI is the
//! decoded request path re-encoded segment by segment (the bucket is in it only for path-style
//! requests), every query parameter is rendered `k=v` even when `v` is empty, only the headers
//! named in `SignedHeaders` are signed (with inner whitespace collapsed), and the payload hash is
//! whatever `x-amz-content-sha256` says (`UNSIGNED-PAYLOAD`, `STREAMING-*` or a real hash).

use chrono::{DateTime, Utc};
use ferry::oss::sign::{uri_encode, uri_encode_path};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::{Verified, check_skew, check_token, field, mismatch, parse_fields, same};
use crate::error::ApiError;
use crate::request::RequestInfo;
use crate::state::Identity;
use crate::time::{parse_compact, parse_http_date};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// SigV4 presigned URLs live at most seven days.
const MAX_EXPIRES_SECS: i64 = 7 * 24 * 3600;

struct Scope {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
}

impl Scope {
    fn parse(credential: &str) -> Result<Scope, ApiError> {
        let parts: Vec<&str> = credential.split('/').collect();
        if parts.len() != 5 || parts[4] != "aws4_request" {
            return Err(malformed(format!(
                "the credential '{credential}' must look like AccessKeyId/YYYYMMDD/region/s3/aws4_request"
            )));
        }
        Ok(Scope {
            access_key_id: parts[0].to_owned(),
            date: parts[1].to_owned(),
            region: parts[2].to_owned(),
            service: parts[3].to_owned(),
        })
    }

    fn check(&self, cfg: &Identity, amz_date: &str) -> Result<(), ApiError> {
        if self.access_key_id != cfg.access_key_id {
            return Err(ApiError::new(
                403,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
            .with("AWSAccessKeyId", self.access_key_id.clone()));
        }
        let oss_region = format!("oss-{}", cfg.region);
        if self.region != cfg.region && self.region != oss_region {
            return Err(malformed(format!(
                "the region '{}' is wrong; expecting '{}'",
                self.region, cfg.region
            ))
            .with("Region", cfg.region.clone()));
        }
        if self.service != "s3" {
            return Err(malformed(format!(
                "the service '{}' is wrong; expecting 's3'",
                self.service
            )));
        }
        if !amz_date.starts_with(&self.date) {
            return Err(malformed(format!(
                "the credential date '{}' does not match the request date '{amz_date}'",
                self.date
            )));
        }
        Ok(())
    }

    fn string(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

fn malformed(detail: String) -> ApiError {
    ApiError::new(
        400,
        "AuthorizationHeaderMalformed",
        format!("The authorization header is malformed; {detail}"),
    )
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The hex SigV4 signature of `string_to_sign`.
pub fn signature(
    secret: &str,
    scope_date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> String {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), scope_date);
    let k_region = hmac(&k_date, region);
    let k_service = hmac(&k_region, service);
    let k_signing = hmac(&k_service, "aws4_request");
    hex::encode(hmac(&k_signing, string_to_sign))
}

/// `k=v` pairs, both URI-encoded, sorted by key then value.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The signed headers, in the order of `SignedHeaders`, values trimmed with inner runs of
/// whitespace collapsed and repeated headers joined with `,`.
pub fn canonical_headers(headers: &[(String, String)], signed: &[String]) -> String {
    let mut out = String::new();
    for name in signed {
        let values: Vec<String> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out
}

/// The whole canonical request.
pub fn canonical_request(
    method: &str,
    decoded_path: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
    signed: &[String],
    payload: &str,
) -> String {
    let uri = if decoded_path.is_empty() {
        "/".to_owned()
    } else {
        uri_encode_path(decoded_path)
    };
    format!(
        "{method}\n{uri}\n{}\n{}\n{}\n{payload}",
        canonical_query(query),
        canonical_headers(headers, signed),
        signed.join(";")
    )
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical: &str) -> String {
    let hash = hex::encode(Sha256::digest(canonical.as_bytes()));
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{hash}")
}

fn signed_list(value: &str) -> Vec<String> {
    value
        .split(';')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

fn check_payload_header(value: Option<String>) -> Result<String, ApiError> {
    let value = value.ok_or_else(|| {
        ApiError::new(
            400,
            "InvalidRequest",
            "Missing required header for this request: x-amz-content-sha256",
        )
    })?;
    let ok = value == "UNSIGNED-PAYLOAD"
        || value.starts_with("STREAMING-")
        || (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()));
    if !ok {
        return Err(ApiError::new(
            400,
            "InvalidArgument",
            format!(
                "x-amz-content-sha256 '{value}' must be a hex SHA-256, UNSIGNED-PAYLOAD or STREAMING-*"
            ),
        ));
    }
    Ok(value)
}

fn compare(
    cfg: &Identity,
    scope: &Scope,
    amz_date: &str,
    canonical: &str,
    provided: &str,
) -> Result<(), ApiError> {
    let sts = string_to_sign(amz_date, &scope.string(), canonical);
    let expected = signature(
        cfg.secret.expose(),
        &scope.date,
        &scope.region,
        &scope.service,
        &sts,
    );
    if !same(&expected, provided) {
        return Err(mismatch(&sts, provided)
            .with("CanonicalRequest", canonical)
            .with("AWSAccessKeyId", cfg.access_key_id.clone()));
    }
    Ok(())
}

/// Checks `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
pub fn verify_header(
    info: &RequestInfo,
    cfg: &Identity,
    rest: &str,
    now: DateTime<Utc>,
) -> Result<Verified, ApiError> {
    let fields = parse_fields(rest);
    let credential =
        field(&fields, "Credential").ok_or_else(|| malformed("Credential is missing".into()))?;
    let signed = signed_list(
        field(&fields, "SignedHeaders")
            .ok_or_else(|| malformed("SignedHeaders is missing".into()))?,
    );
    let provided =
        field(&fields, "Signature").ok_or_else(|| malformed("Signature is missing".into()))?;
    let scope = Scope::parse(credential)?;
    let (amz_date, t) = match info.h("x-amz-date") {
        Some(d) => {
            let t = parse_compact(d.trim()).ok_or_else(|| {
                ApiError::access_denied(format!(
                    "x-amz-date '{d}' is invalid: use YYYYMMDDTHHMMSSZ"
                ))
            })?;
            (d.trim().to_owned(), t)
        }
        None => {
            let d = info
                .h("date")
                .ok_or_else(|| ApiError::access_denied("x-amz-date or Date is required"))?;
            let t = parse_http_date(&d)
                .ok_or_else(|| ApiError::access_denied(format!("Date '{d}' is invalid")))?;
            (t.format("%Y%m%dT%H%M%SZ").to_string(), t)
        }
    };
    scope.check(cfg, &amz_date)?;
    check_skew(t, now)?;
    if !signed.iter().any(|h| h == "host") {
        return Err(ApiError::access_denied("SignedHeaders must include host"));
    }
    let token = info.h("x-amz-security-token");
    check_token(token.as_deref())?;
    if token.is_some() && !signed.iter().any(|h| h == "x-amz-security-token") {
        return Err(ApiError::access_denied(
            "x-amz-security-token must be a signed header",
        ));
    }
    let payload = check_payload_header(info.h("x-amz-content-sha256"))?;
    let canonical = canonical_request(
        info.method.as_str(),
        &info.decoded_path,
        &info.query,
        &info.header_list,
        &signed,
        &payload,
    );
    compare(cfg, &scope, &amz_date, &canonical, provided)?;
    let hashed = payload.len() == 64 && !payload.starts_with("STREAMING-");
    Ok(Verified {
        payload_sha256: hashed.then_some(payload.to_ascii_lowercase()),
    })
}

/// Checks an S3 presigned URL (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
/// `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature`).
pub fn verify_query(
    info: &RequestInfo,
    cfg: &Identity,
    now: DateTime<Utc>,
) -> Result<Verified, ApiError> {
    let required = |name: &str| {
        info.q(name).ok_or_else(|| {
            ApiError::access_denied(format!(
                "The presigned URL lacks the query parameter {name}"
            ))
        })
    };
    if required("X-Amz-Algorithm")? != ALGORITHM {
        return Err(ApiError::access_denied(format!(
            "X-Amz-Algorithm must be {ALGORITHM}"
        )));
    }
    let scope = Scope::parse(required("X-Amz-Credential")?)?;
    let amz_date = required("X-Amz-Date")?;
    let t = parse_compact(amz_date).ok_or_else(|| {
        ApiError::access_denied(format!(
            "X-Amz-Date '{amz_date}' is invalid: use YYYYMMDDTHHMMSSZ"
        ))
    })?;
    let expires: i64 = required("X-Amz-Expires")?.parse().unwrap_or(-1);
    if !(1..=MAX_EXPIRES_SECS).contains(&expires) {
        return Err(ApiError::access_denied(format!(
            "X-Amz-Expires must be between 1 and {MAX_EXPIRES_SECS}"
        )));
    }
    let signed = signed_list(required("X-Amz-SignedHeaders")?);
    let provided = required("X-Amz-Signature")?;
    scope.check(cfg, amz_date)?;
    if t - now > chrono::Duration::seconds(super::MAX_SKEW_SECS) {
        check_skew(t, now)?;
    }
    if now > t + chrono::Duration::seconds(expires) {
        return Err(ApiError::access_denied("Request has expired"));
    }
    check_token(info.q("X-Amz-Security-Token"))?;
    let query: Vec<(String, String)> = info
        .query
        .iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .cloned()
        .collect();
    let payload = info.q("X-Amz-Content-Sha256").unwrap_or("UNSIGNED-PAYLOAD");
    let canonical = canonical_request(
        info.method.as_str(),
        &info.decoded_path,
        &query,
        &info.header_list,
        &signed,
        payload,
    );
    compare(cfg, &scope, amz_date, &canonical, provided)?;
    Ok(Verified::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    // The "GET Object" example of the AWS SigV4 documentation for S3 (examplebucket,
    // AKIAIOSFODNN7EXAMPLE, 20130524) — a published vector for this canonicalisation.
    #[test]
    fn aws_documentation_get_object_vector() {
        let headers = vec![
            (
                "Host".to_owned(),
                "examplebucket.s3.amazonaws.com".to_owned(),
            ),
            ("Range".to_owned(), "bytes=0-9".to_owned()),
            (
                "x-amz-content-sha256".to_owned(),
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_owned(),
            ),
            ("x-amz-date".to_owned(), "20130524T000000Z".to_owned()),
        ];
        let signed: Vec<String> = ["host", "range", "x-amz-content-sha256", "x-amz-date"]
            .map(String::from)
            .to_vec();
        let canonical = canonical_request(
            "GET",
            "/test.txt",
            &[],
            &headers,
            &signed,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        );
        let sts = string_to_sign(
            "20130524T000000Z",
            "20130524/us-east-1/s3/aws4_request",
            &canonical,
        );
        let sig = signature(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "20130524",
            "us-east-1",
            "s3",
            &sts,
        );
        assert_eq!(
            sig,
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn query_keeps_empty_values_with_equals() {
        let q = vec![
            ("uploads".to_owned(), String::new()),
            ("a b".to_owned(), "x/y".to_owned()),
        ];
        assert_eq!(canonical_query(&q), "a%20b=x%2Fy&uploads=");
    }
}
