//! Every class of OSS error, produced by the emulator over real sockets, arrives as a typed
//! error with the right code, status, request id and retry classification — and none of them
//! reveals the credentials.

use crate::support::oss_client_support;

use base64::Engine;
use ferry::oss::*;
use oss_client_support::*;

fn assert_service(err: &Error, status: u16, code: &str, retryable: bool) {
    let s = err
        .service()
        .unwrap_or_else(|| panic!("expected a service error {code}, got {err:?}"));
    assert_eq!((s.status, s.code.as_str()), (status, code), "{err}");
    assert!(
        !s.request_id.is_empty(),
        "every OSS error carries a request id: {err:?}"
    );
    assert_eq!(err.is_retryable(), retryable, "{code} retryable?");
    let text = err.to_string();
    for part in [code, &status.to_string(), &s.request_id] {
        assert!(text.contains(part), "Display {text:?} lacks {part}");
    }
    for text in [text, format!("{err:?}")] {
        assert!(!text.contains(SK), "the secret leaked: {text}");
    }
}

#[tokio::test]
async fn missing_keys_buckets_and_uploads() {
    let emu = emulator().await;
    let client = client(&emu);
    let err = client
        .get_object(BUCKET, "nope", &GetObjectOptions::default())
        .await
        .unwrap_err();
    assert_service(&err, 404, "NoSuchKey", false);
    assert!(
        err.service().unwrap().message.contains("does not exist"),
        "{err}"
    );
    assert!(
        !err.service().unwrap().ec.is_empty(),
        "EC is carried: {err:?}"
    );

    let err = client
        .list_objects_v2("ferry-missing", &ListObjectsOptions::default())
        .await
        .unwrap_err();
    assert_service(&err, 404, "NoSuchBucket", false);
    assert!(!err.service().unwrap().host_id.is_empty());

    let err = client
        .upload_part(
            BUCKET,
            "k",
            "0004B999EF5A239BB9138C6227D69F95",
            1,
            RequestBody::from_bytes(&b"x"[..]),
        )
        .await
        .unwrap_err();
    assert_service(&err, 404, "NoSuchUpload", false);
    emu.shutdown().await;
}

#[tokio::test]
async fn head_errors_are_decoded_from_the_x_oss_err_header() {
    let emu = emulator().await;
    let client = client(&emu);
    let err = client.head_object(BUCKET, "missing/key").await.unwrap_err();
    // HEAD responses have no body: the code and message can only come from `x-oss-err`.
    assert_service(&err, 404, "NoSuchKey", false);
    assert!(!err.service().unwrap().message.is_empty());
    let err = client.head_object("ferry-nobucket", "k").await.unwrap_err();
    assert_service(&err, 404, "NoSuchBucket", false);

    // The same header, read by hand, agrees.
    let url = client
        .presign(
            reqwest::Method::HEAD,
            BUCKET,
            "missing/key",
            &[],
            std::time::Duration::from_secs(60),
        )
        .unwrap();
    let resp = reqwest::Client::new().head(&url).send().await.unwrap();
    let raw = resp.headers()["x-oss-err"].to_str().unwrap().to_owned();
    let xml = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .unwrap(),
    )
    .unwrap();
    assert!(xml.contains("<Code>NoSuchKey</Code>"), "{xml}");
    emu.shutdown().await;
}

#[tokio::test]
async fn signature_mismatch_carries_the_servers_string_to_sign() {
    let emu = emulator().await;
    for version in [SignatureVersion::V4, SignatureVersion::V1] {
        let wrong = builder(&emu)
            .credentials(
                Credentials::new(AK, "not-the-secret").with_security_token("CAIS-token-value"),
            )
            .signature_version(version)
            .build()
            .unwrap();
        let err = wrong
            .put_object(
                BUCKET,
                "sig",
                RequestBody::from_bytes(&b"x"[..]),
                &ObjectOptions::default(),
            )
            .await
            .unwrap_err();
        assert_service(&err, 403, "SignatureDoesNotMatch", false);
        let s = err.service().unwrap();
        let server = s
            .string_to_sign
            .as_deref()
            .expect("OSS echoes its StringToSign");
        let client_side = s.client_string_to_sign.as_deref().unwrap();
        // Same request, same string — only the key differs, which is what the error means.
        assert_eq!(server, client_side, "{version:?}");
        if version == SignatureVersion::V1 {
            assert!(
                server.contains("x-oss-security-token:***"),
                "the token is redacted: {server}"
            );
        } else {
            assert!(server.starts_with("OSS4-HMAC-SHA256\n"), "{server}");
        }
        assert!(
            !format!("{err:?}").contains("CAIS-token-value"),
            "the STS token never shows"
        );
        assert!(!format!("{err:?}").contains("not-the-secret"));
        assert!(
            emu.object_info(BUCKET, "sig").is_none(),
            "no object was written"
        );
        assert_eq!(
            emu.counters().operation("PutObject"),
            1,
            "a refused signature is not retried"
        );
        emu.reset_counters();
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn wrong_region_and_wrong_key_id() {
    let emu = emulator().await;
    let beijing = builder(&emu).region("oss-cn-beijing").build().unwrap();
    let err = beijing.head_object(BUCKET, "k").await.unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    assert_eq!(err.code(), Some("InvalidArgument"));
    assert!(
        err.service()
            .unwrap()
            .message
            .to_lowercase()
            .contains("region"),
        "{err}"
    );
    assert!(!err.is_retryable());

    let stranger = builder(&emu)
        .credentials(Credentials::new("LTAI-unknown", SK))
        .build()
        .unwrap();
    let err = stranger
        .list_objects_v2(BUCKET, &ListObjectsOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err.status(), Some(400 | 403)), "{err}");
    assert_eq!(err.code(), Some("InvalidAccessKeyId"));
    assert!(!err.is_retryable());
    emu.shutdown().await;
}

#[tokio::test]
async fn invalid_digest_and_file_already_exists() {
    let emu = emulator().await;
    let client = client(&emu);
    let wrong_md5 = base64::engine::general_purpose::STANDARD.encode([0u8; 16]);
    let body = RequestBody::from_bytes(&b"payload"[..]).with_content_md5(wrong_md5);
    let err = client
        .put_object(BUCKET, "digest", body, &ObjectOptions::default())
        .await
        .unwrap_err();
    assert_service(&err, 400, "InvalidDigest", false);
    assert!(
        emu.object_info(BUCKET, "digest").is_none(),
        "nothing stored"
    );
    assert_eq!(
        emu.counters().operation("PutObject"),
        1,
        "InvalidDigest is not retried with the same bytes"
    );

    let keep = ObjectOptions {
        forbid_overwrite: true,
        ..Default::default()
    };
    client
        .put_object(
            BUCKET,
            "once",
            RequestBody::from_bytes(&b"first"[..]),
            &keep,
        )
        .await
        .unwrap();
    let err = client
        .put_object(
            BUCKET,
            "once",
            RequestBody::from_bytes(&b"second"[..]),
            &keep,
        )
        .await
        .unwrap_err();
    assert_service(&err, 409, "FileAlreadyExists", false);
    assert_eq!(
        emu.object_bytes(BUCKET, "once").await.unwrap(),
        &b"first"[..]
    );

    let id = client
        .initiate_multipart_upload(BUCKET, "once", &ObjectOptions::default())
        .await
        .unwrap();
    let p = client
        .upload_part(BUCKET, "once", &id, 1, RequestBody::from_bytes(&b"mp"[..]))
        .await
        .unwrap();
    let parts = CompleteParts::List(vec![CompletedPart {
        part_number: 1,
        etag: p.etag,
    }]);
    let opts = CompleteOptions {
        forbid_overwrite: true,
        ..Default::default()
    };
    let err = client
        .complete_multipart_upload(BUCKET, "once", &id, &parts, &opts)
        .await
        .unwrap_err();
    assert_service(&err, 409, "FileAlreadyExists", false);
    emu.shutdown().await;
}

#[tokio::test]
async fn multipart_completion_errors() {
    let emu = emulator().await;
    let client = client(&emu);
    let id = client
        .initiate_multipart_upload(BUCKET, "mp", &ObjectOptions::default())
        .await
        .unwrap();
    let small = client
        .upload_part(
            BUCKET,
            "mp",
            &id,
            1,
            RequestBody::from_bytes(seeded(1, 1_000)),
        )
        .await
        .unwrap();
    let last = client
        .upload_part(
            BUCKET,
            "mp",
            &id,
            2,
            RequestBody::from_bytes(seeded(2, 1_000)),
        )
        .await
        .unwrap();
    let part = |o: &UploadPartOutput| CompletedPart {
        part_number: o.part_number,
        etag: o.etag.clone(),
    };
    let none = CompleteOptions::default();

    let err = client
        .complete_multipart_upload(
            BUCKET,
            "mp",
            &id,
            &CompleteParts::List(vec![part(&small), part(&last)]),
            &none,
        )
        .await
        .unwrap_err();
    assert_service(&err, 400, "EntityTooSmall", false);

    let err = client
        .complete_multipart_upload(
            BUCKET,
            "mp",
            &id,
            &CompleteParts::List(vec![part(&last), part(&small)]),
            &none,
        )
        .await
        .unwrap_err();
    assert_service(&err, 400, "InvalidPartOrder", false);

    let forged = CompletedPart {
        part_number: 1,
        etag: "\"00000000000000000000000000000000\"".into(),
    };
    let err = client
        .complete_multipart_upload(BUCKET, "mp", &id, &CompleteParts::List(vec![forged]), &none)
        .await
        .unwrap_err();
    assert_service(&err, 400, "InvalidPart", false);

    let unknown = CompletedPart {
        part_number: 7,
        etag: small.etag.clone(),
    };
    let err = client
        .complete_multipart_upload(
            BUCKET,
            "mp",
            &id,
            &CompleteParts::List(vec![unknown]),
            &none,
        )
        .await
        .unwrap_err();
    assert_service(&err, 400, "InvalidPart", false);

    client
        .abort_multipart_upload(BUCKET, "mp", &id)
        .await
        .unwrap();
    let err = client
        .complete_multipart_upload(BUCKET, "mp", &id, &CompleteParts::All, &none)
        .await
        .unwrap_err();
    assert_service(&err, 404, "NoSuchUpload", false);
    emu.shutdown().await;
}

#[tokio::test]
async fn archived_objects_are_in_an_invalid_state_until_restored() {
    let emu = emulator().await;
    let client = client(&emu);
    let opts = ObjectOptions {
        storage_class: Some(StorageClass::Archive),
        ..Default::default()
    };
    client
        .put_object(
            BUCKET,
            "frozen",
            RequestBody::from_bytes(&b"ice"[..]),
            &opts,
        )
        .await
        .unwrap();
    let err = client
        .get_object(BUCKET, "frozen", &GetObjectOptions::default())
        .await
        .unwrap_err();
    assert_service(&err, 403, "InvalidObjectState", false);
    // HEAD still works and says why.
    let meta = client.head_object(BUCKET, "frozen").await.unwrap();
    assert!(meta.storage_class.unwrap().needs_restore());
    emu.shutdown().await;
}

#[tokio::test]
async fn client_side_checks_fail_before_sending() {
    let emu = emulator().await;
    let client = client(&emu);
    let cases: Vec<(Error, &str)> = vec![
        (
            client.head_object("Bad_Bucket", "k").await.unwrap_err(),
            "Bad_Bucket",
        ),
        (
            client.head_object(BUCKET, "").await.unwrap_err(),
            "object key",
        ),
        (
            client.head_object(BUCKET, "a/../b").await.unwrap_err(),
            "a/../b",
        ),
        (
            client
                .upload_part(BUCKET, "k", "id", 0, RequestBody::empty())
                .await
                .unwrap_err(),
            "part number",
        ),
        (
            client
                .list_objects_v2(
                    BUCKET,
                    &ListObjectsOptions {
                        max_keys: Some(5000),
                        ..Default::default()
                    },
                )
                .await
                .unwrap_err(),
            "5000",
        ),
        (
            {
                let mut o = ObjectOptions::default();
                o.metadata.insert("bad name".into(), "v".into());
                client
                    .put_object(BUCKET, "k", RequestBody::empty(), &o)
                    .await
                    .unwrap_err()
            },
            "bad name",
        ),
        (
            {
                let o = ObjectOptions {
                    content_type: Some("text/plain\r\nx-evil: 1".into()),
                    ..Default::default()
                };
                client
                    .put_object(BUCKET, "k", RequestBody::empty(), &o)
                    .await
                    .unwrap_err()
            },
            "header value",
        ),
    ];
    for (err, mentions) in cases {
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
        assert!(
            err.to_string().contains(mentions),
            "{err} should name {mentions}"
        );
        assert!(!err.is_retryable());
    }
    assert_eq!(emu.counters().total, 0, "nothing reached the server");

    let err = OssClient::builder()
        .endpoint(emu.endpoint())
        .region(REGION)
        .credentials(Credentials::new(AK, SK))
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)));
    assert!(
        err.to_string().contains(&emu.endpoint()) && err.to_string().contains("allow_http"),
        "{err}"
    );
    emu.shutdown().await;
}

/// A header value HTTP cannot carry is named, never shown: a security token read from a file
/// with its trailing newline must not reach an error's text (and so no result, failures.csv
/// or log line).
#[tokio::test]
async fn an_unsendable_header_is_named_without_its_value() {
    let emu = emulator().await;
    let client = OssClient::builder()
        .endpoint(emu.endpoint())
        .allow_http(true)
        .region(REGION)
        .credentials(Credentials::new(AK, SK).with_security_token("tok-SECRET-4711\n"))
        .build()
        .unwrap();
    let err = client
        .put_object(BUCKET, "k", RequestBody::empty(), &Default::default())
        .await
        .unwrap_err();
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("SECRET"), "the token leaked: {text}");
        assert!(text.contains("x-oss-security-token"), "{text}");
        assert!(text.contains("line break at byte 15"), "{text}");
    }
    assert!(!err.is_retryable());
    assert_eq!(emu.counters().total, 0, "nothing reached the server");
    emu.shutdown().await;
}

#[tokio::test]
async fn connection_refused_is_a_retryable_transport_error() {
    // Bind, learn the port, close: nothing listens there any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = OssClient::builder()
        .endpoint(format!("http://127.0.0.1:{port}"))
        .region(REGION)
        .credentials(Credentials::new(AK, SK))
        .allow_http(true)
        .retry(RetryConfig::disabled())
        .build()
        .unwrap();
    let err = client.head_object(BUCKET, "k").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: TransportKind::Connect,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(!err.to_string().contains(SK));
}
