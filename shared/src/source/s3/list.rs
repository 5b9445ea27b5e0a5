//! ListObjectsV2 pages as ferry listings: keys decoded (listings ask for `encoding-type=url`),
//! storage classes and archive states, the continuation token.

use super::*;

impl S3Source {
    pub(super) async fn list_page(&self, req: &ListRequest) -> Result<ListPage, SourceError> {
        let resource = format!("{}/{}", self.bucket, req.prefix);
        // 0 would ask for an empty page that still claims to be truncated: treat it as "default".
        let max_keys = if req.max_keys == 0 {
            1000
        } else {
            req.max_keys.min(1000)
        };
        let mut call = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .set_request_payer(self.request_payer.clone())
            .prefix(&req.prefix)
            .encoding_type(EncodingType::Url)
            .max_keys(max_keys as i32)
            .set_delimiter(req.delimiter.clone())
            .set_start_after(req.start_after.clone())
            .set_continuation_token(req.continuation.clone());
        if self.list_restore_status {
            call = call.optional_object_attributes(OptionalObjectAttributes::RestoreStatus);
        }
        let out = call
            .send()
            .await
            .map_err(|e| self.classify("ListObjectsV2", &resource, e))?;
        let encoded = out.encoding_type() == Some(&EncodingType::Url);
        let decode = |raw: &str| decode_listed(raw, encoded, &resource);

        let (mut objects, mut unnamable) = (Vec::new(), Vec::new());
        for o in out.contents() {
            let raw = o.key().unwrap_or_default();
            match decode(raw) {
                Ok(key) => objects.push(object_info(key, o)),
                // One key that is not UTF-8 fails that object, not the page.
                Err(_) if encoded => {
                    let bytes: Vec<u8> =
                        percent_encoding::percent_decode_str(&raw.replace('+', " ")).collect();
                    let lossy = String::from_utf8_lossy(&bytes).into_owned();
                    unnamable.push(UnnamableObject {
                        listed: raw.to_owned(),
                        bytes,
                        info: object_info(lossy, o),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        let common_prefixes = out
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .map(decode)
            .collect::<Result<Vec<_>, SourceError>>()?;
        let next = match (out.is_truncated(), out.next_continuation_token()) {
            (Some(true), Some(token)) => Some(token.to_owned()),
            (Some(true), None) => {
                return Err(SourceError::new(
                    SourceErrorKind::Permanent,
                    resource,
                    "ListObjectsV2 said the listing is truncated but returned no continuation token",
                ));
            }
            _ => None,
        };
        Ok(ListPage {
            objects,
            common_prefixes,
            next,
            unnamable,
        })
    }
}

/// Decodes a key or prefix of a listing made with `encoding-type=url`. S3 encodes form-style
/// (a space may come back as `+`, a real `+` always as `%2B`), so `+` decodes to a space.
pub(super) fn decode_listed(
    raw: &str,
    encoded: bool,
    resource: &str,
) -> Result<String, SourceError> {
    if !encoded {
        return Ok(raw.to_owned());
    }
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            SourceError::new(
                SourceErrorKind::Permanent,
                resource,
                format!("the store listed key {raw:?}, which does not decode to UTF-8"),
            )
        })
}

pub(super) fn object_info(key: String, o: &Object) -> ObjectInfo {
    let storage_class = o
        .storage_class()
        .map_or("STANDARD", |c| c.as_str())
        .to_owned();
    let restore = o.restore_status();
    let archive = archive_state(
        &storage_class,
        false,
        restore.and_then(|r| r.is_restore_in_progress()),
        restore.and_then(|r| r.restore_expiry_date()).is_some(),
    );
    ObjectInfo {
        key,
        size: o.size().unwrap_or(0).max(0) as u64,
        etag: o.e_tag().map(unquote),
        last_modified: o.last_modified().and_then(to_chrono),
        storage_class: Some(storage_class),
        archive,
    }
}

/// Storage classes whose bytes cannot be read until restored. GLACIER_IR reads like STANDARD.
pub(super) fn is_archive_class(storage_class: &str) -> bool {
    matches!(storage_class, "GLACIER" | "DEEP_ARCHIVE")
}

/// `in_progress` / `has_expiry` describe a restore (from `x-amz-restore` or the listing's
/// RestoreStatus); `tiered_archive` is an INTELLIGENT_TIERING object in an archive tier.
pub(super) fn archive_state(
    storage_class: &str,
    tiered_archive: bool,
    in_progress: Option<bool>,
    has_expiry: bool,
) -> ArchiveState {
    match in_progress {
        Some(true) => ArchiveState::Restoring,
        Some(false) if has_expiry => ArchiveState::Restored,
        _ if is_archive_class(storage_class) || tiered_archive => ArchiveState::Archived,
        _ => ArchiveState::NotArchived,
    }
}
