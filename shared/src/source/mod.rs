//! The `Source` port: where objects come from.
//!
//! The engine reads a source only through these calls — list a key range, HEAD one object,
//! GET a byte range as a stream, open a whole object (its description and its bytes from one
//! GET), and (opt-in) request a restore of an archived object — so the same copy, verify and
//! plan code serves Amazon S3, any S3-compatible store and OSS.
//! The source is read-only for ferry (architecture invariant 5): there is no call that writes,
//! except [`Source::restore`], which only asks the store to thaw an archived object.
//!
//! Adapters: [`s3`] (aws-sdk-s3: AWS and S3-compatible stores) and `oss` (ferry's OSS client).

pub mod oss;
pub mod s3;

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::Stream;

/// A stream of body bytes read from a source.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, SourceError>> + Send>>;

/// One object as a listing describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's key.
    pub key: String,
    /// The object's size, in bytes.
    pub size: u64,
    /// The ETag without quotes, as the source reports it.
    pub etag: Option<String>,
    /// When the object was last written, as the source reports it.
    pub last_modified: Option<DateTime<Utc>>,
    /// The source's own storage class name (`STANDARD`, `GLACIER`, `Archive`, …).
    pub storage_class: Option<String>,
    /// Whether the object is archived and not readable until restored, as far as the listing
    /// tells (S3 listings do not carry restore state; HEAD does).
    pub archive: ArchiveState,
}

/// Whether an object's bytes can be read now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ArchiveState {
    /// Not an archive class: readable.
    #[default]
    NotArchived,
    /// An archive class, not restored (or not known to be): reading fails until restored.
    Archived,
    /// A restore was requested and is still running.
    Restoring,
    /// Restored: readable until the restore expires.
    Restored,
}

/// One page of a listing.
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    /// The objects on this page, in key order.
    pub objects: Vec<ObjectInfo>,
    /// With a delimiter: the "directories" one level down.
    pub common_prefixes: Vec<String>,
    /// Pass back as `continuation` for the next page; `None` on the last page.
    pub next: Option<String>,
    /// Objects listed under keys that are not UTF-8 (S3 allows any bytes): ferry cannot name
    /// them at OSS, so each is failed by name, not the page.
    pub unnamable: Vec<UnnamableObject>,
}

/// An object whose key is not UTF-8, as the listing gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnnamableObject {
    /// The key as listed, percent-encoded (how reports name it).
    pub listed: String,
    /// The key's bytes, to place it in key order.
    pub bytes: Vec<u8>,
    /// The rest of the listing's description, under the key decoded lossily (`�` for each
    /// invalid byte), so the job's filters apply to it as to any other key.
    pub info: ObjectInfo,
}

/// What to list.
#[derive(Clone, Debug, Default)]
pub struct ListRequest {
    /// Only keys starting with this prefix (empty for all).
    pub prefix: String,
    /// Group keys up to this character into `common_prefixes`; `None` lists every key.
    pub delimiter: Option<String>,
    /// List keys strictly after this one.
    pub start_after: Option<String>,
    /// The `next` of the previous page; `None` for the first page.
    pub continuation: Option<String>,
    /// At most this many entries (1–1000).
    pub max_keys: u32,
}

/// One ranged, pinned read.
#[derive(Clone, Debug, Default)]
pub struct GetRequest<'a> {
    /// The object's key.
    pub key: &'a str,
    /// Bytes `start..end` (end exclusive); the whole object when `None`.
    pub range: Option<Range<u64>>,
    /// Read exactly this version (versioned buckets).
    pub version_id: Option<&'a str>,
    /// Fail unless the object's ETag is still this one.
    pub if_match: Option<&'a str>,
}

/// Checksums the source itself holds for an object, to check the streamed bytes against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceChecksums {
    /// MD5 of the whole object (S3 single-part ETag).
    pub md5: Option<[u8; 16]>,
    /// S3 full-object CRC-64/NVME.
    pub crc64nvme: Option<u64>,
    /// S3 full-object CRC-32C.
    pub crc32c: Option<u32>,
    /// OSS CRC-64/XZ (`x-oss-hash-crc64ecma`).
    pub oss_crc64: Option<u64>,
}

/// One object as HEAD describes it: everything needed to copy it faithfully.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectHead {
    /// The object's key.
    pub key: String,
    /// The object's size, in bytes.
    pub size: u64,
    /// The ETag without quotes, as the source reports it.
    pub etag: Option<String>,
    /// When the object was last written, as the source reports it.
    pub last_modified: Option<DateTime<Utc>>,
    /// The object's version id, on a versioned bucket.
    pub version_id: Option<String>,
    /// The source's own storage class name (`STANDARD`, `GLACIER`, `Archive`, …).
    pub storage_class: Option<String>,
    /// Whether the object's bytes can be read now or must be restored first.
    pub archive: ArchiveState,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// The raw `Expires` header value.
    pub expires: Option<String>,
    /// User metadata, names without the `x-amz-meta-` / `x-oss-meta-` prefix.
    pub user_metadata: Vec<(String, String)>,
    /// Tags (S3 tagging / OSS tagging), when the adapter fetched them.
    pub tags: Vec<(String, String)>,
    /// Checksums the source holds for the object, to check the streamed bytes against.
    pub checksums: SourceChecksums,
}

/// A whole object opened with one read: what HEAD would have said about it, taken from the
/// very response whose body is `body`, so the description and the bytes cannot disagree.
pub struct Opened {
    /// The object's description, from the same response as `body`.
    pub head: ObjectHead,
    /// The object's bytes.
    pub body: ByteStream,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

/// How fast a restore should be (S3 and OSS both know these three).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestoreTier {
    /// Fastest and most expensive (minutes, where the class allows it).
    Expedited,
    /// The store's default speed (hours).
    #[default]
    Standard,
    /// Slowest and cheapest.
    Bulk,
}

/// What a restore request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// A restore was started.
    Started,
    /// A restore was already running.
    AlreadyInProgress,
    /// The object is already restored (the restore may have been extended).
    AlreadyRestored,
}

/// An error from a source, classified the way the engine needs to act on it.
#[derive(Debug, thiserror::Error)]
#[error("{kind:?} error reading source {resource}: {message}")]
pub struct SourceError {
    /// What kind of failure it is, which decides whether to retry.
    pub kind: SourceErrorKind,
    /// Bucket/key (or bucket/prefix) concerned.
    pub resource: String,
    /// What happened, with the store's code and request id where it gave them. Never credentials.
    pub message: String,
}

/// The kind of a [`SourceError`], which decides what the engine does about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceErrorKind {
    /// The object or bucket does not exist (deleted since listing, wrong name).
    NotFound,
    /// Credentials or policy refuse access.
    AccessDenied,
    /// The object is archived and must be restored first.
    NeedsRestore,
    /// Throttled (S3 503 SlowDown, OSS 503/429): back off and retry.
    Throttled,
    /// Transient (5xx, connection reset, timeout, truncated body): retry.
    Transient,
    /// The object changed since it was listed or HEADed (ETag / version precondition failed).
    Changed,
    /// The bytes read do not match the source's own checksum.
    Integrity,
    /// Anything else: not retried.
    Permanent,
}

impl SourceError {
    /// An error of `kind` about `resource`.
    pub fn new(
        kind: SourceErrorKind,
        resource: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        SourceError {
            kind,
            resource: resource.into(),
            message: message.into(),
        }
    }

    /// Whether trying again may help: throttling, transient failures and integrity mismatches.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            SourceErrorKind::Throttled | SourceErrorKind::Transient | SourceErrorKind::Integrity
        )
    }
}

type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, SourceError>> + Send + 'a>>;

/// Where objects come from. Object-safe so the engine can hold `Arc<dyn Source>`.
pub trait Source: Send + Sync {
    /// A short description for reports and logs (`s3://bucket/prefix`), never with credentials.
    fn describe(&self) -> String;

    /// One page of keys in UTF-8 byte order.
    fn list<'a>(&'a self, req: &'a ListRequest) -> Fut<'a, ListPage>;

    /// Everything needed to copy one object faithfully.
    fn head<'a>(&'a self, key: &'a str) -> Fut<'a, ObjectHead>;

    /// The object's bytes, as a stream. The request pins the read to what HEAD saw (version id,
    /// ETag), so an object replaced mid-copy fails with [`SourceErrorKind::Changed`] instead of
    /// being stitched from two versions.
    fn get<'a>(&'a self, req: GetRequest<'a>) -> Fut<'a, ByteStream>;

    /// The whole object in one read: its description (as [`head`](Self::head) gives it) and its
    /// bytes, both from the same response. Small objects need nothing else, so copying one costs
    /// a single source request instead of a HEAD and a GET. The read is not pinned: whatever
    /// version the store answers with is described and streamed together.
    ///
    /// The default HEADs and then GETs pinned to what HEAD saw; adapters whose GET response
    /// carries everything HEAD does override it with one request.
    fn open<'a>(&'a self, key: &'a str) -> Fut<'a, Opened> {
        Box::pin(async move {
            let head = self.head(key).await?;
            let body = self
                .get(GetRequest {
                    key,
                    range: None,
                    version_id: head.version_id.as_deref(),
                    if_match: head.etag.as_deref(),
                })
                .await?;
            Ok(Opened { head, body })
        })
    }

    /// Asks the store to restore an archived object for `days`.
    fn restore<'a>(&'a self, key: &'a str, days: u32, tier: RestoreTier)
    -> Fut<'a, RestoreOutcome>;
}
