//! Multipart upload: InitiateMultipartUpload, UploadPart, CompleteMultipartUpload,
//! AbortMultipartUpload, ListParts and ListMultipartUploads (UploadPartCopy is in `copy`).
//!
//! The completed object's ETag is the upper-case hex MD5 of the concatenated binary part MD5s
//! plus `-N`, and its CRC-64 is the combination of the part CRCs (`ferry::crc64::combine`).

use http::Response;
use md5::{Digest, Md5};
use serde::Deserialize;

use super::Ctx;
use super::attrs::{self, quoted_etag, storage_class_name};
use super::list::{max_keys, owner_xml, url_encode};
use super::object::check_declared_length;
use crate::body::{Body, Payload};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::request::Dialect;
use crate::store::model::{ObjectMeta, ObjectType, PartMeta, UploadMeta};
use crate::store::{Object, Part, Upload};
use crate::xml::{S3_NAMESPACE, Xml, iso8601};

pub const MAX_PART_NUMBER: u32 = 10_000;
/// Every part but the last must be at least 100 KB.
pub const MIN_PART_BYTES: u64 = 100 * 1024;
pub const MAX_PART_BYTES: u64 = 5 * 1024 * 1024 * 1024;

fn ns(ctx: &Ctx<'_>) -> Option<&'static str> {
    (ctx.req.dialect == Dialect::S3).then_some(S3_NAMESPACE)
}

fn enc(ctx: &Ctx<'_>, s: &str) -> String {
    if ctx.req.url_encoding() {
        url_encode(s)
    } else {
        s.to_owned()
    }
}

pub fn initiate(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let (bucket, key) = (ctx.bucket(), ctx.key());
    attrs::validate_key(key)?;
    let info = ctx.state.store.bucket(bucket)?;
    let attrs = attrs::attrs_from_request(ctx.req, info.storage_class)?;
    if attrs::forbid_overwrite(ctx.req) && ctx.state.store.object(bucket, key).is_ok() {
        return Err(crate::store::file_already_exists());
    }
    let upload_id = format!("{:016X}{:016X}", fastrand::u64(..), fastrand::u64(..));
    let meta = UploadMeta {
        upload_id: upload_id.clone(),
        key: key.to_owned(),
        initiated_ms: ctx.state.now_millis(),
        attrs,
    };
    ctx.state.store.create_upload(bucket, meta)?;
    let mut x = Xml::new();
    x.open_root("InitiateMultipartUploadResult", ns(ctx));
    x.leaf("Bucket", bucket);
    x.leaf("Key", enc(ctx, key));
    x.leaf("UploadId", &upload_id);
    if ctx.req.url_encoding() {
        x.leaf("EncodingType", "url");
    }
    x.close("InitiateMultipartUploadResult");
    Ok(Reply::ok().xml(x.finish()))
}

/// `partNumber` and `uploadId` of a part request.
pub fn part_target(ctx: &Ctx<'_>) -> Result<(u32, String), ApiError> {
    let upload_id = ctx
        .req
        .q("uploadId")
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::invalid_argument("uploadId is required with partNumber"))?;
    let raw = ctx.req.q("partNumber").unwrap_or("");
    let number = raw
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            ApiError::invalid_argument(format!(
                "partNumber '{raw}' is invalid: use 1 to {MAX_PART_NUMBER}"
            ))
            .with("ArgumentName", "partNumber")
            .with("ArgumentValue", raw)
        })?;
    Ok((number, upload_id.to_owned()))
}

pub async fn upload_part(ctx: &Ctx<'_>, payload: Payload) -> Result<Response<Body>, ApiError> {
    let (bucket, key) = (ctx.bucket(), ctx.key());
    let (number, upload_id) = part_target(ctx)?;
    ctx.state.store.upload(bucket, key, &upload_id)?;
    let md5 = attrs::content_md5(ctx.req)?;
    check_declared_length(ctx, MAX_PART_BYTES)?;
    let written = ctx
        .state
        .store
        .write_payload(payload, MAX_PART_BYTES)
        .await?;
    attrs::check_md5(md5, &written.md5)?;
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
    let reply = Reply::ok()
        .header("etag", quoted_etag(ctx.req.dialect, &part.meta.etag))
        .header("x-oss-hash-crc64ecma", written.crc64.to_string())
        .header("content-md5", base64_md5(&written.md5));
    ctx.state.store.put_part(bucket, key, &upload_id, part)?;
    Ok(reply.empty())
}

fn base64_md5(md5: &[u8; 16]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(md5)
}

#[derive(Deserialize, Default)]
struct CompleteBody {
    #[serde(rename = "Part", default)]
    parts: Vec<CompletePart>,
}

#[derive(Deserialize)]
struct CompletePart {
    #[serde(rename = "PartNumber")]
    number: u32,
    #[serde(rename = "ETag")]
    etag: String,
}

fn invalid_part(number: u32, why: &str) -> ApiError {
    ApiError::new(
        400,
        "InvalidPart",
        format!("One or more of the specified parts could not be found or the specified entity tag might not have matched the part's entity tag: part {number} {why}."),
    )
    .with("PartNumber", number.to_string())
}

/// The parts a complete request names, checked against the upload.
fn chosen_parts<'u>(
    upload: &'u Upload,
    list: Option<&[CompletePart]>,
) -> Result<Vec<&'u Part>, ApiError> {
    let Some(list) = list else {
        // x-oss-complete-all: every uploaded part, in order.
        if upload.parts.is_empty() {
            return Err(invalid_part(0, "— the upload has no parts"));
        }
        return Ok(upload.parts.values().collect());
    };
    if list.is_empty() {
        return Err(ApiError::malformed_xml("the part list is empty"));
    }
    let mut chosen = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        if i > 0 && p.number <= list[i - 1].number {
            return Err(ApiError::new(
                400,
                "InvalidPartOrder",
                "The list of parts was not in ascending order. The parts list must be specified in order by part number.",
            )
            .with("PartNumber", p.number.to_string()));
        }
        let part = upload
            .parts
            .get(&p.number)
            .ok_or_else(|| invalid_part(p.number, "was not uploaded"))?;
        let given = p.etag.trim().trim_matches('"');
        if !given.eq_ignore_ascii_case(&part.meta.etag) {
            return Err(invalid_part(
                p.number,
                &format!("has ETag {} but the list says {given}", part.meta.etag),
            ));
        }
        chosen.push(part);
    }
    Ok(chosen)
}

/// Builds the object from the chosen parts, last modified at `now_ms`.
fn assemble(
    upload: &Upload,
    list: Option<&[CompletePart]>,
    now_ms: i64,
) -> Result<Object, ApiError> {
    let parts = chosen_parts(upload, list)?;
    let last = parts.len() - 1;
    for (i, p) in parts.iter().enumerate() {
        if i < last && p.meta.size < MIN_PART_BYTES {
            return Err(ApiError::new(
                400,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed object size.",
            )
            .with("PartNumber", p.meta.number.to_string())
            .with("PartSize", p.meta.size.to_string())
            .with("MinSizeAllowed", MIN_PART_BYTES.to_string()));
        }
    }
    let mut md5s = Md5::new();
    let mut crc: Option<u64> = Some(0);
    for p in &parts {
        md5s.update(hex::decode(&p.meta.etag).unwrap_or_default());
        crc = match (crc, p.meta.crc64) {
            (Some(acc), Some(c)) => Some(ferry::crc64::combine(acc, c, p.meta.size)),
            _ => None,
        };
    }
    let blob = crate::store::blob::Blob::concat(parts.iter().map(|p| &p.blob));
    let meta = ObjectMeta {
        key: upload.meta.key.clone(),
        size: blob.len(),
        etag: format!("{}-{}", hex::encode_upper(md5s.finalize()), parts.len()),
        content_md5: None,
        crc64: crc,
        last_modified_ms: now_ms,
        object_type: ObjectType::Multipart,
        attrs: upload.meta.attrs.clone(),
        restore: None,
    };
    Ok(Object { meta, blob })
}

pub async fn complete(ctx: &Ctx<'_>, payload: Payload) -> Result<Response<Body>, ApiError> {
    let (bucket, key) = (ctx.bucket(), ctx.key());
    let upload_id = ctx.req.q("uploadId").unwrap_or("").to_owned();
    ctx.state.store.upload(bucket, key, &upload_id)?;
    let body = payload.read_all(4 << 20).await?;
    if let Some(md5) = attrs::content_md5(ctx.req)? {
        attrs::check_md5(Some(md5), &Md5::digest(&body).into())?;
    }
    let complete_all = ctx
        .req
        .h("x-oss-complete-all")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("yes"));
    let empty = body.iter().all(|b| b.is_ascii_whitespace());
    let list = match (complete_all, empty) {
        (true, true) => None,
        (true, false) => {
            return Err(ApiError::invalid_argument(
                "With x-oss-complete-all: yes the request must not carry a part list",
            ));
        }
        (false, _) => Some(crate::xml::parse::<CompleteBody>(&body)?.parts),
    };
    let forbid = attrs::forbid_overwrite(ctx.req);
    let obj = ctx
        .state
        .store
        .complete_upload(bucket, key, &upload_id, forbid, |u| {
            assemble(u, list.as_deref(), ctx.state.now_millis())
        })?;
    let mut x = Xml::new();
    x.open_root("CompleteMultipartUploadResult", ns(ctx));
    if ctx.req.url_encoding() {
        x.leaf("EncodingType", "url");
    }
    let scheme_host = format!("http://{}", ctx.req.host);
    x.leaf(
        "Location",
        format!(
            "{scheme_host}/{bucket}/{}",
            ferry::oss::sign::uri_encode_path(key)
        ),
    );
    x.leaf("Bucket", bucket);
    x.leaf("Key", enc(ctx, key));
    x.leaf("ETag", quoted_etag(ctx.req.dialect, &obj.meta.etag));
    x.close("CompleteMultipartUploadResult");
    Ok(Reply::ok()
        .opt_header(
            "x-oss-hash-crc64ecma",
            obj.meta.crc64.map(|c| c.to_string()),
        )
        .header("etag", quoted_etag(ctx.req.dialect, &obj.meta.etag))
        .xml(x.finish()))
}

pub fn abort(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let upload_id = ctx.req.q("uploadId").unwrap_or("");
    ctx.state
        .store
        .abort_upload(ctx.bucket(), ctx.key(), upload_id)?;
    Ok(Reply::new(204).empty())
}

pub fn list_parts(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let (bucket, key) = (ctx.bucket(), ctx.key());
    let upload_id = ctx.req.q("uploadId").unwrap_or("");
    let upload = ctx.state.store.upload(bucket, key, upload_id)?;
    let max = max_keys(ctx, "max-parts", 1000)?;
    let marker: u32 = match ctx.req.q("part-number-marker") {
        Some(m) if !m.is_empty() => m.parse().map_err(|_| {
            ApiError::invalid_argument(format!("part-number-marker '{m}' is not a number"))
        })?,
        _ => 0,
    };
    let after: Vec<&Part> = upload
        .parts
        .range(marker.saturating_add(1)..)
        .map(|(_, p)| p)
        .collect();
    let shown = &after[..after.len().min(max)];
    let truncated = after.len() > shown.len();
    let dialect = ctx.req.dialect;
    let mut x = Xml::new();
    x.open_root("ListPartsResult", ns(ctx));
    x.leaf("Bucket", bucket);
    x.leaf("Key", enc(ctx, key));
    x.leaf("UploadId", upload_id);
    if ctx.req.url_encoding() {
        x.leaf("EncodingType", "url");
    }
    x.leaf("PartNumberMarker", marker.to_string());
    x.leaf(
        "NextPartNumberMarker",
        shown
            .last()
            .map(|p| p.meta.number)
            .unwrap_or(marker)
            .to_string(),
    );
    x.leaf("MaxParts", max.to_string());
    x.leaf("IsTruncated", truncated.to_string());
    x.leaf(
        "StorageClass",
        storage_class_name(dialect, upload.meta.attrs.storage_class),
    );
    if dialect == Dialect::S3 {
        owner_xml(&mut x);
    }
    for p in shown {
        x.open("Part");
        x.leaf("PartNumber", p.meta.number.to_string());
        x.leaf("LastModified", iso8601(p.meta.last_modified_ms));
        x.leaf("ETag", quoted_etag(dialect, &p.meta.etag));
        x.leaf("Size", p.meta.size.to_string());
        if dialect == Dialect::Oss {
            x.opt_leaf("HashCrc64ecma", p.meta.crc64.map(|c| c.to_string()));
        }
        x.close("Part");
    }
    x.close("ListPartsResult");
    Ok(Reply::ok().xml(x.finish()))
}

pub fn list_uploads(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let req = ctx.req;
    let prefix = req.q("prefix").unwrap_or("");
    let delimiter = req.q("delimiter").unwrap_or("");
    let key_marker = req.q("key-marker").unwrap_or("");
    let id_marker = req.q("upload-id-marker").unwrap_or("");
    let max = max_keys(ctx, "max-uploads", 1000)?;
    let mut uploads: Vec<UploadMeta> = ctx.state.store.read(ctx.bucket(), |b| {
        b.uploads.values().map(|u| u.meta.clone()).collect()
    })?;
    uploads.sort_by(|a, b| {
        (&a.key, a.initiated_ms, &a.upload_id).cmp(&(&b.key, b.initiated_ms, &b.upload_id))
    });
    let after_marker = |u: &UploadMeta| {
        key_marker.is_empty()
            || u.key.as_str() > key_marker
            || (u.key == key_marker && !id_marker.is_empty() && u.upload_id.as_str() > id_marker)
    };
    let mut shown: Vec<UploadMeta> = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    let mut truncated = false;
    let mut last: (String, String) = (String::new(), String::new());
    for u in uploads
        .into_iter()
        .filter(|u| u.key.starts_with(prefix) && after_marker(u))
    {
        let cp = (!delimiter.is_empty())
            .then(|| {
                u.key[prefix.len()..]
                    .find(delimiter)
                    .map(|i| u.key[..prefix.len() + i + delimiter.len()].to_owned())
            })
            .flatten();
        if cp.as_ref().is_some_and(|c| prefixes.contains(c)) {
            continue;
        }
        if shown.len() + prefixes.len() >= max {
            truncated = true;
            break;
        }
        match cp {
            Some(c) => {
                last = (c.clone(), String::new());
                prefixes.push(c);
            }
            None => {
                last = (u.key.clone(), u.upload_id.clone());
                shown.push(u);
            }
        }
    }
    let mut x = Xml::new();
    x.open_root("ListMultipartUploadsResult", ns(ctx));
    x.leaf("Bucket", ctx.bucket());
    if req.url_encoding() {
        x.leaf("EncodingType", "url");
    }
    x.leaf("KeyMarker", enc(ctx, key_marker));
    x.leaf("UploadIdMarker", id_marker);
    x.leaf("NextKeyMarker", enc(ctx, &last.0));
    x.leaf("NextUploadIdMarker", &last.1);
    x.leaf("Delimiter", enc(ctx, delimiter));
    x.leaf("Prefix", enc(ctx, prefix));
    x.leaf("MaxUploads", max.to_string());
    x.leaf("IsTruncated", truncated.to_string());
    for u in &shown {
        x.open("Upload");
        x.leaf("Key", enc(ctx, &u.key));
        x.leaf("UploadId", &u.upload_id);
        x.leaf(
            "StorageClass",
            storage_class_name(req.dialect, u.attrs.storage_class),
        );
        x.leaf("Initiated", iso8601(u.initiated_ms));
        x.close("Upload");
    }
    for p in &prefixes {
        x.open("CommonPrefixes");
        x.leaf("Prefix", enc(ctx, p));
        x.close("CommonPrefixes");
    }
    x.close("ListMultipartUploadsResult");
    Ok(Reply::ok().xml(x.finish()))
}
