//! Request signing for OSS: Signature V4 (`OSS4-HMAC-SHA256`, the default) and V1 (HMAC-SHA1),
//! as an `Authorization` header or as a presigned URL, with or without an STS token.
//!
//! The functions here are pure: they take the parts of a request and return strings, so the
//! client uses them to sign, the emulator uses them to verify, and the unit tests pin them to
//! signing vectors from the official OSS SDKs' own tests, which those SDKs produce too.
//!
//! Two details decide most interoperability bugs:
//! * V4 signs the *percent-encoded* path and **all** query parameters; V1 signs the *raw* key and
//!   only the query keys that are OSS sub-resources.
//! * Header values are trimmed and duplicate names joined with `,`, as a server sees them after
//!   HTTP parsing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::credentials::Credentials;

/// The algorithm name V4 signatures carry in `Authorization` and presigned URLs.
pub const V4_ALGORITHM: &str = "OSS4-HMAC-SHA256";
/// The V4 payload hash of a request whose body is not hashed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Product name in the V4 scope for OSS (CloudBox uses `oss-cloudbox`).
pub const PRODUCT_OSS: &str = "oss";
/// OSS caps V4 presigned URLs at seven days.
pub const V4_MAX_EXPIRES_SECS: u64 = 7 * 24 * 3600;

/// RFC 3986 unreserved characters stay; everything else is `%XX` (upper-case hex).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// The same, but `/` also stays (canonical URI, and URL paths).
const UNRESERVED_AND_SLASH: &AsciiSet = &UNRESERVED.remove(b'/');

/// Which signature algorithm a client uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureVersion {
    /// HMAC-SHA1. Only for accounts and buckets that still accept it.
    V1,
    /// `OSS4-HMAC-SHA256`. OSS no longer offers V1 to new accounts and buckets.
    #[default]
    V4,
}

/// The parts of a request that a signature covers.
#[derive(Clone, Copy, Debug)]
pub struct Signable<'a> {
    /// Upper-case HTTP method, as sent.
    pub method: &'a str,
    /// `None` for service-level requests (ListBuckets).
    pub bucket: Option<&'a str>,
    /// The raw (decoded) object key; `None` for bucket-level requests.
    pub key: Option<&'a str>,
    /// Decoded query parameters; an empty value stands for a bare key (`?uploads`).
    pub query: &'a [(String, String)],
    /// Request headers as they will be sent; names in any case.
    pub headers: &'a [(String, String)],
}

/// Percent-encodes with the RFC 3986 unreserved set (`/` is encoded too).
pub fn uri_encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Percent-encodes with the RFC 3986 unreserved set, keeping `/` (object keys in paths).
pub fn uri_encode_path(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED_AND_SLASH).to_string()
}

/// The resource path every signature starts from: `/`, `/bucket/` or `/bucket/key`.
fn resource_path(bucket: Option<&str>, key: Option<&str>) -> String {
    match (bucket, key) {
        (None, _) => "/".to_owned(),
        (Some(b), None) => format!("/{b}/"),
        (Some(b), Some(k)) => format!("/{b}/{k}"),
    }
}

/// Lower-cased headers, trimmed values, duplicates joined with `,`, sorted by name.
fn normalized_headers(
    headers: &[(String, String)],
    keep: impl Fn(&str) -> bool,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        if !keep(&name) {
            continue;
        }
        let value = value.trim();
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.push(',');
                v.push_str(value);
            }
            None => out.push((name, value.to_owned())),
        }
    }
    out.sort();
    out
}

/// Looks a header up by name, case-insensitively.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

// ---------------------------------------------------------------------------------------------
// Signature V4
// ---------------------------------------------------------------------------------------------

/// `YYYYMMDDTHHMMSSZ`, the V4 timestamp format.
pub fn v4_datetime(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// `Credential` scope: `<date>/<region>/<product>/aliyun_v4_request`.
pub fn v4_scope(date: &str, region: &str, product: &str) -> String {
    format!("{date}/{region}/{product}/aliyun_v4_request")
}

/// The canonical query: every parameter, key and value URI-encoded, sorted by encoded key.
pub fn v4_canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.clone()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Whether V4 signs a header without being asked to.
fn v4_default_signed(name: &str) -> bool {
    name.starts_with("x-oss-") || name == "content-type" || name == "content-md5"
}

/// The `AdditionalHeaders` list a V4 signature will carry: lower-cased, de-duplicated, sorted,
/// without names V4 signs anyway, and only those the request actually has.
pub fn v4_additional_headers(requested: &[&str], headers: &[(String, String)]) -> Vec<String> {
    let mut names: Vec<String> = requested
        .iter()
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty() && !v4_default_signed(n) && header(headers, n).is_some())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The V4 canonical request. `additional` must come from [`v4_additional_headers`].
pub fn v4_canonical_request(
    req: &Signable<'_>,
    additional: &[String],
    payload_hash: &str,
) -> String {
    let uri = uri_encode_path(&resource_path(req.bucket, req.key));
    let query = v4_canonical_query(req.query);
    let headers = normalized_headers(req.headers, |n| {
        v4_default_signed(n) || additional.iter().any(|a| a == n)
    });
    let mut canonical_headers = String::new();
    for (n, v) in &headers {
        canonical_headers.push_str(n);
        canonical_headers.push(':');
        canonical_headers.push_str(v);
        canonical_headers.push('\n');
    }
    format!(
        "{}\n{uri}\n{query}\n{canonical_headers}\n{}\n{payload_hash}",
        req.method,
        additional.join(";")
    )
}

/// `OSS4-HMAC-SHA256\n<datetime>\n<scope>\n<hex sha256 of the canonical request>`.
pub fn v4_string_to_sign(datetime: &str, scope: &str, canonical_request: &str) -> String {
    let hash = hex::encode(Sha256::digest(canonical_request.as_bytes()));
    format!("{V4_ALGORITHM}\n{datetime}\n{scope}\n{hash}")
}

/// The hex signature of `string_to_sign` with the key derived for (date, region, product).
pub fn v4_signature(
    secret: &str,
    date: &str,
    region: &str,
    product: &str,
    string_to_sign: &str,
) -> String {
    let k_date = hmac_sha256(format!("aliyun_v4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_product = hmac_sha256(&k_region, product.as_bytes());
    let k_signing = hmac_sha256(&k_product, b"aliyun_v4_request");
    hex::encode(hmac_sha256(&k_signing, string_to_sign.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Signature V1
// ---------------------------------------------------------------------------------------------

/// Query keys that V1 signs (the union of the documented list and the official SDKs' lists).
const V1_SUBRESOURCES: &[&str] = &[
    "acl",
    "uploads",
    "location",
    "cors",
    "logging",
    "website",
    "referer",
    "lifecycle",
    "delete",
    "append",
    "tagging",
    "objectMeta",
    "uploadId",
    "partNumber",
    "security-token",
    "position",
    "img",
    "style",
    "styleName",
    "replication",
    "replicationProgress",
    "replicationLocation",
    "cname",
    "bucketInfo",
    "comp",
    "qos",
    "live",
    "status",
    "vod",
    "startTime",
    "endTime",
    "symlink",
    "x-oss-process",
    "response-content-type",
    "response-content-language",
    "response-expires",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "restore",
    "stat",
    "objectInfo",
    "group",
    "link",
    "callback",
    "callback-var",
    "encryption",
    "versions",
    "versioning",
    "versionId",
    "policy",
    "requestPayment",
    "x-oss-traffic-limit",
    "qosInfo",
    "asyncFetch",
    "x-oss-request-payer",
    "sequential",
    "inventory",
    "inventoryId",
    "continuation-token",
    "worm",
    "wormId",
    "wormExtend",
    "transferAcceleration",
    "metaQuery",
    "x-oss-ac-source-ip",
    "x-oss-ac-subnet-mask",
    "x-oss-ac-vpc-id",
    "x-oss-ac-forward-allow",
    "resourceGroup",
    "x-oss-async-process",
    "regionList",
    "x-oss-write-get-object-response",
    "bucketArchiveDirectRead",
    "httpsConfig",
    "redundancyTransition",
    "x-oss-target-redundancy-type",
    "x-oss-redundancy-transition-taskid",
    "accessPoint",
    "accessPointPolicy",
    "publicAccessBlock",
    "x-oss-access-point-name",
    "requesterQosInfo",
    "qosRequester",
    "resourcePoolInfo",
    "resourcePool",
    "resourcePoolBuckets",
    "cloudboxes",
];

/// Whether V1 signs this query key.
pub fn is_v1_subresource(key: &str) -> bool {
    V1_SUBRESOURCES.contains(&key)
}

/// `/bucket/key?sub&sub=value`, with the key and values raw (not percent-encoded).
pub fn v1_canonical_resource(
    bucket: Option<&str>,
    key: Option<&str>,
    query: &[(String, String)],
) -> String {
    let mut subs: Vec<&(String, String)> =
        query.iter().filter(|(k, _)| is_v1_subresource(k)).collect();
    subs.sort();
    let mut out = resource_path(bucket, key);
    if !subs.is_empty() {
        out.push('?');
        let rendered: Vec<String> = subs
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        out.push_str(&rendered.join("&"));
    }
    out
}

/// The V1 string to sign. `date` is the `x-oss-date` or `Date` header for header auth, or the
/// decimal `Expires` for presigned URLs.
pub fn v1_string_to_sign(req: &Signable<'_>, date: &str) -> String {
    let md5 = header(req.headers, "content-md5").unwrap_or("");
    let content_type = header(req.headers, "content-type").unwrap_or("");
    let mut oss_headers = String::new();
    for (n, v) in normalized_headers(req.headers, |n| n.starts_with("x-oss-")) {
        oss_headers.push_str(&format!("{n}:{v}\n"));
    }
    format!(
        "{}\n{md5}\n{content_type}\n{date}\n{oss_headers}{}",
        req.method,
        v1_canonical_resource(req.bucket, req.key, req.query)
    )
}

/// Base64 of HMAC-SHA1(secret, string_to_sign).
pub fn v1_signature(secret: &str, string_to_sign: &str) -> String {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(string_to_sign.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// RFC 1123 date, the V1 `Date` header format.
pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

// ---------------------------------------------------------------------------------------------
// Signing whole requests
// ---------------------------------------------------------------------------------------------

/// Signs requests for one set of credentials, region and signature version.
#[derive(Clone, Debug)]
pub struct Signer {
    /// The AccessKey (and STS token) requests are signed with.
    pub credentials: Credentials,
    /// Region id without the `oss-` prefix (`cn-hangzhou`).
    pub region: String,
    /// The product name in the V4 scope ([`PRODUCT_OSS`] unless changed).
    pub product: String,
    /// Which signature version to sign with.
    pub version: SignatureVersion,
}

/// What a signed request must carry.
#[derive(Clone, Debug)]
pub struct Signed {
    /// Headers to add (Authorization, dates, token).
    pub headers: Vec<(String, String)>,
    /// The string that was signed — what an OSS `SignatureDoesNotMatch` echoes back.
    pub string_to_sign: String,
}

impl Signer {
    /// A signer for OSS; `region` may be given with or without the `oss-` prefix.
    pub fn new(
        credentials: Credentials,
        region: impl Into<String>,
        version: SignatureVersion,
    ) -> Self {
        let region = region.into();
        let region = region
            .strip_prefix("oss-")
            .map(str::to_owned)
            .unwrap_or(region);
        Signer {
            credentials,
            region,
            product: PRODUCT_OSS.to_owned(),
            version,
        }
    }

    /// Signs with an `Authorization` header. `req.headers` must already hold every header the
    /// request sends (Content-Type, Content-MD5, x-oss-*); the returned headers are added to it.
    /// `additional` names extra headers to sign (V4 only).
    pub fn sign_header(
        &self,
        req: &Signable<'_>,
        now: DateTime<Utc>,
        additional: &[&str],
    ) -> Signed {
        match self.version {
            SignatureVersion::V4 => self.sign_header_v4(req, now, additional),
            SignatureVersion::V1 => self.sign_header_v1(req, now),
        }
    }

    fn sign_header_v4(
        &self,
        req: &Signable<'_>,
        now: DateTime<Utc>,
        additional: &[&str],
    ) -> Signed {
        let datetime = v4_datetime(now);
        let date = &datetime[..8];
        let mut added = vec![
            ("x-oss-date".to_owned(), datetime.clone()),
            (
                "x-oss-content-sha256".to_owned(),
                UNSIGNED_PAYLOAD.to_owned(),
            ),
        ];
        if let Some(token) = &self.credentials.security_token {
            added.push(("x-oss-security-token".to_owned(), token.expose().to_owned()));
        }
        let mut all = req.headers.to_vec();
        all.retain(|(n, _)| !added.iter().any(|(a, _)| a.eq_ignore_ascii_case(n)));
        all.extend(added.iter().cloned());
        let signable = Signable {
            headers: &all,
            ..*req
        };
        let additional = v4_additional_headers(additional, &all);
        let canonical = v4_canonical_request(&signable, &additional, UNSIGNED_PAYLOAD);
        let scope = v4_scope(date, &self.region, &self.product);
        let sts = v4_string_to_sign(&datetime, &scope, &canonical);
        let sig = v4_signature(
            self.credentials.access_key_secret.expose(),
            date,
            &self.region,
            &self.product,
            &sts,
        );
        let mut auth = format!(
            "{V4_ALGORITHM} Credential={}/{scope}",
            self.credentials.access_key_id
        );
        if !additional.is_empty() {
            auth.push_str(&format!(",AdditionalHeaders={}", additional.join(";")));
        }
        auth.push_str(&format!(",Signature={sig}"));
        added.push(("Date".to_owned(), http_date(now)));
        added.push(("Authorization".to_owned(), auth));
        Signed {
            headers: added,
            string_to_sign: sts,
        }
    }

    fn sign_header_v1(&self, req: &Signable<'_>, now: DateTime<Utc>) -> Signed {
        let date = http_date(now);
        let mut added = vec![("Date".to_owned(), date.clone())];
        if let Some(token) = &self.credentials.security_token {
            added.push(("x-oss-security-token".to_owned(), token.expose().to_owned()));
        }
        let mut all = req.headers.to_vec();
        all.retain(|(n, _)| !added.iter().any(|(a, _)| a.eq_ignore_ascii_case(n)));
        all.extend(added.iter().cloned());
        let signable = Signable {
            headers: &all,
            ..*req
        };
        // V1 takes x-oss-date over Date when both are present; ferry sends only Date.
        let date_slot = header(&all, "x-oss-date").unwrap_or(&date).to_owned();
        let sts = v1_string_to_sign(&signable, &date_slot);
        let sig = v1_signature(self.credentials.access_key_secret.expose(), &sts);
        added.push((
            "Authorization".to_owned(),
            format!("OSS {}:{sig}", self.credentials.access_key_id),
        ));
        Signed {
            headers: added,
            string_to_sign: sts,
        }
    }

    /// Presigns: returns the query parameters to append to the request's own (already in
    /// `req.query`). `expires_in` is clamped to OSS's seven-day cap for V4.
    pub fn presign(
        &self,
        req: &Signable<'_>,
        now: DateTime<Utc>,
        expires_in: std::time::Duration,
        additional: &[&str],
    ) -> Vec<(String, String)> {
        match self.version {
            SignatureVersion::V4 => self.presign_v4(req, now, expires_in, additional),
            SignatureVersion::V1 => self.presign_v1(req, now, expires_in),
        }
    }

    fn presign_v4(
        &self,
        req: &Signable<'_>,
        now: DateTime<Utc>,
        expires_in: std::time::Duration,
        additional: &[&str],
    ) -> Vec<(String, String)> {
        let datetime = v4_datetime(now);
        let date = &datetime[..8];
        let scope = v4_scope(date, &self.region, &self.product);
        let additional = v4_additional_headers(additional, req.headers);
        let mut added = vec![
            (
                "x-oss-signature-version".to_owned(),
                V4_ALGORITHM.to_owned(),
            ),
            ("x-oss-date".to_owned(), datetime.clone()),
            (
                "x-oss-expires".to_owned(),
                expires_in.as_secs().min(V4_MAX_EXPIRES_SECS).to_string(),
            ),
            (
                "x-oss-credential".to_owned(),
                format!("{}/{scope}", self.credentials.access_key_id),
            ),
        ];
        if !additional.is_empty() {
            added.push(("x-oss-additional-headers".to_owned(), additional.join(";")));
        }
        if let Some(token) = &self.credentials.security_token {
            added.push(("x-oss-security-token".to_owned(), token.expose().to_owned()));
        }
        let mut query = req.query.to_vec();
        query.extend(added.iter().cloned());
        let signable = Signable {
            query: &query,
            ..*req
        };
        let canonical = v4_canonical_request(&signable, &additional, UNSIGNED_PAYLOAD);
        let sts = v4_string_to_sign(&datetime, &scope, &canonical);
        let sig = v4_signature(
            self.credentials.access_key_secret.expose(),
            date,
            &self.region,
            &self.product,
            &sts,
        );
        added.push(("x-oss-signature".to_owned(), sig));
        added
    }

    fn presign_v1(
        &self,
        req: &Signable<'_>,
        now: DateTime<Utc>,
        expires_in: std::time::Duration,
    ) -> Vec<(String, String)> {
        let expires = (now.timestamp() as u64 + expires_in.as_secs()).to_string();
        let mut query = req.query.to_vec();
        let mut added = Vec::new();
        if let Some(token) = &self.credentials.security_token {
            added.push(("security-token".to_owned(), token.expose().to_owned()));
            query.push(("security-token".to_owned(), token.expose().to_owned()));
        }
        let signable = Signable {
            query: &query,
            ..*req
        };
        let sts = v1_string_to_sign(&signable, &expires);
        let sig = v1_signature(self.credentials.access_key_secret.expose(), &sts);
        added.push((
            "OSSAccessKeyId".to_owned(),
            self.credentials.access_key_id.clone(),
        ));
        added.push(("Expires".to_owned(), expires));
        added.push(("Signature".to_owned(), sig));
        added
    }
}
