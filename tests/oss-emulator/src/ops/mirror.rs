//! Mirroring-based back-to-origin: a GetObject for a key the bucket does not have, under a
//! `Mirror` routing rule of its website configuration, fetches the object from the rule's
//! origin, stores it and answers with it — as OSS does during a live cut-over.
//!
//! As OSS documents it: only GetObject triggers it (a HEAD of a missing key stays 404); the
//! stored copy's Last-Modified is the moment it was stored, not the origin's; the origin's
//! content headers are kept; an object written meanwhile is never replaced; an origin 404 is answered 404 `NoSuchKey` and anything else that
//! goes wrong 424 `MirrorFailed`, storing nothing. The emulator does not implement the rule's
//! header passing, MD5 check, redirects to follow or origin authentication.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::Response;

use super::Ctx;
use crate::body::{Body, Payload};
use crate::error::ApiError;
use crate::request::Dialect;
use crate::store::Object;
use crate::store::model::{ContentHeaders, ObjectAttrs};

/// OSS gives an origin 10 seconds.
const ORIGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The most the emulator fetches through a mirror (OSS streams larger objects; tests do not
/// need them).
const MAX_MIRRORED_BYTES: usize = 64 << 20;

/// GetObject, fetching a missing key through the bucket's Mirror rule when it has one.
pub async fn get_object(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    match super::object::get(ctx, false) {
        Err(e) if e.code == "NoSuchKey" && ctx.req.dialect == Dialect::Oss => {
            let Some(url) = origin_url(ctx) else {
                return Err(e);
            };
            fetch_and_store(ctx, &url).await?;
            super::object::get(ctx, false)
        }
        other => other,
    }
}

fn origin_url(ctx: &Ctx<'_>) -> Option<String> {
    let doc = ctx.state.store.bucket(ctx.bucket()).ok()?.website?;
    super::website::mirror_url(&doc, ctx.key())
}

async fn fetch_and_store(ctx: &Ctx<'_>, url: &str) -> Result<(), ApiError> {
    let failed = |why: String| {
        ApiError::new(
            424,
            "MirrorFailed",
            format!("Mirroring failed, please check your mirror configuration: {why}"),
        )
    };
    let response = client()
        .get(url)
        .send()
        .await
        .map_err(|e| failed(format!("the origin {url} could not be reached: {e}")))?;
    match response.status().as_u16() {
        200 => {}
        404 => return Err(ApiError::no_such_key(ctx.key())),
        status => return Err(failed(format!("the origin answered {status} for {url}"))),
    }
    let content = content_headers(response.headers());
    let body = response
        .bytes()
        .await
        .map_err(|e| failed(format!("Read body from mirror host failed: {e}")))?;
    if body.len() > MAX_MIRRORED_BYTES {
        return Err(failed(format!(
            "the emulator mirrors at most {MAX_MIRRORED_BYTES} bytes"
        )));
    }
    store(ctx, body, content).await
}

async fn store(ctx: &Ctx<'_>, body: Bytes, content: ContentHeaders) -> Result<(), ApiError> {
    let (bucket, key) = (ctx.bucket(), ctx.key());
    let info = ctx.state.store.bucket(bucket)?;
    let written = ctx
        .state
        .store
        .write_payload(Payload::from_bytes(body), u64::MAX)
        .await?;
    let attrs = ObjectAttrs {
        content,
        storage_class: info.storage_class,
        ..ObjectAttrs::default()
    };
    let meta = super::object::stored_meta(key, &written, ctx.state.now_millis(), attrs);
    let object = Object {
        meta,
        blob: written.blob,
    };
    // Create-only: an object written while the origin was read (a migration's copy, a second
    // reader's fetch) stands, and this reader is answered with it.
    match ctx.state.store.put_object(bucket, object, true) {
        Err(e) if e.code == "FileAlreadyExists" => Ok(()),
        other => other,
    }
}

fn content_headers(headers: &reqwest::header::HeaderMap) -> ContentHeaders {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    ContentHeaders {
        content_type: get("content-type"),
        cache_control: get("cache-control"),
        content_disposition: get("content-disposition"),
        content_encoding: get("content-encoding"),
        content_language: get("content-language"),
        expires: get("expires"),
    }
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(ORIGIN_TIMEOUT)
            .build()
            .expect("a plain HTTP client builds")
    })
}
