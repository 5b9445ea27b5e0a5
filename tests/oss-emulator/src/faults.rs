//! Fault injection: make chosen operations fail, slow down, drop the connection or cut the
//! response short, so clients' retry and resume logic can be tested against a real server.
//!
//! A [`FaultRule`] matches an operation name (or `*`), optionally a bucket and a key prefix,
//! fires with probability `rate` (drawn from a seeded RNG, so a test that sends the same
//! requests in the same order sees the same faults), and optionally only `count` times.
//! Kinds:
//! * `error` — answer with `status` (default code `InternalError` for 500, `ServiceUnavailable`
//!   for 503) and an OSS/S3 error body; `qos_delay_ms` adds `x-oss-qos-delay-time`.
//!   With `phase: after` the operation runs first and its response is replaced — the
//!   "it happened but the client never heard" case.
//! * `latency` — wait `latency_ms` before handling the request.
//! * `reset` — close the connection without a response (`phase` as for errors).
//! * `truncate` — send the full `Content-Length` but only `after_bytes` of the body (default:
//!   half), then close the connection.
//! * `corrupt` — the request body is stored with its first byte flipped, and the answer
//!   describes the stored bytes (their CRC-64 and ETag), as if corrupted on the way in.
//! * `listing` — a ListObjects answer that breaks the listing contract, as some stores do
//!   (`listing`: [`ListingQuirk`]): keys out of order, `start-after` ignored, or a key that is
//!   not UTF-8.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    Error,
    Latency,
    Reset,
    Truncate,
    Corrupt,
    Listing,
}

/// How a `listing` fault bends a ListObjects answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ListingQuirk {
    /// The page's keys in reverse order.
    Unsorted,
    /// `start-after`, `marker` and the continuation token are ignored: every page is the first
    /// (a client that trusts the token pages for ever).
    IgnoreStartAfter,
    /// One more entry whose key is this text as it stands in the XML: with `encoding-type=url`
    /// it can stand for bytes that are not UTF-8 (`bad-%FF`). It has the page's first object's
    /// size and dates.
    ExtraKey(String),
}

/// When an `error` or `reset` fault acts: before the operation runs (nothing changes) or after
/// (the change is made, the response is lost).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultPhase {
    #[default]
    Before,
    After,
}

/// One fault to inject. The JSON form (admin API) uses these field names; `kind` may be left
/// out when `status` (→ error) or `latency_ms` (→ latency) makes it clear.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Operation name (`PutObject`, `UploadPart`, …) or `*` for all.
    #[serde(default = "any_op")]
    pub op: String,
    #[serde(default)]
    pub kind: Option<FaultKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos_delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_bytes: Option<u64>,
    /// Probability in [0, 1] that a matching request gets the fault.
    #[serde(default = "always")]
    pub rate: f64,
    /// Fire at most this many times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    #[serde(default)]
    pub phase: FaultPhase,
    /// What a `listing` fault does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing: Option<ListingQuirk>,
}

fn any_op() -> String {
    "*".to_owned()
}

fn always() -> f64 {
    1.0
}

/// A fault rule that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("invalid fault rule: {0}")]
pub struct FaultError(pub String);

impl FaultRule {
    fn base(op: &str, kind: FaultKind) -> FaultRule {
        FaultRule {
            op: op.to_owned(),
            kind: Some(kind),
            status: None,
            code: None,
            message: None,
            qos_delay_ms: None,
            latency_ms: None,
            after_bytes: None,
            rate: 1.0,
            count: None,
            bucket: None,
            key_prefix: None,
            phase: FaultPhase::Before,
            listing: None,
        }
    }

    /// A ListObjects / ListObjectsV2 answer bent by `quirk` (use the op names to pick which).
    pub fn listing(op: &str, quirk: ListingQuirk) -> FaultRule {
        FaultRule {
            listing: Some(quirk),
            ..FaultRule::base(op, FaultKind::Listing)
        }
    }

    /// Answer `op` with an error status (500, 503, …).
    pub fn error(op: &str, status: u16) -> FaultRule {
        FaultRule {
            status: Some(status),
            ..FaultRule::base(op, FaultKind::Error)
        }
    }

    /// Delay `op`.
    pub fn latency(op: &str, delay: Duration) -> FaultRule {
        FaultRule {
            latency_ms: Some(delay.as_millis() as u64),
            ..FaultRule::base(op, FaultKind::Latency)
        }
    }

    /// Close the connection without answering `op`.
    pub fn reset(op: &str) -> FaultRule {
        FaultRule::base(op, FaultKind::Reset)
    }

    /// The request body of `op` is stored with its first byte flipped.
    pub fn corrupt(op: &str) -> FaultRule {
        FaultRule::base(op, FaultKind::Corrupt)
    }

    /// Cut `op`'s response body short.
    pub fn truncate(op: &str) -> FaultRule {
        FaultRule::base(op, FaultKind::Truncate)
    }

    pub fn rate(mut self, rate: f64) -> Self {
        self.rate = rate;
        self
    }

    pub fn count(mut self, n: u64) -> Self {
        self.count = Some(n);
        self
    }

    pub fn bucket(mut self, bucket: &str) -> Self {
        self.bucket = Some(bucket.to_owned());
        self
    }

    pub fn key_prefix(mut self, prefix: &str) -> Self {
        self.key_prefix = Some(prefix.to_owned());
        self
    }

    pub fn code(mut self, code: &str) -> Self {
        self.code = Some(code.to_owned());
        self
    }

    pub fn qos_delay(mut self, d: Duration) -> Self {
        self.qos_delay_ms = Some(d.as_millis() as u64);
        self
    }

    pub fn after_bytes(mut self, n: u64) -> Self {
        self.after_bytes = Some(n);
        self
    }

    /// Act after the operation ran (its effect stays, its response is lost).
    pub fn after_response(mut self) -> Self {
        self.phase = FaultPhase::After;
        self
    }

    /// The kind, inferred from the fields when not given.
    pub fn resolved_kind(&self) -> Option<FaultKind> {
        self.kind.or(if self.status.is_some() {
            Some(FaultKind::Error)
        } else if self.latency_ms.is_some() {
            Some(FaultKind::Latency)
        } else {
            None
        })
    }

    /// Checks the rule and fills in the inferred kind.
    pub fn validate(&mut self) -> Result<(), FaultError> {
        let kind = self.resolved_kind().ok_or_else(|| {
            FaultError(
                "set kind (error, latency, reset, truncate, corrupt, listing), or status for an error, or latency_ms"
                    .into(),
            )
        })?;
        self.kind = Some(kind);
        if !(0.0..=1.0).contains(&self.rate) || self.rate.is_nan() {
            return Err(FaultError(format!(
                "rate {} must be between 0 and 1",
                self.rate
            )));
        }
        if self.op.is_empty() {
            return Err(FaultError("op must be an operation name or *".into()));
        }
        match kind {
            FaultKind::Error => match self.status {
                Some(s) if (400..=599).contains(&s) => {}
                Some(s) => {
                    return Err(FaultError(format!(
                        "status {s} must be between 400 and 599"
                    )));
                }
                None => {
                    return Err(FaultError(
                        "an error fault needs status (e.g. 500 or 503)".into(),
                    ));
                }
            },
            FaultKind::Latency if self.latency_ms.is_none() => {
                return Err(FaultError("a latency fault needs latency_ms".into()));
            }
            FaultKind::Listing if self.listing.is_none() => {
                return Err(FaultError(
                    "a listing fault needs listing (unsorted, ignore-start-after or {\"extra-key\": \"...\"})".into(),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    fn matches(&self, op: &str, bucket: Option<&str>, key: Option<&str>) -> bool {
        (self.op == "*" || self.op.eq_ignore_ascii_case(op))
            && self.bucket.as_deref().is_none_or(|b| Some(b) == bucket)
            && self
                .key_prefix
                .as_deref()
                .is_none_or(|p| key.is_some_and(|k| k.starts_with(p)))
    }

    fn to_api_error(&self, op: &str) -> ApiError {
        let status = self.status.unwrap_or(500);
        let code = self
            .code
            .clone()
            .unwrap_or_else(|| default_code(status).to_owned());
        let message = self.message.clone().unwrap_or_else(|| {
            format!("Injected fault: {op} answered {status} by the emulator's fault rules.")
        });
        let mut err = ApiError::new(status, &code, message);
        if let Some(ms) = self.qos_delay_ms {
            err = err.header("x-oss-qos-delay-time", ms.to_string());
        }
        err
    }
}

fn default_code(status: u16) -> &'static str {
    match status {
        500 => "InternalError",
        503 => "ServiceUnavailable",
        429 => "TooManyRequests",
        408 => "RequestTimeout",
        _ => "InjectedFault",
    }
}

/// Parses the command-line form: `op=PutObject,status=503,rate=0.05[,count=3][,kind=reset]…`.
/// Keys: op, kind, status, code, message, qos-delay-ms, latency-ms, after-bytes, rate, count,
/// bucket, key-prefix, phase (before|after).
impl FromStr for FaultRule {
    type Err = FaultError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut rule = FaultRule {
            kind: None,
            ..FaultRule::base("*", FaultKind::Error)
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| FaultError(format!("'{part}' is not key=value")))?;
            let num = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| FaultError(format!("{k}={v}: expected a number")))
            };
            match k.trim().replace('_', "-").as_str() {
                "op" => rule.op = v.to_owned(),
                "kind" => {
                    rule.kind = Some(
                        serde_json::from_value(serde_json::Value::String(v.to_ascii_lowercase()))
                            .map_err(|_| {
                            FaultError(format!(
                                "kind={v}: expected error, latency, reset, truncate, corrupt or listing"
                            ))
                        })?,
                    )
                }
                "status" => rule.status = Some(num(v)? as u16),
                "code" => rule.code = Some(v.to_owned()),
                "message" => rule.message = Some(v.to_owned()),
                "qos-delay-ms" => rule.qos_delay_ms = Some(num(v)?),
                "latency-ms" => rule.latency_ms = Some(num(v)?),
                "after-bytes" => rule.after_bytes = Some(num(v)?),
                "rate" => {
                    rule.rate = v
                        .parse()
                        .map_err(|_| FaultError(format!("rate={v}: expected a number")))?
                }
                "count" => rule.count = Some(num(v)?),
                "bucket" => rule.bucket = Some(v.to_owned()),
                "key-prefix" => rule.key_prefix = Some(v.to_owned()),
                "listing" => {
                    rule.listing = Some(match v.split_once(':') {
                        Some(("extra-key", key)) => ListingQuirk::ExtraKey(key.to_owned()),
                        _ => serde_json::from_value(serde_json::Value::String(v.to_owned()))
                            .map_err(|_| {
                                FaultError(format!(
                                    "listing={v}: expected unsorted, ignore-start-after or extra-key:KEY"
                                ))
                            })?,
                    })
                }
                "phase" => {
                    rule.phase = match v {
                        "before" => FaultPhase::Before,
                        "after" => FaultPhase::After,
                        _ => {
                            return Err(FaultError(format!("phase={v}: expected before or after")));
                        }
                    }
                }
                other => return Err(FaultError(format!("unknown key '{other}'"))),
            }
        }
        rule.validate()?;
        Ok(rule)
    }
}

/// A rule as listed by the admin API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultEntry {
    pub id: u64,
    pub rule: FaultRule,
    /// How often it fired so far.
    pub fired: u64,
}

/// What an injected error or reset does.
#[derive(Clone, Debug)]
pub enum Action {
    Error(ApiError),
    Reset,
}

/// The faults that apply to one request.
#[derive(Debug, Default)]
pub struct Plan {
    pub latency: Duration,
    pub before: Option<Action>,
    pub after: Option<Action>,
    /// `Some(None)`: truncate at half the body; `Some(Some(n))`: after n bytes.
    pub truncate: Option<Option<u64>>,
    pub listing: Option<ListingQuirk>,
    /// Store the request body with its first byte flipped.
    pub corrupt: bool,
    /// How many rules fired.
    pub fired: u64,
}

struct Inner {
    rules: Vec<FaultEntry>,
    next_id: u64,
    seed: u64,
    rng: fastrand::Rng,
}

/// The active fault rules.
pub struct Faults {
    inner: Mutex<Inner>,
}

impl Faults {
    pub fn new(seed: u64) -> Faults {
        Faults {
            inner: Mutex::new(Inner {
                rules: Vec::new(),
                next_id: 1,
                seed,
                rng: fastrand::Rng::with_seed(seed),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a rule; returns its id.
    pub fn add(&self, mut rule: FaultRule) -> Result<u64, FaultError> {
        rule.validate()?;
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.rules.push(FaultEntry { id, rule, fired: 0 });
        Ok(id)
    }

    pub fn remove(&self, id: u64) -> bool {
        let mut inner = self.lock();
        let before = inner.rules.len();
        inner.rules.retain(|e| e.id != id);
        inner.rules.len() != before
    }

    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    pub fn list(&self) -> Vec<FaultEntry> {
        self.lock().rules.clone()
    }

    pub fn seed(&self) -> u64 {
        self.lock().seed
    }

    /// Restarts the random sequence from `seed`.
    pub fn set_seed(&self, seed: u64) {
        let mut inner = self.lock();
        inner.seed = seed;
        inner.rng = fastrand::Rng::with_seed(seed);
    }

    /// Decides which faults hit a request.
    pub fn plan(&self, op: &str, bucket: Option<&str>, key: Option<&str>) -> Plan {
        let mut plan = Plan::default();
        let mut inner = self.lock();
        let Inner { rules, rng, .. } = &mut *inner;
        for entry in rules.iter_mut() {
            let rule = &entry.rule;
            if !rule.matches(op, bucket, key) || rule.count.is_some_and(|c| entry.fired >= c) {
                continue;
            }
            let kind = rule.resolved_kind().unwrap_or(FaultKind::Error);
            let terminal = matches!(kind, FaultKind::Error | FaultKind::Reset);
            let slot_taken = match rule.phase {
                FaultPhase::Before => plan.before.is_some(),
                FaultPhase::After => plan.after.is_some(),
            };
            if (terminal && slot_taken) || (kind == FaultKind::Truncate && plan.truncate.is_some())
            {
                continue;
            }
            if rule.rate < 1.0 && rng.f64() >= rule.rate {
                continue;
            }
            entry.fired += 1;
            plan.fired += 1;
            match kind {
                FaultKind::Latency => {
                    plan.latency += Duration::from_millis(rule.latency_ms.unwrap_or(0))
                }
                FaultKind::Truncate => plan.truncate = Some(rule.after_bytes),
                FaultKind::Listing => plan.listing = rule.listing.clone(),
                FaultKind::Corrupt => plan.corrupt = true,
                FaultKind::Error | FaultKind::Reset => {
                    let action = if kind == FaultKind::Reset {
                        Action::Reset
                    } else {
                        Action::Error(rule.to_api_error(op))
                    };
                    match rule.phase {
                        FaultPhase::Before => plan.before = Some(action),
                        FaultPhase::After => plan.after = Some(action),
                    }
                }
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_form() {
        let r: FaultRule = "op=PutObject,status=503,rate=0.05".parse().unwrap();
        assert_eq!(r.op, "PutObject");
        assert_eq!(r.kind, Some(FaultKind::Error));
        assert_eq!(r.status, Some(503));
        let r: FaultRule = "op=GetObject,kind=truncate,after-bytes=10,count=2"
            .parse()
            .unwrap();
        assert_eq!(
            (r.kind, r.after_bytes, r.count),
            (Some(FaultKind::Truncate), Some(10), Some(2))
        );
        assert!("op=PutObject".parse::<FaultRule>().is_err());
        assert!("status=200".parse::<FaultRule>().is_err());
        assert!("status=500,rate=2".parse::<FaultRule>().is_err());
        assert!("bogus=1,status=500".parse::<FaultRule>().is_err());
        let r: FaultRule = "op=ListObjectsV2,kind=listing,listing=extra-key:a%FF"
            .parse()
            .unwrap();
        assert_eq!(r.listing, Some(ListingQuirk::ExtraKey("a%FF".into())));
        let r: FaultRule = "kind=listing,listing=unsorted".parse().unwrap();
        assert_eq!(r.listing, Some(ListingQuirk::Unsorted));
        assert!(
            "op=ListObjectsV2,kind=listing"
                .parse::<FaultRule>()
                .is_err()
        );
    }

    #[test]
    fn count_limits_and_seeded_rate_are_reproducible() {
        let run = |seed| {
            let f = Faults::new(seed);
            f.add(FaultRule::error("PutObject", 503).rate(0.5)).unwrap();
            (0..64)
                .map(|_| f.plan("PutObject", Some("b"), Some("k")).before.is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        let hits = run(7).iter().filter(|h| **h).count();
        assert!((10..54).contains(&hits), "rate 0.5 fired {hits} of 64");

        let f = Faults::new(1);
        f.add(FaultRule::reset("*").count(2)).unwrap();
        let fired: Vec<bool> = (0..4)
            .map(|_| f.plan("GetObject", None, None).before.is_some())
            .collect();
        assert_eq!(fired, [true, true, false, false]);
    }

    #[test]
    fn filters_by_bucket_and_key_prefix() {
        let f = Faults::new(1);
        f.add(FaultRule::error("*", 500).bucket("b").key_prefix("x/"))
            .unwrap();
        assert!(f.plan("GetObject", Some("b"), Some("x/1")).before.is_some());
        assert!(f.plan("GetObject", Some("b"), Some("y/1")).before.is_none());
        assert!(f.plan("GetObject", Some("c"), Some("x/1")).before.is_none());
    }
}
