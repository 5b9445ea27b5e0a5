//! RestoreObject: makes an archived object (Archive, ColdArchive, DeepColdArchive) readable for
//! a number of days. The restore runs in the background; HeadObject's `x-oss-restore` tells when
//! it is done.

use reqwest::Method;

use crate::oss::client::{OssClient, Request};
use crate::oss::error::Error;
use crate::oss::xml;

/// How fast (and how expensively) a cold object is restored. Only ColdArchive and
/// DeepColdArchive take a tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreTier {
    /// Fastest and most expensive.
    Expedited,
    /// OSS's default speed.
    Standard,
    /// Slowest and cheapest.
    Bulk,
}

impl RestoreTier {
    fn as_str(self) -> &'static str {
        match self {
            RestoreTier::Expedited => "Expedited",
            RestoreTier::Standard => "Standard",
            RestoreTier::Bulk => "Bulk",
        }
    }
}

/// Options of RestoreObject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreOptions {
    /// How long the restored copy stays readable: 1–7 days for Archive, 1–365 for the cold
    /// classes.
    pub days: u32,
    /// `<JobParameters><Tier>`: how fast to restore (cold classes only); `None` for OSS's default.
    pub tier: Option<RestoreTier>,
    /// Restore this version (`versionId`); the current one when `None`.
    pub version_id: Option<String>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            days: 1,
            tier: None,
            version_id: None,
        }
    }
}

/// What became of a restore request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// A restore started (202).
    Started,
    /// The object was already restored; its expiry was extended (200).
    AlreadyRestored,
    /// A restore is already running (OSS's 409 `RestoreAlreadyInProgress`).
    InProgress,
}

impl OssClient {
    /// Requests a restore of an archived object.
    pub async fn restore_object(
        &self,
        bucket: &str,
        key: &str,
        options: &RestoreOptions,
    ) -> Result<RestoreOutcome, Error> {
        if !(1..=365).contains(&options.days) {
            return Err(Error::invalid_argument(
                "restore days",
                options.days.to_string(),
                "use 1 to 365",
            ));
        }
        let doc = xml::RestoreRequestXml {
            days: options.days,
            job_parameters: options.tier.map(|t| xml::JobParametersXml {
                tier: t.as_str().to_owned(),
            }),
        };
        let req = Request::new("RestoreObject", Method::POST)
            .object(bucket, key)
            .query("restore", "")
            .query_opt("versionId", options.version_id.clone())
            .xml_body(xml::render("RestoreRequest", &doc)?);
        let result = self
            .execute(req, |sent| async move {
                Ok(if sent.response.status().as_u16() == 202 {
                    RestoreOutcome::Started
                } else {
                    RestoreOutcome::AlreadyRestored
                })
            })
            .await;
        match result {
            Err(e) if e.code() == Some("RestoreAlreadyInProgress") => {
                Ok(RestoreOutcome::InProgress)
            }
            other => other,
        }
    }
}
