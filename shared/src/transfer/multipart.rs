//! Multipart copy: ranged reads streamed into UploadPart, several parts at a time, resumable.
//!
//! The part plan (part size) is fixed when the upload starts and recorded with the upload id, so
//! a copy that died halfway — in this process or a Lambda invocation that ran out of time —
//! continues with the parts OSS already holds (ListParts) and uploads only the rest. A source
//! that changed since (other ETag or size) starts a fresh upload; the stale one is aborted.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};

use super::copy::{Copier, Failure, pinned, prove, unwrite};
use super::integrity::{self, Digests, Inspector, Wanted};
use super::part_size_for;
use super::reconcile;
use super::resume::UploadRecord;
use crate::backoff::Backoff;
use crate::oss::types::ObjectOptions;
use crate::oss::{CompleteOptions, CompleteParts, CompletedPart, PartInfo, RequestBody};
use crate::source::ObjectHead;

/// One finished part.
pub(super) struct PartDone {
    pub part: CompletedPart,
    pub digests: Digests,
}

/// Copies `head` by multipart upload; returns the whole object's CRC-64.
pub(super) async fn copy(
    copier: &Copier,
    head: &ObjectHead,
    options: &ObjectOptions,
) -> Result<u64, Failure> {
    let (record, existing) = open_upload(copier, head, options).await?;
    let result = upload_and_complete(copier, head, options, &record, &existing).await;
    match &result {
        Ok(_) => forget(copier, &record).await,
        // A transient failure keeps the upload: the retry resumes from its parts.
        Err(f) if f.retryable => {}
        Err(_) => discard(copier, &record).await,
    }
    result
}

/// Aborts the upload and forgets it: its parts must not be resumed from.
async fn discard(copier: &Copier, record: &UploadRecord) {
    abandon(copier, record).await;
    forget(copier, record).await;
}

async fn forget(copier: &Copier, record: &UploadRecord) {
    // A record left behind only costs a ListParts on a later run, which then finds no upload.
    let _ = copier.ledger.remove(&record.bucket, &record.key).await;
}

/// Resumes the recorded upload of this very source object, or starts a new one.
pub(super) async fn open_upload(
    copier: &Copier,
    head: &ObjectHead,
    options: &ObjectOptions,
) -> Result<(UploadRecord, HashMap<u32, PartInfo>), Failure> {
    let dest = &copier.dest;
    let key = dest.key_for(&head.key);
    let recorded = copier
        .ledger
        .get(dest.bucket(), &key)
        .await
        .map_err(ledger_failure)?;
    if let Some(record) = recorded {
        if record.source_etag == head.etag && record.size == head.size {
            match dest.list_all_parts(&key, &record.upload_id).await {
                Ok(parts) => {
                    let reusable = reusable_parts(copier, &record, parts).await;
                    return Ok((record, reusable));
                }
                Err(e) if e.code() == Some("NoSuchUpload") => {}
                Err(e) => return Err(e.into()),
            }
        } else {
            let _ = dest.abort_multipart_upload(&key, &record.upload_id).await;
        }
    }
    let upload_id = dest.initiate_multipart_upload(&key, options).await?;
    let record = UploadRecord {
        bucket: dest.bucket().to_owned(),
        key,
        upload_id,
        part_size: part_size_for(head.size, copier.options.part_size),
        size: head.size,
        source_etag: head.etag.clone(),
    };
    copier.ledger.put(&record).await.map_err(ledger_failure)?;
    Ok((record, HashMap::new()))
}

/// The held parts that may be reused: those the ledger proved from the source bytes (see
/// [`resume::reusable`](super::resume::reusable)). A ledger that cannot answer proves none, so
/// every part is uploaded again: slower, never wrong.
pub(super) async fn reusable_parts(
    copier: &Copier,
    record: &UploadRecord,
    held: Vec<PartInfo>,
) -> HashMap<u32, PartInfo> {
    if held.is_empty() {
        return HashMap::new();
    }
    let proven = match copier.ledger.proven_parts(record).await {
        Ok(proven) => proven,
        Err(e) => {
            tracing::warn!(key = %record.key, error = %e, "no part proofs; uploading every part again");
            HashMap::new()
        }
    };
    super::resume::reusable(held, &proven)
}

fn ledger_failure(e: crate::state::StateError) -> Failure {
    Failure {
        retryable: e.kind == crate::state::StateErrorKind::Transient,
        reason: format!("upload ledger: {e}"),
    }
}

/// Part numbers and byte ranges, in order.
pub(super) fn plan(size: u64, part_size: u64) -> Vec<(u32, std::ops::Range<u64>)> {
    (0..size.div_ceil(part_size))
        .map(|i| (i as u32 + 1, i * part_size..((i + 1) * part_size).min(size)))
        .collect()
}

async fn upload_and_complete(
    copier: &Copier,
    head: &ObjectHead,
    options: &ObjectOptions,
    record: &UploadRecord,
    existing: &HashMap<u32, PartInfo>,
) -> Result<u64, Failure> {
    let parts: Vec<PartDone> = stream::iter(plan(head.size, record.part_size))
        .map(|(number, range)| {
            upload_part(copier, head, record, number, range, existing.get(&number))
        })
        .buffered(copier.options.part_concurrency.max(1))
        .try_collect()
        .await?;
    let digests: Vec<Digests> = parts.iter().map(|p| p.digests.clone()).collect();
    let whole = integrity::combine(&digests);
    // Bytes the source's own checksum disputes must never become the object. Their parts are
    // discarded, not resumed from: a resumed part carries only its CRC-64, so the source check
    // would pass unchecked on the retry.
    if let Err(mismatch) = integrity::check_source(&head.checksums, &whole) {
        discard(copier, record).await;
        return Err(mismatch.into());
    }
    let list = parts.into_iter().map(|p| p.part).collect();
    let dest = &copier.dest;
    let completed = dest
        .complete_multipart_upload(
            &record.key,
            &record.upload_id,
            &CompleteParts::List(list),
            &CompleteOptions {
                forbid_overwrite: copier.options.forbid_overwrite,
                ..Default::default()
            },
        )
        .await;
    let server_crc = match completed {
        Ok(out) => out.crc64.ok_or_else(|| {
            Failure::permanent(
                "OSS reported no CRC-64 for the assembled object, so it cannot be proven",
            )
        })?,
        // The answer was lost (the retry finds the upload gone, or the object there): proven
        // by what the destination holds (see `reconcile`).
        Err(e)
            if reconcile::may_have_written(&e)
                && reconcile::holds(copier, &record.key, head.size, whole.crc64, options).await =>
        {
            tracing::info!(key = %record.key, "CompleteMultipartUpload's answer was lost; the destination holds this copy");
            abandon(copier, record).await;
            whole.crc64
        }
        Err(e) => return Err(upload_failure(e)),
    };
    if let Err(f) = prove(head, &whole, server_crc) {
        unwrite(copier, &record.key).await;
        return Err(f);
    }
    Ok(server_crc)
}

/// A failed UploadPart or CompleteMultipartUpload. `NoSuchUpload` that is not this copy's own
/// lost answer (see `reconcile`) means another copy of the same key completed or aborted the
/// upload meanwhile — two events for one key copied at once, or a cleanup sweep — so copying
/// again is expected to succeed: the retry finds the recorded upload gone and starts a new one.
fn upload_failure(e: crate::oss::Error) -> Failure {
    match e.code() == Some("NoSuchUpload") {
        true => Failure {
            reason: format!(
                "the multipart upload was completed or aborted by another copy of the same key: {e}"
            ),
            retryable: true,
        },
        false => e.into(),
    }
}

/// Aborts an upload whose object is already at the destination (a no-op when the upload was
/// the one completed); OSS bills parts of an upload left open.
async fn abandon(copier: &Copier, record: &UploadRecord) {
    let dest = &copier.dest;
    let _ = dest
        .abort_multipart_upload(&record.key, &record.upload_id)
        .await;
}

/// How often one part is uploaded: again under its number (OSS keeps the last upload of a part
/// number) when its stored CRC-64 differs from the bytes read, or when the request failed in a
/// way that may pass (a reset, a 5xx, throttling).
const PART_ATTEMPTS: u32 = 3;

/// Uploads one part — or reuses the one OSS already holds from an earlier attempt, which
/// `existing` offers only when its proof was recorded (see [`reusable_parts`]).
pub(super) async fn upload_part(
    copier: &Copier,
    head: &ObjectHead,
    record: &UploadRecord,
    number: u32,
    range: std::ops::Range<u64>,
    existing: Option<&PartInfo>,
) -> Result<PartDone, Failure> {
    let len = range.end - range.start;
    if let Some(p) = existing.filter(|p| p.size == len)
        && let Some(crc64) = p.crc64
    {
        let part = CompletedPart {
            part_number: number,
            etag: p.etag.clone(),
        };
        return Ok(PartDone {
            part,
            digests: Digests {
                len,
                crc64,
                ..Default::default()
            },
        });
    }
    let mut unproven = String::new();
    // The last failure, when it was a request that may pass: the part is tried again (a
    // request body is a one-shot stream, so the client cannot), and if every attempt fails so
    // the upload is kept, its proven parts resumed from.
    let mut transient: Option<crate::oss::Error> = None;
    let backoff = Backoff::new(copier.options.retry_delay, Duration::from_secs(5));
    for attempt in 1..=PART_ATTEMPTS {
        if transient.is_some() {
            tokio::time::sleep(backoff.equal_jitter(attempt - 1)).await;
        }
        let stream = copier.read(pinned(head, Some(range.clone()))).await?;
        let (stream, inspector) =
            Inspector::wrap(stream, Wanted::for_source(&head.checksums, false));
        let dest = &copier.dest;
        let sent = dest
            .upload_part(
                &record.key,
                &record.upload_id,
                number,
                RequestBody::from_stream(len, stream),
            )
            .await;
        let digests = inspector.digests();
        let stored = match sent {
            Ok(out) => Ok(out),
            // The answer was lost: the part is done if OSS holds exactly the bytes read.
            Err(e) if reconcile::may_have_written(&e) => {
                let key = &record.key;
                match reconcile::held_part(copier, key, &record.upload_id, number, len, &digests)
                    .await
                {
                    Some(held) => {
                        tracing::info!(%key, number, "UploadPart's answer was lost; OSS holds the part");
                        Ok(crate::oss::UploadPartOutput {
                            part_number: number,
                            etag: held.etag,
                            crc64: digests.crc64,
                            size: held.size,
                            request_id: String::new(),
                        })
                    }
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        transient = None;
        unproven = match stored {
            Ok(out) if digests.crc64 == out.crc64 && digests.len == len => {
                // A proof that is not recorded only costs uploading this part again on resume.
                if let Err(e) = copier
                    .ledger
                    .prove_part(record, number, digests.crc64)
                    .await
                {
                    tracing::warn!(key = %record.key, number, error = %e, "part proof not recorded");
                }
                let part = CompletedPart {
                    part_number: number,
                    etag: out.etag,
                };
                return Ok(PartDone { part, digests });
            }
            Ok(out) => format!(
                "part {number}: read {} bytes with CRC-64 {}, OSS stored CRC-64 {}",
                digests.len, digests.crc64, out.crc64
            ),
            // The client's own check of what it sent against what OSS stored.
            Err(e @ crate::oss::Error::ChecksumMismatch { .. }) => format!("part {number}: {e}"),
            Err(e) if e.is_retryable() => {
                tracing::warn!(key = %record.key, number, error = %e, "uploading the part again");
                transient = Some(e);
                continue;
            }
            Err(e) => return Err(upload_failure(e)),
        };
        tracing::warn!(key = %record.key, %unproven, "uploading the part again");
    }
    if let Some(e) = transient {
        return Err(e.into());
    }
    // A part that never matched the source has no recorded proof, so a resume would upload it
    // again; the upload is aborted all the same, so OSS does not bill its parts meanwhile.
    discard(copier, record).await;
    Err(Failure {
        reason: unproven,
        retryable: true,
    })
}

#[cfg(test)]
mod tests {
    use super::plan;

    #[test]
    fn plan_covers_every_byte_once() {
        let p = plan(10, 4);
        assert_eq!(p, vec![(1, 0..4), (2, 4..8), (3, 8..10)]);
        assert!(plan(0, 4).is_empty());
        assert_eq!(plan(8, 4).len(), 2);
    }
}
