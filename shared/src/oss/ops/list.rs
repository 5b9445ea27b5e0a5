//! ListObjectsV2: one page, or every page as a stream.
//!
//! Requests always ask for `encoding-type=url` (as the official SDKs do: keys may hold
//! characters XML cannot carry) and results are decoded here, so callers only see real keys,
//! prefixes and tokens.

use chrono::{DateTime, Utc};
use futures_util::stream::{self, BoxStream, StreamExt};
use reqwest::Method;

use crate::oss::client::{OssClient, Request};
use crate::oss::error::Error;
use crate::oss::types::{StorageClass, parse_iso_date};
use crate::oss::xml::{self, ListBucketResult, non_empty};

/// Options of ListObjectsV2.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListObjectsOptions {
    /// Only keys starting with this prefix.
    pub prefix: Option<String>,
    /// Usually `/`: groups keys below the next delimiter into common prefixes.
    pub delimiter: Option<String>,
    /// List keys after this one (exclusive).
    pub start_after: Option<String>,
    /// From a previous page's `next_continuation_token`.
    pub continuation_token: Option<String>,
    /// 1–1000 (OSS default 100).
    pub max_keys: Option<u32>,
    /// Ask OSS to include each object's owner (`fetch-owner=true`).
    pub fetch_owner: bool,
}

/// One object in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSummary {
    /// `<Key>`: the object's key (URL-decoded).
    pub key: String,
    /// `<Size>`: the object's size, in bytes.
    pub size: u64,
    /// `<ETag>`, quotes included.
    pub etag: Option<String>,
    /// `<LastModified>`.
    pub last_modified: Option<DateTime<Utc>>,
    /// `<StorageClass>`.
    pub storage_class: Option<StorageClass>,
    /// `Normal`, `Multipart`, `Appendable` or `Symlink`.
    pub object_type: Option<String>,
    /// Restore state of an archived object, as OSS words it.
    pub restore_info: Option<String>,
    /// `<Owner><ID>`, when `fetch_owner` was set.
    pub owner_id: Option<String>,
}

/// One page of ListObjectsV2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListObjectsPage {
    /// The objects on this page, in key order.
    pub objects: Vec<ObjectSummary>,
    /// Key prefixes grouped by the delimiter (URL-decoded).
    pub common_prefixes: Vec<String>,
    /// Whether more pages follow.
    pub is_truncated: bool,
    /// Pass as `continuation_token` to get the next page.
    pub next_continuation_token: Option<String>,
    /// `x-oss-request-id` of the response.
    pub request_id: String,
}

impl OssClient {
    /// One page of ListObjectsV2.
    pub async fn list_objects_v2(
        &self,
        bucket: &str,
        options: &ListObjectsOptions,
    ) -> Result<ListObjectsPage, Error> {
        if let Some(n) = options.max_keys.filter(|n| !(1..=1000).contains(n)) {
            return Err(Error::invalid_argument(
                "max_keys",
                n.to_string(),
                "use 1 to 1000",
            ));
        }
        let req = Request::new("ListObjectsV2", Method::GET)
            .bucket(bucket)
            .query("list-type", "2")
            .query("encoding-type", "url")
            .query_opt("prefix", options.prefix.clone())
            .query_opt("delimiter", options.delimiter.clone())
            .query_opt("start-after", options.start_after.clone())
            .query_opt("continuation-token", options.continuation_token.clone())
            .query_opt("max-keys", options.max_keys.map(|n| n.to_string()))
            .query_opt("fetch-owner", options.fetch_owner.then_some("true"));
        self.execute(req, |sent| async move {
            let rid = sent.request_id.clone();
            let doc: ListBucketResult = sent.xml("ListBucketResult").await?;
            page_from_xml(doc, rid)
        })
        .await
    }

    /// Every page of ListObjectsV2 from `options` on, fetched as the stream is polled.
    pub fn list_objects_v2_pages(
        &self,
        bucket: &str,
        options: ListObjectsOptions,
    ) -> BoxStream<'static, Result<ListObjectsPage, Error>> {
        let state = Some((self.clone(), bucket.to_owned(), options));
        stream::try_unfold(state, |state| async move {
            let Some((client, bucket, mut options)) = state else {
                return Ok(None);
            };
            let page = client.list_objects_v2(&bucket, &options).await?;
            let next = match (&page.next_continuation_token, page.is_truncated) {
                (Some(token), true) if Some(token) != options.continuation_token.as_ref() => {
                    options.continuation_token = Some(token.clone());
                    Some((client, bucket, options))
                }
                (_, true) => {
                    return Err(Error::InvalidResponse {
                        operation: "ListObjectsV2",
                        request_id: page.request_id,
                        message: "the page is truncated but has no new NextContinuationToken"
                            .into(),
                    });
                }
                (_, false) => None,
            };
            Ok(Some((page, next)))
        })
        .boxed()
    }
}

fn page_from_xml(doc: ListBucketResult, rid: String) -> Result<ListObjectsPage, Error> {
    let op = "ListObjectsV2";
    let encoded = doc
        .encoding_type
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case("url"));
    let decode = |v: String, what: &'static str| -> Result<String, Error> {
        if encoded {
            xml::url_decode(&v, what, op, &rid)
        } else {
            Ok(v)
        }
    };
    let mut objects = Vec::with_capacity(doc.contents.len());
    for c in doc.contents {
        let last_modified = match c.last_modified.filter(|s| !s.is_empty()) {
            Some(s) => Some(parse_iso_date(&s).ok_or_else(|| Error::InvalidResponse {
                operation: op,
                request_id: rid.clone(),
                message: format!("LastModified {s:?} is not an ISO 8601 time"),
            })?),
            None => None,
        };
        objects.push(ObjectSummary {
            key: decode(c.key, "Key")?,
            size: c.size,
            etag: c.etag,
            last_modified,
            storage_class: non_empty(c.storage_class).map(|s| StorageClass::from_server(&s)),
            object_type: non_empty(c.object_type),
            restore_info: non_empty(c.restore_info),
            owner_id: c.owner.map(|o| o.id).filter(|s| !s.is_empty()),
        });
    }
    let common_prefixes = doc
        .common_prefixes
        .into_iter()
        .map(|p| decode(p.prefix, "Prefix"))
        .collect::<Result<Vec<_>, _>>()?;
    let next_continuation_token = non_empty(doc.next_continuation_token)
        .map(|t| decode(t, "NextContinuationToken"))
        .transpose()?;
    Ok(ListObjectsPage {
        objects,
        common_prefixes,
        is_truncated: doc.is_truncated,
        next_continuation_token,
        request_id: rid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_url_encoded_pages() {
        let doc: ListBucketResult = xml::parse(
            br#"<ListBucketResult><Name>b</Name><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
<NextContinuationToken>a%2Fnext%2B1</NextContinuationToken>
<Contents><Key>a%2F%E4%B8%AD%20x%2By</Key><LastModified>2020-06-22T11:42:32.000Z</LastModified><Size>5</Size><StorageClass>IA</StorageClass></Contents>
<CommonPrefixes><Prefix>a%2Fd+e%2F</Prefix></CommonPrefixes></ListBucketResult>"#,
            "ListBucketResult",
            "ListObjectsV2",
            "rid",
        )
        .unwrap();
        let page = page_from_xml(doc, "rid".into()).unwrap();
        assert_eq!(page.objects[0].key, "a/中 x+y");
        assert_eq!(page.objects[0].storage_class, Some(StorageClass::IA));
        assert_eq!(
            page.objects[0].last_modified.unwrap().timestamp(),
            1592826152
        );
        assert_eq!(page.common_prefixes, ["a/d e/"]);
        assert_eq!(page.next_continuation_token.as_deref(), Some("a/next+1"));
    }

    #[test]
    fn leaves_unencoded_pages_alone() {
        let doc: ListBucketResult = xml::parse(
            b"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a%20b</Key><Size>1</Size></Contents></ListBucketResult>",
            "ListBucketResult",
            "ListObjectsV2",
            "rid",
        )
        .unwrap();
        assert_eq!(
            page_from_xml(doc, "rid".into()).unwrap().objects[0].key,
            "a%20b"
        );
    }
}
