//! Retries against injected faults: 503s, dropped connections, throttling delays, clock skew,
//! truncated bodies and CRC mismatches. The emulator's counters prove how many requests the
//! client really sent, and every test checks the data that ended up stored or read.

use crate::support::oss_client_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry::crc64;
use ferry::oss::*;
use futures_util::{StreamExt, stream};
use oss_client_support::*;
use oss_emulator::FaultRule;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn bytes_uploads_recover_from_503s() {
    let emu = emulator().await;
    let client = client(&emu);
    emu.add_fault(FaultRule::error("PutObject", 503).count(2))
        .unwrap();
    let bytes = seeded(1, 200_000);
    let out = client
        .put_object(
            BUCKET,
            "k",
            RequestBody::from_bytes(bytes.clone()),
            &ObjectOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.crc64, crc64::checksum(&bytes));
    let c = emu.counters();
    assert_eq!(
        c.object(BUCKET, "k", "PutObject"),
        3,
        "two failures, then success"
    );
    assert_eq!(c.status("PutObject", 503), 2);
    assert_eq!(c.status("PutObject", 200), 1);
    assert_eq!(emu.object_bytes(BUCKET, "k").await.unwrap(), bytes);
    emu.shutdown().await;
}

#[tokio::test]
async fn requests_recover_from_connection_resets() {
    let emu = emulator().await;
    let client = client(&emu);
    let bytes = seeded(2, 150_000);
    client
        .put_object(
            BUCKET,
            "r",
            RequestBody::from_bytes(bytes.clone()),
            &ObjectOptions::default(),
        )
        .await
        .unwrap();

    emu.add_fault(FaultRule::reset("GetObject").count(2))
        .unwrap();
    let got = client
        .get_object(BUCKET, "r", &GetObjectOptions::default())
        .await
        .unwrap();
    assert_eq!(got.body.collect().await.unwrap(), bytes);
    assert_eq!(emu.counters().object(BUCKET, "r", "GetObject"), 3);
    assert_eq!(emu.counters().status("GetObject", 200), 1);

    let id = client
        .initiate_multipart_upload(BUCKET, "mp", &ObjectOptions::default())
        .await
        .unwrap();
    emu.add_fault(FaultRule::reset("UploadPart").count(1))
        .unwrap();
    let part = client
        .upload_part(BUCKET, "mp", &id, 1, RequestBody::from_bytes(bytes.clone()))
        .await
        .unwrap();
    assert_eq!(part.crc64, crc64::checksum(&bytes));
    assert_eq!(emu.counters().object(BUCKET, "mp", "UploadPart"), 2);

    // The response is lost after the change was made: the retry must still converge.
    emu.add_fault(
        FaultRule::reset("CompleteMultipartUpload")
            .count(1)
            .after_response(),
    )
    .unwrap();
    let parts = CompleteParts::List(vec![CompletedPart {
        part_number: 1,
        etag: part.etag,
    }]);
    let result = client
        .complete_multipart_upload(BUCKET, "mp", &id, &parts, &CompleteOptions::default())
        .await;
    // OSS (and the emulator) answer NoSuchUpload to the retry of a completed upload; the object
    // is whole either way, which is what a caller then checks with HEAD.
    match result {
        Ok(out) => assert_eq!(out.crc64, Some(crc64::checksum(&bytes))),
        Err(e) => assert_eq!(e.code(), Some("NoSuchUpload"), "{e}"),
    }
    assert_eq!(
        emu.counters()
            .object(BUCKET, "mp", "CompleteMultipartUpload"),
        2
    );
    assert_eq!(
        client.head_object(BUCKET, "mp").await.unwrap().crc64,
        Some(crc64::checksum(&bytes))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn listing_and_xml_responses_are_retried() {
    let emu = emulator().await;
    let client = client(&emu);
    for i in 0..5 {
        client
            .put_object(
                BUCKET,
                &format!("l/{i}"),
                RequestBody::from_bytes(vec![i as u8]),
                &ObjectOptions::default(),
            )
            .await
            .unwrap();
    }
    emu.add_fault(FaultRule::error("ListObjectsV2", 500).count(1))
        .unwrap();
    let page = client
        .list_objects_v2(BUCKET, &ListObjectsOptions::default())
        .await
        .unwrap();
    assert_eq!(page.objects.len(), 5);
    assert_eq!(
        emu.counters().operation("ListObjectsV2"),
        2,
        "a 500, then a whole page"
    );

    emu.add_fault(FaultRule::truncate("ListObjectsV2").count(1))
        .unwrap();
    let page = client
        .list_objects_v2(BUCKET, &ListObjectsOptions::default())
        .await
        .unwrap();
    assert_eq!(page.objects.len(), 5);
    assert_eq!(
        emu.counters().operation("ListObjectsV2"),
        4,
        "a truncated page, then a whole one"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn retries_stop_after_max_attempts() {
    let emu = emulator().await;
    let client = client(&emu);
    emu.add_fault(FaultRule::error("HeadObject", 503).count(100))
        .unwrap();
    let err = client.head_object(BUCKET, "k").await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(err.is_retryable(), "the caller may try again later");
    assert_eq!(
        emu.counters().operation("HeadObject"),
        fast_retry().max_attempts as u64
    );

    let once = builder(&emu)
        .retry(RetryConfig::disabled())
        .build()
        .unwrap();
    emu.reset_counters();
    once.head_object(BUCKET, "k").await.unwrap_err();
    assert_eq!(emu.counters().operation("HeadObject"), 1);

    emu.clear_faults();
    emu.reset_counters();
    let err = client.head_object(BUCKET, "k").await.unwrap_err();
    assert_eq!(err.code(), Some("NoSuchKey"));
    assert_eq!(
        emu.counters().operation("HeadObject"),
        1,
        "a missing key is not retried"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn qos_delay_is_the_minimum_wait() {
    let emu = emulator().await;
    let client = client(&emu); // backoff ≤ 50 ms
    emu.add_fault(
        FaultRule::error("PutObject", 503)
            .qos_delay(Duration::from_millis(600))
            .count(1),
    )
    .unwrap();
    let start = Instant::now();
    client
        .put_object(
            BUCKET,
            "q",
            RequestBody::from_bytes(&b"throttled"[..]),
            &ObjectOptions::default(),
        )
        .await
        .unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(600),
        "waited only {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    assert_eq!(emu.counters().operation("PutObject"), 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn one_shot_streams_are_never_replayed() {
    let emu = emulator().await;
    let client = client(&emu);
    let bytes = seeded(3, 300_000);
    let polled = Arc::new(AtomicUsize::new(0));
    let counter = polled.clone();
    let chunks: Vec<Bytes> = bytes.chunks(10_000).map(Bytes::copy_from_slice).collect();
    let body = stream::iter(chunks).map(move |c| {
        counter.fetch_add(c.len(), Ordering::SeqCst);
        Ok::<_, std::io::Error>(c)
    });
    emu.add_fault(FaultRule::error("PutObject", 503).count(1))
        .unwrap();
    let err = client
        .put_object(
            BUCKET,
            "once",
            RequestBody::from_stream(bytes.len() as u64, body),
            &ObjectOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(
        err.is_retryable(),
        "the caller re-opens its source and tries again"
    );
    assert_eq!(
        emu.counters().operation("PutObject"),
        1,
        "the stream was sent once"
    );
    assert!(
        polled.load(Ordering::SeqCst) <= bytes.len(),
        "no byte was read twice"
    );
    assert!(emu.object_info(BUCKET, "once").is_none());

    // The caller's retry with a fresh stream succeeds.
    let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
        .chunks(10_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let out = client
        .put_object(
            BUCKET,
            "once",
            RequestBody::from_stream(bytes.len() as u64, stream::iter(chunks)),
            &ObjectOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.crc64, crc64::checksum(&bytes));
    emu.shutdown().await;
}

#[tokio::test]
async fn failing_or_short_sources_fail_the_upload_with_a_body_error() {
    let emu = emulator().await;
    let client = client(&emu);
    let broken = stream::iter(vec![
        Ok(Bytes::from(seeded(4, 50_000))),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "source connection reset",
        )),
    ]);
    let err = client
        .put_object(
            BUCKET,
            "b",
            RequestBody::from_stream(100_000, broken),
            &ObjectOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Body { .. }), "{err:?}");
    assert!(err.to_string().contains("source connection reset"), "{err}");
    assert!(err.is_retryable());

    let short = stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(seeded(5, 10)))]);
    let err = client
        .put_object(
            BUCKET,
            "b",
            RequestBody::from_stream(20, short),
            &ObjectOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("10 of the declared 20"), "{err}");
    assert!(
        emu.object_info(BUCKET, "b").is_none(),
        "no truncated object is stored"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn clock_skew_is_learned_from_the_server_date() {
    let emu = emulator().await;
    let client = client(&emu);
    // The local clock is two hours behind: OSS refuses with RequestTimeTooSkewed.
    client.set_clock_offset(chrono::Duration::hours(-2));
    client
        .put_object(
            BUCKET,
            "skew",
            RequestBody::from_bytes(&b"on time"[..]),
            &ObjectOptions::default(),
        )
        .await
        .unwrap();
    let c = emu.counters();
    assert_eq!(c.status("PutObject", 403), 1);
    assert_eq!(c.status("PutObject", 200), 1);
    let offset = client.clock_offset().num_seconds().abs();
    assert!(
        offset <= 2,
        "the corrected clock is within 2 s of the server's, off by {offset} s"
    );

    // Clones share the correction: the next request is signed right the first time.
    let clone = client.clone();
    emu.reset_counters();
    clone.head_object(BUCKET, "skew").await.unwrap();
    assert_eq!(emu.counters().operation("HeadObject"), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn truncated_downloads_end_with_a_retryable_error() {
    let emu = emulator().await;
    let client = client(&emu);
    // Large enough that the response head is on the wire before the cut.
    let bytes = seeded(6, 4_000_000);
    client
        .put_object(
            BUCKET,
            "t",
            RequestBody::from_bytes(bytes.clone()),
            &ObjectOptions::default(),
        )
        .await
        .unwrap();
    emu.add_fault(
        FaultRule::truncate("GetObject")
            .after_bytes(2_000_000)
            .count(1),
    )
    .unwrap();
    let mut got = client
        .get_object(BUCKET, "t", &GetObjectOptions::default())
        .await
        .unwrap();
    let mut received = Vec::new();
    let err = loop {
        match got.body.next().await {
            Some(Ok(chunk)) => received.extend_from_slice(&chunk),
            Some(Err(e)) => break e,
            None => panic!(
                "a truncated body must not end cleanly ({} bytes)",
                received.len()
            ),
        }
    };
    assert!(err.is_retryable(), "{err:?}");
    assert!(received.len() <= 2_000_000 && bytes.starts_with(&received));
    assert_eq!(
        emu.counters().operation("GetObject"),
        1,
        "the body broke after the response head"
    );

    // Resume from where it stopped.
    let rest = GetObjectOptions {
        range: Some(ByteRange::from(received.len() as u64)),
        ..Default::default()
    };
    let tail = client
        .get_object(BUCKET, "t", &rest)
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap();
    received.extend_from_slice(&tail);
    assert_eq!(received, bytes);
    emu.shutdown().await;
}

/// A server that stores nothing and answers every PUT with a wrong CRC-64 the first `bad`
/// times. The emulator never lies about checksums, so this one case needs its own server.
async fn lying_server(bad: usize) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                loop {
                    let Some(body) = read_request(&mut sock).await else {
                        return;
                    };
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    let crc = if n < bad {
                        crc64::checksum(&body) ^ 1
                    } else {
                        crc64::checksum(&body)
                    };
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nx-oss-request-id: REQ{n}\r\nETag: \"E\"\r\nx-oss-hash-crc64ecma: {crc}\r\ncontent-length: 0\r\n\r\n"
                    );
                    if sock.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), requests)
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let mut chunk = vec![0u8; len - body.len()];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(body)
}

#[tokio::test]
async fn crc_mismatches_are_typed_and_retried_for_replayable_bodies() {
    let (endpoint, requests) = lying_server(1).await;
    let client = OssClient::builder()
        .endpoint(&endpoint)
        .region(REGION)
        .credentials(Credentials::new(AK, SK))
        .allow_http(true)
        .retry(fast_retry())
        .build()
        .unwrap();
    let bytes = seeded(7, 20_000);
    let out = client
        .put_object(
            BUCKET,
            "c",
            RequestBody::from_bytes(bytes.clone()),
            &ObjectOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.crc64, crc64::checksum(&bytes));
    assert_eq!(
        requests.load(Ordering::SeqCst),
        2,
        "the mismatch was retried once"
    );

    let (endpoint, requests) = lying_server(usize::MAX).await;
    let client = OssClient::builder()
        .endpoint(&endpoint)
        .region(REGION)
        .credentials(Credentials::new(AK, SK))
        .allow_http(true)
        .retry(fast_retry())
        .build()
        .unwrap();
    let chunks = vec![Ok::<_, std::io::Error>(Bytes::from(bytes.clone()))];
    let err = client
        .upload_part(
            BUCKET,
            "c",
            "U",
            1,
            RequestBody::from_stream(bytes.len() as u64, stream::iter(chunks)),
        )
        .await
        .unwrap_err();
    match &err {
        Error::ChecksumMismatch {
            client: c,
            server: s,
            request_id,
            ..
        } => {
            assert_eq!(*c, crc64::checksum(&bytes));
            assert_eq!(*s, crc64::checksum(&bytes) ^ 1);
            assert_eq!(request_id, "REQ0");
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert_eq!(requests.load(Ordering::SeqCst), 1, "a stream is not resent");
}
