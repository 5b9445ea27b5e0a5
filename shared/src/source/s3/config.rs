//! The S3 source's settings as a job names them ([`S3SourceConfig`]), and their checks: each
//! setting that cannot work is refused before anything connects, with the field, the value and
//! the fix ([`S3ConfigError`]).

use serde::Deserialize;

use super::credentials;
use crate::secret::Secret;

/// Where an S3 source is and how to reach it. Deserialized from the job spec.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3SourceConfig {
    /// The source bucket's name.
    pub bucket: String,
    /// The key prefix the job covers. Informational here (reports, `describe`); listings take
    /// their prefix from each [`ListRequest`](crate::source::ListRequest).
    #[serde(default)]
    pub prefix: Option<String>,
    /// AWS region (the signing region for S3-compatible stores). When unset: `us-east-1` with an
    /// endpoint override, else the SDK's region chain (`AWS_REGION`, profile).
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint of an S3-compatible store (`https://minio.example:9000`). Unset for Amazon S3.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible stores need.
    #[serde(default)]
    pub path_style: bool,
    /// Allow `http://` endpoints. Plain HTTP sends data and signatures in the clear; meant for
    /// local test stores only.
    #[serde(default)]
    pub allow_http: bool,
    /// Which credentials sign the requests (the SDK's default chain when unset).
    #[serde(default)]
    pub credentials: S3Credentials,
    /// Assume this role (through STS) on top of `credentials` before reading.
    #[serde(default)]
    pub assume_role: Option<AssumeRole>,
    /// HEAD also fetches the object's tags (one GetObjectTagging call per object).
    #[serde(default = "default_true")]
    pub fetch_tags: bool,
    /// Listings ask S3 for each object's restore status (`OptionalObjectAttributes=RestoreStatus`),
    /// so restored archive objects list as readable. Off by default: not every S3-compatible
    /// store knows the header.
    #[serde(default)]
    pub list_restore_status: bool,
    /// The bucket is requester-pays: every request says the requester (this account) pays
    /// for it and for the bytes read (`RequestPayer=requester`), or S3 refuses it (403).
    #[serde(default)]
    pub request_payer: bool,
    /// Attempts per request, including the first, in the SDK's standard retry mode.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

/// Which credentials sign the requests.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum S3Credentials {
    /// The SDK's default chain: environment, profile, web identity, ECS/EC2 roles (Lambda's role).
    #[default]
    DefaultChain,
    /// A fixed key pair (and session token for temporary credentials).
    Static {
        /// The access key id.
        access_key_id: String,
        /// The secret access key.
        #[serde(deserialize_with = "de_secret")]
        secret_access_key: Secret,
        /// The session token, for temporary credentials.
        #[serde(default, deserialize_with = "de_opt_secret")]
        session_token: Option<Secret>,
    },
    /// Credentials read again when S3 refuses them and every few minutes (a rotated secret, an
    /// STS session token held in a secret); built by ferry, never written in a job file.
    #[serde(skip)]
    Refreshing(credentials::Refreshing),
}

/// A role to assume with STS before reading the bucket.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssumeRole {
    /// The ARN of the role to assume.
    pub role_arn: String,
    /// The STS session name (`ferry` when unset).
    #[serde(default)]
    pub session_name: Option<String>,
    /// The external id the role's trust policy requires, if any.
    #[serde(default)]
    pub external_id: Option<String>,
    /// STS endpoint override (private endpoints, tests). The S3 `endpoint` never applies to STS.
    #[serde(default)]
    pub sts_endpoint: Option<String>,
}

fn default_true() -> bool {
    true
}

fn default_max_attempts() -> u32 {
    5
}

fn de_secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    String::deserialize(d).map(Secret::new)
}

fn de_opt_secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Option::<String>::deserialize(d).map(|s| s.map(Secret::new))
}

impl S3SourceConfig {
    /// A config for `bucket` with every other setting at its default.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3SourceConfig {
            bucket: bucket.into(),
            prefix: None,
            region: None,
            endpoint: None,
            path_style: false,
            allow_http: false,
            credentials: S3Credentials::default(),
            assume_role: None,
            fetch_tags: true,
            list_restore_status: false,
            request_payer: false,
            max_attempts: default_max_attempts(),
        }
    }

    /// Checks every setting that can be checked without the network.
    pub fn validate(&self) -> Result<(), S3ConfigError> {
        check_bucket(&self.bucket)?;
        if let Some(endpoint) = &self.endpoint {
            check_endpoint("endpoint", endpoint, self.allow_http)?;
        }
        if let Some(region) = &self.region {
            check_region(region)?;
        }
        if !(1..=20).contains(&self.max_attempts) {
            return Err(S3ConfigError::new(
                "max_attempts",
                self.max_attempts.to_string(),
                "is out of range",
                "use 1 to 20 (5 is the default)",
            ));
        }
        if let S3Credentials::Static {
            access_key_id,
            secret_access_key,
            ..
        } = &self.credentials
        {
            check_static_credentials(access_key_id, secret_access_key)?;
        }
        if let Some(role) = &self.assume_role {
            check_assume_role(role, self.allow_http)?;
        }
        Ok(())
    }
}

/// A setting of [`S3SourceConfig`] that cannot work, with the value and how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("S3 source setting `{field}` = {value:?} {problem}; {fix}")]
pub struct S3ConfigError {
    /// The setting's name.
    pub field: &'static str,
    /// The value given.
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
    /// What would work instead.
    pub fix: String,
}

impl S3ConfigError {
    pub(super) fn new(
        field: &'static str,
        value: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        S3ConfigError {
            field,
            value: value.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

fn check_bucket(bucket: &str) -> Result<(), S3ConfigError> {
    let ok =
        !bucket.is_empty() && !bucket.contains('/') && !bucket.chars().any(char::is_whitespace);
    if ok {
        return Ok(());
    }
    Err(S3ConfigError::new(
        "bucket",
        bucket,
        "is not a bucket name",
        "give the bare bucket name, without `s3://`, slashes or spaces",
    ))
}

fn check_region(region: &str) -> Result<(), S3ConfigError> {
    let ok = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        return Ok(());
    }
    Err(S3ConfigError::new(
        "region",
        region,
        "is not a region name",
        "use a name like `us-east-1`",
    ))
}

fn check_endpoint(
    field: &'static str,
    endpoint: &str,
    allow_http: bool,
) -> Result<(), S3ConfigError> {
    // An endpoint with `user:password@` would leak that password into this very error message.
    if endpoint.contains('@') {
        return Err(S3ConfigError::new(
            field,
            "<redacted: contains `@`>",
            "carries user information",
            "remove `user:password@` from the URL and put credentials in `credentials`",
        ));
    }
    let bad = |problem: &str| {
        S3ConfigError::new(
            field,
            endpoint,
            problem,
            "use a URL like `https://s3.example.com:9000`",
        )
    };
    let uri: http::Uri = endpoint.parse().map_err(|_| bad("is not a URL"))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if uri.query().is_some() {
        return Err(bad("has a query string"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if allow_http => Ok(()),
        Some("http") => Err(S3ConfigError::new(
            field,
            endpoint,
            "uses plain HTTP, which sends data and request signatures unencrypted",
            "use an https:// endpoint, or set `allow_http: true` if this is a local test store",
        )),
        _ => Err(bad("does not start with https:// or http://")),
    }
}

fn check_static_credentials(access_key_id: &str, secret: &Secret) -> Result<(), S3ConfigError> {
    if access_key_id.trim().is_empty() {
        return Err(S3ConfigError::new(
            "credentials.access_key_id",
            access_key_id,
            "is empty",
            "set the access key id, or use `type: default_chain`",
        ));
    }
    if secret.is_empty() {
        return Err(S3ConfigError::new(
            "credentials.secret_access_key",
            "<empty>",
            "is empty",
            "set the secret access key, or use `type: default_chain`",
        ));
    }
    Ok(())
}

fn check_assume_role(role: &AssumeRole, allow_http: bool) -> Result<(), S3ConfigError> {
    if !role.role_arn.starts_with("arn:") || !role.role_arn.contains(":role/") {
        return Err(S3ConfigError::new(
            "assume_role.role_arn",
            role.role_arn.as_str(),
            "is not a role ARN",
            "use an ARN like `arn:aws:iam::123456789012:role/name`",
        ));
    }
    if let Some(endpoint) = &role.sts_endpoint {
        check_endpoint("assume_role.sts_endpoint", endpoint, allow_http)?;
    }
    Ok(())
}
