//! How the S3 source classifies failures moto cannot produce: throttling, server errors, access
//! denied, truncated bodies, checksum mismatches, unreachable endpoints, a restore already
//! running. A small scripted HTTP server on 127.0.0.1 answers the real SDK's requests with canned
//! responses and records what it was asked, so the tests also check the requests' shape
//! (Range, If-Match, checksum mode, URL-encoded listings).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry::source::s3::S3Source;
use ferry::source::{
    GetRequest, ListRequest, RestoreOutcome, RestoreTier, Source, SourceError, SourceErrorKind,
};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SECRET: &str = "fake-s3-secret-never-printed";

/// What the scripted server answers to one request (given its method + path line and headers).
type Script = Arc<dyn Fn(&str) -> Vec<u8> + Send + Sync>;

struct FakeS3 {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeS3 {
    async fn start(script: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> FakeS3 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script: Script = Arc::new(script);
        let log = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, script.clone(), log.clone()));
            }
        });
        FakeS3 {
            addr,
            requests,
            task,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request per connection: read the head (and body), answer, close.
async fn serve(mut socket: TcpStream, script: Script, log: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let body_len = header(&head, "content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + body_len.min(1 << 20) {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    log.lock().unwrap().push(head.clone());
    let response = script(&head);
    let _ = socket.write_all(&response).await;
    let _ = socket.shutdown().await;
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A complete response with S3's request-id headers.
fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nx-amz-request-id: REQ-{}\r\nx-amz-id-2: EXT-ID-2\r\nConnection: close\r\nContent-Length: {}\r\n",
        status.split(' ').next().unwrap(),
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn s3_error(status: &str, code: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>scripted {code}</Message><RequestId>REQ-BODY</RequestId><HostId>EXT-ID-2</HostId></Error>"
    );
    response(
        status,
        &[("Content-Type", "application/xml")],
        body.as_bytes(),
    )
}

async fn source_for(fake: &FakeS3, max_attempts: u32) -> S3Source {
    source_at(fake.endpoint(), max_attempts).await
}

async fn source_at(endpoint: String, max_attempts: u32) -> S3Source {
    let mut config = ferry::testing::s3_config(endpoint, "us-east-1", "bkt", "AKIDFAKE", SECRET);
    config.max_attempts = max_attempts;
    config.fetch_tags = false;
    S3Source::new(config).await.unwrap()
}

async fn read_all(src: &S3Source, req: GetRequest<'_>) -> Result<Vec<u8>, SourceError> {
    let mut stream = src.get(req).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

fn assert_clean(err: &SourceError) {
    assert!(!err.to_string().contains(SECRET), "secret in error: {err}");
}

#[tokio::test]
async fn slow_down_is_throttled_after_the_sdk_retries() {
    let fake = FakeS3::start(|_| s3_error("503 Slow Down", "SlowDown")).await;
    let src = source_for(&fake, 3).await;
    let started = Instant::now();
    let err = read_all(
        &src,
        GetRequest {
            key: "k",
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Throttled, "{err}");
    assert!(err.is_retryable());
    assert!(
        err.message.contains("SlowDown") && err.message.contains("503"),
        "{err}"
    );
    assert!(
        err.message.contains("REQ-503") && err.message.contains("EXT-ID-2"),
        "request ids: {err}"
    );
    assert_eq!(
        fake.requests().len(),
        3,
        "max_attempts = 3 means three requests"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_clean(&err);
}

#[tokio::test]
async fn too_many_requests_is_throttled() {
    let fake = FakeS3::start(|_| s3_error("429 Too Many Requests", "TooManyRequests")).await;
    let src = source_for(&fake, 1).await;
    let err = src.head("k").await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Throttled, "{err}");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn server_errors_are_transient_and_retried() {
    let fake = FakeS3::start(|_| s3_error("500 Internal Server Error", "InternalError")).await;
    let src = source_for(&fake, 2).await;
    let err = src
        .list(&ListRequest {
            max_keys: 10,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Transient, "{err}");
    assert!(err.message.contains("InternalError"), "{err}");
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn access_denied_is_not_retried() {
    let fake = FakeS3::start(|head| {
        if head.starts_with("HEAD ") {
            response("403 Forbidden", &[], b"")
        } else {
            s3_error("403 Forbidden", "AccessDenied")
        }
    })
    .await;
    let src = source_for(&fake, 5).await;
    let get = read_all(
        &src,
        GetRequest {
            key: "k",
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(get.kind, SourceErrorKind::AccessDenied, "{get}");
    assert!(get.message.contains("AccessDenied"), "{get}");
    assert!(!get.is_retryable());
    // HEAD answers carry no body, so only the status says what happened.
    let head = src.head("k").await.unwrap_err();
    assert_eq!(head.kind, SourceErrorKind::AccessDenied, "{head}");
    assert_eq!(fake.requests().len(), 2, "no retries of a 403");
    assert_clean(&get);
}

#[tokio::test]
async fn invalid_object_state_needs_restore_and_409_restore_is_in_progress() {
    let fake = FakeS3::start(|head| {
        if head.starts_with("POST ") {
            s3_error("409 Conflict", "RestoreAlreadyInProgress")
        } else {
            s3_error("403 Forbidden", "InvalidObjectState")
        }
    })
    .await;
    let src = source_for(&fake, 3).await;
    let err = read_all(
        &src,
        GetRequest {
            key: "frozen",
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::NeedsRestore, "{err}");
    let outcome = src
        .restore("frozen", 7, RestoreTier::Expedited)
        .await
        .unwrap();
    assert_eq!(outcome, RestoreOutcome::AlreadyInProgress);
    let restore = fake
        .requests()
        .into_iter()
        .find(|r| r.starts_with("POST "))
        .unwrap();
    assert!(restore.starts_with("POST /bkt/frozen?restore"), "{restore}");
}

#[tokio::test]
async fn a_truncated_body_is_a_transient_stream_error() {
    let fake = FakeS3::start(|_| {
        let mut r = response(
            "200 OK",
            &[("Content-Type", "application/octet-stream")],
            &[7u8; 1000],
        );
        r.truncate(r.len() - 600); // promise 1000 bytes, send 400, hang up
        r
    })
    .await;
    let src = source_for(&fake, 1).await;
    let mut stream = src
        .get(GetRequest {
            key: "k",
            ..Default::default()
        })
        .await
        .unwrap();
    let mut received = 0;
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => received += chunk.len(),
            Err(e) => failure = Some(e),
        }
    }
    let err = failure.expect("the cut body must fail, not end quietly");
    assert_eq!(err.kind, SourceErrorKind::Transient, "{err}");
    assert!(received < 1000);
}

#[tokio::test]
async fn a_checksum_mismatch_on_a_whole_read_is_an_integrity_error() {
    // "hello" with a CRC32 header that belongs to other bytes.
    let fake = FakeS3::start(|head| {
        if header(head, "range").is_some() {
            response(
                "206 Partial Content",
                &[
                    ("Content-Range", "bytes 1-3/5"),
                    ("x-amz-checksum-crc32", "AAAAAA=="),
                ],
                b"ell",
            )
        } else {
            response("200 OK", &[("x-amz-checksum-crc32", "AAAAAA==")], b"hello")
        }
    })
    .await;
    let src = source_for(&fake, 1).await;
    let err = read_all(
        &src,
        GetRequest {
            key: "k",
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Integrity, "{err}");
    // A ranged read is not checked against the whole object's checksum.
    let part = read_all(
        &src,
        GetRequest {
            key: "k",
            range: Some(1..4),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(part, b"ell");
}

#[tokio::test]
async fn a_store_that_ignores_range_is_caught() {
    let fake = FakeS3::start(|_| response("200 OK", &[], b"the whole object")).await;
    let src = source_for(&fake, 1).await;
    let err = read_all(
        &src,
        GetRequest {
            key: "k",
            range: Some(4..9),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Permanent, "{err}");
    assert!(err.message.contains("ignored the Range"), "{err}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_transient() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let src = source_at(format!("http://{dead}"), 1).await;
    let err = src.head("k").await.unwrap_err();
    assert_eq!(err.kind, SourceErrorKind::Transient, "{err}");
    assert_clean(&err);
}

#[tokio::test]
async fn requests_carry_range_if_match_checksum_mode_and_url_encoding() {
    let fake = FakeS3::start(|head| {
        if head.starts_with("GET /bkt?") || head.starts_with("GET /bkt/?") {
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult><Name>bkt</Name><Prefix>a%20b</Prefix>\
                       <KeyCount>1</KeyCount><MaxKeys>2</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>\
                       <NextContinuationToken>tok+en/=</NextContinuationToken>\
                       <Contents><Key>a+b%2Bc%26%E2%9C%93</Key><Size>3</Size><ETag>&quot;abc&quot;</ETag><StorageClass>GLACIER</StorageClass></Contents>\
                       <CommonPrefixes><Prefix>a+b/</Prefix></CommonPrefixes></ListBucketResult>";
            response("200 OK", &[("Content-Type", "application/xml")], xml.as_bytes())
        } else if header(head, "range").is_some() {
            response("206 Partial Content", &[("Content-Range", "bytes 10-19/100")], &[1u8; 10])
        } else {
            response("200 OK", &[], b"body")
        }
    })
    .await;
    let src = source_for(&fake, 1).await;

    let page = src
        .list(&ListRequest {
            prefix: "a b".into(),
            delimiter: Some("/".into()),
            max_keys: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.objects[0].key, "a b+c&✓");
    assert_eq!(page.objects[0].etag.as_deref(), Some("abc"));
    assert_eq!(
        page.objects[0].archive,
        ferry::source::ArchiveState::Archived
    );
    assert_eq!(page.common_prefixes, ["a b/"]);
    assert_eq!(
        page.next.as_deref(),
        Some("tok+en/="),
        "continuation tokens are passed through untouched"
    );

    read_all(
        &src,
        GetRequest {
            key: "dir/k",
            range: Some(10..20),
            if_match: Some("abc"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    read_all(
        &src,
        GetRequest {
            key: "dir/k",
            version_id: Some("v1"),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let requests = fake.requests();
    let list = &requests[0];
    assert!(
        list.contains("encoding-type=url") && list.contains("list-type=2"),
        "{list}"
    );
    assert!(
        list.contains("max-keys=2") && list.contains("prefix=a%20b"),
        "{list}"
    );
    let ranged = &requests[1];
    assert_eq!(header(ranged, "range"), Some("bytes=10-19"));
    assert_eq!(header(ranged, "if-match"), Some("\"abc\""));
    assert_eq!(
        header(ranged, "x-amz-checksum-mode"),
        None,
        "ranged reads are not validated by the SDK"
    );
    let whole = &requests[2];
    assert!(
        whole.starts_with("GET /bkt/dir/k?") && whole.contains("versionId=v1"),
        "{whole}"
    );
    assert_eq!(header(whole, "x-amz-checksum-mode"), Some("ENABLED"));
    assert!(requests.iter().all(|r| !r.contains(SECRET)));
}
