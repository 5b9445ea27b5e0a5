//! Static website hosting and mirroring-based back-to-origin (PutBucketWebsite,
//! GetBucketWebsite, DeleteBucketWebsite).
//!
//! A cut-over can point a bucket's 404s at the old origin with a `Mirror` routing rule, so reads
//! succeed while the migration is still copying. [`WebsiteConfiguration`] is the XML document
//! itself as serde types: what GetBucketWebsite returns can be written back with
//! PutBucketWebsite unchanged (fields ferry does not model are not preserved).

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::oss::client::{OssClient, Request};
use crate::oss::error::Error;
use crate::oss::xml;

/// `<WebsiteConfiguration>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WebsiteConfiguration {
    /// `<IndexDocument>`: the default page served for directory-style requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_document: Option<IndexDocument>,
    /// `<ErrorDocument>`: the page served when an object is not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_document: Option<ErrorDocument>,
    /// Evaluated in `rule_number` order; the first match wins (at most 20).
    #[serde(default, with = "routing_rules", skip_serializing_if = "Vec::is_empty")]
    pub routing_rules: Vec<RoutingRule>,
}

/// `<IndexDocument>`: the default page of a static website.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexDocument {
    /// `<Suffix>`: the index page's name, e.g. `index.html`.
    pub suffix: String,
    /// `<SupportSubDir>`: whether a request for a subdirectory serves that directory's index page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_sub_dir: Option<bool>,
    /// `<Type>`: the subdirectory behaviour OSS applies with `support_sub_dir` (`0`, `1` or `2`).
    #[serde(default, rename = "Type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<u8>,
}

/// `<ErrorDocument>`: the page served when a requested object does not exist.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorDocument {
    /// `<Key>`: the key of the error page object.
    pub key: String,
    /// `<HttpStatus>`: the status code returned with the error page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
}

/// `<RoutingRule>`: when `condition` matches, do `redirect`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoutingRule {
    /// `<RuleNumber>`: the rule's position in evaluation order.
    pub rule_number: u32,
    /// `<Condition>`: when the rule applies.
    #[serde(default)]
    pub condition: RoutingCondition,
    /// `<Redirect>`: what the rule does when it applies.
    #[serde(default)]
    pub redirect: Redirect,
}

/// `<Condition>`: the request a routing rule matches; every set field must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoutingCondition {
    /// `<KeyPrefixEquals>`: only keys starting with this prefix match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix_equals: Option<String>,
    /// `<KeySuffixEquals>`: only keys ending with this suffix match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_suffix_equals: Option<String>,
    /// Must be 404 for `Mirror` rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_error_code_returned_equals: Option<u16>,
    /// `<IncludeHeader>` elements: request headers that must be present (and optionally equal a
    /// value).
    #[serde(
        default,
        rename = "IncludeHeader",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub include_headers: Vec<IncludeHeader>,
}

/// `<IncludeHeader>`: a request header a routing condition requires.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IncludeHeader {
    /// `<Key>`: the header's name.
    pub key: String,
    /// `<Equals>`: the value the header must have; `None` only requires the header to be present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
}

/// `<Redirect>`: `Mirror` (fetch from an origin on a miss), `External` or `AliCDN`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Redirect {
    /// `<RedirectType>`: `Mirror`, `External` or `AliCDN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_type: Option<String>,
    /// `<PassQueryString>`: whether the request's query string is kept on redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_query_string: Option<bool>,
    /// `http(s)://…/`, ending with `/`; the key is appended.
    #[serde(default, rename = "MirrorURL", skip_serializing_if = "Option::is_none")]
    pub mirror_url: Option<String>,
    /// `<MirrorSNI>`: whether the mirror fetch sends SNI to an HTTPS origin.
    #[serde(default, rename = "MirrorSNI", skip_serializing_if = "Option::is_none")]
    pub mirror_sni: Option<bool>,
    /// `<MirrorPassQueryString>`: whether the mirror fetch passes the request's query string to the
    /// origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_pass_query_string: Option<bool>,
    /// `<MirrorFollowRedirect>`: whether the mirror fetch follows a 3xx from the origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_follow_redirect: Option<bool>,
    /// `<MirrorCheckMd5>`: whether OSS checks the origin's `Content-MD5` on a mirror fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_check_md5: Option<bool>,
    /// `<MirrorPassOriginalSlashes>`: whether consecutive slashes in the key are passed to the
    /// origin unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_pass_original_slashes: Option<bool>,
    /// `<MirrorURLSlave>`: a standby origin tried when the primary `MirrorURL` fails.
    #[serde(
        default,
        rename = "MirrorURLSlave",
        skip_serializing_if = "Option::is_none"
    )]
    pub mirror_url_slave: Option<String>,
    /// `<MirrorURLProbe>`: the URL OSS probes to decide whether the primary origin is healthy.
    #[serde(
        default,
        rename = "MirrorURLProbe",
        skip_serializing_if = "Option::is_none"
    )]
    pub mirror_url_probe: Option<String>,
    /// `<MirrorHeaders>`: which request headers the mirror fetch passes to the origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_headers: Option<MirrorHeaders>,
    /// `<MirrorSaveOssMeta>`: whether the origin's `x-oss-meta-*` headers are stored with the
    /// fetched object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_save_oss_meta: Option<bool>,
    /// `<MirrorUserLastModified>`: whether the stored object keeps the origin's `Last-Modified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_user_last_modified: Option<bool>,
    /// `<MirrorAsyncStatus>`: the status code returned while the object is fetched from the origin
    /// in the background.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_async_status: Option<u16>,
    /// `<TransparentMirrorResponseCodes>`: origin status codes passed through to the client,
    /// comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transparent_mirror_response_codes: Option<String>,
    /// `<ReplaceKeyWith>`: the key the redirect uses in place of the requested one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_key_with: Option<String>,
    /// `<ReplaceKeyPrefixWith>`: the prefix that replaces the matched `KeyPrefixEquals`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_key_prefix_with: Option<String>,
    /// `<EnableReplacePrefix>`: whether `replace_key_prefix_with` is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_replace_prefix: Option<bool>,
    /// `<Protocol>`: `http` or `https` for `External` redirects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `<HostName>`: the host an `External` redirect points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    /// 301, 302 or 307 (External and AliCDN only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_redirect_code: Option<u16>,
}

/// Which request headers a mirror fetch passes to the origin.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MirrorHeaders {
    /// `<PassAll>`: whether all request headers are passed to the origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_all: Option<bool>,
    /// `<Pass>` elements: headers passed to the origin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pass: Vec<String>,
    /// `<Remove>` elements: headers not passed to the origin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// `<Set>` elements: headers set to a fixed value on the origin request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<MirrorHeaderSet>,
}

/// `<Set>`: a header the mirror fetch sends to the origin with a fixed value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MirrorHeaderSet {
    /// `<Key>`: the header's name.
    pub key: String,
    /// `<Value>`: the header's value.
    pub value: String,
}

/// `<RoutingRules><RoutingRule>…</RoutingRule>…</RoutingRules>` as a plain `Vec`.
mod routing_rules {
    use super::RoutingRule;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize)]
    struct Out<'a> {
        #[serde(rename = "RoutingRule")]
        rules: &'a [RoutingRule],
    }

    #[derive(Deserialize)]
    struct In {
        #[serde(rename = "RoutingRule", default)]
        rules: Vec<RoutingRule>,
    }

    pub fn serialize<S: Serializer>(rules: &[RoutingRule], s: S) -> Result<S::Ok, S::Error> {
        Out { rules }.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RoutingRule>, D::Error> {
        In::deserialize(d).map(|w| w.rules)
    }
}

impl WebsiteConfiguration {
    /// The XML document, as PutBucketWebsite sends it.
    pub fn to_xml(&self) -> Result<String, Error> {
        xml::render("WebsiteConfiguration", self)
    }

    /// Parses a `<WebsiteConfiguration>` document.
    pub fn from_xml(document: &str) -> Result<Self, Error> {
        xml::parse(
            document.as_bytes(),
            "WebsiteConfiguration",
            "GetBucketWebsite",
            "",
        )
    }
}

impl OssClient {
    /// Sets the bucket's website configuration (index/error documents, routing rules).
    pub async fn put_bucket_website(
        &self,
        bucket: &str,
        config: &WebsiteConfiguration,
    ) -> Result<(), Error> {
        let req = Request::new("PutBucketWebsite", Method::PUT)
            .bucket(bucket)
            .query("website", "")
            .xml_body(config.to_xml()?);
        self.execute(req, |_| async { Ok(()) }).await
    }

    /// The bucket's website configuration (`NoSuchWebsiteConfiguration` if none is set).
    pub async fn get_bucket_website(&self, bucket: &str) -> Result<WebsiteConfiguration, Error> {
        let req = Request::new("GetBucketWebsite", Method::GET)
            .bucket(bucket)
            .query("website", "");
        self.execute(
            req,
            |sent| async move { sent.xml("WebsiteConfiguration").await },
        )
        .await
    }

    /// Removes the bucket's website configuration, including any mirror rules.
    pub async fn delete_bucket_website(&self, bucket: &str) -> Result<(), Error> {
        let req = Request::new("DeleteBucketWebsite", Method::DELETE)
            .bucket(bucket)
            .query("website", "");
        self.execute(req, |_| async { Ok(()) }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIRROR: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<WebsiteConfiguration>
  <IndexDocument><Suffix>index.html</Suffix></IndexDocument>
  <RoutingRules>
    <RoutingRule>
      <RuleNumber>1</RuleNumber>
      <Condition>
        <KeyPrefixEquals>images/</KeyPrefixEquals>
        <HttpErrorCodeReturnedEquals>404</HttpErrorCodeReturnedEquals>
      </Condition>
      <Redirect>
        <RedirectType>Mirror</RedirectType>
        <MirrorURL>https://origin.example.com/</MirrorURL>
        <MirrorPassQueryString>true</MirrorPassQueryString>
        <MirrorFollowRedirect>true</MirrorFollowRedirect>
        <MirrorCheckMd5>true</MirrorCheckMd5>
        <MirrorHeaders><PassAll>false</PassAll><Pass>x-a</Pass><Pass>x-b</Pass><Set><Key>x-c</Key><Value>1</Value></Set></MirrorHeaders>
      </Redirect>
    </RoutingRule>
    <RoutingRule>
      <RuleNumber>2</RuleNumber>
      <Condition><HttpErrorCodeReturnedEquals>404</HttpErrorCodeReturnedEquals></Condition>
      <Redirect><RedirectType>Mirror</RedirectType><MirrorURL>https://fallback.example.com/</MirrorURL></Redirect>
    </RoutingRule>
  </RoutingRules>
</WebsiteConfiguration>"#;

    #[test]
    fn parses_mirror_rules() {
        let c = WebsiteConfiguration::from_xml(MIRROR).unwrap();
        assert_eq!(c.index_document.as_ref().unwrap().suffix, "index.html");
        assert_eq!(c.routing_rules.len(), 2);
        let r = &c.routing_rules[0];
        assert_eq!(r.rule_number, 1);
        assert_eq!(r.condition.key_prefix_equals.as_deref(), Some("images/"));
        assert_eq!(r.condition.http_error_code_returned_equals, Some(404));
        assert_eq!(r.redirect.redirect_type.as_deref(), Some("Mirror"));
        assert_eq!(
            r.redirect.mirror_url.as_deref(),
            Some("https://origin.example.com/")
        );
        assert_eq!(r.redirect.mirror_check_md5, Some(true));
        let h = r.redirect.mirror_headers.as_ref().unwrap();
        assert_eq!(h.pass, ["x-a", "x-b"]);
        assert_eq!(
            h.set[0],
            MirrorHeaderSet {
                key: "x-c".into(),
                value: "1".into()
            }
        );
    }

    #[test]
    fn round_trips() {
        let c = WebsiteConfiguration::from_xml(MIRROR).unwrap();
        let xml = c.to_xml().unwrap();
        assert!(
            xml.contains("<RoutingRules><RoutingRule><RuleNumber>1</RuleNumber>"),
            "{xml}"
        );
        assert!(
            xml.contains("<MirrorURL>https://origin.example.com/</MirrorURL>"),
            "{xml}"
        );
        assert!(
            !xml.contains("ErrorDocument"),
            "absent fields stay absent: {xml}"
        );
        assert_eq!(WebsiteConfiguration::from_xml(&xml).unwrap(), c);
        let empty = WebsiteConfiguration::default();
        assert_eq!(
            WebsiteConfiguration::from_xml(&empty.to_xml().unwrap()).unwrap(),
            empty
        );
    }
}
