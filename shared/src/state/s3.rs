//! The S3 adapter of the [`StateStore`] port, for distributed runs: one bucket (private,
//! encrypted) under a key prefix.
//!
//! Conditional writes are S3's own, so they hold across every Lambda writing at once:
//!
//! * `put_if_absent` is a PutObject with `If-None-Match: *`. S3 answers 412 when the key exists
//!   (→ `None`) and 409 `ConditionalRequestConflict` when another write to the key was in
//!   progress; then the write is tried again after a short backoff, because whether the key
//!   exists is not known yet.
//! * `put_if_match` is a PutObject with `If-Match: <ETag>`. 412 (changed) and 404 (deleted) mean
//!   someone else wrote first (→ `None`), and so does 409: the caller reads again and retries.
//!
//! The version is the object's ETag as S3 returns it (quotes included); `If-Match` takes it as
//! is. moto 5.2.5, which the tests run against, honours both headers on PutObject.
//!
//! [`S3Store::new`] takes a ready SDK client; the caller decides region, endpoint and
//! credentials. The SDK retries throttling and 5xx itself; what surfaces here is a
//! [`StateError`] whose kind says whether retrying later can help.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::put_object::PutObjectError;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use crate::backoff::Backoff;

use super::{Fut, StateError, StateErrorKind, StateStore, Versioned, check_key};

/// Tries of a create-only write that keeps meeting 409 ConditionalRequestConflict.
const CONFLICT_ATTEMPTS: u32 = 5;
/// The wait after such a conflict: S3 answers 409 while another conditional write to the key
/// is in flight, which lasts about one request; 100 ms doubling to 1 s covers it.
const CONFLICT_BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));

/// A state store in an S3 bucket, under a key prefix.
#[derive(Clone, Debug)]
pub struct S3Store {
    client: Client,
    bucket: String,
    /// Empty, or ends with `/`.
    prefix: String,
}

/// What a conditional PutObject came to.
enum Put {
    Written(String),
    /// 412, or 404 for `If-Match` on a missing key.
    Refused,
    /// 409 ConditionalRequestConflict: a concurrent write to the key was under way.
    Conflict,
}

impl S3Store {
    /// The store under `prefix` in `bucket`. A prefix that does not end with `/` gets one, so
    /// `ferry-state` keeps keys under `ferry-state/`; an empty prefix uses the whole bucket.
    pub fn new(client: Client, bucket: impl Into<String>, prefix: impl Into<String>) -> S3Store {
        let mut prefix = prefix.into();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        S3Store {
            client,
            bucket: bucket.into(),
            prefix,
        }
    }

    /// The state bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix, empty or ending with `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn object_key(&self, key: &str) -> Result<String, StateError> {
        match check_key(key) {
            Some(problem) => Err(StateError::new(
                StateErrorKind::Permanent,
                self.describe(),
                problem,
            )),
            None => Ok(format!("{}{key}", self.prefix)),
        }
    }

    /// One PutObject with the given conditions.
    async fn put_object(
        &self,
        key: &str,
        body: &Bytes,
        if_none_match: Option<&str>,
        if_match: Option<&str>,
    ) -> Result<Put, StateError> {
        let object = self.object_key(key)?;
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&object)
            .body(ByteStream::from(body.clone()))
            .set_if_none_match(if_none_match.map(str::to_owned))
            .set_if_match(if_match.map(str::to_owned))
            .send()
            .await;
        match result {
            Ok(out) => Ok(Put::Written(self.etag(key, out.e_tag())?)),
            Err(e) => {
                let conditional = if_none_match.is_some() || if_match.is_some();
                match put_outcome(&e).filter(|_| conditional) {
                    Some(outcome) => Ok(outcome),
                    None => Err(self.classify("PutObject", key, e)),
                }
            }
        }
    }

    fn etag(&self, key: &str, etag: Option<&str>) -> Result<String, StateError> {
        etag.map(str::to_owned).ok_or_else(|| {
            StateError::new(
                StateErrorKind::Permanent,
                self.describe(),
                format!(
                    "the store returned no ETag for key {key:?}; conditional writes need one, \
                     so use a store that returns ETags"
                ),
            )
        })
    }

    /// Turns an SDK failure into a [`StateError`] naming the operation, key, HTTP status, S3
    /// error code and request id, by the one policy in [`crate::aws`].
    fn classify<E>(&self, operation: &str, key: &str, err: SdkError<E, HttpResponse>) -> StateError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let failure = crate::aws::read(&err);
        let kind = match failure.kind.may_pass() {
            true => StateErrorKind::Transient,
            false => StateErrorKind::Permanent,
        };
        StateError::new(
            kind,
            self.describe(),
            format!("S3 {operation} of key {key:?} failed: {}", failure.text),
        )
    }
}

impl StateStore for S3Store {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    fn get<'a>(&'a self, key: &'a str) -> Fut<'a, Option<Versioned>> {
        Box::pin(async move {
            let object = self.object_key(key)?;
            let result = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&object)
                .send()
                .await;
            let out = match result {
                Ok(out) => out,
                Err(e) if is_missing_key(&e) => return Ok(None),
                Err(e) => return Err(self.classify("GetObject", key, e)),
            };
            let version = self.etag(key, out.e_tag())?;
            let body = out.body.collect().await.map_err(|e| {
                StateError::new(
                    StateErrorKind::Transient,
                    self.describe(),
                    format!("S3 GetObject of key {key:?}: reading the body failed: {e}"),
                )
            })?;
            Ok(Some(Versioned {
                body: body.into_bytes(),
                version,
            }))
        })
    }

    fn put<'a>(&'a self, key: &'a str, body: Bytes) -> Fut<'a, String> {
        Box::pin(async move {
            match self.put_object(key, &body, None, None).await? {
                Put::Written(version) => Ok(version),
                // Only conditional writes are refused; a store answering so is misbehaving.
                Put::Refused | Put::Conflict => Err(StateError::new(
                    StateErrorKind::Transient,
                    self.describe(),
                    format!("S3 PutObject of key {key:?} was refused without a condition"),
                )),
            }
        })
    }

    fn put_if_absent<'a>(&'a self, key: &'a str, body: Bytes) -> Fut<'a, Option<String>> {
        Box::pin(async move {
            for attempt in 1..=CONFLICT_ATTEMPTS {
                match self.put_object(key, &body, Some("*"), None).await? {
                    Put::Written(version) => return Ok(Some(version)),
                    Put::Refused => return Ok(None),
                    Put::Conflict if attempt < CONFLICT_ATTEMPTS => {
                        tokio::time::sleep(CONFLICT_BACKOFF.equal_jitter(attempt)).await;
                    }
                    Put::Conflict => {}
                }
            }
            Err(StateError::new(
                StateErrorKind::Transient,
                self.describe(),
                format!(
                    "S3 PutObject (If-None-Match) of key {key:?} met a concurrent write \
                     {CONFLICT_ATTEMPTS} times (409 ConditionalRequestConflict); retry later"
                ),
            ))
        })
    }

    fn put_if_match<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        version: &'a str,
    ) -> Fut<'a, Option<String>> {
        Box::pin(async move {
            match self.put_object(key, &body, None, Some(version)).await? {
                Put::Written(version) => Ok(Some(version)),
                Put::Refused | Put::Conflict => Ok(None),
            }
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> Fut<'a, Vec<String>> {
        Box::pin(async move {
            let full = format!("{}{prefix}", self.prefix);
            let mut keys = Vec::new();
            let mut token = None;
            loop {
                let page = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&full)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| self.classify("ListObjectsV2", prefix, e))?;
                keys.extend(page.contents().iter().filter_map(|o| {
                    o.key()
                        .and_then(|k| k.strip_prefix(&self.prefix))
                        .map(str::to_owned)
                }));
                match page.next_continuation_token() {
                    Some(next) if page.is_truncated() == Some(true) => {
                        token = Some(next.to_owned());
                    }
                    _ => break,
                }
            }
            // S3 lists in byte order already; S3-compatible stores are not all as careful.
            keys.sort();
            Ok(keys)
        })
    }
}

fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// A 404 for the key, not for the bucket: a missing bucket must not read as an empty store.
fn is_missing_key<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    status(err) == Some(404) && err.code() != Some("NoSuchBucket")
}

/// The outcome a failed conditional PutObject stands for, or `None` for a real failure.
fn put_outcome(err: &SdkError<PutObjectError, HttpResponse>) -> Option<Put> {
    if is_missing_key(err) {
        return Some(Put::Refused);
    }
    match (err.code(), status(err)) {
        (Some("PreconditionFailed"), _) | (_, Some(412)) => Some(Put::Refused),
        (Some("ConditionalRequestConflict"), _) | (_, Some(409)) => Some(Put::Conflict),
        _ => None,
    }
}
