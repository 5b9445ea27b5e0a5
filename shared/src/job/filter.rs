//! Which source objects a job covers: key globs, a modification-time window and a size window.
//!
//! An object is in scope when its key matches at least one `include` pattern (or there are
//! none), matches no `exclude` pattern, was last modified at or after `modified_since` and
//! before `modified_before`, and its size lies within `min_size..=max_size`. An object whose
//! listing carries no modification time is kept: leaving it out silently would lose it.
//! Objects out of scope are not part of the run at all (they are not reported as skipped).

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;

use super::glob::Glob;
use super::size::ByteSize;
use crate::source::ObjectInfo;

/// Which source objects the job covers. Every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    /// Copy only keys matching at least one of these globs (all keys when empty). Patterns
    /// match the whole key, source prefix included (rclone's `*.jpg` is `**/*.jpg` here):
    /// `*` stays within one `/`-separated segment, `**` (a segment of its own) spans segments,
    /// `?` is one character, `[0-9]` / `[!a-z]` one character of / outside a class, `{a,b}`
    /// either alternative, `\` escapes. Example: `["**/*.{jpg,png}"]`.
    #[serde(default)]
    pub include: Vec<Glob>,
    /// Leave out keys matching any of these globs, even when included. Example:
    /// `["tmp/**", "**/*.part"]`.
    #[serde(default)]
    pub exclude: Vec<Glob>,
    /// Copy only objects last modified at or after this time (RFC 3339,
    /// `2024-01-01T00:00:00Z`), like OssImport's `importSince`.
    #[serde(default)]
    pub modified_since: Option<Timestamp>,
    /// Copy only objects last modified strictly before this time (RFC 3339).
    #[serde(default)]
    pub modified_before: Option<Timestamp>,
    /// Copy only objects of at least this size: bytes, or `"10MiB"`, `"1.5GB"`.
    #[serde(default)]
    pub min_size: Option<ByteSize>,
    /// Copy only objects of at most this size: bytes, or `"10MiB"`, `"1.5GB"`.
    #[serde(default)]
    pub max_size: Option<ByteSize>,
}

impl Filters {
    /// Whether the job covers this object.
    pub fn matches(&self, object: &ObjectInfo) -> bool {
        self.key_matches(&object.key)
            && self.time_matches(object.last_modified)
            && self.size_matches(object.size)
    }

    /// The key conditions alone (include / exclude).
    pub fn key_matches(&self, key: &str) -> bool {
        let included = self.include.is_empty() || self.include.iter().any(|g| g.matches(key));
        included && !self.exclude.iter().any(|g| g.matches(key))
    }

    fn time_matches(&self, modified: Option<DateTime<Utc>>) -> bool {
        let Some(t) = modified else {
            return true;
        };
        self.modified_since.is_none_or(|since| t >= since.0)
            && self.modified_before.is_none_or(|before| t < before.0)
    }

    fn size_matches(&self, size: u64) -> bool {
        self.min_size.is_none_or(|min| size >= min.0)
            && self.max_size.is_none_or(|max| size <= max.0)
    }

    /// Whether every object is in scope.
    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }
}

/// Why a time could not be read: the text, the parser's reason, and what to write.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{text:?} is not an RFC 3339 time ({cause}); fix: write a date, time and zone, e.g. \
     \"2024-01-31T00:00:00Z\" or \"2024-01-31T08:00:00+08:00\""
)]
pub struct TimestampError {
    /// The text as written.
    pub text: String,
    /// Why it could not be read.
    #[source]
    pub cause: chrono::ParseError,
}

/// A point in time, written in RFC 3339 (`2024-01-31T12:00:00Z`, `2024-01-31T20:00:00+08:00`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// Reads an RFC 3339 time; the error quotes the text and shows how to write it.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        DateTime::parse_from_rfc3339(text.trim())
            .map(|t| Timestamp(t.with_timezone(&Utc)))
            .map_err(|cause| TimestampError {
                text: text.to_owned(),
                cause,
            })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An RFC 3339 date-time with a zone, e.g. 2024-01-31T00:00:00Z.",
            "type": "string",
            "format": "date-time"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str, size: u64, modified: &str) -> ObjectInfo {
        ObjectInfo {
            key: key.to_owned(),
            size,
            etag: None,
            last_modified: Some(Timestamp::parse(modified).unwrap().0),
            storage_class: None,
            archive: Default::default(),
        }
    }

    #[test]
    fn every_condition_must_hold() {
        let filters = Filters {
            include: vec![Glob::new("**/*.jpg").unwrap()],
            exclude: vec![Glob::new("tmp/**").unwrap()],
            modified_since: Some(Timestamp::parse("2024-01-01T00:00:00Z").unwrap()),
            modified_before: Some(Timestamp::parse("2024-07-01T00:00:00Z").unwrap()),
            min_size: Some(ByteSize(10)),
            max_size: Some(ByteSize(100)),
        };
        assert!(filters.matches(&object("a/b.jpg", 50, "2024-03-01T00:00:00Z")));
        assert!(filters.matches(&object("b.jpg", 10, "2024-01-01T00:00:00Z")));
        assert!(filters.matches(&object("b.jpg", 100, "2024-06-30T23:59:59Z")));
        assert!(!filters.matches(&object("a/b.png", 50, "2024-03-01T00:00:00Z")));
        assert!(!filters.matches(&object("tmp/b.jpg", 50, "2024-03-01T00:00:00Z")));
        assert!(!filters.matches(&object("b.jpg", 9, "2024-03-01T00:00:00Z")));
        assert!(!filters.matches(&object("b.jpg", 101, "2024-03-01T00:00:00Z")));
        assert!(!filters.matches(&object("b.jpg", 50, "2023-12-31T23:59:59Z")));
        assert!(!filters.matches(&object("b.jpg", 50, "2024-07-01T00:00:00Z")));
        let mut unknown_time = object("b.jpg", 50, "2024-03-01T00:00:00Z");
        unknown_time.last_modified = None;
        assert!(filters.matches(&unknown_time));
    }

    #[test]
    fn timestamps_accept_zones_and_refuse_bare_dates() {
        let t = Timestamp::parse("2024-01-31T08:00:00+08:00").unwrap();
        assert_eq!(t.to_string(), "2024-01-31T00:00:00Z");
        let err = Timestamp::parse("2024-01-31").unwrap_err().to_string();
        assert!(
            err.contains("\"2024-01-31\"") && err.contains("fix:"),
            "{err}"
        );
    }
}
