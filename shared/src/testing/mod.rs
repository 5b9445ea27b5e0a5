//! Conformance suites for the ports (docs/architecture.md §1), behind the `testing` feature.
//!
//! Each suite states, as code, what the pipeline relies on from every adapter of one port, and
//! panics with the broken rule's message. ferry's own tests run each against every adapter it
//! ships (see the table in docs/architecture.md §1); an adapter someone adds runs the same
//! suite. Every suite is bounded in time and needs only the adapter and an empty place to work.
//!
//! Beside the suites are the fixtures ferry's tests share, so none writes its own: [`data`]
//! (reproducible object bytes), [`watched::Watched`] (a source that forwards to a real one and
//! watches it) and [`s3_config`].

pub mod data;
pub mod destination;
pub mod queue;
pub mod source;
pub mod state;
pub mod watched;

use crate::secret::Secret;
use crate::source::s3::{S3Credentials, S3SourceConfig};

/// The S3 source's settings for a store on this machine (moto, the OSS emulator's S3 dialect,
/// a proxy in front of either): path-style addressing, plain HTTP, a static key pair. Callers
/// change what their case needs (attempts, tags) on the result.
pub fn s3_config(
    endpoint: impl Into<String>,
    region: &str,
    bucket: &str,
    access_key_id: &str,
    secret_access_key: &str,
) -> S3SourceConfig {
    let mut config = S3SourceConfig::new(bucket);
    config.endpoint = Some(endpoint.into());
    config.region = Some(region.to_owned());
    config.path_style = true;
    config.allow_http = true;
    config.credentials = S3Credentials::Static {
        access_key_id: access_key_id.to_owned(),
        secret_access_key: Secret::new(secret_access_key),
        session_token: None,
    };
    config
}
