//! [`OssClient`]: configuration, addressing, and the one path every request takes — sign, send,
//! classify the answer, retry.
//!
//! The operations (`ops/*`) describe a request (method, bucket, key, query, headers, body) and how
//! to read its answer; `OssClient::execute` does the rest:
//!
//! 1. computes what the body allows up front (CRC-64 and Content-MD5 of in-memory bytes),
//! 2. for each attempt, signs with the clock corrected by any offset OSS taught us, sends, and
//!    turns an error status into a typed [`ServiceError`],
//! 3. checks the CRC-64 OSS computed over an upload against ours,
//! 4. retries what is retryable — but never a one-shot stream, which only the caller can re-open.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::body::{RequestBody, StreamTracker};
use super::credentials::{Credentials, RefreshCredentials};
use super::endpoint::{Addressing, Endpoint, region_id};
use super::error::{Error, ServiceError, redact_string_to_sign};
use super::retry::{ClockOffset, RetryConfig};
use super::sign::{Signable, SignatureVersion, Signer};
use super::types::{get, parse_http_date};
use super::xml::{self, ErrorXml};

/// Error bodies are small; anything longer is not an OSS error document.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// XML results (listings of 1000 keys of 1 KiB) stay well below this.
const MAX_XML_BODY: usize = 32 * 1024 * 1024;

/// A client for one OSS endpoint and region with one set of credentials. Cheap to clone; clones
/// share the connection pool and the learned clock offset.
#[derive(Clone)]
pub struct OssClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoint: Endpoint,
    addressing: Addressing,
    /// Replaced whole when fresh credentials arrive; a request signs with the one it read.
    signer: RwLock<Arc<Signer>>,
    region: String,
    version: SignatureVersion,
    /// Asked for fresh credentials when OSS refuses the current ones; one caller at a time.
    refresh: Option<Arc<dyn RefreshCredentials>>,
    refreshing: tokio::sync::Mutex<()>,
    retry: RetryConfig,
    clock: ClockOffset,
    content_md5: bool,
}

impl std::fmt::Debug for OssClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials' own Debug shows the key id and redacts the secret and token.
        f.debug_struct("OssClient")
            .field("endpoint", &self.inner.endpoint.to_string())
            .field("region", &self.inner.region)
            .field("addressing", &self.inner.addressing)
            .field("signature_version", &self.inner.version)
            .field("credentials", &self.signer().credentials)
            .field("refreshes_credentials", &self.inner.refresh.is_some())
            .field("retry", &self.inner.retry)
            .finish()
    }
}

/// Builds an [`OssClient`].
///
/// ```no_run
/// # use ferry::oss::{OssClient, Credentials};
/// let client = OssClient::builder()
///     .endpoint("https://oss-cn-hangzhou.aliyuncs.com")
///     .region("cn-hangzhou")
///     .credentials(Credentials::new("LTAI...", "secret"))
///     .build()?;
/// # Ok::<(), ferry::oss::Error>(())
/// ```
#[derive(Clone)]
pub struct OssClientBuilder {
    endpoint: Option<String>,
    region: Option<String>,
    credentials: Option<Credentials>,
    credentials_env_error: Option<String>,
    refresh: Option<Arc<dyn RefreshCredentials>>,
    signature_version: SignatureVersion,
    path_style: bool,
    allow_http: bool,
    retry: RetryConfig,
    connect_timeout: Duration,
    read_timeout: Option<Duration>,
    content_md5: bool,
    user_agent: String,
    resolve: Vec<(String, SocketAddr)>,
}

impl std::fmt::Debug for OssClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OssClientBuilder")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("credentials", &self.credentials)
            .field("signature_version", &self.signature_version)
            .field("path_style", &self.path_style)
            .field("allow_http", &self.allow_http)
            .field("retry", &self.retry)
            .finish()
    }
}

impl Default for OssClientBuilder {
    fn default() -> Self {
        OssClientBuilder {
            endpoint: None,
            region: None,
            credentials: None,
            credentials_env_error: None,
            refresh: None,
            signature_version: SignatureVersion::V4,
            path_style: false,
            allow_http: false,
            retry: RetryConfig::default(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: None,
            content_md5: true,
            user_agent: format!("ferry/{}", env!("CARGO_PKG_VERSION")),
            resolve: Vec::new(),
        }
    }
}

impl OssClientBuilder {
    /// Reads `OSS_ENDPOINT`, `OSS_REGION` and the credentials variables
    /// (`OSS_ACCESS_KEY_ID`, `OSS_ACCESS_KEY_SECRET`, `OSS_SESSION_TOKEN`). Missing values can
    /// still be set on the builder; [`build`](Self::build) reports what is still missing.
    pub fn from_env() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        let mut b = OssClientBuilder {
            endpoint: var("OSS_ENDPOINT"),
            region: var("OSS_REGION"),
            ..Default::default()
        };
        match Credentials::from_env() {
            Ok(c) => b.credentials = Some(c),
            Err(e) => b.credentials_env_error = Some(e.to_string()),
        }
        b
    }

    /// `https://oss-cn-hangzhou.aliyuncs.com`, a bare host (HTTPS), or `http://127.0.0.1:PORT`
    /// together with [`allow_http`](Self::allow_http).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The region the endpoint serves: `cn-hangzhou` or `oss-cn-hangzhou`. Optional for
    /// `oss-<region>[-internal].aliyuncs.com` endpoints, which name it.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The AccessKey (and STS token) requests are signed with.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Where to get fresh credentials when OSS refuses the current ones (a rotated AccessKey,
    /// an expired STS token): the request is sent again once with them.
    pub fn refresh_credentials(mut self, source: Arc<dyn RefreshCredentials>) -> Self {
        self.refresh = Some(source);
        self
    }

    /// V4 by default; V1 only for accounts and buckets that still accept it.
    pub fn signature_version(mut self, version: SignatureVersion) -> Self {
        self.signature_version = version;
        self
    }

    /// Forces path-style URLs. Without it, path style is used only when the endpoint host is an
    /// IP address or `localhost`.
    pub fn path_style(mut self, enabled: bool) -> Self {
        self.path_style = enabled;
        self
    }

    /// Allows a plain `http://` endpoint (local emulators, tests). Off by default.
    pub fn allow_http(mut self, allowed: bool) -> Self {
        self.allow_http = allowed;
        self
    }

    /// How many times, and with what backoff, failed requests are retried.
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// How long to wait for a TCP/TLS connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Limit on each wait for the server, *including the wait for the response head while an
    /// upload is sent*. Off by default: set it longer than the slowest part upload.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    /// Whether to compute and send Content-MD5 for in-memory bodies (default on). Streams send
    /// it only when given one with [`RequestBody::with_content_md5`].
    pub fn content_md5(mut self, enabled: bool) -> Self {
        self.content_md5 = enabled;
        self
    }

    /// The `User-Agent` header (default `ferry/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Sends requests for `host` (e.g. `bucket.oss-cn-hangzhou.aliyuncs.com`) to `addr` instead
    /// of resolving it: for private DNS set-ups and for tests of virtual-hosted addressing.
    pub fn resolve(mut self, host: impl Into<String>, addr: SocketAddr) -> Self {
        self.resolve.push((host.into(), addr));
        self
    }

    /// Checks the settings and builds the client; the error says what is missing or unusable.
    pub fn build(self) -> Result<OssClient, Error> {
        let raw = self.endpoint.as_deref().ok_or_else(|| {
            Error::InvalidConfig("no endpoint: set OSS_ENDPOINT or call endpoint(\"https://oss-<region>.aliyuncs.com\")".into())
        })?;
        let endpoint = Endpoint::parse(raw)?;
        if !endpoint.is_https() && !self.allow_http {
            return Err(Error::InvalidConfig(format!(
                "endpoint {endpoint} uses plain HTTP, which sends data and signed requests unencrypted: \
                 use an https:// endpoint, or call allow_http(true) for a local emulator or test"
            )));
        }
        let region = match (&self.region, endpoint.region_from_host()) {
            (Some(r), _) => region_id(r)?,
            (None, Some(r)) => r,
            (None, None) => {
                return Err(Error::InvalidConfig(format!(
                    "no region for endpoint {endpoint}: set OSS_REGION or call region(\"cn-hangzhou\")"
                )));
            }
        };
        let credentials = self.credentials.ok_or_else(|| {
            Error::InvalidConfig(self.credentials_env_error.unwrap_or_else(|| {
                "no credentials: call credentials(Credentials::new(id, secret))".into()
            }))
        })?;
        if credentials.access_key_id.trim().is_empty() || credentials.access_key_secret.is_empty() {
            return Err(Error::InvalidConfig(
                "the AccessKey id or secret is empty: pass both".into(),
            ));
        }
        self.retry.validate()?;
        let addressing = if self.path_style || endpoint.needs_path_style() {
            Addressing::PathStyle
        } else {
            Addressing::VirtualHosted
        };
        let mut http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .tcp_nodelay(true)
            .user_agent(self.user_agent);
        if let Some(t) = self.read_timeout {
            http = http.read_timeout(t);
        }
        for (host, addr) in &self.resolve {
            http = http.resolve(host, *addr);
        }
        let http = http.build().map_err(|e| {
            Error::InvalidConfig(format!(
                "cannot create the HTTP client: {}",
                super::error::error_chain(&e)
            ))
        })?;
        let signer = Signer::new(credentials, region, self.signature_version);
        Ok(OssClient {
            inner: Arc::new(Inner {
                http,
                endpoint,
                addressing,
                region: signer.region.clone(),
                signer: RwLock::new(Arc::new(signer)),
                version: self.signature_version,
                refresh: self.refresh,
                refreshing: tokio::sync::Mutex::new(()),
                retry: self.retry,
                clock: ClockOffset::default(),
                content_md5: self.content_md5,
            }),
        })
    }
}

/// A request as an operation describes it.
pub(crate) struct Request<'a> {
    pub operation: &'static str,
    pub method: Method,
    pub bucket: Option<&'a str>,
    pub key: Option<&'a str>,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: RequestBody,
    /// Compare the body's CRC-64 with the `x-oss-hash-crc64ecma` OSS answers with.
    pub verify_crc: bool,
}

impl<'a> Request<'a> {
    pub(crate) fn new(operation: &'static str, method: Method) -> Self {
        Request {
            operation,
            method,
            bucket: None,
            key: None,
            query: Vec::new(),
            headers: Vec::new(),
            body: RequestBody::empty(),
            verify_crc: false,
        }
    }

    pub(crate) fn bucket(mut self, bucket: &'a str) -> Self {
        self.bucket = Some(bucket);
        self
    }

    pub(crate) fn object(mut self, bucket: &'a str, key: &'a str) -> Self {
        self.bucket = Some(bucket);
        self.key = Some(key);
        self
    }

    pub(crate) fn query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.query.push((name.to_owned(), value.into()));
        self
    }

    pub(crate) fn query_opt(self, name: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.query(name, v),
            None => self,
        }
    }

    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub(crate) fn body(mut self, body: RequestBody) -> Self {
        self.body = body;
        self
    }

    /// An XML request document, with the Content-Type OSS expects.
    pub(crate) fn xml_body(self, document: String) -> Self {
        self.header("Content-Type", "application/xml")
            .body(RequestBody::from_bytes(document))
    }

    fn resource(&self) -> String {
        match (self.bucket, self.key) {
            (None, _) => "/".to_owned(),
            (Some(b), None) => format!("{b}/"),
            (Some(b), Some(k)) => format!("{b}/{k}"),
        }
    }
}

/// A successful response handed to an operation's reader.
pub(crate) struct Sent {
    pub response: reqwest::Response,
    pub request_id: String,
    /// CRC-64 of the request body, when it was sent in full.
    pub body_crc: Option<u64>,
    pub operation: &'static str,
    pub resource: String,
}

impl Sent {
    pub(crate) fn headers(&self) -> &HeaderMap {
        self.response.headers()
    }

    pub(crate) fn header(&self, name: &str) -> Option<String> {
        get(self.response.headers(), name)
    }

    pub(crate) fn invalid(&self, message: impl ToString) -> Error {
        Error::InvalidResponse {
            operation: self.operation,
            request_id: self.request_id.clone(),
            message: message.to_string(),
        }
    }

    /// Reads and parses an XML result document.
    pub(crate) async fn xml<T: for<'de> serde::Deserialize<'de>>(
        self,
        root: &'static str,
    ) -> Result<T, Error> {
        let (op, rid) = (self.operation, self.request_id.clone());
        let body = read_limited(self.response, MAX_XML_BODY, op).await?;
        xml::parse(&body, root, op, &rid)
    }
}

impl OssClient {
    /// A builder with every setting at its default.
    pub fn builder() -> OssClientBuilder {
        OssClientBuilder::default()
    }

    /// The endpoint requests are sent to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The region id requests are signed for (`cn-hangzhou`).
    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// Whether the bucket goes in the host name or the path.
    pub fn addressing(&self) -> Addressing {
        self.inner.addressing
    }

    /// The signature version requests are signed with.
    pub fn signature_version(&self) -> SignatureVersion {
        self.inner.version
    }

    /// How failed requests are retried.
    pub fn retry_config(&self) -> RetryConfig {
        self.inner.retry
    }

    /// The correction applied to the local clock when signing (server time − local time).
    pub fn clock_offset(&self) -> chrono::Duration {
        self.inner.clock.get()
    }

    /// Sets the signing clock correction, e.g. from a known-good time source.
    pub fn set_clock_offset(&self, offset: chrono::Duration) {
        self.inner.clock.set(offset)
    }

    /// The URL of a bucket (`key` `None`) or object, without query or signature.
    pub fn url(&self, bucket: &str, key: Option<&str>) -> Result<String, Error> {
        check_bucket(bucket)?;
        if let Some(k) = key {
            check_key(k)?;
        }
        Ok(self
            .inner
            .endpoint
            .url(self.inner.addressing, Some(bucket), key, &[]))
    }

    /// A presigned URL for `method` on an object, valid for `expires_in` (V4 caps it at 7 days).
    /// `query` holds extra decoded parameters (`versionId`, `response-content-type`, …).
    pub fn presign(
        &self,
        method: Method,
        bucket: &str,
        key: &str,
        query: &[(String, String)],
        expires_in: Duration,
    ) -> Result<String, Error> {
        check_bucket(bucket)?;
        check_key(key)?;
        let signable = Signable {
            method: method.as_str(),
            bucket: Some(bucket),
            key: Some(key),
            query,
            headers: &[],
        };
        let added = self
            .signer()
            .presign(&signable, self.inner.clock.now(), expires_in, &[]);
        let mut all = query.to_vec();
        all.extend(added);
        Ok(self
            .inner
            .endpoint
            .url(self.inner.addressing, Some(bucket), Some(key), &all))
    }

    /// A presigned GET URL for an object.
    pub fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        expires_in: Duration,
    ) -> Result<String, Error> {
        self.presign(Method::GET, bucket, key, &[], expires_in)
    }

    /// Sends `req`, retrying as the retry policy allows, and hands each successful response to
    /// `read`; errors from `read` (a broken body, a CRC mismatch) are retried the same way.
    pub(crate) async fn execute<T, F, Fut>(
        &self,
        mut req: Request<'_>,
        mut read: F,
    ) -> Result<T, Error>
    where
        F: FnMut(Sent) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        if let Some(b) = req.bucket {
            check_bucket(b)?;
        }
        if let Some(k) = req.key {
            check_key(k)?;
        }
        let precomputed_crc = req.body.precompute(self.inner.content_md5);
        if let Some(md5) = req.body.content_md5() {
            req.headers.push(("Content-MD5".to_owned(), md5.to_owned()));
        }
        let retry = self.inner.retry;
        let mut attempt = 1;
        let mut refreshed = false;
        loop {
            let signer = self.signer();
            let Some((body, tracker)) = req.body.attempt() else {
                // Unreachable by construction (streams are never retried), but never panic.
                return Err(Error::Body {
                    operation: req.operation,
                    message: "the one-shot body was already sent".into(),
                });
            };
            let result = match self
                .send_once(&signer, &req, body, tracker, precomputed_crc)
                .await
            {
                Ok(sent) => read(sent).await,
                Err(e) => Err(e),
            };
            let err = match result {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            if let Some(t) = err
                .service()
                .filter(|s| s.code == "RequestTimeTooSkewed")
                .and_then(|s| s.server_time)
            {
                self.inner.clock.learn(t);
            }
            if err.is_credentials_error()
                && !refreshed
                && req.body.is_replayable()
                && self.refresh_credentials(&signer).await
            {
                // Fresh credentials: the same attempt again, signed with them.
                refreshed = true;
                continue;
            }
            if !err.is_retryable() || attempt >= retry.max_attempts || !req.body.is_replayable() {
                return Err(err);
            }
            let delay = retry.delay(attempt, err.service().and_then(|s| s.qos_delay));
            tracing::warn!(operation = req.operation, attempt, ?delay, error = %err, "OSS request failed; retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// The signer of the current credentials.
    fn signer(&self) -> Arc<Signer> {
        self.inner
            .signer
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// After OSS refused the credentials `used` signed with: asks the refresh source for fresh
    /// ones. True when the request should be sent again — another request refreshed already,
    /// or the source answered with credentials that differ from the refused ones.
    async fn refresh_credentials(&self, used: &Arc<Signer>) -> bool {
        let Some(source) = &self.inner.refresh else {
            return false;
        };
        let _one_at_a_time = self.inner.refreshing.lock().await;
        if !Arc::ptr_eq(&self.signer(), used) {
            return true;
        }
        let fresh = match source.refresh().await {
            Ok(fresh) if fresh != used.credentials => fresh,
            Ok(_) => return false,
            Err(e) => {
                tracing::warn!(error = %e, "OSS refused the credentials and fresh ones could not be read");
                return false;
            }
        };
        tracing::info!(access_key_id = %fresh.access_key_id, "OSS refused the credentials; signing with fresh ones");
        let signer = Signer::new(fresh, self.inner.region.clone(), self.inner.version);
        *self
            .inner
            .signer
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(signer);
        true
    }

    async fn send_once(
        &self,
        signer: &Signer,
        req: &Request<'_>,
        body: reqwest::Body,
        tracker: Option<StreamTracker>,
        precomputed_crc: Option<u64>,
    ) -> Result<Sent, Error> {
        let op = req.operation;
        let signable = Signable {
            method: req.method.as_str(),
            bucket: req.bucket,
            key: req.key,
            query: &req.query,
            headers: &req.headers,
        };
        let signed = signer.sign_header(&signable, self.inner.clock.now(), &[]);
        let url = self
            .inner
            .endpoint
            .url(self.inner.addressing, req.bucket, req.key, &req.query);
        let mut headers = HeaderMap::new();
        for (name, value) in req.headers.iter().chain(&signed.headers) {
            insert_header(&mut headers, name, value)?;
        }
        let mut builder = self.inner.http.request(req.method.clone(), url);
        if req.method == Method::PUT || req.method == Method::POST {
            insert_header(&mut headers, "Content-Length", &req.body.len().to_string())?;
            builder = builder.body(body);
        }
        let response = match builder.headers(headers).send().await {
            Ok(r) => r,
            Err(e) => {
                return Err(match tracker.as_ref().and_then(StreamTracker::failure) {
                    Some(message) => Error::Body {
                        operation: op,
                        message,
                    },
                    None => Error::from_reqwest(op, e),
                });
            }
        };
        let request_id = get(response.headers(), "x-oss-request-id").unwrap_or_default();
        if !response.status().is_success() {
            return Err(self
                .service_error(req, response, &signed.string_to_sign)
                .await);
        }
        let body_crc = match &tracker {
            Some(t) => t.crc(),
            None => precomputed_crc,
        };
        if req.verify_crc {
            let server = super::types::crc64_header(response.headers()).map_err(|m| {
                Error::InvalidResponse {
                    operation: op,
                    request_id: request_id.clone(),
                    message: m.to_string(),
                }
            })?;
            if let (Some(client), Some(server)) = (body_crc, server)
                && client != server
            {
                return Err(Error::ChecksumMismatch {
                    operation: op,
                    resource: req.resource(),
                    client,
                    server,
                    request_id,
                });
            }
            if body_crc.is_none() {
                return Err(Error::Body {
                    operation: op,
                    message: "OSS answered before the whole body was sent".into(),
                });
            }
        }
        Ok(Sent {
            response,
            request_id,
            body_crc,
            operation: op,
            resource: req.resource(),
        })
    }

    /// Turns an error response into a [`ServiceError`], from the XML body or, for HEAD (which has
    /// no body), from the Base64 XML in `x-oss-err`.
    async fn service_error(
        &self,
        req: &Request<'_>,
        response: reqwest::Response,
        client_sts: &str,
    ) -> Error {
        let status = response.status();
        let h = response.headers().clone();
        let document = if req.method == Method::HEAD {
            get(&h, "x-oss-err")
                .and_then(|v| BASE64.decode(v.trim()).ok())
                .map(Bytes::from)
        } else {
            read_limited(response, MAX_ERROR_BODY, req.operation)
                .await
                .ok()
        };
        let parsed: Option<ErrorXml> = document
            .as_deref()
            .and_then(|d| quick_xml::de::from_reader(d).ok());
        let mut e = ServiceError {
            operation: req.operation,
            resource: req.resource(),
            status: status.as_u16(),
            request_id: get(&h, "x-oss-request-id").unwrap_or_default(),
            ec: get(&h, "x-oss-ec").unwrap_or_default(),
            server_time: get(&h, "date").and_then(|d| parse_http_date(&d)),
            qos_delay: get(&h, "x-oss-qos-delay-time")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_millis),
            ..Default::default()
        };
        match parsed {
            Some(x) => {
                e.code = x.code;
                e.message = x.message;
                e.host_id = x.host_id;
                if !x.request_id.is_empty() {
                    e.request_id = x.request_id;
                }
                if !x.ec.is_empty() {
                    e.ec = x.ec;
                }
                e.string_to_sign = x.string_to_sign.map(|s| redact_string_to_sign(&s));
            }
            None => e.message = status.canonical_reason().unwrap_or("error").to_owned(),
        }
        if e.code == "SignatureDoesNotMatch" {
            e.client_string_to_sign = Some(redact_string_to_sign(client_sts));
        }
        Error::from(e)
    }
}

fn insert_header(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), Error> {
    let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        Error::invalid_argument("header name", name, "use letters, digits and hyphens")
    })?;
    let v = HeaderValue::from_str(value).map_err(|_| {
        // The value is never shown: signed headers carry the security token and the
        // signature, and a token read from a file with its trailing newline lands here.
        Error::invalid_argument("header", name, unprintable_value(value))
    })?;
    headers.append(n, v);
    Ok(())
}

/// What is wrong with a header value HTTP cannot carry, by position and kind, without the value.
fn unprintable_value(value: &str) -> String {
    let (at, c) = value
        .char_indices()
        .find(|(_, c)| !(*c == '\t' || (' '..='~').contains(c)))
        .unwrap_or((0, '?'));
    let what = match c {
        '\n' | '\r' => "a line break",
        c if c.is_control() => "a control character",
        _ => "a non-ASCII character",
    };
    format!(
        "its value has {what} at byte {at} of {}; header values are visible ASCII (a credential read from a file may end with a newline: strip it; URL-encode other text)",
        value.len()
    )
}

/// Reads a response body up to `limit` bytes.
pub(crate) async fn read_limited(
    response: reqwest::Response,
    limit: usize,
    operation: &'static str,
) -> Result<Bytes, Error> {
    let request_id = get(response.headers(), "x-oss-request-id").unwrap_or_default();
    let mut stream = response.bytes_stream();
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Error::from_reqwest(operation, e))?;
        if buf.len() + chunk.len() > limit {
            return Err(Error::InvalidResponse {
                operation,
                request_id,
                message: format!("the response body exceeds {limit} bytes"),
            });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Bucket names: 3–63 lower-case letters, digits and hyphens, not starting or ending with a
/// hyphen. Checked here because the name becomes part of a host name.
pub(crate) fn check_bucket(bucket: &str) -> Result<(), Error> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !bucket.starts_with('-')
        && !bucket.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_argument(
            "bucket name",
            bucket,
            "use 3-63 lower-case letters, digits and hyphens, not starting or ending with a hyphen",
        ))
    }
}

/// Object keys: 1–1023 bytes, not starting with `/` or `\`. Keys with `.` or `..` path
/// segments are refused: URL normalisation would silently address a different object.
pub(crate) fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > 1023 {
        return Err(Error::invalid_argument(
            "object key",
            key,
            "use 1 to 1023 bytes of UTF-8",
        ));
    }
    if key.starts_with('/') || key.starts_with('\\') {
        return Err(Error::invalid_argument(
            "object key",
            key,
            "OSS keys must not start with '/' or '\\'",
        ));
    }
    if key.split('/').any(|s| s == "." || s == "..") {
        return Err(Error::invalid_argument(
            "object key",
            key,
            "keys with '.' or '..' path segments cannot be addressed over HTTP without being rewritten",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new("AKID", "super-secret-value").with_security_token("sts-token-value")
    }

    #[test]
    fn http_endpoints_need_explicit_permission() {
        let err = OssClient::builder()
            .endpoint("http://127.0.0.1:9000")
            .region("cn-hangzhou")
            .credentials(creds())
            .build()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("http://127.0.0.1:9000") && err.contains("allow_http(true)"),
            "{err}"
        );
        let c = OssClient::builder()
            .endpoint("http://127.0.0.1:9000")
            .region("oss-cn-hangzhou")
            .credentials(creds())
            .allow_http(true)
            .build()
            .unwrap();
        assert_eq!(c.addressing(), Addressing::PathStyle);
        assert_eq!(c.region(), "cn-hangzhou");
    }

    #[test]
    fn addressing_and_region_defaults() {
        let c = OssClient::builder()
            .endpoint("https://oss-cn-shanghai.aliyuncs.com")
            .credentials(creds())
            .build()
            .unwrap();
        assert_eq!(c.addressing(), Addressing::VirtualHosted);
        assert_eq!(c.region(), "cn-shanghai");
        assert_eq!(c.signature_version(), SignatureVersion::V4);
        assert_eq!(
            c.url("bkt", Some("a b")).unwrap(),
            "https://bkt.oss-cn-shanghai.aliyuncs.com/a%20b"
        );
        let p = OssClient::builder()
            .endpoint("https://oss-cn-shanghai.aliyuncs.com")
            .credentials(creds())
            .path_style(true)
            .build()
            .unwrap();
        assert_eq!(
            p.url("bkt", Some("k")).unwrap(),
            "https://oss-cn-shanghai.aliyuncs.com/bkt/k"
        );
        let err = OssClient::builder()
            .endpoint("https://oss.example.com")
            .credentials(creds())
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("no region"), "{err}");
        let err = OssClient::builder()
            .region("cn-hangzhou")
            .credentials(creds())
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("no endpoint"), "{err}");
        let err = OssClient::builder()
            .endpoint("https://oss-cn-hangzhou.aliyuncs.com")
            .retry(RetryConfig {
                max_attempts: 0,
                ..Default::default()
            })
            .credentials(creds())
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("max_attempts"), "{err}");
    }

    #[test]
    fn debug_never_prints_secrets() {
        let b = OssClient::builder()
            .endpoint("https://oss-cn-hangzhou.aliyuncs.com")
            .credentials(creds());
        let c = b.clone().build().unwrap();
        for text in [format!("{b:?}"), format!("{c:?}")] {
            assert!(
                !text.contains("super-secret-value") && !text.contains("sts-token-value"),
                "{text}"
            );
            assert!(text.contains("AKID"));
        }
    }

    #[test]
    fn presigned_urls_carry_the_signature() {
        let c = OssClient::builder()
            .endpoint("https://oss-cn-hangzhou.aliyuncs.com")
            .credentials(creds())
            .build()
            .unwrap();
        let url = c
            .presign_get("bkt", "dir/a b.txt", Duration::from_secs(600))
            .unwrap();
        assert!(
            url.starts_with("https://bkt.oss-cn-hangzhou.aliyuncs.com/dir/a%20b.txt?"),
            "{url}"
        );
        for part in [
            "x-oss-signature-version=OSS4-HMAC-SHA256",
            "x-oss-expires=600",
            "x-oss-credential=AKID%2F",
            "x-oss-signature=",
        ] {
            assert!(url.contains(part), "{url} lacks {part}");
        }
        let v1 = OssClient::builder()
            .endpoint("https://oss-cn-hangzhou.aliyuncs.com")
            .credentials(Credentials::new("AKID", "sk"))
            .signature_version(SignatureVersion::V1)
            .build()
            .unwrap();
        let url = v1.presign_get("bkt", "k", Duration::from_secs(60)).unwrap();
        assert!(
            url.contains("OSSAccessKeyId=AKID")
                && url.contains("Expires=")
                && url.contains("Signature="),
            "{url}"
        );
    }

    #[test]
    fn bucket_and_key_validation() {
        for ok in ["abc", "my-bucket-1", &"a".repeat(63)] {
            assert!(check_bucket(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "-abc", "abc-", "ABC", "a_b", "a.b", &"a".repeat(64)] {
            let err = check_bucket(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        for ok in [
            "a",
            "dir/file.txt",
            "中文 +%",
            "a/.b/..c",
            &"k".repeat(1023),
        ] {
            assert!(check_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/abs",
            "\\win",
            "a/../b",
            "./a",
            "a/.",
            &"k".repeat(1024),
        ] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }
}
