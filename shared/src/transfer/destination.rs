//! The destination port (docs/architecture.md §1): every operation ferry makes on the OSS bucket
//! it copies into goes through [`Destination`].
//!
//! It is a concrete type with a private client, not a trait: OSS is the only destination ferry
//! writes to, and a trait object would add an indirection and a second name for each OSS
//! operation without a second implementation to justify it. What the port adds over the raw
//! client is that nobody passes the bucket again (it cannot be the wrong one) and that the
//! mapping from source key to destination key is written once ([`Destination::key_for`]).
//! Methods take destination keys and keep the names of the OSS operations they send, so a
//! reader can find each in the OSS reference.
//!
//! Copying inside OSS (CopyObject / UploadPartCopy) is a property of a source and destination
//! *pair*, not of either alone: see [`ServerSide`].

use futures_util::stream::BoxStream;

use crate::oss::types::{CopySource, ObjectMeta, ObjectOptions};
use crate::oss::{
    CompleteMultipartUploadOutput, CompleteOptions, CompleteParts, CopyObjectOptions,
    CopyObjectOutput, Error, ListObjectsOptions, ListObjectsPage, ListUploadsOptions,
    ListUploadsPage, OssClient, PartInfo, PutObjectOutput, RequestBody, UploadPartCopyOptions,
    UploadPartCopyOutput, UploadPartOutput,
};

/// Where objects go: an OSS bucket and a key prefix.
#[derive(Clone, Debug)]
pub struct Destination {
    client: OssClient,
    bucket: String,
    prefix: String,
    /// Taken off the front of each source key before it goes behind `prefix` (the job's
    /// `relative` key layout); empty keeps whole keys.
    relative_to: String,
}

impl Destination {
    /// The bucket `bucket` reached through `client`; every source key is written behind
    /// `prefix` (which may be empty).
    pub fn new(client: OssClient, bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        Destination {
            client,
            bucket: bucket.into(),
            prefix: prefix.into(),
            relative_to: String::new(),
        }
    }

    /// Source keys lose `source_prefix` before they go behind the prefix, as OssImport and
    /// rclone lay them out: `2024/a.jpg` under source prefix `2024/` and prefix `from-s3/`
    /// becomes `from-s3/a.jpg` instead of `from-s3/2024/a.jpg`.
    pub fn relative_to(mut self, source_prefix: impl Into<String>) -> Self {
        self.relative_to = source_prefix.into();
        self
    }

    /// The destination bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix every source key is written behind.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The destination key of a source key: the prefix, then the key (without the source
    /// prefix under the relative layout). A key outside the source prefix is kept whole; ferry
    /// never copies one (listings and events are scoped to the source prefix). Empty only for
    /// the source prefix's own folder marker under the relative layout with no prefix, which
    /// has no name at the destination (see [`Copier`](super::Copier)).
    pub fn key_for(&self, source_key: &str) -> String {
        let rest = source_key
            .strip_prefix(self.relative_to.as_str())
            .unwrap_or(source_key);
        format!("{}{rest}", self.prefix)
    }

    /// The source key a destination key was written from, or `None` for a key outside the
    /// prefix (not ferry's to touch). The inverse of [`key_for`](Self::key_for).
    pub fn source_key_of(&self, dest_key: &str) -> Option<String> {
        let rest = dest_key.strip_prefix(self.prefix.as_str())?;
        Some(format!("{}{rest}", self.relative_to))
    }

    /// The object's metadata (size, ETag, CRC-64, ferry's stamps).
    pub async fn head_object(&self, key: &str) -> Result<ObjectMeta, Error> {
        self.client.head_object(&self.bucket, key).await
    }

    /// Deletes one object (OSS answers success for a key that is not there).
    pub async fn delete_object(&self, key: &str) -> Result<(), Error> {
        self.client.delete_object(&self.bucket, key).await
    }

    /// Writes one object in one request.
    pub async fn put_object(
        &self,
        key: &str,
        body: RequestBody,
        options: &ObjectOptions,
    ) -> Result<PutObjectOutput, Error> {
        self.client
            .put_object(&self.bucket, key, body, options)
            .await
    }

    /// Copies `source` (an object on the same OSS service) to `key` inside OSS.
    pub async fn copy_object(
        &self,
        key: &str,
        source: &CopySource,
        options: &CopyObjectOptions,
    ) -> Result<CopyObjectOutput, Error> {
        self.client
            .copy_object(&self.bucket, key, source, options)
            .await
    }

    /// Starts a multipart upload to `key`; returns its upload id.
    pub async fn initiate_multipart_upload(
        &self,
        key: &str,
        options: &ObjectOptions,
    ) -> Result<String, Error> {
        self.client
            .initiate_multipart_upload(&self.bucket, key, options)
            .await
    }

    /// Uploads one part.
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: RequestBody,
    ) -> Result<UploadPartOutput, Error> {
        self.client
            .upload_part(&self.bucket, key, upload_id, part_number, body)
            .await
    }

    /// Fills one part from an object on the same OSS service.
    pub async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        source: &CopySource,
        options: &UploadPartCopyOptions,
    ) -> Result<UploadPartCopyOutput, Error> {
        self.client
            .upload_part_copy(&self.bucket, key, upload_id, part_number, source, options)
            .await
    }

    /// Completes an upload from its parts.
    pub async fn complete_multipart_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: &CompleteParts,
        options: &CompleteOptions,
    ) -> Result<CompleteMultipartUploadOutput, Error> {
        self.client
            .complete_multipart_upload(&self.bucket, key, upload_id, parts, options)
            .await
    }

    /// Abandons an upload and frees its parts.
    pub async fn abort_multipart_upload(&self, key: &str, upload_id: &str) -> Result<(), Error> {
        self.client
            .abort_multipart_upload(&self.bucket, key, upload_id)
            .await
    }

    /// Every part an upload holds, in part-number order.
    pub async fn list_all_parts(&self, key: &str, upload_id: &str) -> Result<Vec<PartInfo>, Error> {
        self.client
            .list_all_parts(&self.bucket, key, upload_id)
            .await
    }

    /// The bucket's unfinished uploads, page by page.
    pub fn list_multipart_uploads_pages(
        &self,
        options: ListUploadsOptions,
    ) -> BoxStream<'static, Result<ListUploadsPage, Error>> {
        self.client
            .list_multipart_uploads_pages(&self.bucket, options)
    }

    /// One page of the bucket's objects.
    pub async fn list_objects_v2(
        &self,
        options: &ListObjectsOptions,
    ) -> Result<ListObjectsPage, Error> {
        self.client.list_objects_v2(&self.bucket, options).await
    }
}

/// The capability to copy inside OSS: the source is an OSS bucket on the destination's own
/// service and region, read with the destination's credentials, so CopyObject and
/// UploadPartCopy can fill the destination without a byte passing through ferry.
///
/// It belongs to the source and destination together, which only the job knows whole; so it
/// is made from a job ([`ServerSide::for_job`]) or stated by a caller that knows the pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSide {
    source_bucket: String,
}

impl ServerSide {
    /// The capability for `spec`'s pair, when it has it: an OSS source on the same OSS
    /// service as the destination with the same credentials reference.
    pub fn for_job(spec: &crate::job::JobSpec) -> Option<ServerSide> {
        spec.server_side_source().map(ServerSide::same_service)
    }

    /// The caller states that `source_bucket` is on the destination's service and readable
    /// with its credentials.
    pub fn same_service(source_bucket: impl Into<String>) -> ServerSide {
        ServerSide {
            source_bucket: source_bucket.into(),
        }
    }

    /// The source bucket copies are made from.
    pub fn source_bucket(&self) -> &str {
        &self.source_bucket
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::oss::Credentials;

    fn destination(prefix: &str) -> Destination {
        let client = OssClient::builder()
            .endpoint("https://oss-cn-hangzhou.aliyuncs.com")
            .region("cn-hangzhou")
            .credentials(Credentials::new("id", "secret"))
            .build()
            .unwrap();
        Destination::new(client, "b", prefix)
    }

    #[test]
    fn the_two_layouts_place_a_key_as_documented() {
        let full = destination("from-s3/");
        let relative = destination("from-s3/").relative_to("2024/");
        assert_eq!(full.key_for("2024/a.jpg"), "from-s3/2024/a.jpg");
        assert_eq!(relative.key_for("2024/a.jpg"), "from-s3/a.jpg");
        assert_eq!(relative.key_for("2024/"), "from-s3/");
        assert_eq!(destination("").relative_to("2024/").key_for("2024/"), "");
        assert_eq!(
            relative.source_key_of("from-s3/a.jpg").as_deref(),
            Some("2024/a.jpg")
        );
        assert_eq!(relative.source_key_of("elsewhere/a.jpg"), None);
    }

    proptest! {
        /// The differ walks source and destination listings side by side, so the mapping must
        /// keep order; the orphan sweep maps destination keys back, so it must be invertible.
        #[test]
        fn key_mapping_keeps_order_and_maps_back(
            source_prefix in "([a-z0-9]{1,4}/){0,2}",
            dest_prefix in "([a-zé]{1,3}/)?",
            relative in any::<bool>(),
            a in "[a-z/ü+ %.]{1,12}",
            b in "[a-z/ü+ %.]{1,12}",
        ) {
            let mut dest = destination(&dest_prefix);
            if relative {
                dest = dest.relative_to(source_prefix.clone());
            }
            let (ka, kb) = (format!("{source_prefix}{a}"), format!("{source_prefix}{b}"));
            let (da, db) = (dest.key_for(&ka), dest.key_for(&kb));
            prop_assert_eq!(ka.cmp(&kb), da.cmp(&db));
            prop_assert_eq!(dest.source_key_of(&da), Some(ka.clone()));
            let expected = if relative { format!("{dest_prefix}{a}") } else { format!("{dest_prefix}{ka}") };
            prop_assert_eq!(da, expected);
        }
    }
}
