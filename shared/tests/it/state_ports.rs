//! The `StateStore` port: one conformance suite, run against the local directory store and
//! against S3 on a real moto server (which honours `If-None-Match` and `If-Match` on PutObject).
//!
//! What the pipeline relies on: an absent key reads as absent; a create-only write succeeds for
//! exactly one writer and never replaces the value; a compare-and-swap fails on a stale version,
//! so 16 tasks incrementing one counter 20 times each end at exactly 320; listings come in byte
//! order and honour prefixes; keys with spaces and non-ASCII characters round-trip; keys no
//! adapter may store are refused the same way by both.

use crate::support::moto;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use ferry::state::local::LocalStore;
use ferry::state::s3::S3Store;
use ferry::state::{StateErrorKind, StateStore};
use futures_util::future::join_all;
use futures_util::{StreamExt, stream};
use moto::Moto;

/// Every conformance run must finish within this.
const SUITE_LIMIT: Duration = Duration::from_secs(180);
const TASKS: usize = 16;
const INCREMENTS: usize = 20;

// ---------------------------------------------------------------------------------------------
// conformance suite

/// Runs every case against `store`, which must be empty.
async fn conformance(store: &dyn StateStore) {
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

async fn body_of(store: &dyn StateStore, key: &str) -> Option<Bytes> {
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
async fn concurrent_increments_are_all_counted(stores: &[&dyn StateStore], key: &str) {
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
    use ferry::pipeline::cas::{self, Edit, Layout};
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

// ---------------------------------------------------------------------------------------------
// local directory

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    conformance(&store).await;
}

/// Two stores on one directory share nothing in memory, only the lock file: the compare-and-swap
/// holds across them as it does across processes (each holds its own open lock file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_compare_and_swap_holds_across_stores_on_one_directory() {
    let dir = tempfile::tempdir().unwrap();
    let a = LocalStore::open(dir.path()).unwrap();
    let b = LocalStore::open(dir.path()).unwrap();
    let stores: [&dyn StateStore; 2] = [&a, &b];
    let run = concurrent_increments_are_all_counted(&stores, "shared/counter");
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("bounded");
}

#[tokio::test]
async fn local_store_keeps_values_as_files_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let key = "jobs/j1/runs/r1/progress.json";
    let version = store
        .put(key, Bytes::from_static(b"{\"done\":3}"))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(dir.path().join(key)).unwrap(),
        b"{\"done\":3}",
        "a key is the file of that path"
    );
    assert_eq!(store.describe(), format!("dir:{}", dir.path().display()));
    drop(store);

    let reopened = LocalStore::open(dir.path()).unwrap();
    let got = reopened.get(key).await.unwrap().unwrap();
    assert_eq!(
        got.version, version,
        "versions are derived from the content"
    );
    assert_eq!(
        reopened.list("").await.unwrap(),
        [key],
        "only keys are listed"
    );
    let tmp = dir.path().join(".ferry-store/tmp");
    assert_eq!(
        std::fs::read_dir(tmp).unwrap().count(),
        0,
        "no temporary files left"
    );
}

#[tokio::test]
async fn local_store_explains_keys_a_directory_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    store.put("clash", Bytes::from_static(b"1")).await.unwrap();
    let err = store
        .put("clash/below", Bytes::from_static(b"2"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"clash\" is a key"), "{err}");
    assert_eq!(store.get("clash/below").await.unwrap(), None);

    store
        .put("tree/leaf", Bytes::from_static(b"3"))
        .await
        .unwrap();
    for attempt in [
        store.put("tree", Bytes::from_static(b"4")).await.map(Some),
        store.put_if_absent("tree", Bytes::from_static(b"4")).await,
    ] {
        let err = attempt.unwrap_err();
        assert!(err.to_string().contains("start with \"tree/\""), "{err}");
    }

    let err = store
        .put(".ferry-store/lock", Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(".ferry-store"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// S3 on moto

static BUCKETS: AtomicUsize = AtomicUsize::new(0);

async fn bucket(moto: &Moto, case: &str) -> (aws_sdk_s3::Client, String) {
    let name = format!("state-{case}-{}", BUCKETS.fetch_add(1, Ordering::Relaxed));
    (moto.create_bucket(&name).await, name)
}

#[tokio::test]
async fn s3_store_conforms() {
    let moto = Moto::shared();
    let (s3, bucket) = bucket(moto, "conform").await;
    let store = S3Store::new(s3, bucket, "ferry-state");
    conformance(&store).await;
}

#[tokio::test]
async fn s3_stores_under_different_prefixes_do_not_see_each_other() {
    let moto = Moto::shared();
    let (s3, bucket) = bucket(moto, "prefixes").await;
    let a = S3Store::new(s3.clone(), &bucket, "run-a");
    let b = S3Store::new(s3.clone(), &bucket, "run-b/");
    assert_eq!((a.prefix(), b.prefix()), ("run-a/", "run-b/"));
    assert_eq!(a.describe(), format!("s3://{bucket}/run-a/"));

    a.put("jobs/j/job.json", Bytes::from_static(b"a"))
        .await
        .unwrap();
    assert_eq!(a.list("").await.unwrap(), ["jobs/j/job.json"]);
    assert!(b.list("").await.unwrap().is_empty());
    assert_eq!(b.get("jobs/j/job.json").await.unwrap(), None);
    let object = s3
        .get_object()
        .bucket(&bucket)
        .key("run-a/jobs/j/job.json")
        .send()
        .await
        .expect("the key lives under the prefix");
    assert_eq!(object.content_length(), Some(1));
}

#[tokio::test]
async fn s3_list_pages_through_more_than_a_thousand_keys() {
    let moto = Moto::shared();
    let (s3, bucket) = bucket(moto, "paging").await;
    let store = S3Store::new(s3, bucket, "");
    let keys: Vec<String> = (0..1005).map(|i| format!("results/{i:05}.json")).collect();
    let puts = stream::iter(&keys)
        .map(|key| store.put(key, Bytes::from_static(b"{}")))
        .buffer_unordered(16);
    let written: Vec<_> = tokio::time::timeout(Duration::from_secs(120), puts.collect())
        .await
        .expect("bounded");
    assert!(written.iter().all(Result::is_ok));
    assert_eq!(store.list("results/").await.unwrap(), keys);
}

#[tokio::test]
async fn s3_missing_bucket_is_an_error_not_an_empty_store() {
    let moto = Moto::shared();
    let store = S3Store::new(moto.s3_client(), "no-such-state-bucket", "p");
    let err = store.get("jobs/j/job.json").await.unwrap_err();
    assert_eq!(err.kind, StateErrorKind::Permanent, "{err}");
    assert!(err.to_string().contains("NoSuchBucket"), "{err}");
    assert!(err.to_string().contains("jobs/j/job.json"), "{err}");
    assert!(
        store
            .put_if_match("k", Bytes::new(), "\"v\"")
            .await
            .is_err()
    );
    assert!(store.list("").await.is_err());
}

/// S3 answers 409 ConditionalRequestConflict when a conditional write meets another write to
/// the key in progress. A create-only write tries again (it cannot know yet whether the key
/// exists); a compare-and-swap reports the conflict as "someone else wrote first".
#[tokio::test]
async fn s3_conditional_write_conflicts_are_retried_or_reported() {
    let moto = Moto::shared();
    let (s3, bucket) = bucket(moto, "conflicts").await;
    let proxy = ConflictProxy::start(moto.addr(), 2).await;
    let store = S3Store::new(proxied_s3_client(&proxy.endpoint()), &bucket, "p");

    let created = store
        .put_if_absent("result.json", Bytes::from_static(b"mine"))
        .await
        .unwrap();
    assert!(created.is_some(), "created after two conflicts");
    assert_eq!(proxy.conflicts(), 2);
    let direct = S3Store::new(s3, &bucket, "p");
    assert_eq!(body_of(&direct, "result.json").await.unwrap(), "mine");

    let version = direct.get("result.json").await.unwrap().unwrap().version;
    proxy.conflict_next(1);
    let swapped = store
        .put_if_match("result.json", Bytes::from_static(b"theirs"), &version)
        .await
        .unwrap();
    assert_eq!(swapped, None, "a conflict means: read again and retry");
    assert_eq!(body_of(&direct, "result.json").await.unwrap(), "mine");

    proxy.conflict_next(u64::MAX);
    let err = store
        .put_if_absent("other.json", Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, StateErrorKind::Transient, "{err}");
    assert!(err.to_string().contains("409"), "{err}");
    assert_eq!(direct.get("other.json").await.unwrap(), None);
}

fn proxied_s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = Moto::shared()
        .s3_client()
        .config()
        .to_builder()
        .endpoint_url(endpoint)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Forwards S3 requests to moto, but answers the next `n` conditional PUTs (`If-None-Match` or
/// `If-Match`) with 409 ConditionalRequestConflict, which moto never sends.
struct ConflictProxy {
    addr: std::net::SocketAddr,
    left: std::sync::Arc<std::sync::atomic::AtomicU64>,
    answered: std::sync::Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl ConflictProxy {
    async fn start(upstream: std::net::SocketAddr, n: u64) -> ConflictProxy {
        use std::sync::Arc;
        use std::sync::atomic::AtomicU64;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let left = Arc::new(AtomicU64::new(n));
        let answered = Arc::new(AtomicUsize::new(0));
        let (l, a) = (left.clone(), answered.clone());
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(conflict_or_forward(socket, upstream, l.clone(), a.clone()));
            }
        });
        ConflictProxy {
            addr,
            left,
            answered,
            task,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn conflict_next(&self, n: u64) {
        self.left.store(n, Ordering::SeqCst);
    }

    fn conflicts(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }
}

impl Drop for ConflictProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn conflict_or_forward(
    mut client: tokio::net::TcpStream,
    upstream: std::net::SocketAddr,
    left: std::sync::Arc<std::sync::atomic::AtomicU64>,
    answered: std::sync::Arc<AtomicUsize>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut data = Vec::new();
    let mut chunk = [0u8; 16384];
    let end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
    let conditional = head.starts_with("put ")
        && (head.contains("\r\nif-none-match:") || head.contains("\r\nif-match:"));
    let take = conditional
        && left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    if !take {
        let Ok(mut moto) = tokio::net::TcpStream::connect(upstream).await else {
            return;
        };
        if moto.write_all(&data).await.is_ok() {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut moto).await;
        }
        return;
    }
    // Read the body before answering, so the client is not cut off mid-send.
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() - end < length {
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&chunk[..n]),
        }
    }
    answered.fetch_add(1, Ordering::SeqCst);
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\
                <Code>ConditionalRequestConflict</Code><Message>A conflicting operation \
                occurred.</Message><RequestId>CONFLICT</RequestId></Error>";
    let response = format!(
        "HTTP/1.1 409 Conflict\r\nContent-Type: application/xml\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
}
