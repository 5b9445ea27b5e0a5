//! Server-side copies: CopyObject and UploadPartCopy (`x-oss-copy-source` /
//! `x-amz-copy-source`: `/bucket/url-encoded-key[?versionId=…]`).

use http::Response;
use percent_encoding::percent_decode_str;

use super::Ctx;
use super::attrs::{self, RangeSpec, quoted_etag};
use super::multipart::{MAX_PART_BYTES, part_target};
use super::object::invalid_object_state;
use crate::body::Body;
use crate::error::ApiError;
use crate::reply::Reply;
use crate::request::Dialect;
use crate::store::model::{ObjectAttrs, ObjectMeta, PartMeta};
use crate::store::{Object, Part, entity_too_large, file_already_exists};
use crate::xml::{S3_NAMESPACE, Xml, iso8601};

/// OSS copies at most 1 GB in one CopyObject; S3 at most 5 GB.
pub const MAX_COPY_OSS: u64 = 1024 * 1024 * 1024;
pub const MAX_COPY_S3: u64 = 5 * 1024 * 1024 * 1024;

/// Parses the copy-source header into (bucket, key).
pub fn parse_copy_source(value: &str, header: &str) -> Result<(String, String), ApiError> {
    let path = value.trim();
    let path = path.split_once('?').map(|(p, _)| p).unwrap_or(path);
    let path = path.strip_prefix('/').unwrap_or(path);
    let bad = || {
        ApiError::invalid_argument(format!(
            "{header} '{value}' is invalid: it must look like /bucket/url-encoded-key"
        ))
        .with("ArgumentName", header)
    };
    let (bucket, key) = path.split_once('/').ok_or_else(bad)?;
    let key = percent_decode_str(key)
        .decode_utf8()
        .map_err(|_| bad())?
        .into_owned();
    if bucket.is_empty() || key.is_empty() {
        return Err(bad());
    }
    Ok((bucket.to_owned(), key))
}

/// Loads and checks the copy source (exists, conditions hold, readable).
fn source(ctx: &Ctx<'_>) -> Result<Object, ApiError> {
    let header = ctx.req.dialect.header("copy-source");
    let value = ctx.req.h(&header).unwrap_or_default();
    let (bucket, key) = parse_copy_source(&value, &header)?;
    let obj = ctx.state.store.object(&bucket, &key)?;
    attrs::check_conditions(ctx.req, &obj.meta, &ctx.req.dialect.header("copy-source-"))?;
    if !obj.meta.readable(ctx.state.now_millis()) {
        return Err(invalid_object_state(&obj.meta));
    }
    Ok(obj)
}

fn directive(ctx: &Ctx<'_>, suffix: &str) -> Result<bool, ApiError> {
    let header = ctx.req.dialect.header(suffix);
    match ctx.req.h(&header) {
        None => Ok(false),
        Some(v) if v.trim().eq_ignore_ascii_case("copy") => Ok(false),
        Some(v) if v.trim().eq_ignore_ascii_case("replace") => Ok(true),
        Some(v) => Err(ApiError::invalid_argument(format!(
            "{header} '{v}' is invalid: use COPY or REPLACE"
        ))),
    }
}

fn same_object(ctx: &Ctx<'_>) -> bool {
    let header = ctx.req.dialect.header("copy-source");
    let value = ctx.req.h(&header).unwrap_or_default();
    parse_copy_source(&value, &header).is_ok_and(|(b, k)| b == ctx.bucket() && k == ctx.key())
}

pub async fn copy_object(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let (bucket, key) = (ctx.bucket(), ctx.key());
    attrs::validate_key(key)?;
    let info = ctx.state.store.bucket(bucket)?;
    let src = source(ctx)?;
    let max = if ctx.req.dialect == Dialect::S3 {
        MAX_COPY_S3
    } else {
        MAX_COPY_OSS
    };
    if src.meta.size > max {
        return Err(entity_too_large(max).with(
            "Hint",
            "CopyObject copies objects up to this size; copy larger objects with multipart UploadPartCopy",
        ));
    }
    let replace_meta = directive(ctx, "metadata-directive")?;
    let replace_tags = directive(ctx, "tagging-directive")?;
    let class = attrs::storage_class(ctx.req)?;
    if ctx.req.dialect == Dialect::S3 && same_object(ctx) && !replace_meta && class.is_none() {
        return Err(ApiError::new(
            400,
            "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let (content, user_meta) = if replace_meta {
        (attrs::content_headers(ctx.req), attrs::user_meta(ctx.req)?)
    } else {
        (
            src.meta.attrs.content.clone(),
            src.meta.attrs.user_meta.clone(),
        )
    };
    let tags = if replace_tags {
        attrs::tags(ctx.req)?
    } else {
        src.meta.attrs.tags.clone()
    };
    let forbid = attrs::forbid_overwrite(ctx.req) && ctx.req.dialect == Dialect::Oss;
    if forbid && !same_object(ctx) && ctx.state.store.object(bucket, key).is_ok() {
        return Err(file_already_exists());
    }
    let attrs = ObjectAttrs {
        content,
        user_meta,
        tags,
        storage_class: class.unwrap_or(info.storage_class),
        acl: attrs::object_acl(ctx.req)?,
    };
    let written = ctx
        .state
        .store
        .write_stream(src.blob.stream(0, src.meta.size))
        .await?;
    let meta = ObjectMeta {
        key: key.to_owned(),
        size: written.blob.len(),
        etag: src.meta.etag.clone(),
        content_md5: src.meta.content_md5.clone(),
        crc64: Some(written.crc64),
        last_modified_ms: ctx.state.now_millis(),
        object_type: src.meta.object_type,
        attrs,
        restore: None,
    };
    let (etag, modified, crc) = (meta.etag.clone(), meta.last_modified_ms, written.crc64);
    ctx.state.store.put_object(
        bucket,
        Object {
            meta,
            blob: written.blob,
        },
        forbid && !same_object(ctx),
    )?;
    let mut x = Xml::new();
    x.open_root(
        "CopyObjectResult",
        (ctx.req.dialect == Dialect::S3).then_some(S3_NAMESPACE),
    );
    x.leaf("ETag", quoted_etag(ctx.req.dialect, &etag));
    x.leaf("LastModified", iso8601(modified));
    x.close("CopyObjectResult");
    Ok(Reply::ok()
        .header("x-oss-hash-crc64ecma", crc.to_string())
        .xml(x.finish()))
}

pub async fn upload_part_copy(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let (bucket, key) = (ctx.bucket(), ctx.key());
    let (number, upload_id) = part_target(ctx)?;
    ctx.state.store.upload(bucket, key, &upload_id)?;
    let src = source(ctx)?;
    let range_header = ctx.req.dialect.header("copy-source-range");
    let (start, end) = match ctx.req.h(&range_header) {
        None => (0, src.meta.size),
        Some(r) => match attrs::resolve_range(Some(&r), src.meta.size, true) {
            RangeSpec::Part(a, b) => (a, b + 1),
            RangeSpec::Unsatisfiable => {
                return Err(ApiError::new(
                    416,
                    "InvalidRange",
                    "The requested range is not satisfiable",
                )
                .with("ActualObjectSize", src.meta.size.to_string()));
            }
            RangeSpec::Whole => {
                return Err(ApiError::invalid_argument(format!(
                    "{range_header} '{r}' is invalid: use bytes=first-last within the source object"
                )));
            }
        },
    };
    if end - start > MAX_PART_BYTES {
        return Err(entity_too_large(MAX_PART_BYTES));
    }
    let written = ctx
        .state
        .store
        .write_stream(src.blob.stream(start, end))
        .await?;
    let part = Part {
        meta: PartMeta {
            number,
            etag: written.etag(),
            size: written.blob.len(),
            crc64: Some(written.crc64),
            last_modified_ms: ctx.state.now_millis(),
        },
        blob: written.blob,
    };
    let (etag, modified, crc) = (
        part.meta.etag.clone(),
        part.meta.last_modified_ms,
        written.crc64,
    );
    ctx.state.store.put_part(bucket, key, &upload_id, part)?;
    let mut x = Xml::new();
    x.open_root(
        "CopyPartResult",
        (ctx.req.dialect == Dialect::S3).then_some(S3_NAMESPACE),
    );
    x.leaf("LastModified", iso8601(modified));
    x.leaf("ETag", quoted_etag(ctx.req.dialect, &etag));
    x.close("CopyPartResult");
    Ok(Reply::ok()
        .header("x-oss-hash-crc64ecma", crc.to_string())
        .xml(x.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_forms() {
        let h = "x-oss-copy-source";
        assert_eq!(
            parse_copy_source("/b/a%20b/%E4%B8%AD.txt", h).unwrap(),
            ("b".into(), "a b/中.txt".into())
        );
        assert_eq!(
            parse_copy_source("b/k?versionId=1", h).unwrap(),
            ("b".into(), "k".into())
        );
        assert!(parse_copy_source("/b", h).is_err());
        assert!(parse_copy_source("/b/", h).is_err());
    }
}
