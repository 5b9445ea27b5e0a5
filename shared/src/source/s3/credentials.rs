//! S3 credentials read again from where they came from: a Secrets Manager secret holding a key
//! pair (and an STS session token) can be rotated mid-run, and a session token expires.
//!
//! The SDK's own chains (environment, profile, role, web identity) refresh themselves. A key
//! ferry read from a secret does not: left alone, every request after a rotation is refused
//! until the run fails. [`Refreshing`] asks its [`ReadCredentials`] again every
//! [`MAX_AGE`], and at once after S3 refused the credentials it held (the source marks them
//! [`refused`](Refreshing::refused) and retries the request); a read that fails keeps the
//! credentials held, so a Secrets Manager outage does not stop a run whose key still works.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, future};
use aws_sdk_s3::config::Credentials;

/// How long credentials are used before they are read again anyway.
pub const MAX_AGE: Duration = Duration::from_secs(300);

/// The least time between two reads that refusals caused, so a run whose every request is
/// refused (a secret that holds a bad key) reads the secret once per burst, not once per
/// request. The first refusal after a good spell reads at once.
const MIN_INTERVAL: Duration = Duration::from_secs(2);

/// What a credentials read returns: the credentials, or why they could not be read.
pub type ReadFut =
    Pin<Box<dyn Future<Output = Result<Credentials, crate::secret::SecretError>> + Send>>;

/// Reads the credentials from where they are kept (a secret, the environment).
pub trait ReadCredentials: Send + Sync {
    /// Reads the credentials as they are now.
    fn read(&self) -> ReadFut;
}

/// Credentials read again after [`MAX_AGE`] and after S3 refused them. Cheap to clone.
#[derive(Clone)]
pub struct Refreshing {
    inner: Arc<Inner>,
}

struct Inner {
    reader: Box<dyn ReadCredentials>,
    held: tokio::sync::Mutex<Held>,
    refused: AtomicBool,
}

#[derive(Default)]
struct Held {
    /// The credentials and when they were read.
    credentials: Option<(Credentials, Instant)>,
    /// When a refusal last made them be read again.
    forced: Option<Instant>,
}

impl Refreshing {
    /// Credentials read through `reader`, on first use and again when they age or S3 refuses them.
    pub fn new(reader: impl ReadCredentials + 'static) -> Self {
        Refreshing {
            inner: Arc::new(Inner {
                reader: Box::new(reader),
                held: tokio::sync::Mutex::new(Held::default()),
                refused: AtomicBool::new(false),
            }),
        }
    }

    /// S3 refused the credentials held (expired token, rotated key): the next request reads
    /// them again.
    pub fn refused(&self) {
        self.inner.refused.store(true, Ordering::Relaxed);
    }

    async fn current(&self) -> Result<Credentials, CredentialsError> {
        let mut held = self.inner.held.lock().await;
        let refused = self.inner.refused.load(Ordering::Relaxed);
        let damped = held.forced.is_some_and(|at| at.elapsed() < MIN_INTERVAL);
        if let Some((credentials, at)) = &held.credentials
            && at.elapsed() < MAX_AGE
            && (!refused || damped)
        {
            return Ok(credentials.clone());
        }
        self.inner.refused.store(false, Ordering::Relaxed);
        if refused {
            held.forced = Some(Instant::now());
        }
        match self.inner.reader.read().await {
            Ok(fresh) => {
                let fresh = with_expiry(fresh);
                held.credentials = Some((fresh.clone(), Instant::now()));
                Ok(fresh)
            }
            Err(e) => match &held.credentials {
                Some((credentials, _)) => {
                    tracing::warn!(error = %e, "the source credentials could not be read again; keeping the ones held");
                    Ok(credentials.clone())
                }
                None => Err(CredentialsError::provider_error(e)),
            },
        }
    }
}

/// Credentials that say when to ask again: twice [`MAX_AGE`] unless they expire sooner (an
/// STS session token read from a secret), so the SDK and the lean GET path come back to
/// [`Refreshing`], which answers from what it holds.
fn with_expiry(c: Credentials) -> Credentials {
    let soon = SystemTime::now() + 2 * MAX_AGE;
    let expiry = c.expiry().filter(|e| *e < soon).unwrap_or(soon);
    Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        c.session_token().map(str::to_owned),
        Some(expiry),
        "ferry-refreshing",
    )
}

impl fmt::Debug for Refreshing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Refreshing { .. }")
    }
}

impl ProvideCredentials for Refreshing {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    struct Counting(Arc<AtomicU32>);

    impl ReadCredentials for Counting {
        fn read(&self) -> ReadFut {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            Box::pin(async move { Ok(Credentials::new(format!("key-{n}"), "s", None, None, "t")) })
        }
    }

    #[tokio::test]
    async fn credentials_are_read_again_only_after_a_refusal() {
        let reads = Arc::new(AtomicU32::new(0));
        let creds = Refreshing::new(Counting(reads.clone()));
        let first = creds.provide_credentials().await.unwrap();
        assert_eq!(first.access_key_id(), "key-1");
        assert_eq!(
            creds.provide_credentials().await.unwrap().access_key_id(),
            "key-1"
        );
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        assert!(
            first.expiry().is_some(),
            "the SDK is told when to ask again"
        );
        let key = |c: Credentials| c.access_key_id().to_owned();
        // The first refusal reads them again at once.
        creds.refused();
        assert_eq!(key(creds.provide_credentials().await.unwrap()), "key-2");
        assert_eq!(key(creds.provide_credentials().await.unwrap()), "key-2");
        // A refusal right after that one waits out the least interval: no storm of reads.
        creds.refused();
        assert_eq!(key(creds.provide_credentials().await.unwrap()), "key-2");
        tokio::time::sleep(MIN_INTERVAL).await;
        assert_eq!(key(creds.provide_credentials().await.unwrap()), "key-3");
        assert_eq!(reads.load(Ordering::SeqCst), 3);
    }
}
