//! A real moto server for tests that need Amazon S3 (or SQS, STS, …) on 127.0.0.1.
//!
//! moto stands in for AWS in ferry's tests because it runs locally, speaks the real wire
//! protocol and handles checksums, multipart, versioning and archive classes. This module starts
//! moto's server from the repo's virtualenv (`.venv`, made by `scripts/setup-tools`) on a free
//! port, waits until it answers, and stops it:
//!
//! * [`Moto::start`] gives a server owned by the caller, stopped on drop;
//! * [`Moto::shared`] gives one server per test binary, shared by its tests (use distinct
//!   bucket names per test).
//!
//! Either way moto runs under a small `sh` guard that kills it as soon as the test process's end
//! of a pipe closes, so a crashed or killed test binary (and a shared server, which Rust never
//! drops) leaves no moto behind.
//!
//! moto runs through `tests/support/moto_server.py`, which handles one S3 request at a time
//! so that conditional writes (If-Match, If-None-Match) are atomic, as they are on S3; plain
//! `moto_server` checks the condition and writes in two unlocked steps, and ferry's
//! compare-and-swap loops would lose an update now and then through moto's race. The same
//! launcher fails S3 requests on demand, as a flaky S3 would: [`Moto::inject_s3_fault`] adds a
//! rule (a burst of `503 SlowDown`, or a lost answer: the write happens, the client is told it
//! failed), for tests of ferry's state store under both. Env `MOTO_SERVER` runs another moto
//! binary instead (with plain moto's race, and no fault injection).
//!
//! Use it from a test module with `use crate::support::moto;`.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};

/// Access key and secret moto accepts (it does not check signatures by default).
pub const ACCESS_KEY_ID: &str = "moto-test-key";
pub const SECRET_ACCESS_KEY: &str = "moto-test-secret";
pub const REGION: &str = "us-east-1";

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The fault-injection endpoint of `tests/support/moto_server.py` (never passed to moto).
const FAULTS_PATH: &str = "/-/ferry/faults";
const FAULTS_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `moto_server`.
pub struct Moto {
    guard: Child,
    /// Closing this pipe tells the guard to stop moto.
    lifeline: Option<ChildStdin>,
    addr: SocketAddr,
    log: PathBuf,
}

/// The static keys moto accepts.
pub fn credentials() -> Credentials {
    Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "moto")
}

impl Moto {
    /// Starts a moto server owned by the caller. Panics with the fix when moto is not installed.
    pub fn start() -> Moto {
        let command = moto_command();
        let mut last_error = String::new();
        // A free port found by binding :0 can be taken before moto binds it; try a few.
        for _ in 0..3 {
            match Moto::spawn(&command) {
                Ok(moto) => return moto,
                Err(e) => last_error = e,
            }
        }
        panic!("moto_server did not start: {last_error}");
    }

    /// One moto server for the whole test binary, started on first use.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(Moto::start)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where moto's own log (one line per request) goes.
    pub fn log_path(&self) -> &PathBuf {
        &self.log
    }

    /// A plain SDK client for setting up and inspecting test data (path style, static keys,
    /// no automatic checksums).
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(credentials())
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// An SQS client for moto's queues.
    pub fn sqs_client(&self) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(credentials())
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    /// Calls one action of moto's SNS query API (`Action=CreateTopic&Name=…`) and returns the
    /// XML answer. ferry has no SNS client of its own; a test that wires S3 → SNS → SQS needs
    /// three calls, not an SDK. moto routes by the credential scope and checks no signature.
    pub async fn sns(&self, params: &[(&str, &str)]) -> String {
        let scope = format!("{ACCESS_KEY_ID}/20260101/{REGION}/sns/aws4_request");
        let auth = format!("AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=0");
        let encode = |v: &str| {
            percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let form: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let answer = reqwest::Client::new()
            .post(self.endpoint())
            .header("Authorization", auth)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.join("&"))
            .send()
            .await
            .expect("moto answers SNS");
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        assert!(status.is_success(), "SNS {params:?}: {status} {text}");
        text
    }

    /// Creates `bucket` (panics on failure, so a test fails at its setup line).
    pub async fn create_bucket(&self, bucket: &str) -> aws_sdk_s3::Client {
        let s3 = self.s3_client();
        s3.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "creating bucket {bucket}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            });
        s3
    }

    /// Adds a fault rule for S3 requests, as JSON (see `tests/support/moto_server.py`). Each S3
    /// request uses up one `count` of the first rule that matches it (by `method` and a
    /// `path_contains` fragment of `/bucket/key`, both optional) and gets the rule's S3 error
    /// (`status`, default 503; `code`, default SlowDown for 503 and InternalError otherwise).
    /// `"phase": "before"` (the default) keeps the request from moto; `"phase": "after"` lets
    /// moto do it and replaces its answer (a lost answer). For example
    /// `{"count": 3, "method": "PUT", "path_contains": "/state/", "phase": "after"}`.
    /// Panics when the server refuses the rule.
    pub fn inject_s3_fault(&self, rule: &str) {
        self.faults_request("POST", rule);
    }

    /// Removes every fault rule ([`Moto::s3_faults_injected`] keeps counting from where it
    /// was).
    pub fn clear_s3_faults(&self) {
        self.faults_request("DELETE", "");
    }

    /// How many S3 answers fault rules have replaced since the server started (all rules, all
    /// tests sharing the server).
    pub fn s3_faults_injected(&self) -> u64 {
        let body = self.faults_request("GET", "");
        let state: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {FAULTS_PATH} answered {body:?}: {e}"));
        state["injected"]
            .as_u64()
            .unwrap_or_else(|| panic!("GET {FAULTS_PATH} answered {body:?}: no injected count"))
    }

    /// One request to `FAULTS_PATH`; the answer's body. Panics unless moto answers 200.
    fn faults_request(&self, method: &str, body: &str) -> String {
        let context = format!("{method} {FAULTS_PATH} on moto at {}", self.addr);
        let mut stream = TcpStream::connect_timeout(&self.addr, FAULTS_TIMEOUT)
            .unwrap_or_else(|e| panic!("{context}: connecting: {e}"));
        let _ = stream.set_read_timeout(Some(FAULTS_TIMEOUT));
        let _ = stream.set_write_timeout(Some(FAULTS_TIMEOUT));
        let request = format!(
            "{method} {FAULTS_PATH} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .unwrap_or_else(|e| panic!("{context}: sending: {e}"));
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .unwrap_or_else(|e| panic!("{context}: reading the answer: {e}"));
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, content) = answer
            .split_once("\r\n\r\n")
            .unwrap_or((answer.as_str(), ""));
        let status_line = head.lines().next().unwrap_or_default();
        if status_line.split(' ').nth(1) != Some("200") {
            panic!(
                "{context}: answered {status_line:?}: {content} (a moto_server other than \
                 tests/support/moto_server.py, e.g. MOTO_SERVER's, has no fault injection)"
            );
        }
        content.to_owned()
    }

    fn spawn(command: &[PathBuf]) -> Result<Moto, String> {
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = log_dir().join(format!("moto-{port}.log"));
        let log_file =
            File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
        // The guard: runs moto in the background and kills it when stdin reaches EOF, i.e. when
        // this process drops the pipe or dies. It exits when moto does.
        let script = r#"exec 3<&0
"$0" "$@" </dev/null 3<&- &
pid=$!
{ read -r _ <&3; kill "$pid" 2>/dev/null; } &
wait "$pid""#;
        let mut guard = Command::new("sh")
            .arg("-c")
            .arg(script)
            .args(command)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("running {}: {e}", command[0].display()))?;
        let lifeline = guard.stdin.take();
        let mut moto = Moto {
            guard,
            lifeline,
            addr,
            log,
        };
        moto.wait_ready()?;
        Ok(moto)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.guard.try_wait() {
                return Err(format!(
                    "moto_server exited with {status}; log:\n{}",
                    self.log_tail()
                ));
            }
            if probe(self.addr) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "moto_server not ready on {} after {READY_TIMEOUT:?}; log:\n{}",
            self.addr,
            self.log_tail()
        ))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        drop(self.lifeline.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.guard.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.guard.kill();
        let _ = self.guard.wait();
    }
}

/// `MOTO_SERVER`, else the repo's `.venv/bin/python tests/support/moto_server.py`: the program
/// and its first arguments.
fn moto_command() -> Vec<PathBuf> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let command = match std::env::var_os("MOTO_SERVER") {
        Some(path) => vec![PathBuf::from(path)],
        None => vec![
            repo.join(".venv/bin/python"),
            repo.join("tests/support/moto_server.py"),
        ],
    };
    if let Some(missing) = command.iter().find(|p| !p.is_file()) {
        panic!(
            "{} not found: run `scripts/setup-tools` to create the repo's .venv \
             (or set MOTO_SERVER to a moto_server binary)",
            missing.display()
        );
    }
    command
}

fn log_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// True when moto answers `GET /moto-api/` with 200.
fn probe(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET /moto-api/ HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

/// Uploads `parts` as one multipart object (each part with `algorithm`'s checksum, when
/// given) and returns its ETag without quotes.
pub async fn multipart_put(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    parts: &[&[u8]],
    algorithm: Option<aws_sdk_s3::types::ChecksumAlgorithm>,
) -> String {
    let upload = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .set_checksum_algorithm(algorithm.clone())
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    let mut done = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let number = i as i32 + 1;
        let out = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .set_checksum_algorithm(algorithm.clone())
            .body(aws_sdk_s3::primitives::ByteStream::from(part.to_vec()))
            .send()
            .await
            .unwrap();
        done.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .set_checksum_crc32_c(out.checksum_crc32_c().map(str::to_owned))
                .set_checksum_crc64_nvme(out.checksum_crc64_nvme().map(str::to_owned))
                .build(),
        );
    }
    let out = s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.e_tag().unwrap().trim_matches('"').to_owned()
}
