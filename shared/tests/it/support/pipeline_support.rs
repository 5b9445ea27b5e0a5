//! Shared setup for pipeline tests: two in-process emulators on loopback (an S3-compatible
//! source and an OSS destination), seeded objects, a job file naming them, and the secrets the
//! job refers to.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use ferry::deploy::connect::StaticSecrets;
use ferry::secret::Secret;
use ferry::testing::data::keyed;
use oss_emulator::Emulator;

pub const REGION: &str = "cn-hangzhou";
pub const SOURCE: &str = "src-bucket";
pub const DEST: &str = "dst-bucket";

pub struct World {
    pub source: Emulator,
    pub dest: Emulator,
    /// Seeded keys and their bytes.
    pub objects: BTreeMap<String, Vec<u8>>,
}

impl World {
    pub async fn start() -> World {
        let source = Emulator::for_test("src-ak").await;
        let dest = Emulator::for_test("dst-ak").await;
        source.create_bucket(SOURCE).unwrap();
        dest.create_bucket(DEST).unwrap();
        World {
            source,
            dest,
            objects: BTreeMap::new(),
        }
    }

    /// Seeds `count` objects spread over `prefixes` folders, plus keys users really have.
    pub async fn seed(&mut self, prefixes: usize, count: usize, max_size: usize) {
        let mut keys: Vec<String> = vec![
            "文档/报告 2024.pdf".into(),
            "a+b=c/100% done.txt".into(),
            "what?/why#not.txt".into(),
            "deep//double/slash".into(),
            "folder-marker/".into(),
            "empty".into(),
        ];
        for i in 0..count {
            keys.push(format!("p{:03}/obj-{i:05}", i % prefixes.max(1)));
        }
        for (i, key) in keys.into_iter().enumerate() {
            let size = if key == "empty" || key.ends_with('/') {
                0
            } else {
                (i * 7919) % max_size.max(1)
            };
            self.put(&key, keyed(&key, size)).await;
        }
    }

    pub async fn put(&mut self, key: &str, body: Vec<u8>) {
        self.source
            .put_object(SOURCE, key, body.clone())
            .await
            .unwrap();
        self.objects.insert(key.to_owned(), body);
    }

    /// A job copying the whole source bucket to the destination, with `extra` merged in.
    pub fn job(&self, extra: serde_json::Value) -> String {
        let mut job = serde_json::json!({
            "version": 1,
            "name": "test-job",
            "source": {
                "kind": "s3", "bucket": SOURCE, "region": REGION,
                "endpoint": self.source.endpoint(), "path_style": true, "allow_http": true,
                "credentials": { "secret": "test/source" }
            },
            "destination": {
                "bucket": DEST, "region": REGION, "endpoint": self.dest.endpoint(),
                "allow_http": true, "credentials": { "secret": "test/destination" }
            },
            "concurrency": { "objects": 8, "multipart_threshold": "5MiB", "part_size": "5MiB" }
        });
        merge(&mut job, extra);
        job.to_string()
    }

    pub fn secrets(&self) -> StaticSecrets {
        let s = self.source.access_key_id();
        let d = self.dest.access_key_id();
        StaticSecrets(HashMap::from([
            (
                "test/source".to_owned(),
                Secret::new(
                    serde_json::json!({"access_key_id": s, "secret_access_key": oss_emulator::test_secret(&s)})
                        .to_string(),
                ),
            ),
            (
                "test/destination".to_owned(),
                Secret::new(
                    serde_json::json!({"access_key_id": d, "access_key_secret": oss_emulator::test_secret(&d)})
                        .to_string(),
                ),
            ),
        ]))
    }

    /// Asserts every seeded object is at the destination with its exact bytes.
    pub async fn assert_destination_exact(&self) {
        for (key, body) in &self.objects {
            let got = self
                .dest
                .object_bytes(DEST, key)
                .await
                .unwrap_or_else(|| panic!("{key:?} missing at the destination"));
            assert!(got == *body, "{key:?} differs at the destination");
        }
    }
}

fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
    match (base, extra) {
        (serde_json::Value::Object(b), serde_json::Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}
