//! The S3 adapter of the [`Source`] port: Amazon S3 and S3-compatible stores, through aws-sdk-s3.
//!
//! [`S3SourceConfig`] is the serde shape a job spec embeds (bucket, region, endpoint, credentials,
//! optional assume-role; in `config.rs` with its checks); [`S3Source::new`] checks it and builds
//! one SDK client ([`credentials`] re-reads a key pair S3 refuses; `fast.rs` is `open`'s plain
//! HTTP path). The adapter maps
//! the port calls onto ListObjectsV2, HeadObject (+ GetObjectTagging), GetObject (`get`, and
//! `open`: one GET described by its own headers, + GetObjectTagging only for tagged objects) and
//! RestoreObject, and classifies every SDK failure into a [`SourceErrorKind`] so the engine knows
//! whether to retry, restore, re-plan or give up.
//!
//! One file per concern: `config.rs` (settings), `list.rs`, `head.rs`, `get.rs`, `restore.rs`,
//! `errors.rs` (every SDK failure by the one policy in [`crate::aws`]), [`credentials`] and
//! `fast.rs`; this file holds the client, the port and the small conversions they share.
//!
//! Things worth knowing before changing this adapter:
//! * Listings ask for `encoding-type=url` so keys with characters XML cannot carry still list; the
//!   adapter decodes them (form-style, as S3 encodes a space as `+` and a `+` as `%2B`).
//! * HEAD runs with checksum mode on and reports only *full-object* checksums. Multipart objects
//!   may carry COMPOSITE checksums (`…-N`), which say nothing about the whole byte stream.
//! * Whole-object GETs let the SDK validate the body against a full-object checksum as it streams;
//!   ranged GETs do not (the store's checksum covers the object, not the range), and ferry checks
//!   ranges itself.
//! * The SDK's standard retry stays on (`max_attempts`); what surfaces here has already been
//!   retried, and its kind tells the engine whether retrying later could help.
//! * `open` is the hot path of a migration of small objects, and the SDK's own per-request CPU
//!   cost dominated it; once it has learned the SDK's address for the bucket, `open` sends the
//!   same signed GET through a plain HTTP client (`fast`) and falls back to the SDK for
//!   anything but a clean 200. HEAD, ranged GETs, listings and everything else use the SDK.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_s3::config::{
    ConfigBag, Credentials, Intercept, Region, RequestChecksumCalculation,
    ResponseChecksumValidation, RuntimeComponents, SharedCredentialsProvider,
};
use aws_sdk_s3::error::{BoxError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::DateTime as AwsDateTime;
use aws_sdk_s3::types::{
    ArchiveStatus, ChecksumMode, ChecksumType, EncodingType, GlacierJobParameters, Object,
    OptionalObjectAttributes, RestoreRequest, ServerSideEncryption, Tier,
};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use super::{
    ArchiveState, ByteStream, Fut, GetRequest, ListPage, ListRequest, ObjectHead, ObjectInfo,
    Opened, RestoreOutcome, RestoreTier, Source, SourceChecksums, SourceError, SourceErrorKind,
    UnnamableObject,
};

/// The object headers HeadObject and GetObject both return, as text borrowed from either SDK
/// response or from a raw HTTP response ([`fast`]), so one function describes an object
/// whichever call read it.
#[derive(Default)]
struct ObjectHeaders<'o> {
    content_length: Option<i64>,
    e_tag: Option<&'o str>,
    last_modified: Option<DateTime<Utc>>,
    version_id: Option<&'o str>,
    storage_class: Option<&'o str>,
    restore: Option<&'o str>,
    /// An INTELLIGENT_TIERING object in an archive tier (HEAD's `x-amz-archive-status`).
    tiered_archive: bool,
    content_type: Option<&'o str>,
    content_encoding: Option<&'o str>,
    content_disposition: Option<&'o str>,
    content_language: Option<&'o str>,
    cache_control: Option<&'o str>,
    expires: Option<&'o str>,
    /// User metadata, names without `x-amz-meta-`.
    metadata: Vec<(String, String)>,
    sse_customer_algorithm: Option<&'o str>,
    server_side_encryption: Option<&'o str>,
    parts_count: Option<i32>,
    checksum_crc64_nvme: Option<&'o str>,
    checksum_crc32_c: Option<&'o str>,
    checksum_type: Option<&'o str>,
}

/// [`ObjectHeaders`] of a HeadObject or GetObject output (the SDK gives the two outputs the
/// same accessors but no common trait).
macro_rules! object_headers {
    ($out:expr) => {
        ObjectHeaders {
            content_length: $out.content_length(),
            e_tag: $out.e_tag(),
            last_modified: $out.last_modified().and_then(to_chrono),
            version_id: $out.version_id(),
            storage_class: $out.storage_class().map(|c| c.as_str()),
            restore: $out.restore(),
            tiered_archive: false,
            content_type: $out.content_type(),
            content_encoding: $out.content_encoding(),
            content_disposition: $out.content_disposition(),
            content_language: $out.content_language(),
            cache_control: $out.cache_control(),
            expires: $out.expires_string(),
            metadata: $out
                .metadata()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            sse_customer_algorithm: $out.sse_customer_algorithm(),
            server_side_encryption: $out.server_side_encryption().map(|s| s.as_str()),
            parts_count: $out.parts_count(),
            checksum_crc64_nvme: $out.checksum_crc64_nvme(),
            checksum_crc32_c: $out.checksum_crc32_c(),
            checksum_type: $out.checksum_type().map(|t| t.as_str()),
        }
    };
}

mod config;
pub mod credentials;
mod errors;
mod fast;
mod get;
mod head;
mod list;
mod restore;

use self::{head::*, list::*};

pub use config::{AssumeRole, S3ConfigError, S3Credentials, S3SourceConfig};

/// An S3 bucket (Amazon or S3-compatible) as a ferry [`Source`].
#[derive(Clone)]
pub struct S3Source {
    client: Client,
    bucket: String,
    description: String,
    fetch_tags: bool,
    list_restore_status: bool,
    /// `RequestPayer=requester` on every request (a requester-pays bucket).
    request_payer: Option<aws_sdk_s3::types::RequestPayer>,
    /// The lean GET behind [`Source::open`]; shared by clones, which share the SDK client too.
    fast: Arc<fast::FastGet>,
    /// Credentials to read again when S3 refuses them; `None` for the SDK's own chains.
    refreshing: Option<credentials::Refreshing>,
}

impl fmt::Debug for S3Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Source")
            .field("source", &self.description)
            .finish_non_exhaustive()
    }
}

impl S3Source {
    /// Checks `config` and builds the SDK client. Makes no request yet, except that the default
    /// credential / region chain may look at the environment.
    pub async fn new(config: S3SourceConfig) -> Result<Self, S3ConfigError> {
        config.validate()?;
        let base = base_sdk_config(&config).await;
        let Some(region) = base.region().map(|r| r.to_string()) else {
            return Err(S3ConfigError::new(
                "region",
                "<unset>",
                "is not set and the environment names none",
                "set `region` (for example `us-east-1`) or AWS_REGION",
            ));
        };
        let mut builder = aws_sdk_s3::config::Builder::from(&base)
            .force_path_style(config.path_style)
            // Validation only where ferry asks for it (checksum mode on); see `get`.
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &config.endpoint {
            // Non-AWS stores often reject the aws-chunked checksum trailers the SDK would add.
            builder = builder
                .endpoint_url(endpoint)
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
        }
        // The credentials the client signs with, for the fast GET to sign with the same.
        let mut credentials = base.credentials_provider();
        if let Some(role) = &config.assume_role {
            let provider = assume_role_provider(role, &base).await;
            builder = builder.credentials_provider(provider.clone());
            credentials = Some(provider);
        }
        let refreshing = match &config.credentials {
            S3Credentials::Refreshing(r) => Some(r.clone()),
            _ => None,
        };
        if refreshing.is_some() {
            // Asked on every request: it answers from what it holds, and reads the credentials
            // again as soon as S3 refused them (the SDK's cache would keep them to expiry).
            builder = builder.identity_cache(aws_sdk_s3::config::IdentityCache::no_cache());
        }
        let sdk_config = builder.build();
        // The lean GET does not send RequestPayer: reads of a requester-pays bucket go through
        // the SDK.
        let fast = fast::FastGet::new(credentials, !config.request_payer);
        Ok(S3Source {
            client: Client::from_conf(sdk_config),
            fast: Arc::new(fast),
            description: describe(&config, &region),
            bucket: config.bucket,
            fetch_tags: config.fetch_tags,
            list_restore_status: config.list_restore_status,
            request_payer: config
                .request_payer
                .then_some(aws_sdk_s3::types::RequestPayer::Requester),
            refreshing,
        })
    }

    /// The SDK client, for callers that need an S3 call the port does not offer.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The source bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Whether [`Source::open`] currently reads with the lean GET instead of the SDK (for
    /// diagnostics and tests: it turns on after the first SDK read it learned from).
    pub fn reads_fast(&self) -> bool {
        self.fast.is_on()
    }
}

/// The shared SDK config: region, credentials and retry, but no endpoint (STS must not use it).
async fn base_sdk_config(config: &S3SourceConfig) -> aws_config::SdkConfig {
    let retry = RetryConfig::standard().with_max_attempts(config.max_attempts);
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry);
    let region = config
        .region
        .clone()
        .or_else(|| config.endpoint.as_ref().map(|_| "us-east-1".to_owned()));
    if let Some(region) = region {
        loader = loader.region(Region::new(region));
    }
    if let S3Credentials::Static {
        access_key_id,
        secret_access_key,
        session_token,
    } = &config.credentials
    {
        let credentials = Credentials::new(
            access_key_id,
            secret_access_key.expose(),
            session_token.as_ref().map(|t| t.expose().to_owned()),
            None,
            "ferry-static",
        );
        loader = loader.credentials_provider(credentials);
    }
    if let S3Credentials::Refreshing(refreshing) = &config.credentials {
        loader = loader.credentials_provider(refreshing.clone());
    }
    loader.load().await
}

async fn assume_role_provider(
    role: &AssumeRole,
    base: &aws_config::SdkConfig,
) -> SharedCredentialsProvider {
    let mut sts = base.to_builder();
    if let Some(endpoint) = &role.sts_endpoint {
        sts.set_endpoint_url(Some(endpoint.clone()));
    }
    let mut builder = AssumeRoleProvider::builder(role.role_arn.clone())
        .session_name(
            role.session_name
                .clone()
                .unwrap_or_else(|| "ferry".to_owned()),
        )
        .configure(&sts.build());
    if let Some(id) = &role.external_id {
        builder = builder.external_id(id.clone());
    }
    SharedCredentialsProvider::new(builder.build().await)
}

fn describe(config: &S3SourceConfig, region: &str) -> String {
    let prefix = config.prefix.as_deref().unwrap_or("");
    let place = match &config.endpoint {
        Some(endpoint) => endpoint.clone(),
        None => format!("AWS {region}"),
    };
    format!("s3://{}/{} ({place})", config.bucket, prefix)
}

impl Source for S3Source {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn list<'a>(&'a self, req: &'a ListRequest) -> Fut<'a, ListPage> {
        Box::pin(self.list_page(req))
    }

    fn head<'a>(&'a self, key: &'a str) -> Fut<'a, ObjectHead> {
        Box::pin(self.head_object(key))
    }

    fn get<'a>(&'a self, req: GetRequest<'a>) -> Fut<'a, ByteStream> {
        Box::pin(self.get_object(req))
    }

    fn open<'a>(&'a self, key: &'a str) -> Fut<'a, Opened> {
        Box::pin(self.open_object(key))
    }

    fn restore<'a>(
        &'a self,
        key: &'a str,
        days: u32,
        tier: RestoreTier,
    ) -> Fut<'a, RestoreOutcome> {
        Box::pin(self.restore_object(key, days, tier))
    }
}

// ---------------------------------------------------------------------------------------------
// small conversions

/// aws-sdk-s3 will not build a request for an empty or whitespace-only key (S3 itself allows
/// them); say so plainly instead of surfacing the SDK's "key was missing".
fn check_key(key: &str, resource: &str) -> Result<(), SourceError> {
    if !key.trim().is_empty() {
        return Ok(());
    }
    Err(SourceError::new(
        SourceErrorKind::Permanent,
        resource,
        format!("key {key:?} is empty or only whitespace, which aws-sdk-s3 cannot address"),
    ))
}

fn unquote(etag: &str) -> String {
    etag.trim_matches('"').to_owned()
}

fn quote(etag: &str) -> String {
    if etag.starts_with('"') {
        etag.to_owned()
    } else {
        format!("\"{etag}\"")
    }
}

fn to_chrono(t: &AwsDateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::get::check_content_range;
    use super::*;

    #[test]
    fn restore_header_states() {
        let ongoing = r#"ongoing-request="true""#;
        let done = r#"ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT""#;
        assert_eq!(restore_in_progress(ongoing), Some(true));
        assert_eq!(restore_in_progress(done), Some(false));
        assert_eq!(
            quoted_field(done, "expiry-date"),
            Some("Fri, 21 Dec 2012 00:00:00 GMT")
        );
        assert_eq!(
            archive_state("GLACIER", false, Some(true), false),
            ArchiveState::Restoring
        );
        assert_eq!(
            archive_state("GLACIER", false, Some(false), true),
            ArchiveState::Restored
        );
        assert_eq!(
            archive_state("DEEP_ARCHIVE", false, None, false),
            ArchiveState::Archived
        );
        assert_eq!(
            archive_state("GLACIER_IR", false, None, false),
            ArchiveState::NotArchived
        );
        assert_eq!(
            archive_state("INTELLIGENT_TIERING", true, None, false),
            ArchiveState::Archived
        );
    }

    #[test]
    fn md5_only_from_single_part_etags() {
        let md5 = md5_from_etag("\"9e107d9d372bb6826bd81d3542a419d6\"").unwrap();
        assert_eq!(hex::encode(md5), "9e107d9d372bb6826bd81d3542a419d6");
        assert_eq!(
            md5_from_etag("\"9e107d9d372bb6826bd81d3542a419d6-2\""),
            None
        );
        assert_eq!(md5_from_etag("9e107d9d372bb6826bd81d3542a419zz"), None);
    }

    #[test]
    fn composite_checksums_are_ignored() {
        // CRC32C of "123456789" is 0xE3069283.
        let full = base64::engine::general_purpose::STANDARD.encode(0xE306_9283u32.to_be_bytes());
        let got = |v: &str, t: Option<ChecksumType>, untyped_full: bool| {
            full_object_checksum::<4>(Some(v), t.as_ref(), untyped_full).map(u32::from_be_bytes)
        };
        assert_eq!(
            got(&full, Some(ChecksumType::FullObject), false),
            Some(0xE306_9283)
        );
        assert_eq!(got(&full, None, true), Some(0xE306_9283));
        assert_eq!(
            got(&full, None, false),
            None,
            "untyped value of a multipart object"
        );
        assert_eq!(got(&full, Some(ChecksumType::Composite), true), None);
        assert_eq!(got(&format!("{full}-3"), None, true), None);
        assert_eq!(
            got(&format!("{full}-3"), Some(ChecksumType::FullObject), true),
            None
        );
        // A 4-byte value under the 8-byte CRC64NVME name is not a CRC64NVME.
        assert_eq!(full_object_checksum::<8>(Some(&full), None, true), None);
    }

    #[test]
    fn listed_keys_decode_form_style() {
        assert_eq!(
            decode_listed("a+b%2Bc%25d%3F", true, "b").unwrap(),
            "a b+c%d?"
        );
        assert_eq!(decode_listed("a+b", false, "b").unwrap(), "a+b");
        assert!(decode_listed("%FF", true, "b").is_err());
    }

    #[test]
    fn content_range_must_match_the_request() {
        assert!(check_content_range(&(10..20), Some("bytes 10-19/100"), Some(10), "r").is_ok());
        let short =
            check_content_range(&(10..20), Some("bytes 10-14/15"), Some(5), "r").unwrap_err();
        assert_eq!(short.kind, SourceErrorKind::Changed);
        let ignored = check_content_range(&(10..20), None, Some(100), "r").unwrap_err();
        assert_eq!(ignored.kind, SourceErrorKind::Permanent);
        assert!(check_content_range(&(0..100), None, Some(100), "r").is_ok());
    }
}
