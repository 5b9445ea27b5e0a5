//! The store: buckets, objects and multipart uploads, in memory by default or on disk.
//!
//! Metadata always lives in an in-memory index (one mutex, held only for short, non-async
//! sections); data lives in [`blob::Blob`]s. With a data directory every change is also written
//! to a JSON sidecar before the lock is released, so the sidecars follow the index exactly.
//! Each object and part keeps its MD5 and CRC-64 (`ferry::crc64`).

pub mod blob;
pub mod disk;
pub mod model;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use blob::{Blob, BlobWriter, Written};
use disk::Disk;
use model::{BucketInfo, ObjectMeta, PartMeta, UploadMeta};

use crate::body::{BodyCheck, ByteStream, Payload};
use crate::error::ApiError;

/// OSS allows 100 buckets per account and region.
pub const MAX_BUCKETS: usize = 100;

#[derive(Clone, Debug)]
pub struct Object {
    pub meta: ObjectMeta,
    pub blob: Blob,
}

#[derive(Clone, Debug)]
pub struct Part {
    pub meta: PartMeta,
    pub blob: Blob,
}

#[derive(Clone, Debug)]
pub struct Upload {
    pub meta: UploadMeta,
    pub parts: BTreeMap<u32, Part>,
}

#[derive(Debug)]
pub struct Bucket {
    pub info: BucketInfo,
    pub objects: BTreeMap<String, Object>,
    pub uploads: BTreeMap<String, Upload>,
}

impl Bucket {
    pub fn new(info: BucketInfo) -> Bucket {
        Bucket {
            info,
            objects: BTreeMap::new(),
            uploads: BTreeMap::new(),
        }
    }
}

pub struct Store {
    buckets: Mutex<BTreeMap<String, Bucket>>,
    disk: Option<Disk>,
}

fn disk_error(e: std::io::Error) -> ApiError {
    ApiError::internal(format!(
        "The emulator could not write its data directory: {e}"
    ))
}

impl Store {
    pub fn memory() -> Store {
        Store {
            buckets: Mutex::new(BTreeMap::new()),
            disk: None,
        }
    }

    /// Opens a data directory, loading what an earlier run stored.
    pub fn open(dir: &Path) -> std::io::Result<Store> {
        let (disk, buckets) = Disk::open(dir)?;
        Ok(Store {
            buckets: Mutex::new(buckets),
            disk: Some(disk),
        })
    }

    pub fn is_disk(&self) -> bool {
        self.disk.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Bucket>> {
        // A panic while holding the lock leaves consistent data (every section is small), so a
        // poisoned lock is still usable.
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self, f: impl FnOnce(&Disk) -> std::io::Result<()>) -> Result<(), ApiError> {
        match &self.disk {
            Some(d) => f(d).map_err(disk_error),
            None => Ok(()),
        }
    }

    // ----- data -------------------------------------------------------------------------------

    async fn writer(&self) -> Result<BlobWriter, ApiError> {
        match &self.disk {
            None => Ok(BlobWriter::memory()),
            Some(d) => BlobWriter::file(d.new_blob_file())
                .await
                .map_err(disk_error),
        }
    }

    /// Stores a request body, refusing more than `max` bytes (`EntityTooLarge`) and checking
    /// what an S3 client promised about it (SHA-256, decoded length).
    pub async fn write_payload(&self, mut payload: Payload, max: u64) -> Result<Written, ApiError> {
        let mut w = self.writer().await?;
        let mut check = BodyCheck::new(&payload);
        while let Some(chunk) = payload.next_chunk().await? {
            if w.len() + chunk.len() as u64 > max {
                return Err(entity_too_large(max));
            }
            check.update(&chunk);
            w.write(chunk).await.map_err(disk_error)?;
        }
        let len = w.len();
        check.finish(len)?;
        w.finish().await.map_err(disk_error)
    }

    /// Stores a stream read from another object (copies).
    pub async fn write_stream(&self, mut stream: ByteStream) -> Result<Written, ApiError> {
        use futures_util::StreamExt;
        let mut w = self.writer().await?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::internal(format!("reading the copy source failed: {e}")))?;
            w.write(chunk).await.map_err(disk_error)?;
        }
        w.finish().await.map_err(disk_error)
    }

    // ----- buckets ----------------------------------------------------------------------------

    /// Creates a bucket; `Ok(false)` when it already exists.
    pub fn create_bucket(&self, info: BucketInfo) -> Result<bool, ApiError> {
        let mut buckets = self.lock();
        if buckets.contains_key(&info.name) {
            return Ok(false);
        }
        if buckets.len() >= MAX_BUCKETS {
            return Err(ApiError::new(
                400,
                "TooManyBuckets",
                format!("You cannot own more than {MAX_BUCKETS} buckets."),
            ));
        }
        self.persist(|d| d.save_bucket(&info))?;
        buckets.insert(info.name.clone(), Bucket::new(info));
        Ok(true)
    }

    /// Deletes a bucket. Without `force` it must hold no objects and no uploads.
    pub fn delete_bucket(&self, name: &str, force: bool) -> Result<(), ApiError> {
        let mut buckets = self.lock();
        let bucket = buckets
            .get(name)
            .ok_or_else(|| ApiError::no_such_bucket(name))?;
        if !force && (!bucket.objects.is_empty() || !bucket.uploads.is_empty()) {
            return Err(ApiError::new(
                409,
                "BucketNotEmpty",
                "The bucket you tried to delete is not empty.",
            )
            .with("BucketName", name));
        }
        self.persist(|d| d.remove_bucket(name))?;
        if let Some(b) = buckets.remove(name) {
            b.objects.values().for_each(|o| o.blob.doom());
            b.uploads
                .values()
                .flat_map(|u| u.parts.values())
                .for_each(|p| p.blob.doom());
        }
        Ok(())
    }

    pub fn buckets(&self) -> Vec<BucketInfo> {
        self.lock().values().map(|b| b.info.clone()).collect()
    }

    pub fn bucket(&self, name: &str) -> Result<BucketInfo, ApiError> {
        self.read(name, |b| b.info.clone())
    }

    pub fn update_bucket(
        &self,
        name: &str,
        f: impl FnOnce(&mut BucketInfo),
    ) -> Result<(), ApiError> {
        let mut buckets = self.lock();
        let bucket = buckets
            .get_mut(name)
            .ok_or_else(|| ApiError::no_such_bucket(name))?;
        let mut info = bucket.info.clone();
        f(&mut info);
        self.persist(|d| d.save_bucket(&info))?;
        bucket.info = info;
        Ok(())
    }

    /// Runs `f` on a bucket under the lock (listings).
    pub fn read<R>(&self, name: &str, f: impl FnOnce(&Bucket) -> R) -> Result<R, ApiError> {
        let buckets = self.lock();
        let bucket = buckets
            .get(name)
            .ok_or_else(|| ApiError::no_such_bucket(name))?;
        Ok(f(bucket))
    }

    // ----- objects ----------------------------------------------------------------------------

    pub fn object(&self, bucket: &str, key: &str) -> Result<Object, ApiError> {
        self.read(bucket, |b| b.objects.get(key).cloned())?
            .ok_or_else(|| ApiError::no_such_key(key))
    }

    /// Commits an object. With `forbid_overwrite` an existing key fails with `FileAlreadyExists`.
    pub fn put_object(
        &self,
        bucket: &str,
        obj: Object,
        forbid_overwrite: bool,
    ) -> Result<(), ApiError> {
        let mut buckets = self.lock();
        let b = buckets
            .get_mut(bucket)
            .ok_or_else(|| ApiError::no_such_bucket(bucket))?;
        if forbid_overwrite && b.objects.contains_key(&obj.meta.key) {
            return Err(file_already_exists());
        }
        self.persist(|d| d.save_object(bucket, &obj))?;
        obj.blob.commit();
        if let Some(old) = b.objects.insert(obj.meta.key.clone(), obj) {
            old.blob.doom();
        }
        Ok(())
    }

    /// Removes an object; `Ok(false)` when there was none.
    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<bool, ApiError> {
        let mut buckets = self.lock();
        let b = buckets
            .get_mut(bucket)
            .ok_or_else(|| ApiError::no_such_bucket(bucket))?;
        if !b.objects.contains_key(key) {
            return Ok(false);
        }
        self.persist(|d| d.remove_object(bucket, key))?;
        if let Some(old) = b.objects.remove(key) {
            old.blob.doom();
        }
        Ok(true)
    }

    /// Changes an object's metadata in place (restore state).
    pub fn update_object<R>(
        &self,
        bucket: &str,
        key: &str,
        f: impl FnOnce(&mut ObjectMeta) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let mut buckets = self.lock();
        let b = buckets
            .get_mut(bucket)
            .ok_or_else(|| ApiError::no_such_bucket(bucket))?;
        let obj = b
            .objects
            .get_mut(key)
            .ok_or_else(|| ApiError::no_such_key(key))?;
        let mut meta = obj.meta.clone();
        let out = f(&mut meta)?;
        if meta != obj.meta {
            let updated = Object {
                meta,
                blob: obj.blob.clone(),
            };
            self.persist(|d| d.save_object(bucket, &updated))?;
            obj.meta = updated.meta;
        }
        Ok(out)
    }

    // ----- multipart --------------------------------------------------------------------------

    pub fn create_upload(&self, bucket: &str, meta: UploadMeta) -> Result<(), ApiError> {
        let mut buckets = self.lock();
        let b = buckets
            .get_mut(bucket)
            .ok_or_else(|| ApiError::no_such_bucket(bucket))?;
        let upload = Upload {
            meta,
            parts: BTreeMap::new(),
        };
        self.persist(|d| d.save_upload(bucket, &upload))?;
        b.uploads.insert(upload.meta.upload_id.clone(), upload);
        Ok(())
    }

    /// The upload, which must belong to `key`.
    pub fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<Upload, ApiError> {
        self.read(bucket, |b| {
            b.uploads
                .get(upload_id)
                .filter(|u| u.meta.key == key)
                .cloned()
        })?
        .ok_or_else(|| ApiError::no_such_upload(upload_id))
    }

    /// Stores a part, replacing an earlier upload of the same number.
    pub fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: Part,
    ) -> Result<(), ApiError> {
        let mut buckets = self.lock();
        let b = buckets
            .get_mut(bucket)
            .ok_or_else(|| ApiError::no_such_bucket(bucket))?;
        let upload = b
            .uploads
            .get_mut(upload_id)
            .filter(|u| u.meta.key == key)
            .ok_or_else(|| ApiError::no_such_upload(upload_id))?;
        let mut updated = upload.clone();
        updated.parts.insert(part.meta.number, part.clone());
        self.persist(|d| d.save_upload(bucket, &updated))?;
        part.blob.commit();
        if let Some(old) = upload.parts.insert(part.meta.number, part) {
            old.blob.doom();
        }
        Ok(())
    }

    /// Completes an upload: `assemble` checks the part list and builds the object from the
    /// upload; the object is committed and the upload removed in one step.
    pub fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        forbid_overwrite: bool,
        assemble: impl FnOnce(&Upload) -> Result<Object, ApiError>,
    ) -> Result<Object, ApiError> {
        let mut buckets = self.lock();
        let b = buckets
            .get_mut(bucket)
            .ok_or_else(|| ApiError::no_such_bucket(bucket))?;
        let upload = b
            .uploads
            .get(upload_id)
            .filter(|u| u.meta.key == key)
            .ok_or_else(|| ApiError::no_such_upload(upload_id))?;
        let obj = assemble(upload)?;
        if forbid_overwrite && b.objects.contains_key(key) {
            return Err(file_already_exists());
        }
        self.persist(|d| d.save_object(bucket, &obj))?;
        self.persist(|d| d.remove_upload(bucket, upload_id))?;
        if let Some(upload) = b.uploads.remove(upload_id) {
            upload.parts.values().for_each(|p| p.blob.doom());
        }
        obj.blob.commit();
        if let Some(old) = b.objects.insert(key.to_owned(), obj.clone()) {
            old.blob.doom();
        }
        Ok(obj)
    }

    pub fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<(), ApiError> {
        let mut buckets = self.lock();
        let b = buckets
            .get_mut(bucket)
            .ok_or_else(|| ApiError::no_such_bucket(bucket))?;
        if b.uploads.get(upload_id).is_none_or(|u| u.meta.key != key) {
            return Err(ApiError::no_such_upload(upload_id));
        }
        self.persist(|d| d.remove_upload(bucket, upload_id))?;
        if let Some(upload) = b.uploads.remove(upload_id) {
            upload.parts.values().for_each(|p| p.blob.doom());
        }
        Ok(())
    }
}

pub fn entity_too_large(max: u64) -> ApiError {
    ApiError::new(
        400,
        "EntityTooLarge",
        format!("Your proposed upload exceeds the maximum allowed size of {max} bytes."),
    )
    .with("MaxSizeAllowed", max.to_string())
}

pub fn file_already_exists() -> ApiError {
    ApiError::new(
        409,
        "FileAlreadyExists",
        "The object you specified already exists and can not be overwritten.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn payloads_over_the_limit_are_entity_too_large() {
        let store = Store::memory();
        let ok = store
            .write_payload(Payload::from_bytes(Bytes::from_static(b"0123456789")), 10)
            .await;
        assert_eq!(ok.unwrap().blob.len(), 10);
        let err = store
            .write_payload(Payload::from_bytes(Bytes::from_static(b"0123456789A")), 10)
            .await
            .unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.code.as_str()),
            (400, "EntityTooLarge")
        );
    }

    #[tokio::test]
    async fn disk_writes_that_fail_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = store
            .write_payload(Payload::from_bytes(Bytes::from_static(b"too long")), 3)
            .await;
        assert!(err.is_err());
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs")).unwrap().count(),
            0
        );
    }
}
