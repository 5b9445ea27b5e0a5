//! The figures an estimate is computed from: prices, per-function throughput and the services'
//! request-rate limits. One table ships with ferry (`table.json` beside this file); a user's
//! file overrides any subset of it (`ferry estimate --prices FILE`), and a field that is not in
//! the table is refused by name rather than silently ignored.

use serde::{Deserialize, Serialize};

/// The table that ships with ferry.
const SHIPPED: &str = include_str!("table.json");

/// Prices, throughput and limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// Where the prices come from and when; printed with every estimate.
    pub as_of: String,
    /// The currency of every price.
    pub currency: String,
    /// Prices per request, second and byte.
    pub prices: Prices,
    /// What one function moves per second.
    pub throughput: Throughput,
    /// Limits of the services.
    pub limits: Limits,
}

/// List prices. A price left `null` is unknown: the estimate counts the quantity and says it
/// is not priced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// Lambda compute, per GB-second.
    pub lambda_gb_second: f64,
    /// Lambda invocations, per million.
    pub lambda_per_million_requests: f64,
    /// S3 PUT, COPY, POST and LIST requests.
    pub s3_put_list_per_1000: f64,
    /// S3 GET, HEAD and all other requests.
    pub s3_get_head_per_1000: f64,
    /// S3 data transfer out to the internet, by monthly volume.
    pub s3_egress_tiers: Vec<Tier>,
    /// SQS requests (standard queues, each 64 KiB a request), per million.
    pub sqs_per_million_requests: f64,
    /// OSS PUT-type requests (PutObject, multipart, CopyObject).
    pub oss_put_per_10000: f64,
    /// OSS GET-type requests (GetObject, HeadObject, listings).
    pub oss_get_per_10000: f64,
    /// Reading an OSS source over its public endpoint (internal endpoints and server-side
    /// copies are free).
    pub oss_egress_per_gib: f64,
    /// OSS Standard storage.
    pub oss_storage_per_gib_month: f64,
    /// Reading an S3-compatible store other than Amazon S3 (R2, MinIO, COS, …): each has its
    /// own, so unknown unless given.
    pub other_egress_per_gib: Option<f64>,
}

/// One band of a tiered price: volume up to `up_to_tib` (the last band has none) at `per_gib`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// The top of this band in TiB per month; none for the last band.
    pub up_to_tib: Option<f64>,
    /// The price per GiB in this band.
    pub per_gib: f64,
}

/// What one transfer function (or one `ferry run` process) moves per second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Throughput {
    /// Where the figures come from.
    pub note: String,
    /// Objects (and parts) one function copies per second when they are tiny: the
    /// per-request cost, latency bound.
    pub small_objects_per_second: f64,
    /// MiB one function moves per second when objects are large: the bandwidth bound. An
    /// object costs `1 / small_objects_per_second + MiB / mib_per_second` seconds.
    pub mib_per_second: f64,
    /// Objects one verifier function checks per second (one HEAD each).
    pub verifier_objects_per_second: f64,
    /// Listing pages (1,000 keys) one function reads per second.
    pub listing_pages_per_second: f64,
}

/// Request-rate limits no number of functions can pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// OSS serves about this many requests per second on one bucket.
    pub oss_requests_per_second_per_bucket: f64,
    /// S3 serves about this many GET/HEAD per second per partitioned prefix.
    pub s3_get_per_second_per_prefix: f64,
    /// Lambda's default concurrency quota per account and region.
    pub lambda_concurrency_per_account: u32,
    /// Receives per second each idle queue costs while its event source mapping long-polls
    /// (five pollers, one 20 s poll each).
    pub sqs_receive_polls_per_queue_per_second: f64,
}

/// Why a table could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TableError(String);

impl Table {
    /// The table that ships with ferry.
    pub fn shipped() -> Table {
        serde_json::from_str(SHIPPED).expect("the shipped table is valid")
    }

    /// The shipped table with `overrides` (JSON, any subset of the same fields) laid over it.
    /// `source` names the overrides in errors (a file name).
    pub fn with_overrides(overrides: &str, source: &str) -> Result<Table, TableError> {
        let mut table: serde_json::Value = serde_json::from_str(SHIPPED).expect("valid JSON");
        let patch: serde_json::Value = serde_json::from_str(overrides)
            .map_err(|e| TableError(format!("{source} is not JSON: {e}")))?;
        if !patch.is_object() {
            return Err(TableError(format!(
                "{source} must be a JSON object with any of \"prices\", \"throughput\", \"limits\", \"as_of\", \"currency\""
            )));
        }
        overlay(&mut table, patch);
        let table: Table = serde_path_to_error::deserialize(table).map_err(|e| {
            TableError(format!(
                "{source}: `{}`: {}; see `ferry estimate --show-table` for the fields and their units",
                e.path(),
                e.inner()
            ))
        })?;
        table
            .check()
            .map_err(|e| TableError(format!("{source}: {e}")))?;
        Ok(table)
    }

    /// Rates must be positive, or every time would be infinite.
    fn check(&self) -> Result<(), String> {
        let t = &self.throughput;
        let rates = [
            (
                "throughput.small_objects_per_second",
                t.small_objects_per_second,
            ),
            ("throughput.mib_per_second", t.mib_per_second),
            (
                "throughput.verifier_objects_per_second",
                t.verifier_objects_per_second,
            ),
            (
                "throughput.listing_pages_per_second",
                t.listing_pages_per_second,
            ),
            (
                "limits.oss_requests_per_second_per_bucket",
                self.limits.oss_requests_per_second_per_bucket,
            ),
            (
                "limits.s3_get_per_second_per_prefix",
                self.limits.s3_get_per_second_per_prefix,
            ),
        ];
        for (field, value) in rates {
            if !(value > 0.0 && value.is_finite()) {
                return Err(format!("`{field}` is {value}; it must be a number above 0"));
            }
        }
        Ok(())
    }
}

/// Lays `patch` over `base`: objects merge field by field, anything else replaces.
fn overlay(base: &mut serde_json::Value, patch: serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                overlay(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

/// The price of `gib` under tiered bands (each band priced at its own rate).
pub fn tiered(tiers: &[Tier], gib: f64) -> f64 {
    let mut cost = 0.0;
    let mut below = 0.0;
    for tier in tiers {
        let top = tier.up_to_tib.map_or(f64::INFINITY, |t| t * 1024.0);
        if gib <= below {
            break;
        }
        cost += (gib.min(top) - below) * tier.per_gib;
        below = top;
    }
    cost
}
