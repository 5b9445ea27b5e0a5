//! Checks a parsed job spec for everything JSON types cannot express — ranges, names, URLs,
//! settings that contradict each other, a destination that overlaps its own source — and
//! collects every problem rather than stopping at the first.

use super::error::Issue;
use super::location::{KeyLayout, OssPlace, SourceSpec};
use super::size::ByteSize;
use super::spec::{JobSpec, Verification};
use crate::oss::ops::multipart::{MAX_PART_SIZE, MIN_PART_SIZE};
use crate::source::s3::S3Credentials;

/// Every problem with `spec`; empty when it can be run.
pub(super) fn check(spec: &JobSpec) -> Vec<Issue> {
    let mut issues = Vec::new();
    check_version(spec.version, &mut issues);
    check_name(&spec.name, &mut issues);
    check_source(&spec.source, &mut issues);
    check_place(&spec.destination.place(), &mut issues);
    check_destination_prefix(&spec.destination.prefix, &mut issues);
    check_key_layout(spec, &mut issues);
    spec.destination
        .credentials
        .check("destination.credentials", &mut issues);
    check_overlap(spec, &mut issues);
    check_filters(spec, &mut issues);
    check_ranges(spec, &mut issues);
    issues
}

/// Settings that are valid but weaken what a run proves or protects.
pub(super) fn warnings(spec: &JobSpec) -> Vec<Issue> {
    let mut out = Vec::new();
    if spec.verification == Verification::Size {
        out.push(Issue::text(
            "verification",
            "size",
            "checks only each copy's size, so a corrupted copy of the right length passes",
            "use \"crc64\" (the default) unless the destination cannot report CRC-64",
        ));
    }
    let http = [
        ("source.allow_http", source_allows_http(&spec.source)),
        ("destination.allow_http", spec.destination.allow_http),
    ];
    for (path, allowed) in http {
        if allowed {
            out.push(Issue::shown(
                path,
                true,
                "lets data and signed requests travel unencrypted over plain HTTP",
                "remove it unless this is a local emulator or test store",
            ));
        }
    }
    out
}

fn source_allows_http(source: &SourceSpec) -> bool {
    match source {
        SourceSpec::S3(s) => s.allow_http,
        SourceSpec::Oss(o) => o.allow_http,
    }
}

fn check_version(version: u32, issues: &mut Vec<Issue>) {
    if version != 1 {
        issues.push(Issue::shown(
            "version",
            version,
            "is not a job format this ferry reads",
            "write \"version\": 1",
        ));
    }
}

fn check_name(name: &str, issues: &mut Vec<Issue>) {
    let valid = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        issues.push(Issue::text(
            "name",
            name,
            "is not a job id (it becomes part of state-store paths)",
            "use 1 to 63 lower-case letters, digits and hyphens, starting with a letter or digit, e.g. \"photos-to-oss\"",
        ));
    }
}

fn check_source(source: &SourceSpec, issues: &mut Vec<Issue>) {
    match source {
        SourceSpec::S3(s3) => {
            // The adapter's own checks (bucket, endpoint, plain HTTP, region, role), reused so the
            // job and the adapter never disagree. It reports the first problem it finds.
            if let Err(e) = s3.config(S3Credentials::DefaultChain).validate() {
                issues.push(Issue::text(
                    format!("source.{}", e.field),
                    &e.value,
                    e.problem,
                    e.fix,
                ));
            }
            s3.credentials.check("source.credentials", issues);
        }
        SourceSpec::Oss(oss) => {
            check_place(&oss.place(), issues);
            oss.credentials.check("source.credentials", issues);
        }
    }
}

fn check_place(place: &OssPlace<'_>, issues: &mut Vec<Issue>) {
    let section = place.section;
    if !is_oss_bucket_name(place.bucket) {
        issues.push(Issue::text(
            format!("{section}.bucket"),
            place.bucket,
            "is not an OSS bucket name",
            "use 3 to 63 lower-case letters, digits and hyphens, starting and ending with a letter or digit; no `oss://`",
        ));
    }
    if crate::oss::region_id(place.region).is_err() {
        issues.push(place.region_issue());
    }
    let Some(raw) = place.endpoint else {
        return;
    };
    if let Some(kind) = place.endpoint_kind {
        issues.push(Issue::text(
            format!("{section}.endpoint"),
            raw,
            format!("is given together with `endpoint_kind` ({kind:?})"),
            "keep one: `endpoint_kind` picks the region's endpoint, `endpoint` names one explicitly",
        ));
    }
    match place.resolve() {
        Err(issue) => issues.push(issue),
        Ok(endpoint) if !endpoint.is_https() && !place.allow_http => issues.push(Issue::text(
            format!("{section}.endpoint"),
            raw,
            "uses plain HTTP, which sends data and signed requests unencrypted",
            format!(
                "use an https:// endpoint, or set `{section}.allow_http: true` if this is a local emulator"
            ),
        )),
        Ok(_) => {}
    }
}

fn is_oss_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// The relative layout takes `source.prefix` off every key; a prefix that is not a folder
/// would leave half a name (`2024-0` off `2024-01/a.jpg` leaves `1/a.jpg`).
fn check_key_layout(spec: &JobSpec, issues: &mut Vec<Issue>) {
    let prefix = spec.source.prefix();
    if spec.destination.key_layout == KeyLayout::Relative
        && !prefix.is_empty()
        && !prefix.ends_with('/')
    {
        issues.push(Issue::text(
            "destination.key_layout",
            "relative",
            format!(
                "needs source.prefix to be a folder ending in \"/\", but it is {prefix:?}: \
                 taking it off the keys would leave part of a name"
            ),
            format!(
                "set source.prefix to {:?}, or use key_layout \"full\"",
                format!("{prefix}/")
            ),
        ));
    }
}

fn check_destination_prefix(prefix: &str, issues: &mut Vec<Issue>) {
    if prefix.starts_with(['/', '\\']) {
        issues.push(Issue::text(
            "destination.prefix",
            prefix,
            "starts with a slash, which OSS object names may not",
            format!(
                "drop the leading slash: {:?}",
                prefix.trim_start_matches(['/', '\\'])
            ),
        ));
    }
    if prefix.len() > 1000 {
        issues.push(Issue::shown(
            "destination.prefix",
            format!("<{} bytes>", prefix.len()),
            "is too long: OSS object names are at most 1023 bytes, prefix included",
            "use a prefix of at most 1000 bytes",
        ));
    }
}

/// Refuses a destination that is (part of) its own source: the same bucket on the same OSS
/// service with one prefix inside the other. Copying there would read back ferry's own output
/// on the next run and nest it deeper each time.
fn check_overlap(spec: &JobSpec, issues: &mut Vec<Issue>) {
    let Some(source) = spec.source.as_oss_place() else {
        return;
    };
    let destination = spec.destination.place();
    if source.bucket != destination.bucket {
        return;
    }
    let (Some(a), Some(b)) = (source.store(), destination.store()) else {
        return;
    };
    let nested = destination.prefix.starts_with(source.prefix)
        || source.prefix.starts_with(destination.prefix);
    if a != b || !nested {
        return;
    }
    let fix = if source.prefix.is_empty() {
        "copy into another bucket: the source covers the whole bucket".to_owned()
    } else {
        format!(
            "use a destination prefix that neither contains nor lies inside source.prefix {:?}, or another bucket",
            source.prefix
        )
    };
    issues.push(Issue::text(
        "destination.prefix",
        destination.prefix,
        format!(
            "overlaps the source: bucket {:?} on the same OSS service, and source.prefix {:?} and destination.prefix nest; ferry would copy its own output back in",
            source.bucket, source.prefix
        ),
        fix,
    ));
}

fn check_filters(spec: &JobSpec, issues: &mut Vec<Issue>) {
    let f = &spec.filters;
    if let (Some(since), Some(before)) = (f.modified_since, f.modified_before)
        && since >= before
    {
        issues.push(Issue::shown(
            "filters.modified_before",
            before,
            format!("is not after filters.modified_since ({since}), so nothing would be copied"),
            "make modified_before later than modified_since, or remove one of them",
        ));
    }
    if let (Some(min), Some(max)) = (f.min_size, f.max_size)
        && min > max
    {
        issues.push(Issue::shown(
            "filters.max_size",
            max,
            format!("is smaller than filters.min_size ({min}), so nothing would be copied"),
            "make max_size at least min_size, or remove one of them",
        ));
    }
    let prefix = spec.source.prefix();
    for (i, glob) in f.include.iter().enumerate() {
        let literal = glob.literal_prefix();
        if !literal.starts_with(prefix) && !prefix.starts_with(&literal) {
            issues.push(Issue::text(
                format!("filters.include[{i}]"),
                glob.as_str(),
                format!(
                    "can never match a key under source.prefix {prefix:?}: patterns match the whole key"
                ),
                format!(
                    "start the pattern with the prefix, e.g. {:?}",
                    format!("{prefix}{glob}")
                ),
            ));
        }
    }
}

fn check_ranges(spec: &JobSpec, issues: &mut Vec<Issue>) {
    let mut range = |path: &str, value: u64, min: u64, max: u64, fix: &str| {
        if !(min..=max).contains(&value) {
            issues.push(Issue::shown(path, value, "is out of range", fix));
        }
    };
    range(
        "archive.days",
        spec.archive.days.into(),
        1,
        365,
        "use 1 to 365 days",
    );
    range(
        "sharding.scan_depth",
        spec.sharding.scan_depth.into(),
        0,
        16,
        "use 0 to 16 levels (2 is the default)",
    );
    range(
        "sharding.max_keys_per_shard",
        spec.sharding.max_keys_per_shard,
        1,
        10_000_000,
        "use 1 to 10000000 keys (10000 is the default)",
    );
    range(
        "concurrency.objects",
        spec.concurrency.objects as u64,
        1,
        1024,
        "use 1 to 1024 (32 is the default)",
    );
    range(
        "concurrency.parts",
        spec.concurrency.parts as u64,
        1,
        64,
        "use 1 to 64 (4 is the default)",
    );
    let sizes = [
        (
            "sharding.max_bytes_per_shard",
            spec.sharding.max_bytes_per_shard,
            ByteSize::mib(1).0,
            u64::MAX,
            "use at least \"1MiB\" (\"16GiB\" is the default)",
        ),
        (
            "concurrency.part_size",
            spec.concurrency.part_size,
            MIN_PART_SIZE,
            MAX_PART_SIZE,
            "use \"100KiB\" to \"5GiB\", the part sizes OSS accepts (\"16MiB\" is the default)",
        ),
        (
            "concurrency.multipart_threshold",
            spec.concurrency.multipart_threshold,
            MIN_PART_SIZE,
            MAX_PART_SIZE,
            "use \"100KiB\" to \"5GiB\": a single PUT carries at most 5 GiB (\"64MiB\" is the default)",
        ),
    ];
    for (path, size, min, max, fix) in sizes {
        if !(min..=max).contains(&size.0) {
            issues.push(Issue::shown(path, size, "is out of range", fix));
        }
    }
    if let Some(rate) = spec.bandwidth_limit
        && rate.0 < 1024
    {
        issues.push(Issue::shown(
            "bandwidth_limit",
            rate,
            "is below 1 KiB/s, which is almost certainly a missing unit",
            "write a rate with a unit, e.g. \"200MB/s\" or \"100Mbit/s\", or remove the limit",
        ));
    }
}
