//! Copying one object: describe the source (HEAD, or the headers of the one GET that reads a
//! small listed object), choose single PUT or multipart, prove the bytes.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::integrity::{self, Digests, Inspector};
use super::metadata::destination_options;
use super::resume::UploadLedger;
use super::{
    CopyOptions, Destination, ObjectResult, Outcome, ServerSide, multipart, reconcile, server_side,
};
use crate::backoff::Backoff;
use crate::oss::RequestBody;
use crate::oss::types::ObjectOptions;
use crate::source::{
    ArchiveState, ByteStream, GetRequest, ObjectHead, ObjectInfo, Source, SourceError,
    SourceErrorKind,
};

/// Why a copy step failed, and whether trying again may help.
pub(super) struct Failure {
    pub reason: String,
    pub retryable: bool,
}

impl Failure {
    pub fn permanent(reason: impl Into<String>) -> Self {
        Failure {
            reason: reason.into(),
            retryable: false,
        }
    }
}

impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Self {
        Failure {
            retryable: e.is_retryable(),
            reason: e.to_string(),
        }
    }
}

impl From<crate::oss::Error> for Failure {
    fn from(e: crate::oss::Error) -> Self {
        Failure {
            retryable: e.is_retryable(),
            reason: format!("destination: {e}"),
        }
    }
}

/// Bytes that do not match the source's own checksum may have been altered on the way (or the
/// object replaced mid-read): reading again may give the right ones.
impl From<integrity::ChecksumMismatch> for Failure {
    fn from(e: integrity::ChecksumMismatch) -> Self {
        Failure {
            reason: e.to_string(),
            retryable: true,
        }
    }
}

/// How an attempt learns about the object it copies.
#[derive(Clone, Copy)]
enum Read<'a> {
    /// HEAD the source first (nothing is known yet).
    Head(&'a str),
    /// Open it with one GET (a listing showed it small and readable).
    Open(&'a ObjectInfo),
}

/// Copies objects from one source to one destination.
#[derive(Clone)]
pub struct Copier {
    /// Where objects are read.
    pub source: Arc<dyn Source>,
    /// The OSS bucket and prefix objects are written to.
    pub dest: Destination,
    /// How each object is copied.
    pub options: CopyOptions,
    /// Where multipart uploads in flight are recorded, so a retried copy resumes them.
    pub ledger: Arc<dyn UploadLedger>,
    /// Copy inside OSS when the pair allows it (CopyObject / UploadPartCopy, no bytes through
    /// ferry). Objects without a source CRC-64 are streamed instead, so every copy is still
    /// proven.
    pub server_side: Option<ServerSide>,
}

impl Copier {
    /// Copies `key`, reading it once and proving the bytes with CRC-64 (and the source's own
    /// checksum where it has one). A failure that may pass is tried again (up to
    /// `options.attempts`, with backoff; a multipart copy resumes from its finished parts).
    /// Never panics, never returns without an outcome.
    ///
    /// Nothing is known about the object yet, so the source is HEADed first to choose single
    /// PUT or multipart; [`copy_listed`](Self::copy_listed) saves that request when a listing
    /// already told the size.
    pub async fn copy(&self, key: &str) -> ObjectResult {
        self.with_retries(Read::Head(key)).await
    }

    /// Copies an object a listing described, like [`copy`](Self::copy). An object the listing
    /// shows below the multipart threshold and readable is read with one source request: the
    /// GET's own headers describe it (metadata, checksums, ETag, version) instead of a HEAD, so
    /// description and bytes come from the same response. If the object changed since the
    /// listing, the copy is of what the GET returned, and the result describes that.
    pub async fn copy_listed(&self, object: &ObjectInfo) -> ObjectResult {
        if !self.reads_in_one(object) {
            return self.copy(&object.key).await;
        }
        self.with_retries(Read::Open(object)).await
    }

    /// Whether one GET can copy `object`: small enough for a single PUT, readable, and not a
    /// server-side copy (which needs the source's CRC-64 before it starts).
    fn reads_in_one(&self, object: &ObjectInfo) -> bool {
        self.server_side.is_none()
            && object.archive == ArchiveState::NotArchived
            && object.size < self.options.multipart_threshold
    }

    async fn with_retries(&self, read: Read<'_>) -> ObjectResult {
        if let Some(skipped) = self.nameless(&read) {
            return skipped;
        }
        // Equal jitter from the configured delay, capped at 30 s: objects that failed together
        // (a throttled destination) do not come back together.
        let backoff = Backoff::new(self.options.retry_delay, Duration::from_secs(30));
        let mut attempt = 1;
        loop {
            let (key, result) = match read {
                Read::Head(key) => (key, self.copy_once(key).await),
                Read::Open(object) => (object.key.as_str(), self.copy_once_opened(object).await),
            };
            let retry = matches!(
                result.outcome,
                Outcome::Failed {
                    retryable: true,
                    ..
                }
            );
            if !retry || attempt >= self.options.attempts.max(1) {
                return result;
            }
            tracing::debug!(key, attempt, outcome = ?result.outcome, "copy failed; trying again");
            tokio::time::sleep(backoff.equal_jitter(attempt)).await;
            attempt += 1;
        }
    }

    /// The source prefix's own folder marker (`2024/` under source prefix `2024/`) has no name
    /// at the destination under the relative key layout with no destination prefix: OSS has
    /// no object at the bucket's root. It is skipped and says so, never failed.
    fn nameless(&self, read: &Read<'_>) -> Option<ObjectResult> {
        let (key, size, etag) = match read {
            Read::Head(key) => (*key, 0, None),
            Read::Open(o) => (o.key.as_str(), o.size, o.etag.clone()),
        };
        if !self.dest.key_for(key).is_empty() {
            return None;
        }
        let reason = "the source prefix's own folder marker has no name at the destination \
                      (key_layout relative with an empty destination.prefix)"
            .to_owned();
        Some(result(
            key,
            size,
            etag,
            Outcome::Skipped { reason },
            Vec::new(),
        ))
    }

    async fn copy_once(&self, key: &str) -> ObjectResult {
        let head = match self.source.head(key).await {
            Ok(h) => h,
            Err(e) => return result(key, 0, None, failed(e.into()), Vec::new()),
        };
        if matches!(
            head.archive,
            ArchiveState::Archived | ArchiveState::Restoring
        ) {
            return result(
                key,
                head.size,
                head.etag.clone(),
                Outcome::NeedsRestore,
                Vec::new(),
            );
        }
        self.copy_described(head, None).await
    }

    /// One attempt of [`copy_listed`](Self::copy_listed): open (one GET), then copy from the
    /// opened body.
    async fn copy_once_opened(&self, object: &ObjectInfo) -> ObjectResult {
        let key = object.key.as_str();
        match self.source.open(key).await {
            Ok(opened) => {
                let body = self.limited(opened.body);
                self.copy_described(opened.head, Some(body)).await
            }
            // An archive tier the listing did not show (S3 Intelligent-Tiering): the GET is
            // refused until a restore.
            Err(e) if e.kind == SourceErrorKind::NeedsRestore => result(
                key,
                object.size,
                object.etag.clone(),
                Outcome::NeedsRestore,
                Vec::new(),
            ),
            Err(e) => result(
                key,
                object.size,
                object.etag.clone(),
                failed(e.into()),
                Vec::new(),
            ),
        }
    }

    /// Copies the object `head` describes; `body` is its whole content when the source was
    /// already opened.
    async fn copy_described(&self, head: ObjectHead, body: Option<ByteStream>) -> ObjectResult {
        let key = head.key.as_str();
        let (mut options, notes) = match destination_options(&head, &self.options.storage_class) {
            Ok(o) => o,
            Err(reason) => {
                return result(
                    key,
                    head.size,
                    head.etag.clone(),
                    failed(Failure::permanent(reason)),
                    Vec::new(),
                );
            }
        };
        options.forbid_overwrite = self.options.forbid_overwrite;
        let copied = self.copy_bytes(&head, &options, body).await;
        let outcome = match copied {
            Ok((crc64, multipart)) => Outcome::Copied { crc64, multipart },
            Err(f) => failed(f),
        };
        result(key, head.size, head.etag.clone(), outcome, notes)
    }

    /// Server-side when configured and provable, else streamed; returns (CRC-64, multipart).
    /// An opened `body` is used for a single PUT; a multipart or server-side copy reads (or
    /// copies) ranges itself, so it drops the body unread.
    async fn copy_bytes(
        &self,
        head: &ObjectHead,
        options: &ObjectOptions,
        body: Option<ByteStream>,
    ) -> Result<(u64, bool), Failure> {
        if let (Some(pair), Some(_)) = (&self.server_side, head.checksums.oss_crc64) {
            drop(body);
            if let Ok(crc) = server_side::copy(self, head, options, pair.source_bucket()).await? {
                let multipart = head.size >= self.options.multipart_threshold.min(1 << 30);
                return Ok((crc, multipart));
            }
            tracing::info!(key = %head.key, "server-side copy has no CRC-64 to prove it; streaming instead");
            return self.copy_streamed(head, options, None).await;
        }
        self.copy_streamed(head, options, body).await
    }

    async fn copy_streamed(
        &self,
        head: &ObjectHead,
        options: &ObjectOptions,
        body: Option<ByteStream>,
    ) -> Result<(u64, bool), Failure> {
        if head.size >= self.options.multipart_threshold {
            // Grown past the threshold since it was listed: parts are read as ranges pinned to
            // this very version, so the opened body is not needed.
            drop(body);
            multipart::copy(self, head, options)
                .await
                .map(|crc| (crc, true))
        } else {
            copy_single(self, head, options, body)
                .await
                .map(|crc| (crc, false))
        }
    }
}

impl Copier {
    /// A source read, through the bandwidth limit when there is one.
    pub(super) async fn read(&self, req: GetRequest<'_>) -> Result<ByteStream, SourceError> {
        let stream = self.source.get(req).await?;
        Ok(self.limited(stream))
    }

    fn limited(&self, stream: ByteStream) -> ByteStream {
        match &self.options.limiter {
            Some(limiter) => limiter.limit(stream),
            None => stream,
        }
    }
}

fn failed(f: Failure) -> Outcome {
    Outcome::Failed {
        reason: f.reason,
        retryable: f.retryable,
    }
}

fn result(
    key: &str,
    size: u64,
    source_etag: Option<String>,
    outcome: Outcome,
    notes: Vec<String>,
) -> ObjectResult {
    ObjectResult {
        key: key.to_owned(),
        size,
        source_etag,
        outcome,
        notes,
    }
}

/// A read of `range` pinned to the version and ETag HEAD saw.
pub(super) fn pinned(head: &ObjectHead, range: Option<std::ops::Range<u64>>) -> GetRequest<'_> {
    GetRequest {
        key: &head.key,
        range,
        version_id: head.version_id.as_deref(),
        if_match: head.etag.as_deref(),
    }
}

/// One streamed PutObject, from `body` when the object was opened, else from a GET pinned to
/// what HEAD saw. The client checks OSS's CRC-64 against the bytes it sent; the inspector checks
/// the source's own checksum against the same bytes.
async fn copy_single(
    copier: &Copier,
    head: &ObjectHead,
    options: &ObjectOptions,
    body: Option<ByteStream>,
) -> Result<u64, Failure> {
    let dest = &copier.dest;
    let key = dest.key_for(&head.key);
    if head.size == 0 {
        // An empty object has no bytes to read (a ranged read of it is an invalid range).
        return match dest.put_object(&key, RequestBody::empty(), options).await {
            Ok(out) => Ok(out.crc64),
            Err(e) => written_anyway(copier, head, &key, options, &Digests::default(), e).await,
        };
    }
    // OSS checks a Content-MD5 itself (it hashes every upload anyway) and refuses the object on
    // a mismatch, so a source MD5 is proven by the server and need not be computed here.
    let mut local = head.checksums.clone();
    let content_md5 = local.md5.take().map(|md5| BASE64.encode(md5));
    let stream = match body {
        Some(body) => body,
        None => copier.read(pinned(head, None)).await?,
    };
    let (stream, inspector) = Inspector::wrap_proven(stream, &local, head.size, &head.key);
    let mut body = RequestBody::from_stream(head.size, stream);
    if let Some(md5) = content_md5 {
        body = body.with_content_md5(md5);
    }
    let sent = dest.put_object(&key, body, options).await;
    let read = inspector.digests();
    let crc64 = match sent {
        Ok(out) => out.crc64,
        Err(e) => return written_anyway(copier, head, &key, options, &read, e).await,
    };
    if let Err(f) = prove(head, &read, crc64) {
        unwrite(copier, &key).await;
        return Err(f);
    }
    Ok(crc64)
}

/// A PutObject that failed with `e`: its object all the same when the destination proves it
/// is this copy (see [`reconcile`]: the response was lost), else the failure.
async fn written_anyway(
    copier: &Copier,
    head: &ObjectHead,
    key: &str,
    options: &ObjectOptions,
    read: &Digests,
    e: crate::oss::Error,
) -> Result<u64, Failure> {
    if reconcile::may_have_written(&e)
        && let Some(held) = reconcile::candidate(copier, key, head.size, options).await
        && let Ok(crc64) = reconcile::source_crc64(copier, head, read).await
        && held == crc64
    {
        tracing::info!(
            key,
            "PutObject's answer was lost; the destination holds this copy"
        );
        return Ok(crc64);
    }
    if matches!(e, crate::oss::Error::ChecksumMismatch { .. }) {
        unwrite(copier, key).await;
    }
    Err(put_failure(e))
}

/// Removes an object this copy has just written and found unproven (OSS stored other bytes
/// than were read). Left in place it would carry the source's stamps, so a later run would
/// take it for an identical copy and skip it, and under `overwrite: never` every retry would
/// be refused by it.
pub(super) async fn unwrite(copier: &Copier, key: &str) {
    let dest = &copier.dest;
    match dest.delete_object(key).await {
        Ok(()) => tracing::warn!(key, "removed an unproven write"),
        Err(e) => tracing::warn!(key, error = %e, "could not remove an unproven write"),
    }
}

fn put_failure(e: crate::oss::Error) -> Failure {
    if e.code() == Some("InvalidDigest") {
        Failure {
            reason: format!("the bytes read do not match the source's MD5 (OSS refused them: {e})"),
            retryable: true,
        }
    } else {
        e.into()
    }
}

/// The bytes read are the source's (its checksum agrees) and are what OSS stored (CRC-64).
pub(super) fn prove(
    head: &ObjectHead,
    read: &integrity::Digests,
    oss_crc64: u64,
) -> Result<(), Failure> {
    if read.len != head.size {
        return Err(Failure {
            reason: format!("read {} bytes of a {}-byte object", read.len, head.size),
            retryable: true,
        });
    }
    if read.crc64 != oss_crc64 {
        return Err(Failure {
            reason: format!(
                "CRC-64 of the bytes read is {} but OSS stored {oss_crc64}",
                read.crc64
            ),
            retryable: true,
        });
    }
    integrity::check_source(&head.checksums, read).map_err(Failure::from)
}
