//! Time helpers: stored times are Unix milliseconds; the wire uses RFC 1123, ISO 8601 and the
//! compact V4 form. There is no "now" here on purpose: each emulator instance has its own clock
//! ([`crate::state::State::now`], real time plus the instance's offset).

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// RFC 1123 (`Wed, 28 Dec 2022 10:27:41 GMT`).
pub fn http_date(ms: i64) -> String {
    ferry::oss::sign::http_date(from_millis(ms))
}

/// Parses an RFC 1123 / RFC 2822 date.
pub fn parse_http_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Parses the compact `YYYYMMDDTHHMMSSZ` form used by V4 signatures.
pub fn parse_compact(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|n| n.and_utc())
}
