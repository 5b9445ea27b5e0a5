//! Multipart uploads in flight, recorded so a retried or continued copy resumes from its
//! finished parts instead of starting over (architecture §4 `uploads/<hash>.json`).
//!
//! The engine records an upload right after InitiateMultipartUpload, asks OSS (ListParts) which
//! parts exist when it comes back, and removes the record once the object is complete. The
//! state store backs this in standalone and distributed runs; [`MemoryLedger`] serves tests and
//! single-process use.
//!
//! A part is reused on resume only when the ledger holds its *proof*: the CRC-64 computed from
//! the source bytes as they were read, recorded once OSS's CRC-64 of the stored part matched it.
//! OSS's own CRC-64 of a held part says only what OSS stored; a part whose bytes were corrupted
//! on the way in (and whose attempt died before uploading it again) carries a self-consistent
//! CRC-64 of the wrong bytes, and would otherwise be assembled into the object unnoticed.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use crate::state::StateError;

/// One multipart upload in flight.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UploadRecord {
    /// Destination bucket.
    pub bucket: String,
    /// Destination key.
    pub key: String,
    /// The upload id InitiateMultipartUpload returned.
    pub upload_id: String,
    /// The plan the parts were cut by; a resumed upload must keep it.
    pub part_size: u64,
    /// The object's size, in bytes.
    pub size: u64,
    /// The source object the parts came from; a changed source starts over.
    pub source_etag: Option<String>,
}

/// Ledger errors are the state store's: its kind says whether asking again may help.
type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, StateError>> + Send + 'a>>;

/// Where upload records live.
pub trait UploadLedger: Send + Sync {
    /// The record of the upload to `bucket`/`key`, if one is in flight.
    fn get<'a>(&'a self, bucket: &'a str, key: &'a str) -> Fut<'a, Option<UploadRecord>>;
    /// Records an upload, replacing any record for the same bucket and key.
    fn put<'a>(&'a self, record: &'a UploadRecord) -> Fut<'a, ()>;
    /// Forgets the upload to `bucket`/`key` (the object is complete or the upload aborted).
    fn remove<'a>(&'a self, bucket: &'a str, key: &'a str) -> Fut<'a, ()>;
    /// Records that part `number` of `record`'s upload holds the source bytes whose CRC-64 is
    /// `crc64` (OSS's CRC-64 of the stored part matched the bytes read).
    fn prove_part<'a>(&'a self, record: &'a UploadRecord, number: u32, crc64: u64) -> Fut<'a, ()>;
    /// The proven parts of `record`'s upload: part number → the source bytes' CRC-64.
    fn proven_parts<'a>(&'a self, record: &'a UploadRecord) -> Fut<'a, HashMap<u32, u64>>;
}

/// The parts OSS holds for an upload that may be reused: those whose CRC-64 equals the one the
/// ledger recorded from the source bytes. Any other part is uploaded again under its number.
pub fn reusable(
    held: Vec<crate::oss::PartInfo>,
    proven: &HashMap<u32, u64>,
) -> HashMap<u32, crate::oss::PartInfo> {
    held.into_iter()
        .filter(|p| p.crc64.is_some() && p.crc64 == proven.get(&p.part_number).copied())
        .map(|p| (p.part_number, p))
        .collect()
}

/// Records in memory (one process).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    uploads: Mutex<HashMap<(String, String), UploadRecord>>,
    /// Proven parts by upload id.
    proofs: Mutex<HashMap<String, HashMap<u32, u64>>>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many uploads are recorded.
    pub fn len(&self) -> usize {
        self.uploads.lock().expect("ledger lock").len()
    }

    /// Whether no upload is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl UploadLedger for MemoryLedger {
    fn get<'a>(&'a self, bucket: &'a str, key: &'a str) -> Fut<'a, Option<UploadRecord>> {
        let found = self
            .uploads
            .lock()
            .expect("ledger lock")
            .get(&(bucket.to_owned(), key.to_owned()))
            .cloned();
        Box::pin(async move { Ok(found) })
    }

    fn put<'a>(&'a self, record: &'a UploadRecord) -> Fut<'a, ()> {
        self.uploads
            .lock()
            .expect("ledger lock")
            .insert((record.bucket.clone(), record.key.clone()), record.clone());
        Box::pin(async { Ok(()) })
    }

    fn remove<'a>(&'a self, bucket: &'a str, key: &'a str) -> Fut<'a, ()> {
        self.uploads
            .lock()
            .expect("ledger lock")
            .remove(&(bucket.to_owned(), key.to_owned()));
        Box::pin(async { Ok(()) })
    }

    fn prove_part<'a>(&'a self, record: &'a UploadRecord, number: u32, crc64: u64) -> Fut<'a, ()> {
        self.proofs
            .lock()
            .expect("ledger lock")
            .entry(record.upload_id.clone())
            .or_default()
            .insert(number, crc64);
        Box::pin(async { Ok(()) })
    }

    fn proven_parts<'a>(&'a self, record: &'a UploadRecord) -> Fut<'a, HashMap<u32, u64>> {
        let found = self
            .proofs
            .lock()
            .expect("ledger lock")
            .get(&record.upload_id)
            .cloned()
            .unwrap_or_default();
        Box::pin(async move { Ok(found) })
    }
}

/// Aborts multipart uploads under the destination prefix that no record claims, that were
/// started before `initiated_before` and whose destination key `in_scope` accepts — what a
/// crashed run left behind. Recorded uploads are kept for resuming; recent unrecorded ones may
/// belong to a worker that is about to record them; keys outside the job's scope may belong to
/// another job writing beside it. Returns how many were aborted.
pub async fn abort_orphans(
    dest: &super::Destination,
    ledger: &dyn UploadLedger,
    initiated_before: chrono::DateTime<chrono::Utc>,
    in_scope: &(dyn Fn(&str) -> bool + Send + Sync),
) -> Result<usize, crate::oss::Error> {
    use futures_util::TryStreamExt;

    let options = crate::oss::ListUploadsOptions {
        prefix: Some(dest.prefix().to_owned()).filter(|p| !p.is_empty()),
        ..Default::default()
    };
    let mut pages = dest.list_multipart_uploads_pages(options);
    let mut aborted = 0;
    while let Some(page) = pages.try_next().await? {
        for upload in page.uploads {
            let old = upload.initiated.is_some_and(|t| t < initiated_before);
            if !old || !in_scope(&upload.key) {
                continue;
            }
            let recorded = matches!(
                ledger.get(dest.bucket(), &upload.key).await,
                Ok(Some(r)) if r.upload_id == upload.upload_id
            );
            if !recorded {
                match dest
                    .abort_multipart_upload(&upload.key, &upload.upload_id)
                    .await
                {
                    Ok(()) => {}
                    // Gone already: the answer to this very abort was lost and the retry met
                    // its effect (or another sweep took it). Either way nothing is left.
                    Err(e) if e.code() == Some("NoSuchUpload") => {}
                    Err(e) => return Err(e),
                }
                aborted += 1;
            }
        }
    }
    Ok(aborted)
}
