//! Test helpers: an emulator per test, a signing client built on ferry's `Signer` (OSS V4/V1),
//! an independent AWS SigV4 signer for the S3 dialect, and small XML/JSON readers.
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use ferry::oss::Credentials;
use ferry::oss::sign::{Signable, SignatureVersion, Signer, uri_encode, uri_encode_path};
use hmac::{Hmac, KeyInit, Mac};
use oss_emulator::Emulator;
use sha2::{Digest, Sha256};

pub const AK: &str = "test-ak";
pub const SK: &str = "test-secret-key";
pub const REGION: &str = "cn-hangzhou";

/// An emulator with one bucket (`bkt`), short restore delay and a fixed fault seed.
pub async fn emulator() -> Emulator {
    let emu = Emulator::builder()
        .credentials(AK, SK)
        .region(REGION)
        .restore_delay(Duration::from_millis(300))
        .fault_seed(7)
        .start()
        .await
        .expect("emulator starts");
    emu.create_bucket("bkt").unwrap();
    emu
}

pub fn signer(version: SignatureVersion) -> Signer {
    Signer::new(Credentials::new(AK, SK), REGION, version)
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// The first `<tag>` element's text (XML-unescaped).
    pub fn xml(&self, tag: &str) -> Option<String> {
        xml_all(&self.text(), tag).into_iter().next()
    }

    pub fn xml_all(&self, tag: &str) -> Vec<String> {
        xml_all(&self.text(), tag)
    }

    /// The error code of an error document.
    pub fn code(&self) -> String {
        self.xml("Code").unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// Texts of every `<tag>…</tag>` in document order.
pub fn xml_all(doc: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(unescape(&after[..j]));
        rest = &after[j + close.len()..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// A request to the emulator, signed with ferry's `Signer` when sent.
pub struct Req {
    http: reqwest::Client,
    endpoint: String,
    signer: Option<Signer>,
    method: String,
    bucket: Option<String>,
    key: Option<String>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Bytes,
    time: DateTime<Utc>,
    additional: Vec<String>,
}

/// A client for one emulator and one signature version.
#[derive(Clone)]
pub struct Oss {
    pub http: reqwest::Client,
    pub endpoint: String,
    pub signer: Signer,
}

impl Oss {
    pub fn new(emu: &Emulator, version: SignatureVersion) -> Oss {
        Oss {
            http: reqwest::Client::new(),
            endpoint: emu.endpoint(),
            signer: signer(version),
        }
    }

    pub fn v4(emu: &Emulator) -> Oss {
        Oss::new(emu, SignatureVersion::V4)
    }

    pub fn v1(emu: &Emulator) -> Oss {
        Oss::new(emu, SignatureVersion::V1)
    }

    pub fn req(&self, method: &str, bucket: Option<&str>, key: Option<&str>) -> Req {
        Req {
            http: self.http.clone(),
            endpoint: self.endpoint.clone(),
            signer: Some(self.signer.clone()),
            method: method.to_owned(),
            bucket: bucket.map(str::to_owned),
            key: key.map(str::to_owned),
            query: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
            time: Utc::now(),
            additional: Vec::new(),
        }
    }

    pub fn object(&self, method: &str, key: &str) -> Req {
        self.req(method, Some("bkt"), Some(key))
    }

    pub fn bucket(&self, method: &str, bucket: &str) -> Req {
        self.req(method, Some(bucket), None)
    }

    pub async fn put(&self, key: &str, data: impl Into<Bytes>) -> Resp {
        self.object("PUT", key).body(data).send().await
    }

    pub async fn get(&self, key: &str) -> Resp {
        self.object("GET", key).send().await
    }
}

pub fn query_string(query: &[(String, String)]) -> String {
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

impl Req {
    pub fn query(mut self, k: &str, v: &str) -> Req {
        self.query.push((k.to_owned(), v.to_owned()));
        self
    }

    pub fn header(mut self, k: &str, v: &str) -> Req {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }

    pub fn body(mut self, b: impl Into<Bytes>) -> Req {
        self.body = b.into();
        self
    }

    /// Signs as if the client clock said `t`.
    pub fn at(mut self, t: DateTime<Utc>) -> Req {
        self.time = t;
        self
    }

    pub fn additional(mut self, names: &[&str]) -> Req {
        self.additional = names.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn unsigned(mut self) -> Req {
        self.signer = None;
        self
    }

    pub fn signed_by(mut self, signer: Signer) -> Req {
        self.signer = Some(signer);
        self
    }

    fn url(&self, query: &[(String, String)]) -> String {
        let mut url = format!("{}/", self.endpoint);
        if let Some(b) = &self.bucket {
            url.push_str(b);
            url.push('/');
        }
        if let Some(k) = &self.key {
            url.push_str(&uri_encode_path(k));
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query_string(query));
        }
        url
    }

    fn signable<'a>(
        &'a self,
        query: &'a [(String, String)],
        headers: &'a [(String, String)],
    ) -> Signable<'a> {
        Signable {
            method: &self.method,
            bucket: self.bucket.as_deref(),
            key: self.key.as_deref(),
            query,
            headers,
        }
    }

    /// A presigned URL for this request.
    pub fn presign(&self, expires: Duration) -> String {
        let signer = self.signer.as_ref().expect("presigning needs a signer");
        let additional: Vec<&str> = self.additional.iter().map(String::as_str).collect();
        let added = signer.presign(
            &self.signable(&self.query, &self.headers),
            self.time,
            expires,
            &additional,
        );
        let mut query = self.query.clone();
        query.extend(added);
        self.url(&query)
    }

    pub async fn send(self) -> Resp {
        let mut headers = self.headers.clone();
        if let Some(signer) = &self.signer {
            let additional: Vec<&str> = self.additional.iter().map(String::as_str).collect();
            let host = self.endpoint.trim_start_matches("http://").to_owned();
            let mut with_host = headers.clone();
            if !additional.is_empty() {
                with_host.push(("host".to_owned(), host));
            }
            let signed = signer.sign_header(
                &self.signable(&self.query, &with_host),
                self.time,
                &additional,
            );
            headers.extend(signed.headers);
        }
        let url = self.url(&self.query);
        send_raw(&self.http, &self.method, &url, &headers, self.body).await
    }
}

pub async fn send_raw(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Bytes,
) -> Resp {
    let mut rb = http.request(method.parse().expect("method"), url);
    for (k, v) in headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    let resp = rb
        .body(body)
        .send()
        .await
        .expect("request reaches the emulator");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap_or_default();
    Resp {
        status,
        headers,
        body,
    }
}

pub async fn get_url(url: &str) -> Resp {
    send_raw(&reqwest::Client::new(), "GET", url, &[], Bytes::new()).await
}

pub fn md5_b64(data: &[u8]) -> String {
    use base64::Engine;
    use md5::Md5;
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}

pub fn md5_hex_upper(data: &[u8]) -> String {
    use md5::Md5;
    hex::encode_upper(Md5::digest(data))
}

/// Deterministic test data.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64 * 31 + seed as u64) % 251) as u8)
        .collect()
}

// ----- admin ---------------------------------------------------------------------------------

pub async fn admin(emu: &Emulator, method: &str, path: &str, body: &str) -> Resp {
    let url = format!("{}/-/admin/{path}", emu.endpoint());
    let headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    send_raw(
        &reqwest::Client::new(),
        method,
        &url,
        &headers,
        Bytes::from(body.to_owned()),
    )
    .await
}

// ----- an independent AWS SigV4 signer (S3 rules) --------------------------------------------

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Signs an S3 request: returns the headers to send (host is implied by the URL).
#[allow(clippy::too_many_arguments)]
pub fn sigv4_headers(
    method: &str,
    host: &str,
    path: &str,
    query: &[(String, String)],
    extra: &[(String, String)],
    payload_hash: &str,
    region: &str,
    secret: &str,
    t: DateTime<Utc>,
) -> Vec<(String, String)> {
    let amz_date = t.format("%Y%m%dT%H%M%SZ").to_string();
    let date = &amz_date[..8];
    let mut headers: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    headers.push(("host".into(), host.into()));
    headers.push(("x-amz-date".into(), amz_date.clone()));
    headers.push(("x-amz-content-sha256".into(), payload_hash.into()));
    headers.sort();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let mut q: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    q.sort();
    let cq = q
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let canonical = format!(
        "{method}\n{}\n{cq}\n{canonical_headers}\n{}\n{payload_hash}",
        uri_encode_path(path),
        signed.join(";")
    );
    let scope = format!("{date}/{region}/s3/aws4_request");
    let sts = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let k = hmac(format!("AWS4{secret}").as_bytes(), date);
    let k = hmac(&k, region);
    let k = hmac(&k, "s3");
    let k = hmac(&k, "aws4_request");
    let sig = hex::encode(hmac(&k, &sts));
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={AK}/{scope}, SignedHeaders={}, Signature={sig}",
        signed.join(";")
    );
    let mut out: Vec<(String, String)> = headers.into_iter().filter(|(k, _)| k != "host").collect();
    out.push(("authorization".into(), auth));
    out
}

/// A small S3 client over the independent signer.
pub struct S3 {
    pub http: reqwest::Client,
    pub endpoint: String,
    pub region: String,
    pub secret: String,
}

impl S3 {
    pub fn new(emu: &Emulator) -> S3 {
        S3 {
            http: reqwest::Client::new(),
            endpoint: emu.endpoint(),
            region: REGION.into(),
            secret: SK.into(),
        }
    }

    /// Path-style request; `path` is the decoded `/bucket/key`.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        let body: Bytes = body.into();
        let hash = sha256_hex(&body);
        self.send_with_hash(method, path, query, headers, body, &hash)
            .await
    }

    pub async fn send_with_hash(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: Bytes,
        payload_hash: &str,
    ) -> Resp {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let extra: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let host = self.endpoint.trim_start_matches("http://");
        let signed = sigv4_headers(
            method,
            host,
            path,
            &query,
            &extra,
            payload_hash,
            &self.region,
            &self.secret,
            Utc::now(),
        );
        let mut url = format!("{}{}", self.endpoint, uri_encode_path(path));
        if !query.is_empty() {
            url.push('?');
            url.push_str(
                &query
                    .iter()
                    .map(|(k, v)| format!("{}={}", uri_encode(k), uri_encode(v)))
                    .collect::<Vec<_>>()
                    .join("&"),
            );
        }
        send_raw(&self.http, method, &url, &signed, body).await
    }
}
