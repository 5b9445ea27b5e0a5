//! PutObject, GetObject, HeadObject, DeleteObject and DeleteMultipleObjects.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::Response;
use serde::Deserialize;

use super::Ctx;
use super::attrs::{self, RangeSpec};
use super::list::url_encode;
use crate::body::{self, Body, Payload};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::request::Dialect;
use crate::store::blob::Written;
use crate::store::model::{ObjectAttrs, ObjectMeta, ObjectType};
use crate::store::{Object, entity_too_large, file_already_exists};
use crate::xml::{S3_NAMESPACE, Xml};

/// PutObject takes at most 5 GB.
pub const MAX_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// Fails early when Content-Length already says the body is too large.
pub fn check_declared_length(ctx: &Ctx<'_>, max: u64) -> Result<(), ApiError> {
    let decoded = match ctx.req.dialect {
        Dialect::S3 => ctx.req.h("x-amz-decoded-content-length"),
        Dialect::Oss => None,
    };
    let declared = decoded
        .or_else(|| ctx.req.h("content-length"))
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > max => Err(entity_too_large(max)),
        _ => Ok(()),
    }
}

pub async fn put(ctx: &Ctx<'_>, payload: Payload) -> Result<Response<Body>, ApiError> {
    let (bucket, key) = (ctx.bucket(), ctx.key());
    attrs::validate_key(key)?;
    let info = ctx.state.store.bucket(bucket)?;
    let attrs = attrs::attrs_from_request(ctx.req, info.storage_class)?;
    let md5 = attrs::content_md5(ctx.req)?;
    let forbid = attrs::forbid_overwrite(ctx.req);
    if forbid && ctx.state.store.object(bucket, key).is_ok() {
        return Err(precondition_or_exists(ctx));
    }
    check_declared_length(ctx, MAX_PUT_BYTES)?;
    let written = ctx
        .state
        .store
        .write_payload(payload, MAX_PUT_BYTES)
        .await?;
    attrs::check_md5(md5, &written.md5)?;
    let meta = stored_meta(key, &written, ctx.state.now_millis(), attrs);
    let reply = Reply::ok()
        .header("etag", attrs::quoted_etag(ctx.req.dialect, &meta.etag))
        .header("x-oss-hash-crc64ecma", written.crc64.to_string())
        .header("content-md5", BASE64.encode(written.md5));
    ctx.state
        .store
        .put_object(
            bucket,
            Object {
                meta,
                blob: written.blob,
            },
            forbid,
        )
        .map_err(|e| {
            if e.code == "FileAlreadyExists" {
                precondition_or_exists(ctx)
            } else {
                e
            }
        })?;
    Ok(reply.empty())
}

/// The metadata of a single-part object whose bytes were just `written`.
pub fn stored_meta(key: &str, written: &Written, now_ms: i64, attrs: ObjectAttrs) -> ObjectMeta {
    ObjectMeta {
        key: key.to_owned(),
        size: written.blob.len(),
        etag: written.etag(),
        content_md5: Some(BASE64.encode(written.md5)),
        crc64: Some(written.crc64),
        last_modified_ms: now_ms,
        object_type: ObjectType::Normal,
        attrs,
        restore: None,
    }
}

/// OSS says FileAlreadyExists; S3's conditional write says PreconditionFailed.
fn precondition_or_exists(ctx: &Ctx<'_>) -> ApiError {
    match ctx.req.dialect {
        Dialect::Oss => file_already_exists(),
        Dialect::S3 => ApiError::new(
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
        )
        .with("Condition", "If-None-Match"),
    }
}

pub fn invalid_object_state(meta: &ObjectMeta) -> ApiError {
    ApiError::new(
        403,
        "InvalidObjectState",
        format!(
            "The operation is not valid for the object's state: it is {} and not restored; call RestoreObject and wait until x-oss-restore shows ongoing-request=\"false\".",
            meta.attrs.storage_class.oss_name()
        ),
    )
}

/// GetObject and HeadObject.
pub fn get(ctx: &Ctx<'_>, head: bool) -> Result<Response<Body>, ApiError> {
    let obj = ctx.state.store.object(ctx.bucket(), ctx.key())?;
    let meta = &obj.meta;
    let now = ctx.state.now_millis();
    attrs::check_conditions(ctx.req, meta, "")?;
    if !head && !meta.readable(now) {
        return Err(invalid_object_state(meta));
    }
    let mut reply = attrs::object_headers(Reply::ok(), ctx.req.dialect, meta, now);
    reply = response_overrides(reply, ctx);
    if head {
        return Ok(reply
            .header("content-length", meta.size.to_string())
            .body(body::empty()));
    }
    let standard = ctx.req.dialect == Dialect::S3
        || ctx
            .req
            .h("x-oss-range-behavior")
            .is_some_and(|v| v.eq_ignore_ascii_case("standard"));
    match attrs::resolve_range(ctx.req.h("range").as_deref(), meta.size, standard) {
        RangeSpec::Whole => Ok(reply
            .header("content-length", meta.size.to_string())
            .body(body::from_stream(obj.blob.stream(0, meta.size)))),
        RangeSpec::Part(start, end) => Ok(reply
            .status(206)
            .header(
                "content-range",
                format!("bytes {start}-{end}/{}", meta.size),
            )
            .header("content-length", (end - start + 1).to_string())
            .body(body::from_stream(obj.blob.stream(start, end + 1)))),
        RangeSpec::Unsatisfiable => Err(ApiError::new(
            416,
            "InvalidRange",
            "The requested range is not satisfiable",
        )
        .with("ActualObjectSize", meta.size.to_string())
        .header("content-range", format!("bytes */{}", meta.size))),
    }
}

/// `response-*` query parameters override the stored headers.
fn response_overrides(mut reply: Reply, ctx: &Ctx<'_>) -> Reply {
    for (param, header) in [
        ("response-content-type", "content-type"),
        ("response-content-language", "content-language"),
        ("response-expires", "expires"),
        ("response-cache-control", "cache-control"),
        ("response-content-disposition", "content-disposition"),
        ("response-content-encoding", "content-encoding"),
    ] {
        if let Some(v) = ctx.req.q(param) {
            reply = reply.header(header, v);
        }
    }
    reply
}

pub fn delete(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    ctx.state.store.delete_object(ctx.bucket(), ctx.key())?;
    Ok(Reply::new(204).empty())
}

#[derive(Deserialize)]
struct DeleteRequest {
    #[serde(rename = "Quiet", default)]
    quiet: Option<String>,
    #[serde(rename = "Object", default)]
    objects: Vec<DeleteEntry>,
}

#[derive(Deserialize)]
struct DeleteEntry {
    #[serde(rename = "Key")]
    key: String,
}

/// DeleteMultipleObjects (OSS) / DeleteObjects (S3): `POST /?delete`.
pub async fn delete_multiple(ctx: &Ctx<'_>, payload: Payload) -> Result<Response<Body>, ApiError> {
    let bucket = ctx.bucket();
    ctx.state.store.bucket(bucket)?;
    let body = payload.read_all(2 << 20).await?;
    if let Some(md5) = attrs::content_md5(ctx.req)? {
        use md5::{Digest, Md5};
        attrs::check_md5(Some(md5), &Md5::digest(&body).into())?;
    }
    let request: DeleteRequest = crate::xml::parse(&body)?;
    if request.objects.len() > 1000 {
        return Err(ApiError::malformed_xml(
            "at most 1000 objects can be deleted per request",
        ));
    }
    let quiet = request
        .quiet
        .is_some_and(|q| q.trim().eq_ignore_ascii_case("true"));
    let encode = ctx.req.url_encoding();
    let mut x = Xml::new();
    let ns = (ctx.req.dialect == Dialect::S3).then_some(S3_NAMESPACE);
    x.open_root("DeleteResult", ns);
    if encode {
        x.leaf("EncodingType", "url");
    }
    // Keys arrive raw; with encoding-type=url only the answer is URL-encoded (oss2 and the V2
    // SDK decode `Deleted/Key`).
    for entry in &request.objects {
        ctx.state.store.delete_object(bucket, &entry.key)?;
        if !quiet {
            let shown = if encode {
                url_encode(&entry.key)
            } else {
                entry.key.clone()
            };
            x.open("Deleted");
            x.leaf("Key", shown);
            x.close("Deleted");
        }
    }
    x.close("DeleteResult");
    Ok(Reply::ok().xml(x.finish()))
}
