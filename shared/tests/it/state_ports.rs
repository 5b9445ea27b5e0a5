//! The `StateStore` port: the conformance suite (`ferry::testing::state`), run against the local directory store and
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
use ferry::testing::state::{body_of, concurrent_increments_are_all_counted, conformance};

use futures_util::{StreamExt, stream};
use moto::Moto;

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
