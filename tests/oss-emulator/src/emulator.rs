//! The embeddable emulator: [`Emulator::builder`] configures and starts a server on a local
//! port; the returned [`Emulator`] gives its address and the in-process equivalents of the
//! admin API (buckets, objects, faults, counters).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use ferry::secret::Secret;
use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::body::Payload;
use crate::counters::CounterSnapshot;
use crate::error::ApiError;
use crate::faults::{FaultEntry, FaultError, FaultRule, Faults};
use crate::state::{AccessKey, Config, State};
use crate::store::model::{
    BucketInfo, ContentHeaders, ObjectAttrs, ObjectMeta, ObjectType, RestoreState, StorageClass,
};
use crate::store::{Object, Store};

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot use data directory {}: {source}", dir.display())]
    DataDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Fault(#[from] FaultError),
    #[error("cannot create bucket '{name}': {source}")]
    Bucket { name: String, source: ApiError },
    #[error("access key id and secret must not be empty: call .credentials(id, secret)")]
    NoCredentials,
}

/// Configures an [`Emulator`].
#[derive(Debug)]
pub struct EmulatorBuilder {
    access_key_id: String,
    secret: Secret,
    region: String,
    listen: SocketAddr,
    data_dir: Option<PathBuf>,
    restore_delay: Duration,
    fault_seed: Option<u64>,
    faults: Vec<FaultRule>,
    domains: Vec<String>,
    buckets: Vec<String>,
    clock_offset: TimeDelta,
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        EmulatorBuilder {
            access_key_id: String::new(),
            secret: Secret::default(),
            region: "cn-hangzhou".to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: None,
            restore_delay: Duration::from_secs(1),
            fault_seed: None,
            faults: Vec::new(),
            domains: Vec::new(),
            buckets: Vec::new(),
            clock_offset: TimeDelta::zero(),
        }
    }
}

impl EmulatorBuilder {
    /// The only AccessKey pair requests may be signed with.
    pub fn credentials(
        mut self,
        access_key_id: impl Into<String>,
        access_key_secret: impl Into<Secret>,
    ) -> Self {
        self.access_key_id = access_key_id.into();
        self.secret = access_key_secret.into();
        self
    }

    /// Region id (`cn-hangzhou`; an `oss-` prefix is dropped). Signatures must use it.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        let r: String = region.into();
        self.region = r.strip_prefix("oss-").map(str::to_owned).unwrap_or(r);
        self
    }

    /// Address to listen on (default `127.0.0.1:0`, a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Keep data on disk in `dir` (survives restarts); `None` keeps it in memory.
    pub fn data_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.data_dir = dir;
        self
    }

    /// How long RestoreObject takes (default 1 s).
    pub fn restore_delay(mut self, d: Duration) -> Self {
        self.restore_delay = d;
        self
    }

    /// Seed of the fault RNG (default: random, shown by `GET /-/admin/faults`).
    pub fn fault_seed(mut self, seed: u64) -> Self {
        self.fault_seed = Some(seed);
        self
    }

    /// A fault rule active from the start.
    pub fn fault(mut self, rule: FaultRule) -> Self {
        self.faults.push(rule);
        self
    }

    /// A base domain for virtual-hosted addressing (`bucket.<domain>`), besides IP addresses
    /// and `localhost`.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domains.push(domain.into());
        self
    }

    /// A bucket to create at start (if missing).
    pub fn bucket(mut self, name: impl Into<String>) -> Self {
        self.buckets.push(name.into());
        self
    }

    /// How far the emulator's clock is from real time (default zero; negative: behind, kept
    /// to the millisecond). The emulator's "now" is real time plus this offset, for everything
    /// time-based: the `Date` header, the 15-minute `RequestTimeTooSkewed` check and presigned
    /// URL expiry, Last-Modified of written objects, multipart and part times, bucket creation
    /// dates and restore progress. So `-20 min` plays a server whose clock is 20 minutes behind
    /// the client's, i.e. a client whose local clock is 20 minutes fast. See
    /// [`Emulator::set_clock_offset`].
    pub fn clock_offset(mut self, offset: TimeDelta) -> Self {
        self.clock_offset = offset;
        self
    }

    /// Binds the port and starts serving.
    pub async fn start(self) -> Result<Emulator, StartError> {
        if self.access_key_id.is_empty() || self.secret.is_empty() {
            return Err(StartError::NoCredentials);
        }
        let store = match &self.data_dir {
            Some(dir) => Store::open(dir).map_err(|source| StartError::DataDir {
                dir: dir.clone(),
                source,
            })?,
            None => Store::memory(),
        };
        let faults = Faults::new(self.fault_seed.unwrap_or_else(|| fastrand::u64(..)));
        for rule in self.faults {
            faults.add(rule)?;
        }
        let listener = TcpListener::bind(self.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: self.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: self.listen,
            source,
        })?;
        let config = Config {
            region: self.region,
            domains: self.domains,
        };
        let access_key = AccessKey {
            id: self.access_key_id,
            secret: self.secret,
        };
        let state = Arc::new(State::new(
            config,
            access_key,
            store,
            faults,
            addr,
            self.restore_delay,
            self.clock_offset,
        ));
        for name in self.buckets {
            crate::ops::bucket::validate_bucket_name(&name)
                .and_then(|_| {
                    state
                        .store
                        .create_bucket(BucketInfo::new(&name, state.now_millis()))
                })
                .map_err(|source| StartError::Bucket {
                    name: name.clone(),
                    source,
                })?;
        }
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(crate::server::run(listener, state.clone(), rx));
        Ok(Emulator {
            state,
            addr,
            shutdown: tx,
            task: Some(task),
        })
    }
}

/// What to store with [`Emulator::put_object_with`].
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    pub storage_class: StorageClass,
    pub content_type: Option<String>,
    /// User metadata without the `x-oss-meta-` prefix.
    pub user_meta: BTreeMap<String, String>,
}

/// A stored object as the in-process API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// Without quotes: upper-case hex MD5, or `HEX-N` for multipart objects.
    pub etag: String,
    pub crc64: Option<u64>,
    pub storage_class: StorageClass,
    /// `Normal` or `Multipart`.
    pub object_type: String,
    pub content_type: Option<String>,
    pub user_meta: BTreeMap<String, String>,
    /// `x-oss-restore` as HEAD would show it now.
    pub restore: Option<String>,
    /// Whether GET would return the data now (archived objects need a finished restore).
    pub readable: bool,
}

impl ObjectInfo {
    /// `meta` as seen at `now` (the emulator's clock, in milliseconds).
    fn from_meta(meta: &ObjectMeta, now: i64) -> ObjectInfo {
        ObjectInfo {
            key: meta.key.clone(),
            size: meta.size,
            etag: meta.etag.clone(),
            crc64: meta.crc64,
            storage_class: meta.attrs.storage_class,
            object_type: meta.object_type.name().to_owned(),
            content_type: meta.attrs.content.content_type.clone(),
            user_meta: meta.attrs.user_meta.clone(),
            restore: meta.restore_header(now),
            readable: meta.readable(now),
        }
    }

    /// Whether a restore is running.
    pub fn restoring(&self) -> bool {
        self.restore
            .as_deref()
            .is_some_and(|r| r.contains("\"true\""))
    }
}

/// A running emulator. Dropping it stops the server (without waiting); call
/// [`Emulator::shutdown`] to wait for requests in flight.
pub struct Emulator {
    state: Arc<State>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .field("region", &self.state.config.region)
            .finish()
    }
}

/// The secret that goes with a test's AccessKey id (see [`Emulator::for_test`]).
pub fn test_secret(access_key_id: &str) -> String {
    format!("{access_key_id}-secret")
}

impl Emulator {
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// An emulator for a test: `cn-hangzhou`, the AccessKey `access_key_id` with the secret
    /// [`test_secret`]`(access_key_id)` (the convention ferry's tests sign with, so a test
    /// needs only the id), in memory, on a free loopback port. Panics if it cannot start: the
    /// test cannot go on without it.
    pub async fn for_test(access_key_id: &str) -> Emulator {
        Emulator::builder()
            .credentials(access_key_id, test_secret(access_key_id))
            .start()
            .await
            .expect("the OSS emulator starts")
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` — path style; `http://<bucket>.127.0.0.1:PORT` style also works
    /// where the client can resolve it.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Region id without the `oss-` prefix.
    pub fn region(&self) -> &str {
        &self.state.config.region
    }

    /// ferry's OSS client for this emulator: its endpoint (path style, plain HTTP), its region
    /// and the key pair current now. Callers add what their case needs (retries, V1) and build.
    pub fn client_builder(&self) -> ferry::oss::OssClientBuilder {
        let key = self.state.identity();
        ferry::oss::OssClient::builder()
            .endpoint(self.endpoint())
            .region(key.region)
            .credentials(ferry::oss::Credentials::new(key.access_key_id, key.secret))
            .allow_http(true)
    }

    /// [`client_builder`](Self::client_builder) built with ferry's default retries.
    pub fn client(&self) -> ferry::oss::OssClient {
        self.client_builder()
            .build()
            .expect("a client for the emulator builds")
    }

    /// The AccessKey id requests must be signed with now (it changes with
    /// [`Emulator::rotate_credentials`]).
    pub fn access_key_id(&self) -> String {
        self.state.access_key_id()
    }

    /// Replaces the AccessKey pair, as an operator rotating a real key would: from the next
    /// request on, on every connection, the old id gets 403 `InvalidAccessKeyId` and the new id
    /// with the old secret 403 `SignatureDoesNotMatch`. Requests already past their signature
    /// check finish normally.
    ///
    /// # Panics
    ///
    /// If the id or the secret is empty (as [`EmulatorBuilder::start`] refuses them).
    pub fn rotate_credentials(
        &self,
        access_key_id: impl Into<String>,
        access_key_secret: impl Into<Secret>,
    ) {
        let key = AccessKey {
            id: access_key_id.into(),
            secret: access_key_secret.into(),
        };
        assert!(
            !key.id.is_empty() && !key.secret.is_empty(),
            "rotate_credentials: the access key id and secret must not be empty"
        );
        self.state.set_access_key(key);
    }

    /// Creates a bucket; `Ok(false)` if it already existed.
    pub fn create_bucket(&self, name: &str) -> Result<bool, ApiError> {
        crate::ops::bucket::validate_bucket_name(name)?;
        self.state
            .store
            .create_bucket(BucketInfo::new(name, self.state.now_millis()))
    }

    /// Makes `bucket` requester-pays (or not): every request to it must carry
    /// `x-oss-request-payer: requester` (`x-amz-request-payer` in the S3 dialect), else 403
    /// AccessDenied.
    pub fn set_requester_pays(&self, bucket: &str, on: bool) {
        self.state.set_requester_pays(bucket, on);
    }

    /// Deletes a bucket with everything in it.
    pub fn delete_bucket(&self, name: &str) -> Result<(), ApiError> {
        self.state.store.delete_bucket(name, true)
    }

    pub fn bucket_names(&self) -> Vec<String> {
        self.state
            .store
            .buckets()
            .into_iter()
            .map(|b| b.name)
            .collect()
    }

    /// Stores an object directly (test setup, benchmarks), as a PutObject would.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        data: impl Into<Bytes>,
    ) -> Result<ObjectInfo, ApiError> {
        self.put_object_with(bucket, key, data, PutOptions::default())
            .await
    }

    pub async fn put_object_with(
        &self,
        bucket: &str,
        key: &str,
        data: impl Into<Bytes>,
        opts: PutOptions,
    ) -> Result<ObjectInfo, ApiError> {
        crate::ops::attrs::validate_key(key)?;
        self.state.store.bucket(bucket)?;
        let written = self
            .state
            .store
            .write_payload(Payload::from_bytes(data.into()), u64::MAX)
            .await?;
        let meta = ObjectMeta {
            key: key.to_owned(),
            size: written.blob.len(),
            etag: written.etag(),
            content_md5: Some(base64::engine::general_purpose::STANDARD.encode(written.md5)),
            crc64: Some(written.crc64),
            last_modified_ms: self.state.now_millis(),
            object_type: ObjectType::Normal,
            attrs: ObjectAttrs {
                content: ContentHeaders {
                    content_type: opts.content_type,
                    ..ContentHeaders::default()
                },
                user_meta: opts.user_meta,
                storage_class: opts.storage_class,
                ..ObjectAttrs::default()
            },
            restore: None,
        };
        let info = ObjectInfo::from_meta(&meta, self.state.now_millis());
        self.state.store.put_object(
            bucket,
            Object {
                meta,
                blob: written.blob,
            },
            false,
        )?;
        Ok(info)
    }

    /// Stores many objects at once, straight into the in-memory store — no HTTP, no await —
    /// for seeding large buckets in tests and benchmarks (a million small objects in seconds).
    /// Each object is stored as a PutObject of its bytes would store it (MD5 ETag, CRC-64,
    /// Standard class, no metadata); request counters do not move. Returns how many were
    /// stored. Refused for an emulator with a data directory (use `put_object` there, which also
    /// writes the disk).
    pub fn seed_objects<K, B>(
        &self,
        bucket: &str,
        objects: impl IntoIterator<Item = (K, B)>,
    ) -> Result<u64, ApiError>
    where
        K: Into<String>,
        B: Into<Bytes>,
    {
        if self.state.store.is_disk() {
            return Err(ApiError::internal(
                "seed_objects works on in-memory emulators only: start the emulator without a data directory, or use put_object",
            ));
        }
        self.state.store.bucket(bucket)?;
        let now = self.state.now_millis();
        let mut stored = 0;
        for (key, data) in objects {
            let (key, data): (String, Bytes) = (key.into(), data.into());
            crate::ops::attrs::validate_key(&key)?;
            self.state
                .store
                .put_object(bucket, seeded_object(key, data, now), false)?;
            stored += 1;
        }
        Ok(stored)
    }

    /// An object's metadata, or `None`.
    pub fn object_info(&self, bucket: &str, key: &str) -> Option<ObjectInfo> {
        self.state
            .store
            .object(bucket, key)
            .ok()
            .map(|o| ObjectInfo::from_meta(&o.meta, self.state.now_millis()))
    }

    /// An object's bytes (read whole; meant for test assertions), or `None`.
    pub async fn object_bytes(&self, bucket: &str, key: &str) -> Option<Bytes> {
        let obj = self.state.store.object(bucket, key).ok()?;
        let mut stream = obj.blob.stream(0, obj.meta.size);
        let mut out = bytes::BytesMut::with_capacity(obj.meta.size as usize);
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.ok()?);
        }
        Some(out.freeze())
    }

    /// Keys in a bucket, in listing order.
    pub fn keys(&self, bucket: &str) -> Result<Vec<String>, ApiError> {
        self.state
            .store
            .read(bucket, |b| b.objects.keys().cloned().collect())
    }

    /// Finishes any running restore of an archived object now.
    pub fn complete_restore(&self, bucket: &str, key: &str) -> Result<(), ApiError> {
        let now = self.state.now_millis();
        self.state.store.update_object(bucket, key, |m| {
            if m.restore_state(now) == RestoreState::InProgress
                && let Some(r) = &mut m.restore
            {
                r.ready_at_ms = now;
            }
            Ok(())
        })
    }

    pub fn add_fault(&self, rule: FaultRule) -> Result<u64, FaultError> {
        self.state.faults.add(rule)
    }

    pub fn remove_fault(&self, id: u64) -> bool {
        self.state.faults.remove(id)
    }

    pub fn clear_faults(&self) {
        self.state.faults.clear()
    }

    pub fn faults(&self) -> Vec<FaultEntry> {
        self.state.faults.list()
    }

    pub fn set_fault_seed(&self, seed: u64) {
        self.state.faults.set_seed(seed)
    }

    pub fn counters(&self) -> CounterSnapshot {
        self.state.counters.snapshot()
    }

    pub fn reset_counters(&self) {
        self.state.counters.reset()
    }

    pub fn set_restore_delay(&self, d: Duration) {
        self.state.set_restore_delay(d)
    }

    /// Moves this emulator's clock to real time plus `offset` (negative: behind), from the
    /// next request on; other emulators in the process keep their own clocks. Stored times do
    /// not move, only what is written or checked from now on (see
    /// [`EmulatorBuilder::clock_offset`]; the admin API's `PUT /-/admin/clock` does the same).
    pub fn set_clock_offset(&self, offset: TimeDelta) {
        self.state.set_clock_offset(offset)
    }

    /// How far this emulator's clock is from real time.
    pub fn clock_offset(&self) -> TimeDelta {
        self.state.clock_offset()
    }

    /// This emulator's "now": real time plus its clock offset.
    pub fn now(&self) -> DateTime<Utc> {
        self.state.now()
    }

    /// Stops accepting connections and waits (up to 5 s) for requests in flight.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// An object as [`Emulator::seed_objects`] stores it.
fn seeded_object(key: String, data: Bytes, now_ms: i64) -> Object {
    use md5::{Digest, Md5};
    let md5: [u8; 16] = Md5::digest(&data).into();
    let meta = ObjectMeta {
        key,
        size: data.len() as u64,
        etag: hex::encode_upper(md5),
        content_md5: Some(base64::engine::general_purpose::STANDARD.encode(md5)),
        crc64: Some(ferry::crc64::checksum(&data)),
        last_modified_ms: now_ms,
        object_type: ObjectType::Normal,
        attrs: ObjectAttrs::default(),
        restore: None,
    };
    let segments = if data.is_empty() {
        Vec::new()
    } else {
        vec![crate::store::blob::Segment::Mem(data)]
    };
    Object {
        meta,
        blob: crate::store::blob::Blob::from_segments(segments),
    }
}
