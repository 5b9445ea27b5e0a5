//! The OSS adapter of the [`Source`] port: another OSS bucket (any region, any account) read with
//! ferry's own client.

use futures_util::StreamExt;

use super::{
    ArchiveState, ByteStream, Fut, GetRequest, ListPage, ListRequest, ObjectHead, ObjectInfo,
    Opened, RestoreOutcome, RestoreTier, Source, SourceChecksums, SourceError, SourceErrorKind,
};
use crate::oss::types::{ByteRange, Conditions, RestoreState, StorageClass};
use crate::oss::{self, GetObjectOptions, ListObjectsOptions, OssClient, RestoreOptions};

/// An OSS bucket as a migration source.
#[derive(Clone, Debug)]
pub struct OssSource {
    client: OssClient,
    bucket: String,
    prefix: String,
}

impl OssSource {
    /// A source reading `bucket` through `client`; `prefix` is the job's key prefix.
    pub fn new(client: OssClient, bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        OssSource {
            client,
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    fn error(&self, key: &str, e: oss::Error) -> SourceError {
        let kind = match e.code() {
            _ if e.is_not_found() => SourceErrorKind::NotFound,
            Some("AccessDenied") | Some("SignatureDoesNotMatch") | Some("InvalidAccessKeyId") => {
                SourceErrorKind::AccessDenied
            }
            Some("InvalidObjectState") => SourceErrorKind::NeedsRestore,
            Some("PreconditionFailed") => SourceErrorKind::Changed,
            _ if matches!(e.status(), Some(503) | Some(429)) => SourceErrorKind::Throttled,
            _ if e.is_retryable() => SourceErrorKind::Transient,
            _ => SourceErrorKind::Permanent,
        };
        SourceError::new(kind, format!("oss://{}/{key}", self.bucket), e.to_string())
    }
}

impl OssSource {
    /// The client's body as ferry's stream. A body error the client would not retry is a CRC-64
    /// mismatch against what OSS reported.
    fn body_stream(&self, key: &str, body: oss::ObjectBody) -> ByteStream {
        let resource = format!("oss://{}/{key}", self.bucket);
        let stream = body.map(move |chunk| {
            chunk.map_err(|e| {
                let kind = if e.is_retryable() {
                    SourceErrorKind::Transient
                } else {
                    SourceErrorKind::Integrity
                };
                SourceError::new(kind, resource.clone(), e.to_string())
            })
        });
        Box::pin(stream)
    }
}

/// An object as OSS's HEAD or GET headers describe it (OSS's HEAD does not list tags).
fn object_head(key: &str, meta: oss::types::ObjectMeta) -> ObjectHead {
    ObjectHead {
        key: key.to_owned(),
        size: meta.content_length,
        etag: meta.etag.as_deref().map(unquote),
        last_modified: meta.last_modified,
        version_id: meta.version_id,
        archive: archive_state(meta.storage_class.as_ref(), meta.restore.as_ref()),
        storage_class: meta.storage_class.map(|c| c.as_str().to_owned()),
        content_type: meta.content_type,
        content_encoding: meta.content_encoding,
        content_disposition: meta.content_disposition,
        content_language: meta.content_language,
        cache_control: meta.cache_control,
        expires: meta.expires,
        user_metadata: meta.metadata.into_iter().collect(),
        tags: Vec::new(),
        checksums: SourceChecksums {
            oss_crc64: meta.crc64,
            ..Default::default()
        },
    }
}

fn archive_state(class: Option<&StorageClass>, restore: Option<&RestoreState>) -> ArchiveState {
    match (class.is_some_and(StorageClass::needs_restore), restore) {
        (false, _) => ArchiveState::NotArchived,
        (true, None) => ArchiveState::Archived,
        (true, Some(RestoreState::InProgress)) => ArchiveState::Restoring,
        (true, Some(RestoreState::Restored { .. })) => ArchiveState::Restored,
    }
}

fn unquote(etag: &str) -> String {
    etag.trim_matches('"').to_owned()
}

impl Source for OssSource {
    fn describe(&self) -> String {
        format!(
            "oss://{}/{} ({})",
            self.bucket,
            self.prefix,
            self.client.endpoint()
        )
    }

    fn list<'a>(&'a self, req: &'a ListRequest) -> Fut<'a, ListPage> {
        Box::pin(async move {
            let options = ListObjectsOptions {
                prefix: Some(req.prefix.clone()).filter(|p| !p.is_empty()),
                delimiter: req.delimiter.clone(),
                start_after: req.start_after.clone(),
                continuation_token: req.continuation.clone(),
                max_keys: Some(req.max_keys.clamp(1, 1000)),
                fetch_owner: false,
            };
            let page = self
                .client
                .list_objects_v2(&self.bucket, &options)
                .await
                .map_err(|e| self.error(&req.prefix, e))?;
            let objects = page
                .objects
                .into_iter()
                .map(|o| {
                    let restore = o.restore_info.as_deref().and_then(RestoreState::parse);
                    ObjectInfo {
                        archive: archive_state(o.storage_class.as_ref(), restore.as_ref()),
                        storage_class: o.storage_class.map(|c| c.as_str().to_owned()),
                        etag: o.etag.as_deref().map(unquote),
                        key: o.key,
                        size: o.size,
                        last_modified: o.last_modified,
                    }
                })
                .collect();
            let next = if page.is_truncated {
                page.next_continuation_token
            } else {
                None
            };
            Ok(ListPage {
                objects,
                common_prefixes: page.common_prefixes,
                next,
                // OSS keys are UTF-8.
                unnamable: Vec::new(),
            })
        })
    }

    fn head<'a>(&'a self, key: &'a str) -> Fut<'a, ObjectHead> {
        Box::pin(async move {
            let meta = self
                .client
                .head_object(&self.bucket, key)
                .await
                .map_err(|e| self.error(key, e))?;
            Ok(object_head(key, meta))
        })
    }

    fn open<'a>(&'a self, key: &'a str) -> Fut<'a, Opened> {
        Box::pin(async move {
            // GetObject answers with every header HeadObject does, CRC-64 included.
            let out = self
                .client
                .get_object(&self.bucket, key, &GetObjectOptions::default())
                .await
                .map_err(|e| self.error(key, e))?;
            if let Some(range) = &out.content_range {
                return Err(SourceError::new(
                    SourceErrorKind::Permanent,
                    format!("oss://{}/{key}", self.bucket),
                    format!("asked for the whole object but OSS answered a range: {range:?}"),
                ));
            }
            let mut head = object_head(key, out.meta);
            // OSS just served the bytes, so the object is readable whatever its class.
            if head.archive != ArchiveState::NotArchived {
                head.archive = ArchiveState::Restored;
            }
            Ok(Opened {
                head,
                body: self.body_stream(key, out.body),
            })
        })
    }

    fn get<'a>(&'a self, req: GetRequest<'a>) -> Fut<'a, ByteStream> {
        Box::pin(async move {
            let options = GetObjectOptions {
                range: req
                    .range
                    .as_ref()
                    .filter(|r| r.end > r.start)
                    .map(|r| ByteRange::new(r.start, r.end - r.start)),
                conditions: Conditions {
                    if_match: req.if_match.map(|e| format!("\"{e}\"")),
                    ..Default::default()
                },
                version_id: req.version_id.map(str::to_owned),
                standard_range: true,
            };
            let out = self
                .client
                .get_object(&self.bucket, req.key, &options)
                .await
                .map_err(|e| self.error(req.key, e))?;
            Ok(self.body_stream(req.key, out.body))
        })
    }

    fn restore<'a>(
        &'a self,
        key: &'a str,
        days: u32,
        tier: RestoreTier,
    ) -> Fut<'a, RestoreOutcome> {
        Box::pin(async move {
            let tier = match tier {
                RestoreTier::Expedited => oss::RestoreTier::Expedited,
                RestoreTier::Standard => oss::RestoreTier::Standard,
                RestoreTier::Bulk => oss::RestoreTier::Bulk,
            };
            let options = RestoreOptions {
                days,
                tier: Some(tier),
                version_id: None,
            };
            let outcome = self
                .client
                .restore_object(&self.bucket, key, &options)
                .await
                .map_err(|e| self.error(key, e))?;
            Ok(match outcome {
                oss::RestoreOutcome::Started => RestoreOutcome::Started,
                oss::RestoreOutcome::InProgress => RestoreOutcome::AlreadyInProgress,
                oss::RestoreOutcome::AlreadyRestored => RestoreOutcome::AlreadyRestored,
            })
        })
    }
}
