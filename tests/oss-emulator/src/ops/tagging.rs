//! Object tags: PutObjectTagging, GetObjectTagging and DeleteObjectTagging (`?tagging` on an
//! object), and the tag rules they share with the `x-oss-tagging` header of PutObject,
//! InitiateMultipartUpload and CopyObject.
//!
//! A migration copies tags and then checks them, so the emulator enforces what OSS documents
//! for object tags rather than accepting anything: at most 10 tags, unique keys, keys of 1–128
//! characters and values of at most 256, made of letters, digits, spaces and `+ - = . _ : /`.
//! PutObjectTagging replaces the whole set and, as on OSS, leaves Last-Modified and the ETag
//! alone; DeleteObjectTagging removes every tag (204). A refused tag in the XML body is 400
//! `InvalidTag`, more than 10 tags is 400 `BadRequest`, a body that is not a
//! `<Tagging><TagSet>…` document is `MalformedXML`; the header form keeps answering
//! `InvalidArgument`. The emulator keeps no object versions, so `versionId` is ignored here as
//! it is by every other operation. Both dialects share these rules; the S3 dialect only adds
//! its namespace to the GetObjectTagging document.

use http::Response;
use serde::Deserialize;

use super::Ctx;
use super::attrs;
use crate::body::{Body, Payload};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::request::Dialect;
use crate::xml::{S3_NAMESPACE, Xml};

pub const MAX_TAGS: usize = 10;
pub const MAX_KEY_CHARS: usize = 128;
pub const MAX_VALUE_CHARS: usize = 256;
/// Ten tags at their longest, escaped, fit well within this.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why a tag set is refused; each caller turns it into its own error.
#[derive(Debug, PartialEq, Eq)]
pub enum Problem {
    TooMany(usize),
    BadKey(String),
    BadValue(String, String),
    Duplicate(String),
}

impl Problem {
    pub fn message(&self) -> String {
        match self {
            Problem::TooMany(n) => {
                format!("{n} tags given; an object can have at most {MAX_TAGS}.")
            }
            Problem::BadKey(k) => format!(
                "The tag key '{k}' is invalid: keys are 1-{MAX_KEY_CHARS} characters of letters, digits, spaces and + - = . _ : /"
            ),
            Problem::BadValue(k, v) => format!(
                "The value '{v}' of tag '{k}' is invalid: values are at most {MAX_VALUE_CHARS} characters of letters, digits, spaces and + - = . _ : /"
            ),
            Problem::Duplicate(k) => format!("The tag key '{k}' is used more than once."),
        }
    }
}

fn allowed_char(c: char) -> bool {
    c.is_alphanumeric() || " +-=._:/".contains(c)
}

fn valid_key(k: &str) -> bool {
    !k.is_empty() && k.chars().count() <= MAX_KEY_CHARS && k.chars().all(allowed_char)
}

fn valid_value(v: &str) -> bool {
    v.chars().count() <= MAX_VALUE_CHARS && v.chars().all(allowed_char)
}

/// Checks a whole tag set against the OSS rules.
pub fn check(tags: &[(String, String)]) -> Result<(), Problem> {
    if tags.len() > MAX_TAGS {
        return Err(Problem::TooMany(tags.len()));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if !valid_key(k) {
            return Err(Problem::BadKey(k.clone()));
        }
        if !valid_value(v) {
            return Err(Problem::BadValue(k.clone(), v.clone()));
        }
        if tags[..i].iter().any(|(other, _)| other == k) {
            return Err(Problem::Duplicate(k.clone()));
        }
    }
    Ok(())
}

/// Tags from the header form `k1=v1&k2=v2` (URL-encoded keys and values; `k` alone has an
/// empty value). A second raw `=` in one pair is a format error, as on OSS.
pub fn parse_header(value: &str) -> Result<Vec<(String, String)>, ApiError> {
    if let Some(pair) = value.split('&').find(|p| p.matches('=').count() > 1) {
        return Err(ApiError::invalid_argument(format!(
            "The tag '{pair}' is not in key or key=value format; URL-encode '=' inside keys and values"
        )));
    }
    let tags = crate::routing::parse_query(Some(value));
    check(&tags).map_err(|p| ApiError::invalid_argument(p.message()))?;
    Ok(tags)
}

/// The error PutObjectTagging answers for a refused tag set.
fn body_error(problem: Problem) -> ApiError {
    let code = match problem {
        Problem::TooMany(_) => "BadRequest",
        _ => "InvalidTag",
    };
    ApiError::new(400, code, problem.message())
}

#[derive(Deserialize)]
struct TaggingDoc {
    #[serde(rename = "TagSet", default)]
    tag_set: Option<TagSetDoc>,
}

#[derive(Deserialize)]
struct TagSetDoc {
    #[serde(rename = "Tag", default)]
    tags: Vec<TagDoc>,
}

#[derive(Deserialize)]
struct TagDoc {
    #[serde(rename = "Key", default)]
    key: Option<String>,
    #[serde(rename = "Value", default)]
    value: Option<String>,
}

/// Reads a `<Tagging><TagSet><Tag><Key/><Value/></Tag>…</TagSet></Tagging>` body; a Tag
/// without a Value has an empty one.
pub fn parse_body(body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    crate::xml::check_root(body, "Tagging")?;
    let doc: TaggingDoc = crate::xml::parse(body)?;
    let set = doc
        .tag_set
        .ok_or_else(|| ApiError::malformed_xml("the document must contain a <TagSet> element"))?;
    Ok(set
        .tags
        .into_iter()
        .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
        .collect())
}

/// The GetObjectTagging document.
pub fn document(dialect: Dialect, tags: &[(String, String)]) -> String {
    let mut x = Xml::new();
    x.open_root("Tagging", (dialect == Dialect::S3).then_some(S3_NAMESPACE));
    x.open("TagSet");
    for (k, v) in tags {
        x.open("Tag");
        x.leaf("Key", k);
        x.leaf("Value", v);
        x.close("Tag");
    }
    x.close("TagSet");
    x.close("Tagging");
    x.finish()
}

fn check_body_md5(ctx: &Ctx<'_>, body: &[u8]) -> Result<(), ApiError> {
    use md5::{Digest, Md5};
    match attrs::content_md5(ctx.req)? {
        Some(md5) => attrs::check_md5(Some(md5), &Md5::digest(body).into()),
        None => Ok(()),
    }
}

fn set_tags(ctx: &Ctx<'_>, tags: Vec<(String, String)>) -> Result<(), ApiError> {
    ctx.state
        .store
        .update_object(ctx.bucket(), ctx.key(), |meta| {
            meta.attrs.tags = tags;
            Ok(())
        })
}

/// PutObjectTagging: replaces every tag of an existing object.
pub async fn put(ctx: &Ctx<'_>, payload: Payload) -> Result<Response<Body>, ApiError> {
    ctx.state.store.bucket(ctx.bucket())?;
    let body = payload.read_all(MAX_BODY_BYTES).await?;
    check_body_md5(ctx, &body)?;
    let tags = parse_body(&body)?;
    check(&tags).map_err(body_error)?;
    set_tags(ctx, tags)?;
    Ok(Reply::ok().empty())
}

pub fn get(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let obj = ctx.state.store.object(ctx.bucket(), ctx.key())?;
    Ok(Reply::ok().xml(document(ctx.req.dialect, &obj.meta.attrs.tags)))
}

pub fn delete(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    set_tags(ctx, Vec::new())?;
    Ok(Reply::new(204).empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rules() {
        assert_eq!(check(&tags(&[("a b+-=._:/中", "x"), ("k", "")])), Ok(()));
        let longest = tags(&[(&"k".repeat(128), &"v".repeat(256))]);
        assert_eq!(check(&longest), Ok(()));
        assert!(matches!(
            check(&tags(&[(&"k".repeat(129), "v")])),
            Err(Problem::BadKey(_))
        ));
        assert!(matches!(
            check(&tags(&[("k", &"v".repeat(257))])),
            Err(Problem::BadValue(..))
        ));
        assert!(matches!(
            check(&tags(&[("", "v")])),
            Err(Problem::BadKey(_))
        ));
        assert!(matches!(
            check(&tags(&[("a&", "v")])),
            Err(Problem::BadKey(_))
        ));
        assert!(matches!(
            check(&tags(&[("a", "%")])),
            Err(Problem::BadValue(..))
        ));
        assert_eq!(
            check(&tags(&[("a", "1"), ("a", "2")])),
            Err(Problem::Duplicate("a".into()))
        );
        let eleven: Vec<(String, String)> =
            (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
        assert_eq!(check(&eleven), Err(Problem::TooMany(11)));
    }

    #[test]
    fn header_form() {
        assert_eq!(
            parse_header("a=1&b=x%20y&c").unwrap(),
            tags(&[("a", "1"), ("b", "x y"), ("c", "")])
        );
        assert_eq!(parse_header("a=b%3Dc").unwrap(), tags(&[("a", "b=c")]));
        assert!(parse_header("aa=bb=cc").is_err());
    }

    #[test]
    fn body_form_keeps_spaces_and_escapes() {
        let body = b"<Tagging><TagSet><Tag><Key> a </Key><Value>x &amp; y</Value></Tag>\
            <Tag><Key>b</Key></Tag><Tag><Key>c</Key><Value/></Tag></TagSet></Tagging>";
        assert_eq!(
            parse_body(body).unwrap(),
            tags(&[(" a ", "x & y"), ("b", ""), ("c", "")])
        );
        let empty = parse_body(b"<Tagging><TagSet/></Tagging>").unwrap();
        assert!(empty.is_empty());
        for bad in [
            &b"<Tagging>"[..],
            b"<Other><TagSet/></Other>",
            b"<Tagging></Tagging>",
            b"",
        ] {
            assert_eq!(parse_body(bad).unwrap_err().code, "MalformedXML");
        }
    }

    #[test]
    fn document_round_trips() {
        let t = tags(&[("k 1", "a<b"), ("k2", "")]);
        let doc = document(Dialect::Oss, &t);
        assert_eq!(parse_body(doc.as_bytes()).unwrap(), t);
        assert!(document(Dialect::S3, &t).contains(S3_NAMESPACE));
    }
}
