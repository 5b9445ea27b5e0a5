//! The thinnest possible OSS requester: one signed reqwest call per operation, no retries, no
//! checksums. The emulator-ceiling benchmark uses it so that what it measures is the server, not
//! client-side work; ferry's own client is measured by the migration benchmarks.

use bytes::Bytes;
use chrono::Utc;
use ferry::oss::sign::{Signable, uri_encode_path};
use ferry::oss::{Credentials, SignatureVersion, Signer};
use futures_util::StreamExt;

#[derive(Clone)]
pub struct RawOss {
    http: reqwest::Client,
    endpoint: String,
    signer: Signer,
}

impl RawOss {
    pub fn new(endpoint: &str, access_key_id: &str, access_key_secret: &str, region: &str) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()
            .expect("a plain HTTP client builds");
        let signer = Signer::new(Credentials::new(access_key_id, access_key_secret), region, SignatureVersion::V4);
        RawOss { http, endpoint: endpoint.trim_end_matches('/').to_owned(), signer }
    }

    fn request(&self, method: reqwest::Method, bucket: &str, key: Option<&str>) -> reqwest::RequestBuilder {
        let headers = vec![("Content-Type".to_owned(), "application/octet-stream".to_owned())];
        let req = Signable { method: method.as_str(), bucket: Some(bucket), key, query: &[], headers: &headers };
        let signed = self.signer.sign_header(&req, Utc::now(), &[]);
        let url = match key {
            Some(k) => format!("{}/{bucket}/{}", self.endpoint, uri_encode_path(k)),
            None => format!("{}/{bucket}/", self.endpoint),
        };
        let mut builder = self.http.request(method, url);
        for (n, v) in headers.iter().chain(signed.headers.iter()) {
            builder = builder.header(n, v);
        }
        builder
    }

    pub async fn create_bucket(&self, bucket: &str) -> Result<(), String> {
        let resp = self.request(reqwest::Method::PUT, bucket, None).send().await.map_err(|e| e.to_string())?;
        check(resp).await.map(|_| ())
    }

    pub async fn put(&self, bucket: &str, key: &str, body: Bytes) -> Result<(), String> {
        let resp = self
            .request(reqwest::Method::PUT, bucket, Some(key))
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        check(resp).await.map(|_| ())
    }

    /// GETs the object and discards the body as it streams; returns the byte count.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<u64, String> {
        let resp = self.request(reqwest::Method::GET, bucket, Some(key)).send().await.map_err(|e| e.to_string())?;
        let resp = check(resp).await?;
        let mut stream = resp.bytes_stream();
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            n += chunk.map_err(|e| e.to_string())?.len() as u64;
        }
        Ok(n)
    }
}

async fn check(resp: reqwest::Response) -> Result<reqwest::Response, String> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    Err(format!("HTTP {status}: {body}"))
}
