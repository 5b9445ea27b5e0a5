//! OSS credentials: an AccessKey pair, optionally with an STS security token, and the source a
//! client asks for fresh ones when OSS refuses the ones it has.

use std::future::Future;
use std::pin::Pin;

use crate::secret::{Secret, SecretError};

/// Where a client gets fresh credentials: a rotated AccessKey in a secret, a renewed STS token.
/// An [`OssClient`](super::OssClient) with one asks it when OSS refuses its credentials
/// (`InvalidAccessKeyId`, `SecurityTokenExpired`, …) and, when the answer differs from what it
/// signed with, sends the request again with them.
pub trait RefreshCredentials: Send + Sync {
    /// Reads the credentials as they are now.
    fn refresh(&self) -> RefreshFut<'_>;
}

/// What [`RefreshCredentials::refresh`] returns: fresh credentials, or why none could be read.
pub type RefreshFut<'a> =
    Pin<Box<dyn Future<Output = Result<Credentials, SecretError>> + Send + 'a>>;

/// An AccessKey pair, with the STS token when the pair is temporary.
///
/// `Debug` shows the AccessKey id (it identifies, it does not authorise) and redacts the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The AccessKey id (`LTAI…`).
    pub access_key_id: String,
    /// The AccessKey secret.
    pub access_key_secret: Secret,
    /// The STS security token, for temporary credentials.
    pub security_token: Option<Secret>,
}

impl Credentials {
    /// A long-term AccessKey pair, without an STS token.
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<Secret>) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            access_key_secret: access_key_secret.into(),
            security_token: None,
        }
    }

    /// Temporary credentials from STS.
    pub fn with_security_token(mut self, token: impl Into<Secret>) -> Self {
        self.security_token = Some(token.into());
        self
    }

    /// Reads the variables the official OSS SDKs read: `OSS_ACCESS_KEY_ID`,
    /// `OSS_ACCESS_KEY_SECRET` and, for STS, `OSS_SESSION_TOKEN`.
    pub fn from_env() -> Result<Self, MissingCredentials> {
        let id = std::env::var("OSS_ACCESS_KEY_ID")
            .map_err(|_| MissingCredentials("OSS_ACCESS_KEY_ID"))?;
        let secret = std::env::var("OSS_ACCESS_KEY_SECRET")
            .map_err(|_| MissingCredentials("OSS_ACCESS_KEY_SECRET"))?;
        let mut creds = Credentials::new(id, secret);
        if let Ok(token) = std::env::var("OSS_SESSION_TOKEN")
            && !token.is_empty()
        {
            creds = creds.with_security_token(token);
        }
        Ok(creds)
    }
}

/// A credentials variable is not set.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set: export it, or pass the OSS credentials explicitly")]
pub struct MissingCredentials(pub &'static str);
