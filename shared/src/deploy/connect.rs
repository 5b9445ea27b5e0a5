//! Turning a job spec into live connections: the source adapter, the OSS destination and a
//! copier whose multipart uploads are recorded in the state store.
//!
//! Credentials are resolved here and nowhere else: from environment variables named by the job,
//! or from a Secrets Manager secret fetched through [`Secrets`]. Errors name the job field and
//! never a secret value.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

pub use crate::secret::SecretError;

use crate::job::{JobSpec, OssCredentialsRef, S3CredentialsRef, SourceSpec};
use crate::oss::{Credentials, RefreshCredentials};
use crate::pipeline::{RoleError, layout};
use crate::source::Source;
use crate::source::oss::OssSource;
use crate::source::s3::credentials::{ReadCredentials, ReadFut, Refreshing};
use crate::source::s3::{S3Credentials, S3Source};
use crate::state::{StateError, StateErrorKind, StateStore};
use crate::transfer::resume::{UploadLedger, UploadRecord};
use crate::transfer::{Copier, Destination, ServerSide};

/// What [`Secrets::fetch`] returns.
pub type SecretFut<'a> = Pin<Box<dyn Future<Output = Result<String, SecretError>> + Send + 'a>>;

/// Fetches a secret's text by id (Secrets Manager in distributed mode).
pub trait Secrets: Send + Sync {
    /// The text of the secret `id`.
    fn fetch<'a>(&'a self, id: &'a str) -> SecretFut<'a>;
}

/// No secret store: a job that names a secret gets an error saying how to pass credentials.
pub struct NoSecrets;

impl Secrets for NoSecrets {
    fn fetch<'a>(&'a self, id: &'a str) -> SecretFut<'a> {
        let message = format!(
            "the job names Secrets Manager secret {id:?}, but this ferry has no secret store \
             configured: run with AWS credentials that can read it, or name environment \
             variables in the job's `credentials` instead"
        );
        Box::pin(async move { Err(SecretError::permanent(message)) })
    }
}

/// Everything a role needs to act on one job.
pub struct Connected {
    /// The job spec.
    pub spec: JobSpec,
    /// The job's source, connected.
    pub source: Arc<dyn Source>,
    /// The job's destination bucket and prefix at OSS, connected.
    pub dest: Destination,
    /// A copier from `source` to `dest` with the job's copy options.
    pub copier: Copier,
}

/// Connects a job: resolves credentials and builds the source, the destination and a copier
/// recording uploads under the run's `uploads/`.
pub async fn connect(
    spec: JobSpec,
    run: &str,
    state: Arc<dyn StateStore>,
    secrets: Arc<dyn Secrets>,
) -> Result<Connected, RoleError> {
    let source = source_for(&spec, &secrets).await?;
    let client = destination_client(&spec, &secrets).await?;
    let dest = spec.destination.destination(client, spec.source.prefix());
    let ledger = Arc::new(StateLedger {
        state,
        job: spec.name.clone(),
        run: run.to_owned(),
    });
    let copier = Copier {
        source: source.clone(),
        dest: dest.clone(),
        options: spec.copy_options(),
        ledger,
        server_side: ServerSide::for_job(&spec),
    };
    Ok(Connected {
        spec,
        source,
        dest,
        copier,
    })
}

/// How far OSS's clock (the destination's) is from this machine's: `server - local`, or
/// `None` when it cannot be read (the run then goes on by the local clock, and any error
/// reaching the destination surfaces in the run itself). The `Date` header counts whole
/// seconds, so the answer is good to about a second.
pub async fn destination_clock_offset(
    spec: &JobSpec,
    secrets: &Arc<dyn Secrets>,
) -> Option<chrono::TimeDelta> {
    let client = destination_client(spec, secrets).await.ok()?;
    let asked = chrono::Utc::now();
    let server = client.server_time(&spec.destination.bucket).await.ok()?;
    let local = asked + (chrono::Utc::now() - asked) / 2;
    Some(server - local)
}

/// The destination's OSS client, reading its credentials again whenever OSS refuses them.
pub async fn destination_client(
    spec: &JobSpec,
    secrets: &Arc<dyn Secrets>,
) -> Result<crate::oss::OssClient, RoleError> {
    let fresh = FreshOssCredentials::new(
        "destination.credentials",
        &spec.destination.credentials,
        secrets,
    );
    let credentials = fresh.read().await?;
    spec.destination
        .client_refreshing(credentials, Some(Arc::new(fresh)))
        .map_err(|e| RoleError::config(e.to_string()))
}

/// The job's source, with its credentials resolved (from `secrets` when the job names one).
pub async fn source_for(
    spec: &JobSpec,
    secrets: &Arc<dyn Secrets>,
) -> Result<Arc<dyn Source>, RoleError> {
    match &spec.source {
        SourceSpec::S3(s3) => {
            let text = fetch(secrets.as_ref(), s3.credentials.secret_id()).await?;
            let creds = s3
                .credentials
                .resolve(text.as_deref())
                .map_err(|e| RoleError::config(format!("source.credentials: {e}")))?;
            // A key pair the job names (a secret, environment variables) is read again when
            // S3 refuses it; the SDK's own chains refresh themselves.
            let creds = match creds {
                S3Credentials::Static { .. } => {
                    S3Credentials::Refreshing(Refreshing::new(FreshS3Credentials {
                        reference: s3.credentials.clone(),
                        secrets: secrets.clone(),
                    }))
                }
                other => other,
            };
            let source = S3Source::new(s3.config(creds))
                .await
                .map_err(|e| RoleError::config(format!("source: {e}")))?;
            Ok(Arc::new(source))
        }
        SourceSpec::Oss(oss) => {
            let fresh = FreshOssCredentials::new("source.credentials", &oss.credentials, secrets);
            let creds = fresh.read().await?;
            let client = oss
                .client_refreshing(creds, Some(Arc::new(fresh)))
                .map_err(|e| RoleError::config(e.to_string()))?;
            Ok(Arc::new(OssSource::new(client, &oss.bucket, &oss.prefix)))
        }
    }
}

/// OSS credentials as the job names them, read again whenever OSS refuses the ones a client
/// holds: a secret rotated mid-run (or an STS token renewed into it) takes effect without a
/// failed object or a restarted run.
struct FreshOssCredentials {
    field: &'static str,
    reference: OssCredentialsRef,
    secrets: Arc<dyn Secrets>,
}

impl FreshOssCredentials {
    fn new(field: &'static str, reference: &OssCredentialsRef, secrets: &Arc<dyn Secrets>) -> Self {
        FreshOssCredentials {
            field,
            reference: reference.clone(),
            secrets: secrets.clone(),
        }
    }

    async fn read(&self) -> Result<Credentials, SecretError> {
        let text = fetch(self.secrets.as_ref(), self.reference.secret_id()).await?;
        self.reference
            .resolve(text.as_deref())
            .map_err(|e| SecretError::permanent(format!("{}: {e}", self.field)))
    }
}

impl RefreshCredentials for FreshOssCredentials {
    fn refresh(&self) -> crate::oss::RefreshFut<'_> {
        Box::pin(self.read())
    }
}

/// S3 credentials as the job names them, read again by the S3 source when S3 refuses the ones
/// it holds (see [`Refreshing`]).
struct FreshS3Credentials {
    reference: S3CredentialsRef,
    secrets: Arc<dyn Secrets>,
}

impl ReadCredentials for FreshS3Credentials {
    fn read(&self) -> ReadFut {
        let (reference, secrets) = (self.reference.clone(), self.secrets.clone());
        Box::pin(async move {
            let text = fetch(secrets.as_ref(), reference.secret_id()).await?;
            match reference.resolve(text.as_deref()) {
                Ok(S3Credentials::Static {
                    access_key_id,
                    secret_access_key,
                    session_token,
                }) => Ok(aws_sdk_s3::config::Credentials::new(
                    access_key_id,
                    secret_access_key.expose(),
                    session_token.map(|t| t.expose().to_owned()),
                    None,
                    "ferry-job-credentials",
                )),
                Ok(_) => Err(SecretError::permanent(
                    "source.credentials no longer name a key pair",
                )),
                Err(e) => Err(SecretError::permanent(format!("source.credentials: {e}"))),
            }
        })
    }
}

/// The text of the secret `id` names, or `None` when the credentials name no secret.
async fn fetch(secrets: &dyn Secrets, id: Option<&str>) -> Result<Option<String>, SecretError> {
    match id {
        None => Ok(None),
        Some(id) => secrets.fetch(id).await.map(Some),
    }
}

/// Multipart upload records in the state store, so a task retried on another worker resumes
/// the upload a previous one started.
struct StateLedger {
    state: Arc<dyn StateStore>,
    job: String,
    run: String,
}

type LedgerFut<'a, T> = Pin<Box<dyn Future<Output = Result<T, StateError>> + Send + 'a>>;

impl UploadLedger for StateLedger {
    fn get<'a>(&'a self, bucket: &'a str, key: &'a str) -> LedgerFut<'a, Option<UploadRecord>> {
        Box::pin(async move {
            let path = layout::upload(&self.job, &self.run, bucket, key);
            match self.state.get(&path).await? {
                None => Ok(None),
                // `null` is the tombstone of a completed upload.
                Some(v) => serde_json::from_slice::<Option<UploadRecord>>(&v.body).map_err(|e| {
                    StateError::new(
                        StateErrorKind::Permanent,
                        self.state.describe(),
                        format!("upload record {path} is not one: {e}"),
                    )
                }),
            }
        })
    }

    fn put<'a>(&'a self, record: &'a UploadRecord) -> LedgerFut<'a, ()> {
        Box::pin(async move {
            let path = layout::upload(&self.job, &self.run, &record.bucket, &record.key);
            let body = serde_json::to_vec(record).expect("an upload record serialises");
            self.state.put(&path, Bytes::from(body)).await.map(|_| ())
        })
    }

    fn remove<'a>(&'a self, bucket: &'a str, key: &'a str) -> LedgerFut<'a, ()> {
        // The state store has no delete (nothing ferry keeps is ever removed mid-run); a
        // tombstone says the upload completed.
        Box::pin(async move {
            let path = layout::upload(&self.job, &self.run, bucket, key);
            self.state
                .put(&path, Bytes::from_static(b"null"))
                .await
                .map(|_| ())
        })
    }

    fn prove_part<'a>(
        &'a self,
        record: &'a UploadRecord,
        number: u32,
        crc64: u64,
    ) -> LedgerFut<'a, ()> {
        Box::pin(async move {
            let path = format!("{}{number}.{crc64:016x}.json", self.proofs_of(record));
            self.state
                .put(&path, Bytes::from_static(b"{}"))
                .await
                .map(|_| ())
        })
    }

    fn proven_parts<'a>(&'a self, record: &'a UploadRecord) -> LedgerFut<'a, HashMap<u32, u64>> {
        Box::pin(async move {
            let dir = self.proofs_of(record);
            let keys = self.state.list(&dir).await?;
            Ok(keys
                .iter()
                .filter_map(|k| parse_proof(k.strip_prefix(&dir)?))
                .collect())
        })
    }
}

impl StateLedger {
    fn proofs_of(&self, record: &UploadRecord) -> String {
        layout::upload_proofs(
            &self.job,
            &self.run,
            &record.bucket,
            &record.key,
            &record.upload_id,
        )
    }
}

/// `<number>.<crc64 hex>.json` → (number, crc64).
fn parse_proof(name: &str) -> Option<(u32, u64)> {
    let (number, rest) = name.strip_suffix(".json")?.split_once('.')?;
    Some((number.parse().ok()?, u64::from_str_radix(rest, 16).ok()?))
}

/// Secrets held in memory, by id (the demo, tests, callers that fetched them already).
pub struct StaticSecrets(pub std::collections::HashMap<String, crate::secret::Secret>);

impl Secrets for StaticSecrets {
    fn fetch<'a>(&'a self, id: &'a str) -> SecretFut<'a> {
        let found = self.0.get(id).map(|s| s.expose().to_owned());
        Box::pin(async move {
            found.ok_or_else(|| SecretError::permanent(format!("no secret named {id:?}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn part_proofs_are_kept_per_upload_and_read_back_from_one_listing() {
        let dir = tempfile::tempdir().unwrap();
        let state: Arc<dyn StateStore> =
            Arc::new(crate::state::local::LocalStore::open(dir.path()).unwrap());
        let ledger = StateLedger {
            state,
            job: "j".into(),
            run: "r".into(),
        };
        let record = |upload_id: &str| UploadRecord {
            bucket: "b".into(),
            key: "k".into(),
            upload_id: upload_id.into(),
            part_size: 8,
            size: 80,
            source_etag: None,
        };
        let (one, twin) = (record("u1"), record("u2"));
        ledger.prove_part(&one, 1, u64::MAX).await.unwrap();
        ledger.prove_part(&one, 10, 7).await.unwrap();
        ledger.prove_part(&twin, 1, 3).await.unwrap();
        let proven = ledger.proven_parts(&one).await.unwrap();
        assert_eq!(proven, HashMap::from([(1, u64::MAX), (10, 7)]));
        assert_eq!(
            ledger.proven_parts(&twin).await.unwrap(),
            HashMap::from([(1, 3)])
        );
        assert!(ledger.proven_parts(&record("u3")).await.unwrap().is_empty());
    }
}
