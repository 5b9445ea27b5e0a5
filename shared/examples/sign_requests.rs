//! Signs requests read as JSON lines on stdin with ferry's OSS signer and prints one JSON line per
//! request: the headers ferry adds (Authorization, dates, token) or the query parameters of a
//! presigned URL, plus the string that was signed.
//!
//! It exists so tests outside Rust (tests/sdk-interop) can compare ferry's signatures with the
//! official Alibaba SDKs request by request:
//!
//! ```text
//! cargo run -q -p ferry --example sign_requests < requests.jsonl
//! ```
//!
//! Input line (`key`, `bucket`, `security_token` may be null; lists may be omitted):
//!
//! ```json
//! {"id": 7, "version": "v4", "method": "GET", "bucket": "b", "key": "a b.txt",
//!  "query": [["uploadId", "x"]], "headers": [["Content-Type", "text/plain"]],
//!  "access_key_id": "ak", "access_key_secret": "sk", "security_token": null,
//!  "region": "cn-hangzhou", "time": 1702743657, "presign": false, "expires": 0,
//!  "additional_headers": ["range"]}
//! ```
//!
//! Output line: `{"id":7,"ok":true,"authorization":"…","headers":[[…]],"query":[[…]],
//! "string_to_sign":"…"}` or `{"id":7,"ok":false,"error":"…"}` for a line that cannot be signed.
//! Keys and query values are decoded (raw) strings, as `Signable` expects.

use std::io::{self, BufRead, Write};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use ferry::oss::sign::{
    Signable, UNSIGNED_PAYLOAD, header, v1_string_to_sign, v4_additional_headers,
    v4_canonical_request, v4_datetime, v4_scope, v4_string_to_sign,
};
use ferry::oss::{Credentials, SignatureVersion, Signer};
use serde::{Deserialize, Serialize};

/// One request to sign, as the test suite writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    id: Option<serde_json::Value>,
    version: SignatureVersion,
    method: String,
    bucket: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    query: Vec<(String, String)>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    access_key_id: String,
    access_key_secret: String,
    #[serde(default)]
    security_token: Option<String>,
    region: String,
    time: i64,
    #[serde(default)]
    presign: bool,
    #[serde(default)]
    expires: u64,
    #[serde(default)]
    additional_headers: Vec<String>,
}

/// ferry's answer for one request.
#[derive(Serialize, Default)]
struct Output {
    id: Option<serde_json::Value>,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The Authorization header (header signing only).
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization: Option<String>,
    /// Every header the signer adds (header signing only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    headers: Vec<(String, String)>,
    /// The query parameters a presigned URL appends (presigning only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    query: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    string_to_sign: Option<String>,
}

fn main() {
    let stdin = io::stdin();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for (index, line) in stdin.lock().lines().enumerate() {
        let number = index + 1;
        let result = match line {
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => sign_line(&line, number),
            Err(e) => failure(None, format!("line {number}: cannot read stdin: {e}")),
        };
        let text = serde_json::to_string(&result).unwrap_or_else(|e| {
            format!("{{\"ok\":false,\"error\":\"line {number}: cannot encode the result: {e}\"}}")
        });
        if writeln!(out, "{text}").is_err() {
            // The reader went away (closed pipe); nothing left to report to.
            return;
        }
    }
    let _ = out.flush();
}

fn failure(id: Option<serde_json::Value>, error: String) -> Output {
    Output {
        id,
        ok: false,
        error: Some(error),
        ..Output::default()
    }
}

fn sign_line(line: &str, number: usize) -> Output {
    let input: Input = match serde_json::from_str(line) {
        Ok(input) => input,
        Err(e) => {
            return failure(
                None,
                format!(
                    "line {number}: not a valid request ({e}); see the input format in examples/sign_requests.rs"
                ),
            );
        }
    };
    let id = input.id.clone();
    match sign(&input) {
        Ok(output) => Output { id, ..output },
        Err(e) => failure(id, format!("line {number}: {e}")),
    }
}

fn validate(input: &Input) -> Result<DateTime<Utc>, String> {
    if input.method.is_empty() || !input.method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "field `method` is {:?}; use an upper-case HTTP method such as GET",
            input.method
        ));
    }
    if input.access_key_id.is_empty() || input.access_key_secret.is_empty() {
        return Err("fields `access_key_id` and `access_key_secret` must not be empty".to_owned());
    }
    if input.region.is_empty() {
        return Err("field `region` is empty; use a region id such as cn-hangzhou".to_owned());
    }
    if input.key.is_some() && input.bucket.is_none() {
        return Err(
            "field `key` is set but `bucket` is null; an object request needs its bucket"
                .to_owned(),
        );
    }
    Utc.timestamp_opt(input.time, 0)
        .single()
        .ok_or_else(|| format!("field `time` is {}; use Unix seconds", input.time))
}

fn sign(input: &Input) -> Result<Output, String> {
    let now = validate(input)?;
    let mut credentials =
        Credentials::new(input.access_key_id.clone(), input.access_key_secret.clone());
    if let Some(token) = &input.security_token {
        credentials = credentials.with_security_token(token.clone());
    }
    let signer = Signer::new(credentials, input.region.clone(), input.version);
    let req = Signable {
        method: &input.method,
        bucket: input.bucket.as_deref(),
        key: input.key.as_deref(),
        query: &input.query,
        headers: &input.headers,
    };
    let additional: Vec<&str> = input
        .additional_headers
        .iter()
        .map(String::as_str)
        .collect();
    if input.presign {
        let query = signer.presign(&req, now, Duration::from_secs(input.expires), &additional);
        let string_to_sign = presign_string_to_sign(&signer, &req, now, &query, &additional);
        return Ok(Output {
            ok: true,
            query,
            string_to_sign: Some(string_to_sign),
            ..Output::default()
        });
    }
    let signed = signer.sign_header(&req, now, &additional);
    let authorization = header(&signed.headers, "authorization").map(str::to_owned);
    Ok(Output {
        ok: true,
        authorization,
        headers: signed.headers,
        string_to_sign: Some(signed.string_to_sign),
        ..Output::default()
    })
}

/// `Signer::presign` returns only the URL parameters; the string it signed is rebuilt here from
/// the same public pieces so a mismatch with an SDK can be read, not just detected.
fn presign_string_to_sign(
    signer: &Signer,
    req: &Signable<'_>,
    now: DateTime<Utc>,
    added: &[(String, String)],
    additional: &[&str],
) -> String {
    let mut query = req.query.to_vec();
    match signer.version {
        SignatureVersion::V4 => {
            query.extend(
                added
                    .iter()
                    .filter(|(k, _)| k != "x-oss-signature")
                    .cloned(),
            );
            let signable = Signable {
                query: &query,
                ..*req
            };
            let datetime = v4_datetime(now);
            let scope = v4_scope(&datetime[..8], &signer.region, &signer.product);
            let additional = v4_additional_headers(additional, req.headers);
            let canonical = v4_canonical_request(&signable, &additional, UNSIGNED_PAYLOAD);
            v4_string_to_sign(&datetime, &scope, &canonical)
        }
        SignatureVersion::V1 => {
            query.extend(added.iter().filter(|(k, _)| k == "security-token").cloned());
            let signable = Signable {
                query: &query,
                ..*req
            };
            let expires = header(added, "Expires").unwrap_or("");
            v1_string_to_sign(&signable, expires)
        }
    }
}
