//! A write that happened although its answer was lost.
//!
//! A PutObject, UploadPart, CompleteMultipartUpload or CopyObject can take effect at OSS and its response
//! still never arrive: the connection resets, a proxy answers 5xx, the client times out. Trying
//! again then meets the write itself — `FileAlreadyExists` under `overwrite: never`,
//! `NoSuchUpload` for an upload that was completed — and a copy that is complete at the
//! destination would be reported failed. It is not a failure when the destination now holds
//! exactly what this copy wrote, and "exactly" is proven, not assumed: the destination object
//! has the source's size, the CRC-64 of the bytes read from the source, and the stamps (source
//! ETag, modification time, version) this copy sent. Anything else keeps the original error.

use futures_util::StreamExt;

use super::copy::{Copier, Failure, pinned};
use super::integrity::{self, Digests, Inspector, Wanted};
use super::metadata::{STAMP_ETAG, STAMP_MTIME, STAMP_VERSION};
use crate::oss::types::ObjectOptions;
use crate::source::ObjectHead;

/// Whether a write that failed with `e` may have taken effect all the same: the answer was lost
/// (any retryable error), or the retry met the first write.
pub(super) fn may_have_written(e: &crate::oss::Error) -> bool {
    e.is_retryable() || matches!(e.code(), Some("FileAlreadyExists" | "NoSuchUpload"))
}

/// The CRC-64 of destination `key` when it could be the object this copy wrote — `size` bytes
/// carrying the stamps in `options` — for the caller to compare with the source's. A HEAD that
/// fails proves nothing, so it answers `None`.
pub(super) async fn candidate(
    copier: &Copier,
    key: &str,
    size: u64,
    options: &ObjectOptions,
) -> Option<u64> {
    let dest = &copier.dest;
    let meta = dest.head_object(key).await.ok()?;
    let stamped = [STAMP_ETAG, STAMP_MTIME, STAMP_VERSION]
        .iter()
        .all(|name| meta.metadata.get(*name) == options.metadata.get(*name));
    if meta.content_length == size && stamped {
        meta.crc64
    } else {
        None
    }
}

/// Whether destination `key` holds the object this copy wrote: `size` bytes with CRC-64
/// `crc64` and the stamps in `options`.
pub(super) async fn holds(
    copier: &Copier,
    key: &str,
    size: u64,
    crc64: u64,
    options: &ObjectOptions,
) -> bool {
    candidate(copier, key, size, options).await == Some(crc64)
}

/// The CRC-64 of the source object `head` describes, proven against the source's own
/// checksums: from `read` when that already covered every byte, else from a fresh read pinned
/// to the same version (a retry whose request was refused before its body was sent).
pub(super) async fn source_crc64(
    copier: &Copier,
    head: &ObjectHead,
    read: &Digests,
) -> Result<u64, Failure> {
    let digests = if read.len == head.size {
        read.clone()
    } else {
        let stream = copier.read(pinned(head, None)).await?;
        let (mut stream, inspector) =
            Inspector::wrap(stream, Wanted::for_source(&head.checksums, true));
        while let Some(chunk) = stream.next().await {
            chunk?;
        }
        inspector.digests()
    };
    if digests.len != head.size {
        return Err(Failure {
            reason: format!("read {} bytes of a {}-byte object", digests.len, head.size),
            retryable: true,
        });
    }
    integrity::check_source(&head.checksums, &digests).map_err(Failure::from)?;
    Ok(digests.crc64)
}

/// Part `number` of `upload_id` as the destination holds it, when it holds exactly the bytes
/// read: `read` covers the whole part (`len` bytes) and OSS's CRC-64 of the part equals theirs.
/// An UploadPart whose answer was lost is then done, and proven as any other part is.
pub(super) async fn held_part(
    copier: &Copier,
    key: &str,
    upload_id: &str,
    number: u32,
    len: u64,
    read: &Digests,
) -> Option<crate::oss::PartInfo> {
    if read.len != len {
        return None;
    }
    let dest = &copier.dest;
    let parts = dest.list_all_parts(key, upload_id).await.ok()?;
    parts
        .into_iter()
        .find(|p| p.part_number == number && p.size == len && p.crc64 == Some(read.crc64))
}
