//! JSON Schema stand-ins for engine types the spec reuses but that do not derive `JsonSchema`
//! (the engine modules stay free of schema concerns). Each mirror lists exactly the values its
//! engine type accepts; the tests below fail if the two drift apart.

#![allow(dead_code)] // Only their schemas are used.

use schemars::JsonSchema;

/// When an object that already exists at the destination is copied again.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OverwritePolicy {
    /// Copy when the content differs: size, MD5 ETag, or the source ETag ferry stamped on the
    /// copy (`x-oss-meta-ferry-src-etag`), so same-size rewrites are caught too.
    IfDifferent,
    /// Never replace an existing object (enforced by OSS with `x-oss-forbid-overwrite`).
    Never,
    /// Always copy, even when identical.
    Always,
    /// Copy when the source was modified after the destination object was written (or, for an
    /// object ferry wrote, when its stamp names an older source version); identical objects and
    /// objects someone else wrote later stay. For the final run of a cut-over.
    IfNewer,
}

/// What to do with archived source objects (S3 Glacier/Deep Archive, OSS Archive classes)
/// that are not restored.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ArchivePolicy {
    /// Report them as `needs-restore` and copy nothing.
    Report,
    /// Report them as `needs-restore` and ask the source to restore them; a later run copies
    /// them. Restores cost money and take hours.
    Restore,
}

/// How fast (and how expensive) a restore is.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RestoreTier {
    /// Minutes; most expensive; not offered for every archive class.
    Expedited,
    /// Hours.
    Standard,
    /// Up to a day or two; cheapest.
    Bulk,
}

/// The OSS request signature algorithm.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignatureVersion {
    /// HMAC-SHA1, only for older accounts and buckets that still accept it.
    V1,
    /// `OSS4-HMAC-SHA256`, the default; OSS no longer offers V1 to new accounts.
    V4,
}

/// An OSS storage class (case-insensitive).
#[derive(JsonSchema)]
pub enum StorageClass {
    Standard,
    IA,
    Archive,
    ColdArchive,
    DeepColdArchive,
}

/// A role to assume (through STS) before reading the S3 bucket, e.g. one in the bucket owner's
/// account.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssumeRole {
    /// The role's ARN: `arn:aws:iam::123456789012:role/ferry-reader`.
    pub role_arn: String,
    /// Session name shown in the bucket owner's CloudTrail.
    pub session_name: Option<String>,
    /// External id the role's trust policy requires, if any.
    pub external_id: Option<String>,
    /// STS endpoint override (VPC endpoints, tests).
    pub sts_endpoint: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;

    use super::*;
    use crate::oss::{SignatureVersion as EngineSig, StorageClass as EngineClass};
    use crate::source::RestoreTier as EngineTier;
    use crate::transfer::{ArchivePolicy as EngineArchive, OverwritePolicy as EngineOverwrite};

    /// The `enum` values a mirror's schema lists.
    fn listed<T: JsonSchema>() -> Vec<String> {
        let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap();
        let mut out: Vec<String> = schema["enum"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        for variant in schema["oneOf"].as_array().into_iter().flatten() {
            for value in variant["enum"].as_array().into_iter().flatten() {
                out.push(value.as_str().unwrap().to_owned());
            }
            if let Some(c) = variant["const"].as_str() {
                out.push(c.to_owned());
            }
        }
        out
    }

    /// Every value the mirror lists is accepted by the engine type, and the engine type's
    /// variants (written out with an exhaustive match below) are all listed.
    fn same<M: JsonSchema, E: DeserializeOwned + serde::Serialize>(engine: &[E]) {
        let names = listed::<M>();
        for name in &names {
            serde_json::from_value::<E>(serde_json::Value::String(name.clone()))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        for variant in engine {
            let name = serde_json::to_value(variant).unwrap();
            assert!(
                names.iter().any(|n| *n == name),
                "{name} missing from mirror"
            );
        }
    }

    #[test]
    fn mirrors_match_the_engine_enums() {
        let overwrite = [
            EngineOverwrite::IfDifferent,
            EngineOverwrite::Never,
            EngineOverwrite::Always,
            EngineOverwrite::IfNewer,
        ];
        overwrite.iter().for_each(|o| match o {
            EngineOverwrite::IfDifferent
            | EngineOverwrite::Never
            | EngineOverwrite::Always
            | EngineOverwrite::IfNewer => {}
        });
        same::<OverwritePolicy, _>(&overwrite);

        let archive = [EngineArchive::Report, EngineArchive::Restore];
        archive.iter().for_each(|a| match a {
            EngineArchive::Report | EngineArchive::Restore => {}
        });
        same::<ArchivePolicy, _>(&archive);

        let tiers = [
            EngineTier::Expedited,
            EngineTier::Standard,
            EngineTier::Bulk,
        ];
        tiers.iter().for_each(|t| match t {
            EngineTier::Expedited | EngineTier::Standard | EngineTier::Bulk => {}
        });
        same::<RestoreTier, _>(&tiers);

        let sigs = [EngineSig::V1, EngineSig::V4];
        sigs.iter().for_each(|s| match s {
            EngineSig::V1 | EngineSig::V4 => {}
        });
        same::<SignatureVersion, _>(&sigs);
    }

    #[test]
    fn storage_class_mirror_lists_every_known_class() {
        let names = listed::<StorageClass>();
        for name in &names {
            let class: EngineClass = name.parse().unwrap();
            assert_eq!(class.as_str(), name);
        }
        for class in [
            EngineClass::Standard,
            EngineClass::IA,
            EngineClass::Archive,
            EngineClass::ColdArchive,
            EngineClass::DeepColdArchive,
        ] {
            assert!(names.iter().any(|n| n == class.as_str()));
        }
    }
}
