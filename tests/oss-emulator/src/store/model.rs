//! What the store keeps about buckets, objects and multipart uploads (the data itself is a
//! [`Blob`](super::blob::Blob)). These types are also the JSON sidecars of disk storage.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// OSS storage classes. S3 names map onto them (see [`StorageClass::parse_s3`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum StorageClass {
    #[default]
    Standard,
    IA,
    Archive,
    ColdArchive,
    DeepColdArchive,
}

impl StorageClass {
    pub const ALL: [StorageClass; 5] = [
        StorageClass::Standard,
        StorageClass::IA,
        StorageClass::Archive,
        StorageClass::ColdArchive,
        StorageClass::DeepColdArchive,
    ];

    /// The OSS header / XML value.
    pub fn oss_name(self) -> &'static str {
        match self {
            StorageClass::Standard => "Standard",
            StorageClass::IA => "IA",
            StorageClass::Archive => "Archive",
            StorageClass::ColdArchive => "ColdArchive",
            StorageClass::DeepColdArchive => "DeepColdArchive",
        }
    }

    /// The S3 name this class is shown as in the S3 dialect.
    pub fn s3_name(self) -> &'static str {
        match self {
            StorageClass::Standard => "STANDARD",
            StorageClass::IA => "STANDARD_IA",
            StorageClass::Archive => "GLACIER",
            StorageClass::ColdArchive | StorageClass::DeepColdArchive => "DEEP_ARCHIVE",
        }
    }

    pub fn parse_oss(s: &str) -> Option<StorageClass> {
        StorageClass::ALL
            .into_iter()
            .find(|c| c.oss_name().eq_ignore_ascii_case(s.trim()))
    }

    /// S3 classes: STANDARD↔Standard, STANDARD_IA/ONEZONE_IA/GLACIER_IR→IA, GLACIER→Archive,
    /// DEEP_ARCHIVE→ColdArchive, and the other "instant" classes → Standard.
    pub fn parse_s3(s: &str) -> Option<StorageClass> {
        match s.trim().to_ascii_uppercase().as_str() {
            "STANDARD" | "REDUCED_REDUNDANCY" | "INTELLIGENT_TIERING" | "EXPRESS_ONEZONE" => {
                Some(StorageClass::Standard)
            }
            "STANDARD_IA" | "ONEZONE_IA" | "GLACIER_IR" => Some(StorageClass::IA),
            "GLACIER" => Some(StorageClass::Archive),
            "DEEP_ARCHIVE" => Some(StorageClass::ColdArchive),
            _ => None,
        }
    }

    /// Whether reading needs a restore first.
    pub fn is_archive(self) -> bool {
        matches!(
            self,
            StorageClass::Archive | StorageClass::ColdArchive | StorageClass::DeepColdArchive
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ObjectType {
    #[default]
    Normal,
    Multipart,
}

impl ObjectType {
    pub fn name(self) -> &'static str {
        match self {
            ObjectType::Normal => "Normal",
            ObjectType::Multipart => "Multipart",
        }
    }
}

/// The standard HTTP headers stored with an object and returned by GET/HEAD.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentHeaders {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub expires: Option<String>,
}

/// What a writer chooses about an object (PutObject, InitiateMultipartUpload, CopyObject).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectAttrs {
    pub content: ContentHeaders,
    /// User metadata, names lower-cased and without the `x-oss-meta-` prefix.
    pub user_meta: BTreeMap<String, String>,
    pub tags: Vec<(String, String)>,
    pub storage_class: StorageClass,
    pub acl: Option<String>,
}

/// Where an archived object stands with its restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restore {
    /// When the restored copy becomes readable.
    pub ready_at_ms: i64,
    /// When the restored copy goes away again.
    pub expiry_ms: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreState {
    /// Archived, not restored (or the restored copy expired).
    Frozen,
    InProgress,
    Restored {
        expiry_ms: i64,
    },
}

/// An object's metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Upper-case hex MD5 for single-part objects; `HEX-N` for multipart. No quotes.
    pub etag: String,
    /// Base64 MD5 of the content, for single-part objects.
    pub content_md5: Option<String>,
    pub crc64: Option<u64>,
    pub last_modified_ms: i64,
    pub object_type: ObjectType,
    pub attrs: ObjectAttrs,
    pub restore: Option<Restore>,
}

impl ObjectMeta {
    pub fn restore_state(&self, now_ms: i64) -> RestoreState {
        match self.restore {
            Some(r) if now_ms < r.ready_at_ms => RestoreState::InProgress,
            Some(r) if now_ms < r.expiry_ms => RestoreState::Restored {
                expiry_ms: r.expiry_ms,
            },
            _ => RestoreState::Frozen,
        }
    }

    /// Whether GET may return the data (archived objects need a finished restore).
    pub fn readable(&self, now_ms: i64) -> bool {
        !self.attrs.storage_class.is_archive()
            || matches!(self.restore_state(now_ms), RestoreState::Restored { .. })
    }

    /// The `x-oss-restore` / `x-amz-restore` value, when a restore was ever asked for.
    pub fn restore_header(&self, now_ms: i64) -> Option<String> {
        if !self.attrs.storage_class.is_archive() {
            return None;
        }
        match self.restore_state(now_ms) {
            RestoreState::Frozen => None,
            RestoreState::InProgress => Some("ongoing-request=\"true\"".to_owned()),
            RestoreState::Restored { expiry_ms } => Some(format!(
                "ongoing-request=\"false\", expiry-date=\"{}\"",
                crate::time::http_date(expiry_ms)
            )),
        }
    }
}

/// A bucket's own settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketInfo {
    pub name: String,
    pub created_ms: i64,
    pub storage_class: StorageClass,
    pub redundancy: String,
    pub acl: String,
    /// The stored `<WebsiteConfiguration>` document, verbatim.
    pub website: Option<String>,
}

impl BucketInfo {
    /// A Standard, private bucket created at `created_ms` (the emulator's clock).
    pub fn new(name: &str, created_ms: i64) -> BucketInfo {
        BucketInfo {
            name: name.to_owned(),
            created_ms,
            storage_class: StorageClass::Standard,
            redundancy: "LRS".to_owned(),
            acl: "private".to_owned(),
            website: None,
        }
    }
}

/// One uploaded part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartMeta {
    pub number: u32,
    /// Upper-case hex MD5 of the part.
    pub etag: String,
    pub size: u64,
    pub crc64: Option<u64>,
    pub last_modified_ms: i64,
}

/// A multipart upload in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadMeta {
    pub upload_id: String,
    pub key: String,
    pub initiated_ms: i64,
    pub attrs: ObjectAttrs,
}
