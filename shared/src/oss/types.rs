//! Plain data types shared by the operations: storage classes, object metadata as OSS reports it
//! in headers, the headers ferry writes with an object, copy sources and byte ranges.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;

use super::error::Error;
use super::sign::uri_encode_path;

/// An OSS storage class (header and XML value).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StorageClass {
    /// Standard: frequently read data.
    Standard,
    /// Infrequent Access.
    IA,
    /// Archive: must be restored before it can be read.
    Archive,
    /// Cold Archive: must be restored before it can be read.
    ColdArchive,
    /// Deep Cold Archive: must be restored before it can be read, and restores take longest.
    DeepColdArchive,
    /// A class this version of ferry does not know, kept verbatim.
    Other(String),
}

impl StorageClass {
    /// The class as OSS spells it in headers and XML (`Standard`, `IA`, …).
    pub fn as_str(&self) -> &str {
        match self {
            StorageClass::Standard => "Standard",
            StorageClass::IA => "IA",
            StorageClass::Archive => "Archive",
            StorageClass::ColdArchive => "ColdArchive",
            StorageClass::DeepColdArchive => "DeepColdArchive",
            StorageClass::Other(s) => s,
        }
    }

    /// Archive classes must be restored before their bytes can be read.
    pub fn needs_restore(&self) -> bool {
        matches!(
            self,
            StorageClass::Archive | StorageClass::ColdArchive | StorageClass::DeepColdArchive
        )
    }

    /// Parses a value OSS sent; unknown values are kept rather than refused.
    pub fn from_server(s: &str) -> Self {
        s.parse()
            .unwrap_or_else(|_| StorageClass::Other(s.to_owned()))
    }
}

impl FromStr for StorageClass {
    type Err = Error;

    /// Parses a known class, case-insensitively (`ia`, `IA`, `coldarchive`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "standard" => StorageClass::Standard,
            "ia" => StorageClass::IA,
            "archive" => StorageClass::Archive,
            "coldarchive" => StorageClass::ColdArchive,
            "deepcoldarchive" => StorageClass::DeepColdArchive,
            _ => {
                return Err(Error::invalid_argument(
                    "storage class",
                    s,
                    "use Standard, IA, Archive, ColdArchive or DeepColdArchive",
                ));
            }
        })
    }
}

impl fmt::Display for StorageClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The restore state of an archived object (`x-oss-restore`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreState {
    /// A restore was requested and is still running.
    InProgress,
    /// The object is readable until `expiry` (the raw HTTP date OSS gave, if any).
    Restored {
        /// When the restored copy stops being readable, as the raw HTTP date OSS gave.
        expiry: Option<String>,
    },
}

impl RestoreState {
    /// Parses `ongoing-request="true"` or `ongoing-request="false", expiry-date="…"`.
    pub fn parse(header: &str) -> Option<Self> {
        let field = |name: &str| -> Option<String> {
            let start = header.find(&format!("{name}=\""))? + name.len() + 2;
            let len = header[start..].find('"')?;
            Some(header[start..start + len].to_owned())
        };
        match field("ongoing-request")?.as_str() {
            "true" => Some(RestoreState::InProgress),
            "false" => Some(RestoreState::Restored {
                expiry: field("expiry-date"),
            }),
            _ => None,
        }
    }
}

/// What HeadObject and GetObject report about an object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The size of the object (for HEAD and whole GETs) or of the returned range.
    pub content_length: u64,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Expires`, as the raw HTTP date.
    pub expires: Option<String>,
    /// As OSS sends it, quotes included.
    pub etag: Option<String>,
    /// `Content-MD5` (base64), when OSS has one for the object.
    pub content_md5: Option<String>,
    /// `Last-Modified`.
    pub last_modified: Option<DateTime<Utc>>,
    /// `x-oss-meta-*`, keyed by the lower-cased name without the prefix.
    pub metadata: BTreeMap<String, String>,
    /// `Normal`, `Multipart`, `Appendable` or `Symlink`.
    pub object_type: Option<String>,
    /// `x-oss-storage-class`.
    pub storage_class: Option<StorageClass>,
    /// The whole object's CRC-64 (also on ranged GETs).
    pub crc64: Option<u64>,
    /// `x-oss-restore`: the restore state of an archived object; `None` if none was requested.
    pub restore: Option<RestoreState>,
    /// `x-oss-version-id`, on a versioned bucket.
    pub version_id: Option<String>,
    /// `x-oss-tagging-count`: how many tags the object has.
    pub tagging_count: Option<u32>,
    /// `x-oss-expiration`: when a lifecycle rule will expire the object, as OSS phrases it.
    pub expiration: Option<String>,
    /// `x-oss-transition-time`: when a lifecycle rule changed the object's storage class.
    pub transition_time: Option<String>,
    /// `x-oss-request-id` of the response, for support requests.
    pub request_id: Option<String>,
}

/// A response header whose value is not what OSS documents for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name} {value:?} is not {expected}")]
pub(crate) struct BadHeader {
    name: &'static str,
    value: String,
    expected: &'static str,
}

impl ObjectMeta {
    pub(crate) fn from_headers(h: &HeaderMap) -> Result<Self, BadHeader> {
        let mut meta = ObjectMeta {
            content_length: match get(h, "content-length") {
                Some(v) => v.parse().map_err(|_| BadHeader {
                    name: "Content-Length",
                    value: v.clone(),
                    expected: "a number",
                })?,
                None => 0,
            },
            content_type: get(h, "content-type"),
            content_encoding: get(h, "content-encoding"),
            content_disposition: get(h, "content-disposition"),
            content_language: get(h, "content-language"),
            cache_control: get(h, "cache-control"),
            expires: get(h, "expires"),
            etag: get(h, "etag"),
            content_md5: get(h, "content-md5"),
            last_modified: None,
            metadata: BTreeMap::new(),
            object_type: get(h, "x-oss-object-type"),
            storage_class: get(h, "x-oss-storage-class").map(|s| StorageClass::from_server(&s)),
            crc64: crc64_header(h)?,
            restore: get(h, "x-oss-restore").and_then(|v| RestoreState::parse(&v)),
            version_id: get(h, "x-oss-version-id"),
            tagging_count: get(h, "x-oss-tagging-count").and_then(|v| v.parse().ok()),
            expiration: get(h, "x-oss-expiration"),
            transition_time: get(h, "x-oss-transition-time"),
            request_id: get(h, "x-oss-request-id"),
        };
        if let Some(v) = get(h, "last-modified") {
            meta.last_modified = Some(parse_http_date(&v).ok_or_else(|| BadHeader {
                name: "Last-Modified",
                value: v.clone(),
                expected: "an HTTP date",
            })?);
        }
        for (name, value) in h {
            if let Some(meta_name) = name.as_str().strip_prefix("x-oss-meta-") {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                meta.metadata.insert(meta_name.to_owned(), value);
            }
        }
        Ok(meta)
    }
}

/// A header as a string (lossy for non-UTF-8 bytes).
pub(crate) fn get(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// `x-oss-hash-crc64ecma`, if present; a malformed value is an error, not "absent".
pub(crate) fn crc64_header(h: &HeaderMap) -> Result<Option<u64>, BadHeader> {
    match get(h, "x-oss-hash-crc64ecma") {
        None => Ok(None),
        Some(v) => match crate::crc64::parse_header(&v) {
            Some(crc) => Ok(Some(crc)),
            None => Err(BadHeader {
                name: "x-oss-hash-crc64ecma",
                value: v,
                expected: "a decimal CRC-64",
            }),
        },
    }
}

pub(crate) fn parse_http_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

pub(crate) fn parse_iso_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// The headers written with a new object (PutObject, InitiateMultipartUpload, and CopyObject
/// with `REPLACE`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectOptions {
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Expires`, as an HTTP date.
    pub expires: Option<String>,
    /// User metadata: names without the `x-oss-meta-` prefix (letters, digits, hyphens).
    pub metadata: BTreeMap<String, String>,
    /// `x-oss-storage-class`; `None` leaves the bucket's default.
    pub storage_class: Option<StorageClass>,
    /// Fail with `FileAlreadyExists` instead of replacing an existing object.
    pub forbid_overwrite: bool,
    /// Object tags, sent as `x-oss-tagging` in query form.
    pub tags: Vec<(String, String)>,
    /// `default`, `private`, `public-read` or `public-read-write`.
    pub acl: Option<String>,
}

impl ObjectOptions {
    pub(crate) fn write_headers(&self, out: &mut Vec<(String, String)>) -> Result<(), Error> {
        let standard = [
            ("Content-Type", &self.content_type),
            ("Content-Encoding", &self.content_encoding),
            ("Content-Disposition", &self.content_disposition),
            ("Content-Language", &self.content_language),
            ("Cache-Control", &self.cache_control),
            ("Expires", &self.expires),
            ("x-oss-object-acl", &self.acl),
        ];
        for (name, value) in standard {
            if let Some(v) = value {
                out.push((name.to_owned(), v.clone()));
            }
        }
        for (name, value) in &self.metadata {
            check_meta_name(name)?;
            out.push((
                format!("x-oss-meta-{}", name.to_ascii_lowercase()),
                value.clone(),
            ));
        }
        if let Some(class) = &self.storage_class {
            out.push(("x-oss-storage-class".to_owned(), class.as_str().to_owned()));
        }
        if self.forbid_overwrite {
            out.push(("x-oss-forbid-overwrite".to_owned(), "true".to_owned()));
        }
        if !self.tags.is_empty() {
            out.push((
                "x-oss-tagging".to_owned(),
                super::endpoint::render_query(&self.tags),
            ));
        }
        Ok(())
    }
}

fn check_meta_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_argument(
            "metadata name",
            name,
            "OSS user metadata names may contain only letters, digits and hyphens",
        ))
    }
}

/// An inclusive byte range, `bytes=start-end` (`end` open when `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte, counted from 0.
    pub start: u64,
    /// The last byte (inclusive); `None` reads to the end of the object.
    pub end: Option<u64>,
}

impl ByteRange {
    /// `len` bytes from `start`; `len` must be at least 1.
    pub fn new(start: u64, len: u64) -> Self {
        ByteRange {
            start,
            end: Some(start + len.max(1) - 1),
        }
    }

    /// Every byte from `start` to the end of the object.
    pub fn from(start: u64) -> Self {
        ByteRange { start, end: None }
    }

    pub(crate) fn header(&self) -> String {
        match self.end {
            Some(end) => format!("bytes={}-{end}", self.start),
            None => format!("bytes={}-", self.start),
        }
    }
}

/// `Content-Range: bytes start-end/total` of a ranged GET.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    /// The first byte returned, counted from 0.
    pub start: u64,
    /// The last byte returned (inclusive).
    pub end: u64,
    /// The size of the whole object, in bytes.
    pub total: u64,
}

impl ContentRange {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let rest = s.trim().strip_prefix("bytes ")?;
        let (range, total) = rest.split_once('/')?;
        let (start, end) = range.split_once('-')?;
        Some(ContentRange {
            start: start.parse().ok()?,
            end: end.parse().ok()?,
            total: total.parse().ok()?,
        })
    }
}

/// The source of a server-side copy (CopyObject, UploadPartCopy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopySource {
    /// The source bucket.
    pub bucket: String,
    /// The source object's key.
    pub key: String,
    /// A specific version of the source object; `None` copies the current one.
    pub version_id: Option<String>,
}

impl CopySource {
    /// The current version of `key` in `bucket`.
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Self {
        CopySource {
            bucket: bucket.into(),
            key: key.into(),
            version_id: None,
        }
    }

    /// `/bucket/url-encoded-key[?versionId=V]`, the `x-oss-copy-source` value.
    pub(crate) fn header(&self) -> String {
        let mut out = format!("/{}/{}", self.bucket, uri_encode_path(&self.key));
        if let Some(v) = &self.version_id {
            out.push_str("?versionId=");
            out.push_str(&super::sign::uri_encode(v));
        }
        out
    }
}

/// Conditions on the source of a copy (`x-oss-copy-source-if-*`) or on a GET (`If-*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conditions {
    /// Only if the ETag equals this one (quotes included).
    pub if_match: Option<String>,
    /// Only if the ETag differs from this one (quotes included).
    pub if_none_match: Option<String>,
    /// An HTTP date.
    pub if_modified_since: Option<String>,
    /// An HTTP date.
    pub if_unmodified_since: Option<String>,
}

impl Conditions {
    pub(crate) fn write_headers(&self, prefix: &str, out: &mut Vec<(String, String)>) {
        let pairs = [
            ("if-match", &self.if_match),
            ("if-none-match", &self.if_none_match),
            ("if-modified-since", &self.if_modified_since),
            ("if-unmodified-since", &self.if_unmodified_since),
        ];
        for (name, value) in pairs {
            if let Some(v) = value {
                out.push((format!("{prefix}{name}"), v.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn storage_classes_parse_and_print() {
        assert_eq!("ia".parse::<StorageClass>().unwrap(), StorageClass::IA);
        assert_eq!(
            "ColdArchive".parse::<StorageClass>().unwrap().to_string(),
            "ColdArchive"
        );
        assert!(
            "Glacier"
                .parse::<StorageClass>()
                .unwrap_err()
                .to_string()
                .contains("\"Glacier\"")
        );
        assert_eq!(
            StorageClass::from_server("Future"),
            StorageClass::Other("Future".into())
        );
        assert!(StorageClass::Archive.needs_restore());
        assert!(!StorageClass::IA.needs_restore());
    }

    #[test]
    fn restore_header_forms() {
        assert_eq!(
            RestoreState::parse("ongoing-request=\"true\""),
            Some(RestoreState::InProgress)
        );
        assert_eq!(
            RestoreState::parse(
                "ongoing-request=\"false\", expiry-date=\"Sun, 16 Apr 2017 08:12:33 GMT\""
            ),
            Some(RestoreState::Restored {
                expiry: Some("Sun, 16 Apr 2017 08:12:33 GMT".into())
            })
        );
        assert_eq!(RestoreState::parse("garbage"), None);
    }

    #[test]
    fn meta_from_headers() {
        let mut h = HeaderMap::new();
        h.insert("content-length", HeaderValue::from_static("42"));
        h.insert("etag", HeaderValue::from_static("\"ABC\""));
        h.insert(
            "last-modified",
            HeaderValue::from_static("Thu, 02 Jan 2025 03:04:05 GMT"),
        );
        h.insert("x-oss-meta-author", HeaderValue::from_static("alice"));
        h.insert("x-oss-storage-class", HeaderValue::from_static("Archive"));
        h.insert(
            "x-oss-hash-crc64ecma",
            HeaderValue::from_static("11051210869376104954"),
        );
        h.insert(
            "x-oss-restore",
            HeaderValue::from_static("ongoing-request=\"true\""),
        );
        let m = ObjectMeta::from_headers(&h).unwrap();
        assert_eq!(m.content_length, 42);
        assert_eq!(m.metadata.get("author").map(String::as_str), Some("alice"));
        assert_eq!(m.storage_class, Some(StorageClass::Archive));
        assert_eq!(m.crc64, Some(0x995dc9bbdf1939fa));
        assert_eq!(m.restore, Some(RestoreState::InProgress));
        assert_eq!(
            m.last_modified.unwrap().to_rfc3339(),
            "2025-01-02T03:04:05+00:00"
        );
        h.insert("x-oss-hash-crc64ecma", HeaderValue::from_static("nope"));
        assert!(
            ObjectMeta::from_headers(&h)
                .unwrap_err()
                .to_string()
                .contains("nope")
        );
    }

    #[test]
    fn object_options_headers() {
        let mut o = ObjectOptions {
            content_type: Some("text/plain".into()),
            storage_class: Some(StorageClass::IA),
            forbid_overwrite: true,
            tags: vec![("a b".into(), "c&d".into()), ("k".into(), "v".into())],
            ..Default::default()
        };
        o.metadata.insert("Owner".into(), "bob".into());
        let mut h = Vec::new();
        o.write_headers(&mut h).unwrap();
        let find = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(find("x-oss-meta-owner"), Some("bob"));
        assert_eq!(find("x-oss-storage-class"), Some("IA"));
        assert_eq!(find("x-oss-forbid-overwrite"), Some("true"));
        assert_eq!(find("x-oss-tagging"), Some("a%20b=c%26d&k=v"));
        o.metadata.insert("bad_name".into(), "x".into());
        assert!(
            o.write_headers(&mut Vec::new())
                .unwrap_err()
                .to_string()
                .contains("bad_name")
        );
    }

    #[test]
    fn ranges_and_copy_sources() {
        assert_eq!(ByteRange::new(0, 100).header(), "bytes=0-99");
        assert_eq!(ByteRange::from(5).header(), "bytes=5-");
        assert_eq!(
            ContentRange::parse("bytes 0-99/1000"),
            Some(ContentRange {
                start: 0,
                end: 99,
                total: 1000
            })
        );
        assert_eq!(ContentRange::parse("bytes */1000"), None);
        let mut src = CopySource::new("src", "dir/中 a+b.txt");
        assert_eq!(src.header(), "/src/dir/%E4%B8%AD%20a%2Bb.txt");
        src.version_id = Some("v1".into());
        assert_eq!(src.header(), "/src/dir/%E4%B8%AD%20a%2Bb.txt?versionId=v1");
    }
}
