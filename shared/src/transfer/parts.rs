//! Giant objects over many workers (architecture §6): one multipart upload whose parts are
//! uploaded by several tasks, and completed by whichever finishes last.
//!
//! [`Copier::open_parts`] starts (or resumes) the upload and records it; each task then calls
//! [`Copier::upload_parts`] for its part numbers — a part OSS already holds is not sent again
//! when the ledger recorded its proof (the source bytes' CRC-64 equals OSS's) — and the task that finds every part done calls
//! [`Copier::complete_parts`], which proves the whole object by combining the parts' CRC-64s and
//! comparing the result with OSS's CRC-64 of the assembled object.
//!
//! Each part is proven when it is uploaded: the CRC-64 of the bytes read from the source equals
//! OSS's CRC-64 of the part. The source's own whole-object checksum (MD5, CRC-64/NVME, CRC-32C)
//! cannot be checked here, because no single worker sees every byte.

use serde::{Deserialize, Serialize};

use super::copy::{Copier, Failure};
use super::metadata::{STAMP_ETAG, destination_options};
use super::multipart::{open_upload, plan, reusable_parts, upload_part};
use super::reconcile;
use super::{ObjectResult, Outcome};
use crate::crc64;
use crate::oss::{CompleteOptions, CompleteParts, CompletedPart};

/// A multipart upload shared by several tasks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedUpload {
    /// Source key.
    pub key: String,
    /// The upload id at the destination.
    pub upload_id: String,
    /// The object's size, in bytes.
    pub size: u64,
    /// Bytes per part (the last part may be smaller).
    pub part_size: u64,
    /// The source version the parts come from; a read of another version fails.
    pub etag: Option<String>,
    /// What could not be carried faithfully (reported with the object).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl SharedUpload {
    /// How many parts the object has.
    pub fn parts(&self) -> u32 {
        self.size.div_ceil(self.part_size) as u32
    }
}

/// Why a shared-upload step failed.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct PartsError {
    /// What went wrong.
    pub reason: String,
    /// Whether trying the step again may help.
    pub retryable: bool,
}

impl From<Failure> for PartsError {
    fn from(f: Failure) -> Self {
        PartsError {
            reason: f.reason,
            retryable: f.retryable,
        }
    }
}

impl Copier {
    /// Starts the upload of `key` for several workers (or resumes the recorded one).
    pub async fn open_parts(&self, key: &str) -> Result<SharedUpload, PartsError> {
        let head = self.source.head(key).await.map_err(Failure::from)?;
        let (mut options, notes) =
            destination_options(&head, &self.options.storage_class).map_err(Failure::permanent)?;
        options.forbid_overwrite = self.options.forbid_overwrite;
        let (record, _) = open_upload(self, &head, &options).await?;
        Ok(SharedUpload {
            key: key.to_owned(),
            upload_id: record.upload_id,
            size: record.size,
            part_size: record.part_size,
            etag: head.etag,
            notes,
        })
    }

    /// Uploads parts `first..=last` of a shared upload, each proven by CRC-64, starting none
    /// after `stop`. `Ok(false)`: stopped before every part was done (the proven ones are
    /// reused when the task comes again).
    pub async fn upload_parts(
        &self,
        upload: &SharedUpload,
        first: u32,
        last: u32,
        stop: Option<std::time::Instant>,
    ) -> Result<bool, PartsError> {
        let head = self.source.head(&upload.key).await.map_err(Failure::from)?;
        if head.etag != upload.etag || head.size != upload.size {
            return Err(changed_at_source(upload));
        }
        let dest = &self.dest;
        let record = self.record_of(upload);
        let existing = dest
            .list_all_parts(&record.key, &upload.upload_id)
            .await
            .map_err(Failure::from)?;
        let mine = |n: &u32| (first..=last).contains(n);
        let held: Vec<_> = existing
            .into_iter()
            .filter(|p| mine(&p.part_number))
            .collect();
        let reusable = reusable_parts(self, &record, held).await;
        for (number, range) in plan(upload.size, upload.part_size) {
            if !mine(&number) {
                continue;
            }
            let held = reusable.get(&number);
            if held.is_none() && stop.is_some_and(|s| std::time::Instant::now() >= s) {
                return Ok(false);
            }
            upload_part(self, &head, &record, number, range, held).await?;
        }
        Ok(true)
    }

    /// Completes a shared upload whose parts are all uploaded, proving the whole object.
    pub async fn complete_parts(&self, upload: &SharedUpload) -> ObjectResult {
        let outcome = match self.assemble(upload).await {
            Ok(crc64) => {
                let _ = self
                    .ledger
                    .remove(self.dest.bucket(), &self.dest.key_for(&upload.key))
                    .await;
                Outcome::Copied {
                    crc64,
                    multipart: true,
                }
            }
            Err(e) => Outcome::Failed {
                reason: e.reason,
                retryable: e.retryable,
            },
        };
        ObjectResult {
            key: upload.key.clone(),
            size: upload.size,
            source_etag: upload.etag.clone(),
            outcome,
            notes: upload.notes.clone(),
        }
    }

    /// Refuses to assemble an upload of a source version that is no longer current: a twin
    /// delivery's upload of the newer version may be completed already, and assembling the
    /// older one after it would leave the older version at the destination.
    async fn still_current(&self, upload: &SharedUpload) -> Result<(), PartsError> {
        let head = self.source.head(&upload.key).await.map_err(Failure::from)?;
        match head.etag == upload.etag && head.size == upload.size {
            true => Ok(()),
            false => Err(changed_at_source(upload)),
        }
    }

    async fn assemble(&self, upload: &SharedUpload) -> Result<u64, PartsError> {
        let dest = &self.dest;
        let key = dest.key_for(&upload.key);
        let parts = match dest.list_all_parts(&key, &upload.upload_id).await {
            Ok(parts) => parts,
            // Completed already (an earlier delivery of the completing task).
            Err(e) if e.code() == Some("NoSuchUpload") => {
                return self.already_assembled(upload).await;
            }
            Err(e) => return Err(Failure::from(e).into()),
        };
        let mut whole = 0u64;
        let mut list = Vec::new();
        for (number, range) in plan(upload.size, upload.part_size) {
            let len = range.end - range.start;
            let part = parts
                .iter()
                .find(|p| p.part_number == number && p.size == len)
                .ok_or_else(|| PartsError {
                    reason: format!(
                        "part {number} of {} is missing at the destination",
                        upload.key
                    ),
                    retryable: true,
                })?;
            let crc = part.crc64.ok_or_else(|| PartsError {
                reason: format!("OSS reported no CRC-64 for part {number}"),
                retryable: false,
            })?;
            whole = if number == 1 {
                crc
            } else {
                crc64::combine(whole, crc, len)
            };
            list.push(CompletedPart {
                part_number: number,
                etag: part.etag.clone(),
            });
        }
        self.still_current(upload).await?;
        let completed = dest
            .complete_multipart_upload(
                &key,
                &upload.upload_id,
                &CompleteParts::List(list),
                &CompleteOptions {
                    forbid_overwrite: self.options.forbid_overwrite,
                    ..Default::default()
                },
            )
            .await;
        let out = match completed {
            Ok(out) => out,
            // The answer was lost: the object there is this upload's if it is this source
            // version with the CRC-64 the parts combine to (see `reconcile`).
            Err(e) if reconcile::may_have_written(&e) => {
                return match self.already_assembled(upload).await {
                    Ok(crc) if crc == whole => {
                        let _ = dest.abort_multipart_upload(&key, &upload.upload_id).await;
                        Ok(crc)
                    }
                    _ => Err(Failure::from(e).into()),
                };
            }
            Err(e) => return Err(Failure::from(e).into()),
        };
        match out.crc64 {
            Some(server) if server == whole => Ok(server),
            other => Err(PartsError {
                reason: format!(
                    "the assembled object's CRC-64 is {other:?}, its parts combine to {whole}"
                ),
                retryable: false,
            }),
        }
    }

    /// The destination object a previous completion produced, if it is this source version.
    async fn already_assembled(&self, upload: &SharedUpload) -> Result<u64, PartsError> {
        let dest = &self.dest;
        let meta = dest
            .head_object(&dest.key_for(&upload.key))
            .await
            .map_err(Failure::from)?;
        let same = meta.content_length == upload.size
            && meta.metadata.get(STAMP_ETAG) == upload.etag.as_ref();
        match meta.crc64 {
            Some(crc) if same => Ok(crc),
            _ => Err(PartsError {
                reason: format!(
                    "the upload of {} is gone and the destination holds another object",
                    upload.key
                ),
                retryable: false,
            }),
        }
    }

    fn record_of(&self, upload: &SharedUpload) -> super::resume::UploadRecord {
        super::resume::UploadRecord {
            bucket: self.dest.bucket().to_owned(),
            key: self.dest.key_for(&upload.key),
            upload_id: upload.upload_id.clone(),
            part_size: upload.part_size,
            size: upload.size,
            source_etag: upload.etag.clone(),
        }
    }
}

/// A shared upload's source changed since the upload was opened: its parts are of a version
/// that is no longer current, so the object fails for this run and the next copies it again.
fn changed_at_source(upload: &SharedUpload) -> PartsError {
    PartsError {
        reason: format!(
            "{} changed at the source while its parts were being copied; the next run copies it \
             again",
            upload.key
        ),
        retryable: false,
    }
}
