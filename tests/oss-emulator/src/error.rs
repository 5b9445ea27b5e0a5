//! Service errors and how they look on the wire.
//!
//! Every failure an operation can report is an [`ApiError`]: an HTTP status, an error code
//! (`NoSuchKey`, `SignatureDoesNotMatch`, …), a message, and optional extra XML elements
//! (`StringToSign`, `Key`, …). The server renders it in the dialect of the request: the OSS
//! `<Error>` document with `EC` and `RecommendDoc`, or the S3 one with `Resource`. HEAD responses
//! have no body, so OSS-style HEAD errors carry the document Base64-encoded in `x-oss-err`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::StatusCode;

use crate::request::Dialect;
use crate::xml::Xml;

/// A failed request, as the client will see it.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Extra elements of the error document, in order.
    pub extra: Vec<(String, String)>,
    /// Extra response headers (`Content-Range` on 416, `x-oss-qos-delay-time` on throttling).
    pub headers: Vec<(String, String)>,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: code.to_owned(),
            message: message.into(),
            extra: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Adds an element to the error document.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.extra.push((name.to_owned(), value.into()));
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn no_such_bucket(bucket: &str) -> Self {
        ApiError::new(404, "NoSuchBucket", "The specified bucket does not exist.")
            .with("BucketName", bucket)
    }

    pub fn no_such_key(key: &str) -> Self {
        ApiError::new(404, "NoSuchKey", "The specified key does not exist.").with("Key", key)
    }

    pub fn no_such_upload(upload_id: &str) -> Self {
        ApiError::new(
            404,
            "NoSuchUpload",
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
        .with("UploadId", upload_id)
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        ApiError::new(400, "InvalidArgument", message)
    }

    pub fn malformed_xml(detail: impl std::fmt::Display) -> Self {
        ApiError::new(
            400,
            "MalformedXML",
            format!(
                "The XML you provided was not well-formed or did not validate against the published schema: {detail}"
            ),
        )
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        ApiError::new(403, "AccessDenied", message)
    }

    pub fn not_implemented(message: impl Into<String>) -> Self {
        ApiError::new(501, "NotImplemented", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(500, "InternalError", message)
    }

    /// The OSS error code number (`EC`). Values named in the OSS protocol reference are used as
    /// they are; the others are stable emulator values of the same shape.
    pub fn ec(&self) -> &'static str {
        ec_for(&self.code, &self.message)
    }

    /// The error document for `dialect`.
    pub fn document(
        &self,
        dialect: Dialect,
        request_id: &str,
        host: &str,
        resource: &str,
    ) -> String {
        let mut x = Xml::new();
        x.open("Error");
        x.leaf("Code", &self.code);
        x.leaf("Message", &self.message);
        x.leaf("RequestId", request_id);
        match dialect {
            Dialect::Oss => {
                x.leaf("HostId", host);
                x.leaf("EC", self.ec());
                x.leaf(
                    "RecommendDoc",
                    format!("https://api.aliyun.com/troubleshoot?q={}", self.ec()),
                );
            }
            Dialect::S3 => {
                x.leaf("Resource", resource);
                x.leaf("HostId", host);
            }
        }
        for (name, value) in &self.extra {
            x.leaf(name, value);
        }
        x.close("Error");
        x.finish()
    }

    /// The `x-oss-err` header value for HEAD responses.
    pub fn head_header(&self, request_id: &str, host: &str, resource: &str) -> String {
        BASE64.encode(self.document(Dialect::Oss, request_id, host, resource))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

fn ec_for(code: &str, message: &str) -> &'static str {
    match code {
        "AccessDenied" if message.contains("x-oss-date") => "0002-00000502",
        "AccessDenied" => "0003-00000201",
        "SignatureDoesNotMatch" => "0002-00000040",
        "InvalidAccessKeyId" => "0002-00000902",
        "RequestTimeTooSkewed" => "0002-00000504",
        "InvalidSecurityToken" => "0002-00000603",
        "InvalidArgument" if message.contains("x-oss-content-sha256") => "0002-00000214",
        "InvalidArgument" if message.contains("AdditionalHeaders") => "0002-00000210",
        "InvalidArgument" if message.contains("storage class") => "0013-00000101",
        "InvalidArgument" if message.contains("metadata") => "0011-00000002",
        "InvalidArgument" if message.contains("key=value") => "0010-00000219",
        "InvalidArgument" => "0017-00000003",
        "FileAlreadyExists" => "0042-00000214",
        "NoSuchBucket" => "0015-00000101",
        "NoSuchKey" => "0026-00000001",
        "NoSuchUpload" => "0042-00000002",
        "NoSuchWebsiteConfiguration" => "0034-00000001",
        "InvalidPart" => "0042-00000003",
        "InvalidPartOrder" => "0042-00000004",
        "EntityTooSmall" => "0042-00000005",
        "EntityTooLarge" => "0016-00000001",
        "InvalidDigest" => "0016-00000102",
        "InvalidObjectName" => "0016-00000005",
        "InvalidBucketName" => "0015-00000001",
        "BucketAlreadyExists" => "0015-00000104",
        "BucketNotEmpty" => "0015-00000301",
        "TooManyBuckets" => "0015-00000105",
        "InvalidObjectState" => "0016-00000801",
        "RestoreAlreadyInProgress" => "0016-00000802",
        "OperationNotSupported" => "0016-00000803",
        "InvalidRange" => "0016-00000201",
        "PreconditionFailed" => "0016-00000203",
        "MalformedXML" if message.contains("root element must be <Tagging>") => "0010-00000102",
        "MalformedXML" => "0017-00000001",
        "InvalidTag" if message.contains("more than once") => "0010-00000210",
        "InvalidURI" => "0017-00000002",
        "NotImplemented" => "0017-00000501",
        "ServiceUnavailable" => "0004-00000302",
        _ => "0000-00000000",
    }
}
