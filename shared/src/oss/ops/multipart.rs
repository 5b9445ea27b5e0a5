//! Multipart upload: initiate, upload parts (from bytes, a stream, or a server-side copy),
//! complete or abort, and list parts and uploads to resume.
//!
//! Every uploaded part returns its CRC-64 (checked against OSS's), and ListParts returns OSS's
//! per-part CRC-64, so the whole object's checksum can be assembled with `crc64::combine`
//! without reading anything twice.

use chrono::{DateTime, Utc};
use futures_util::stream::{self, BoxStream, StreamExt};
use reqwest::Method;

use crate::oss::body::RequestBody;
use crate::oss::client::{OssClient, Request};
use crate::oss::error::Error;
use crate::oss::types::{
    ByteRange, Conditions, CopySource, ObjectOptions, StorageClass, parse_iso_date,
};
use crate::oss::xml::{self, non_empty};

/// OSS's part-number range.
pub const MAX_PARTS: u32 = 10_000;
/// Smallest size of a part other than the last (100 KiB).
pub const MIN_PART_SIZE: u64 = 100 * 1024;
/// Largest part (5 GiB).
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// What UploadPart reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadPartOutput {
    /// The part number uploaded (1–10,000).
    pub part_number: u32,
    /// Quotes included; pass it unchanged to CompleteMultipartUpload.
    pub etag: String,
    /// CRC-64 of the part's bytes, equal to OSS's (checked).
    pub crc64: u64,
    /// The part's size, in bytes.
    pub size: u64,
    /// `x-oss-request-id` of the response.
    pub request_id: String,
}

/// Options of UploadPartCopy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadPartCopyOptions {
    /// The bytes of the source to copy (all of it when `None`).
    pub range: Option<ByteRange>,
    /// Conditions on the source object.
    pub conditions: Conditions,
}

/// What UploadPartCopy reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadPartCopyOutput {
    /// The part number written (1–10,000).
    pub part_number: u32,
    /// The part's ETag, quotes included; pass it unchanged to CompleteMultipartUpload.
    pub etag: String,
    /// `<LastModified>` of the copied part.
    pub last_modified: Option<DateTime<Utc>>,
    /// OSS may not compute a CRC-64 for copied parts.
    pub crc64: Option<u64>,
    /// `x-oss-copy-source-version-id`: the version of the source that was copied.
    pub source_version_id: Option<String>,
    /// `x-oss-request-id` of the response.
    pub request_id: String,
}

/// A part to assemble.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedPart {
    /// The part's number (1–10,000).
    pub part_number: u32,
    /// The ETag UploadPart or UploadPartCopy returned for it, quotes included.
    pub etag: String,
}

/// Which parts CompleteMultipartUpload assembles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompleteParts {
    /// These parts, in this order (OSS requires ascending part numbers).
    List(Vec<CompletedPart>),
    /// Every part uploaded under the upload id (`x-oss-complete-all: yes`).
    All,
}

/// Options of CompleteMultipartUpload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompleteOptions {
    /// Fail with `FileAlreadyExists` if the key exists.
    pub forbid_overwrite: bool,
    /// `x-oss-object-acl` of the assembled object; `None` keeps the bucket's default.
    pub acl: Option<String>,
}

/// What CompleteMultipartUpload reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompleteMultipartUploadOutput {
    /// `<ETag>` of the assembled object.
    pub etag: Option<String>,
    /// The whole object's CRC-64, when every part had one.
    pub crc64: Option<u64>,
    /// `x-oss-version-id` of the assembled object, on a versioned bucket.
    pub version_id: Option<String>,
    /// `<Location>`: the object's URL as OSS reports it.
    pub location: Option<String>,
    /// `x-oss-request-id` of the response.
    pub request_id: String,
}

/// Paging options of ListParts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPartsOptions {
    /// 1–1000 (default 1000).
    pub max_parts: Option<u32>,
    /// List parts after this part number.
    pub part_number_marker: Option<u32>,
}

/// A part already uploaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartInfo {
    /// The part's number (1–10,000).
    pub part_number: u32,
    /// `<ETag>` of the part, quotes included.
    pub etag: String,
    /// `<Size>` of the part, in bytes.
    pub size: u64,
    /// `<LastModified>`: when the part was uploaded.
    pub last_modified: Option<DateTime<Utc>>,
    /// `HashCrc64ecma`: OSS's CRC-64 of the part.
    pub crc64: Option<u64>,
}

/// One page of ListParts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPartsPage {
    /// The parts on this page, in part-number order.
    pub parts: Vec<PartInfo>,
    /// Whether more parts follow; ask again from `next_part_number_marker`.
    pub is_truncated: bool,
    /// `<NextPartNumberMarker>`: where the next page starts.
    pub next_part_number_marker: Option<u32>,
    /// `<StorageClass>` the assembled object will have.
    pub storage_class: Option<StorageClass>,
    /// `x-oss-request-id` of the response.
    pub request_id: String,
}

/// Paging options of ListMultipartUploads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListUploadsOptions {
    /// Only uploads whose key starts with this prefix.
    pub prefix: Option<String>,
    /// Group keys up to this character into `common_prefixes` (usually `/`).
    pub delimiter: Option<String>,
    /// List uploads of keys after this one; with `upload_id_marker`, also this key's uploads
    /// after that upload id.
    pub key_marker: Option<String>,
    /// With `key_marker`, list that key's uploads after this upload id.
    pub upload_id_marker: Option<String>,
    /// 1–1000 (default 1000).
    pub max_uploads: Option<u32>,
}

/// An upload in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadInfo {
    /// The object key the upload will create (URL-decoded).
    pub key: String,
    /// The upload id, for UploadPart, CompleteMultipartUpload and AbortMultipartUpload.
    pub upload_id: String,
    /// `<Initiated>`: when the upload was started.
    pub initiated: Option<DateTime<Utc>>,
    /// `<StorageClass>` the assembled object will have.
    pub storage_class: Option<StorageClass>,
}

/// One page of ListMultipartUploads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListUploadsPage {
    /// The uploads on this page.
    pub uploads: Vec<UploadInfo>,
    /// Key prefixes grouped by the delimiter (URL-decoded).
    pub common_prefixes: Vec<String>,
    /// Whether more uploads follow; ask again from the next markers.
    pub is_truncated: bool,
    /// `<NextKeyMarker>`: the `key_marker` of the next page.
    pub next_key_marker: Option<String>,
    /// `<NextUploadIdMarker>`: the `upload_id_marker` of the next page.
    pub next_upload_id_marker: Option<String>,
    /// `x-oss-request-id` of the response.
    pub request_id: String,
}

fn check_part_number(n: u32) -> Result<(), Error> {
    if (1..=MAX_PARTS).contains(&n) {
        Ok(())
    } else {
        Err(Error::invalid_argument(
            "part number",
            n.to_string(),
            "use 1 to 10000",
        ))
    }
}

fn check_max(name: &'static str, n: Option<u32>) -> Result<(), Error> {
    match n.filter(|n| !(1..=1000).contains(n)) {
        Some(n) => Err(Error::invalid_argument(
            name,
            n.to_string(),
            "use 1 to 1000",
        )),
        None => Ok(()),
    }
}

fn time(
    s: Option<String>,
    what: &str,
    op: &'static str,
    rid: &str,
) -> Result<Option<DateTime<Utc>>, Error> {
    match non_empty(s) {
        None => Ok(None),
        Some(s) => parse_iso_date(&s)
            .map(Some)
            .ok_or_else(|| Error::InvalidResponse {
                operation: op,
                request_id: rid.to_owned(),
                message: format!("{what} {s:?} is not an ISO 8601 time"),
            }),
    }
}

impl OssClient {
    /// Starts a multipart upload and returns its upload id. `options` are the object's headers
    /// (content type, metadata, storage class, tags, forbid-overwrite).
    pub async fn initiate_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        options: &ObjectOptions,
    ) -> Result<String, Error> {
        let mut req = Request::new("InitiateMultipartUpload", Method::POST)
            .object(bucket, key)
            .query("uploads", "");
        options.write_headers(&mut req.headers)?;
        self.execute(req, |sent| async move {
            let doc: xml::InitiateMultipartUploadResult =
                sent.xml("InitiateMultipartUploadResult").await?;
            Ok(doc.upload_id)
        })
        .await
    }

    /// Uploads one part (1–10000) from `body`. Its CRC-64 is checked against OSS's.
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: RequestBody,
    ) -> Result<UploadPartOutput, Error> {
        check_part_number(part_number)?;
        let size = body.len();
        let mut req = Request::new("UploadPart", Method::PUT)
            .object(bucket, key)
            .query("partNumber", part_number.to_string())
            .query("uploadId", upload_id)
            .body(body);
        req.verify_crc = true;
        self.execute(req, |sent| async move {
            let etag = sent
                .header("etag")
                .ok_or_else(|| sent.invalid("UploadPart answered without an ETag"))?;
            Ok(UploadPartOutput {
                part_number,
                etag,
                crc64: sent.body_crc.unwrap_or_default(),
                size,
                request_id: sent.request_id,
            })
        })
        .await
    }

    /// Copies (a range of) an existing object into part `part_number`, server-side. Source and
    /// destination must be in the same region.
    pub async fn upload_part_copy(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        source: &CopySource,
        options: &UploadPartCopyOptions,
    ) -> Result<UploadPartCopyOutput, Error> {
        check_part_number(part_number)?;
        let mut req = Request::new("UploadPartCopy", Method::PUT)
            .object(bucket, key)
            .query("partNumber", part_number.to_string())
            .query("uploadId", upload_id)
            .header("x-oss-copy-source", source.header());
        if let Some(range) = &options.range {
            req = req.header("x-oss-copy-source-range", range.header());
        }
        options
            .conditions
            .write_headers("x-oss-copy-source-", &mut req.headers);
        self.execute(req, |sent| async move {
            let crc64 =
                crate::oss::types::crc64_header(sent.headers()).map_err(|m| sent.invalid(m))?;
            let source_version_id = sent.header("x-oss-copy-source-version-id");
            let rid = sent.request_id.clone();
            let doc: xml::CopyResultXml = sent.xml("CopyPartResult").await?;
            let etag = non_empty(doc.etag).ok_or_else(|| Error::InvalidResponse {
                operation: "UploadPartCopy",
                request_id: rid.clone(),
                message: "CopyPartResult has no ETag".into(),
            })?;
            Ok(UploadPartCopyOutput {
                part_number,
                etag,
                last_modified: time(doc.last_modified, "LastModified", "UploadPartCopy", &rid)?,
                crc64,
                source_version_id,
                request_id: rid,
            })
        })
        .await
    }

    /// Assembles the object from its parts.
    pub async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &CompleteParts,
        options: &CompleteOptions,
    ) -> Result<CompleteMultipartUploadOutput, Error> {
        let mut req = Request::new("CompleteMultipartUpload", Method::POST)
            .object(bucket, key)
            .query("uploadId", upload_id)
            .query("encoding-type", "url");
        match parts {
            CompleteParts::List(list) => {
                let doc = xml::CompleteMultipartUploadXml {
                    parts: list
                        .iter()
                        .map(|p| xml::CompletePartXml {
                            part_number: p.part_number,
                            etag: p.etag.clone(),
                        })
                        .collect(),
                };
                req = req.xml_body(xml::render("CompleteMultipartUpload", &doc)?);
            }
            CompleteParts::All => req = req.header("x-oss-complete-all", "yes"),
        }
        if options.forbid_overwrite {
            req = req.header("x-oss-forbid-overwrite", "true");
        }
        if let Some(acl) = &options.acl {
            req = req.header("x-oss-object-acl", acl.clone());
        }
        self.execute(req, |sent| async move {
            let crc64 =
                crate::oss::types::crc64_header(sent.headers()).map_err(|m| sent.invalid(m))?;
            let version_id = sent.header("x-oss-version-id");
            let rid = sent.request_id.clone();
            let doc: xml::CompleteMultipartUploadResult =
                sent.xml("CompleteMultipartUploadResult").await?;
            Ok(CompleteMultipartUploadOutput {
                etag: non_empty(doc.etag),
                crc64,
                version_id,
                location: non_empty(doc.location),
                request_id: rid,
            })
        })
        .await
    }

    /// Abandons an upload and frees its parts.
    pub async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), Error> {
        let req = Request::new("AbortMultipartUpload", Method::DELETE)
            .object(bucket, key)
            .query("uploadId", upload_id);
        self.execute(req, |_| async { Ok(()) }).await
    }

    /// One page of the parts uploaded so far.
    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        options: &ListPartsOptions,
    ) -> Result<ListPartsPage, Error> {
        check_max("max_parts", options.max_parts)?;
        let req = Request::new("ListParts", Method::GET)
            .object(bucket, key)
            .query("uploadId", upload_id)
            .query_opt("max-parts", options.max_parts.map(|n| n.to_string()))
            .query_opt(
                "part-number-marker",
                options.part_number_marker.map(|n| n.to_string()),
            );
        self.execute(req, |sent| async move {
            let rid = sent.request_id.clone();
            let doc: xml::ListPartsResult = sent.xml("ListPartsResult").await?;
            parts_page(doc, rid)
        })
        .await
    }

    /// Every part of an upload, across pages.
    pub async fn list_all_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<PartInfo>, Error> {
        let mut options = ListPartsOptions::default();
        let mut all = Vec::new();
        loop {
            let page = self.list_parts(bucket, key, upload_id, &options).await?;
            all.extend(page.parts);
            match (page.is_truncated, page.next_part_number_marker) {
                (true, Some(next)) if Some(next) > options.part_number_marker => {
                    options.part_number_marker = Some(next)
                }
                (true, _) => {
                    return Err(Error::InvalidResponse {
                        operation: "ListParts",
                        request_id: page.request_id,
                        message: "the page is truncated but NextPartNumberMarker does not advance"
                            .into(),
                    });
                }
                (false, _) => return Ok(all),
            }
        }
    }

    /// One page of the multipart uploads in progress in a bucket.
    pub async fn list_multipart_uploads(
        &self,
        bucket: &str,
        options: &ListUploadsOptions,
    ) -> Result<ListUploadsPage, Error> {
        check_max("max_uploads", options.max_uploads)?;
        let req = Request::new("ListMultipartUploads", Method::GET)
            .bucket(bucket)
            .query("uploads", "")
            .query("encoding-type", "url")
            .query_opt("prefix", options.prefix.clone())
            .query_opt("delimiter", options.delimiter.clone())
            .query_opt("key-marker", options.key_marker.clone())
            .query_opt("upload-id-marker", options.upload_id_marker.clone())
            .query_opt("max-uploads", options.max_uploads.map(|n| n.to_string()));
        self.execute(req, |sent| async move {
            let rid = sent.request_id.clone();
            let doc: xml::ListMultipartUploadsResult =
                sent.xml("ListMultipartUploadsResult").await?;
            uploads_page(doc, rid)
        })
        .await
    }

    /// Every page of ListMultipartUploads from `options` on, fetched as the stream is polled.
    pub fn list_multipart_uploads_pages(
        &self,
        bucket: &str,
        options: ListUploadsOptions,
    ) -> BoxStream<'static, Result<ListUploadsPage, Error>> {
        let state = Some((self.clone(), bucket.to_owned(), options));
        stream::try_unfold(state, |state| async move {
            let Some((client, bucket, mut options)) = state else {
                return Ok(None);
            };
            let page = client.list_multipart_uploads(&bucket, &options).await?;
            if !page.is_truncated {
                return Ok(Some((page, None)));
            }
            let advanced = (
                page.next_key_marker.clone(),
                page.next_upload_id_marker.clone(),
            );
            if advanced.0.is_none()
                || advanced == (options.key_marker.clone(), options.upload_id_marker.clone())
            {
                return Err(Error::InvalidResponse {
                    operation: "ListMultipartUploads",
                    request_id: page.request_id,
                    message: "the page is truncated but its markers do not advance".into(),
                });
            }
            (options.key_marker, options.upload_id_marker) = advanced;
            Ok(Some((page, Some((client, bucket, options)))))
        })
        .boxed()
    }
}

fn parts_page(doc: xml::ListPartsResult, rid: String) -> Result<ListPartsPage, Error> {
    let op = "ListParts";
    let invalid = |message: String| Error::InvalidResponse {
        operation: op,
        request_id: rid.clone(),
        message,
    };
    let mut parts = Vec::with_capacity(doc.parts.len());
    for p in doc.parts {
        let crc64 = match non_empty(p.hash_crc64ecma) {
            Some(v) => Some(
                crate::crc64::parse_header(&v)
                    .ok_or_else(|| invalid(format!("HashCrc64ecma {v:?} is not a number")))?,
            ),
            None => None,
        };
        parts.push(PartInfo {
            part_number: p.part_number,
            etag: p.etag,
            size: p.size,
            last_modified: time(p.last_modified, "LastModified", op, &rid)?,
            crc64,
        });
    }
    let next_part_number_marker = match non_empty(doc.next_part_number_marker) {
        Some(v) => Some(
            v.trim()
                .parse()
                .map_err(|_| invalid(format!("NextPartNumberMarker {v:?} is not a number")))?,
        ),
        None => None,
    };
    Ok(ListPartsPage {
        parts,
        is_truncated: doc.is_truncated,
        next_part_number_marker,
        storage_class: non_empty(doc.storage_class).map(|s| StorageClass::from_server(&s)),
        request_id: rid,
    })
}

fn uploads_page(
    doc: xml::ListMultipartUploadsResult,
    rid: String,
) -> Result<ListUploadsPage, Error> {
    let op = "ListMultipartUploads";
    let encoded = doc
        .encoding_type
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case("url"));
    let decode = |v: String, what: &'static str| -> Result<String, Error> {
        if encoded {
            xml::url_decode(&v, what, op, &rid)
        } else {
            Ok(v)
        }
    };
    let mut uploads = Vec::with_capacity(doc.uploads.len());
    for u in doc.uploads {
        uploads.push(UploadInfo {
            key: decode(u.key, "Key")?,
            upload_id: u.upload_id,
            initiated: time(u.initiated, "Initiated", op, &rid)?,
            storage_class: non_empty(u.storage_class).map(|s| StorageClass::from_server(&s)),
        });
    }
    let common_prefixes = doc
        .common_prefixes
        .into_iter()
        .map(|p| decode(p.prefix, "Prefix"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ListUploadsPage {
        uploads,
        common_prefixes,
        is_truncated: doc.is_truncated,
        next_key_marker: non_empty(doc.next_key_marker)
            .map(|k| decode(k, "NextKeyMarker"))
            .transpose()?,
        next_upload_id_marker: non_empty(doc.next_upload_id_marker),
        request_id: rid,
    })
}
