//! Bucket operations: PutBucket (S3 CreateBucket), DeleteBucket, HeadBucket, ListBuckets,
//! GetBucketInfo and GetBucketLocation.

use http::Response;
use serde::Deserialize;

use super::Ctx;
use super::list::{OWNER_ID, owner_xml};
use crate::body::{Body, Payload};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::request::Dialect;
use crate::store::model::{BucketInfo, StorageClass};
use crate::xml::{S3_NAMESPACE, Xml, iso8601};

/// OSS bucket names: 3–63 characters, lower-case letters, digits and hyphens, starting and
/// ending with a letter or digit.
pub fn validate_bucket_name(name: &str) -> Result<(), ApiError> {
    let ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        return Err(ApiError::new(
            400,
            "InvalidBucketName",
            format!("The bucket name '{name}' is invalid: use 3-63 lower-case letters, digits and hyphens, starting and ending with a letter or digit."),
        )
        .with("BucketName", name));
    }
    Ok(())
}

#[derive(Deserialize, Default)]
struct CreateBucketConfiguration {
    #[serde(rename = "StorageClass", default)]
    storage_class: Option<String>,
    #[serde(rename = "DataRedundancyType", default)]
    redundancy: Option<String>,
}

pub async fn put_bucket(ctx: &Ctx<'_>, payload: Payload) -> Result<Response<Body>, ApiError> {
    let name = ctx.bucket();
    validate_bucket_name(name)?;
    let body = payload.read_all(64 * 1024).await?;
    let config: CreateBucketConfiguration = if body.iter().all(|b| b.is_ascii_whitespace()) {
        CreateBucketConfiguration::default()
    } else {
        crate::xml::parse(&body)?
    };
    let mut info = BucketInfo::new(name, ctx.state.now_millis());
    if let Some(sc) = config.storage_class {
        info.storage_class = StorageClass::parse_oss(&sc).ok_or_else(|| {
            ApiError::invalid_argument(format!("The storage class '{sc}' is invalid for a bucket"))
        })?;
    }
    if let Some(r) = config.redundancy {
        if r != "LRS" && r != "ZRS" {
            return Err(ApiError::invalid_argument(format!(
                "DataRedundancyType '{r}' is invalid: use LRS or ZRS"
            )));
        }
        info.redundancy = r;
    }
    let acl_header = ctx.req.dialect.header("acl");
    if let Some(acl) = ctx.req.h(&acl_header) {
        if !["private", "public-read", "public-read-write"].contains(&acl.as_str()) {
            return Err(ApiError::invalid_argument(format!(
                "{acl_header} '{acl}' is invalid"
            )));
        }
        info.acl = acl;
    }
    if !ctx.state.store.create_bucket(info)? {
        return Err(match ctx.req.dialect {
            Dialect::Oss => ApiError::new(409, "BucketAlreadyExists", "The requested bucket name is not available."),
            Dialect::S3 => ApiError::new(409, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it."),
        }
        .with("BucketName", name));
    }
    Ok(Reply::ok().header("location", format!("/{name}")).empty())
}

pub fn delete_bucket(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    ctx.state.store.delete_bucket(ctx.bucket(), false)?;
    Ok(Reply::new(204).empty())
}

pub fn head_bucket(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    ctx.state.store.bucket(ctx.bucket())?;
    let region = &ctx.state.config.region;
    Ok(Reply::ok()
        .header("x-oss-bucket-region", format!("oss-{region}"))
        .header("x-amz-bucket-region", region)
        .empty())
}

fn location(ctx: &Ctx<'_>) -> String {
    format!("oss-{}", ctx.state.config.region)
}

pub fn list_buckets(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let req = ctx.req;
    let prefix = req.q("prefix").unwrap_or("");
    let marker = req.q("marker").unwrap_or("");
    let max = super::list::max_keys(ctx, "max-keys", 100)?;
    let all: Vec<BucketInfo> = ctx
        .state
        .store
        .buckets()
        .into_iter()
        .filter(|b| b.name.starts_with(prefix) && b.name.as_str() > marker)
        .collect();
    let truncated = all.len() > max;
    let shown = &all[..all.len().min(max)];
    let mut x = Xml::new();
    if req.dialect == Dialect::S3 {
        x.open_root("ListAllMyBucketsResult", Some(S3_NAMESPACE));
        owner_xml(&mut x);
        x.open("Buckets");
        for b in shown {
            x.open("Bucket");
            x.leaf("Name", &b.name);
            x.leaf("CreationDate", iso8601(b.created_ms));
            x.close("Bucket");
        }
        x.close("Buckets");
        x.close("ListAllMyBucketsResult");
        return Ok(Reply::ok().xml(x.finish()));
    }
    x.open("ListAllMyBucketsResult");
    x.opt_leaf("Prefix", req.q("prefix"));
    x.opt_leaf("Marker", req.q("marker"));
    if req.has_q("max-keys") {
        x.leaf("MaxKeys", max.to_string());
    }
    x.leaf("IsTruncated", truncated.to_string());
    if truncated {
        x.opt_leaf("NextMarker", shown.last().map(|b| b.name.clone()));
    }
    owner_xml(&mut x);
    x.open("Buckets");
    for b in shown {
        x.open("Bucket");
        x.leaf("CreationDate", iso8601(b.created_ms));
        x.leaf(
            "ExtranetEndpoint",
            format!("{}.aliyuncs.com", location(ctx)),
        );
        x.leaf(
            "IntranetEndpoint",
            format!("{}-internal.aliyuncs.com", location(ctx)),
        );
        x.leaf("Location", location(ctx));
        x.leaf("Name", &b.name);
        x.leaf("Region", &ctx.state.config.region);
        x.leaf("StorageClass", b.storage_class.oss_name());
        x.close("Bucket");
    }
    x.close("Buckets");
    x.close("ListAllMyBucketsResult");
    Ok(Reply::ok().xml(x.finish()))
}

pub fn get_bucket_info(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let b = ctx.state.store.bucket(ctx.bucket())?;
    let loc = location(ctx);
    let mut x = Xml::new();
    x.open("BucketInfo");
    x.open("Bucket");
    x.leaf("AccessMonitor", "Disabled");
    x.leaf("CreationDate", iso8601(b.created_ms));
    x.leaf("ExtranetEndpoint", format!("{loc}.aliyuncs.com"));
    x.leaf("IntranetEndpoint", format!("{loc}-internal.aliyuncs.com"));
    x.leaf("Location", &loc);
    x.leaf("StorageClass", b.storage_class.oss_name());
    x.leaf("TransferAcceleration", "Disabled");
    x.leaf("CrossRegionReplication", "Disabled");
    x.leaf("DataRedundancyType", &b.redundancy);
    x.leaf("Name", &b.name);
    x.leaf("ResourceGroupId", "rg-default");
    x.leaf("Comment", "");
    x.leaf("BlockPublicAccess", "false");
    x.open("Owner");
    x.leaf("DisplayName", OWNER_ID);
    x.leaf("ID", OWNER_ID);
    x.close("Owner");
    x.open("AccessControlList");
    x.leaf("Grant", &b.acl);
    x.close("AccessControlList");
    x.leaf("Versioning", "");
    x.open("ServerSideEncryptionRule");
    x.leaf("SSEAlgorithm", "None");
    x.close("ServerSideEncryptionRule");
    x.open("BucketPolicy");
    x.leaf("LogBucket", "");
    x.leaf("LogPrefix", "");
    x.close("BucketPolicy");
    x.close("Bucket");
    x.close("BucketInfo");
    Ok(Reply::ok().xml(x.finish()))
}

pub fn get_bucket_location(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    ctx.state.store.bucket(ctx.bucket())?;
    let mut x = Xml::new();
    match ctx.req.dialect {
        Dialect::Oss => {
            x.leaf("LocationConstraint", location(ctx));
        }
        Dialect::S3 => {
            x.open_root("LocationConstraint", Some(S3_NAMESPACE));
            x.raw(&crate::xml::escape(&ctx.state.config.region));
            x.close("LocationConstraint");
        }
    }
    Ok(Reply::ok().xml(x.finish()))
}

/// Buckets here are never versioned: an empty `VersioningConfiguration` (what OSS and S3
/// return for a bucket whose versioning was never enabled).
pub fn get_bucket_versioning(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    ctx.state.store.bucket(ctx.bucket())?;
    let mut x = Xml::new();
    x.open_root(
        "VersioningConfiguration",
        (ctx.req.dialect == Dialect::S3).then_some(S3_NAMESPACE),
    );
    x.close("VersioningConfiguration");
    Ok(Reply::ok().xml(x.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        assert!(validate_bucket_name("abc").is_ok());
        assert!(validate_bucket_name("a-1-b").is_ok());
        for bad in ["ab", "-ab", "ab-", "Abc", "a_b", "a.b", &"a".repeat(64)] {
            assert!(validate_bucket_name(bad).is_err(), "{bad}");
        }
    }
}
