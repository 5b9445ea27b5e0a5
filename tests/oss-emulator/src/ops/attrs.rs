//! Request-header rules shared by the object operations: key names, storage classes, user
//! metadata, tags, Content-MD5, ranges and conditional headers; and the headers GET/HEAD return.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::error::ApiError;
use crate::reply::Reply;
use crate::request::{Dialect, RequestInfo};
use crate::store::model::{ContentHeaders, ObjectAttrs, ObjectMeta, StorageClass};

/// OSS object keys are at most 1023 bytes.
pub const MAX_KEY_BYTES: usize = 1023;
/// User metadata (names + values) is at most 8 KB.
pub const MAX_USER_META_BYTES: usize = 8 * 1024;

pub fn validate_key(key: &str) -> Result<(), ApiError> {
    let problem = if key.is_empty() {
        Some("it is empty".to_owned())
    } else if key.len() > MAX_KEY_BYTES {
        Some(format!(
            "it is {} bytes long (at most {MAX_KEY_BYTES})",
            key.len()
        ))
    } else if key.starts_with('/') || key.starts_with('\\') {
        Some("it starts with '/' or '\\'".to_owned())
    } else {
        None
    };
    match problem {
        Some(p) => Err(ApiError::new(
            400,
            "InvalidObjectName",
            format!("The specified object name is not valid: {p}."),
        )
        .with("Key", key)),
        None => Ok(()),
    }
}

/// The storage class the request asks for, in its dialect's names.
pub fn storage_class(req: &RequestInfo) -> Result<Option<StorageClass>, ApiError> {
    let Some(v) = req.dh("storage-class") else {
        return Ok(None);
    };
    let parsed = match req.dialect {
        Dialect::Oss => StorageClass::parse_oss(&v),
        Dialect::S3 => StorageClass::parse_s3(&v),
    };
    match (parsed, req.dialect) {
        (Some(c), _) => Ok(Some(c)),
        (None, Dialect::Oss) => Err(ApiError::invalid_argument(format!(
            "The storage class '{v}' is invalid: use Standard, IA, Archive, ColdArchive or DeepColdArchive"
        ))
        .with("ArgumentName", "x-oss-storage-class")
        .with("ArgumentValue", v)),
        (None, Dialect::S3) => Err(ApiError::new(400, "InvalidStorageClass", format!("The storage class you specified is not valid: '{v}'"))
            .with("StorageClassRequested", v)),
    }
}

/// User metadata from `x-oss-meta-*` / `x-amz-meta-*`: names are letters, digits and hyphens
/// (lower-cased), and names plus values take at most 8 KB.
pub fn user_meta(req: &RequestInfo) -> Result<BTreeMap<String, String>, ApiError> {
    let prefix = req.dialect.header("meta-");
    let mut meta = BTreeMap::new();
    let mut total = 0usize;
    for (name, value) in &req.header_list {
        let Some(short) = name.strip_prefix(&prefix) else {
            continue;
        };
        if short.is_empty()
            || !short
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(ApiError::invalid_argument(format!(
                "The user metadata name '{name}' is invalid: use letters, digits and hyphens after '{prefix}'"
            )));
        }
        total += short.len() + value.len();
        let value = value.trim().to_owned();
        meta.entry(short.to_ascii_lowercase())
            .and_modify(|v: &mut String| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    if total > MAX_USER_META_BYTES {
        let err = match req.dialect {
            Dialect::Oss => ApiError::invalid_argument(format!(
                "The user metadata is {total} bytes; at most {MAX_USER_META_BYTES} bytes are allowed"
            )),
            Dialect::S3 => ApiError::new(
                400,
                "MetadataTooLarge",
                "Your metadata headers exceed the maximum allowed metadata size.",
            )
            .with("MaxSizeAllowed", MAX_USER_META_BYTES.to_string()),
        };
        return Err(err);
    }
    Ok(meta)
}

/// Tags from the `x-oss-tagging` / `x-amz-tagging` header (`k1=v1&k2=v2`); the rules are in
/// [`super::tagging`].
pub fn tags(req: &RequestInfo) -> Result<Vec<(String, String)>, ApiError> {
    match req.dh("tagging") {
        Some(v) => super::tagging::parse_header(&v),
        None => Ok(Vec::new()),
    }
}

pub fn content_headers(req: &RequestInfo) -> ContentHeaders {
    ContentHeaders {
        content_type: req.h("content-type"),
        cache_control: req.h("cache-control"),
        content_disposition: req.h("content-disposition"),
        content_encoding: req
            .h("content-encoding")
            .and_then(|v| crate::body::stored_content_encoding(&v)),
        content_language: req.h("content-language"),
        expires: req.h("expires"),
    }
}

/// The object ACL header, validated.
pub fn object_acl(req: &RequestInfo) -> Result<Option<String>, ApiError> {
    let (name, allowed): (&str, &[&str]) = match req.dialect {
        Dialect::Oss => (
            "x-oss-object-acl",
            &["default", "private", "public-read", "public-read-write"],
        ),
        Dialect::S3 => (
            "x-amz-acl",
            &[
                "private",
                "public-read",
                "public-read-write",
                "authenticated-read",
                "aws-exec-read",
                "bucket-owner-read",
                "bucket-owner-full-control",
            ],
        ),
    };
    match req.h(name) {
        Some(v) if allowed.contains(&v.as_str()) => Ok(Some(v)),
        Some(v) => Err(ApiError::invalid_argument(format!(
            "{name} '{v}' is invalid: use one of {}",
            allowed.join(", ")
        ))),
        None => Ok(None),
    }
}

/// Everything a new object takes from the request headers.
pub fn attrs_from_request(
    req: &RequestInfo,
    default_class: StorageClass,
) -> Result<ObjectAttrs, ApiError> {
    Ok(ObjectAttrs {
        content: content_headers(req),
        user_meta: user_meta(req)?,
        tags: tags(req)?,
        storage_class: storage_class(req)?.unwrap_or(default_class),
        acl: object_acl(req)?,
    })
}

/// `x-oss-forbid-overwrite: true` (OSS) or `If-None-Match: *` (S3 conditional write).
pub fn forbid_overwrite(req: &RequestInfo) -> bool {
    match req.dialect {
        Dialect::Oss => req
            .h("x-oss-forbid-overwrite")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
        Dialect::S3 => req.h("if-none-match").is_some_and(|v| v.trim() == "*"),
    }
}

/// The Content-MD5 the client sent, if any (malformed → `InvalidDigest`).
pub fn content_md5(req: &RequestInfo) -> Result<Option<[u8; 16]>, ApiError> {
    let Some(v) = req.h("content-md5") else {
        return Ok(None);
    };
    let bytes = BASE64
        .decode(v.trim())
        .ok()
        .filter(|b| b.len() == 16)
        .ok_or_else(|| {
            ApiError::new(
                400,
                "InvalidDigest",
                "The Content-MD5 you specified is not a Base64-encoded 128-bit MD5.",
            )
            .with("ContentMD5", v.clone())
        })?;
    Ok(Some(bytes.try_into().expect("length checked")))
}

pub fn check_md5(expected: Option<[u8; 16]>, actual: &[u8; 16]) -> Result<(), ApiError> {
    match expected {
        Some(e) if e != *actual => Err(ApiError::new(
            400,
            "InvalidDigest",
            "The Content-MD5 you specified did not match what we received.",
        )
        .with("ContentMD5", BASE64.encode(e))
        .with("CalculatedMD5", BASE64.encode(actual))),
        _ => Ok(()),
    }
}

/// A resolved `Range` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    Whole,
    /// Inclusive byte positions.
    Part(u64, u64),
    Unsatisfiable,
}

/// Resolves `Range: bytes=…` against an object of `size` bytes. OSS's default answers an
/// invalid range with the whole object; `standard` (`x-oss-range-behavior: standard`, and
/// always for S3) clips an over-long end and answers an impossible start with 416.
pub fn resolve_range(header: Option<&str>, size: u64, standard: bool) -> RangeSpec {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeSpec::Whole;
    };
    if spec.contains(',') {
        return RangeSpec::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeSpec::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let invalid = if standard {
        RangeSpec::Unsatisfiable
    } else {
        RangeSpec::Whole
    };
    if a.is_empty() {
        let Ok(n) = b.parse::<u64>() else {
            return RangeSpec::Whole;
        };
        if n == 0 || size == 0 {
            return invalid;
        }
        if n > size && !standard {
            return RangeSpec::Whole;
        }
        return RangeSpec::Part(size - n.min(size), size - 1);
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeSpec::Whole;
    };
    let end = if b.is_empty() {
        None
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => Some(e),
            _ => return RangeSpec::Whole,
        }
    };
    if start >= size {
        return invalid;
    }
    match end {
        Some(e) if e >= size && !standard => RangeSpec::Whole,
        Some(e) => RangeSpec::Part(start, e.min(size - 1)),
        None => RangeSpec::Part(start, size - 1),
    }
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|t| t == "*" || t.eq_ignore_ascii_case(etag))
}

/// Evaluates If-Match / If-Unmodified-Since (→ 412) and If-None-Match / If-Modified-Since
/// (→ 304) for GET and HEAD; `prefix` is `""` or `x-oss-copy-source-` for copies, where every
/// failure is 412.
pub fn check_conditions(
    req: &RequestInfo,
    meta: &ObjectMeta,
    prefix: &str,
) -> Result<(), ApiError> {
    let h = |name: &str| req.h(&format!("{prefix}{name}"));
    let copy = !prefix.is_empty();
    let modified = meta.last_modified_ms / 1000;
    let failed = |what: &str| {
        ApiError::new(
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
        )
        .with("Condition", what.to_owned())
    };
    let not_modified = || ApiError::new(304, "NotModified", "Not Modified");
    let if_match = h("if-match");
    if let Some(v) = &if_match
        && !etag_matches(v, &meta.etag)
    {
        return Err(failed("If-Match"));
    }
    if if_match.is_none()
        && let Some(t) = h("if-unmodified-since").and_then(|v| crate::time::parse_http_date(&v))
        && modified > t.timestamp()
    {
        return Err(failed("If-Unmodified-Since"));
    }
    let if_none_match = h("if-none-match");
    if let Some(v) = &if_none_match
        && etag_matches(v, &meta.etag)
    {
        return Err(if copy {
            failed("If-None-Match")
        } else {
            not_modified()
        });
    }
    if if_none_match.is_none()
        && let Some(t) = h("if-modified-since").and_then(|v| crate::time::parse_http_date(&v))
        && modified <= t.timestamp()
    {
        return Err(if copy {
            failed("If-Modified-Since")
        } else {
            not_modified()
        });
    }
    Ok(())
}

/// A quoted ETag in the dialect's case (OSS upper-case, S3 lower-case hex).
pub fn quoted_etag(dialect: Dialect, etag: &str) -> String {
    match dialect {
        Dialect::Oss => format!("\"{etag}\""),
        Dialect::S3 => format!("\"{}\"", etag.to_ascii_lowercase()),
    }
}

pub fn storage_class_name(dialect: Dialect, class: StorageClass) -> &'static str {
    match dialect {
        Dialect::Oss => class.oss_name(),
        Dialect::S3 => class.s3_name(),
    }
}

/// The headers GET and HEAD return for an object.
pub fn object_headers(mut r: Reply, dialect: Dialect, meta: &ObjectMeta, now_ms: i64) -> Reply {
    let c = &meta.attrs.content;
    r = r
        .header(
            "content-type",
            c.content_type
                .as_deref()
                .unwrap_or("application/octet-stream"),
        )
        .header("etag", quoted_etag(dialect, &meta.etag))
        .header(
            "last-modified",
            crate::time::http_date(meta.last_modified_ms),
        )
        .header("accept-ranges", "bytes")
        .header("x-oss-object-type", meta.object_type.name())
        .opt_header("content-md5", meta.content_md5.as_deref())
        .opt_header("x-oss-hash-crc64ecma", meta.crc64.map(|c| c.to_string()))
        .opt_header("cache-control", c.cache_control.as_deref())
        .opt_header("content-disposition", c.content_disposition.as_deref())
        .opt_header("content-encoding", c.content_encoding.as_deref())
        .opt_header("content-language", c.content_language.as_deref())
        .opt_header("expires", c.expires.as_deref())
        .opt_header(&dialect.header("restore"), meta.restore_header(now_ms));
    let class = meta.attrs.storage_class;
    if dialect == Dialect::Oss || class != StorageClass::Standard {
        r = r.header(
            &dialect.header("storage-class"),
            storage_class_name(dialect, class),
        );
    }
    if !meta.attrs.tags.is_empty() {
        r = r.header(
            &dialect.header("tagging-count"),
            meta.attrs.tags.len().to_string(),
        );
    }
    for (name, value) in &meta.attrs.user_meta {
        r = r.header(&format!("{}meta-{name}", dialect.prefix()), value);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_default_and_standard() {
        use RangeSpec::*;
        assert_eq!(resolve_range(Some("bytes=0-9"), 100, false), Part(0, 9));
        assert_eq!(resolve_range(Some("bytes=90-"), 100, false), Part(90, 99));
        assert_eq!(resolve_range(Some("bytes=-10"), 100, false), Part(90, 99));
        assert_eq!(resolve_range(Some("bytes=50-200"), 100, false), Whole);
        assert_eq!(resolve_range(Some("bytes=50-200"), 100, true), Part(50, 99));
        assert_eq!(resolve_range(Some("bytes=100-"), 100, false), Whole);
        assert_eq!(resolve_range(Some("bytes=100-"), 100, true), Unsatisfiable);
        assert_eq!(resolve_range(Some("bytes=5-2"), 100, true), Whole);
        assert_eq!(resolve_range(Some("bytes=a-b"), 100, true), Whole);
        assert_eq!(resolve_range(Some("bytes=0-1,3-4"), 100, true), Whole);
        assert_eq!(resolve_range(None, 100, true), Whole);
    }

    #[test]
    fn key_rules() {
        assert!(validate_key("a").is_ok());
        assert!(validate_key(&"k".repeat(1023)).is_ok());
        assert!(validate_key(&"k".repeat(1024)).is_err());
        assert!(validate_key("/a").is_err());
        assert!(validate_key("\\a").is_err());
        assert!(validate_key("a//b/").is_ok());
    }
}
