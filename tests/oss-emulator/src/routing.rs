//! Addressing: which bucket and key a request names.
//!
//! OSS is virtual-hosted (`Host: bucket.endpoint`); clients switch to path style
//! (`/bucket/key`) when the endpoint is an IP address. The emulator accepts both:
//! `bucket.<base>` with `<base>` an IP address, `localhost` or a configured domain is virtual
//! hosted; a bare IP, `localhost`, a configured domain or any other host is path style. Keys are
//! percent-decoded from the path; the query is decoded with `+` meaning space.

use std::net::IpAddr;

use percent_encoding::percent_decode_str;

use crate::error::ApiError;

/// Where a request points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// The whole path, decoded.
    pub decoded_path: String,
    /// Whether the bucket came from the Host header.
    pub virtual_hosted: bool,
}

/// Resolves the bucket and key from the Host header and the raw (still encoded) path.
pub fn resolve(host: &str, raw_path: &str, domains: &[String]) -> Result<Target, ApiError> {
    let decoded_path = decode_path(raw_path)?;
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    if let Some(bucket) = host_bucket(host, domains) {
        let key = non_empty(decode_path(path)?);
        return Ok(Target {
            bucket: Some(bucket),
            key,
            decoded_path,
            virtual_hosted: true,
        });
    }
    let (bucket, rest) = match path.split_once('/') {
        Some((b, rest)) => (b, Some(rest)),
        None => (path, None),
    };
    let bucket = non_empty(decode_path(bucket)?);
    let key = match rest {
        Some(r) if bucket.is_some() => non_empty(decode_path(r)?),
        _ => None,
    };
    Ok(Target {
        bucket,
        key,
        decoded_path,
        virtual_hosted: false,
    })
}

/// Whether a path-style request is for the admin API (`/-/admin/...`); bucket names cannot
/// start with `-`, so this never shadows a bucket.
pub fn is_admin(host: &str, raw_path: &str, domains: &[String]) -> bool {
    host_bucket(host, domains).is_none()
        && (raw_path == "/-/admin" || raw_path.starts_with("/-/admin/"))
}

/// The bucket label of a virtual-hosted Host header, if it is one.
fn host_bucket(host: &str, domains: &[String]) -> Option<String> {
    let name = strip_port(host).to_ascii_lowercase();
    if is_base(&name, domains) {
        return None;
    }
    let (label, base) = name.split_once('.')?;
    if label.is_empty() || !is_base(base, domains) {
        return None;
    }
    Some(label.to_owned())
}

fn is_base(name: &str, domains: &[String]) -> bool {
    name == "localhost"
        || name.parse::<IpAddr>().is_ok()
        || domains.iter().any(|d| d.eq_ignore_ascii_case(name))
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port — a bracketed IPv6 literal is never virtual hosted.
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

fn decode_path(s: &str) -> Result<String, ApiError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| {
            ApiError::new(
                400,
                "InvalidURI",
                "The request path is not valid UTF-8 after percent-decoding.",
            )
        })
}

/// Decodes a query string into (key, value) pairs in order; `+` means space.
pub fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw else { return Vec::new() };
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_query_part(k), decode_query_part(v))
        })
        .collect()
}

fn decode_query_part(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(host: &str, path: &str) -> (Option<String>, Option<String>, bool) {
        let t = resolve(host, path, &[]).unwrap();
        (t.bucket, t.key, t.virtual_hosted)
    }

    #[test]
    fn virtual_hosted_and_path_style() {
        assert_eq!(
            t("b1.127.0.0.1:9000", "/a%20b/c"),
            (Some("b1".into()), Some("a b/c".into()), true)
        );
        assert_eq!(t("b1.localhost:9000", "/"), (Some("b1".into()), None, true));
        assert_eq!(
            t("127.0.0.1:9000", "/b1/k%2B1"),
            (Some("b1".into()), Some("k+1".into()), false)
        );
        assert_eq!(t("localhost", "/b1/"), (Some("b1".into()), None, false));
        assert_eq!(t("localhost", "/b1"), (Some("b1".into()), None, false));
        assert_eq!(t("127.0.0.1", "/"), (None, None, false));
        assert_eq!(
            t("[::1]:80", "/b/x//y"),
            (Some("b".into()), Some("x//y".into()), false)
        );
        assert_eq!(
            t("b1.127.0.0.1", "//x"),
            (Some("b1".into()), Some("/x".into()), true)
        );
    }

    #[test]
    fn configured_domains() {
        let d = vec!["oss-cn-hangzhou.aliyuncs.com".to_owned()];
        let r = resolve("bk.oss-cn-hangzhou.aliyuncs.com", "/k", &d).unwrap();
        assert_eq!(
            (r.bucket.as_deref(), r.key.as_deref()),
            (Some("bk"), Some("k"))
        );
        let r = resolve("oss-cn-hangzhou.aliyuncs.com", "/bk/k", &d).unwrap();
        assert_eq!(
            (r.bucket.as_deref(), r.key.as_deref()),
            (Some("bk"), Some("k"))
        );
    }

    #[test]
    fn admin_only_without_bucket_host() {
        assert!(is_admin("127.0.0.1:1", "/-/admin/counters", &[]));
        assert!(!is_admin("b.localhost:1", "/-/admin/counters", &[]));
    }

    #[test]
    fn query_decoding() {
        let q = parse_query(Some("uploads&prefix=a%2Fb+c&x="));
        assert_eq!(
            q,
            vec![
                ("uploads".into(), "".into()),
                ("prefix".into(), "a/b c".into()),
                ("x".into(), "".into())
            ]
        );
    }
}
