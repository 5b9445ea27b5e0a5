//! Bucket operations, website configuration and unknown operations.

use crate::common::*;

#[tokio::test]
async fn bucket_lifecycle_and_errors() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let r = oss.bucket("PUT", "new-bucket").send().await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = oss.bucket("PUT", "new-bucket").send().await;
    assert_eq!((r.status, r.code().as_str()), (409, "BucketAlreadyExists"));
    for bad in ["ab", "Upper", "under_score", "-dash"] {
        let r = oss.bucket("PUT", bad).send().await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "InvalidBucketName"),
            "{bad}"
        );
    }
    let body = "<CreateBucketConfiguration><StorageClass>IA</StorageClass><DataRedundancyType>ZRS</DataRedundancyType></CreateBucketConfiguration>";
    assert_eq!(
        oss.bucket("PUT", "ia-bucket")
            .body(body)
            .send()
            .await
            .status,
        200
    );
    let info = oss
        .bucket("GET", "ia-bucket")
        .query("bucketInfo", "")
        .send()
        .await;
    assert_eq!(info.xml("Name").as_deref(), Some("ia-bucket"));
    assert_eq!(info.xml("StorageClass").as_deref(), Some("IA"));
    assert_eq!(info.xml("DataRedundancyType").as_deref(), Some("ZRS"));
    assert_eq!(info.xml("Location").as_deref(), Some("oss-cn-hangzhou"));
    assert_eq!(
        info.xml("ExtranetEndpoint").as_deref(),
        Some("oss-cn-hangzhou.aliyuncs.com")
    );
    // Objects without a class header take the bucket's.
    oss.req("PUT", Some("ia-bucket"), Some("k"))
        .body("x")
        .send()
        .await;
    let head = oss.req("HEAD", Some("ia-bucket"), Some("k")).send().await;
    assert_eq!(head.header("x-oss-storage-class").as_deref(), Some("IA"));

    let loc = oss
        .bucket("GET", "new-bucket")
        .query("location", "")
        .send()
        .await;
    assert_eq!(
        loc.xml("LocationConstraint").as_deref(),
        Some("oss-cn-hangzhou")
    );

    let list = oss.req("GET", None, None).send().await;
    assert_eq!(list.status, 200);
    assert_eq!(list.xml_all("Name"), ["bkt", "ia-bucket", "new-bucket"]);
    let page = oss
        .req("GET", None, None)
        .query("max-keys", "2")
        .send()
        .await;
    assert_eq!(page.xml_all("Name"), ["bkt", "ia-bucket"]);
    assert_eq!(page.xml("IsTruncated").as_deref(), Some("true"));
    assert_eq!(page.xml("NextMarker").as_deref(), Some("ia-bucket"));

    let r = oss.bucket("DELETE", "ia-bucket").send().await;
    assert_eq!((r.status, r.code().as_str()), (409, "BucketNotEmpty"));
    oss.req("DELETE", Some("ia-bucket"), Some("k")).send().await;
    assert_eq!(oss.bucket("DELETE", "ia-bucket").send().await.status, 204);
    let r = oss
        .bucket("GET", "ia-bucket")
        .query("bucketInfo", "")
        .send()
        .await;
    assert_eq!((r.status, r.code().as_str()), (404, "NoSuchBucket"));
    let r = oss.bucket("DELETE", "ia-bucket").send().await;
    assert_eq!(r.code(), "NoSuchBucket");
}

#[tokio::test]
async fn too_many_buckets() {
    let emu = emulator().await;
    for i in 1..100 {
        emu.create_bucket(&format!("b-{i:03}")).unwrap();
    }
    let r = Oss::v4(&emu).bucket("PUT", "one-too-many").send().await;
    assert_eq!((r.status, r.code().as_str()), (400, "TooManyBuckets"));
}

const WEBSITE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<WebsiteConfiguration>
  <IndexDocument><Suffix>index.html</Suffix></IndexDocument>
  <RoutingRules>
    <RoutingRule>
      <RuleNumber>1</RuleNumber>
      <Condition><KeyPrefixEquals>images/</KeyPrefixEquals><HttpErrorCodeReturnedEquals>404</HttpErrorCodeReturnedEquals></Condition>
      <Redirect>
        <RedirectType>Mirror</RedirectType>
        <MirrorURL>https://origin.example.com/</MirrorURL>
        <MirrorPassQueryString>true</MirrorPassQueryString>
        <MirrorFollowRedirect>true</MirrorFollowRedirect>
        <MirrorCheckMd5>false</MirrorCheckMd5>
        <MirrorHeaders><PassAll>true</PassAll></MirrorHeaders>
      </Redirect>
    </RoutingRule>
  </RoutingRules>
</WebsiteConfiguration>"#;

#[tokio::test]
async fn website_configuration_round_trip() {
    let emu = emulator().await;
    let oss = Oss::v1(&emu);
    let r = oss.bucket("GET", "bkt").query("website", "").send().await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (404, "NoSuchWebsiteConfiguration")
    );
    let r = oss
        .bucket("PUT", "bkt")
        .query("website", "")
        .header("content-type", "application/xml")
        .header("content-md5", &md5_b64(WEBSITE.as_bytes()))
        .body(WEBSITE)
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = Oss::v4(&emu)
        .bucket("GET", "bkt")
        .query("website", "")
        .send()
        .await;
    assert_eq!(r.text(), WEBSITE);
    assert_eq!(
        r.xml("MirrorURL").as_deref(),
        Some("https://origin.example.com/")
    );
    assert_eq!(
        oss.bucket("DELETE", "bkt")
            .query("website", "")
            .send()
            .await
            .status,
        204
    );
    assert_eq!(
        oss.bucket("GET", "bkt")
            .query("website", "")
            .send()
            .await
            .code(),
        "NoSuchWebsiteConfiguration"
    );
}

#[tokio::test]
async fn website_configuration_is_validated() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    let put = |body: String| oss.bucket("PUT", "bkt").query("website", "").body(body);
    let r = put(WEBSITE.replace("https://origin.example.com/", "ftp://x/"))
        .send()
        .await;
    assert_eq!(r.code(), "InvalidArgument");
    let r = put(WEBSITE.replace("<RuleNumber>1</RuleNumber>", ""))
        .send()
        .await;
    assert_eq!(r.code(), "InvalidArgument");
    let r = put(WEBSITE.replace("</WebsiteConfiguration>", ""))
        .send()
        .await;
    assert_eq!(r.code(), "MalformedXML");
    let r = put("<Other/>".to_owned()).send().await;
    assert_eq!(r.code(), "MalformedXML");
    let rule = "<RoutingRule><RuleNumber>N</RuleNumber><Redirect><RedirectType>External</RedirectType></Redirect></RoutingRule>";
    let rules: String = (1..=21)
        .map(|i| rule.replace('N', &i.to_string()))
        .collect();
    let r = put(format!(
        "<WebsiteConfiguration><RoutingRules>{rules}</RoutingRules></WebsiteConfiguration>"
    ))
    .send()
    .await;
    assert_eq!(r.code(), "InvalidArgument", "at most 20 rules");
}

#[tokio::test]
async fn unknown_operations_are_not_implemented() {
    let emu = emulator().await;
    let oss = Oss::v4(&emu);
    for req in [
        oss.bucket("GET", "bkt").query("acl", ""),
        oss.bucket("PUT", "bkt").query("lifecycle", ""),
        oss.bucket("GET", "bkt").query("tagging", ""),
        oss.object("GET", "k").query("acl", ""),
        oss.object("POST", "k").query("tagging", ""),
        oss.object("POST", "k")
            .query("append", "")
            .query("position", "0"),
        oss.req("DELETE", None, None),
    ] {
        let r = req.send().await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (501, "NotImplemented"),
            "{}",
            r.text()
        );
        assert!(r.xml("Message").unwrap().contains("does not implement"));
    }
}
