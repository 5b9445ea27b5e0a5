//! What ferry carries from a source object to its OSS copy, and how (the table in
//! `docs/metadata.md` says the same for users).
//!
//! | source | OSS | note |
//! |---|---|---|
//! | Content-Type, -Encoding, -Disposition, -Language, Cache-Control, Expires | same headers | verbatim |
//! | user metadata `x-amz-meta-*` / `x-oss-meta-*` | `x-oss-meta-*` | names OSS refuses are reported on the object, not silently dropped |
//! | tags | `x-oss-tagging` | tags OSS refuses are reported on the object, not silently dropped |
//! | storage class | `x-oss-storage-class` | mapped (see [`map_storage_class`]) or fixed by the job |
//! | ETag, Last-Modified, version id | `x-oss-meta-ferry-src-etag`, `-src-mtime`, `-src-version` | stamps for exact change detection |

use std::collections::BTreeMap;

use crate::oss::types::{ObjectOptions, StorageClass};
use crate::source::ObjectHead;

/// OSS's limit on the total size of user metadata (names and values).
pub const MAX_USER_METADATA_BYTES: usize = 8 * 1024;

/// Stamp names (without `x-oss-meta-`).
pub const STAMP_ETAG: &str = "ferry-src-etag";
/// The source's Last-Modified, RFC 3339 with milliseconds.
pub const STAMP_MTIME: &str = "ferry-src-mtime";
/// The source's version id, when it has one.
pub const STAMP_VERSION: &str = "ferry-src-version";

/// How the destination's storage class is chosen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ClassPolicy {
    /// Map the source's class (S3 or OSS name) to the nearest OSS class.
    #[default]
    Map,
    /// Write every object in this class.
    Fixed(StorageClass),
}

/// The nearest OSS class for a source class name. S3 has no exact equivalents, so: the
/// infrequent-access classes become IA, Glacier Instant Retrieval (readable at once) IA,
/// Glacier Flexible Retrieval Archive, Deep Archive ColdArchive; OSS names map to themselves.
pub fn map_storage_class(source_class: Option<&str>) -> StorageClass {
    match source_class.unwrap_or("STANDARD") {
        "STANDARD"
        | "INTELLIGENT_TIERING"
        | "REDUCED_REDUNDANCY"
        | "EXPRESS_ONEZONE"
        | "OUTPOSTS" => StorageClass::Standard,
        "STANDARD_IA" | "ONEZONE_IA" | "GLACIER_IR" => StorageClass::IA,
        "GLACIER" => StorageClass::Archive,
        "DEEP_ARCHIVE" => StorageClass::ColdArchive,
        other => other.parse().unwrap_or(StorageClass::Standard),
    }
}

/// OSS's limits on one object tag (S3's are looser: it also allows `@` and longer values in
/// some regions).
pub const MAX_TAG_KEY_CHARS: usize = 128;
/// OSS's limit on the characters of a tag value.
pub const MAX_TAG_VALUE_CHARS: usize = 256;

/// Why OSS would refuse a tag, if it would: keys of 1–128 and values of at most 256 characters,
/// made of letters, digits, spaces and `+ - = . _ : /`.
pub fn tag_problem(key: &str, value: &str) -> Option<String> {
    let allowed = |c: char| c.is_alphanumeric() || " +-=._:/".contains(c);
    let (key_chars, value_chars) = (key.chars().count(), value.chars().count());
    if key_chars == 0 || key_chars > MAX_TAG_KEY_CHARS {
        return Some(format!("OSS tag keys are 1-{MAX_TAG_KEY_CHARS} characters"));
    }
    if value_chars > MAX_TAG_VALUE_CHARS {
        return Some(format!(
            "OSS tag values are at most {MAX_TAG_VALUE_CHARS} characters"
        ));
    }
    key.chars()
        .chain(value.chars())
        .find(|c| !allowed(*c))
        .map(|c| {
            format!("OSS allows only letters, digits, spaces and + - = . _ : / in tags, not {c:?}")
        })
}

/// Whether OSS accepts a user-metadata name: letters, digits and hyphens.
pub fn valid_metadata_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The destination headers for `head`, and notes on what could not be carried.
///
/// A metadata name or a tag OSS refuses is left out and named in the notes (the object is still
/// copied: its bytes are what users need most). Metadata over OSS's 8 KB limit cannot be stored
/// faithfully, so that is an error and the object fails with the reason.
pub fn destination_options(
    head: &ObjectHead,
    class: &ClassPolicy,
) -> Result<(ObjectOptions, Vec<String>), String> {
    let mut notes = Vec::new();
    let mut metadata = BTreeMap::new();
    for (name, value) in &head.user_metadata {
        let lower = name.to_ascii_lowercase();
        if !valid_metadata_name(&lower) {
            notes.push(format!(
                "user metadata {name:?} not carried: OSS allows only letters, digits and hyphens in metadata names"
            ));
        } else if lower.starts_with("ferry-src-") {
            notes.push(format!(
                "user metadata {name:?} replaced by ferry's own change-detection stamp"
            ));
        } else {
            metadata.insert(lower, value.clone());
        }
    }
    if let Some(etag) = &head.etag {
        metadata.insert(STAMP_ETAG.into(), etag.clone());
    }
    if let Some(mtime) = head.last_modified {
        metadata.insert(
            STAMP_MTIME.into(),
            mtime.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        );
    }
    if let Some(version) = &head.version_id {
        metadata.insert(STAMP_VERSION.into(), version.clone());
    }
    let size: usize = metadata
        .iter()
        .map(|(k, v)| "x-oss-meta-".len() + k.len() + v.len())
        .sum();
    if size > MAX_USER_METADATA_BYTES {
        return Err(format!(
            "user metadata is {size} bytes; OSS allows {MAX_USER_METADATA_BYTES}: shorten the source's metadata"
        ));
    }
    let storage_class = match class {
        ClassPolicy::Map => map_storage_class(head.storage_class.as_deref()),
        ClassPolicy::Fixed(c) => c.clone(),
    };
    let mut tags = Vec::new();
    for (key, value) in &head.tags {
        match tag_problem(key, value) {
            Some(why) => notes.push(format!("tag {key:?} not carried: {why}")),
            None => tags.push((key.clone(), value.clone())),
        }
    }
    let options = ObjectOptions {
        content_type: head.content_type.clone(),
        content_encoding: head.content_encoding.clone(),
        content_disposition: head.content_disposition.clone(),
        content_language: head.content_language.clone(),
        cache_control: head.cache_control.clone(),
        expires: head.expires.clone(),
        metadata,
        storage_class: Some(storage_class),
        tags,
        ..Default::default()
    };
    Ok((options, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_classes_map_to_the_nearest_oss_class() {
        assert_eq!(map_storage_class(None), StorageClass::Standard);
        assert_eq!(map_storage_class(Some("STANDARD_IA")), StorageClass::IA);
        assert_eq!(map_storage_class(Some("GLACIER_IR")), StorageClass::IA);
        assert_eq!(map_storage_class(Some("GLACIER")), StorageClass::Archive);
        assert_eq!(
            map_storage_class(Some("DEEP_ARCHIVE")),
            StorageClass::ColdArchive
        );
        assert_eq!(
            map_storage_class(Some("ColdArchive")),
            StorageClass::ColdArchive
        );
        assert_eq!(map_storage_class(Some("IA")), StorageClass::IA);
    }

    #[test]
    fn tags_oss_refuses_are_named() {
        assert_eq!(tag_problem("project", "ferry two:a/b+c=d.e_f-g"), None);
        assert_eq!(tag_problem("项目", "渡船"), None);
        assert!(
            tag_problem("contact", "ops@example.com")
                .unwrap()
                .contains("'@'")
        );
        assert!(tag_problem("", "x").is_some());
        assert!(tag_problem(&"k".repeat(129), "x").is_some());
        assert_eq!(tag_problem(&"k".repeat(128), &"v".repeat(256)), None);
        assert!(tag_problem("k", &"v".repeat(257)).is_some());
        let head = ObjectHead {
            key: "k".into(),
            tags: vec![("a".into(), "1".into()), ("mail".into(), "a@b".into())],
            ..Default::default()
        };
        let (options, notes) = destination_options(&head, &ClassPolicy::Map).unwrap();
        assert_eq!(options.tags, vec![("a".to_owned(), "1".to_owned())]);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with("tag \"mail\" not carried"),
            "{notes:?}"
        );
    }

    #[test]
    fn refused_names_are_reported_and_stamps_added() {
        let head = ObjectHead {
            key: "k".into(),
            etag: Some("abc".into()),
            user_metadata: vec![
                ("Owner".into(), "bob".into()),
                ("my_name".into(), "x".into()),
            ],
            content_type: Some("text/plain".into()),
            ..Default::default()
        };
        let (options, notes) = destination_options(&head, &ClassPolicy::Map).unwrap();
        assert_eq!(
            options.metadata.get("owner").map(String::as_str),
            Some("bob")
        );
        assert_eq!(
            options.metadata.get(STAMP_ETAG).map(String::as_str),
            Some("abc")
        );
        assert!(!options.metadata.contains_key("my_name"));
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("my_name"));
        assert_eq!(options.content_type.as_deref(), Some("text/plain"));
    }

    #[test]
    fn oversized_metadata_fails_with_the_reason() {
        let head = ObjectHead {
            user_metadata: vec![("big".into(), "x".repeat(9000))],
            ..Default::default()
        };
        assert!(
            destination_options(&head, &ClassPolicy::Map)
                .unwrap_err()
                .contains("8192")
        );
    }
}
