//! CopyObject: a server-side copy within a region (objects up to 1 GB; larger ones go through
//! UploadPartCopy). Copying an object onto itself with a new storage class is also how OSS
//! changes an object's class.

use chrono::{DateTime, Utc};
use reqwest::Method;

use crate::oss::client::{OssClient, Request};
use crate::oss::error::Error;
use crate::oss::types::{Conditions, CopySource, ObjectOptions, parse_iso_date};
use crate::oss::xml::{self, non_empty};

/// Whether the copy keeps the source's metadata or takes the request's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MetadataDirective {
    /// Keep the source's Content-* headers and user metadata (OSS default).
    #[default]
    Copy,
    /// Use the Content-* headers and metadata of [`CopyObjectOptions::object`].
    Replace,
}

/// Whether the copy keeps the source's tags or takes the request's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaggingDirective {
    /// Keep the source's tags (`x-oss-tagging-directive: Copy`).
    Copy,
    /// Use the tags of [`CopyObjectOptions::object`] (`x-oss-tagging-directive: Replace`).
    Replace,
}

/// Options of CopyObject.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyObjectOptions {
    /// `x-oss-metadata-directive`: keep the source's Content-* headers and metadata, or replace
    /// them.
    pub metadata_directive: MetadataDirective,
    /// `x-oss-tagging-directive`; `None` sends no header, leaving OSS's default (`Copy`).
    pub tagging_directive: Option<TaggingDirective>,
    /// Headers of the new object. Storage class, ACL and forbid-overwrite always apply;
    /// Content-* and metadata only with [`MetadataDirective::Replace`]; tags only with
    /// [`TaggingDirective::Replace`].
    pub object: ObjectOptions,
    /// Conditions on the source object.
    pub source_conditions: Conditions,
}

/// What CopyObject reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyObjectOutput {
    /// `<ETag>` of the new object.
    pub etag: Option<String>,
    /// `<LastModified>` of the new object.
    pub last_modified: Option<DateTime<Utc>>,
    /// OSS may not report a CRC-64 for copies.
    pub crc64: Option<u64>,
    /// `x-oss-version-id` of the new object, on a versioned bucket.
    pub version_id: Option<String>,
    /// `x-oss-copy-source-version-id`: the version of the source that was copied.
    pub source_version_id: Option<String>,
    /// `x-oss-request-id` of the response.
    pub request_id: String,
}

impl OssClient {
    /// Copies `source` to `bucket/key` on the server.
    pub async fn copy_object(
        &self,
        bucket: &str,
        key: &str,
        source: &CopySource,
        options: &CopyObjectOptions,
    ) -> Result<CopyObjectOutput, Error> {
        crate::oss::client::check_bucket(&source.bucket)?;
        crate::oss::client::check_key(&source.key)?;
        let directive = match options.metadata_directive {
            MetadataDirective::Copy => "COPY",
            MetadataDirective::Replace => "REPLACE",
        };
        let mut req = Request::new("CopyObject", Method::PUT)
            .object(bucket, key)
            .header("x-oss-copy-source", source.header())
            .header("x-oss-metadata-directive", directive);
        match options.tagging_directive {
            Some(TaggingDirective::Copy) => req = req.header("x-oss-tagging-directive", "Copy"),
            Some(TaggingDirective::Replace) => {
                req = req.header("x-oss-tagging-directive", "Replace")
            }
            None => {}
        }
        options.object.write_headers(&mut req.headers)?;
        options
            .source_conditions
            .write_headers("x-oss-copy-source-", &mut req.headers);
        self.execute(req, |sent| async move {
            let crc64 =
                crate::oss::types::crc64_header(sent.headers()).map_err(|m| sent.invalid(m))?;
            let version_id = sent.header("x-oss-version-id");
            let source_version_id = sent.header("x-oss-copy-source-version-id");
            let rid = sent.request_id.clone();
            let doc: xml::CopyResultXml = sent.xml("CopyObjectResult").await?;
            let last_modified = match non_empty(doc.last_modified) {
                Some(s) => Some(parse_iso_date(&s).ok_or_else(|| Error::InvalidResponse {
                    operation: "CopyObject",
                    request_id: rid.clone(),
                    message: format!("LastModified {s:?} is not an ISO 8601 time"),
                })?),
                None => None,
            };
            Ok(CopyObjectOutput {
                etag: non_empty(doc.etag),
                last_modified,
                crc64,
                version_id,
                source_version_id,
                request_id: rid,
            })
        })
        .await
    }
}
