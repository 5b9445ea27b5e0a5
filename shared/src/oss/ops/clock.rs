//! OSS's clock, read from the `Date` header of a cheap signed request.
//!
//! A run's start time decides which objects an incremental run copies (the source's
//! Last-Modified times are the servers' clocks) and which destination objects a redelivered
//! task recognises as its own (OSS's Last-Modified). A machine whose clock is off by more
//! than the incremental overlap would otherwise skip objects written between two runs; see
//! `deploy::connect::destination_clock_offset`.

use chrono::{DateTime, Utc};
use reqwest::Method;

use crate::oss::client::{OssClient, Request};
use crate::oss::error::Error;

impl OssClient {
    /// OSS's time now (whole seconds), from the `Date` header of a one-key listing of
    /// `bucket`. A request refused as too skewed teaches the client the offset first (see
    /// [`OssClient::clock_offset`]), so this works however far off the local clock is.
    pub async fn server_time(&self, bucket: &str) -> Result<DateTime<Utc>, Error> {
        let req = Request::new("ListObjectsV2", Method::GET)
            .bucket(bucket)
            .query("list-type", "2")
            .query("max-keys", "1");
        self.execute(req, |sent| async move {
            sent.header("date")
                .and_then(|d| DateTime::parse_from_rfc2822(d.trim()).ok())
                .map(|d| d.with_timezone(&Utc))
                .ok_or_else(|| sent.invalid("the answer has no readable Date header"))
        })
        .await
    }
}
