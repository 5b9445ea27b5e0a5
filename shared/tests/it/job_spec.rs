//! The job spec as a user meets it: the shipped example reads, every mistake is reported with
//! its JSON path, the value and the fix (all of them at once), secrets cannot be written inline,
//! and the spec turns into the engine settings the transfer code runs with.

use ferry::job::{self, ByteSize, JobError, JobSpec, SourceSpec};
use ferry::source::ObjectInfo;
use ferry::source::s3::S3Credentials;
use ferry::transfer::{ArchivePolicy, ClassPolicy, CopyOptions, OverwritePolicy, WalkOptions};
use proptest::prelude::*;
use serde_json::{Value, json};

const EXAMPLE: &str = include_str!("../../../docs/examples/job-s3-to-oss.json");

/// The smallest valid job: an S3 bucket into an OSS bucket.
fn minimal() -> Value {
    json!({
        "version": 1,
        "name": "photos-to-oss",
        "source": { "kind": "s3", "bucket": "acme-photos", "region": "us-east-1" },
        "destination": { "bucket": "acme-photos-cn", "region": "cn-hangzhou" }
    })
}

/// An OSS bucket into another prefix of the same OSS bucket.
fn oss_to_oss(source_prefix: &str, dest_prefix: &str) -> Value {
    json!({
        "version": 1,
        "name": "reorg",
        "source": { "kind": "oss", "bucket": "media", "region": "cn-hangzhou", "prefix": source_prefix },
        "destination": { "bucket": "media", "region": "cn-hangzhou", "prefix": dest_prefix }
    })
}

/// Sets `pointer` (`/a/b`) to `value`, creating objects on the way.
fn with(mut doc: Value, pointer: &str, value: Value) -> Value {
    let mut node = &mut doc;
    let mut keys: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let last = keys.pop().unwrap();
    for key in keys {
        node = node
            .as_object_mut()
            .unwrap()
            .entry(key)
            .or_insert_with(|| json!({}));
    }
    node.as_object_mut().unwrap().insert(last.to_owned(), value);
    doc
}

fn parse(doc: &Value) -> Result<JobSpec, JobError> {
    JobSpec::from_json(&doc.to_string())
}

fn errors(doc: &Value) -> JobError {
    match parse(doc) {
        Ok(spec) => panic!("expected errors, got {spec:#?}"),
        Err(e) => e,
    }
}

/// The error names `path`, and its text (`path = value: problem; fix: …`) shows the value and
/// the fix.
#[track_caller]
fn assert_issue(err: &JobError, path: &str, value: &str, fix: &str) {
    let issue = err
        .at(path)
        .unwrap_or_else(|| panic!("no issue at {path}:\n{err}"));
    let shown = issue.to_string();
    assert!(shown.contains(value), "value {value:?} not in: {shown}");
    assert!(issue.fix.contains(fix), "fix {fix:?} not in: {}", issue.fix);
    assert!(
        err.to_string()
            .contains(&shown.replace("; fix: ", "\n    fix: "))
    );
}

fn object(key: &str, size: u64) -> ObjectInfo {
    ObjectInfo {
        key: key.to_owned(),
        size,
        etag: None,
        last_modified: Some("2024-06-01T00:00:00Z".parse().unwrap()),
        storage_class: None,
        archive: Default::default(),
    }
}

#[test]
fn the_example_job_file_reads_and_maps_onto_the_engine() {
    let spec = JobSpec::from_json(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.name, "photos-to-oss");
    assert!(spec.warnings().is_empty(), "{:?}", spec.warnings());

    let SourceSpec::S3(s3) = &spec.source else {
        panic!("s3 source expected");
    };
    let config = s3.config(s3.credentials.resolve(None).unwrap());
    config.validate().unwrap();
    assert_eq!(config.prefix.as_deref(), Some("2024/"));
    assert!(matches!(config.credentials, S3Credentials::DefaultChain));
    assert_eq!(
        config.assume_role.unwrap().role_arn,
        "arn:aws:iam::123456789012:role/ferry-reader"
    );
    assert_eq!(
        spec.destination.credentials.secret_id(),
        Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:ferry/oss-destination")
    );
    assert_eq!(
        spec.destination.endpoint().unwrap().to_string(),
        "https://oss-cn-hangzhou.aliyuncs.com"
    );

    let copy = spec.copy_options();
    assert_eq!(copy.part_size, 16 << 20);
    assert_eq!(copy.multipart_threshold, 64 << 20);
    assert_eq!(copy.part_concurrency, 4);
    assert_eq!(copy.storage_class, ClassPolicy::Map);
    assert_eq!(copy.limiter.unwrap().bytes_per_second(), 200_000_000);
    assert_eq!(ferry::transfer::ServerSide::for_job(&spec), None);

    let walk = spec.walk_options();
    assert_eq!(walk.prefix, "2024/");
    assert_eq!(walk.overwrite, OverwritePolicy::IfDifferent);
    assert_eq!(walk.max_objects, Some(10_000));
    assert_eq!(walk.max_bytes, Some(16 << 30));

    assert!(spec.matches(&object("2024/03/cat.jpg", 2048)));
    assert!(!spec.matches(&object("2024/03/cat.gif", 2048)));
    assert!(!spec.matches(&object("2024/tmp/cat.jpg", 2048)));
    assert!(!spec.matches(&object("2024/03/empty.jpg", 0)));
}

#[test]
fn defaults_are_the_engine_defaults() {
    let spec = parse(&minimal()).unwrap();
    let (copy, engine_copy) = (spec.copy_options(), CopyOptions::default());
    assert_eq!(copy.part_size, engine_copy.part_size);
    assert_eq!(copy.multipart_threshold, engine_copy.multipart_threshold);
    assert_eq!(copy.part_concurrency, engine_copy.part_concurrency);
    assert!(!copy.forbid_overwrite && copy.limiter.is_none());
    let (walk, engine_walk) = (spec.walk_options(), WalkOptions::default());
    assert_eq!(walk.object_concurrency, engine_walk.object_concurrency);
    assert_eq!(walk.restore_days, engine_walk.restore_days);
    assert_eq!(walk.archive, ArchivePolicy::Report);
    assert_eq!(spec.mode, job::Mode::Copy);
    assert_eq!(spec.verification, job::Verification::Crc64);
    assert!(spec.filters.is_empty());
    assert_eq!(spec.sharding.scan_depth, 2);
}

#[test]
fn settings_reach_the_engine() {
    let doc = with(minimal(), "/overwrite", json!("never"));
    let doc = with(doc, "/destination/storage_class", json!("ia"));
    let doc = with(
        doc,
        "/archive",
        json!({"policy": "restore", "days": 7, "tier": "bulk"}),
    );
    let doc = with(
        doc,
        "/concurrency",
        json!({"objects": 8, "parts": 2, "part_size": 5242880, "multipart_threshold": "1.5GiB"}),
    );
    let spec = parse(&doc).unwrap();
    let copy = spec.copy_options();
    assert!(copy.forbid_overwrite);
    assert_eq!(
        copy.storage_class.clone(),
        ClassPolicy::Fixed("IA".parse().unwrap())
    );
    assert_eq!(copy.part_size, 5 << 20);
    assert_eq!(copy.multipart_threshold, 3 << 29);
    let walk = spec.walk_options();
    assert_eq!(
        (walk.archive, walk.restore_days),
        (ArchivePolicy::Restore, 7)
    );
    assert_eq!(walk.restore_tier, ferry::source::RestoreTier::Bulk);
    assert_eq!(walk.object_concurrency, 8);
}

#[test]
fn oss_source_in_the_same_region_with_the_same_credentials_copies_server_side() {
    let spec = parse(&oss_to_oss("in/", "out/")).unwrap();
    assert_eq!(spec.server_side_source(), Some("media"));
    assert_eq!(
        ferry::transfer::ServerSide::for_job(&spec),
        Some(ferry::transfer::ServerSide::same_service("media"))
    );
    let other_keys = with(
        oss_to_oss("in/", "out/"),
        "/source/credentials",
        json!({"secret": "ferry/other-account"}),
    );
    assert_eq!(parse(&other_keys).unwrap().server_side_source(), None);
    let other_region = with(
        oss_to_oss("in/", "out/"),
        "/source/region",
        json!("cn-beijing"),
    );
    assert_eq!(parse(&other_region).unwrap().server_side_source(), None);
}

/// One row per rule: a mistake, where it must be reported, a piece of the value shown, and a
/// piece of the fix.
#[test]
fn every_rule_names_the_path_the_value_and_the_fix() {
    let http_s3 = with(
        minimal(),
        "/source/endpoint",
        json!("http://minio.local:9000"),
    );
    let cases: Vec<(Value, &str, &str, &str)> = vec![
        (
            with(minimal(), "/version", json!(2)),
            "version",
            "2",
            "\"version\": 1",
        ),
        (
            with(minimal(), "/name", json!("Photos_To_OSS")),
            "name",
            "\"Photos_To_OSS\"",
            "lower-case",
        ),
        (
            with(minimal(), "/name", json!("a".repeat(64))),
            "name",
            "aaaa",
            "1 to 63",
        ),
        (
            with(minimal(), "/name", json!("-x")),
            "name",
            "\"-x\"",
            "starting with a letter",
        ),
        (
            http_s3,
            "source.endpoint",
            "http://minio.local:9000",
            "allow_http: true",
        ),
        (
            with(minimal(), "/source/region", json!("us east")),
            "source.region",
            "\"us east\"",
            "us-east-1",
        ),
        (
            with(minimal(), "/source/bucket", json!("s3://acme")),
            "source.bucket",
            "\"s3://acme\"",
            "bare bucket name",
        ),
        (
            with(
                minimal(),
                "/source/assume_role",
                json!({"role_arn": "reader"}),
            ),
            "source.assume_role.role_arn",
            "\"reader\"",
            "arn:aws:iam::",
        ),
        (
            with(
                minimal(),
                "/destination/endpoint",
                json!("http://127.0.0.1:9000"),
            ),
            "destination.endpoint",
            "\"http://127.0.0.1:9000\"",
            "destination.allow_http: true",
        ),
        (
            with(
                with(
                    minimal(),
                    "/destination/endpoint",
                    json!("https://oss.example.com"),
                ),
                "/destination/endpoint_kind",
                json!("internal"),
            ),
            "destination.endpoint",
            "\"https://oss.example.com\"",
            "keep one",
        ),
        (
            with(
                minimal(),
                "/destination/endpoint",
                json!("ftp://oss.example.com"),
            ),
            "destination.endpoint",
            "ftp://oss.example.com",
            "https://",
        ),
        (
            with(minimal(), "/destination/bucket", json!("My_Bucket")),
            "destination.bucket",
            "\"My_Bucket\"",
            "lower-case",
        ),
        (
            with(minimal(), "/destination/region", json!("cn/hangzhou")),
            "destination.region",
            "\"cn/hangzhou\"",
            "cn-hangzhou",
        ),
        (
            with(minimal(), "/destination/prefix", json!("/backup/")),
            "destination.prefix",
            "\"/backup/\"",
            "\"backup/\"",
        ),
        (
            with(minimal(), "/destination/storage_class", json!("Glacier")),
            "destination.storage_class",
            "\"Glacier\"",
            "ColdArchive",
        ),
        (
            with(minimal(), "/destination/allow_http", json!("yes")),
            "destination.allow_http",
            "\"yes\"",
            "boolean",
        ),
        (
            with(minimal(), "/mode", json!("sync")),
            "mode",
            "\"sync\"",
            "`audit`",
        ),
        (
            with(minimal(), "/overwrite", json!("if-newr")),
            "overwrite",
            "\"if-newr\"",
            "did you mean `if-newer`",
        ),
        (
            with(
                with(
                    minimal(),
                    "/filters/modified_since",
                    json!("2024-06-01T00:00:00Z"),
                ),
                "/filters/modified_before",
                json!("2024-01-01T00:00:00Z"),
            ),
            "filters.modified_before",
            "2024-01-01T00:00:00Z",
            "later than modified_since",
        ),
        (
            with(minimal(), "/filters/modified_since", json!("2024-01-01")),
            "filters.modified_since",
            "\"2024-01-01\"",
            "2024-01-31T00:00:00Z",
        ),
        (
            with(
                with(minimal(), "/filters/min_size", json!("2MiB")),
                "/filters/max_size",
                json!("1MiB"),
            ),
            "filters.max_size",
            "1MiB",
            "at least min_size",
        ),
        (
            with(minimal(), "/filters/max_size", json!("ten megs")),
            "filters.max_size",
            "\"ten megs\"",
            "\"10MiB\"",
        ),
        (
            with(minimal(), "/filters/include", json!(["img/[0-9*"])),
            "filters.include[0]",
            "\"img/[0-9*\"",
            "close the class",
        ),
        (
            with(
                minimal(),
                "/filters/include",
                json!(["**/*.jpg", "**/*.{jpg,png"]),
            ),
            "filters.include[1]",
            "\"**/*.{jpg,png\"",
            "close the alternatives",
        ),
        (
            with(minimal(), "/filters/exclude", json!(["ok/*", "a**"])),
            "filters.exclude[1]",
            "\"a**\"",
            "segment of its own",
        ),
        (
            with(minimal(), "/filters/exclude", json!(["/tmp/**"])),
            "filters.exclude[0]",
            "\"/tmp/**\"",
            "remove the leading `/`",
        ),
        (
            with(minimal(), "/filters/exclude", json!(["{{.*\\.tmp}}"])),
            "filters.exclude[0]",
            "{{",
            "write a glob",
        ),
        (
            with(
                with(minimal(), "/source/prefix", json!("2024/")),
                "/filters/include",
                json!(["logs/*"]),
            ),
            "filters.include[0]",
            "\"logs/*\"",
            "\"2024/logs/*\"",
        ),
        (
            with(minimal(), "/archive/days", json!(0)),
            "archive.days",
            "0",
            "1 to 365",
        ),
        (
            with(minimal(), "/archive/days", json!(366)),
            "archive.days",
            "366",
            "1 to 365",
        ),
        (
            with(minimal(), "/archive/tier", json!("fast")),
            "archive.tier",
            "\"fast\"",
            "`expedited`",
        ),
        (
            with(minimal(), "/sharding/scan_depth", json!(17)),
            "sharding.scan_depth",
            "17",
            "0 to 16",
        ),
        (
            with(minimal(), "/sharding/max_keys_per_shard", json!(0)),
            "sharding.max_keys_per_shard",
            "0",
            "1 to 10000000",
        ),
        (
            with(minimal(), "/sharding/max_bytes_per_shard", json!("1KiB")),
            "sharding.max_bytes_per_shard",
            "1KiB",
            "1MiB",
        ),
        (
            with(minimal(), "/concurrency/objects", json!(0)),
            "concurrency.objects",
            "0",
            "1 to 1024",
        ),
        (
            with(minimal(), "/concurrency/parts", json!(65)),
            "concurrency.parts",
            "65",
            "1 to 64",
        ),
        (
            with(minimal(), "/concurrency/objects", json!(-1)),
            "concurrency.objects",
            "-1",
            "a whole number, 0 or more",
        ),
        (
            with(minimal(), "/concurrency/part_size", json!("50KiB")),
            "concurrency.part_size",
            "50KiB",
            "100KiB",
        ),
        (
            with(minimal(), "/concurrency/part_size", json!("6GiB")),
            "concurrency.part_size",
            "6GiB",
            "5GiB",
        ),
        (
            with(minimal(), "/concurrency/multipart_threshold", json!("6GiB")),
            "concurrency.multipart_threshold",
            "6GiB",
            "5 GiB",
        ),
        (
            with(minimal(), "/concurrency/part_size", json!("16M")),
            "concurrency.part_size",
            "\"16M\"",
            "MiB",
        ),
        (
            with(minimal(), "/bandwidth_limit", json!("200")),
            "bandwidth_limit",
            "\"200\"",
            "200MB/s",
        ),
        (
            with(minimal(), "/bandwidth_limit", json!(100)),
            "bandwidth_limit",
            "100B/s",
            "with a unit",
        ),
        (
            with(minimal(), "/verification", json!("md5")),
            "verification",
            "\"md5\"",
            "`crc64`",
        ),
        (
            with(
                minimal(),
                "/destination/credentials",
                json!({"env": {"access_key_id_var": "my key id"}}),
            ),
            "destination.credentials.env.access_key_id_var",
            "<hidden>",
            "variable's name",
        ),
        (
            with(
                minimal(),
                "/destination/credentials",
                json!({"secret": "not a name!"}),
            ),
            "destination.credentials.secret",
            "<hidden>",
            "ARN",
        ),
        (
            with(minimal(), "/source/kind", json!("gcs")),
            "source.kind",
            "\"gcs\"",
            "`s3`",
        ),
        (
            {
                let mut doc = minimal();
                doc["destination"].as_object_mut().unwrap().remove("region");
                doc
            },
            "destination.region",
            "destination.region",
            "cn-hangzhou",
        ),
    ];
    for (doc, path, value, fix) in &cases {
        let err = errors(doc);
        assert_issue(&err, path, value, fix);
    }
}

#[test]
fn all_problems_are_reported_together() {
    let doc = minimal();
    let doc = with(doc, "/name", json!("Bad Name"));
    let doc = with(doc, "/destination/bukcet", json!("x"));
    let doc = with(doc, "/concurrency/part_size", json!("lots"));
    let doc = with(doc, "/concurrency/parts", json!(0));
    let doc = with(doc, "/filters/include", json!(["ok/**", "[x", "b**"]));
    let doc = with(doc, "/source/colour", json!("blue"));
    let doc = with(doc, "/archive/days", json!(400));
    let err = errors(&doc);
    let paths: Vec<&str> = err.issues().iter().map(|i| i.path.as_str()).collect();
    for expected in [
        "name",
        "destination.bukcet",
        "concurrency.part_size",
        "concurrency.parts",
        "filters.include[1]",
        "filters.include[2]",
        "source.colour",
        "archive.days",
    ] {
        assert!(paths.contains(&expected), "{expected} missing from:\n{err}");
    }
    assert_eq!(paths.len(), 8, "{err}");
    let text = err.to_string();
    assert!(text.starts_with("the job spec has 8 problems:"), "{text}");
    assert_eq!(text.lines().count(), 1 + 8 * 2, "{text}");
}

#[test]
fn unknown_fields_are_refused_with_their_path() {
    let cases = [
        (with(minimal(), "/nmae", json!("x")), "nmae", "`name`"),
        (
            with(minimal(), "/destination/bukcet", json!("x")),
            "destination.bukcet",
            "`bucket`",
        ),
        (
            with(minimal(), "/source/bukcet", json!("x")),
            "source.bukcet",
            "`bucket`",
        ),
        (
            with(minimal(), "/filters/includes", json!([])),
            "filters.includes",
            "`include`",
        ),
        (
            with(
                minimal(),
                "/source/credentials",
                json!({"env": {"access_key_id_var": "A", "secret_access_key_var": "B", "region_var": "C"}}),
            ),
            "source.credentials.env.region_var",
            "`session_token_var`",
        ),
        (
            with(
                oss_to_oss("a/", "b/"),
                "/source/endpoint_type",
                json!("internal"),
            ),
            "source.endpoint_type",
            "`endpoint_kind`",
        ),
    ];
    for (doc, path, suggestion) in &cases {
        let err = errors(doc);
        let issue = err.at(path).unwrap_or_else(|| panic!("no {path}:\n{err}"));
        assert!(issue.problem.contains("not a setting"), "{issue}");
        assert!(issue.fix.contains(suggestion), "{issue}");
    }
}

#[test]
fn overlapping_source_and_destination_are_refused_both_ways() {
    for (source_prefix, dest_prefix) in [
        ("photos/", "photos/copy/"),
        ("photos/2024/", "photos/"),
        ("photos/", "photos/"),
        ("", "backup/"),
        ("photos", "photos-backup/"),
    ] {
        let err = errors(&oss_to_oss(source_prefix, dest_prefix));
        let issue = err
            .at("destination.prefix")
            .unwrap_or_else(|| panic!("{source_prefix:?} / {dest_prefix:?} not refused:\n{err}"));
        assert!(
            issue.to_string().contains(&format!("{dest_prefix:?}")),
            "{issue}"
        );
        assert!(issue.problem.contains("overlaps the source"), "{issue}");
        assert!(issue.fix.contains("another bucket"), "{issue}");
    }
    // The same bucket reached through OSS's S3-compatible endpoint is the same bucket.
    let via_s3 = json!({
        "version": 1, "name": "via-s3",
        "source": { "kind": "s3", "bucket": "media", "endpoint": "https://oss-cn-hangzhou.aliyuncs.com", "region": "cn-hangzhou" },
        "destination": { "bucket": "media", "region": "cn-hangzhou", "prefix": "copy/" }
    });
    assert!(errors(&via_s3).at("destination.prefix").is_some());
}

#[test]
fn separate_places_are_allowed() {
    let allowed = [
        oss_to_oss("photos/", "archive/"),
        oss_to_oss("photos/2024/", "photos/2023/"),
        with(
            oss_to_oss("", ""),
            "/destination/bucket",
            json!("media-copy"),
        ),
        // Two emulators, or a private store and OSS: different services.
        with(
            with(
                with(
                    oss_to_oss("", ""),
                    "/source/endpoint",
                    json!("http://127.0.0.1:9001"),
                ),
                "/source/allow_http",
                json!(true),
            ),
            "/destination/endpoint",
            json!("https://oss-cn-hangzhou.aliyuncs.com"),
        ),
        // An S3 bucket of the same name is another bucket.
        with(
            with(minimal(), "/source/bucket", json!("acme-photos-cn")),
            "/destination/prefix",
            json!(""),
        ),
    ];
    for doc in &allowed {
        parse(doc).unwrap_or_else(|e| panic!("{doc}\n{e}"));
    }
}

#[test]
fn globs_select_keys_as_documented() {
    let doc = with(
        minimal(),
        "/filters/include",
        json!(["**/*.jpg", "logs/2024-??/*"]),
    );
    let spec = parse(&doc).unwrap();
    for key in [
        "a.jpg",
        "x/y/z.jpg",
        "logs/2024-01/app.log",
        "logs/2024-12/x",
    ] {
        assert!(spec.matches(&object(key, 1)), "{key}");
    }
    for key in [
        "a.jpeg",
        "logs/2024-1/app.log",
        "logs/2024-01/deep/app.log",
        "logs/2023-01/x",
    ] {
        assert!(!spec.matches(&object(key, 1)), "{key}");
    }
}

/// Issue 13 point 4: braces and classes as users write them for rclone, matched against the
/// whole key.
#[test]
fn braces_and_classes_select_keys_as_documented() {
    let doc = with(
        with(
            minimal(),
            "/filters/include",
            json!(["**/*.{jpg,png}", "scans/[0-9][0-9][0-9]?.tif"]),
        ),
        "/filters/exclude",
        json!(["**/[!a-z]*.png", "{tmp,cache}/**"]),
    );
    let spec = parse(&doc).unwrap();
    for key in [
        "a.jpg",
        "x/y/b.png",
        "照片/猫.jpg",
        "scans/1234.tif",
        "scans/123中.tif",
    ] {
        assert!(spec.matches(&object(key, 1)), "{key}");
    }
    for key in [
        "a.gif",
        "x/_b.png",
        "tmp/a.jpg",
        "cache/x/y.png",
        "scans/12a4.tif",
        "scans/1234/x.tif",
        "old/scans/1234.tif",
    ] {
        assert!(!spec.matches(&object(key, 1)), "{key}");
    }
}

#[test]
fn secrets_cannot_be_written_inline_and_are_never_echoed() {
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let inline = [
        with(
            minimal(),
            "/destination/credentials",
            json!({"access_key_id": "LTAI5t", "access_key_secret": SECRET}),
        ),
        with(minimal(), "/destination/access_key_secret", json!(SECRET)),
        with(
            minimal(),
            "/source/credentials",
            json!({"static": {"access_key_id": "AKIA", "secret_access_key": SECRET}}),
        ),
        with(minimal(), "/source/credentials", json!(SECRET)),
        with(
            minimal(),
            "/destination/credentials",
            json!({"env": {"access_key_secret_var": SECRET}}),
        ),
        with(
            minimal(),
            "/destination/credentials",
            json!({"secret": 42, "password": SECRET}),
        ),
    ];
    for doc in &inline {
        let err = errors(doc);
        let text = err.to_string();
        assert!(!text.contains(SECRET), "secret echoed:\n{text}");
        assert!(!format!("{err:?}").contains(SECRET), "secret in Debug");
        assert!(
            text.contains("Secrets Manager") || text.contains("never its value"),
            "no advice on references:\n{text}"
        );
    }
    // A valid spec holds references only; its Debug shows names, not values.
    let doc = with(
        minimal(),
        "/destination/credentials",
        json!({"env": {"access_key_id_var": "DST_ID", "access_key_secret_var": "DST_SECRET"}}),
    );
    let debug = format!("{:?}", parse(&doc).unwrap());
    assert!(debug.contains("DST_SECRET") && !debug.contains(SECRET));
}

#[test]
fn syntax_errors_and_non_objects_are_reported_at_the_top() {
    let err = JobSpec::from_json("{\"version\": 1,\n \"name\": \"x\",,}").unwrap_err();
    let issue = err.at(job::TOP_LEVEL).unwrap();
    assert!(issue.fix.contains("line 2"), "{issue}");
    let err = JobSpec::from_json("[1, 2]").unwrap_err();
    assert!(
        err.at(job::TOP_LEVEL)
            .unwrap()
            .problem
            .contains("JSON object")
    );
    let err = JobSpec::from_json("{}").unwrap_err();
    for path in ["version", "name", "source", "destination"] {
        assert!(err.at(path).is_some(), "{path} missing:\n{err}");
    }
}

#[test]
fn size_only_verification_and_plain_http_are_warned_about() {
    let doc = with(minimal(), "/verification", json!("size"));
    let doc = with(doc, "/destination/endpoint", json!("http://127.0.0.1:9000"));
    let doc = with(doc, "/destination/allow_http", json!(true));
    let warnings = parse(&doc).unwrap().warnings();
    let paths: Vec<&str> = warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(paths, ["verification", "destination.allow_http"]);
    assert!(warnings[0].problem.contains("corrupted copy"));
}

#[test]
fn schema_describes_the_main_settings() {
    let schema = job::schema();
    let props = &schema["properties"];
    for name in [
        "version",
        "name",
        "source",
        "destination",
        "filters",
        "mode",
        "overwrite",
        "archive",
        "sharding",
        "concurrency",
        "bandwidth_limit",
        "verification",
    ] {
        assert!(props.get(name).is_some(), "{name} missing from schema");
        assert!(
            props[name]["description"]
                .as_str()
                .is_some_and(|d| d.len() > 15),
            "{name} has no description"
        );
    }
    assert_eq!(schema["additionalProperties"], json!(false));
    assert!(
        props["name"]["description"]
            .as_str()
            .unwrap()
            .contains("lower-case")
    );
    let defs = &schema["$defs"];
    let destination = &defs["DestinationSpec"]["properties"];
    for name in [
        "bucket",
        "prefix",
        "region",
        "endpoint_kind",
        "endpoint",
        "credentials",
        "storage_class",
    ] {
        assert!(
            destination[name]["description"].is_string(),
            "destination.{name}"
        );
    }
    let kinds: Vec<&str> = defs["SourceSpec"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["properties"]["kind"]["const"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["s3", "oss"]);
    let overwrite = serde_json::to_string(&defs["OverwritePolicy"]).unwrap();
    assert!(overwrite.contains("if-newer") && overwrite.contains("forbid-overwrite"));
    let text = serde_json::to_string(&schema).unwrap();
    assert!(text.contains("\"pattern\":\"^[a-z0-9][a-z0-9-]{0,62}$\""));
}

#[test]
fn schema_accepts_the_example_as_a_plain_json_check() {
    // Every top-level key of the example is a property the schema documents.
    let example: Value = serde_json::from_str(EXAMPLE).unwrap();
    let schema = job::schema();
    for key in example.as_object().unwrap().keys() {
        assert!(schema["properties"].get(key).is_some(), "{key}");
    }
}

/// Issue 13 point 3: the relative layout needs a folder to take off; the full layout (the
/// default) takes any prefix.
#[test]
fn the_relative_key_layout_needs_a_folder_as_source_prefix() {
    let relative = |prefix: &str| {
        let doc = with(minimal(), "/source/prefix", json!(prefix));
        with(doc, "/destination/key_layout", json!("relative"))
    };
    let err = errors(&relative("2024"));
    assert_issue(&err, "destination.key_layout", "relative", "\"2024/\"");
    assert!(err.to_string().contains("\"2024\""), "{err}");
    for ok in ["2024/", "a/b/", ""] {
        let spec = parse(&relative(ok)).unwrap();
        assert_eq!(spec.destination.key_layout, job::KeyLayout::Relative);
    }
    let spec = parse(&with(minimal(), "/source/prefix", json!("2024"))).unwrap();
    assert_eq!(spec.destination.key_layout, job::KeyLayout::Full);
    let err = errors(&with(minimal(), "/destination/key_layout", json!("flat")));
    assert!(err.to_string().contains("key_layout"), "{err}");
}

proptest! {
    #[test]
    fn byte_sizes_round_trip_through_text(n in any::<u64>(), unit in 0u32..6, scale in 0u64..1025) {
        // Plain numbers, and numbers that are exact multiples of units (which format with them).
        for bytes in [n, scale.saturating_mul(1u64 << (10 * unit)), scale.saturating_mul(10u64.pow(3 * unit))] {
            let text = ByteSize(bytes).to_string();
            prop_assert_eq!(text.parse::<ByteSize>().unwrap(), ByteSize(bytes), "{}", text);
            let doc = with(minimal(), "/filters/min_size", json!(text));
            let spec = parse(&doc).unwrap();
            prop_assert_eq!(spec.filters.min_size, Some(ByteSize(bytes)));
        }
    }

    #[test]
    fn bandwidths_round_trip_through_text(n in 1u64..u64::MAX) {
        let rate = job::Bandwidth(n);
        prop_assert_eq!(rate.to_string().parse::<job::Bandwidth>().unwrap(), rate);
    }

    #[test]
    fn any_text_gives_a_spec_or_issues_never_a_panic(text in ".{0,200}") {
        if let Err(e) = JobSpec::from_json(&text) {
            prop_assert!(!e.issues().is_empty());
        }
    }
}
