//! The XML documents OSS exchanges, as serde types for quick-xml, and the helpers that turn
//! them into ferry's public results.
//!
//! These structs mirror the wire format (PascalCase element names, no namespace) and stay private
//! to the client; the operations convert them into plain public types, decoding `encoding-type=url`
//! values on the way so callers only ever see real keys.

use serde::{Deserialize, Serialize};

use super::error::Error;

const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// Why a document could not be read; mapped to [`Error::InvalidResponse`].
#[derive(Debug, thiserror::Error)]
enum XmlError {
    #[error("the body is not UTF-8")]
    Utf8,
    #[error("cannot parse <{root}>: {source}")]
    Parse {
        root: &'static str,
        source: quick_xml::DeError,
    },
    #[error("cannot URL-decode {what} {value:?}")]
    Decode { what: &'static str, value: String },
}

/// Parses a response document.
pub(crate) fn parse<T: for<'de> Deserialize<'de>>(
    body: &[u8],
    root: &'static str,
    operation: &'static str,
    request_id: &str,
) -> Result<T, Error> {
    let text =
        std::str::from_utf8(body).map_err(|_| invalid(operation, request_id, XmlError::Utf8))?;
    quick_xml::de::from_str(text)
        .map_err(|source| invalid(operation, request_id, XmlError::Parse { root, source }))
}

/// Serialises a request document with the XML declaration.
pub(crate) fn render<T: Serialize>(root: &str, value: &T) -> Result<String, Error> {
    let body = quick_xml::se::to_string_with_root(root, value).map_err(|e| {
        Error::invalid_argument("XML document", root, format!("cannot serialise it: {e}"))
    })?;
    Ok(format!("{XML_DECLARATION}{body}"))
}

fn invalid(operation: &'static str, request_id: &str, e: XmlError) -> Error {
    Error::InvalidResponse {
        operation,
        request_id: request_id.to_owned(),
        message: e.to_string(),
    }
}

/// Decodes a value OSS URL-encoded for `encoding-type=url`. OSS follows form encoding, so `+`
/// is a space and a literal plus arrives as `%2B` (as the official SDKs decode it).
pub(crate) fn url_decode(
    value: &str,
    what: &'static str,
    operation: &'static str,
    request_id: &str,
) -> Result<String, Error> {
    decode_form(value).ok_or_else(|| {
        invalid(
            operation,
            request_id,
            XmlError::Decode {
                what,
                value: value.to_owned(),
            },
        )
    })
}

fn decode_form(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = value.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Empty elements (`<NextMarker></NextMarker>`) mean "absent".
pub(crate) fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

// ---- errors -----------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ErrorXml {
    pub code: String,
    pub message: String,
    pub request_id: String,
    pub host_id: String,
    #[serde(rename = "EC")]
    pub ec: String,
    pub string_to_sign: Option<String>,
}

// ---- listing ----------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListBucketResult {
    #[serde(default)]
    pub is_truncated: bool,
    pub next_continuation_token: Option<String>,
    pub encoding_type: Option<String>,
    #[serde(default)]
    pub contents: Vec<ContentsXml>,
    #[serde(default)]
    pub common_prefixes: Vec<PrefixXml>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ContentsXml {
    pub key: String,
    pub last_modified: Option<String>,
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
    #[serde(rename = "Type")]
    pub object_type: Option<String>,
    #[serde(default)]
    pub size: u64,
    pub storage_class: Option<String>,
    pub owner: Option<OwnerXml>,
    pub restore_info: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct OwnerXml {
    #[serde(rename = "ID")]
    pub id: String,
    pub display_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PrefixXml {
    pub prefix: String,
}

// ---- multipart --------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct InitiateMultipartUploadResult {
    pub upload_id: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct CompleteMultipartUploadXml {
    #[serde(rename = "Part")]
    pub parts: Vec<CompletePartXml>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CompletePartXml {
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CompleteMultipartUploadResult {
    pub location: Option<String>,
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListPartsResult {
    pub next_part_number_marker: Option<String>,
    #[serde(default)]
    pub is_truncated: bool,
    pub storage_class: Option<String>,
    #[serde(default, rename = "Part")]
    pub parts: Vec<PartXml>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PartXml {
    pub part_number: u32,
    pub last_modified: Option<String>,
    #[serde(rename = "ETag")]
    pub etag: String,
    #[serde(default)]
    pub size: u64,
    pub hash_crc64ecma: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListMultipartUploadsResult {
    pub encoding_type: Option<String>,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<String>,
    #[serde(default)]
    pub is_truncated: bool,
    #[serde(default, rename = "Upload")]
    pub uploads: Vec<UploadXml>,
    #[serde(default)]
    pub common_prefixes: Vec<PrefixXml>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UploadXml {
    pub key: String,
    pub upload_id: String,
    pub initiated: Option<String>,
    pub storage_class: Option<String>,
}

// ---- copy, restore ----------------------------------------------------------------------------

/// `<CopyObjectResult>` and `<CopyPartResult>` have the same fields.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CopyResultXml {
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RestoreRequestXml {
    pub days: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_parameters: Option<JobParametersXml>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct JobParametersXml {
    pub tier: String,
}

// ---- buckets ----------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreateBucketConfigurationXml {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_redundancy_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListAllMyBucketsResult {
    #[serde(default)]
    pub is_truncated: bool,
    pub next_marker: Option<String>,
    #[serde(default)]
    pub buckets: BucketsXml,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct BucketsXml {
    #[serde(default, rename = "Bucket")]
    pub buckets: Vec<BucketXml>,
}

/// A bucket as ListBuckets and GetBucketInfo describe it (GetBucketInfo has more fields).
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct BucketXml {
    pub name: String,
    pub location: Option<String>,
    pub region: Option<String>,
    pub creation_date: Option<String>,
    pub extranet_endpoint: Option<String>,
    pub intranet_endpoint: Option<String>,
    pub storage_class: Option<String>,
    pub data_redundancy_type: Option<String>,
    pub versioning: Option<String>,
    pub transfer_acceleration: Option<String>,
    pub cross_region_replication: Option<String>,
    pub comment: Option<String>,
    pub resource_group_id: Option<String>,
    pub access_control_list: Option<AclXml>,
    pub owner: Option<OwnerXml>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct AclXml {
    pub grant: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BucketInfoXml {
    pub bucket: BucketXml,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LocationConstraintXml {
    #[serde(rename = "$text", default)]
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p<T: for<'de> Deserialize<'de>>(xml: &str) -> T {
        parse(xml.as_bytes(), "test", "Test", "rid").unwrap()
    }

    #[test]
    fn form_decoding() {
        assert_eq!(
            decode_form("a%2Fb%20c+d%2B%E4%B8%AD").unwrap(),
            "a/b c d+中"
        );
        assert_eq!(decode_form("plain").unwrap(), "plain");
        assert_eq!(decode_form("bad%zz"), None);
        assert_eq!(decode_form("cut%4"), None);
        assert_eq!(decode_form("%FF"), None, "not UTF-8");
        let err = url_decode("x%", "key", "ListObjectsV2", "RID")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ListObjectsV2") && err.contains("RID") && err.contains("\"x%\""),
            "{err}"
        );
    }

    #[test]
    fn error_document() {
        let e: ErrorXml = p(r#"<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>SignatureDoesNotMatch</Code>
  <Message>The request signature we calculated does not match.</Message>
  <RequestId>65AF5037</RequestId>
  <HostId>b.oss-cn-hangzhou.aliyuncs.com</HostId>
  <SignatureProvided>abc</SignatureProvided>
  <StringToSign>OSS4-HMAC-SHA256
20250102T030405Z
20250102/cn-hangzhou/oss/aliyun_v4_request
deadbeef</StringToSign>
  <EC>0002-00000040</EC>
</Error>"#);
        assert_eq!(e.code, "SignatureDoesNotMatch");
        assert_eq!(e.request_id, "65AF5037");
        assert_eq!(e.ec, "0002-00000040");
        assert!(
            e.string_to_sign
                .unwrap()
                .starts_with("OSS4-HMAC-SHA256\n20250102T030405Z\n")
        );
    }

    #[test]
    fn list_bucket_result() {
        let r: ListBucketResult = p(r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult>
  <Name>examplebucket</Name>
  <Prefix>a%2F</Prefix>
  <MaxKeys>2</MaxKeys>
  <Delimiter>%2F</Delimiter>
  <EncodingType>url</EncodingType>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>CgJiYw--</NextContinuationToken>
  <KeyCount>3</KeyCount>
  <Contents>
    <Key>a%2F%E4%B8%AD+1.txt</Key>
    <LastModified>2020-06-22T11:42:32.000Z</LastModified>
    <ETag>"5B3C1A2E053D763E1B002CC607C5A0FE"</ETag>
    <Type>Normal</Type>
    <Size>344606</Size>
    <StorageClass>Standard</StorageClass>
  </Contents>
  <Contents>
    <Key>a%2Fb</Key>
    <Size>0</Size>
  </Contents>
  <CommonPrefixes><Prefix>a%2Fsub%2F</Prefix></CommonPrefixes>
</ListBucketResult>"#);
        assert!(r.is_truncated);
        assert_eq!(r.contents.len(), 2);
        assert_eq!(r.contents[0].size, 344606);
        assert_eq!(
            r.contents[0].etag.as_deref(),
            Some("\"5B3C1A2E053D763E1B002CC607C5A0FE\"")
        );
        assert_eq!(r.common_prefixes[0].prefix, "a%2Fsub%2F");
        assert_eq!(decode_form(&r.contents[0].key).unwrap(), "a/中 1.txt");
    }

    #[test]
    fn empty_listing() {
        let r: ListBucketResult = p(
            "<ListBucketResult><Name>b</Name><Prefix></Prefix><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>",
        );
        assert!(r.contents.is_empty() && r.common_prefixes.is_empty() && !r.is_truncated);
        assert_eq!(non_empty(r.next_continuation_token), None);
    }

    #[test]
    fn list_parts_with_crc() {
        let r: ListPartsResult = p(r#"<ListPartsResult>
  <Bucket>b</Bucket><Key>big</Key><UploadId>U1</UploadId>
  <PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker>
  <MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>
  <Part><PartNumber>1</PartNumber><LastModified>2012-02-23T07:01:34.000Z</LastModified>
    <ETag>"3349DC700140D7F86A0784842780****"</ETag><HashCrc64ecma>5409316634556368277</HashCrc64ecma><Size>102400</Size></Part>
  <Part><PartNumber>2</PartNumber><ETag>"E2"</ETag><Size>5</Size></Part>
</ListPartsResult>"#);
        assert_eq!(r.parts.len(), 2);
        assert_eq!(
            r.parts[0].hash_crc64ecma.as_deref(),
            Some("5409316634556368277")
        );
        assert_eq!(r.parts[1].hash_crc64ecma, None);
        assert_eq!(r.next_part_number_marker.as_deref(), Some("2"));
    }

    #[test]
    fn list_uploads_and_buckets_and_location() {
        let r: ListMultipartUploadsResult = p(
            "<ListMultipartUploadsResult><Bucket>b</Bucket><IsTruncated>false</IsTruncated>\
            <Upload><Key>k1</Key><UploadId>U1</UploadId><Initiated>2012-02-23T04:18:23.000Z</Initiated></Upload>\
            <Upload><Key>k2</Key><UploadId>U2</UploadId></Upload></ListMultipartUploadsResult>",
        );
        assert_eq!(r.uploads.len(), 2);
        assert_eq!(r.uploads[1].upload_id, "U2");

        let b: ListAllMyBucketsResult = p(
            "<ListAllMyBucketsResult><Owner><ID>1</ID><DisplayName>1</DisplayName></Owner><Buckets>\
            <Bucket><CreationDate>2014-02-17T18:12:43.000Z</CreationDate><Location>oss-cn-hangzhou</Location><Name>one</Name><StorageClass>Standard</StorageClass></Bucket>\
            <Bucket><Name>two</Name></Bucket></Buckets></ListAllMyBucketsResult>",
        );
        assert_eq!(
            b.buckets
                .buckets
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>(),
            ["one", "two"]
        );

        let l: LocationConstraintXml = p(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint>oss-cn-hangzhou</LocationConstraint>",
        );
        assert_eq!(l.value, "oss-cn-hangzhou");

        let i: BucketInfoXml = p(
            "<BucketInfo><Bucket><Name>b</Name><Location>oss-cn-hangzhou</Location>\
            <ExtranetEndpoint>oss-cn-hangzhou.aliyuncs.com</ExtranetEndpoint><AccessControlList><Grant>private</Grant></AccessControlList>\
            <DataRedundancyType>LRS</DataRedundancyType><Owner><ID>42</ID><DisplayName>42</DisplayName></Owner></Bucket></BucketInfo>",
        );
        assert_eq!(
            i.bucket.access_control_list.unwrap().grant.as_deref(),
            Some("private")
        );
        assert_eq!(i.bucket.owner.unwrap().id, "42");
    }

    #[test]
    fn request_documents() {
        let c = CompleteMultipartUploadXml {
            parts: vec![
                CompletePartXml {
                    part_number: 1,
                    etag: "\"A\"".into(),
                },
                CompletePartXml {
                    part_number: 3,
                    etag: "\"B\"".into(),
                },
            ],
        };
        let xml = render("CompleteMultipartUpload", &c).unwrap();
        assert!(xml.starts_with("<?xml"));
        assert!(xml.contains("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"A\"</ETag></Part><Part><PartNumber>3</PartNumber>"), "{xml}");

        let r = RestoreRequestXml {
            days: 2,
            job_parameters: Some(JobParametersXml {
                tier: "Bulk".into(),
            }),
        };
        assert!(render("RestoreRequest", &r).unwrap().ends_with("<RestoreRequest><Days>2</Days><JobParameters><Tier>Bulk</Tier></JobParameters></RestoreRequest>"));
        let r = RestoreRequestXml {
            days: 1,
            job_parameters: None,
        };
        assert!(
            render("RestoreRequest", &r)
                .unwrap()
                .ends_with("<RestoreRequest><Days>1</Days></RestoreRequest>")
        );
    }

    #[test]
    fn bad_xml_is_an_invalid_response() {
        let r: Result<ListBucketResult, _> = parse(
            b"<ListBucketResult><IsTruncated>maybe</IsTruncated>",
            "ListBucketResult",
            "ListObjectsV2",
            "RID9",
        );
        let err = r.unwrap_err();
        assert!(matches!(err, Error::InvalidResponse { .. }));
        assert!(err.to_string().contains("RID9"));
    }
}
