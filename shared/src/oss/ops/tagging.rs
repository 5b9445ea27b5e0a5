//! GetObjectTagging: an object's tags, as OSS holds them. ferry sets tags when it writes an
//! object (the `x-oss-tagging` header, carried over from the source); reading them back lets a
//! check compare them with the source's instead of trusting the count HEAD reports.

use reqwest::Method;
use serde::Deserialize;

use crate::oss::client::{OssClient, Request};
use crate::oss::error::Error;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct TaggingXml {
    tag_set: TagSetXml,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct TagSetXml {
    tag: Vec<TagXml>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct TagXml {
    key: String,
    value: String,
}

impl OssClient {
    /// The object's tags as (key, value) pairs, in the order OSS lists them; empty when it has
    /// none.
    pub async fn get_object_tagging(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Vec<(String, String)>, Error> {
        let req = Request::new("GetObjectTagging", Method::GET)
            .object(bucket, key)
            .query("tagging", "");
        self.execute(req, |sent| async move {
            let doc: TaggingXml = sent.xml("Tagging").await?;
            Ok(doc
                .tag_set
                .tag
                .into_iter()
                .map(|t| (t.key, t.value))
                .collect())
        })
        .await
    }
}
