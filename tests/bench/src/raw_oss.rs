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
    region: String,
}

impl RawOss {
    pub fn new(endpoint: &str, access_key_id: &str, access_key_secret: &str, region: &str) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()
            .expect("a plain HTTP client builds");
        let signer = Signer::new(
            Credentials::new(access_key_id, access_key_secret),
            region,
            SignatureVersion::V4,
        );
        RawOss {
            http,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            signer,
            region: region.to_owned(),
        }
    }

    fn request(
        &self,
        method: reqwest::Method,
        bucket: &str,
        key: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let headers = vec![(
            "Content-Type".to_owned(),
            "application/octet-stream".to_owned(),
        )];
        let req = Signable {
            method: method.as_str(),
            bucket: Some(bucket),
            key,
            query: &[],
            headers: &headers,
        };
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
        let resp = self
            .request(reqwest::Method::PUT, bucket, None)
            .send()
            .await
            .map_err(|e| e.to_string())?;
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

    /// PUTs `len` reproducible pseudo-random bytes generated on the fly, 1 MiB at a time, so
    /// seeding a 1 GiB object never holds it in memory.
    pub async fn put_generated(&self, bucket: &str, key: &str, len: u64) -> Result<(), String> {
        const CHUNK: u64 = 1 << 20;
        let chunks = futures_util::stream::iter((0..len.div_ceil(CHUNK)).map(move |i| {
            let n = CHUNK.min(len - i * CHUNK) as usize;
            Ok::<_, std::io::Error>(Bytes::from(ferry::testing::data::seeded(i, n)))
        }));
        let resp = self
            .request(reqwest::Method::PUT, bucket, Some(key))
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        check(resp).await.map(|_| ())
    }

    /// PUTs `len` bytes that `chunk(start, n)` produces as they are sent, 1 MiB at a time (the
    /// soak's reproducible objects, never held whole in memory).
    pub async fn put_chunked<F>(
        &self,
        bucket: &str,
        key: &str,
        len: u64,
        chunk: F,
    ) -> Result<(), String>
    where
        F: Fn(u64, usize) -> Vec<u8> + Send + Sync + 'static,
    {
        const CHUNK: u64 = 1 << 20;
        let chunks = futures_util::stream::iter((0..len.div_ceil(CHUNK)).map(move |i| {
            let n = CHUNK.min(len - i * CHUNK) as usize;
            Ok::<_, std::io::Error>(Bytes::from(chunk(i * CHUNK, n)))
        }));
        let resp = self
            .request(reqwest::Method::PUT, bucket, Some(key))
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        check(resp).await.map(|_| ())
    }

    /// GETs the object and discards the body as it streams; returns the byte count.
    pub async fn get(&self, bucket: &str, key: &str) -> Result<u64, String> {
        let resp = self
            .request(reqwest::Method::GET, bucket, Some(key))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let resp = check(resp).await?;
        let mut stream = resp.bytes_stream();
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            n += chunk.map_err(|e| e.to_string())?.len() as u64;
        }
        Ok(n)
    }
}

impl RawOss {
    /// GETs `key` from `src` and PUTs the same byte stream here: no checksums, no retries.
    pub async fn pipe_from(
        &self,
        src: &RawOss,
        src_bucket: &str,
        dst_bucket: &str,
        key: &str,
    ) -> Result<(), String> {
        let resp = src
            .request(reqwest::Method::GET, src_bucket, Some(key))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let resp = check(resp).await?;
        let len = resp
            .content_length()
            .ok_or("the source sent no Content-Length")?;
        let body = reqwest::Body::wrap_stream(resp.bytes_stream());
        let resp = self
            .request(reqwest::Method::PUT, dst_bucket, Some(key))
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        check(resp).await.map(|_| ())
    }

    /// How many objects are under `prefix` (through ferry's client, which pages and decodes).
    pub async fn count(&self, bucket: &str, prefix: &str) -> Result<usize, String> {
        let client = ferry::oss::OssClient::builder()
            .endpoint(&self.endpoint)
            .region(&self.region)
            .credentials(self.signer.credentials.clone())
            .allow_http(true)
            .build()
            .map_err(|e| e.to_string())?;
        let mut options = ferry::oss::ListObjectsOptions {
            prefix: Some(prefix.to_owned()),
            max_keys: Some(1000),
            ..Default::default()
        };
        let mut n = 0;
        loop {
            let page = client
                .list_objects_v2(bucket, &options)
                .await
                .map_err(|e| e.to_string())?;
            n += page.objects.len();
            match page.next_continuation_token.filter(|_| page.is_truncated) {
                Some(t) => options.continuation_token = Some(t),
                None => return Ok(n),
            }
        }
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
