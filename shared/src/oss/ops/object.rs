//! Single-object operations: PutObject, GetObject, HeadObject, DeleteObject.

use reqwest::Method;

use crate::oss::body::{ObjectBody, RequestBody};
use crate::oss::client::{OssClient, Request, Sent};
use crate::oss::error::Error;
use crate::oss::types::{ByteRange, Conditions, ContentRange, ObjectMeta, ObjectOptions};

/// What PutObject reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutObjectOutput {
    /// As OSS sends it, quotes included.
    pub etag: Option<String>,
    /// CRC-64 of the bytes sent — equal to what OSS stored (checked before returning).
    pub crc64: u64,
    /// `x-oss-version-id` of the new object, on a versioned bucket.
    pub version_id: Option<String>,
    /// `x-oss-request-id` of the response.
    pub request_id: String,
}

/// Options of GetObject.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GetObjectOptions {
    /// The bytes to read; the whole object when `None`.
    pub range: Option<ByteRange>,
    /// Conditions on the object (`If-Match`, `If-None-Match`, `If-Modified-Since`, …).
    pub conditions: Conditions,
    /// Read this version (`versionId`); the current one when `None`.
    pub version_id: Option<String>,
    /// `x-oss-range-behavior: standard`: an out-of-range start fails with `InvalidRange` (416)
    /// instead of returning the whole object.
    pub standard_range: bool,
}

/// A GetObject response: headers, and the body as a stream.
#[derive(Debug)]
pub struct GetObjectOutput {
    /// The object's headers.
    pub meta: ObjectMeta,
    /// Present for a ranged read (206).
    pub content_range: Option<ContentRange>,
    /// The bytes. For whole-object reads its end verifies the CRC-64 OSS reported.
    pub body: ObjectBody,
}

impl GetObjectOutput {
    /// The size of the whole object (not just the returned range).
    pub fn object_size(&self) -> u64 {
        self.content_range
            .map_or(self.meta.content_length, |r| r.total)
    }
}

impl OssClient {
    /// Uploads an object (up to 5 GB) from `body`, with the headers in `options`. The CRC-64 of
    /// the bytes sent is compared with OSS's; a mismatch is a retryable
    /// [`Error::ChecksumMismatch`].
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: RequestBody,
        options: &ObjectOptions,
    ) -> Result<PutObjectOutput, Error> {
        let mut req = Request::new("PutObject", Method::PUT)
            .object(bucket, key)
            .body(body);
        options.write_headers(&mut req.headers)?;
        req.verify_crc = true;
        self.execute(req, |sent| async move {
            Ok(PutObjectOutput {
                etag: sent.header("etag"),
                crc64: sent.body_crc.unwrap_or_default(),
                version_id: sent.header("x-oss-version-id"),
                request_id: sent.request_id,
            })
        })
        .await
    }

    /// Downloads an object, or a range of it, as a stream.
    ///
    /// Retries cover the request up to the response headers; a body that breaks later yields a
    /// retryable error from the stream, and the caller resumes with a range.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        options: &GetObjectOptions,
    ) -> Result<GetObjectOutput, Error> {
        let mut req = Request::new("GetObject", Method::GET)
            .object(bucket, key)
            .query_opt("versionId", options.version_id.clone());
        if let Some(range) = &options.range {
            req = req.header("Range", range.header());
        }
        if options.standard_range {
            req = req.header("x-oss-range-behavior", "standard");
        }
        options.conditions.write_headers("", &mut req.headers);
        self.execute(req, |sent| async move { read_get(sent) })
            .await
    }

    /// Reads an object's metadata (size, CRC-64, storage class, restore state, …).
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, Error> {
        self.head_object_version(bucket, key, None).await
    }

    /// HeadObject of a specific version.
    pub async fn head_object_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<ObjectMeta, Error> {
        let req = Request::new("HeadObject", Method::HEAD)
            .object(bucket, key)
            .query_opt("versionId", version_id);
        self.execute(req, |sent| async move {
            ObjectMeta::from_headers(sent.headers()).map_err(|m| sent.invalid(m))
        })
        .await
    }

    /// Deletes an object. Deleting a missing key succeeds, as in OSS.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), Error> {
        let req = Request::new("DeleteObject", Method::DELETE).object(bucket, key);
        self.execute(req, |_| async { Ok(()) }).await
    }
}

fn read_get(sent: Sent) -> Result<GetObjectOutput, Error> {
    let meta = ObjectMeta::from_headers(sent.headers()).map_err(|m| sent.invalid(m))?;
    let content_range = match sent.header("content-range") {
        Some(v) => Some(
            ContentRange::parse(&v)
                .ok_or_else(|| sent.invalid(format!("Content-Range {v:?} is malformed")))?,
        ),
        None => None,
    };
    // OSS's CRC covers the whole object, so only a whole-object body can be checked against it.
    let whole = sent.response.status().as_u16() == 200 && content_range.is_none();
    let expected_crc = if whole { meta.crc64 } else { None };
    let body = ObjectBody::new(sent.response, expected_crc, sent.resource, sent.request_id);
    Ok(GetObjectOutput {
        meta,
        content_range,
        body,
    })
}
