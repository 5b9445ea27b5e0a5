//! Where a job reads from and writes to: the `source` (an S3 or S3-compatible bucket, or an OSS
//! bucket) and the `destination` (an OSS bucket), and how each becomes an engine setting —
//! [`S3SourceConfig`] for S3 sources, an endpoint plus an [`OssClientBuilder`] for OSS.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use super::credentials::{OssCredentialsRef, S3CredentialsRef};
use super::error::{Issue, JobError};
use super::mirror;
use crate::oss::types::StorageClass;
use crate::oss::{
    Credentials, Endpoint, OssClient, OssClientBuilder, RefreshCredentials, SignatureVersion,
};
use crate::source::s3::{AssumeRole, S3Credentials, S3SourceConfig};
use crate::transfer::Destination;
use std::sync::Arc;

/// Where objects are copied from, chosen by `kind`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceSpec {
    /// Amazon S3, or any S3-compatible store (MinIO, Ceph, Tencent COS, Cloudflare R2, …) with
    /// `endpoint` set.
    S3(S3SourceSpec),
    /// Another OSS bucket, in any region or account.
    Oss(OssSourceSpec),
}

/// An Amazon S3 bucket, or a bucket on an S3-compatible store.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3SourceSpec {
    /// The bucket name, bare: no `s3://`, no slashes.
    pub bucket: String,
    /// Copy only keys starting with this prefix; empty (the default) copies the whole bucket.
    /// Keys keep their full name at the destination, behind `destination.prefix`.
    #[serde(default)]
    pub prefix: String,
    /// The bucket's AWS region (`us-east-1`), or the signing region of an S3-compatible store.
    /// When unset: `us-east-1` with an `endpoint`, otherwise the environment's region
    /// (`AWS_REGION`).
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint URL of an S3-compatible store (`https://minio.example.com:9000`). Leave unset
    /// for Amazon S3.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Address the bucket in the path (`endpoint/bucket/key`) instead of the host name; most
    /// S3-compatible stores need this.
    #[serde(default)]
    pub path_style: bool,
    /// Allow an `http://` endpoint. Plain HTTP sends data and signed requests unencrypted:
    /// only for local test stores.
    #[serde(default)]
    pub allow_http: bool,
    /// Where the credentials are: `"default_chain"` (default), `{"secret": "<ARN or name>"}` or
    /// `{"env": {"access_key_id_var": …, "secret_access_key_var": …}}`. Never the keys
    /// themselves.
    #[serde(default)]
    pub credentials: S3CredentialsRef,
    /// Assume this IAM role (through STS) on top of `credentials` before reading, e.g. a role
    /// in the bucket owner's account.
    #[serde(default)]
    #[schemars(with = "Option<mirror::AssumeRole>")]
    pub assume_role: Option<AssumeRole>,
    /// Also copy each object's tags (one extra GetObjectTagging request per object).
    #[serde(default = "yes")]
    pub fetch_tags: bool,
    /// The bucket is requester-pays: every request says this account pays for it and for the
    /// bytes read (`RequestPayer=requester`); without it S3 refuses every request (403).
    #[serde(default)]
    pub request_payer: bool,
}

/// How an OSS endpoint is chosen from the region when no explicit `endpoint` is given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointKind {
    /// `oss-<region>.aliyuncs.com`: reachable from anywhere (the default).
    #[default]
    Public,
    /// `oss-<region>-internal.aliyuncs.com`: from ECS or a VPC in the same region, without
    /// outbound traffic charges. Not reachable from AWS.
    Internal,
    /// `oss-accelerate.aliyuncs.com`: transfer acceleration (enable it on the bucket first).
    Accelerate,
    /// `oss-accelerate-overseas.aliyuncs.com`: acceleration for regions outside the Chinese
    /// mainland.
    AccelerateOverseas,
}

/// Another OSS bucket as the source. Same region and credentials as the destination: copied
/// server-side (CopyObject / UploadPartCopy), with no bytes through ferry.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OssSourceSpec {
    /// The bucket name.
    pub bucket: String,
    /// Copy only keys starting with this prefix; empty (the default) copies the whole bucket.
    #[serde(default)]
    pub prefix: String,
    /// The bucket's region: `cn-hangzhou` (or `oss-cn-hangzhou`).
    pub region: String,
    /// Which endpoint of the region to use: `public` (default), `internal`, `accelerate` or
    /// `accelerate-overseas`. Give either this or `endpoint`, not both.
    #[serde(default)]
    pub endpoint_kind: Option<EndpointKind>,
    /// An explicit endpoint URL (`https://oss-cn-hangzhou.aliyuncs.com`, a private endpoint,
    /// or an emulator). Give either this or `endpoint_kind`, not both.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Allow an `http://` endpoint: only for local emulators and tests.
    #[serde(default)]
    pub allow_http: bool,
    /// Request signature: `v4` (default) or `v1` for older accounts.
    #[serde(default)]
    #[schemars(with = "mirror::SignatureVersion")]
    pub signature_version: SignatureVersion,
    /// Where the credentials are: `"default_chain"` (the default: `OSS_*` variables, then
    /// `ALIBABA_CLOUD_*`, then the Alibaba Cloud CLI's profile), `{"profile": "<name>"}`,
    /// `{"secret": "<ARN or name>"}` or `{"env": {…}}`.
    #[serde(default)]
    pub credentials: OssCredentialsRef,
}

/// The OSS bucket objects are copied into.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationSpec {
    /// The bucket name (it must exist).
    pub bucket: String,
    /// Put in front of every source key: source key `a/b.jpg` with prefix `backup/` becomes
    /// `backup/a/b.jpg`. Empty by default. Must not start with `/`.
    #[serde(default)]
    pub prefix: String,
    /// How a source key becomes a destination key. `full` (the default) keeps the whole source
    /// key behind `prefix`: `2024/a.jpg` read with `source.prefix` `2024/` and written with
    /// `prefix` `from-s3/` becomes `from-s3/2024/a.jpg`. `relative` takes `source.prefix` off
    /// first, as OssImport (srcPrefix + relPath → destPrefix + relPath) and rclone do:
    /// `from-s3/a.jpg`. With `relative`, `source.prefix` must be empty or end with `/`.
    #[serde(default)]
    pub key_layout: KeyLayout,
    /// The bucket's region: `cn-hangzhou` (or `oss-cn-hangzhou`).
    pub region: String,
    /// Which endpoint of the region to use: `public` (default), `internal`, `accelerate` or
    /// `accelerate-overseas`. Give either this or `endpoint`, not both.
    #[serde(default)]
    pub endpoint_kind: Option<EndpointKind>,
    /// An explicit endpoint URL (a private endpoint, or an emulator). Give either this or
    /// `endpoint_kind`, not both.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Where the credentials are: `"default_chain"` (the default: `OSS_ACCESS_KEY_ID` /
    /// `OSS_ACCESS_KEY_SECRET`, then `ALIBABA_CLOUD_ACCESS_KEY_ID` /
    /// `ALIBABA_CLOUD_ACCESS_KEY_SECRET`, then the Alibaba Cloud CLI's profile in
    /// `~/.aliyun/config.json`), `{"profile": "<name>"}` (a CLI profile), `{"secret": "<ARN or
    /// name>"}` (a Secrets Manager secret holding `access_key_id` and `access_key_secret`) or
    /// `{"env": {…}}`.
    #[serde(default)]
    pub credentials: OssCredentialsRef,
    /// Request signature: `v4` (default) or `v1` for older accounts.
    #[serde(default)]
    #[schemars(with = "mirror::SignatureVersion")]
    pub signature_version: SignatureVersion,
    /// Write every object in this storage class (`Standard`, `IA`, `Archive`, `ColdArchive`,
    /// `DeepColdArchive`). Unset (the default): each object's source class is mapped to the
    /// nearest OSS class (S3 STANDARD_IA → IA, GLACIER → Archive, DEEP_ARCHIVE → ColdArchive).
    #[serde(default, deserialize_with = "de_storage_class")]
    #[schemars(with = "Option<mirror::StorageClass>")]
    pub storage_class: Option<StorageClass>,
    /// Allow an `http://` endpoint: only for local emulators and tests.
    #[serde(default)]
    pub allow_http: bool,
}

/// How source keys are laid out at the destination (see [`DestinationSpec::key_layout`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyLayout {
    /// The whole source key goes behind the destination prefix.
    #[default]
    Full,
    /// The source prefix is taken off the key before it goes behind the destination prefix.
    Relative,
}

fn yes() -> bool {
    true
}

fn de_storage_class<'de, D: Deserializer<'de>>(d: D) -> Result<Option<StorageClass>, D::Error> {
    let Some(name) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    name.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "{name:?} is not an OSS storage class; fix: use Standard, IA, Archive, ColdArchive or DeepColdArchive, or leave it unset to map each object's class"
        ))
    })
}

/// The parts of an OSS bucket setting that source and destination share.
pub(super) struct OssPlace<'a> {
    /// `source` or `destination`, for issue paths.
    pub section: &'static str,
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub region: &'a str,
    pub endpoint_kind: Option<EndpointKind>,
    pub endpoint: Option<&'a str>,
    pub allow_http: bool,
    pub signature_version: SignatureVersion,
}

impl OssPlace<'_> {
    /// An OSS client for this bucket, asking `refresh` (when given) for fresh credentials when
    /// OSS refuses these.
    pub fn client(
        &self,
        credentials: Credentials,
        refresh: Option<Arc<dyn RefreshCredentials>>,
    ) -> Result<OssClient, JobError> {
        let mut builder = OssClientBuilder::default()
            .endpoint(self.resolve().map_err(JobError::one)?.to_string())
            .region(self.region)
            .signature_version(self.signature_version)
            .allow_http(self.allow_http)
            .credentials(credentials);
        if let Some(refresh) = refresh {
            builder = builder.refresh_credentials(refresh);
        }
        builder.build().map_err(|e| {
            JobError::one(Issue::new(
                self.section,
                None,
                format!("cannot build an OSS client: {e}"),
                "check the endpoint, region and credentials settings",
            ))
        })
    }

    /// The endpoint requests go to. With an explicit endpoint, the URL's problems; otherwise the
    /// region's.
    pub fn resolve(&self) -> Result<Endpoint, Issue> {
        if let Some(raw) = self.endpoint {
            return Endpoint::parse(raw).map_err(|e| {
                Issue::text(
                    format!("{}.endpoint", self.section),
                    raw,
                    "is not an endpoint URL",
                    e.to_string(),
                )
            });
        }
        let endpoint = match self.endpoint_kind.unwrap_or_default() {
            EndpointKind::Public => Endpoint::public(self.region),
            EndpointKind::Internal => Endpoint::internal(self.region),
            EndpointKind::Accelerate => Ok(Endpoint::accelerate()),
            EndpointKind::AccelerateOverseas => Ok(Endpoint::accelerate_overseas()),
        };
        endpoint.map_err(|_| self.region_issue())
    }

    pub fn region_issue(&self) -> Issue {
        Issue::text(
            format!("{}.region", self.section),
            self.region,
            "is not an OSS region id",
            "write a region such as \"cn-hangzhou\" or \"ap-southeast-1\" (the `oss-` prefix is optional)",
        )
    }

    /// A name for "the same OSS service": Alibaba Cloud's public OSS is one namespace per
    /// region; anything else (private endpoints, emulators) is identified by host and port.
    pub fn store(&self) -> Option<String> {
        let endpoint = self.resolve().ok()?;
        if endpoint.host().ends_with(".aliyuncs.com") {
            let region = endpoint
                .region_from_host()
                .or_else(|| crate::oss::region_id(self.region).ok())?;
            return Some(format!("aliyun:{region}"));
        }
        Some(format!(
            "{}:{}",
            endpoint.host(),
            endpoint.port().unwrap_or(0)
        ))
    }
}

impl SourceSpec {
    /// The key prefix the job covers.
    pub fn prefix(&self) -> &str {
        match self {
            SourceSpec::S3(s) => &s.prefix,
            SourceSpec::Oss(o) => &o.prefix,
        }
    }

    /// The source bucket's name.
    pub fn bucket(&self) -> &str {
        match self {
            SourceSpec::S3(s) => &s.bucket,
            SourceSpec::Oss(o) => &o.bucket,
        }
    }

    /// `s3://bucket/prefix` or `oss://bucket/prefix`, for reports and logs.
    pub fn describe(&self) -> String {
        match self {
            SourceSpec::S3(s) => format!("s3://{}/{}", s.bucket, s.prefix),
            SourceSpec::Oss(o) => format!("oss://{}/{}", o.bucket, o.prefix),
        }
    }

    /// The source as an OSS bucket, when it is one. An S3 source whose endpoint is OSS's own
    /// S3-compatible endpoint (`*.aliyuncs.com`) counts too: it reads the same buckets.
    pub(super) fn as_oss_place(&self) -> Option<OssPlace<'_>> {
        match self {
            SourceSpec::Oss(o) => Some(o.place()),
            SourceSpec::S3(s) => {
                let endpoint = Endpoint::parse(s.endpoint.as_deref()?).ok()?;
                endpoint.region_from_host()?;
                Some(OssPlace {
                    section: "source",
                    bucket: &s.bucket,
                    prefix: &s.prefix,
                    region: s.region.as_deref().unwrap_or(""),
                    endpoint_kind: None,
                    endpoint: s.endpoint.as_deref(),
                    allow_http: s.allow_http,
                    signature_version: SignatureVersion::default(),
                })
            }
        }
    }
}

impl S3SourceSpec {
    /// The engine's S3 source settings, with `credentials` resolved from
    /// [`S3SourceSpec::credentials`] (see [`S3CredentialsRef::resolve`]).
    pub fn config(&self, credentials: S3Credentials) -> S3SourceConfig {
        let mut config = S3SourceConfig::new(self.bucket.clone());
        config.prefix = Some(self.prefix.clone()).filter(|p| !p.is_empty());
        config.region = self.region.clone();
        config.endpoint = self.endpoint.clone();
        config.path_style = self.path_style;
        config.allow_http = self.allow_http;
        config.credentials = credentials;
        config.assume_role = self.assume_role.clone();
        config.fetch_tags = self.fetch_tags;
        config.request_payer = self.request_payer;
        config
    }
}

impl OssSourceSpec {
    pub(super) fn place(&self) -> OssPlace<'_> {
        OssPlace {
            section: "source",
            bucket: &self.bucket,
            prefix: &self.prefix,
            region: &self.region,
            endpoint_kind: self.endpoint_kind,
            endpoint: self.endpoint.as_deref(),
            allow_http: self.allow_http,
            signature_version: self.signature_version,
        }
    }

    /// The endpoint the source bucket is read through.
    pub fn endpoint(&self) -> Result<Endpoint, JobError> {
        self.place().resolve().map_err(JobError::one)
    }

    /// An OSS client for the source bucket, with credentials resolved from
    /// [`OssSourceSpec::credentials`].
    pub fn client(&self, credentials: Credentials) -> Result<OssClient, JobError> {
        self.client_refreshing(credentials, None)
    }

    /// [`client`](Self::client), asking `refresh` for fresh credentials when OSS refuses
    /// these (a rotated secret, an expired STS token).
    pub fn client_refreshing(
        &self,
        credentials: Credentials,
        refresh: Option<Arc<dyn RefreshCredentials>>,
    ) -> Result<OssClient, JobError> {
        self.place().client(credentials, refresh)
    }
}

impl DestinationSpec {
    pub(super) fn place(&self) -> OssPlace<'_> {
        OssPlace {
            section: "destination",
            bucket: &self.bucket,
            prefix: &self.prefix,
            region: &self.region,
            endpoint_kind: self.endpoint_kind,
            endpoint: self.endpoint.as_deref(),
            allow_http: self.allow_http,
            signature_version: self.signature_version,
        }
    }

    /// The destination port for this bucket, reached through `client`, with the job's key
    /// layout (`source_prefix` is the job's `source.prefix`).
    pub fn destination(&self, client: OssClient, source_prefix: &str) -> Destination {
        let dest = Destination::new(client, &self.bucket, &self.prefix);
        match self.key_layout {
            KeyLayout::Full => dest,
            KeyLayout::Relative => dest.relative_to(source_prefix),
        }
    }

    /// The endpoint the destination bucket is written through.
    pub fn endpoint(&self) -> Result<Endpoint, JobError> {
        self.place().resolve().map_err(JobError::one)
    }

    /// An OSS client for the destination bucket, with credentials resolved from
    /// [`DestinationSpec::credentials`].
    pub fn client(&self, credentials: Credentials) -> Result<OssClient, JobError> {
        self.client_refreshing(credentials, None)
    }

    /// [`client`](Self::client), asking `refresh` for fresh credentials when OSS refuses
    /// these (a rotated secret, an expired STS token).
    pub fn client_refreshing(
        &self,
        credentials: Credentials,
        refresh: Option<Arc<dyn RefreshCredentials>>,
    ) -> Result<OssClient, JobError> {
        self.place().client(credentials, refresh)
    }
}
