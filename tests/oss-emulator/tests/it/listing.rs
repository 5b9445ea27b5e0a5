//! ListObjects (v1) and ListObjectsV2: pagination, delimiters, url encoding of awkward keys,
//! and a property test over the real server.

use std::collections::BTreeSet;

use crate::common::*;
use percent_encoding::percent_decode_str;
use proptest::prelude::*;

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8().unwrap().into_owned()
}

const AWKWARD: &[&str] = &[
    "plain",
    "with space",
    "plus+sign",
    "percent%25%",
    "question?mark",
    "hash#tag",
    "中文/文件.txt",
    "trailing/",
    "double//slash",
    "a/b/c",
    "ctrl\u{1}char",
    "amp&lt<gt>",
];

/// Lists everything with V2 in pages of `max_keys`, following continuation tokens.
async fn list_all_v2(
    oss: &Oss,
    prefix: &str,
    delimiter: &str,
    max_keys: usize,
) -> (Vec<String>, Vec<String>, usize) {
    let (mut keys, mut prefixes, mut pages) = (Vec::new(), Vec::new(), 0);
    let mut token: Option<String> = None;
    loop {
        let mut req = oss
            .bucket("GET", "bkt")
            .query("list-type", "2")
            .query("encoding-type", "url")
            .query("max-keys", &max_keys.to_string());
        if !prefix.is_empty() {
            req = req.query("prefix", prefix);
        }
        if !delimiter.is_empty() {
            req = req.query("delimiter", delimiter);
        }
        if let Some(t) = &token {
            req = req.query("continuation-token", t);
        }
        let r = req.send().await;
        assert_eq!(r.status, 200, "{}", r.text());
        pages += 1;
        let contents = r.xml_all("Contents").len();
        let common = r.xml_all("CommonPrefixes").len();
        assert_eq!(r.xml("KeyCount"), Some((contents + common).to_string()));
        assert!(contents + common <= max_keys);
        keys.extend(r.xml_all("Key").iter().map(|k| decode(k)));
        for cp in r.xml_all("CommonPrefixes") {
            prefixes.push(decode(&xml_all(&cp, "Prefix")[0]));
        }
        if r.xml("IsTruncated").as_deref() != Some("true") {
            break;
        }
        token = Some(
            r.xml("NextContinuationToken")
                .expect("NextContinuationToken"),
        );
        assert!(pages < 1000);
    }
    (keys, prefixes, pages)
}

#[tokio::test]
async fn awkward_keys_round_trip_through_url_encoded_pages() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let long = "L".repeat(1023);
    let mut all: Vec<String> = AWKWARD.iter().map(|s| s.to_string()).collect();
    all.push(long);
    for k in &all {
        let r = oss.put(k, k.clone()).await;
        assert_eq!(r.status, 200, "{k:?}: {}", r.text());
        assert_eq!(oss.get(k).await.text(), *k, "{k:?}");
    }
    let expected: Vec<String> = all
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for max in [1, 2, 5, 1000] {
        let (keys, prefixes, _) = list_all_v2(&oss, "", "", max).await;
        assert!(prefixes.is_empty());
        assert_eq!(keys, expected, "max-keys {max}");
    }
    let (keys, prefixes, _) = list_all_v2(&oss, "", "/", 3).await;
    assert_eq!(prefixes, ["a/", "double/", "trailing/", "中文/"]);
    assert!(keys.iter().all(|k| !k.contains('/')));
    let (keys, prefixes, _) = list_all_v2(&oss, "double/", "/", 10).await;
    assert_eq!((keys, prefixes), (vec![], vec!["double//".to_owned()]));
}

#[tokio::test]
async fn v2_fields_start_after_and_max_keys_rules() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    for k in ["a", "b", "c", "d"] {
        oss.put(k, "x").await;
    }
    let r = oss
        .bucket("GET", "bkt")
        .query("list-type", "2")
        .query("start-after", "b")
        .send()
        .await;
    assert_eq!(r.xml_all("Key"), ["c", "d"]);
    assert_eq!(r.xml("StartAfter").as_deref(), Some("b"));
    assert_eq!(r.xml("MaxKeys").as_deref(), Some("100"));
    assert_eq!(r.xml("Type").as_deref(), Some("Normal"));
    assert_eq!(r.xml("StorageClass").as_deref(), Some("Standard"));
    assert_eq!(r.xml("Size").as_deref(), Some("1"));
    assert_eq!(r.xml("ETag"), Some(format!("\"{}\"", md5_hex_upper(b"x"))));
    assert!(r.xml("LastModified").unwrap().ends_with(".000Z"));
    assert!(
        r.xml("Owner").is_none(),
        "V2 lists owners only with fetch-owner"
    );
    let r = oss
        .bucket("GET", "bkt")
        .query("list-type", "2")
        .query("fetch-owner", "true")
        .send()
        .await;
    assert!(r.xml("Owner").is_some());
    for bad in ["0", "1001", "x"] {
        let r = oss
            .bucket("GET", "bkt")
            .query("list-type", "2")
            .query("max-keys", bad)
            .send()
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "InvalidArgument"),
            "max-keys {bad}"
        );
    }
    let r = oss
        .bucket("GET", "bkt")
        .query("list-type", "2")
        .query("continuation-token", "!!!")
        .send()
        .await;
    assert_eq!(r.code(), "InvalidArgument");
    // V1 signs continuation-token as a sub-resource.
    let first = Oss::v1(&emu)
        .bucket("GET", "bkt")
        .query("list-type", "2")
        .query("max-keys", "2")
        .send()
        .await;
    let token = first.xml("NextContinuationToken").unwrap();
    let next = Oss::v1(&emu)
        .bucket("GET", "bkt")
        .query("list-type", "2")
        .query("continuation-token", &token)
        .send()
        .await;
    assert_eq!(next.status, 200, "{}", next.text());
    assert_eq!(next.xml_all("Key"), ["c", "d"]);
}

#[tokio::test]
async fn v1_marker_paging() {
    let emu = emulator().await;
    let oss = Oss::v1(&emu);
    for k in ["x/1", "x/2", "y", "z/1"] {
        oss.put(k, "x").await;
    }
    let r = oss
        .bucket("GET", "bkt")
        .query("delimiter", "/")
        .query("max-keys", "2")
        .send()
        .await;
    assert_eq!(r.xml_all("Prefix")[1..], ["x/"]);
    assert_eq!(r.xml_all("Key"), ["y"]);
    assert_eq!(r.xml("NextMarker").as_deref(), Some("y"));
    assert!(r.xml("Owner").is_some());
    let r = oss
        .bucket("GET", "bkt")
        .query("delimiter", "/")
        .query("marker", "y")
        .send()
        .await;
    assert_eq!(r.xml_all("Prefix")[1..], ["z/"]);
    assert_eq!(r.xml("IsTruncated").as_deref(), Some("false"));
    let r = oss
        .bucket("GET", "bkt")
        .query("marker", "x/1")
        .query("encoding-type", "url")
        .query("prefix", "x/")
        .send()
        .await;
    assert_eq!(r.xml_all("Key"), ["x/2"]);
    assert_eq!(r.xml("EncodingType").as_deref(), Some("url"));
}

fn key_strategy() -> impl Strategy<Value = String> {
    // Keys cannot start with '/', so the first character is drawn without it.
    proptest::string::string_regex("[a-c +%中][a-c/ +%中]{0,7}").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// Against the real server: every key (or its common prefix) comes back exactly once, in
    /// byte order, whatever the page size and delimiter.
    #[test]
    fn pagination_over_the_server_is_complete_and_ordered(
        keys in proptest::collection::btree_set(key_strategy(), 0..30),
        max in 1usize..6,
        delimiter in prop_oneof![Just(""), Just("/"), Just("b")],
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let emu = emulator().await;
            let oss = Oss::v4(&emu);
            for k in &keys {
                let r = oss.put(k, "v").await;
                prop_assert_eq!(r.status, 200);
            }
            let (got_keys, got_prefixes, _) = list_all_v2(&oss, "", delimiter, max).await;
            let mut expected_keys = Vec::new();
            let mut expected_prefixes = Vec::new();
            for k in &keys {
                match (!delimiter.is_empty()).then(|| k.find(delimiter)).flatten() {
                    Some(i) => {
                        let cp = k[..i + delimiter.len()].to_owned();
                        if !expected_prefixes.contains(&cp) { expected_prefixes.push(cp); }
                    }
                    None => expected_keys.push(k.clone()),
                }
            }
            prop_assert_eq!(got_keys, expected_keys);
            prop_assert_eq!(got_prefixes, expected_prefixes);
            emu.shutdown().await;
            Ok(())
        })?;
    }
}
