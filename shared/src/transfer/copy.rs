//! Copying one object: HEAD the source, choose single PUT or multipart, prove the bytes.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::integrity::{self, Inspector};
use super::metadata::destination_options;
use super::resume::UploadLedger;
use super::{CopyOptions, Destination, ObjectResult, Outcome, multipart, server_side};
use crate::oss::RequestBody;
use crate::oss::types::ObjectOptions;
use crate::source::{ArchiveState, GetRequest, ObjectHead, Source, SourceError};

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

/// Copies objects from one source to one destination.
#[derive(Clone)]
pub struct Copier {
    pub source: Arc<dyn Source>,
    pub dest: Destination,
    pub options: CopyOptions,
    pub ledger: Arc<dyn UploadLedger>,
}

impl Copier {
    /// Copies `key`, reading it once and proving the bytes with CRC-64 (and the source's own
    /// checksum where it has one). A failure that may pass is tried again (up to
    /// `options.attempts`, with backoff; a multipart copy resumes from its finished parts).
    /// Never panics, never returns without an outcome.
    pub async fn copy(&self, key: &str) -> ObjectResult {
        let mut delay = self.options.retry_delay;
        let mut attempt = 1;
        loop {
            let result = self.copy_once(key).await;
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
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
            attempt += 1;
        }
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
        let copied = self.copy_bytes(&head, &options).await;
        let outcome = match copied {
            Ok((crc64, multipart)) => Outcome::Copied { crc64, multipart },
            Err(f) => failed(f),
        };
        result(key, head.size, head.etag, outcome, notes)
    }

    /// Server-side when configured and provable, else streamed; returns (CRC-64, multipart).
    async fn copy_bytes(
        &self,
        head: &ObjectHead,
        options: &ObjectOptions,
    ) -> Result<(u64, bool), Failure> {
        if let (Some(bucket), Some(_)) = (&self.options.server_side_from, head.checksums.oss_crc64)
        {
            if let Ok(crc) = server_side::copy(self, head, options, bucket).await? {
                let multipart = head.size >= self.options.multipart_threshold.min(1 << 30);
                return Ok((crc, multipart));
            }
            tracing::info!(key = %head.key, "server-side copy has no CRC-64 to prove it; streaming instead");
        }
        if head.size >= self.options.multipart_threshold {
            multipart::copy(self, head, options)
                .await
                .map(|crc| (crc, true))
        } else {
            copy_single(self, head, options)
                .await
                .map(|crc| (crc, false))
        }
    }
}

impl Copier {
    /// A source read, through the bandwidth limit when there is one.
    pub(super) async fn read(
        &self,
        req: GetRequest<'_>,
    ) -> Result<crate::source::ByteStream, SourceError> {
        let stream = self.source.get(req).await?;
        Ok(match &self.options.limiter {
            Some(limiter) => limiter.limit(stream),
            None => stream,
        })
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

/// One streamed PutObject. The client checks OSS's CRC-64 against the bytes it sent; the
/// inspector checks the source's own checksum against the same bytes.
async fn copy_single(
    copier: &Copier,
    head: &ObjectHead,
    options: &ObjectOptions,
) -> Result<u64, Failure> {
    let dest = &copier.dest;
    let key = dest.key_for(&head.key);
    if head.size == 0 {
        // An empty object has no bytes to read (a ranged read of it is an invalid range).
        let out = dest
            .client
            .put_object(&dest.bucket, &key, RequestBody::empty(), options)
            .await?;
        return Ok(out.crc64);
    }
    // OSS checks a Content-MD5 itself (it hashes every upload anyway) and refuses the object on
    // a mismatch, so a source MD5 is proven by the server and need not be computed here.
    let mut local = head.checksums.clone();
    let content_md5 = local.md5.take().map(|md5| BASE64.encode(md5));
    let stream = copier.read(pinned(head, None)).await?;
    let (stream, inspector) = Inspector::wrap_proven(stream, &local, head.size, &head.key);
    let mut body = RequestBody::from_stream(head.size, stream);
    if let Some(md5) = content_md5 {
        body = body.with_content_md5(md5);
    }
    let out = dest
        .client
        .put_object(&dest.bucket, &key, body, options)
        .await
        .map_err(|e| {
            if e.code() == Some("InvalidDigest") {
                Failure {
                    reason: format!(
                        "the bytes read do not match the source's MD5 (OSS refused them: {e})"
                    ),
                    retryable: true,
                }
            } else {
                e.into()
            }
        })?;
    let read = inspector.digests();
    prove(head, &read, out.crc64)?;
    Ok(out.crc64)
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
    integrity::check_source(&head.checksums, read).map_err(|reason| Failure {
        reason,
        retryable: true,
    })
}
