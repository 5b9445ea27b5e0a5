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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_document: Option<IndexDocument>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_document: Option<ErrorDocument>,
    /// Evaluated in `rule_number` order; the first match wins (at most 20).
    #[serde(default, with = "routing_rules", skip_serializing_if = "Vec::is_empty")]
    pub routing_rules: Vec<RoutingRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexDocument {
    pub suffix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_sub_dir: Option<bool>,
    #[serde(default, rename = "Type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorDocument {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
}

/// `<RoutingRule>`: when `condition` matches, do `redirect`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoutingRule {
    pub rule_number: u32,
    #[serde(default)]
    pub condition: RoutingCondition,
    #[serde(default)]
    pub redirect: Redirect,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoutingCondition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix_equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_suffix_equals: Option<String>,
    /// Must be 404 for `Mirror` rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_error_code_returned_equals: Option<u16>,
    #[serde(
        default,
        rename = "IncludeHeader",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub include_headers: Vec<IncludeHeader>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IncludeHeader {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
}

/// `<Redirect>`: `Mirror` (fetch from an origin on a miss), `External` or `AliCDN`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Redirect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_query_string: Option<bool>,
    /// `http(s)://…/`, ending with `/`; the key is appended.
    #[serde(default, rename = "MirrorURL", skip_serializing_if = "Option::is_none")]
    pub mirror_url: Option<String>,
    #[serde(default, rename = "MirrorSNI", skip_serializing_if = "Option::is_none")]
    pub mirror_sni: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_pass_query_string: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_follow_redirect: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_check_md5: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_pass_original_slashes: Option<bool>,
    #[serde(
        default,
        rename = "MirrorURLSlave",
        skip_serializing_if = "Option::is_none"
    )]
    pub mirror_url_slave: Option<String>,
    #[serde(
        default,
        rename = "MirrorURLProbe",
        skip_serializing_if = "Option::is_none"
    )]
    pub mirror_url_probe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_headers: Option<MirrorHeaders>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_save_oss_meta: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_user_last_modified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_async_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transparent_mirror_response_codes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_key_with: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_key_prefix_with: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_replace_prefix: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_all: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pass: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<MirrorHeaderSet>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MirrorHeaderSet {
    pub key: String,
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
