//! PutBucketWebsite / GetBucketWebsite / DeleteBucketWebsite: the static-website and mirroring
//! (back-to-origin) configuration. The document is validated for the fields a migration relies
//! on (rule numbers, redirect type, mirror URL) and stored as sent, so GET returns what was PUT,
//! including RoutingRules the emulator does not act on — except that booleans come back in
//! OSS's canonical `true`/`false` (OSS parses and re-serialises the document; oss2 writes
//! `True` but reads only `true`).

use http::Response;
use serde::Deserialize;

use super::Ctx;
use crate::body::{Body, Payload};
use crate::error::ApiError;
use crate::reply::Reply;

const MAX_RULES: usize = 20;

#[derive(Deserialize)]
struct WebsiteConfiguration {
    #[serde(rename = "RoutingRules", default)]
    routing_rules: Option<RoutingRules>,
}

#[derive(Deserialize)]
struct RoutingRules {
    #[serde(rename = "RoutingRule", default)]
    rules: Vec<RoutingRule>,
}

#[derive(Deserialize)]
struct RoutingRule {
    #[serde(rename = "RuleNumber", default)]
    number: Option<i64>,
    #[serde(rename = "Condition", default)]
    condition: Option<Condition>,
    #[serde(rename = "Redirect", default)]
    redirect: Option<Redirect>,
}

#[derive(Deserialize)]
struct Condition {
    #[serde(rename = "HttpErrorCodeReturnedEquals", default)]
    http_error_code: Option<i64>,
    #[serde(rename = "KeyPrefixEquals", default)]
    key_prefix: Option<String>,
    #[serde(rename = "KeySuffixEquals", default)]
    key_suffix: Option<String>,
}

#[derive(Deserialize)]
struct Redirect {
    #[serde(rename = "RedirectType", default)]
    redirect_type: Option<String>,
    #[serde(rename = "MirrorURL", default)]
    mirror_url: Option<String>,
    #[serde(rename = "EnableReplacePrefix", default)]
    enable_replace_prefix: Option<String>,
    #[serde(rename = "ReplaceKeyPrefixWith", default)]
    replace_key_prefix_with: Option<String>,
}

/// Where a `Mirror` rule of the stored configuration `doc` fetches `key` from: the first rule
/// (by RuleNumber) whose condition matches a 404 for `key`, as the origin URL with the key
/// appended (its prefix replaced when the rule says so). `None` when no Mirror rule matches.
pub fn mirror_url(doc: &str, key: &str) -> Option<String> {
    let config: WebsiteConfiguration = crate::xml::parse(doc.as_bytes()).ok()?;
    let mut rules = config.routing_rules?.rules;
    rules.sort_by_key(|r| r.number.unwrap_or(i64::MAX));
    let rule = rules.iter().find(|r| matches_miss(r, key))?;
    let redirect = rule.redirect.as_ref()?;
    if redirect.redirect_type.as_deref() != Some("Mirror") {
        return None;
    }
    let prefix = rule
        .condition
        .as_ref()
        .and_then(|c| c.key_prefix.as_deref());
    let replace = redirect
        .enable_replace_prefix
        .as_deref()
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let origin_key = match (replace, prefix) {
        (true, Some(prefix)) => format!(
            "{}{}",
            redirect.replace_key_prefix_with.as_deref().unwrap_or(""),
            &key[prefix.len()..]
        ),
        _ => key.to_owned(),
    };
    Some(format!(
        "{}{}",
        redirect.mirror_url.as_deref()?,
        ferry::oss::sign::uri_encode_path(&origin_key)
    ))
}

/// Whether a rule applies to a missing `key`: its prefix and suffix match, and its error code
/// (if any) is 404.
fn matches_miss(rule: &RoutingRule, key: &str) -> bool {
    let Some(c) = &rule.condition else {
        return true;
    };
    c.http_error_code.is_none_or(|code| code == 404)
        && c.key_prefix.as_deref().is_none_or(|p| key.starts_with(p))
        && c.key_suffix.as_deref().is_none_or(|s| key.ends_with(s))
}

fn validate(config: &WebsiteConfiguration) -> Result<(), ApiError> {
    let rules = config
        .routing_rules
        .as_ref()
        .map(|r| r.rules.as_slice())
        .unwrap_or_default();
    if rules.len() > MAX_RULES {
        return Err(ApiError::invalid_argument(format!(
            "{} routing rules given; at most {MAX_RULES}",
            rules.len()
        )));
    }
    let mut numbers = Vec::new();
    for rule in rules {
        let n = rule.number.filter(|n| *n > 0).ok_or_else(|| {
            ApiError::invalid_argument("Every RoutingRule needs a positive RuleNumber")
        })?;
        if numbers.contains(&n) {
            return Err(ApiError::invalid_argument(format!(
                "RuleNumber {n} is used twice"
            )));
        }
        numbers.push(n);
        let redirect = rule.redirect.as_ref().ok_or_else(|| {
            ApiError::invalid_argument(format!("RoutingRule {n} has no Redirect"))
        })?;
        let kind = redirect.redirect_type.as_deref().unwrap_or("External");
        if !["Mirror", "External", "AliCDN"].contains(&kind) {
            return Err(ApiError::invalid_argument(format!(
                "RoutingRule {n}: RedirectType '{kind}' is invalid: use Mirror, External or AliCDN"
            )));
        }
        if kind == "Mirror" {
            validate_mirror(n, redirect, rule.condition.as_ref())?;
        }
    }
    Ok(())
}

fn validate_mirror(
    n: i64,
    redirect: &Redirect,
    condition: Option<&Condition>,
) -> Result<(), ApiError> {
    let url = redirect.mirror_url.as_deref().unwrap_or("");
    if !(url.starts_with("http://") || url.starts_with("https://")) || !url.ends_with('/') {
        return Err(ApiError::invalid_argument(format!(
            "RoutingRule {n}: MirrorURL '{url}' is invalid: it must start with http:// or https:// and end with '/'"
        )));
    }
    if let Some(code) = condition.and_then(|c| c.http_error_code)
        && code != 404
    {
        return Err(ApiError::invalid_argument(format!(
            "RoutingRule {n}: a Mirror rule's HttpErrorCodeReturnedEquals must be 404, not {code}"
        )));
    }
    Ok(())
}

pub async fn put(ctx: &Ctx<'_>, payload: Payload) -> Result<Response<Body>, ApiError> {
    ctx.state.store.bucket(ctx.bucket())?;
    let body = payload.read_all(256 * 1024).await?;
    crate::xml::check_root(&body, "WebsiteConfiguration")?;
    let config: WebsiteConfiguration = crate::xml::parse(&body)?;
    validate(&config)?;
    let text = canonical_booleans(&String::from_utf8_lossy(&body));
    ctx.state
        .store
        .update_bucket(ctx.bucket(), |info| info.website = Some(text))?;
    Ok(Reply::ok().empty())
}

/// `>True<` / `>FALSE<` element texts as `>true<` / `>false<`.
fn canonical_booleans(doc: &str) -> String {
    let mut out = String::with_capacity(doc.len());
    let mut rest = doc;
    while let Some(i) = rest.find('>') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let end = rest.find('<').unwrap_or(rest.len());
        let text = &rest[..end];
        match text.to_ascii_lowercase().as_str() {
            "true" | "false" => out.push_str(&text.to_ascii_lowercase()),
            _ => out.push_str(text),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

pub fn get(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    let info = ctx.state.store.bucket(ctx.bucket())?;
    let doc = info.website.ok_or_else(|| {
        ApiError::new(
            404,
            "NoSuchWebsiteConfiguration",
            "The specified bucket does not have a website configuration.",
        )
        .with("BucketName", ctx.bucket())
    })?;
    Ok(Reply::ok().xml(doc))
}

pub fn delete(ctx: &Ctx<'_>) -> Result<Response<Body>, ApiError> {
    ctx.state
        .store
        .update_bucket(ctx.bucket(), |info| info.website = None)?;
    Ok(Reply::new(204).empty())
}

#[cfg(test)]
mod tests {
    const RULES: &str = r#"<WebsiteConfiguration><RoutingRules>
        <RoutingRule><RuleNumber>3</RuleNumber>
          <Condition><KeyPrefixEquals>to/</KeyPrefixEquals><HttpErrorCodeReturnedEquals>404</HttpErrorCodeReturnedEquals></Condition>
          <Redirect><RedirectType>Mirror</RedirectType><MirrorURL>http://late/</MirrorURL></Redirect></RoutingRule>
        <RoutingRule><RuleNumber>1</RuleNumber>
          <Condition><KeyPrefixEquals>to/</KeyPrefixEquals><KeySuffixEquals>.jpg</KeySuffixEquals></Condition>
          <Redirect><RedirectType>Mirror</RedirectType><MirrorURL>http://o/b/</MirrorURL>
            <EnableReplacePrefix>true</EnableReplacePrefix><ReplaceKeyPrefixWith>from/</ReplaceKeyPrefixWith></Redirect></RoutingRule>
        <RoutingRule><RuleNumber>2</RuleNumber>
          <Condition><KeyPrefixEquals>ext/</KeyPrefixEquals></Condition>
          <Redirect><RedirectType>External</RedirectType><HostName>h</HostName></Redirect></RoutingRule>
      </RoutingRules></WebsiteConfiguration>"#;

    #[test]
    fn the_first_matching_rule_by_number_names_the_origin() {
        let url = |key| super::mirror_url(RULES, key);
        assert_eq!(
            url("to/a b.jpg").as_deref(),
            Some("http://o/b/from/a%20b.jpg")
        );
        assert_eq!(url("to/a.png").as_deref(), Some("http://late/to/a.png"));
        assert_eq!(url("ext/a.jpg"), None, "an External rule matches first");
        assert_eq!(url("other/a.jpg"), None);
    }

    #[test]
    fn booleans_are_canonical() {
        let doc = "<a><B>True</B><C>FALSE</C><D>truex</D></a>";
        assert_eq!(
            super::canonical_booleans(doc),
            "<a><B>true</B><C>false</C><D>truex</D></a>"
        );
    }
}
