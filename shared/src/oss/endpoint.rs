//! Where requests go: the endpoint (scheme, host, port), the region it belongs to, and how a
//! bucket is addressed on it.
//!
//! OSS itself only accepts virtual-hosted addressing (`https://bucket.oss-cn-hangzhou.aliyuncs.com/key`),
//! but emulators and private deployments listen on an IP address, where the bucket cannot be a
//! host name; there ferry uses path style (`http://127.0.0.1:9000/bucket/key`), as the official SDKs
//! do. The signature does not change with the style: it always covers `/bucket/key`.

use std::fmt;
use std::net::IpAddr;

use super::sign::{uri_encode, uri_encode_path};

/// How the bucket appears in a request URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// `https://<bucket>.<endpoint>/<key>` — what OSS requires.
    VirtualHosted,
    /// `http://<endpoint>/<bucket>/<key>` — for IP endpoints, `localhost` and emulators.
    PathStyle,
}

/// A parsed endpoint: scheme, host and optional port, no path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    scheme: Scheme,
    host: String,
    port: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

/// Why an endpoint string or region name was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EndpointError {
    #[error("endpoint {0:?} is empty: pass a host such as oss-cn-hangzhou.aliyuncs.com")]
    Empty(String),
    #[error(
        "endpoint {0:?} has an unsupported scheme: use https://host (or http://host for a local emulator with allow_http)"
    )]
    Scheme(String),
    #[error("endpoint {0:?} must be scheme://host[:port] without a path, query or user info")]
    Shape(String),
    #[error("endpoint {0:?} has an invalid port: use a number from 1 to 65535")]
    Port(String),
    #[error(
        "region {0:?} is not a region id: use a value such as cn-hangzhou (or oss-cn-hangzhou)"
    )]
    Region(String),
}

impl Endpoint {
    /// Parses `https://host[:port]`, `http://host[:port]` or a bare `host[:port]` (taken as
    /// HTTPS). A trailing `/` is accepted.
    pub(crate) fn parse(input: &str) -> Result<Self, EndpointError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(EndpointError::Empty(input.to_owned()));
        }
        let (scheme, rest) = match trimmed.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => (Scheme::Https, rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
            Some(_) => return Err(EndpointError::Scheme(input.to_owned())),
            None => (Scheme::Https, trimmed),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err(EndpointError::Shape(input.to_owned()));
        }
        let (host, port) =
            split_host_port(rest).ok_or_else(|| EndpointError::Port(input.to_owned()))?;
        if host.is_empty() {
            return Err(EndpointError::Shape(input.to_owned()));
        }
        Ok(Endpoint {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The public endpoint of a region: `https://oss-<region>.aliyuncs.com`.
    pub fn public(region: &str) -> Result<Self, crate::oss::Error> {
        Ok(Self::https(format!(
            "oss-{}.aliyuncs.com",
            region_id(region)?
        )))
    }

    /// The internal endpoint of a region, reachable from ECS/VPC in that region without traffic
    /// charges: `https://oss-<region>-internal.aliyuncs.com`.
    pub fn internal(region: &str) -> Result<Self, crate::oss::Error> {
        Ok(Self::https(format!(
            "oss-{}-internal.aliyuncs.com",
            region_id(region)?
        )))
    }

    /// The global transfer-acceleration endpoint (acceleration must be enabled on the bucket).
    pub fn accelerate() -> Self {
        Self::https("oss-accelerate.aliyuncs.com".to_owned())
    }

    /// The acceleration endpoint for regions outside the Chinese mainland.
    pub fn accelerate_overseas() -> Self {
        Self::https("oss-accelerate-overseas.aliyuncs.com".to_owned())
    }

    fn https(host: String) -> Self {
        Endpoint {
            scheme: Scheme::Https,
            host,
            port: None,
        }
    }

    /// Whether requests go over HTTPS.
    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::Https
    }

    /// The endpoint's host, without the bucket.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, when the endpoint names one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether the bucket cannot be put in front of the host name: IP literals and `localhost`.
    pub fn needs_path_style(&self) -> bool {
        let bare = self.host.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<IpAddr>().is_ok() || bare == "localhost" || bare.ends_with(".localhost")
    }

    /// The region id an `oss-<region>[-internal].aliyuncs.com` host names, if it names one.
    pub fn region_from_host(&self) -> Option<String> {
        let name = self.host.strip_suffix(".aliyuncs.com")?;
        let name = name.rsplit('.').next()?;
        let region = name.strip_prefix("oss-")?;
        let region = region.strip_suffix("-internal").unwrap_or(region);
        (!region.starts_with("accelerate") && !region.is_empty()).then(|| region.to_owned())
    }

    /// The request URL for a bucket/key and decoded query pairs.
    pub fn url(
        &self,
        addressing: Addressing,
        bucket: Option<&str>,
        key: Option<&str>,
        query: &[(String, String)],
    ) -> String {
        let mut url = String::with_capacity(64);
        url.push_str(if self.is_https() {
            "https://"
        } else {
            "http://"
        });
        if let (Addressing::VirtualHosted, Some(b)) = (addressing, bucket) {
            url.push_str(b);
            url.push('.');
        }
        url.push_str(&self.host);
        if let Some(port) = self.port {
            url.push_str(&format!(":{port}"));
        }
        url.push('/');
        if let (Addressing::PathStyle, Some(b)) = (addressing, bucket) {
            url.push_str(b);
            url.push('/');
        }
        if let Some(k) = key {
            url.push_str(&uri_encode_path(k));
        }
        let rendered = render_query(query);
        if !rendered.is_empty() {
            url.push('?');
            url.push_str(&rendered);
        }
        url
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.is_https() { "https" } else { "http" };
        match self.port {
            Some(p) => write!(f, "{scheme}://{}:{p}", self.host),
            None => write!(f, "{scheme}://{}", self.host),
        }
    }
}

/// `key=value&bare&…`, keys and values percent-encoded, in the given order.
pub(crate) fn render_query(query: &[(String, String)]) -> String {
    query
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                uri_encode(k)
            } else {
                format!("{}={}", uri_encode(k), uri_encode(v))
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    // `[::1]:9000` — the brackets keep the IPv6 colons apart from the port.
    if s.starts_with('[') {
        let end = s.find(']')?;
        let (host, rest) = s.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(p) => Some((host, Some(parse_port(p)?))),
            None if rest.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match s.rsplit_once(':') {
        Some((host, p)) => Some((host, Some(parse_port(p)?))),
        None => Some((s, None)),
    }
}

fn parse_port(p: &str) -> Option<u16> {
    p.parse::<u16>().ok().filter(|p| *p != 0)
}

/// Normalises a region to the id V4 signs: `oss-cn-hangzhou` and `cn-hangzhou` both give
/// `cn-hangzhou`.
pub fn region_id(region: &str) -> Result<String, crate::oss::Error> {
    let trimmed = region.trim().to_ascii_lowercase();
    let id = trimmed.strip_prefix("oss-").unwrap_or(&trimmed);
    let valid = !id.is_empty()
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if valid {
        Ok(id.to_owned())
    } else {
        Err(EndpointError::Region(region.to_owned()).into())
    }
}

/// The `LocationConstraint` form of a region (`oss-cn-hangzhou`), as GetBucketLocation returns it.
pub fn location_of(region: &str) -> Result<String, crate::oss::Error> {
    Ok(format!("oss-{}", region_id(region)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn parses_schemes_hosts_and_ports() {
        let e = Endpoint::parse("https://oss-cn-hangzhou.aliyuncs.com/").unwrap();
        assert!(e.is_https());
        assert_eq!(e.host(), "oss-cn-hangzhou.aliyuncs.com");
        assert_eq!(e.port(), None);
        let e = Endpoint::parse("http://127.0.0.1:9000").unwrap();
        assert!(!e.is_https());
        assert_eq!(e.port(), Some(9000));
        assert!(e.needs_path_style());
        assert_eq!(
            Endpoint::parse("oss-cn-beijing.aliyuncs.com")
                .unwrap()
                .to_string(),
            "https://oss-cn-beijing.aliyuncs.com"
        );
        assert!(
            Endpoint::parse("http://[::1]:8080")
                .unwrap()
                .needs_path_style()
        );
        assert!(
            Endpoint::parse("http://localhost:8080")
                .unwrap()
                .needs_path_style()
        );
        assert!(
            !Endpoint::parse("https://oss-cn-hangzhou.aliyuncs.com")
                .unwrap()
                .needs_path_style()
        );
    }

    #[test]
    fn refuses_malformed_endpoints_with_the_value_in_the_message() {
        for bad in [
            "",
            "ftp://x",
            "https://host/path",
            "https://host:0",
            "https://host:99999",
            "https://u@host",
            "https://",
        ] {
            let err = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn region_helpers() {
        assert_eq!(region_id("oss-cn-hangzhou").unwrap(), "cn-hangzhou");
        assert_eq!(region_id("cn-hangzhou").unwrap(), "cn-hangzhou");
        assert_eq!(region_id(" ap-southeast-1 ").unwrap(), "ap-southeast-1");
        assert!(region_id("").is_err());
        assert!(region_id("cn/hangzhou").is_err());
        assert_eq!(location_of("cn-hangzhou").unwrap(), "oss-cn-hangzhou");
        assert_eq!(
            Endpoint::public("oss-cn-hangzhou").unwrap().to_string(),
            "https://oss-cn-hangzhou.aliyuncs.com"
        );
        assert_eq!(
            Endpoint::internal("cn-shanghai").unwrap().to_string(),
            "https://oss-cn-shanghai-internal.aliyuncs.com"
        );
        assert_eq!(
            Endpoint::accelerate().to_string(),
            "https://oss-accelerate.aliyuncs.com"
        );
        assert_eq!(
            Endpoint::accelerate_overseas().to_string(),
            "https://oss-accelerate-overseas.aliyuncs.com"
        );
        assert_eq!(
            Endpoint::internal("cn-shanghai")
                .unwrap()
                .region_from_host()
                .as_deref(),
            Some("cn-shanghai")
        );
        assert_eq!(
            Endpoint::public("eu-central-1")
                .unwrap()
                .region_from_host()
                .as_deref(),
            Some("eu-central-1")
        );
        assert_eq!(Endpoint::accelerate().region_from_host(), None);
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:1")
                .unwrap()
                .region_from_host(),
            None
        );
    }

    #[test]
    fn virtual_hosted_urls() {
        let e = Endpoint::parse("https://oss-cn-hangzhou.aliyuncs.com").unwrap();
        let v = Addressing::VirtualHosted;
        assert_eq!(
            e.url(v, None, None, &[]),
            "https://oss-cn-hangzhou.aliyuncs.com/"
        );
        assert_eq!(
            e.url(v, Some("b"), None, &q(&[("uploads", "")])),
            "https://b.oss-cn-hangzhou.aliyuncs.com/?uploads"
        );
        assert_eq!(
            e.url(
                v,
                Some("b"),
                Some("dir/中文 a+b.txt"),
                &q(&[("partNumber", "3"), ("uploadId", "x/y")])
            ),
            "https://b.oss-cn-hangzhou.aliyuncs.com/dir/%E4%B8%AD%E6%96%87%20a%2Bb.txt?partNumber=3&uploadId=x%2Fy"
        );
    }

    #[test]
    fn path_style_urls() {
        let e = Endpoint::parse("http://127.0.0.1:9000").unwrap();
        let p = Addressing::PathStyle;
        assert_eq!(e.url(p, None, None, &[]), "http://127.0.0.1:9000/");
        assert_eq!(
            e.url(
                p,
                Some("b"),
                None,
                &q(&[("list-type", "2"), ("prefix", "a b/")])
            ),
            "http://127.0.0.1:9000/b/?list-type=2&prefix=a%20b%2F"
        );
        assert_eq!(
            e.url(p, Some("b"), Some("a/b~c"), &[]),
            "http://127.0.0.1:9000/b/a/b~c"
        );
    }
}
