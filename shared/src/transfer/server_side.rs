//! OSS → OSS within one region: the destination copies from the source bucket itself
//! (CopyObject below the multipart threshold and at most 1 GB, UploadPartCopy above, parts in
//! parallel), so no bytes pass through ferry.
//!
//! Proof is still required: OSS's CRC-64 of the new object must equal the source object's. OSS
//! may leave a server-side copy without a CRC; then there is nothing to prove with, and the copy
//! falls back to streaming the bytes (the caller does that on [`Unproven`]).

use futures_util::{StreamExt, TryStreamExt, stream};

use super::copy::{Copier, Failure};
use super::part_size_for;
use super::reconcile;
use crate::oss::types::{ByteRange, Conditions, CopySource, ObjectOptions};
use crate::oss::{
    CompleteOptions, CompleteParts, CompletedPart, CopyObjectOptions, MetadataDirective,
    TaggingDirective, UploadPartCopyOptions,
};
use crate::source::ObjectHead;

/// CopyObject's limit; larger objects are copied part by part.
const COPY_OBJECT_MAX: u64 = 1 << 30;

/// The server-side copy worked but OSS reported no CRC-64 to prove it with.
pub(super) struct Unproven;

pub(super) async fn copy(
    copier: &Copier,
    head: &ObjectHead,
    options: &ObjectOptions,
    source_bucket: &str,
) -> Result<Result<u64, Unproven>, Failure> {
    let source = CopySource {
        bucket: source_bucket.to_owned(),
        key: head.key.clone(),
        version_id: head.version_id.clone(),
    };
    let pin = Conditions {
        if_match: head.etag.as_ref().map(|e| format!("\"{e}\"")),
        ..Default::default()
    };
    let crc = if head.size < copier.options.multipart_threshold.min(COPY_OBJECT_MAX + 1) {
        copy_whole(copier, head, options, &source, pin).await?
    } else {
        copy_parts(copier, head, options, &source, pin).await?
    };
    let dest = &copier.dest;
    let crc = match crc {
        Some(c) => Some(c),
        None => dest.head_object(&dest.key_for(&head.key)).await?.crc64,
    };
    match (crc, head.checksums.oss_crc64) {
        (Some(got), Some(expected)) if got == expected => Ok(Ok(got)),
        (Some(got), Some(expected)) => Err(Failure {
            reason: format!(
                "server-side copy has CRC-64 {got} but the source object has {expected}"
            ),
            retryable: true,
        }),
        _ => Ok(Err(Unproven)),
    }
}

async fn copy_whole(
    copier: &Copier,
    head: &ObjectHead,
    options: &ObjectOptions,
    source: &CopySource,
    pin: Conditions,
) -> Result<Option<u64>, Failure> {
    let dest = &copier.dest;
    let copy_options = CopyObjectOptions {
        // Replace: the stamps and mapped class are ferry's, not the source's.
        metadata_directive: MetadataDirective::Replace,
        tagging_directive: Some(TaggingDirective::Copy),
        object: ObjectOptions {
            tags: Vec::new(),
            ..options.clone()
        },
        source_conditions: pin,
    };
    let key = dest.key_for(&head.key);
    match dest.copy_object(&key, source, &copy_options).await {
        Ok(out) => Ok(out.crc64),
        // The answer was lost: the caller proves what the destination holds against the
        // source's CRC-64 (see `reconcile`).
        Err(e) if reconcile::may_have_written(&e) => {
            match reconcile::candidate(copier, &key, head.size, options).await {
                Some(crc) => Ok(Some(crc)),
                None => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

async fn copy_parts(
    copier: &Copier,
    head: &ObjectHead,
    options: &ObjectOptions,
    source: &CopySource,
    pin: Conditions,
) -> Result<Option<u64>, Failure> {
    let dest = &copier.dest;
    let key = dest.key_for(&head.key);
    let upload_id = dest.initiate_multipart_upload(&key, options).await?;
    let part_size = part_size_for(head.size, copier.options.part_size);
    let ranges: Vec<(u32, u64, u64)> = (0..head.size.div_ceil(part_size))
        .map(|i| {
            (
                i as u32 + 1,
                i * part_size,
                (head.size - i * part_size).min(part_size),
            )
        })
        .collect();
    let result: Result<Vec<CompletedPart>, Failure> = stream::iter(ranges)
        .map(|(number, start, len)| {
            let part_options = UploadPartCopyOptions {
                range: Some(ByteRange::new(start, len)),
                conditions: pin.clone(),
            };
            let (key, upload_id) = (&key, &upload_id);
            async move {
                let out = dest
                    .upload_part_copy(key, upload_id, number, source, &part_options)
                    .await?;
                Ok::<_, Failure>(CompletedPart {
                    part_number: number,
                    etag: out.etag,
                })
            }
        })
        .buffered(copier.options.part_concurrency.max(1))
        .try_collect()
        .await;
    // Whether completing failed in a way that may have completed all the same.
    let mut lost = false;
    let completed = match result {
        Ok(parts) => dest
            .complete_multipart_upload(
                &key,
                &upload_id,
                &CompleteParts::List(parts),
                &CompleteOptions {
                    forbid_overwrite: copier.options.forbid_overwrite,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| {
                lost = reconcile::may_have_written(&e);
                Failure::from(e)
            }),
        Err(f) => Err(f),
    };
    let completed = match completed {
        Err(_) if lost => match reconcile::candidate(copier, &key, head.size, options).await {
            Some(crc) => {
                let _ = dest.abort_multipart_upload(&key, &upload_id).await;
                return Ok(Some(crc));
            }
            None => completed,
        },
        other => other,
    };
    match completed {
        Ok(out) => Ok(out.crc64),
        Err(f) => {
            // Nothing to resume from a copy the server does itself: start clean next time.
            let _ = dest.abort_multipart_upload(&key, &upload_id).await;
            Err(f)
        }
    }
}
