//! Copying one object: a streamed PutObject, or a multipart upload of streamed ranged reads.

use std::collections::BTreeMap;

use super::{CopyOptions, Destination, ObjectResult, Outcome, part_size_for};
use crate::crc64;
use crate::oss::types::ObjectOptions;
use crate::oss::{CompleteOptions, CompleteParts, CompletedPart, RequestBody};
use crate::source::{ArchiveState, GetRequest, ObjectHead, Source, SourceError};

/// Why a copy step failed, and whether trying again may help.
struct Failure {
    reason: String,
    retryable: bool,
}

impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Self {
        Failure { retryable: e.is_retryable(), reason: e.to_string() }
    }
}

impl From<crate::oss::Error> for Failure {
    fn from(e: crate::oss::Error) -> Self {
        Failure { retryable: e.is_retryable(), reason: format!("destination: {e}") }
    }
}

/// Copies `key` from `source` to `dest`, reading it once and proving the bytes with CRC-64.
pub async fn copy_object(source: &dyn Source, key: &str, dest: &Destination, options: &CopyOptions) -> ObjectResult {
    let head = match source.head(key).await {
        Ok(h) => h,
        Err(e) => return result(key, 0, None, Outcome::Failed { retryable: e.is_retryable(), reason: e.to_string() }),
    };
    if matches!(head.archive, ArchiveState::Archived | ArchiveState::Restoring) {
        return result(key, head.size, head.etag.clone(), Outcome::NeedsRestore);
    }
    let copied = if head.size >= options.multipart_threshold {
        copy_multipart(source, &head, dest, options).await.map(|crc| (crc, true))
    } else {
        copy_single(source, &head, dest).await.map(|crc| (crc, false))
    };
    let outcome = match copied.and_then(|(crc, multipart)| check_source_checksum(&head, crc).map(|_| (crc, multipart))) {
        Ok((crc64, multipart)) => Outcome::Copied { crc64, multipart },
        Err(f) => Outcome::Failed { reason: f.reason, retryable: f.retryable },
    };
    result(key, head.size, head.etag, outcome)
}

fn result(key: &str, size: u64, source_etag: Option<String>, outcome: Outcome) -> ObjectResult {
    ObjectResult { key: key.to_owned(), size, source_etag, outcome }
}

/// The destination object's headers: the source's content headers and user metadata, plus the
/// `ferry-src-*` stamps later runs use to detect changes exactly.
fn object_options(head: &ObjectHead) -> ObjectOptions {
    let mut metadata: BTreeMap<String, String> = head.user_metadata.iter().cloned().collect();
    if let Some(etag) = &head.etag {
        metadata.insert("ferry-src-etag".into(), etag.clone());
    }
    if let Some(mtime) = head.last_modified {
        metadata.insert("ferry-src-mtime".into(), mtime.to_rfc3339());
    }
    if let Some(version) = &head.version_id {
        metadata.insert("ferry-src-version".into(), version.clone());
    }
    ObjectOptions {
        content_type: head.content_type.clone(),
        content_encoding: head.content_encoding.clone(),
        content_disposition: head.content_disposition.clone(),
        content_language: head.content_language.clone(),
        cache_control: head.cache_control.clone(),
        expires: head.expires.clone(),
        metadata,
        ..Default::default()
    }
}

/// A read of `start..end` pinned to the ETag HEAD saw.
fn pinned<'a>(head: &'a ObjectHead, range: Option<std::ops::Range<u64>>) -> GetRequest<'a> {
    GetRequest { key: &head.key, range, version_id: head.version_id.as_deref(), if_match: head.etag.as_deref() }
}

/// One streamed PutObject. The client checks OSS's CRC-64 against the bytes it sent, which are
/// exactly the bytes read from the source.
async fn copy_single(source: &dyn Source, head: &ObjectHead, dest: &Destination) -> Result<u64, Failure> {
    // An empty object has no bytes to read (and a ranged read of it is an invalid range).
    let body = if head.size == 0 {
        RequestBody::empty()
    } else {
        RequestBody::from_stream(head.size, source.get(pinned(head, None)).await?)
    };
    let out = dest.client.put_object(&dest.bucket, &dest.key_for(&head.key), body, &object_options(head)).await?;
    Ok(out.crc64)
}

/// A multipart upload of ranged reads; on failure the upload is aborted so no parts linger.
async fn copy_multipart(
    source: &dyn Source,
    head: &ObjectHead,
    dest: &Destination,
    options: &CopyOptions,
) -> Result<u64, Failure> {
    let key = dest.key_for(&head.key);
    let upload_id = dest.client.initiate_multipart_upload(&dest.bucket, &key, &object_options(head)).await?;
    let uploaded = upload_parts(source, head, dest, &key, &upload_id, options).await;
    let finished = match uploaded {
        Ok((parts, crc)) => complete(dest, &key, &upload_id, parts, crc).await,
        Err(f) => Err(f),
    };
    if finished.is_err() {
        // Best effort: a failed abort leaves an upload a later sweep removes.
        let _ = dest.client.abort_multipart_upload(&dest.bucket, &key, &upload_id).await;
    }
    finished
}

async fn upload_parts(
    source: &dyn Source,
    head: &ObjectHead,
    dest: &Destination,
    key: &str,
    upload_id: &str,
    options: &CopyOptions,
) -> Result<(Vec<CompletedPart>, u64), Failure> {
    let part_size = part_size_for(head.size, options.part_size);
    let mut parts = Vec::new();
    let mut crc = 0u64;
    let mut start = 0u64;
    while start < head.size {
        let end = (start + part_size).min(head.size);
        let part_number = parts.len() as u32 + 1;
        let stream = source.get(pinned(head, Some(start..end))).await?;
        let body = RequestBody::from_stream(end - start, stream);
        let out = dest.client.upload_part(&dest.bucket, key, upload_id, part_number, body).await?;
        crc = crc64::combine(crc, out.crc64, end - start);
        parts.push(CompletedPart { part_number, etag: out.etag });
        start = end;
    }
    Ok((parts, crc))
}

async fn complete(
    dest: &Destination,
    key: &str,
    upload_id: &str,
    parts: Vec<CompletedPart>,
    crc: u64,
) -> Result<u64, Failure> {
    let out = dest
        .client
        .complete_multipart_upload(&dest.bucket, key, upload_id, &CompleteParts::List(parts), &CompleteOptions::default())
        .await?;
    match out.crc64 {
        Some(server) if server == crc => Ok(crc),
        Some(server) => Err(Failure {
            reason: format!("CRC-64 of the assembled object is {server} at OSS but {crc} over the bytes read"),
            retryable: true,
        }),
        None => Err(Failure { reason: "OSS reported no CRC-64 for the assembled object".into(), retryable: false }),
    }
}

/// Where the source has its own checksum of the same bytes, check it too.
fn check_source_checksum(head: &ObjectHead, crc: u64) -> Result<(), Failure> {
    match head.checksums.oss_crc64 {
        Some(expected) if expected != crc => Err(Failure {
            reason: format!("source CRC-64 is {expected} but the bytes read give {crc}"),
            retryable: true,
        }),
        _ => Ok(()),
    }
}
