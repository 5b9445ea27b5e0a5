//! The `StateStore` conformance suite: what the pipeline relies on from every state store.
//!
//! An absent key reads as absent; a create-only write succeeds for exactly one writer and never
//! replaces the value; a compare-and-swap fails on a stale version, so 16 tasks incrementing one
//! counter 20 times each end at exactly 320; listings come in byte order and honour prefixes;
//! keys with spaces and non-ASCII characters round-trip; keys no adapter may store are refused
//! the same way by all. ferry's tests run it against the local directory store and the S3 store
//! on moto; a new adapter runs it too.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;

use crate::state::{StateErrorKind, StateStore};

/// Every conformance run must finish within this.
const SUITE_LIMIT: Duration = Duration::from_secs(180);
const TASKS: usize = 16;
const INCREMENTS: usize = 20;

/// Runs every case against `store`, which must be empty. Panics (with the case's message) when
/// the store breaks a rule; bounded in time.
pub async fn conformance(store: &dyn StateStore) {
    let suite = async {
        absent_keys_read_as_none(store).await;
        put_then_get(store).await;
        put_if_absent_has_one_winner(store).await;
        put_if_match_needs_the_current_version(store).await;
        concurrent_increments_are_all_counted(&[store], "counter/progress.json").await;
        cas_updates_are_all_counted(store, "counter/cas.json").await;
        list_is_in_byte_order_and_honours_prefixes(store).await;
        keys_with_spaces_and_unicode_round_trip(store).await;
        bad_keys_are_refused(store).await;
    };
    tokio::time::timeout(SUITE_LIMIT, suite)
        .await
        .expect("the state store conformance suite finished in time");
}

/// The value stored at `key`, if any.
pub async fn body_of(store: &dyn StateStore, key: &str) -> Option<Bytes> {
    store.get(key).await.expect("get").map(|v| v.body)
}

async fn absent_keys_read_as_none(store: &dyn StateStore) {
    assert_eq!(store.get("absent/never-written.json").await.unwrap(), None);
    assert!(
        store.list("").await.unwrap().is_empty(),
        "a fresh store is empty"
    );
}

async fn put_then_get(store: &dyn StateStore) {
    let key = "jobs/j1/job.json";
    let v1 = store
        .put(key, Bytes::from_static(b"{\"v\":1}"))
        .await
        .unwrap();
    let got = store.get(key).await.unwrap().expect("written");
    assert_eq!((got.body.as_ref(), &got.version), (&b"{\"v\":1}"[..], &v1));

    let v2 = store
        .put(key, Bytes::from_static(b"{\"v\":2}"))
        .await
        .unwrap();
    assert_ne!(v1, v2, "new content, new version");
    let got = store.get(key).await.unwrap().expect("overwritten");
    assert_eq!((got.body.as_ref(), &got.version), (&b"{\"v\":2}"[..], &v2));

    let empty = store.put("jobs/j1/empty", Bytes::new()).await.unwrap();
    let got = store
        .get("jobs/j1/empty")
        .await
        .unwrap()
        .expect("an empty value exists");
    assert_eq!((got.body.len(), got.version), (0, empty));
}

async fn put_if_absent_has_one_winner(store: &dyn StateStore) {
    let key = "jobs/j1/runs/r1/results/shard-7/0.json";
    let first = store
        .put_if_absent(key, Bytes::from_static(b"first"))
        .await
        .unwrap();
    let version = first.expect("the first writer creates the key");
    let second = store
        .put_if_absent(key, Bytes::from_static(b"second"))
        .await
        .unwrap();
    assert_eq!(second, None, "the key existed");
    let got = store.get(key).await.unwrap().unwrap();
    assert_eq!((got.body.as_ref(), got.version), (&b"first"[..], version));

    // Racing writers: exactly one wins, and the stored value is the winner's.
    let race = "jobs/j1/runs/r1/results/shard-8/0.json";
    let writers = (0..8).map(|i| async move {
        let body = Bytes::from(format!("writer-{i}"));
        (i, store.put_if_absent(race, body).await.unwrap())
    });
    let winners: Vec<_> = join_all(writers)
        .await
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .collect();
    assert_eq!(winners.len(), 1, "one create-only write wins: {winners:?}");
    let stored = body_of(store, race).await.unwrap();
    assert_eq!(stored, format!("writer-{}", winners[0].0));
}

async fn put_if_match_needs_the_current_version(store: &dyn StateStore) {
    let key = "jobs/j1/runs/r1/cas.json";
    let v1 = store.put(key, Bytes::from_static(b"one")).await.unwrap();
    let v2 = store
        .put_if_match(key, Bytes::from_static(b"two"), &v1)
        .await
        .unwrap()
        .expect("the version read is current");
    let got = store.get(key).await.unwrap().unwrap();
    assert_eq!((got.body.as_ref(), &got.version), (&b"two"[..], &v2));

    let stale = store
        .put_if_match(key, Bytes::from_static(b"lost update"), &v1)
        .await
        .unwrap();
    assert_eq!(stale, None, "a stale version is refused");
    assert_eq!(body_of(store, key).await.unwrap(), "two", "value untouched");

    let gone = store
        .put_if_match(
            "jobs/j1/runs/r1/missing.json",
            Bytes::from_static(b"x"),
            &v2,
        )
        .await
        .unwrap();
    assert_eq!(gone, None, "no key, no match");
    assert_eq!(
        store.get("jobs/j1/runs/r1/missing.json").await.unwrap(),
        None
    );
}

/// `TASKS` tasks, spread over `stores` (all views of one store), each add 1 to the counter at
/// `key` `INCREMENTS` times with a read / compare-and-swap / retry loop.
pub async fn concurrent_increments_are_all_counted(stores: &[&dyn StateStore], key: &str) {
    stores[0].put(key, Bytes::from_static(b"0")).await.unwrap();
    let retries = AtomicUsize::new(0);
    let task = |t: usize| {
        let (store, retries) = (stores[t % stores.len()], &retries);
        async move {
            for _ in 0..INCREMENTS {
                increment(store, key, retries).await;
            }
        }
    };
    join_all((0..TASKS).map(task)).await;
    let total = body_of(stores[0], key).await.unwrap();
    assert_eq!(
        total,
        (TASKS * INCREMENTS).to_string(),
        "every increment counted ({} retries after conflicts)",
        retries.load(Ordering::Relaxed)
    );
}

/// The pipeline's one compare-and-swap helper (`pipeline::cas::update`), racing itself: it
/// creates the document (put-if-absent) and then counts every update once.
async fn cas_updates_are_all_counted(store: &dyn StateStore, key: &str) {
    use crate::pipeline::cas::{self, Edit, Layout};
    let task = |_| async move {
        for _ in 0..INCREMENTS {
            cas::update(store, key, Layout::Compact, |n: Option<u64>| {
                Ok(Edit::Write(n.unwrap_or(0) + 1))
            })
            .await
            .unwrap();
        }
    };
    join_all((0..TASKS).map(task)).await;
    let total = cas::update(store, key, Layout::Compact, |n: Option<u64>| {
        Ok(Edit::Keep(n.unwrap_or(0)))
    })
    .await
    .unwrap();
    assert_eq!(total, (TASKS * INCREMENTS) as u64, "every update counted");
}

async fn increment(store: &dyn StateStore, key: &str, retries: &AtomicUsize) {
    for _ in 0..10_000 {
        let current = store.get(key).await.unwrap().expect("counter exists");
        let n: u64 = std::str::from_utf8(&current.body).unwrap().parse().unwrap();
        let next = Bytes::from((n + 1).to_string());
        if store
            .put_if_match(key, next, &current.version)
            .await
            .unwrap()
            .is_some()
        {
            return;
        }
        retries.fetch_add(1, Ordering::Relaxed);
    }
    panic!("an increment of {key} kept conflicting");
}

async fn list_is_in_byte_order_and_honours_prefixes(store: &dyn StateStore) {
    let keys = [
        "list/z",
        "list/é",
        "list/a/c",
        "list/a b",
        "list/ab",
        "list/a/b",
        "list/B",
        "list/日本/語 file.json",
        "listing-sibling",
    ];
    for key in keys {
        store.put(key, Bytes::from(key)).await.unwrap();
    }
    let under = |prefix: &str| {
        let mut wanted: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| k.starts_with(prefix))
            .collect();
        wanted.sort(); // str's Ord is byte order
        wanted
    };
    for prefix in ["list/", "list/a", "list/a/", "list", "list/日本/"] {
        assert_eq!(
            store.list(prefix).await.unwrap(),
            under(prefix),
            "prefix {prefix:?}"
        );
    }
    assert_eq!(
        store.list("list/").await.unwrap(),
        [
            "list/B",
            "list/a b",
            "list/a/b",
            "list/a/c",
            "list/ab",
            "list/z",
            "list/é",
            "list/日本/語 file.json"
        ],
        "byte order: ' ' < '/' < 'B' < 'a' < 'z' < 'é' < '日'"
    );
    assert!(store.list("nothing/").await.unwrap().is_empty());
    let all = store.list("").await.unwrap();
    assert!(all.windows(2).all(|w| w[0] < w[1]), "sorted: {all:?}");
    assert!(all.iter().any(|k| k == "jobs/j1/job.json"), "{all:?}");
    // A prefix of other keys is not itself a value.
    assert_eq!(store.get("list/a").await.unwrap(), None);
}

async fn keys_with_spaces_and_unicode_round_trip(store: &dyn StateStore) {
    let keys = [
        "keys/日本語/ファイル名 with spaces.json",
        "keys/emoji 🚢/x+y=z&?.json",
        "keys/percent%20literal",
        "keys/trailing space ",
    ];
    for key in keys {
        store
            .put(key, Bytes::from(format!("value of {key}")))
            .await
            .unwrap();
    }
    for key in keys {
        assert_eq!(
            body_of(store, key).await,
            Some(Bytes::from(format!("value of {key}"))),
            "{key:?}"
        );
    }
    let mut sorted = keys.to_vec();
    sorted.sort();
    assert_eq!(store.list("keys/").await.unwrap(), sorted);
}

async fn bad_keys_are_refused(store: &dyn StateStore) {
    for key in [
        "",
        "/abs/key",
        "a//b",
        "a/../b",
        "../escape",
        "a/./b",
        "dir/",
        "ctl\u{1}x",
    ] {
        let err = store.put(key, Bytes::from_static(b"x")).await.unwrap_err();
        assert_eq!(err.kind, StateErrorKind::Permanent, "{key:?}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("{key:?}")) || (key.is_empty() && text.contains("empty")),
            "the error names the key {key:?}: {text}"
        );
        assert!(store.get(key).await.is_err(), "get {key:?}");
        assert!(store.put_if_absent(key, Bytes::new()).await.is_err());
        assert!(store.put_if_match(key, Bytes::new(), "v").await.is_err());
    }
}
