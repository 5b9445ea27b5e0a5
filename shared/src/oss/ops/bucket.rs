//! Bucket operations: where a bucket lives (GetBucketLocation, GetBucketInfo), and creating,
//! deleting and listing buckets for tests and tools.

use chrono::{DateTime, Utc};
use reqwest::Method;

use crate::oss::client::{OssClient, Request};
use crate::oss::error::Error;
use crate::oss::types::{StorageClass, parse_iso_date};
use crate::oss::xml::{self, BucketXml, non_empty};

/// Options of PutBucket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutBucketOptions {
    /// The bucket's default storage class; `None` for OSS's default (Standard).
    pub storage_class: Option<StorageClass>,
    /// `LRS` or `ZRS`.
    pub data_redundancy_type: Option<String>,
    /// `private`, `public-read` or `public-read-write`.
    pub acl: Option<String>,
}

/// Paging options of ListBuckets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListBucketsOptions {
    /// Only buckets whose name starts with this prefix.
    pub prefix: Option<String>,
    /// List buckets after this name (a previous page's `next_marker`).
    pub marker: Option<String>,
    /// 1–1000.
    pub max_keys: Option<u32>,
}

/// A bucket as ListBuckets and GetBucketInfo describe it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketInfo {
    /// The bucket's name.
    pub name: String,
    /// `oss-cn-hangzhou`.
    pub location: Option<String>,
    /// When the bucket was created.
    pub creation_date: Option<DateTime<Utc>>,
    /// `oss-cn-hangzhou.aliyuncs.com`.
    pub extranet_endpoint: Option<String>,
    /// `oss-cn-hangzhou-internal.aliyuncs.com`.
    pub intranet_endpoint: Option<String>,
    /// The bucket's default storage class.
    pub storage_class: Option<StorageClass>,
    /// `LRS` or `ZRS` (GetBucketInfo only).
    pub data_redundancy_type: Option<String>,
    /// `Enabled`, `Suspended`, or absent (GetBucketInfo only).
    pub versioning: Option<String>,
    /// The ACL grant (GetBucketInfo only).
    pub acl: Option<String>,
    /// Whether transfer acceleration is on, as OSS words it (`Enabled`, `Disabled`).
    pub transfer_acceleration: Option<String>,
    /// `<Owner><ID>`: the owning account's id.
    pub owner_id: Option<String>,
}

impl BucketInfo {
    /// The region id of the bucket (`cn-hangzhou`), from its location.
    pub fn region(&self) -> Option<String> {
        self.location
            .as_deref()
            .and_then(|l| crate::oss::endpoint::region_id(l).ok())
    }
}

/// One page of ListBuckets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListBucketsPage {
    /// The buckets on this page.
    pub buckets: Vec<BucketInfo>,
    /// Whether more pages follow.
    pub is_truncated: bool,
    /// Pass as `marker` to get the next page.
    pub next_marker: Option<String>,
    /// `x-oss-request-id` of the response.
    pub request_id: String,
}

fn bucket_info(b: BucketXml, op: &'static str, rid: &str) -> Result<BucketInfo, Error> {
    let creation_date = match non_empty(b.creation_date) {
        Some(s) => Some(parse_iso_date(&s).ok_or_else(|| Error::InvalidResponse {
            operation: op,
            request_id: rid.to_owned(),
            message: format!("CreationDate {s:?} is not an ISO 8601 time"),
        })?),
        None => None,
    };
    Ok(BucketInfo {
        name: b.name,
        location: non_empty(b.location),
        creation_date,
        extranet_endpoint: non_empty(b.extranet_endpoint),
        intranet_endpoint: non_empty(b.intranet_endpoint),
        storage_class: non_empty(b.storage_class).map(|s| StorageClass::from_server(&s)),
        data_redundancy_type: non_empty(b.data_redundancy_type),
        versioning: non_empty(b.versioning),
        acl: b.access_control_list.and_then(|a| non_empty(a.grant)),
        transfer_acceleration: non_empty(b.transfer_acceleration),
        owner_id: b.owner.map(|o| o.id).filter(|s| !s.is_empty()),
    })
}

impl OssClient {
    /// Creates a bucket in the client's region.
    pub async fn put_bucket(&self, bucket: &str, options: &PutBucketOptions) -> Result<(), Error> {
        let mut req = Request::new("PutBucket", Method::PUT).bucket(bucket);
        if let Some(acl) = &options.acl {
            req = req.header("x-oss-acl", acl.clone());
        }
        if options.storage_class.is_some() || options.data_redundancy_type.is_some() {
            let doc = xml::CreateBucketConfigurationXml {
                storage_class: options
                    .storage_class
                    .as_ref()
                    .map(|c| c.as_str().to_owned()),
                data_redundancy_type: options.data_redundancy_type.clone(),
            };
            req = req.xml_body(xml::render("CreateBucketConfiguration", &doc)?);
        }
        self.execute(req, |_| async { Ok(()) }).await
    }

    /// Deletes an empty bucket (`BucketNotEmpty` otherwise).
    pub async fn delete_bucket(&self, bucket: &str) -> Result<(), Error> {
        let req = Request::new("DeleteBucket", Method::DELETE).bucket(bucket);
        self.execute(req, |_| async { Ok(()) }).await
    }

    /// One page of the account's buckets.
    pub async fn list_buckets(
        &self,
        options: &ListBucketsOptions,
    ) -> Result<ListBucketsPage, Error> {
        if let Some(n) = options.max_keys.filter(|n| !(1..=1000).contains(n)) {
            return Err(Error::invalid_argument(
                "max_keys",
                n.to_string(),
                "use 1 to 1000",
            ));
        }
        let req = Request::new("ListBuckets", Method::GET)
            .query_opt("prefix", options.prefix.clone())
            .query_opt("marker", options.marker.clone())
            .query_opt("max-keys", options.max_keys.map(|n| n.to_string()));
        self.execute(req, |sent| async move {
            let rid = sent.request_id.clone();
            let doc: xml::ListAllMyBucketsResult = sent.xml("ListAllMyBucketsResult").await?;
            let buckets = doc
                .buckets
                .buckets
                .into_iter()
                .map(|b| bucket_info(b, "ListBuckets", &rid))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ListBucketsPage {
                buckets,
                is_truncated: doc.is_truncated,
                next_marker: non_empty(doc.next_marker),
                request_id: rid,
            })
        })
        .await
    }

    /// The bucket's details: location, endpoints, storage class, redundancy, versioning, ACL.
    pub async fn get_bucket_info(&self, bucket: &str) -> Result<BucketInfo, Error> {
        let req = Request::new("GetBucketInfo", Method::GET)
            .bucket(bucket)
            .query("bucketInfo", "");
        self.execute(req, |sent| async move {
            let rid = sent.request_id.clone();
            let doc: xml::BucketInfoXml = sent.xml("BucketInfo").await?;
            bucket_info(doc.bucket, "GetBucketInfo", &rid)
        })
        .await
    }

    /// The bucket's location constraint (`oss-cn-hangzhou`); strip `oss-` (or use
    /// [`crate::oss::region_id`]) for the signing region.
    pub async fn get_bucket_location(&self, bucket: &str) -> Result<String, Error> {
        let req = Request::new("GetBucketLocation", Method::GET)
            .bucket(bucket)
            .query("location", "");
        self.execute(req, |sent| async move {
            let rid = sent.request_id.clone();
            let doc: xml::LocationConstraintXml = sent.xml("LocationConstraint").await?;
            let value = doc.value.trim().to_owned();
            if value.is_empty() {
                return Err(Error::InvalidResponse {
                    operation: "GetBucketLocation",
                    request_id: rid,
                    message: "LocationConstraint is empty".into(),
                });
            }
            Ok(value)
        })
        .await
    }
}
