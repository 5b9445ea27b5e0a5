//! What the server knows about a request once it has been routed: the dialect, the bucket and
//! key, the decoded query and the headers, in the forms the signature checks and the
//! operations need.

use http::{HeaderMap, Method};

/// Which protocol family a request speaks. Requests signed with AWS SigV4 get S3 responses
/// (namespaced XML, `x-amz-*` headers, S3 error documents); everything else is OSS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Oss,
    S3,
}

impl Dialect {
    /// Detects the dialect from the authentication a request carries. Anonymous requests with
    /// `x-amz-*` headers are treated as S3 so that their error is in a form the client reads.
    pub fn detect(headers: &HeaderMap, query: &[(String, String)]) -> Dialect {
        let auth = headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if auth.starts_with(b"AWS4-HMAC-SHA256") || auth.starts_with(b"AWS ") {
            return Dialect::S3;
        }
        if !auth.is_empty() {
            return Dialect::Oss;
        }
        if query
            .iter()
            .any(|(k, _)| k == "X-Amz-Algorithm" || k == "AWSAccessKeyId")
        {
            return Dialect::S3;
        }
        let oss_query = query.iter().any(|(k, _)| {
            k == "OSSAccessKeyId" || k == "x-oss-signature" || k == "x-oss-credential"
        });
        if !oss_query && headers.keys().any(|n| n.as_str().starts_with("x-amz-")) {
            return Dialect::S3;
        }
        Dialect::Oss
    }

    /// The vendor header prefix: `x-oss-` or `x-amz-`.
    pub fn prefix(self) -> &'static str {
        match self {
            Dialect::Oss => "x-oss-",
            Dialect::S3 => "x-amz-",
        }
    }

    /// `x-oss-<suffix>` or `x-amz-<suffix>`.
    pub fn header(self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix())
    }
}

/// A routed request, without its body.
#[derive(Clone, Debug)]
pub struct RequestInfo {
    pub method: Method,
    pub dialect: Dialect,
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// The percent-decoded request path (S3 signatures re-encode it).
    pub decoded_path: String,
    /// Decoded query parameters in request order; a bare key has an empty value.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    /// Headers as (name, value) strings, one entry per header line, for signature checks.
    pub header_list: Vec<(String, String)>,
    /// The Host header (or the listen address), for `HostId` and `Location`.
    pub host: String,
    pub request_id: String,
}

impl RequestInfo {
    /// The first value of query parameter `name`.
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has_q(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    /// A header value as text (bytes that are not UTF-8 are replaced).
    pub fn h(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// A dialect-prefixed header (`x-oss-<suffix>` or `x-amz-<suffix>`).
    pub fn dh(&self, suffix: &str) -> Option<String> {
        self.h(&self.dialect.header(suffix))
    }

    /// `/bucket/key` for error documents.
    pub fn resource(&self) -> String {
        match (&self.bucket, &self.key) {
            (None, _) => "/".to_owned(),
            (Some(b), None) => format!("/{b}/"),
            (Some(b), Some(k)) => format!("/{b}/{k}"),
        }
    }

    /// Whether the client asked for `encoding-type=url` in listings.
    pub fn url_encoding(&self) -> bool {
        self.q("encoding-type")
            .is_some_and(|v| v.eq_ignore_ascii_case("url"))
    }
}

/// Turns a header map into (name, value) pairs, one per header line.
pub fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}
