//! HeadObject (+ GetObjectTagging) as an [`ObjectHead`]: size, ETag, times, the storage class
//! and archive state, and only *full-object* checksums (a composite `…-N` one proves nothing).

use super::*;

impl S3Source {
    pub(super) async fn head_object(&self, key: &str) -> Result<ObjectHead, SourceError> {
        let resource = format!("{}/{}", self.bucket, key);
        check_key(key, &resource)?;
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .set_request_payer(self.request_payer.clone())
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| self.classify("HeadObject", &resource, e))?;
        let headers = ObjectHeaders {
            tiered_archive: matches!(
                out.archive_status(),
                Some(ArchiveStatus::ArchiveAccess | ArchiveStatus::DeepArchiveAccess)
            ),
            ..object_headers!(out)
        };
        let mut head = object_head(key, headers, "HeadObject", &resource)?;
        if self.fetch_tags {
            head.tags = self
                .tags_if_any(key, out.version_id(), head.archive, &resource)
                .await?;
        }
        Ok(head)
    }

    /// The object's tags, or none where the store cannot say: tagging calls refused on an
    /// archived object, or a store without object tagging.
    pub(super) async fn tags_if_any(
        &self,
        key: &str,
        version_id: Option<&str>,
        archive: ArchiveState,
        resource: &str,
    ) -> Result<Vec<(String, String)>, SourceError> {
        match self.tags(key, version_id, resource).await {
            Ok(tags) => Ok(tags),
            // Some stores (moto) refuse tagging calls on archived objects. The object cannot
            // be copied before a restore anyway, and the engine HEADs it again after one.
            Err(e)
                if e.kind == SourceErrorKind::NeedsRestore
                    && archive != ArchiveState::NotArchived =>
            {
                Ok(Vec::new())
            }
            // Some S3-compatible stores have no object tagging at all: nothing to carry.
            Err(e)
                if e.kind == SourceErrorKind::Permanent && e.message.contains("NotImplemented") =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn tags(
        &self,
        key: &str,
        version_id: Option<&str>,
        resource: &str,
    ) -> Result<Vec<(String, String)>, SourceError> {
        let out = self
            .client
            .get_object_tagging()
            .bucket(&self.bucket)
            .set_request_payer(self.request_payer.clone())
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await
            .map_err(|e| self.classify("GetObjectTagging", resource, e))?;
        Ok(out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect())
    }
}

pub(super) fn object_head(
    key: &str,
    out: ObjectHeaders<'_>,
    operation: &str,
    resource: &str,
) -> Result<ObjectHead, SourceError> {
    let size = out.content_length.filter(|n| *n >= 0).ok_or_else(|| {
        SourceError::new(
            SourceErrorKind::Permanent,
            resource,
            format!("{operation} returned no Content-Length"),
        )
    })?;
    let storage_class = out.storage_class.unwrap_or("STANDARD").to_owned();
    let restore = out.restore;
    let archive = archive_state(
        &storage_class,
        out.tiered_archive,
        restore.and_then(restore_in_progress),
        restore.is_some_and(|r| quoted_field(r, "expiry-date").is_some()),
    );
    let checksums = head_checksums(&out);
    let mut user_metadata = out.metadata;
    user_metadata.sort();
    let owned = |v: Option<&str>| v.map(str::to_owned);
    Ok(ObjectHead {
        key: key.to_owned(),
        size: size as u64,
        etag: out.e_tag.map(unquote),
        last_modified: out.last_modified,
        version_id: owned(out.version_id),
        storage_class: Some(storage_class),
        archive,
        content_type: owned(out.content_type),
        content_encoding: owned(out.content_encoding),
        content_disposition: owned(out.content_disposition),
        content_language: owned(out.content_language),
        cache_control: owned(out.cache_control),
        expires: owned(out.expires),
        user_metadata,
        tags: Vec::new(),
        checksums,
    })
}

pub(super) fn head_checksums(out: &ObjectHeaders<'_>) -> SourceChecksums {
    let kms_or_customer_key = out.sse_customer_algorithm.is_some()
        || out
            .server_side_encryption
            .is_some_and(|s| s != ServerSideEncryption::Aes256.as_str());
    let multipart = out.e_tag.is_some_and(|e| unquote(e).contains('-'))
        || out.parts_count.is_some_and(|n| n > 1);
    let kind = out.checksum_type.map(ChecksumType::from);
    SourceChecksums {
        md5: out
            .e_tag
            .filter(|_| !kms_or_customer_key)
            .and_then(md5_from_etag),
        // CRC64NVME exists only as a full-object checksum.
        crc64nvme: full_object_checksum(out.checksum_crc64_nvme, kind.as_ref(), true)
            .map(u64::from_be_bytes),
        crc32c: full_object_checksum(out.checksum_crc32_c, kind.as_ref(), !multipart)
            .map(u32::from_be_bytes),
        oss_crc64: None,
    }
}

/// The MD5 a single-part upload's ETag is. Multipart ETags (`…-N`) and anything else that is not
/// 32 hex digits are not MD5s.
pub(super) fn md5_from_etag(etag: &str) -> Option<[u8; 16]> {
    let hex_digits = unquote(etag);
    if hex_digits.len() != 32 {
        return None;
    }
    let mut md5 = [0u8; 16];
    hex::decode_to_slice(&hex_digits, &mut md5).ok()?;
    Some(md5)
}

/// A Base64 checksum header as N big-endian bytes, only when it covers the whole object: the
/// type says FULL_OBJECT, or no type is given and `full_if_untyped` holds. A value ending in
/// `-N` is composite whatever else is said. Callers pass `full_if_untyped = false` for a
/// multipart object's CRC32C: some stores (moto) send a composite value with neither the type
/// nor the `-N` suffix, and only the ETag shows the object was uploaded in parts.
pub(super) fn full_object_checksum<const N: usize>(
    value: Option<&str>,
    kind: Option<&ChecksumType>,
    full_if_untyped: bool,
) -> Option<[u8; N]> {
    let value = value?;
    let full = match kind {
        Some(ChecksumType::FullObject) => true,
        Some(ChecksumType::Composite) => false,
        _ => full_if_untyped,
    };
    if !full || value.contains('-') {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    bytes.try_into().ok()
}

/// `ongoing-request="true"` → restoring; `"false"` → finished.
pub(super) fn restore_in_progress(header: &str) -> Option<bool> {
    match quoted_field(header, "ongoing-request")? {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The value of `name="value"` in a header like `x-amz-restore`. Values may hold commas
/// (`expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"`), so this does not split on them.
pub(super) fn quoted_field<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    let needle = format!("{name}=\"");
    let start = header.find(&needle)? + needle.len();
    let len = header[start..].find('"')?;
    Some(&header[start..start + len])
}
