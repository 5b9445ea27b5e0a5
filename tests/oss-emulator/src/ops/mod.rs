//! Operations: which one a request is ([`classify`]) and running it ([`execute`]).
//!
//! Classification follows OSS's rules (method + level + sub-resource); S3 requests map onto the
//! same operations (CreateMultipartUpload is InitiateMultipartUpload, and so on), so counters
//! and fault rules use one set of names. Anything else is `NotImplemented` with a message that
//! names the method and sub-resource.

pub mod attrs;
pub mod bucket;
pub mod copy;
pub mod list;
pub mod mirror;
pub mod multipart;
pub mod object;
pub mod restore;
pub mod tagging;
pub mod website;

use http::{Method, Response};

use crate::auth::Verified;
use crate::body::{Body, Payload};
use crate::error::ApiError;
use crate::request::RequestInfo;
use crate::state::State;

/// Every operation the emulator knows, by its OSS name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    ListBuckets,
    PutBucket,
    DeleteBucket,
    HeadBucket,
    GetBucketInfo,
    GetBucketLocation,
    GetBucketVersioning,
    PutBucketWebsite,
    GetBucketWebsite,
    DeleteBucketWebsite,
    ListObjects,
    ListObjectsV2,
    ListMultipartUploads,
    DeleteMultipleObjects,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    InitiateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    RestoreObject,
    PutObjectTagging,
    GetObjectTagging,
    DeleteObjectTagging,
    /// Not implemented here (answered with 501 NotImplemented).
    Unknown,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::ListBuckets => "ListBuckets",
            Op::PutBucket => "PutBucket",
            Op::DeleteBucket => "DeleteBucket",
            Op::HeadBucket => "HeadBucket",
            Op::GetBucketInfo => "GetBucketInfo",
            Op::GetBucketLocation => "GetBucketLocation",
            Op::GetBucketVersioning => "GetBucketVersioning",
            Op::PutBucketWebsite => "PutBucketWebsite",
            Op::GetBucketWebsite => "GetBucketWebsite",
            Op::DeleteBucketWebsite => "DeleteBucketWebsite",
            Op::ListObjects => "ListObjects",
            Op::ListObjectsV2 => "ListObjectsV2",
            Op::ListMultipartUploads => "ListMultipartUploads",
            Op::DeleteMultipleObjects => "DeleteMultipleObjects",
            Op::PutObject => "PutObject",
            Op::CopyObject => "CopyObject",
            Op::GetObject => "GetObject",
            Op::HeadObject => "HeadObject",
            Op::DeleteObject => "DeleteObject",
            Op::InitiateMultipartUpload => "InitiateMultipartUpload",
            Op::UploadPart => "UploadPart",
            Op::UploadPartCopy => "UploadPartCopy",
            Op::CompleteMultipartUpload => "CompleteMultipartUpload",
            Op::AbortMultipartUpload => "AbortMultipartUpload",
            Op::ListParts => "ListParts",
            Op::RestoreObject => "RestoreObject",
            Op::PutObjectTagging => "PutObjectTagging",
            Op::GetObjectTagging => "GetObjectTagging",
            Op::DeleteObjectTagging => "DeleteObjectTagging",
            Op::Unknown => "Unknown",
        }
    }
}

/// Query keys that never change which operation a request is.
const IGNORED_SUBRESOURCES: &[&str] = &[
    "security-token",
    "response-content-type",
    "response-content-language",
    "response-expires",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "continuation-token",
    "versionId",
    "x-oss-traffic-limit",
    "x-oss-request-payer",
    "objectMeta",
];

/// S3 sub-resources OSS's list lacks; requests carrying them are not implemented.
const S3_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "analytics",
    "attributes",
    "intelligent-tiering",
    "legal-hold",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "retention",
    "select",
    "torrent",
    "session",
];

/// Query keys that name an operation this emulator does not implement.
fn unsupported_subresources(req: &RequestInfo, handled: &[&str]) -> Vec<String> {
    req.query
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| ferry::oss::sign::is_v1_subresource(k) || S3_SUBRESOURCES.contains(k))
        .filter(|k| !IGNORED_SUBRESOURCES.contains(k) && !handled.contains(k))
        .map(str::to_owned)
        .collect()
}

/// Which operation a routed request is.
pub fn classify(req: &RequestInfo) -> Op {
    match (&req.bucket, &req.key) {
        (None, _) if req.method == Method::GET && unsupported_subresources(req, &[]).is_empty() => {
            Op::ListBuckets
        }
        (None, _) => Op::Unknown,
        (Some(_), None) => classify_bucket(req),
        (Some(_), Some(_)) => classify_object(req),
    }
}

fn classify_bucket(req: &RequestInfo) -> Op {
    let handled = [
        "website",
        "bucketInfo",
        "location",
        "uploads",
        "delete",
        "versioning",
    ];
    if !unsupported_subresources(req, &handled).is_empty() {
        return Op::Unknown;
    }
    let q = |k: &str| req.has_q(k);
    match req.method {
        Method::GET if q("website") => Op::GetBucketWebsite,
        Method::GET if q("bucketInfo") => Op::GetBucketInfo,
        Method::GET if q("location") => Op::GetBucketLocation,
        Method::GET if q("versioning") => Op::GetBucketVersioning,
        Method::GET if q("uploads") => Op::ListMultipartUploads,
        Method::GET if q("delete") => Op::Unknown,
        Method::GET if req.q("list-type") == Some("2") => Op::ListObjectsV2,
        Method::GET => Op::ListObjects,
        Method::PUT if q("website") => Op::PutBucketWebsite,
        Method::PUT if handled.iter().any(|h| q(h)) => Op::Unknown,
        Method::PUT => Op::PutBucket,
        Method::DELETE if q("website") => Op::DeleteBucketWebsite,
        Method::DELETE if handled.iter().any(|h| q(h)) => Op::Unknown,
        Method::DELETE => Op::DeleteBucket,
        Method::HEAD => Op::HeadBucket,
        Method::POST if q("delete") => Op::DeleteMultipleObjects,
        _ => Op::Unknown,
    }
}

fn classify_object(req: &RequestInfo) -> Op {
    let handled = ["uploads", "uploadId", "partNumber", "restore", "tagging"];
    if !unsupported_subresources(req, &handled).is_empty() {
        return Op::Unknown;
    }
    let q = |k: &str| req.has_q(k);
    if q("tagging") {
        return classify_tagging(req, &handled);
    }
    let copy = req.dh("copy-source").is_some();
    match req.method {
        Method::PUT if q("partNumber") || q("uploadId") => {
            if copy {
                Op::UploadPartCopy
            } else {
                Op::UploadPart
            }
        }
        Method::PUT if q("uploads") || q("restore") => Op::Unknown,
        Method::PUT if copy => Op::CopyObject,
        Method::PUT => Op::PutObject,
        Method::GET if q("uploadId") => Op::ListParts,
        Method::GET if q("uploads") || q("restore") || q("partNumber") => Op::Unknown,
        Method::GET => Op::GetObject,
        Method::HEAD => Op::HeadObject,
        Method::DELETE if q("uploadId") => Op::AbortMultipartUpload,
        Method::DELETE if q("uploads") || q("restore") || q("partNumber") => Op::Unknown,
        Method::DELETE => Op::DeleteObject,
        Method::POST if q("uploads") => Op::InitiateMultipartUpload,
        Method::POST if q("uploadId") => Op::CompleteMultipartUpload,
        Method::POST if q("restore") => Op::RestoreObject,
        _ => Op::Unknown,
    }
}

/// `?tagging` on an object: alone, it names one of the three tagging operations.
fn classify_tagging(req: &RequestInfo, handled: &[&str]) -> Op {
    if handled.iter().any(|h| *h != "tagging" && req.has_q(h)) {
        return Op::Unknown;
    }
    match req.method {
        Method::PUT => Op::PutObjectTagging,
        Method::GET => Op::GetObjectTagging,
        Method::DELETE => Op::DeleteObjectTagging,
        _ => Op::Unknown,
    }
}

/// Everything an operation needs.
pub struct Ctx<'a> {
    pub req: &'a RequestInfo,
    pub state: &'a State,
    pub verified: Verified,
    /// A listing fault that applies to this request.
    pub listing: Option<crate::faults::ListingQuirk>,
}

impl Ctx<'_> {
    pub fn bucket(&self) -> &str {
        self.req.bucket.as_deref().unwrap_or_default()
    }

    pub fn key(&self) -> &str {
        self.req.key.as_deref().unwrap_or_default()
    }
}

/// Runs an operation.
pub async fn execute(op: Op, ctx: &Ctx<'_>, payload: Payload) -> Result<Response<Body>, ApiError> {
    match op {
        Op::ListBuckets => bucket::list_buckets(ctx),
        Op::PutBucket => bucket::put_bucket(ctx, payload).await,
        Op::DeleteBucket => bucket::delete_bucket(ctx),
        Op::HeadBucket => bucket::head_bucket(ctx),
        Op::GetBucketInfo => bucket::get_bucket_info(ctx),
        Op::GetBucketLocation => bucket::get_bucket_location(ctx),
        Op::GetBucketVersioning => bucket::get_bucket_versioning(ctx),
        Op::PutBucketWebsite => website::put(ctx, payload).await,
        Op::GetBucketWebsite => website::get(ctx),
        Op::DeleteBucketWebsite => website::delete(ctx),
        Op::ListObjects => list::list_objects(ctx, false),
        Op::ListObjectsV2 => list::list_objects(ctx, true),
        Op::ListMultipartUploads => multipart::list_uploads(ctx),
        Op::DeleteMultipleObjects => object::delete_multiple(ctx, payload).await,
        Op::PutObject => object::put(ctx, payload).await,
        Op::CopyObject => copy::copy_object(ctx).await,
        Op::GetObject => mirror::get_object(ctx).await,
        Op::HeadObject => object::get(ctx, true),
        Op::DeleteObject => object::delete(ctx),
        Op::InitiateMultipartUpload => multipart::initiate(ctx),
        Op::UploadPart => multipart::upload_part(ctx, payload).await,
        Op::UploadPartCopy => copy::upload_part_copy(ctx).await,
        Op::CompleteMultipartUpload => multipart::complete(ctx, payload).await,
        Op::AbortMultipartUpload => multipart::abort(ctx),
        Op::ListParts => multipart::list_parts(ctx),
        Op::RestoreObject => restore::restore(ctx, payload).await,
        Op::PutObjectTagging => tagging::put(ctx, payload).await,
        Op::GetObjectTagging => tagging::get(ctx),
        Op::DeleteObjectTagging => tagging::delete(ctx),
        Op::Unknown => Err(not_implemented(ctx.req)),
    }
}

fn not_implemented(req: &RequestInfo) -> ApiError {
    let level = match (&req.bucket, &req.key) {
        (None, _) => "service",
        (Some(_), None) => "bucket",
        _ => "object",
    };
    let subs: Vec<&str> = req.query.iter().map(|(k, _)| k.as_str()).collect();
    let subs = if subs.is_empty() {
        "no query".to_owned()
    } else {
        format!("query '{}'", subs.join("&"))
    };
    ApiError::not_implemented(format!(
        "The OSS emulator does not implement {} on a {level} with {subs}; supported operations are listed in the oss-emulator crate documentation.",
        req.method
    ))
}
