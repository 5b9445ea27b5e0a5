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
//! Things worth knowing before changing this file:
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
//!   same signed GET through a plain HTTP client ([`fast`]) and falls back to the SDK for
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

mod config;
pub mod credentials;
mod fast;

pub use config::{AssumeRole, S3ConfigError, S3Credentials, S3SourceConfig};

/// An S3 bucket (Amazon or S3-compatible) as a ferry [`Source`].
#[derive(Clone)]
pub struct S3Source {
    client: Client,
    bucket: String,
    description: String,
    fetch_tags: bool,
    list_restore_status: bool,
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
        let fast = fast::FastGet::new(credentials, true);
        Ok(S3Source {
            client: Client::from_conf(sdk_config),
            fast: Arc::new(fast),
            description: describe(&config, &region),
            bucket: config.bucket,
            fetch_tags: config.fetch_tags,
            list_restore_status: config.list_restore_status,
            refreshing,
        })
    }

    /// The SDK client, for callers that need an S3 call the port does not offer.
    pub fn client(&self) -> &Client {
        &self.client
    }

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
// list

impl S3Source {
    async fn list_page(&self, req: &ListRequest) -> Result<ListPage, SourceError> {
        let resource = format!("{}/{}", self.bucket, req.prefix);
        // 0 would ask for an empty page that still claims to be truncated: treat it as "default".
        let max_keys = if req.max_keys == 0 {
            1000
        } else {
            req.max_keys.min(1000)
        };
        let mut call = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&req.prefix)
            .encoding_type(EncodingType::Url)
            .max_keys(max_keys as i32)
            .set_delimiter(req.delimiter.clone())
            .set_start_after(req.start_after.clone())
            .set_continuation_token(req.continuation.clone());
        if self.list_restore_status {
            call = call.optional_object_attributes(OptionalObjectAttributes::RestoreStatus);
        }
        let out = call
            .send()
            .await
            .map_err(|e| self.classify("ListObjectsV2", &resource, e))?;
        let encoded = out.encoding_type() == Some(&EncodingType::Url);
        let decode = |raw: &str| decode_listed(raw, encoded, &resource);

        let (mut objects, mut unnamable) = (Vec::new(), Vec::new());
        for o in out.contents() {
            let raw = o.key().unwrap_or_default();
            match decode(raw) {
                Ok(key) => objects.push(object_info(key, o)),
                // One key that is not UTF-8 fails that object, not the page.
                Err(_) if encoded => {
                    let bytes: Vec<u8> =
                        percent_encoding::percent_decode_str(&raw.replace('+', " ")).collect();
                    let lossy = String::from_utf8_lossy(&bytes).into_owned();
                    unnamable.push(UnnamableObject {
                        listed: raw.to_owned(),
                        bytes,
                        info: object_info(lossy, o),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        let common_prefixes = out
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .map(decode)
            .collect::<Result<Vec<_>, SourceError>>()?;
        let next = match (out.is_truncated(), out.next_continuation_token()) {
            (Some(true), Some(token)) => Some(token.to_owned()),
            (Some(true), None) => {
                return Err(SourceError::new(
                    SourceErrorKind::Permanent,
                    resource,
                    "ListObjectsV2 said the listing is truncated but returned no continuation token",
                ));
            }
            _ => None,
        };
        Ok(ListPage {
            objects,
            common_prefixes,
            next,
            unnamable,
        })
    }
}

/// Decodes a key or prefix of a listing made with `encoding-type=url`. S3 encodes form-style
/// (a space may come back as `+`, a real `+` always as `%2B`), so `+` decodes to a space.
fn decode_listed(raw: &str, encoded: bool, resource: &str) -> Result<String, SourceError> {
    if !encoded {
        return Ok(raw.to_owned());
    }
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            SourceError::new(
                SourceErrorKind::Permanent,
                resource,
                format!("the store listed key {raw:?}, which does not decode to UTF-8"),
            )
        })
}

fn object_info(key: String, o: &Object) -> ObjectInfo {
    let storage_class = o
        .storage_class()
        .map_or("STANDARD", |c| c.as_str())
        .to_owned();
    let restore = o.restore_status();
    let archive = archive_state(
        &storage_class,
        false,
        restore.and_then(|r| r.is_restore_in_progress()),
        restore.and_then(|r| r.restore_expiry_date()).is_some(),
    );
    ObjectInfo {
        key,
        size: o.size().unwrap_or(0).max(0) as u64,
        etag: o.e_tag().map(unquote),
        last_modified: o.last_modified().and_then(to_chrono),
        storage_class: Some(storage_class),
        archive,
    }
}

/// Storage classes whose bytes cannot be read until restored. GLACIER_IR reads like STANDARD.
fn is_archive_class(storage_class: &str) -> bool {
    matches!(storage_class, "GLACIER" | "DEEP_ARCHIVE")
}

/// `in_progress` / `has_expiry` describe a restore (from `x-amz-restore` or the listing's
/// RestoreStatus); `tiered_archive` is an INTELLIGENT_TIERING object in an archive tier.
fn archive_state(
    storage_class: &str,
    tiered_archive: bool,
    in_progress: Option<bool>,
    has_expiry: bool,
) -> ArchiveState {
    match in_progress {
        Some(true) => ArchiveState::Restoring,
        Some(false) if has_expiry => ArchiveState::Restored,
        _ if is_archive_class(storage_class) || tiered_archive => ArchiveState::Archived,
        _ => ArchiveState::NotArchived,
    }
}

// ---------------------------------------------------------------------------------------------
// head

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

impl S3Source {
    async fn head_object(&self, key: &str) -> Result<ObjectHead, SourceError> {
        let resource = format!("{}/{}", self.bucket, key);
        check_key(key, &resource)?;
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| self.classify("HeadObject", &resource, e))?;
        let headers = ObjectHeaders {
            tiered_archive: matches!(
                out.archive_status(),
                Some(ArchiveStatus::ArchiveAccess | ArchiveStatus::DeepArchiveAccess)
            ),
            ..object_headers!(out)
        };
        let mut head = object_head(key, headers, "HeadObject", &resource)?;
        if self.fetch_tags {
            head.tags = self
                .tags_if_any(key, out.version_id(), head.archive, &resource)
                .await?;
        }
        Ok(head)
    }

    /// The object's tags, or none where the store cannot say: tagging calls refused on an
    /// archived object, or a store without object tagging.
    async fn tags_if_any(
        &self,
        key: &str,
        version_id: Option<&str>,
        archive: ArchiveState,
        resource: &str,
    ) -> Result<Vec<(String, String)>, SourceError> {
        match self.tags(key, version_id, resource).await {
            Ok(tags) => Ok(tags),
            // Some stores (moto) refuse tagging calls on archived objects. The object cannot
            // be copied before a restore anyway, and the engine HEADs it again after one.
            Err(e)
                if e.kind == SourceErrorKind::NeedsRestore
                    && archive != ArchiveState::NotArchived =>
            {
                Ok(Vec::new())
            }
            // Some S3-compatible stores have no object tagging at all: nothing to carry.
            Err(e)
                if e.kind == SourceErrorKind::Permanent && e.message.contains("NotImplemented") =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    async fn tags(
        &self,
        key: &str,
        version_id: Option<&str>,
        resource: &str,
    ) -> Result<Vec<(String, String)>, SourceError> {
        let out = self
            .client
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await
            .map_err(|e| self.classify("GetObjectTagging", resource, e))?;
        Ok(out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect())
    }
}

fn object_head(
    key: &str,
    out: ObjectHeaders<'_>,
    operation: &str,
    resource: &str,
) -> Result<ObjectHead, SourceError> {
    let size = out.content_length.filter(|n| *n >= 0).ok_or_else(|| {
        SourceError::new(
            SourceErrorKind::Permanent,
            resource,
            format!("{operation} returned no Content-Length"),
        )
    })?;
    let storage_class = out.storage_class.unwrap_or("STANDARD").to_owned();
    let restore = out.restore;
    let archive = archive_state(
        &storage_class,
        out.tiered_archive,
        restore.and_then(restore_in_progress),
        restore.is_some_and(|r| quoted_field(r, "expiry-date").is_some()),
    );
    let checksums = head_checksums(&out);
    let mut user_metadata = out.metadata;
    user_metadata.sort();
    let owned = |v: Option<&str>| v.map(str::to_owned);
    Ok(ObjectHead {
        key: key.to_owned(),
        size: size as u64,
        etag: out.e_tag.map(unquote),
        last_modified: out.last_modified,
        version_id: owned(out.version_id),
        storage_class: Some(storage_class),
        archive,
        content_type: owned(out.content_type),
        content_encoding: owned(out.content_encoding),
        content_disposition: owned(out.content_disposition),
        content_language: owned(out.content_language),
        cache_control: owned(out.cache_control),
        expires: owned(out.expires),
        user_metadata,
        tags: Vec::new(),
        checksums,
    })
}

fn head_checksums(out: &ObjectHeaders<'_>) -> SourceChecksums {
    let kms_or_customer_key = out.sse_customer_algorithm.is_some()
        || out
            .server_side_encryption
            .is_some_and(|s| s != ServerSideEncryption::Aes256.as_str());
    let multipart = out.e_tag.is_some_and(|e| unquote(e).contains('-'))
        || out.parts_count.is_some_and(|n| n > 1);
    let kind = out.checksum_type.map(ChecksumType::from);
    SourceChecksums {
        md5: out
            .e_tag
            .filter(|_| !kms_or_customer_key)
            .and_then(md5_from_etag),
        // CRC64NVME exists only as a full-object checksum.
        crc64nvme: full_object_checksum(out.checksum_crc64_nvme, kind.as_ref(), true)
            .map(u64::from_be_bytes),
        crc32c: full_object_checksum(out.checksum_crc32_c, kind.as_ref(), !multipart)
            .map(u32::from_be_bytes),
        oss_crc64: None,
    }
}

/// The MD5 a single-part upload's ETag is. Multipart ETags (`…-N`) and anything else that is not
/// 32 hex digits are not MD5s.
fn md5_from_etag(etag: &str) -> Option<[u8; 16]> {
    let hex_digits = unquote(etag);
    if hex_digits.len() != 32 {
        return None;
    }
    let mut md5 = [0u8; 16];
    hex::decode_to_slice(&hex_digits, &mut md5).ok()?;
    Some(md5)
}

/// A Base64 checksum header as N big-endian bytes, only when it covers the whole object: the
/// type says FULL_OBJECT, or no type is given and `full_if_untyped` holds. A value ending in
/// `-N` is composite whatever else is said. Callers pass `full_if_untyped = false` for a
/// multipart object's CRC32C: some stores (moto) send a composite value with neither the type
/// nor the `-N` suffix, and only the ETag shows the object was uploaded in parts.
fn full_object_checksum<const N: usize>(
    value: Option<&str>,
    kind: Option<&ChecksumType>,
    full_if_untyped: bool,
) -> Option<[u8; N]> {
    let value = value?;
    let full = match kind {
        Some(ChecksumType::FullObject) => true,
        Some(ChecksumType::Composite) => false,
        _ => full_if_untyped,
    };
    if !full || value.contains('-') {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    bytes.try_into().ok()
}

/// `ongoing-request="true"` → restoring; `"false"` → finished.
fn restore_in_progress(header: &str) -> Option<bool> {
    match quoted_field(header, "ongoing-request")? {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The value of `name="value"` in a header like `x-amz-restore`. Values may hold commas
/// (`expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"`), so this does not split on them.
fn quoted_field<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    let needle = format!("{name}=\"");
    let start = header.find(&needle)? + needle.len();
    let len = header[start..].find('"')?;
    Some(&header[start..start + len])
}

// ---------------------------------------------------------------------------------------------
// get

impl S3Source {
    async fn get_object(&self, req: GetRequest<'_>) -> Result<ByteStream, SourceError> {
        let resource = format!("{}/{}", self.bucket, req.key);
        check_key(req.key, &resource)?;
        let mut call = self
            .client
            .get_object()
            .bucket(&self.bucket)
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
    async fn open_object(&self, key: &str) -> Result<Opened, SourceError> {
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
    async fn opened_fast(
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
    async fn finish_open(
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
fn raw_header<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
}

/// [`ObjectHeaders`] from a raw GetObject answer; `None` if a header ferry carries is present
/// but unreadable (not UTF-8, a number or date that does not parse).
fn raw_object_headers(headers: &http::HeaderMap) -> Option<ObjectHeaders<'_>> {
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
fn raw_body_stream(response: reqwest::Response, resource: String) -> ByteStream {
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
fn check_content_range(
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
fn parse_content_range(header: &str) -> Option<(u64, u64)> {
    let span = header.strip_prefix("bytes ")?.split('/').next()?;
    let (first, last) = span.split_once('-')?;
    Some((first.trim().parse().ok()?, last.trim().parse().ok()?))
}

/// The SDK body as ferry's stream: chunks as they arrive, never collected; ends after the
/// first error.
fn body_stream(body: aws_sdk_s3::primitives::ByteStream, resource: String) -> ByteStream {
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

fn body_error(resource: &str, err: &(dyn std::error::Error + 'static)) -> SourceError {
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

// ---------------------------------------------------------------------------------------------
// restore

impl S3Source {
    async fn restore_object(
        &self,
        key: &str,
        days: u32,
        tier: RestoreTier,
    ) -> Result<RestoreOutcome, SourceError> {
        let resource = format!("{}/{}", self.bucket, key);
        check_key(key, &resource)?;
        let days = i32::try_from(days)
            .ok()
            .filter(|d| *d >= 1)
            .ok_or_else(|| {
                SourceError::new(
                    SourceErrorKind::Permanent,
                    &resource,
                    format!("restore for {days} days: use 1 or more days"),
                )
            })?;
        let job = GlacierJobParameters::builder()
            .tier(s3_tier(tier))
            .build()
            .map_err(|e| {
                SourceError::new(
                    SourceErrorKind::Permanent,
                    &resource,
                    format!("building the restore request: {e}"),
                )
            })?;
        let request = RestoreRequest::builder()
            .days(days)
            .glacier_job_parameters(job)
            .build();
        let status = Arc::new(AtomicU16::new(0));
        let sent = self
            .client
            .restore_object()
            .bucket(&self.bucket)
            .key(key)
            .restore_request(request)
            .customize()
            .interceptor(StatusRecorder(status.clone()))
            .send()
            .await;
        match sent {
            // 202 Accepted: a restore started; 200 OK: already restored (expiry extended).
            Ok(_) if status.load(Ordering::Relaxed) == 200 => Ok(RestoreOutcome::AlreadyRestored),
            Ok(_) => Ok(RestoreOutcome::Started),
            Err(e) if e.code() == Some("RestoreAlreadyInProgress") => {
                Ok(RestoreOutcome::AlreadyInProgress)
            }
            Err(e) if e.code() == Some("InvalidObjectState") => {
                let mut err = self.classify("RestoreObject", &resource, e);
                err.kind = SourceErrorKind::Permanent;
                err.message = format!(
                    "the object is not in an archive storage class: {}",
                    err.message
                );
                Err(err)
            }
            Err(e) => Err(self.classify("RestoreObject", &resource, e)),
        }
    }
}

fn s3_tier(tier: RestoreTier) -> Tier {
    match tier {
        RestoreTier::Expedited => Tier::Expedited,
        RestoreTier::Standard => Tier::Standard,
        RestoreTier::Bulk => Tier::Bulk,
    }
}

/// Records the HTTP status of a response: RestoreObject's output does not say whether S3
/// answered 200 (already restored) or 202 (started).
#[derive(Debug)]
struct StatusRecorder(Arc<AtomicU16>);

impl Intercept for StatusRecorder {
    fn name(&self) -> &'static str {
        "ferry::StatusRecorder"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0
            .store(context.response().status().as_u16(), Ordering::Relaxed);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// errors

impl S3Source {
    /// [`classify`], and when S3 refused the credentials themselves and they can be read again
    /// ([`credentials::Refreshing`]): marks them refused and makes the error retryable, so the
    /// retry signs with fresh ones instead of failing the object.
    fn classify<E>(
        &self,
        operation: &str,
        resource: &str,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> SourceError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let refused = matches!(&err, SdkError::ServiceError(ctx)
            if crate::aws::is_credentials_refusal(ctx.err().code()));
        let mut error = classify(operation, resource, err);
        if let (true, Some(refreshing)) = (refused, &self.refreshing) {
            refreshing.refused();
            error.kind = SourceErrorKind::Transient;
        }
        error
    }
}

/// Turns an SDK failure into a [`SourceError`] the engine can act on, by the one policy in
/// [`crate::aws`]. The message names the operation, HTTP status, S3 error code and request ids.
fn classify<E>(
    operation: &str,
    resource: &str,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use crate::aws::Kind;
    let failure = crate::aws::read(&err);
    let kind = match failure.kind {
        Kind::NotFound => SourceErrorKind::NotFound,
        Kind::AccessDenied => SourceErrorKind::AccessDenied,
        Kind::NeedsRestore => SourceErrorKind::NeedsRestore,
        Kind::Throttled => SourceErrorKind::Throttled,
        Kind::Transient => SourceErrorKind::Transient,
        Kind::Changed => SourceErrorKind::Changed,
        Kind::TooLarge | Kind::Permanent => SourceErrorKind::Permanent,
    };
    SourceError::new(
        kind,
        resource,
        format!("S3 {operation} failed: {}", failure.text),
    )
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
