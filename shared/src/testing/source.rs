//! The `Source` conformance suite: what the planner and the copier rely on from every source.
//!
//! A listing comes in byte order, honours prefix, delimiter and `start-after`, and pages through
//! the whole bucket with its continuation without losing or repeating a key; a HEAD describes
//! the object the listing named (same size and ETag); a ranged GET returns exactly those bytes
//! and `open` the whole object with its description; a key that is not there is `NotFound`, not
//! some other failure; keys with spaces, `+` and non-ASCII characters round-trip.
//!
//! The caller puts [`fixture`] into an otherwise empty bucket and hands the suite a source
//! reading it (with no source prefix). ferry's tests run it against the S3 source on moto and
//! on the OSS emulator's S3 dialect, and the OSS source on the emulator.

use std::time::Duration;

use bytes::BytesMut;
use futures_util::TryStreamExt;

use crate::source::{ByteStream, GetRequest, ListRequest, ObjectInfo, Source, SourceErrorKind};

/// Every conformance run must finish within this.
const SUITE_LIMIT: Duration = Duration::from_secs(120);

/// The objects the suite expects, in byte order of their keys: (key, body).
pub fn fixture() -> Vec<(String, Vec<u8>)> {
    let body = |len: usize, seed: u8| -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    };
    let mut objects = vec![
        ("a/empty".to_owned(), Vec::new()),
        ("a/one".to_owned(), body(1_000, 1)),
        ("a/sub/deep".to_owned(), body(5, 2)),
        ("a/two".to_owned(), body(70_000, 3)),
        ("b+plus".to_owned(), body(7, 4)),
        ("b with space".to_owned(), body(8, 5)),
        ("c/ünï/€.bin".to_owned(), body(9, 6)),
        ("z-last".to_owned(), body(10, 7)),
    ];
    objects.sort();
    objects
}

/// Runs every case against `source`, which holds exactly [`fixture`]. Panics (with the case's
/// message) when the source breaks a rule; bounded in time.
pub async fn conformance(source: &dyn Source) {
    let suite = async {
        let listed = pages_through_everything(source).await;
        prefixes_delimiters_and_start_after(source).await;
        heads_describe_what_was_listed(source, &listed).await;
        ranges_and_opens_return_the_bytes(source).await;
        missing_keys_are_not_found(source).await;
    };
    tokio::time::timeout(SUITE_LIMIT, suite)
        .await
        .expect("the source conformance suite finished in time");
}

/// Lists with `req` to the end, following continuations; bounded in pages.
async fn list_all(source: &dyn Source, mut req: ListRequest) -> (Vec<ObjectInfo>, Vec<String>) {
    let (mut objects, mut prefixes) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let page = source.list(&req).await.expect("list");
        objects.extend(page.objects);
        prefixes.extend(page.common_prefixes);
        match page.next {
            Some(token) => req.continuation = Some(token),
            None => return (objects, prefixes),
        }
    }
    panic!(
        "{}: the listing did not end within 100 pages",
        source.describe()
    );
}

fn keys(objects: &[ObjectInfo]) -> Vec<&str> {
    objects.iter().map(|o| o.key.as_str()).collect()
}

async fn pages_through_everything(source: &dyn Source) -> Vec<ObjectInfo> {
    let expected = fixture();
    let req = ListRequest {
        max_keys: 3,
        ..Default::default()
    };
    let (listed, _) = list_all(source, req).await;
    let want: Vec<&str> = expected.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys(&listed),
        want,
        "pages of 3 list every key once, in byte order"
    );
    for (object, (key, body)) in listed.iter().zip(&expected) {
        assert_eq!(object.size, body.len() as u64, "listed size of {key:?}");
        assert!(object.etag.is_some(), "listed ETag of {key:?}");
        assert!(object.last_modified.is_some(), "listed time of {key:?}");
    }
    listed
}

async fn prefixes_delimiters_and_start_after(source: &dyn Source) {
    let under_a = ListRequest {
        prefix: "a/".into(),
        max_keys: 1000,
        ..Default::default()
    };
    let (objects, _) = list_all(source, under_a.clone()).await;
    assert_eq!(
        keys(&objects),
        ["a/empty", "a/one", "a/sub/deep", "a/two"],
        "a prefix lists only the keys under it"
    );

    let folders = ListRequest {
        delimiter: Some("/".into()),
        ..under_a.clone()
    };
    let (objects, prefixes) = list_all(source, folders).await;
    assert_eq!(
        keys(&objects),
        ["a/empty", "a/one", "a/two"],
        "delimited keys"
    );
    assert_eq!(prefixes, ["a/sub/"], "delimited common prefixes");

    let after = ListRequest {
        start_after: Some("a/one".into()),
        ..under_a
    };
    let (objects, _) = list_all(source, after).await;
    assert_eq!(
        keys(&objects),
        ["a/sub/deep", "a/two"],
        "start-after lists only keys after it"
    );
}

async fn heads_describe_what_was_listed(source: &dyn Source, listed: &[ObjectInfo]) {
    for object in listed {
        let head = source.head(&object.key).await.expect("head");
        assert_eq!(head.key, object.key, "HEAD names the key it was asked for");
        assert_eq!(head.size, object.size, "HEAD size of {:?}", object.key);
        assert_eq!(head.etag, object.etag, "HEAD ETag of {:?}", object.key);
    }
}

async fn read(body: ByteStream) -> Vec<u8> {
    let chunks: Vec<_> = body.try_collect().await.expect("the body reads to its end");
    let mut all = BytesMut::new();
    for chunk in chunks {
        all.extend_from_slice(&chunk);
    }
    all.to_vec()
}

async fn ranges_and_opens_return_the_bytes(source: &dyn Source) {
    for (key, body) in fixture() {
        let whole = source
            .get(GetRequest {
                key: &key,
                ..Default::default()
            })
            .await
            .expect("get");
        assert_eq!(read(whole).await, body, "the whole of {key:?}");

        let opened = source.open(&key).await.expect("open");
        assert_eq!(
            opened.head.size,
            body.len() as u64,
            "open's size of {key:?}"
        );
        assert_eq!(read(opened.body).await, body, "open's body of {key:?}");

        if body.len() > 20 {
            let range = source
                .get(GetRequest {
                    key: &key,
                    range: Some(10..20),
                    ..Default::default()
                })
                .await
                .expect("ranged get");
            assert_eq!(read(range).await, &body[10..20], "bytes 10..20 of {key:?}");
        }
    }
}

async fn missing_keys_are_not_found(source: &dyn Source) {
    let err = source.head("a/missing").await.unwrap_err();
    assert_eq!(
        err.kind,
        SourceErrorKind::NotFound,
        "HEAD of a missing key: {err}"
    );
    let err = source
        .get(GetRequest {
            key: "a/missing",
            ..Default::default()
        })
        .await;
    match err {
        Err(e) => assert_eq!(
            e.kind,
            SourceErrorKind::NotFound,
            "GET of a missing key: {e}"
        ),
        Ok(body) => {
            let read: Result<Vec<_>, _> = body.try_collect().await;
            let e = read.expect_err("a missing key's body fails");
            assert_eq!(
                e.kind,
                SourceErrorKind::NotFound,
                "GET of a missing key: {e}"
            );
        }
    }
}
