//! OSS Signature V1 (HMAC-SHA1), as `Authorization: OSS AK:signature` or a presigned URL
//! (`OSSAccessKeyId`, `Expires`, `Signature`, optional `security-token`).
//!
//! The date slot is `x-oss-date` when present, else `Date`; for URLs it is `Expires`.

use chrono::{DateTime, Utc};
use ferry::oss::sign::{self, Signable};

use super::{check_access_key, check_skew, check_token, mismatch, same};
use crate::error::ApiError;
use crate::request::RequestInfo;
use crate::state::Identity;
use crate::time::{parse_compact, parse_http_date};

fn signable(info: &RequestInfo) -> Signable<'_> {
    Signable {
        method: info.method.as_str(),
        bucket: info.bucket.as_deref(),
        key: info.key.as_deref(),
        query: &info.query,
        headers: &info.header_list,
    }
}

fn compare(
    info: &RequestInfo,
    cfg: &Identity,
    date_slot: &str,
    provided: &str,
) -> Result<(), ApiError> {
    let sts = sign::v1_string_to_sign(&signable(info), date_slot);
    let expected = sign::v1_signature(cfg.secret.expose(), &sts);
    if !same(&expected, provided) {
        let bytes: Vec<String> = sts.bytes().map(|b| format!("{b:02x}")).collect();
        return Err(mismatch(&sts, provided)
            .with("StringToSignBytes", bytes.join(" "))
            .with("OSSAccessKeyId", cfg.access_key_id.clone()));
    }
    Ok(())
}

/// Checks `Authorization: OSS <AccessKeyId>:<Signature>`.
pub fn verify_header(
    info: &RequestInfo,
    cfg: &Identity,
    rest: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let (ak, provided) = rest.trim().split_once(':').ok_or_else(|| {
        ApiError::invalid_argument(
            "The Authorization header must look like 'OSS AccessKeyId:Signature'",
        )
    })?;
    check_access_key(ak, cfg)?;
    let slot = info
        .h("x-oss-date")
        .or_else(|| info.h("date"))
        .ok_or_else(|| {
            ApiError::access_denied("V1 signatures need a Date (or x-oss-date) header")
        })?;
    let t = parse_http_date(&slot)
        .or_else(|| parse_compact(slot.trim()))
        .ok_or_else(|| {
            ApiError::access_denied(format!(
                "The request date '{slot}' is invalid: use the RFC 1123 form (x-oss-date / Date)"
            ))
        })?;
    check_skew(t, now)?;
    check_token(info.h("x-oss-security-token").as_deref())?;
    compare(info, cfg, &slot, provided)
}

/// Checks a V1 presigned URL.
pub fn verify_query(
    info: &RequestInfo,
    cfg: &Identity,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let required = |name: &str| {
        info.q(name).ok_or_else(|| {
            ApiError::invalid_argument(format!(
                "The presigned URL lacks the query parameter {name}"
            ))
        })
    };
    let ak = required("OSSAccessKeyId")?;
    let expires = required("Expires")?;
    let provided = required("Signature")?;
    check_access_key(ak, cfg)?;
    let expires_at: i64 = expires.parse().map_err(|_| {
        ApiError::invalid_argument(format!(
            "Expires '{expires}' must be a Unix time in seconds"
        ))
    })?;
    if now.timestamp() > expires_at {
        return Err(ApiError::access_denied("Request has expired.")
            .with("Expires", expires.to_owned())
            .with("ServerTime", now.to_rfc3339()));
    }
    check_token(info.q("security-token"))?;
    compare(info, cfg, expires, provided)
}
