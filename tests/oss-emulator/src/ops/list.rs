//! ListObjects (v1) and ListObjectsV2, and the paging engine they share.
//!
//! Keys are in byte-wise lexicographic order (Rust's `String` order). With a delimiter, keys
//! that share a prefix up to the delimiter collapse into one `CommonPrefixes` entry, which
//! counts once towards `max-keys`. A page ends after `max-keys` entries; the next page resumes
//! after the last entry (a key or a common prefix — every key under a returned prefix is
//! skipped). V2's continuation token is that position, Base64url-encoded.

use std::collections::BTreeMap;
use std::ops::Bound;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Response;

use super::Ctx;
use super::attrs::{quoted_etag, storage_class_name};
use crate::body::Body;
use crate::error::ApiError;
use crate::faults::ListingQuirk;
use crate::reply::Reply;
use crate::request::Dialect;
use crate::store::Object;
use crate::store::model::ObjectMeta;
use crate::xml::{S3_NAMESPACE, Xml, iso8601};

/// One listing entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry<'a, V> {
    Key(&'a str, &'a V),
    Prefix(String),
}

/// One page of a listing.
#[derive(Debug)]
pub struct Page<'a, V> {
    pub entries: Vec<Entry<'a, V>>,
    pub truncated: bool,
    /// Where the next page starts (after this key or prefix), when truncated.
    pub next_marker: Option<String>,
}

/// Lists `map` after `after` (exclusive), under `prefix`, grouping by `delimiter`.
pub fn page<'a, V>(
    map: &'a BTreeMap<String, V>,
    prefix: &str,
    delimiter: &str,
    after: Option<&str>,
    max: usize,
) -> Page<'a, V> {
    let start = match after {
        Some(a) if a >= prefix => Bound::Excluded(a),
        _ => Bound::Included(prefix),
    };
    let mut entries: Vec<Entry<'a, V>> = Vec::new();
    let mut truncated = false;
    let mut last_prefix: Option<String> = None;
    for (key, value) in map.range::<str, _>((start, Bound::Unbounded)) {
        if !key.starts_with(prefix) {
            break;
        }
        let common = (!delimiter.is_empty())
            .then(|| {
                key[prefix.len()..]
                    .find(delimiter)
                    .map(|i| key[..prefix.len() + i + delimiter.len()].to_owned())
            })
            .flatten();
        if let Some(cp) = &common
            && (last_prefix.as_deref() == Some(cp.as_str()) || after == Some(cp.as_str()))
        {
            continue;
        }
        if entries.len() >= max {
            truncated = true;
            break;
        }
        match common {
            Some(cp) => {
                last_prefix = Some(cp.clone());
                entries.push(Entry::Prefix(cp));
            }
            None => entries.push(Entry::Key(key, value)),
        }
    }
    let next_marker = if truncated {
        entries.last().map(|e| match e {
            Entry::Key(k, _) => (*k).to_owned(),
            Entry::Prefix(p) => p.clone(),
        })
    } else {
        None
    };
    Page {
        entries,
        truncated,
        next_marker,
    }
}

/// URL-encodes listing fields for `encoding-type=url` (`/` stays, space is `%20`, `+` is `%2B`).
pub fn url_encode(s: &str) -> String {
    ferry::oss::sign::uri_encode_path(s)
}

pub fn encode_token(marker: &str) -> String {
    URL_SAFE_NO_PAD.encode(marker.as_bytes())
}

pub fn decode_token(token: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(token.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            ApiError::invalid_argument(format!(
                "The continuation-token '{token}' is not one this server issued"
            ))
            .with("ArgumentName", "continuation-token")
        })
}

/// `max-keys`: OSS accepts 1–1000 (default 100); S3 0–1000 (default 1000, larger is capped).
pub fn max_keys(ctx: &Ctx<'_>, name: &str, oss_default: usize) -> Result<usize, ApiError> {
    let dialect = ctx.req.dialect;
    let Some(v) = ctx.req.q(name) else {
        return Ok(if dialect == Dialect::S3 {
            1000
        } else {
            oss_default
        });
    };
    let n: i64 = v.trim().parse().map_err(|_| bad_max(name, v))?;
    match dialect {
        Dialect::Oss if (1..=1000).contains(&n) => Ok(n as usize),
        Dialect::S3 if n >= 0 => Ok(n.min(1000) as usize),
        _ => Err(bad_max(name, v)),
    }
}

fn bad_max(name: &str, v: &str) -> ApiError {
    ApiError::invalid_argument(format!(
        "{name} '{v}' is invalid: use a number from 1 to 1000"
    ))
    .with("ArgumentName", name)
    .with("ArgumentValue", v)
}

/// ListObjects (`v2 == false`) and ListObjectsV2.
pub fn list_objects(ctx: &Ctx<'_>, v2: bool) -> Result<Response<Body>, ApiError> {
    let req = ctx.req;
    let prefix = req.q("prefix").unwrap_or("");
    let delimiter = req.q("delimiter").unwrap_or("");
    let max = max_keys(ctx, "max-keys", 100)?;
    if prefix.len() > 1023 {
        return Err(ApiError::invalid_argument(
            "prefix is longer than 1023 bytes",
        ));
    }
    // SDKs (oss2) send an empty `continuation-token=` on first pages: that means "none".
    let token = match req.q("continuation-token").filter(|t| v2 && !t.is_empty()) {
        Some(t) => Some(decode_token(t)?),
        None => None,
    };
    let start_after = if v2 {
        req.q("start-after")
    } else {
        req.q("marker")
    };
    let after = match (&token, start_after) {
        (_, _) if ctx.listing == Some(ListingQuirk::IgnoreStartAfter) => None,
        (Some(t), _) => Some(t.as_str()),
        (None, Some(s)) if !s.is_empty() => Some(s),
        _ => None,
    };
    let now = ctx.state.now_millis();
    let bucket = ctx.bucket();
    let doc = ctx.state.store.read(bucket, |b| {
        let mut page = page(&b.objects, prefix, delimiter, after, max);
        if ctx.listing == Some(ListingQuirk::Unsorted) {
            page.entries.reverse();
        }
        render(ctx, v2, &page, max, now, after)
    })?;
    Ok(Reply::ok().xml(doc))
}

/// Whether an extra key (URL-encoded, maybe not UTF-8) belongs on this page, as a real store
/// would list it: once, on the page whose range holds it.
fn extra_belongs(raw: &str, prefix: &str, after: Option<&str>, page: &Page<'_, Object>) -> bool {
    let bytes = percent_decode(raw);
    let last = match page.entries.last() {
        Some(Entry::Key(k, _)) => Some(k.as_bytes()),
        _ => None,
    };
    bytes.starts_with(prefix.as_bytes())
        && after.is_none_or(|a| bytes.as_slice() > a.as_bytes())
        && (!page.truncated || last.is_some_and(|l| bytes.as_slice() <= l))
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let (mut out, mut i) = (Vec::with_capacity(b.len()), 0);
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn render(
    ctx: &Ctx<'_>,
    v2: bool,
    page: &Page<'_, Object>,
    max: usize,
    now: i64,
    after: Option<&str>,
) -> String {
    let req = ctx.req;
    let dialect = req.dialect;
    let encode = req.url_encoding();
    let enc = |s: &str| if encode { url_encode(s) } else { s.to_owned() };
    let mut x = Xml::new();
    x.open_root(
        "ListBucketResult",
        (dialect == Dialect::S3).then_some(S3_NAMESPACE),
    );
    x.leaf("Name", ctx.bucket());
    x.leaf("Prefix", enc(req.q("prefix").unwrap_or("")));
    if v2 {
        x.opt_leaf("StartAfter", req.q("start-after").map(enc));
        x.opt_leaf(
            "ContinuationToken",
            req.q("continuation-token").filter(|t| !t.is_empty()),
        );
    } else {
        x.leaf("Marker", enc(req.q("marker").unwrap_or("")));
    }
    x.leaf("MaxKeys", max.to_string());
    x.opt_leaf("Delimiter", req.q("delimiter").map(enc));
    if encode {
        x.leaf("EncodingType", "url");
    }
    x.leaf("IsTruncated", page.truncated.to_string());
    match (&page.next_marker, v2) {
        (Some(m), true) => x.leaf("NextContinuationToken", encode_token(m)),
        (Some(m), false) => x.leaf("NextMarker", enc(m)),
        (None, _) => {}
    }
    if v2 {
        x.leaf("KeyCount", page.entries.len().to_string());
    }
    let owner = !v2
        || req
            .q("fetch-owner")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    for e in &page.entries {
        if let Entry::Key(_, obj) = e {
            contents(&mut x, dialect, &obj.meta, &enc(&obj.meta.key), owner, now);
        }
    }
    if let Some(ListingQuirk::ExtraKey(raw)) = &ctx.listing
        && let Some(Entry::Key(_, obj)) = page.entries.first()
        && extra_belongs(raw, req.q("prefix").unwrap_or(""), after, page)
    {
        contents(&mut x, dialect, &obj.meta, raw, owner, now);
    }
    for e in &page.entries {
        if let Entry::Prefix(p) = e {
            x.open("CommonPrefixes");
            x.leaf("Prefix", enc(p));
            x.close("CommonPrefixes");
        }
    }
    x.close("ListBucketResult");
    x.finish()
}

fn contents(x: &mut Xml, dialect: Dialect, meta: &ObjectMeta, key: &str, owner: bool, now: i64) {
    x.open("Contents");
    x.leaf("Key", key);
    x.leaf("LastModified", iso8601(meta.last_modified_ms));
    x.leaf("ETag", quoted_etag(dialect, &meta.etag));
    if dialect == Dialect::Oss {
        x.leaf("Type", meta.object_type.name());
    }
    x.leaf("Size", meta.size.to_string());
    x.leaf(
        "StorageClass",
        storage_class_name(dialect, meta.attrs.storage_class),
    );
    if owner {
        owner_xml(x);
    }
    if let Some(r) = meta.restore_header(now) {
        match dialect {
            Dialect::Oss => x.leaf("RestoreInfo", r),
            Dialect::S3 => {
                x.open("RestoreStatus");
                x.leaf("IsRestoreInProgress", r.contains("\"true\"").to_string());
                x.close("RestoreStatus");
            }
        }
    }
    x.close("Contents");
}

/// The single owner every bucket and object has here.
pub fn owner_xml(x: &mut Xml) {
    x.open("Owner");
    x.leaf("ID", OWNER_ID);
    x.leaf("DisplayName", OWNER_ID);
    x.close("Owner");
}

pub const OWNER_ID: &str = "1000000000000000";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map(keys: &[&str]) -> BTreeMap<String, ()> {
        keys.iter().map(|k| ((*k).to_owned(), ())).collect()
    }

    fn names<V>(p: &Page<'_, V>) -> Vec<String> {
        p.entries
            .iter()
            .map(|e| match e {
                Entry::Key(k, _) => (*k).to_owned(),
                Entry::Prefix(p) => format!("P:{p}"),
            })
            .collect()
    }

    #[test]
    fn delimiter_groups_and_counts_once() {
        let m = map(&["a/1", "a/2", "b", "c/x/1", "c/y", "d"]);
        let p = page(&m, "", "/", None, 3);
        assert_eq!(names(&p), ["P:a/", "b", "P:c/"]);
        assert!(p.truncated);
        assert_eq!(p.next_marker.as_deref(), Some("c/"));
        let p2 = page(&m, "", "/", p.next_marker.as_deref(), 3);
        assert_eq!(names(&p2), ["d"]);
        assert!(!p2.truncated);
        let p3 = page(&m, "c/", "/", None, 10);
        assert_eq!(names(&p3), ["P:c/x/", "c/y"]);
    }

    #[test]
    fn not_truncated_when_only_the_last_prefix_remains() {
        let m = map(&["a/1", "a/2", "a/3"]);
        let p = page(&m, "", "/", None, 1);
        assert_eq!(names(&p), ["P:a/"]);
        assert!(!p.truncated);
    }

    #[test]
    fn tokens_round_trip() {
        for s in ["", "a b/c", "中文+%?#"] {
            assert_eq!(decode_token(&encode_token(s)).unwrap(), s);
        }
        assert!(decode_token("%%%").is_err());
    }

    proptest! {
        #[test]
        fn pagination_returns_every_key_once_in_order(
            keys in proptest::collection::btree_set("[ab/ä+]{1,6}", 0..40),
            max in 1usize..7,
            delimiter in prop_oneof![Just(""), Just("/"), Just("b")],
            prefix in prop_oneof![Just(""), Just("a"), Just("b/")],
        ) {
            let m: BTreeMap<String, ()> = keys.iter().map(|k| (k.clone(), ())).collect();
            let mut after: Option<String> = None;
            let mut seen: Vec<String> = Vec::new();
            for _ in 0..100 {
                let p = page(&m, prefix, delimiter, after.as_deref(), max);
                prop_assert!(p.entries.len() <= max);
                seen.extend(names(&p));
                if !p.truncated { break; }
                after = p.next_marker.clone();
            }
            let mut expected: Vec<String> = Vec::new();
            for k in m.keys().filter(|k| k.starts_with(prefix)) {
                let rest = &k[prefix.len()..];
                match (!delimiter.is_empty()).then(|| rest.find(delimiter)).flatten() {
                    Some(i) => {
                        let cp = format!("P:{}", &k[..prefix.len() + i + delimiter.len()]);
                        if !expected.contains(&cp) { expected.push(cp); }
                    }
                    None => expected.push(k.clone()),
                }
            }
            prop_assert_eq!(seen, expected);
        }
    }
}
