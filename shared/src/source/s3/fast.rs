//! A lean whole-object GET for [`S3Source::open`](super::S3Source), the one request a migration
//! of small objects makes per object.
//!
//! aws-sdk-s3 spends much more CPU on a request than the request needs: its interceptor stack,
//! endpoint rules, layered config and stalled-stream checks cost about 0.2 ms per GetObject on
//! the benchmark machine — as much as the whole PutObject to OSS. For this one call the module
//! sends the request the SDK would send, signed by the SDK's own SigV4 signer (`aws-sigv4`),
//! over a plain HTTP client:
//!
//! * **The address is the SDK's.** Until the fast path has learned it, reads go through the SDK
//!   with a [`Recorder`] that notes the URL the SDK resolved and the signing region and service
//!   from its `Authorization` header. The fast path then only swaps the key. Anything it does not
//!   understand (SigV4a, S3 Express session auth, extra headers or query parameters) leaves it
//!   off for good, so unusual setups simply keep using the SDK.
//! * **Only success is handled here.** Any other status, or a transport failure, returns `None`
//!   and the caller repeats the read through the SDK, whose retries, error classification and
//!   messages stay the only ones. After [`GIVE_UP_AFTER`] failures in a row the fast path turns
//!   itself off (a clock the store rejects, a proxy the plain client does not know, …).
//! * **Keys URL parsing would alter are left to the SDK**: keys with `.` or `..` path segments.
//!
//! Credentials come from the SDK client's provider and are cached until shortly before they
//! expire (15 minutes for credentials without an expiry, as the SDK's own cache does).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{
    ConfigBag, Credentials, Intercept, ProvideCredentials, RuntimeComponents,
    SharedCredentialsProvider,
};
use aws_sdk_s3::error::BoxError;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Consecutive failed fast reads after which the fast path stays off.
pub(super) const GIVE_UP_AFTER: u32 = 8;

/// Reads through the SDK that may try to teach the fast path before it gives up learning (a
/// read that fails teaches nothing).
const LEARN_TRIES: u32 = 100;

/// How S3 (and the SDK) encode a key in the path: everything but unreserved characters and `/`.
const KEY_IN_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Headers an SDK GetObject carries that the fast path reproduces or may leave out.
const KNOWN_HEADERS: &[&str] = &[
    "host",
    "authorization",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-checksum-mode",
    "x-amz-security-token",
    "user-agent",
    "x-amz-user-agent",
    "amz-sdk-invocation-id",
    "amz-sdk-request",
    "content-length",
];

/// What the fast path learned from an SDK request.
#[derive(Debug)]
struct Learned {
    /// The URL up to the key (`http://host:port/bucket/` or `https://bucket.host/`).
    base: String,
    /// The query the SDK adds (`?x-id=GetObject`), or empty.
    query: String,
    region: String,
    service: String,
}

/// The lean GET of one S3 source. Shared by every clone of the source.
pub(super) struct FastGet {
    http: Option<reqwest::Client>,
    provider: Option<SharedCredentialsProvider>,
    learned: Mutex<Option<Arc<Learned>>>,
    cached: Mutex<Option<(Credentials, SystemTime)>>,
    refresh: tokio::sync::Mutex<()>,
    learn_tries: AtomicU32,
    failures: AtomicU32,
    off: AtomicBool,
}

impl FastGet {
    /// A fast path that reads with `provider`'s credentials; `enabled: false` (or an HTTP client
    /// that cannot be built) makes one that is always off.
    pub(super) fn new(provider: Option<SharedCredentialsProvider>, enabled: bool) -> Self {
        let http = enabled
            .then(|| {
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    // The SDK's defaults for the latest behaviour version.
                    .connect_timeout(Duration::from_millis(3100))
                    // A body that stops arriving fails instead of hanging (the SDK has
                    // stalled-stream protection for the same purpose).
                    .read_timeout(Duration::from_secs(30))
                    .pool_idle_timeout(Duration::from_secs(50))
                    .tcp_nodelay(true)
                    .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .ok()
            })
            .flatten();
        FastGet {
            off: AtomicBool::new(http.is_none() || provider.is_none()),
            http,
            provider,
            learned: Mutex::new(None),
            cached: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            learn_tries: AtomicU32::new(0),
            failures: AtomicU32::new(0),
        }
    }

    fn learned(&self) -> Option<Arc<Learned>> {
        self.learned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn turn_off(&self, why: &str) {
        if !self.off.swap(true, Ordering::Relaxed) {
            tracing::debug!(why, "S3 fast GET off; reads go through aws-sdk-s3");
        }
    }

    /// Learned and not turned off.
    pub(super) fn is_on(&self) -> bool {
        !self.off.load(Ordering::Relaxed) && self.learned().is_some()
    }

    /// Whether [`get`](Self::get) may be tried for `key`.
    pub(super) fn ready_for(&self, key: &str) -> bool {
        !self.off.load(Ordering::Relaxed) && addressable(key) && self.learned().is_some()
    }

    /// A recorder to attach to an SDK GetObject of `key` while the fast path is still learning.
    pub(super) fn recorder(&self, key: &str) -> Option<Recorder> {
        let learning = !self.off.load(Ordering::Relaxed)
            && addressable(key)
            && self.learned().is_none()
            && self.learn_tries.fetch_add(1, Ordering::Relaxed) < LEARN_TRIES;
        learning.then(Recorder::default)
    }

    /// Learns the address from what `recorder` saw of a successful SDK GetObject of `key`.
    pub(super) fn learn(&self, key: &str, recorder: &Recorder) {
        let seen = recorder.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(seen) = seen else { return };
        match learn_from(key, &seen) {
            Ok(learned) => {
                tracing::debug!(base = %learned.base, region = %learned.region, "S3 fast GET on");
                *self.learned.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(learned));
            }
            Err(why) => self.turn_off(why),
        }
    }

    /// GETs the whole of `key` with checksum mode on. `Some` only for a 200 answer; `None` means
    /// "read it through the SDK".
    pub(super) async fn get(&self, key: &str) -> Option<reqwest::Response> {
        let answer = self.try_get(key).await;
        match &answer {
            Some(_) => self.failures.store(0, Ordering::Relaxed),
            None => {
                if self.failures.fetch_add(1, Ordering::Relaxed) + 1 >= GIVE_UP_AFTER {
                    self.turn_off("too many failed fast reads in a row");
                }
            }
        }
        answer
    }

    async fn try_get(&self, key: &str) -> Option<reqwest::Response> {
        let learned = self.learned()?;
        let http = self.http.as_ref()?;
        let credentials = self.credentials().await?;
        let url = format!(
            "{}{}{}",
            learned.base,
            utf8_percent_encode(key, KEY_IN_PATH),
            learned.query
        );
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&learned.region)
            .name(&learned.service)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .ok()?
            .into();
        let headers = [("x-amz-checksum-mode", "ENABLED")];
        let signable = SignableRequest::new(
            "GET",
            url.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(&[]),
        )
        .ok()?;
        let (instructions, _) = sign(signable, &params).ok()?.into_parts();
        let mut request = http.get(&url);
        for (name, value) in headers.iter().copied().chain(instructions.headers()) {
            request = request.header(name, value);
        }
        let response = request.send().await.ok()?;
        (response.status() == reqwest::StatusCode::OK).then_some(response)
    }

    /// The provider's credentials, fetched again shortly before they expire.
    async fn credentials(&self) -> Option<Credentials> {
        if let Some(c) = self.fresh() {
            return Some(c);
        }
        let _one_refresh = self.refresh.lock().await;
        if let Some(c) = self.fresh() {
            return Some(c);
        }
        let credentials = self.provider.as_ref()?.provide_credentials().await.ok()?;
        let now = SystemTime::now();
        let renew_at = match credentials.expiry() {
            Some(expiry) => expiry
                .checked_sub(Duration::from_secs(300))
                .unwrap_or(now)
                .min(now + Duration::from_secs(3600)),
            None => now + Duration::from_secs(900),
        };
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((credentials.clone(), renew_at));
        Some(credentials)
    }

    fn fresh(&self) -> Option<Credentials> {
        let cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        cached
            .as_ref()
            .filter(|(_, renew_at)| SystemTime::now() < *renew_at)
            .map(|(c, _)| c.clone())
    }
}

/// Whether a URL carries `key` unchanged: URL parsing removes `.` and `..` path segments, which
/// would address another object. (A `%` in a key is itself encoded, so only literal dots count.)
pub(super) fn addressable(key: &str) -> bool {
    !key.split('/')
        .any(|segment| segment == "." || segment == "..")
}

/// One SDK request as sent: its URL and its headers.
#[derive(Debug)]
struct Seen {
    uri: String,
    headers: Vec<(String, String)>,
}

/// Records the signed request an SDK GetObject sends.
#[derive(Clone, Debug, Default)]
pub(super) struct Recorder(Arc<Mutex<Option<Seen>>>);

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "ferry::FastGetRecorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let seen = Seen {
            uri: request.uri().to_owned(),
            headers: request
                .headers()
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
                .collect(),
        };
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(seen);
        Ok(())
    }
}

/// The address and signing scope of the SDK's request for `key`, or why the fast path cannot
/// reproduce it.
fn learn_from(key: &str, seen: &Seen) -> Result<Learned, &'static str> {
    if let Some((name, _)) = seen
        .headers
        .iter()
        .find(|(n, _)| !KNOWN_HEADERS.contains(&n.as_str()))
    {
        tracing::debug!(header = %name, "the SDK's GetObject carries a header the fast GET does not send");
        return Err("the SDK's GetObject carries a header the fast GET does not send");
    }
    let auth = seen
        .headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .map(|(_, v)| v.as_str())
        .ok_or("the SDK's GetObject is not signed")?;
    let scope = auth
        .strip_prefix("AWS4-HMAC-SHA256 Credential=")
        .and_then(|rest| rest.split(',').next())
        .ok_or("the SDK signs with something other than SigV4")?;
    let parts: Vec<&str> = scope.rsplitn(4, '/').collect();
    let [terminator, service, region, _] = parts.as_slice() else {
        return Err("the SDK's credential scope has an unexpected shape");
    };
    if *terminator != "aws4_request" {
        return Err("the SDK's credential scope has an unexpected shape");
    }
    let (path, query) = match seen.uri.split_once('?') {
        Some((path, query)) => (path, format!("?{query}")),
        None => (seen.uri.as_str(), String::new()),
    };
    if !query.is_empty() && query != "?x-id=GetObject" {
        return Err("the SDK's GetObject has query parameters the fast GET does not send");
    }
    let encoded = utf8_percent_encode(key, KEY_IN_PATH).to_string();
    let base = path
        .strip_suffix(&encoded)
        .filter(|b| b.ends_with('/'))
        .ok_or("the SDK addresses keys differently")?;
    Ok(Learned {
        base: base.to_owned(),
        query,
        region: (*region).to_owned(),
        service: (*service).to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(uri: &str, auth: &str, extra: &[(&str, &str)]) -> Seen {
        let mut headers = vec![
            ("authorization".to_owned(), auth.to_owned()),
            ("x-amz-date".to_owned(), "20250101T000000Z".to_owned()),
        ];
        headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        Seen {
            uri: uri.to_owned(),
            headers,
        }
    }

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKID/20250101/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00";

    #[test]
    fn learns_path_and_virtual_host_addresses() {
        let path = learn_from(
            "dir/a b+c",
            &seen(
                "http://127.0.0.1:9000/bucket/dir/a%20b%2Bc?x-id=GetObject",
                AUTH,
                &[],
            ),
        )
        .unwrap();
        assert_eq!(path.base, "http://127.0.0.1:9000/bucket/");
        assert_eq!(path.query, "?x-id=GetObject");
        assert_eq!(
            (path.region.as_str(), path.service.as_str()),
            ("eu-west-1", "s3")
        );
        let host = learn_from(
            "k",
            &seen("https://bucket.s3.eu-west-1.amazonaws.com/k", AUTH, &[]),
        )
        .unwrap();
        assert_eq!(host.base, "https://bucket.s3.eu-west-1.amazonaws.com/");
        assert_eq!(host.query, "");
    }

    #[test]
    fn anything_unfamiliar_keeps_the_fast_path_off() {
        let uri = "http://h/bucket/k?x-id=GetObject";
        assert!(learn_from("k", &seen(uri, "AWS4-ECDSA-P256-SHA256 Credential=x", &[])).is_err());
        assert!(
            learn_from("k", &seen(uri, AUTH, &[("x-amz-s3session-token", "t")])).is_err(),
            "S3 Express session auth"
        );
        assert!(
            learn_from(
                "k",
                &seen("http://h/bucket/k?x-id=GetObject&a=b", AUTH, &[])
            )
            .is_err()
        );
        assert!(
            learn_from("other", &seen(uri, AUTH, &[])).is_err(),
            "another key"
        );
    }

    #[test]
    fn dot_segments_are_not_addressable() {
        for key in ["a/./b", "../x", "a/..", "."] {
            assert!(!addressable(key), "{key}");
        }
        for key in ["a.b", "a/...", "a//b", ".hidden/x", "a/.b./c", "a/%2e%2e/b"] {
            assert!(addressable(key), "{key}");
        }
    }
}
