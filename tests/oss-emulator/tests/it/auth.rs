//! Signature checks over real sockets: what is accepted and what is refused, with which code.

use std::time::Duration;

use crate::common::*;
use base64::Engine;
use chrono::Utc;
use ferry::oss::Credentials;
use ferry::oss::sign::{SignatureVersion, Signer};

#[tokio::test]
async fn v4_and_v1_header_signatures_are_accepted() {
    let emu = emulator().await;
    for oss in [Oss::v4(&emu), Oss::v1(&emu)] {
        let put = oss.put("dir/a b+c.txt", "hello").await;
        assert_eq!(put.status, 200, "{}", put.text());
        let get = oss.get("dir/a b+c.txt").await;
        assert_eq!((get.status, get.text().as_str()), (200, "hello"));
    }
}

#[tokio::test]
async fn v4_with_additional_headers_and_comma_space_separators() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let r = oss
        .object("PUT", "k")
        .header("content-disposition", "attachment")
        .additional(&["host", "content-disposition"])
        .body("x")
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // oss2 writes ", " between the Authorization fields; the server must accept it.
    let t = Utc::now();
    let headers = vec![("x-oss-meta-a".to_owned(), "1".to_owned())];
    let signable = ferry::oss::sign::Signable {
        method: "GET",
        bucket: Some("bkt"),
        key: Some("k"),
        query: &[],
        headers: &headers,
    };
    let signed = signer(SignatureVersion::V4).sign_header(&signable, t, &[]);
    let mut sent = headers.clone();
    for (k, v) in signed.headers {
        let v = if k == "Authorization" {
            v.replace(",Signature", ", Signature")
        } else {
            v
        };
        sent.push((k, v));
    }
    let r = send_raw(
        &reqwest::Client::new(),
        "GET",
        &format!("{}/bkt/k", emu.endpoint()),
        &sent,
        Default::default(),
    )
    .await;
    assert_eq!((r.status, r.text().as_str()), (200, "x"));
}

#[tokio::test]
async fn presigned_urls_v4_and_v1_are_accepted_and_tampering_is_refused() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    assert_eq!(
        oss.put("p/中文 file+1.txt", "secret data").await.status,
        200
    );
    for version in [SignatureVersion::V4, SignatureVersion::V1] {
        let url = oss
            .object("GET", "p/中文 file+1.txt")
            .signed_by(signer(version))
            .presign(Duration::from_secs(60));
        let ok = get_url(&url).await;
        assert_eq!(
            (ok.status, ok.text().as_str()),
            (200, "secret data"),
            "{version:?}: {}",
            ok.text()
        );

        let tampered = url.replace("p/", "q/");
        let bad = get_url(&tampered).await;
        assert_eq!(
            (bad.status, bad.code().as_str()),
            (403, "SignatureDoesNotMatch"),
            "{version:?}"
        );
        assert!(bad.xml("StringToSign").is_some());
    }
    // Changing the validity after signing breaks the V4 signature.
    let url = oss
        .object("GET", "p/中文 file+1.txt")
        .presign(Duration::from_secs(60));
    let longer = get_url(&url.replace("x-oss-expires=60", "x-oss-expires=600")).await;
    assert_eq!(longer.code(), "SignatureDoesNotMatch");
}

#[tokio::test]
async fn expired_presigned_urls_are_refused() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    oss.put("k", "v").await;
    let old = Utc::now() - chrono::Duration::seconds(120);
    for version in [SignatureVersion::V4, SignatureVersion::V1] {
        let url = oss
            .object("GET", "k")
            .signed_by(signer(version))
            .at(old)
            .presign(Duration::from_secs(60));
        let r = get_url(&url).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (403, "AccessDenied"),
            "{version:?}"
        );
        assert!(r.xml("Message").unwrap().contains("expired"));
    }
}

#[tokio::test]
async fn wrong_secret_gets_signature_mismatch_with_string_to_sign() {
    let emu = emulator().await;
    for version in [SignatureVersion::V4, SignatureVersion::V1] {
        let wrong = Signer::new(Credentials::new(AK, "not-the-secret"), REGION, version);
        let req = Oss::v4(&emu)
            .object("PUT", "k")
            .signed_by(wrong.clone())
            .body("x");
        let r = req.send().await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (403, "SignatureDoesNotMatch"),
            "{version:?}"
        );
        let sts = r.xml("StringToSign").expect("StringToSign echoed");
        let expected_start = if version == SignatureVersion::V4 {
            "OSS4-HMAC-SHA256\n"
        } else {
            "PUT\n"
        };
        assert!(sts.starts_with(expected_start), "{sts:?}");
        assert!(r.xml("SignatureProvided").is_some());
        assert_eq!(r.header("x-oss-ec").as_deref(), Some("0002-00000040"));
        assert!(
            r.header("x-oss-request-id")
                .is_some_and(|id| id == r.xml("RequestId").unwrap())
        );
    }
    assert!(
        emu.object_info("bkt", "k").is_none(),
        "a refused PUT stores nothing"
    );
}

#[tokio::test]
async fn server_string_to_sign_equals_the_clients() {
    let emu = emulator().await;
    let wrong = Signer::new(Credentials::new(AK, "wrong"), REGION, SignatureVersion::V4);
    let t = Utc::now();
    let headers = vec![("content-type".to_owned(), "text/plain".to_owned())];
    let query = vec![("uploads".to_owned(), String::new())];
    let signable = ferry::oss::sign::Signable {
        method: "POST",
        bucket: Some("bkt"),
        key: Some("a/b"),
        query: &query,
        headers: &headers,
    };
    let client_sts = wrong.sign_header(&signable, t, &[]).string_to_sign;
    let r = Oss::v4(&emu)
        .object("POST", "a/b")
        .query("uploads", "")
        .header("content-type", "text/plain")
        .signed_by(wrong)
        .at(t)
        .send()
        .await;
    assert_eq!(r.xml("StringToSign").as_deref(), Some(client_sts.as_str()));
}

#[tokio::test]
async fn wrong_access_key_and_wrong_region_are_refused() {
    let emu = emulator().await;
    let other_ak = Signer::new(Credentials::new("other", SK), REGION, SignatureVersion::V4);
    let r = Oss::v4(&emu).get("k").await;
    assert_eq!(r.status, 404);
    let r = Oss::v4(&emu)
        .object("GET", "k")
        .signed_by(other_ak)
        .send()
        .await;
    assert_eq!((r.status, r.code().as_str()), (403, "InvalidAccessKeyId"));

    let other_region = Signer::new(
        Credentials::new(AK, SK),
        "cn-shanghai",
        SignatureVersion::V4,
    );
    let r = Oss::v4(&emu)
        .object("GET", "k")
        .signed_by(other_region.clone())
        .send()
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidArgument"));
    assert!(r.xml("Message").unwrap().contains("cn-hangzhou"));
    let url = Oss::v4(&emu)
        .object("GET", "k")
        .signed_by(other_region)
        .presign(Duration::from_secs(60));
    assert_eq!(get_url(&url).await.code(), "InvalidArgument");
}

#[tokio::test]
async fn skewed_clocks_are_refused() {
    let emu = emulator().await;
    for version in [SignatureVersion::V4, SignatureVersion::V1] {
        for skew in [
            chrono::Duration::minutes(16),
            chrono::Duration::minutes(-16),
        ] {
            let r = Oss::new(&emu, version)
                .object("GET", "k")
                .at(Utc::now() + skew)
                .send()
                .await;
            assert_eq!(
                (r.status, r.code().as_str()),
                (403, "RequestTimeTooSkewed"),
                "{version:?} {skew}"
            );
        }
        // 10 minutes off is still fine (404 because the key is missing).
        let r = Oss::new(&emu, version)
            .object("GET", "k")
            .at(Utc::now() - chrono::Duration::minutes(10))
            .send()
            .await;
        assert_eq!(r.code(), "NoSuchKey");
    }
}

#[tokio::test]
async fn anonymous_and_unknown_schemes_are_refused() {
    let emu = emulator().await;
    let r = Oss::v4(&emu).object("GET", "k").unsigned().send().await;
    assert_eq!((r.status, r.code().as_str()), (403, "AccessDenied"));
    let r = Oss::v4(&emu)
        .object("GET", "k")
        .unsigned()
        .header("authorization", "OSS2 AccessKeyId:x,Signature:y")
        .send()
        .await;
    assert_eq!(r.status, 400);
    let r = Oss::v4(&emu)
        .object("GET", "k")
        .unsigned()
        .header("authorization", "OSS4-HMAC-SHA256 Signature=ab")
        .send()
        .await;
    assert_eq!(r.code(), "InvalidArgument");
}

#[tokio::test]
async fn v4_requires_unsigned_payload_marker() {
    let emu = emulator().await;
    let t = Utc::now();
    let headers = vec![("x-oss-content-sha256".to_owned(), "abc".to_owned())];
    let signable = ferry::oss::sign::Signable {
        method: "GET",
        bucket: Some("bkt"),
        key: Some("k"),
        query: &[],
        headers: &headers,
    };
    let mut signed = signer(SignatureVersion::V4)
        .sign_header(&signable, t, &[])
        .headers;
    for (k, v) in signed.iter_mut() {
        if k == "x-oss-content-sha256" {
            *v = "abc".to_owned();
        }
    }
    let r = send_raw(
        &reqwest::Client::new(),
        "GET",
        &format!("{}/bkt/k", emu.endpoint()),
        &signed,
        Default::default(),
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidArgument"));
    assert_eq!(r.header("x-oss-ec").as_deref(), Some("0002-00000214"));
}

#[tokio::test]
async fn security_tokens_must_be_signed_and_non_empty() {
    let emu = emulator().await;
    let sts = Signer::new(
        Credentials::new(AK, SK).with_security_token("CAIS-token"),
        REGION,
        SignatureVersion::V4,
    );
    let oss = Oss::v4(&emu);
    assert_eq!(
        oss.object("PUT", "t")
            .signed_by(sts.clone())
            .body("1")
            .send()
            .await
            .status,
        200
    );
    let sts_v1 = Signer::new(
        Credentials::new(AK, SK).with_security_token("CAIS-token"),
        REGION,
        SignatureVersion::V1,
    );
    assert_eq!(
        oss.object("GET", "t")
            .signed_by(sts_v1.clone())
            .send()
            .await
            .status,
        200
    );
    let url = oss
        .object("GET", "t")
        .signed_by(sts_v1)
        .presign(Duration::from_secs(60));
    assert!(url.contains("security-token="));
    assert_eq!(get_url(&url).await.status, 200);
    let url = oss
        .object("GET", "t")
        .signed_by(sts)
        .presign(Duration::from_secs(60));
    assert_eq!(get_url(&url).await.status, 200);
    // A token swapped after signing breaks the signature.
    let swapped = url.replace("CAIS-token", "other-token");
    assert_eq!(get_url(&swapped).await.code(), "SignatureDoesNotMatch");
    let empty = Signer::new(
        Credentials::new(AK, SK).with_security_token(""),
        REGION,
        SignatureVersion::V4,
    );
    let r = oss.object("GET", "t").signed_by(empty).send().await;
    assert_eq!((r.status, r.code().as_str()), (403, "InvalidSecurityToken"));
}

#[tokio::test]
async fn head_errors_carry_the_document_in_x_oss_err() {
    let emu = emulator().await;
    let r = Oss::v4(&emu).object("HEAD", "missing").send().await;
    assert_eq!(r.status, 404);
    assert!(r.body.is_empty());
    let doc = base64::engine::general_purpose::STANDARD
        .decode(r.header("x-oss-err").expect("x-oss-err"))
        .unwrap();
    let doc = String::from_utf8(doc).unwrap();
    assert_eq!(xml_all(&doc, "Code"), ["NoSuchKey"]);
    assert_eq!(xml_all(&doc, "EC"), [r.header("x-oss-ec").unwrap()]);
}

#[tokio::test]
async fn virtual_hosted_requests_are_routed_by_host() {
    let emu = emulator().await;
    Oss::v4(&emu).put("vh/key", "virtual").await;
    let http = reqwest::Client::builder()
        .resolve("bkt.localhost", emu.addr())
        .build()
        .unwrap();
    let port = emu.addr().port();
    for version in [SignatureVersion::V4, SignatureVersion::V1] {
        let oss = Oss {
            http: http.clone(),
            endpoint: format!("http://bkt.localhost:{port}"),
            signer: signer(version),
        };
        // The URL has no bucket segment; the signature still covers /bkt/vh/key.
        let t = Utc::now();
        let signable = ferry::oss::sign::Signable {
            method: "GET",
            bucket: Some("bkt"),
            key: Some("vh/key"),
            query: &[],
            headers: &[],
        };
        let signed = oss.signer.sign_header(&signable, t, &[]);
        let r = send_raw(
            &http,
            "GET",
            &format!("{}/vh/key", oss.endpoint),
            &signed.headers,
            Default::default(),
        )
        .await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "virtual"),
            "{version:?}"
        );
    }
}

#[tokio::test]
async fn rotated_credentials_take_effect_on_the_next_request() {
    let emu = emulator().await;
    assert_eq!(emu.access_key_id(), AK);
    for version in [SignatureVersion::V4, SignatureVersion::V1] {
        // One client (one connection pool) for every request, so rotation must reach a
        // connection that was already open.
        let old = Oss::new(&emu, version);
        assert_eq!(old.put("rot", "before").await.status, 200, "{version:?}");
        let url = old.object("GET", "rot").presign(Duration::from_secs(60));
        assert_eq!(get_url(&url).await.status, 200, "{version:?}");

        emu.rotate_credentials("new-ak", "new-secret");
        assert_eq!(emu.access_key_id(), "new-ak");

        let r = old.get("rot").await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (403, "InvalidAccessKeyId"),
            "{version:?}"
        );
        let r = get_url(&url).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (403, "InvalidAccessKeyId"),
            "{version:?} presigned"
        );
        let stale_secret = Signer::new(Credentials::new("new-ak", SK), REGION, version);
        let r = old
            .object("GET", "rot")
            .signed_by(stale_secret)
            .send()
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (403, "SignatureDoesNotMatch"),
            "{version:?}"
        );
        let new = Signer::new(Credentials::new("new-ak", "new-secret"), REGION, version);
        let r = old.object("GET", "rot").signed_by(new).send().await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "before"),
            "{version:?}"
        );

        // Back to the original pair for the next signature version.
        emu.rotate_credentials(AK, SK);
    }
}

#[tokio::test]
async fn the_admin_api_rotates_credentials() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    assert_eq!(oss.put("k", "v").await.status, 200);
    let r = admin(
        &emu,
        "PUT",
        "credentials",
        r#"{"access_key_id":"ak2","access_key_secret":"sk2"}"#,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(emu.access_key_id(), "ak2");
    assert_eq!(oss.get("k").await.code(), "InvalidAccessKeyId");
    let new = Signer::new(Credentials::new("ak2", "sk2"), REGION, SignatureVersion::V1);
    assert_eq!(
        oss.object("GET", "k").signed_by(new).send().await.status,
        200
    );
    let r = admin(&emu, "PUT", "credentials", r#"{"access_key_id":"ak3"}"#).await;
    assert_eq!(r.status, 400, "{}", r.text());
}
