//! GetObject: whole and ranged reads (`get`), and `open` — one GET described by its own headers,
//! through the plain HTTP path once the SDK's address for the bucket is known.

use super::*;

impl S3Source {
    pub(super) async fn get_object(&self, req: GetRequest<'_>) -> Result<ByteStream, SourceError> {
        let resource = format!("{}/{}", self.bucket, req.key);
        check_key(req.key, &resource)?;
        let mut call = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .set_request_payer(self.request_payer.clone())
            .key(req.key)
            .set_version_id(req.version_id.map(str::to_owned))
            .set_if_match(req.if_match.map(quote));
        match &req.range {
            Some(range) if range.start >= range.end => {
                return Err(SourceError::new(
                    SourceErrorKind::Permanent,
                    resource,
                    format!(
                        "empty byte range {}..{}: ask for at least one byte or for the whole object",
                        range.start, range.end
                    ),
                ));
            }
            Some(range) => call = call.range(format!("bytes={}-{}", range.start, range.end - 1)),
            // The store's checksum covers the whole object only, so only whole reads validate.
            None => call = call.checksum_mode(ChecksumMode::Enabled),
        }
        let out = call
            .send()
            .await
            .map_err(|e| self.classify("GetObject", &resource, e))?;
        if let Some(range) = &req.range {
            check_content_range(range, out.content_range(), out.content_length(), &resource)?;
        }
        Ok(body_stream(out.body, resource))
    }

    /// One whole-object GetObject, described from its own headers. GetObject returns every
    /// header HeadObject does that ferry carries (metadata, checksums in checksum mode, storage
    /// class, restore state) and counts the tags (`x-amz-tagging-count`), so tags cost a
    /// request only for objects that have some.
    pub(super) async fn open_object(&self, key: &str) -> Result<Opened, SourceError> {
        let resource = format!("{}/{}", self.bucket, key);
        check_key(key, &resource)?;
        if self.fast.ready_for(key)
            && let Some(response) = self.fast.get(key).await
        {
            match self.opened_fast(key, response, &resource).await? {
                Some(opened) => return Ok(opened),
                None => tracing::debug!(
                    key,
                    "fast GET answer not understood; reading through the SDK"
                ),
            }
        }
        let call = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .set_request_payer(self.request_payer.clone())
            .key(key)
            .checksum_mode(ChecksumMode::Enabled);
        let recorder = self.fast.recorder(key);
        let sent = match &recorder {
            Some(r) => call.customize().interceptor(r.clone()).send().await,
            None => call.send().await,
        };
        let out = sent.map_err(|e| self.classify("GetObject", &resource, e))?;
        if let Some(range) = out.content_range() {
            return Err(SourceError::new(
                SourceErrorKind::Permanent,
                resource,
                format!(
                    "asked for the whole object but the store answered Content-Range {range:?}"
                ),
            ));
        }
        if let Some(r) = &recorder {
            self.fast.learn(key, r);
        }
        let head = object_head(key, object_headers!(out), "GetObject", &resource)?;
        let version = out.version_id().map(str::to_owned);
        let body = body_stream(out.body, resource.clone());
        self.finish_open(key, head, out.tag_count, version, body, &resource)
            .await
    }

    /// An object opened by the fast GET, described by the same rules from the raw headers;
    /// `None` when a header is not what the SDK would accept (the caller then reads through
    /// the SDK, which reports the problem its own way).
    pub(super) async fn opened_fast(
        &self,
        key: &str,
        response: reqwest::Response,
        resource: &str,
    ) -> Result<Option<Opened>, SourceError> {
        let headers = response.headers();
        let Some(described) = raw_object_headers(headers) else {
            return Ok(None);
        };
        if headers.contains_key(http::header::CONTENT_RANGE) {
            return Ok(None);
        }
        let head = object_head(key, described, "GetObject", resource)?;
        let tag_count = raw_header(headers, "x-amz-tagging-count").and_then(|v| v.parse().ok());
        let version = raw_header(headers, "x-amz-version-id").map(str::to_owned);
        let body = raw_body_stream(response, resource.to_owned());
        self.finish_open(key, head, tag_count, version, body, resource)
            .await
            .map(Some)
    }

    /// The common end of both reads: a read object is readable; tags only when it has some.
    pub(super) async fn finish_open(
        &self,
        key: &str,
        mut head: ObjectHead,
        tag_count: Option<i32>,
        version_id: Option<String>,
        body: ByteStream,
        resource: &str,
    ) -> Result<Opened, SourceError> {
        // The store just served the bytes, so the object is readable whatever its class.
        if head.archive != ArchiveState::NotArchived {
            head.archive = ArchiveState::Restored;
        }
        if self.fetch_tags && tag_count.is_some_and(|n| n > 0) {
            head.tags = self
                .tags_if_any(key, version_id.as_deref(), head.archive, resource)
                .await?;
        }
        Ok(Opened { head, body })
    }
}

/// A header as text; `None` if absent or not UTF-8.
pub(super) fn raw_header<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
}

/// [`ObjectHeaders`] from a raw GetObject answer; `None` if a header ferry carries is present
/// but unreadable (not UTF-8, a number or date that does not parse).
pub(super) fn raw_object_headers(headers: &http::HeaderMap) -> Option<ObjectHeaders<'_>> {
    let text = |name: &str| -> Result<Option<&str>, ()> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => std::str::from_utf8(v.as_bytes()).map(Some).map_err(|_| ()),
        }
    };
    let number = |name: &str| -> Result<Option<i64>, ()> {
        text(name)?
            .map(|v| v.trim().parse().map_err(|_| ()))
            .transpose()
    };
    let mut metadata = Vec::new();
    for (name, value) in headers {
        if let Some(meta) = name.as_str().strip_prefix("x-amz-meta-") {
            let value = std::str::from_utf8(value.as_bytes()).ok()?;
            metadata.push((meta.to_owned(), value.to_owned()));
        }
    }
    let last_modified = match text("last-modified").ok()? {
        Some(v) => Some(crate::oss::types::parse_http_date(v)?),
        None => None,
    };
    let parts_count = match number("x-amz-mp-parts-count").ok()? {
        Some(n) => Some(i32::try_from(n).ok()?),
        None => None,
    };
    Some(ObjectHeaders {
        content_length: number("content-length").ok()?,
        e_tag: text("etag").ok()?,
        last_modified,
        version_id: text("x-amz-version-id").ok()?,
        storage_class: text("x-amz-storage-class").ok()?,
        restore: text("x-amz-restore").ok()?,
        tiered_archive: false,
        content_type: text("content-type").ok()?,
        content_encoding: text("content-encoding").ok()?,
        content_disposition: text("content-disposition").ok()?,
        content_language: text("content-language").ok()?,
        cache_control: text("cache-control").ok()?,
        expires: text("expires").ok()?,
        metadata,
        sse_customer_algorithm: text("x-amz-server-side-encryption-customer-algorithm").ok()?,
        server_side_encryption: text("x-amz-server-side-encryption").ok()?,
        parts_count,
        checksum_crc64_nvme: text("x-amz-checksum-crc64nvme").ok()?,
        checksum_crc32_c: text("x-amz-checksum-crc32c").ok()?,
        checksum_type: text("x-amz-checksum-type").ok()?,
    })
}

/// A raw response body as ferry's stream.
pub(super) fn raw_body_stream(response: reqwest::Response, resource: String) -> ByteStream {
    Box::pin(response.bytes_stream().map(move |chunk| {
        chunk.map_err(|e| {
            SourceError::new(
                SourceErrorKind::Transient,
                resource.as_str(),
                format!(
                    "reading the GetObject body failed: {}",
                    crate::oss::error::error_chain(&e)
                ),
            )
        })
    }))
}

/// Makes sure the store sent exactly the requested bytes: some stores ignore `Range` and send
/// the whole object, and a range past the end comes back shortened.
pub(super) fn check_content_range(
    range: &std::ops::Range<u64>,
    content_range: Option<&str>,
    content_length: Option<i64>,
    resource: &str,
) -> Result<(), SourceError> {
    let want_last = range.end - 1;
    let Some(header) = content_range else {
        if range.start == 0 && content_length == Some(range.end as i64) {
            return Ok(());
        }
        return Err(SourceError::new(
            SourceErrorKind::Permanent,
            resource,
            format!(
                "asked for bytes {}-{want_last} but the store ignored the Range header",
                range.start
            ),
        ));
    };
    match parse_content_range(header) {
        Some((first, last)) if first == range.start && last == want_last => Ok(()),
        Some((first, last)) if first == range.start && last < want_last => Err(SourceError::new(
            SourceErrorKind::Changed,
            resource,
            format!(
                "asked for bytes {}-{want_last} but the object ends at byte {last} ({header}): it is shorter than expected",
                range.start
            ),
        )),
        _ => Err(SourceError::new(
            SourceErrorKind::Permanent,
            resource,
            format!(
                "asked for bytes {}-{want_last} but the store answered Content-Range {header:?}",
                range.start
            ),
        )),
    }
}

/// `bytes 10-19/1004` → (10, 19).
pub(super) fn parse_content_range(header: &str) -> Option<(u64, u64)> {
    let span = header.strip_prefix("bytes ")?.split('/').next()?;
    let (first, last) = span.split_once('-')?;
    Some((first.trim().parse().ok()?, last.trim().parse().ok()?))
}

/// The SDK body as ferry's stream: chunks as they arrive, never collected; ends after the
/// first error.
pub(super) fn body_stream(
    body: aws_sdk_s3::primitives::ByteStream,
    resource: String,
) -> ByteStream {
    let stream = futures_util::stream::unfold(Some(body), move |state| {
        let resource = resource.clone();
        async move {
            let mut body = state?;
            match body.next().await? {
                Ok(chunk) => Some((Ok(chunk), Some(body))),
                Err(e) => Some((Err(body_error(&resource, &e)), None)),
            }
        }
    });
    Box::pin(stream)
}

pub(super) fn body_error(resource: &str, err: &(dyn std::error::Error + 'static)) -> SourceError {
    let text = DisplayErrorContext(err).to_string();
    // The SDK's validator fails the body with a "checksum mismatch" error (its type lives in a
    // crate ferry does not depend on, so the text is what there is to match).
    let kind = if text.contains("checksum mismatch") {
        SourceErrorKind::Integrity
    } else {
        SourceErrorKind::Transient
    };
    SourceError::new(
        kind,
        resource,
        format!("reading the GetObject body failed: {text}"),
    )
}
