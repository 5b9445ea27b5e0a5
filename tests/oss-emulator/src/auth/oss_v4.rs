//! OSS Signature V4 (`OSS4-HMAC-SHA256`), as an Authorization header or a presigned URL.
//!
//! The canonical request and signature come from `ferry::oss::sign`; this module parses what
//! the client sent, checks the scope (AccessKey, date, region, product), the clock and the
//! payload-hash header, and compares signatures.

use chrono::{DateTime, Utc};
use ferry::oss::sign::{self, Signable, UNSIGNED_PAYLOAD, V4_ALGORITHM, V4_MAX_EXPIRES_SECS};

use super::{check_access_key, check_skew, check_token, field, mismatch, parse_fields, same};
use crate::error::ApiError;
use crate::request::RequestInfo;
use crate::state::Identity;
use crate::time::parse_compact;

/// The parts of `Credential=AK/DATE/REGION/PRODUCT/aliyun_v4_request`.
struct Scope {
    access_key_id: String,
    date: String,
    region: String,
    product: String,
}

impl Scope {
    fn parse(credential: &str) -> Result<Scope, ApiError> {
        let parts: Vec<&str> = credential.split('/').collect();
        if parts.len() != 5 || parts[4] != "aliyun_v4_request" {
            return Err(ApiError::invalid_argument(format!(
                "Invalid credential '{credential}': expected AccessKeyId/YYYYMMDD/region/oss/aliyun_v4_request"
            )));
        }
        Ok(Scope {
            access_key_id: parts[0].to_owned(),
            date: parts[1].to_owned(),
            region: parts[2].to_owned(),
            product: parts[3].to_owned(),
        })
    }

    fn check(&self, cfg: &Identity, datetime: &str) -> Result<(), ApiError> {
        check_access_key(&self.access_key_id, cfg)?;
        if self.region != cfg.region {
            return Err(ApiError::invalid_argument(format!(
                "Invalid signing region in Authorization header: the request is signed for region '{}', this endpoint is region '{}'; sign with region '{}'",
                self.region, cfg.region, cfg.region
            )));
        }
        if self.product != "oss" {
            return Err(ApiError::invalid_argument(format!(
                "Invalid signing product '{}' in the credential scope: expected 'oss'",
                self.product
            )));
        }
        if !datetime.starts_with(&self.date) {
            return Err(ApiError::access_denied(format!(
                "Invalid credential date '{}': it must be the date part of x-oss-date '{datetime}'",
                self.date
            )));
        }
        Ok(())
    }

    fn string(&self) -> String {
        sign::v4_scope(&self.date, &self.region, &self.product)
    }
}

fn parse_datetime(value: Option<&str>) -> Result<(String, DateTime<Utc>), ApiError> {
    let value = value.ok_or_else(|| {
        ApiError::access_denied(
            "x-oss-date is required for V4 signatures (format YYYYMMDDTHHMMSSZ)",
        )
    })?;
    let t = parse_compact(value).ok_or_else(|| {
        ApiError::access_denied(format!(
            "x-oss-date '{value}' is invalid: expected the format YYYYMMDDTHHMMSSZ"
        ))
    })?;
    Ok((value.to_owned(), t))
}

fn additional_list(value: Option<&str>) -> Result<Vec<String>, ApiError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = value
        .split(';')
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    if names.iter().any(|n| n.is_empty()) {
        return Err(ApiError::invalid_argument(format!(
            "AdditionalHeaders '{value}' is invalid: names must be non-empty and separated by ';'"
        )));
    }
    Ok(names)
}

fn signable<'a>(info: &'a RequestInfo, query: &'a [(String, String)]) -> Signable<'a> {
    Signable {
        method: info.method.as_str(),
        bucket: info.bucket.as_deref(),
        key: info.key.as_deref(),
        query,
        headers: &info.header_list,
    }
}

fn compare(
    cfg: &Identity,
    scope: &Scope,
    datetime: &str,
    canonical: &str,
    provided: &str,
) -> Result<(), ApiError> {
    let sts = sign::v4_string_to_sign(datetime, &scope.string(), canonical);
    let expected = sign::v4_signature(
        cfg.secret.expose(),
        &scope.date,
        &scope.region,
        &scope.product,
        &sts,
    );
    if !same(&expected, &provided.to_ascii_lowercase()) {
        return Err(mismatch(&sts, provided).with("CanonicalRequest", canonical));
    }
    Ok(())
}

/// Checks `Authorization: OSS4-HMAC-SHA256 Credential=…,AdditionalHeaders=…,Signature=…`.
pub fn verify_header(
    info: &RequestInfo,
    cfg: &Identity,
    rest: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let fields = parse_fields(rest);
    let credential = field(&fields, "Credential").ok_or_else(|| {
        ApiError::invalid_argument("The Authorization header has no Credential field")
    })?;
    let provided = field(&fields, "Signature").ok_or_else(|| {
        ApiError::invalid_argument("The Authorization header has no Signature field")
    })?;
    let additional = additional_list(field(&fields, "AdditionalHeaders"))?;
    let scope = Scope::parse(credential)?;
    let (datetime, t) = parse_datetime(info.h("x-oss-date").as_deref())?;
    scope.check(cfg, &datetime)?;
    check_skew(t, now)?;
    match info.h("x-oss-content-sha256") {
        Some(v) if v.trim() == UNSIGNED_PAYLOAD => {}
        Some(v) => {
            return Err(ApiError::invalid_argument(format!(
                "The value of x-oss-content-sha256 is invalid: '{v}' (must be UNSIGNED-PAYLOAD)"
            )));
        }
        None => {
            return Err(ApiError::invalid_argument(
                "x-oss-content-sha256 is required for V4 signatures: send x-oss-content-sha256: UNSIGNED-PAYLOAD",
            ));
        }
    }
    check_token(info.h("x-oss-security-token").as_deref())?;
    let canonical =
        sign::v4_canonical_request(&signable(info, &info.query), &additional, UNSIGNED_PAYLOAD);
    compare(cfg, &scope, &datetime, &canonical, provided)
}

/// Checks a V4 presigned URL (`x-oss-signature-version`, `x-oss-credential`, `x-oss-date`,
/// `x-oss-expires`, optional `x-oss-additional-headers`, `x-oss-signature`).
pub fn verify_query(
    info: &RequestInfo,
    cfg: &Identity,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let version = info.q("x-oss-signature-version").unwrap_or("");
    if version != V4_ALGORITHM {
        return Err(ApiError::invalid_argument(format!(
            "x-oss-signature-version '{version}' is not supported: use {V4_ALGORITHM}"
        )));
    }
    let required = |name: &str| {
        info.q(name).ok_or_else(|| {
            ApiError::invalid_argument(format!(
                "The presigned URL lacks the query parameter {name}"
            ))
        })
    };
    let credential = required("x-oss-credential")?;
    let provided = required("x-oss-signature")?;
    let expires: i64 = required("x-oss-expires")?.parse().unwrap_or(-1);
    if expires <= 0 || expires as u64 > V4_MAX_EXPIRES_SECS {
        return Err(ApiError::invalid_argument(format!(
            "x-oss-expires must be between 1 and {V4_MAX_EXPIRES_SECS} seconds"
        )));
    }
    let scope = Scope::parse(credential)?;
    let (datetime, t) = parse_datetime(info.q("x-oss-date"))?;
    scope.check(cfg, &datetime)?;
    if t - now > chrono::Duration::seconds(super::MAX_SKEW_SECS) {
        check_skew(t, now)?;
    }
    if now > t + chrono::Duration::seconds(expires) {
        return Err(ApiError::access_denied("Request has expired.")
            .with(
                "Expires",
                (t + chrono::Duration::seconds(expires)).to_rfc3339(),
            )
            .with("ServerTime", now.to_rfc3339()));
    }
    check_token(info.q("x-oss-security-token"))?;
    let additional = additional_list(info.q("x-oss-additional-headers"))?;
    let query: Vec<(String, String)> = info
        .query
        .iter()
        .filter(|(k, _)| k != "x-oss-signature")
        .cloned()
        .collect();
    let canonical =
        sign::v4_canonical_request(&signable(info, &query), &additional, UNSIGNED_PAYLOAD);
    compare(cfg, &scope, &datetime, &canonical, provided)
}
