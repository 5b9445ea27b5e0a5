//! ferry's own OSS client.
//!
//! * [`OssClient`] / [`OssClientBuilder`] — configuration (endpoint, region, credentials,
//!   signature version, addressing, retries) and the request path: sign, send, classify, retry.
//! * [`ops`] — the operations, one method each on [`OssClient`], with their option and result
//!   types: objects, listing, multipart, copy, restore, buckets, website (mirroring).
//! * [`RequestBody`] / [`ObjectBody`] — upload and download bodies with CRC-64 on the fly.
//! * [`Error`] — the one error type; [`Error::is_retryable`] says whether trying again may help.
//! * [`sign`] — the signature algorithms (V4 by default, V1), pure functions.
//!
//! The protocol details (headers, error codes, limits) follow Alibaba Cloud's OSS API
//! documentation and the official OSS SDKs; how ferry uses the client is in
//! `docs/architecture.md` §7.

pub mod body;
pub mod client;
pub mod credentials;
pub mod endpoint;
pub mod error;
pub mod ops;
pub mod retry;
pub mod sign;
pub mod types;
mod xml;

pub use body::{BoxError, ObjectBody, RequestBody};
pub use client::{OssClient, OssClientBuilder};
pub use credentials::{Credentials, RefreshCredentials, RefreshFut};
pub use endpoint::{Addressing, Endpoint, location_of, region_id};
pub use error::{Error, ServiceError, TransportKind};
pub use ops::bucket::{BucketInfo, ListBucketsOptions, ListBucketsPage, PutBucketOptions};
pub use ops::copy::{CopyObjectOptions, CopyObjectOutput, MetadataDirective, TaggingDirective};
pub use ops::list::{ListObjectsOptions, ListObjectsPage, ObjectSummary};
pub use ops::multipart::{
    CompleteMultipartUploadOutput, CompleteOptions, CompleteParts, CompletedPart, ListPartsOptions,
    ListPartsPage, ListUploadsOptions, ListUploadsPage, PartInfo, UploadInfo,
    UploadPartCopyOptions, UploadPartCopyOutput, UploadPartOutput,
};
pub use ops::object::{GetObjectOptions, GetObjectOutput, PutObjectOutput};
pub use ops::restore::{RestoreOptions, RestoreOutcome, RestoreTier};
pub use ops::website::{
    ErrorDocument, IncludeHeader, IndexDocument, MirrorHeaderSet, MirrorHeaders, Redirect,
    RoutingCondition, RoutingRule, WebsiteConfiguration,
};
pub use retry::RetryConfig;
pub use sign::{SignatureVersion, Signer};
pub use types::{
    ByteRange, Conditions, ContentRange, CopySource, ObjectMeta, ObjectOptions, RestoreState,
    StorageClass,
};
