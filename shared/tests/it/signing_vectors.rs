//! ferry's signer against V1 and V4 signing vectors (header and presigned) from the official
//! OSS SDKs' tests, and the extra ones in `data/oss-signing-extra-vectors.json`. Each expected
//! value is what the official SDKs produce.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use ferry::oss::sign::*;
use ferry::oss::{Credentials, SignatureVersion, Signer};

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn at(unix: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(unix, 0).unwrap()
}

fn auth_of(signed: &Signed) -> String {
    header(&signed.headers, "authorization").unwrap().to_owned()
}

// ---- V1 header signing ----

fn v1_common() -> Vec<(String, String)> {
    h(&[
        ("Content-MD5", "eB5eJF1ptWaXm4bijSPyxw=="),
        ("Content-Type", "text/html"),
        ("x-oss-meta-author", "alice"),
        ("x-oss-meta-magic", "abracadabra"),
        ("x-oss-date", "Wed, 28 Dec 2022 10:27:41 GMT"),
        ("Date", "Wed, 28 Dec 2022 10:27:41 GMT"),
    ])
}

fn v1_auth(ak: &str, sk: &str, req: &Signable<'_>) -> (String, String) {
    let date = header(req.headers, "x-oss-date")
        .or(header(req.headers, "date"))
        .unwrap();
    let sts = v1_string_to_sign(req, date);
    (sts.clone(), format!("OSS {ak}:{}", v1_signature(sk, &sts)))
}

#[test]
fn v1_h1_h2_put_object_with_and_without_acl() {
    let headers = v1_common();
    let req = Signable {
        method: "PUT",
        bucket: Some("examplebucket"),
        key: Some("nelson"),
        query: &[],
        headers: &headers,
    };
    let (sts, auth) = v1_auth("ak", "sk", &req);
    assert_eq!(
        sts,
        "PUT\neB5eJF1ptWaXm4bijSPyxw==\ntext/html\nWed, 28 Dec 2022 10:27:41 GMT\nx-oss-date:Wed, 28 Dec 2022 10:27:41 GMT\nx-oss-meta-author:alice\nx-oss-meta-magic:abracadabra\n/examplebucket/nelson"
    );
    assert_eq!(auth, "OSS ak:kSHKmLxlyEAKtZPkJhG9bZb5k7M=");

    let q = h(&[("acl", "")]);
    let req = Signable { query: &q, ..req };
    assert_eq!(
        v1_auth("ak", "sk", &req).1,
        "OSS ak:/afkugFbmWDQ967j1vr6zygBLQk="
    );
}

#[test]
fn v1_h3_h4_bucket_level_subresources() {
    let headers = h(&[
        ("x-oss-date", "Wed, 28 Dec 2022 10:27:41 GMT"),
        ("Date", "Wed, 28 Dec 2022 10:27:41 GMT"),
    ]);
    let q = h(&[("resourceGroup", ""), ("non-resousce", "null")]);
    let req = Signable {
        method: "GET",
        bucket: Some("examplebucket"),
        key: None,
        query: &q,
        headers: &headers,
    };
    let (sts, auth) = v1_auth("ak", "sk", &req);
    assert_eq!(
        sts,
        "GET\n\n\nWed, 28 Dec 2022 10:27:41 GMT\nx-oss-date:Wed, 28 Dec 2022 10:27:41 GMT\n/examplebucket/?resourceGroup"
    );
    assert_eq!(auth, "OSS ak:vkQmfuUDyi1uDi3bKt67oemssIs=");

    let q = h(&[("resourceGroup", ""), ("acl", "")]);
    let req = Signable { query: &q, ..req };
    let (sts, auth) = v1_auth("ak", "sk", &req);
    assert!(sts.ends_with("/examplebucket/?acl&resourceGroup"));
    assert_eq!(auth, "OSS ak:x3E5TgOvl/i7PN618s5mEvpJDYk=");
}

#[test]
fn v1_h5_sts_token_header() {
    let headers = h(&[
        ("Date", "Wed, 28 Dec 2022 10:27:41 GMT"),
        ("x-oss-security-token", "token-xyz"),
    ]);
    let q = h(&[
        ("uploadId", "ABC"),
        ("partNumber", "2"),
        ("max-parts", "10"),
    ]);
    let req = Signable {
        method: "GET",
        bucket: Some("examplebucket"),
        key: Some("dir/obj.txt"),
        query: &q,
        headers: &headers,
    };
    let (sts, auth) = v1_auth("STS.ak", "sk", &req);
    assert_eq!(
        sts,
        "GET\n\n\nWed, 28 Dec 2022 10:27:41 GMT\nx-oss-security-token:token-xyz\n/examplebucket/dir/obj.txt?partNumber=2&uploadId=ABC"
    );
    assert_eq!(auth, "OSS STS.ak:CL51LlAThfhpzD210+eDTHslBxs=");

    // The same through the Signer, which adds Date and the token header itself.
    let signer = Signer::new(
        Credentials::new("STS.ak", "sk").with_security_token("token-xyz"),
        "cn-hangzhou",
        SignatureVersion::V1,
    );
    let req = Signable {
        headers: &[],
        ..req
    };
    let signed = signer.sign_header(&req, at(1672223261), &[]);
    assert_eq!(
        header(&signed.headers, "date"),
        Some("Wed, 28 Dec 2022 10:27:41 GMT")
    );
    assert_eq!(auth_of(&signed), "OSS STS.ak:CL51LlAThfhpzD210+eDTHslBxs=");
}

// ---- V1 presigned URLs ----

#[test]
fn v1_q1_q2_presigned() {
    let q = h(&[("versionId", "versionId")]);
    let req = Signable {
        method: "GET",
        bucket: Some("bucket"),
        key: Some("key"),
        query: &q,
        headers: &[],
    };
    let signer = Signer::new(
        Credentials::new("ak", "sk"),
        "cn-hangzhou",
        SignatureVersion::V1,
    );
    let added = signer.presign(&req, at(1699807420 - 900), Duration::from_secs(900), &[]);
    assert_eq!(
        added,
        h(&[
            ("OSSAccessKeyId", "ak"),
            ("Expires", "1699807420"),
            ("Signature", "dcLTea+Yh9ApirQ8o8dOPqtvJXQ=")
        ])
    );

    let signer = Signer::new(
        Credentials::new("ak", "sk").with_security_token("token"),
        "cn-hangzhou",
        SignatureVersion::V1,
    );
    let req = Signable {
        key: Some("key+123"),
        ..req
    };
    let added = signer.presign(&req, at(1699808204 - 60), Duration::from_secs(60), &[]);
    assert_eq!(
        added,
        h(&[
            ("security-token", "token"),
            ("OSSAccessKeyId", "ak"),
            ("Expires", "1699808204"),
            ("Signature", "jzKYRrM5y6Br0dRFPaTGOsbrDhY=")
        ])
    );
    let sts = v1_string_to_sign(
        &Signable {
            query: &h(&[("versionId", "versionId"), ("security-token", "token")]),
            ..req
        },
        "1699808204",
    );
    assert_eq!(
        sts,
        "GET\n\n\n1699808204\n/bucket/key+123?security-token=token&versionId=versionId"
    );
}

// ---- V4 header signing ----

fn v4_query() -> Vec<(String, String)> {
    h(&[
        ("param1", "value1"),
        ("+param1", "value3"),
        ("|param1", "value4"),
        ("+param2", ""),
        ("|param2", ""),
        ("param2", ""),
    ])
}

fn v4_headers(content_type: &str) -> Vec<(String, String)> {
    h(&[
        ("x-oss-head1", "value"),
        ("abc", "value"),
        ("ZAbc", "value"),
        ("XYZ", "value"),
        ("content-type", content_type),
    ])
}

#[test]
fn v4_h1_canonical_request_and_signature() {
    let mut headers = v4_headers("text/plain");
    headers.push(("x-oss-content-sha256".into(), "UNSIGNED-PAYLOAD".into()));
    let query = v4_query();
    let req = Signable {
        method: "PUT",
        bucket: Some("bucket"),
        key: Some("1234+-/123/1.txt"),
        query: &query,
        headers: &headers,
    };
    let signer = Signer::new(
        Credentials::new("ak", "sk"),
        "cn-hangzhou",
        SignatureVersion::V4,
    );
    let signed = signer.sign_header(&req, at(1702743657), &[]);
    assert_eq!(
        auth_of(&signed),
        "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,Signature=e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe"
    );
    assert_eq!(
        signed.string_to_sign,
        "OSS4-HMAC-SHA256\n20231216T162057Z\n20231216/cn-hangzhou/oss/aliyun_v4_request\nf4613657f1b108998e8dbd10a1aa5da621dc2c6e02c9ddec0f163664848704c4"
    );
    let mut all = headers.clone();
    all.push(("x-oss-date".into(), "20231216T162057Z".into()));
    let canonical = v4_canonical_request(
        &Signable {
            headers: &all,
            ..req
        },
        &[],
        UNSIGNED_PAYLOAD,
    );
    assert_eq!(
        canonical,
        "PUT\n/bucket/1234%2B-/123/1.txt\n%2Bparam1=value3&%2Bparam2&%7Cparam1=value4&%7Cparam2&param1=value1&param2\ncontent-type:text/plain\nx-oss-content-sha256:UNSIGNED-PAYLOAD\nx-oss-date:20231216T162057Z\nx-oss-head1:value\n\n\nUNSIGNED-PAYLOAD"
    );
}

#[test]
fn v4_h2_h3_h4_token_additional_headers_cloudbox() {
    let headers = v4_headers("text/plain");
    let query = v4_query();
    let req = Signable {
        method: "PUT",
        bucket: Some("bucket"),
        key: Some("1234+-/123/1.txt"),
        query: &query,
        headers: &headers,
    };

    let sts = Signer::new(
        Credentials::new("ak", "sk").with_security_token("token"),
        "cn-hangzhou",
        SignatureVersion::V4,
    );
    assert_eq!(
        auth_of(&sts.sign_header(&req, at(1702784856), &[])),
        "OSS4-HMAC-SHA256 Credential=ak/20231217/cn-hangzhou/oss/aliyun_v4_request,Signature=b94a3f999cf85bcdc00d332fbd3734ba03e48382c36fa4d5af5df817395bd9ea"
    );

    let plain = Signer::new(
        Credentials::new("ak", "sk"),
        "cn-hangzhou",
        SignatureVersion::V4,
    );
    let expected = "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,AdditionalHeaders=abc;zabc,Signature=4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f";
    assert_eq!(
        auth_of(&plain.sign_header(&req, at(1702747512), &["ZAbc", "abc"])),
        expected
    );
    assert_eq!(
        auth_of(&plain.sign_header(
            &req,
            at(1702747512),
            &["x-oss-no-exist", "ZAbc", "x-oss-head1", "abc"]
        )),
        expected
    );

    let mut cloudbox = Signer::new(Credentials::new("ak", "sk"), "cb-123", SignatureVersion::V4);
    cloudbox.product = "oss-cloudbox".into();
    assert_eq!(
        auth_of(&cloudbox.sign_header(&req, at(1702743657), &[])),
        "OSS4-HMAC-SHA256 Credential=ak/20231216/cb-123/oss-cloudbox/aliyun_v4_request,Signature=94ce1f12c17d148ea681030275a94449d3357f5b5b21133996eec80af3e08a43"
    );
}

// ---- V4 presigned ----

fn presigned_signature(
    signer: &Signer,
    unix: i64,
    additional: &[&str],
) -> (Vec<(String, String)>, String) {
    let headers = v4_headers("application/octet-stream");
    let query = v4_query();
    let req = Signable {
        method: "PUT",
        bucket: Some("bucket"),
        key: Some("1234+-/123/1.txt"),
        query: &query,
        headers: &headers,
    };
    let added = signer.presign(&req, at(unix), Duration::from_secs(599), additional);
    let sig = header(&added, "x-oss-signature").unwrap().to_owned();
    (added, sig)
}

#[test]
fn v4_q1_to_q4_presigned() {
    let plain = Signer::new(
        Credentials::new("ak", "sk"),
        "cn-hangzhou",
        SignatureVersion::V4,
    );
    let (added, sig) = presigned_signature(&plain, 1702781677, &[]);
    assert_eq!(
        sig,
        "a39966c61718be0d5b14e668088b3fa07601033f6518ac7b523100014269c0fe"
    );
    let mut q = v4_query();
    q.extend(added.into_iter().filter(|(k, _)| k != "x-oss-signature"));
    assert_eq!(
        v4_canonical_query(&q),
        "%2Bparam1=value3&%2Bparam2&%7Cparam1=value4&%7Cparam2&param1=value1&param2&x-oss-credential=ak%2F20231217%2Fcn-hangzhou%2Foss%2Faliyun_v4_request&x-oss-date=20231217T025437Z&x-oss-expires=599&x-oss-signature-version=OSS4-HMAC-SHA256"
    );

    let sts = Signer::new(
        Credentials::new("ak", "sk").with_security_token("token"),
        "cn-hangzhou",
        SignatureVersion::V4,
    );
    assert_eq!(
        presigned_signature(&sts, 1702785388, &[]).1,
        "3817ac9d206cd6dfc90f1c09c00be45005602e55898f26f5ddb06d7892e1f8b5"
    );

    let (added, sig) = presigned_signature(&plain, 1702783809, &["abc", "ZAbc"]);
    assert_eq!(
        sig,
        "6bd984bfe531afb6db1f7550983a741b103a8c58e5e14f83ea474c2322dfa2b7"
    );
    assert_eq!(header(&added, "x-oss-additional-headers"), Some("abc;zabc"));

    let mut cloudbox = Signer::new(Credentials::new("ak", "sk"), "cb-123", SignatureVersion::V4);
    cloudbox.product = "oss-cloudbox".into();
    assert_eq!(
        presigned_signature(&cloudbox, 1702781677, &["abc", "ZAbc"]).1,
        "07284191b9b4978ac3520cd39ee2dea2747eda454089359371ff463a6c7ba20f"
    );
}

// ---- extra migration-oriented vectors: data/oss-signing-extra-vectors.json ----

#[derive(serde::Deserialize)]
struct VectorFile {
    access_key_id: String,
    access_key_secret: String,
    region: String,
    time_utc: String,
    vectors: Vec<Vector>,
}

#[derive(serde::Deserialize)]
struct Vector {
    name: String,
    expected: String,
    method: Option<String>,
    bucket: Option<String>,
    key: Option<String>,
    #[serde(default)]
    params: Vec<(String, String)>,
    #[serde(default)]
    headers: serde_json::Map<String, serde_json::Value>,
    canonical_request: Option<String>,
    string_to_sign: Option<String>,
    #[serde(default)]
    additional_headers: Vec<String>,
}

#[test]
fn extra_vectors_file() {
    let file: VectorFile =
        serde_json::from_str(include_str!("data/oss-signing-extra-vectors.json"))
            .expect("vector file parses");
    let now: DateTime<Utc> = file.time_utc.parse().unwrap();
    let mut checked = 0;
    for v in &file.vectors {
        let headers: Vec<(String, String)> = v
            .headers
            .iter()
            .map(|(k, val)| (k.clone(), val.as_str().unwrap().to_owned()))
            .collect();
        let token = header(&headers, "x-oss-security-token").map(str::to_owned);
        let mut creds = Credentials::new(&file.access_key_id, file.access_key_secret.as_str());
        if let Some(t) = &token {
            creds = creds.with_security_token(t.as_str());
        }
        let additional: Vec<&str> = v.additional_headers.iter().map(String::as_str).collect();
        if v.name.starts_with("V4-X6") {
            // Presigned GET of the V4-X1 key.
            let signer = Signer::new(creds, &file.region, SignatureVersion::V4);
            let req = Signable {
                method: "GET",
                bucket: Some("examplebucket"),
                key: Some("exampledir/中文 file+1.txt"),
                query: &[],
                headers: &[],
            };
            let added = signer.presign(&req, now, Duration::from_secs(3600), &[]);
            assert_eq!(
                header(&added, "x-oss-signature"),
                Some(v.expected.as_str()),
                "{}",
                v.name
            );
            checked += 1;
            continue;
        }
        let req = Signable {
            method: v.method.as_deref().unwrap(),
            bucket: v.bucket.as_deref(),
            key: v.key.as_deref(),
            query: &v.params,
            headers: &headers,
        };
        if v.name.starts_with("V4") {
            let extra = v4_additional_headers(&additional, &headers);
            let canonical = v4_canonical_request(&req, &extra, UNSIGNED_PAYLOAD);
            assert_eq!(Some(&canonical), v.canonical_request.as_ref(), "{}", v.name);
            // And through the Signer, which adds date, payload hash and token itself.
            let bare: Vec<(String, String)> = headers
                .iter()
                .filter(|(n, _)| {
                    !["x-oss-date", "x-oss-content-sha256", "x-oss-security-token"]
                        .contains(&n.to_ascii_lowercase().as_str())
                })
                .cloned()
                .collect();
            let signer = Signer::new(creds, &file.region, SignatureVersion::V4);
            let signed = signer.sign_header(
                &Signable {
                    headers: &bare,
                    ..req
                },
                now,
                &additional,
            );
            assert_eq!(
                Some(&signed.string_to_sign),
                v.string_to_sign.as_ref(),
                "{}",
                v.name
            );
            assert_eq!(auth_of(&signed), v.expected, "{}", v.name);
        } else {
            let sts = v1_string_to_sign(&req, header(&headers, "date").unwrap());
            assert_eq!(Some(&sts), v.string_to_sign.as_ref(), "{}", v.name);
            let bare: Vec<(String, String)> = headers
                .iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
                .cloned()
                .collect();
            let signer = Signer::new(creds, &file.region, SignatureVersion::V1);
            let signed = signer.sign_header(
                &Signable {
                    headers: &bare,
                    ..req
                },
                now,
                &[],
            );
            assert_eq!(auth_of(&signed), v.expected, "{}", v.name);
        }
        checked += 1;
    }
    assert_eq!(checked, file.vectors.len());
    assert!(checked >= 11);
}
