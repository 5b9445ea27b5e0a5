//! `ferry demo`: a migration on loopback with nothing but this binary.
//!
//! Two OSS emulators start in-process on 127.0.0.1, each storing its data in a folder under
//! `--dir`: the first plays the source in its S3-compatible role (ferry reads it with aws-sdk-s3,
//! exactly as it reads Amazon S3), the second is the OSS destination. ferry lists the source,
//! decides what to copy from both listings, copies every object (streamed PutObject, or multipart
//! above the threshold) proving each with CRC-64, then checks each destination object on its own
//! with HEAD (size and CRC-64) and writes `report.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::oss::{Credentials, OssClient, SignatureVersion};
use ferry::secret::Secret;
use ferry::source::s3::{S3Credentials, S3Source, S3SourceConfig};
use ferry::transfer::resume::MemoryLedger;
use ferry::transfer::{
    Copier, CopyOptions, Destination, ObjectResult, Outcome, WalkOptions, walk_range,
};
use oss_emulator::{Emulator, PutOptions, StorageClass};

const REGION: &str = "cn-hangzhou";
const SOURCE_BUCKET: &str = "demo-source";
const DEST_BUCKET: &str = "demo-destination";

#[derive(clap::Args)]
pub struct Args {
    /// Folder for the demo's data: the source and destination emulators' storage and the report.
    #[arg(long, default_value = "ferry-demo")]
    dir: PathBuf,
    /// How many sample objects to create (besides the fixed set of awkward keys and large objects).
    #[arg(long, default_value_t = 200)]
    objects: usize,
    /// Objects copied at the same time.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

pub async fn run(args: Args) -> Result<(), String> {
    let started = Instant::now();
    prepare_dir(&args.dir)?;
    let source_emu = start_emulator(&args.dir.join("source"), "demo-source-ak").await?;
    let dest_emu = start_emulator(&args.dir.join("destination"), "demo-dest-ak").await?;
    println!(
        "source emulator      {}  (bucket {SOURCE_BUCKET})",
        source_emu.endpoint()
    );
    println!(
        "destination emulator {}  (bucket {DEST_BUCKET})",
        dest_emu.endpoint()
    );

    dest_emu
        .create_bucket(DEST_BUCKET)
        .map_err(|e| e.to_string())?;
    let samples = seed(&source_emu, args.objects).await?;
    println!(
        "seeded {} objects, {:.1} MiB",
        samples.len(),
        samples.values().sum::<u64>() as f64 / 1048576.0
    );

    let source = s3_source(&source_emu).await?;
    let dest = Destination {
        client: client_for(&dest_emu)?,
        bucket: DEST_BUCKET.into(),
        prefix: String::new(),
    };
    let results = migrate(source, &dest, samples.len(), args.concurrency).await?;
    let verified = verify(&dest, &results).await;
    let report = Report::new(&results, &verified, samples.len(), started.elapsed());
    report.print();
    let path = args.dir.join("report.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&report.json(&results, &verified)).expect("report serialises"),
    )
    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!(
        "\nreport: {}\ndata:   {} (source/ and destination/ hold each emulator's objects)",
        path.display(),
        args.dir.display()
    );
    source_emu.shutdown().await;
    dest_emu.shutdown().await;
    if report.complete() {
        Ok(())
    } else {
        Err("the migration did not verify every object (see the report)".into())
    }
}

/// Starts from clean emulator folders; anything else in `dir` is left alone.
fn prepare_dir(dir: &Path) -> Result<(), String> {
    for sub in ["source", "destination"] {
        let p = dir.join(sub);
        if p.exists() {
            std::fs::remove_dir_all(&p)
                .map_err(|e| format!("cannot clear {}: {e}", p.display()))?;
        }
        std::fs::create_dir_all(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
    }
    Ok(())
}

async fn start_emulator(dir: &Path, access_key_id: &str) -> Result<Emulator, String> {
    Emulator::builder()
        .credentials(access_key_id, format!("{access_key_id}-secret"))
        .region(REGION)
        .data_dir(Some(dir.to_owned()))
        .start()
        .await
        .map_err(|e| format!("cannot start an OSS emulator: {e}"))
}

/// The source emulator as an S3-compatible store.
async fn s3_source(emu: &Emulator) -> Result<S3Source, String> {
    let ak = emu.access_key_id().to_owned();
    let mut config = S3SourceConfig::new(SOURCE_BUCKET);
    config.endpoint = Some(emu.endpoint());
    config.region = Some(REGION.into());
    config.path_style = true;
    config.allow_http = true; // loopback only
    config.credentials = S3Credentials::Static {
        secret_access_key: Secret::new(format!("{ak}-secret")),
        access_key_id: ak,
        session_token: None,
    };
    S3Source::new(config).await.map_err(|e| e.to_string())
}

fn client_for(emu: &Emulator) -> Result<OssClient, String> {
    let ak = emu.access_key_id().to_owned();
    OssClient::builder()
        .endpoint(emu.endpoint())
        .region(REGION)
        .credentials(Credentials::new(ak.clone(), format!("{ak}-secret")))
        .signature_version(SignatureVersion::V4)
        .allow_http(true) // loopback only
        .build()
        .map_err(|e| e.to_string())
}

/// Fills the source: keys users really have (unicode, spaces, `+`, `%`, `?`, `#`, `//`), an
/// empty object, many small objects and two that go by multipart upload.
async fn seed(emu: &Emulator, count: usize) -> Result<BTreeMap<String, u64>, String> {
    emu.create_bucket(SOURCE_BUCKET)
        .map_err(|e| e.to_string())?;
    let mut objects: Vec<(String, usize)> = vec![
        ("文档/季度报告 2024.pdf".into(), 300_000),
        ("photos/summer trip/IMG 0001.jpg".into(), 2_500_000),
        ("a+b=c/100% done.txt".into(), 1_234),
        ("what?/why#not.txt".into(), 77),
        ("deep//double/slash".into(), 4_096),
        ("folder-marker/".into(), 0),
        ("empty.bin".into(), 0),
        ("video/large-1.mp4".into(), 40 << 20),
        ("video/large-2.mp4".into(), (24 << 20) + 12_345),
    ];
    for i in 0..count {
        objects.push((
            format!("logs/2024/{:02}/app-{i:05}.log", i % 12 + 1),
            200 + (i * 7919) % 120_000,
        ));
    }
    let mut seeded = BTreeMap::new();
    for (key, size) in objects {
        let opts = PutOptions {
            storage_class: StorageClass::Standard,
            content_type: Some(content_type_of(&key).into()),
            user_meta: BTreeMap::from([("origin".to_owned(), "ferry-demo".to_owned())]),
        };
        emu.put_object_with(SOURCE_BUCKET, &key, sample_bytes(&key, size), opts)
            .await
            .map_err(|e| format!("cannot seed {key:?}: {e}"))?;
        seeded.insert(key, size as u64);
    }
    Ok(seeded)
}

fn content_type_of(key: &str) -> &'static str {
    match key.rsplit('.').next() {
        Some("pdf") => "application/pdf",
        Some("jpg") => "image/jpeg",
        Some("mp4") => "video/mp4",
        Some("txt") | Some("log") => "text/plain",
        _ => "application/octet-stream",
    }
}

/// Reproducible bytes that differ per key.
fn sample_bytes(key: &str, size: usize) -> Vec<u8> {
    let mut x = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    }) | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Walks the whole source with the engine's range walker: listing diff, bounded concurrency,
/// an outcome for every object.
async fn migrate(
    source: S3Source,
    dest: &Destination,
    total: usize,
    concurrency: usize,
) -> Result<Vec<ObjectResult>, String> {
    let copier = Copier {
        source: Arc::new(source),
        dest: dest.clone(),
        options: CopyOptions {
            multipart_threshold: 16 << 20,
            part_size: 5 << 20,
            ..Default::default()
        },
        ledger: Arc::new(MemoryLedger::new()),
    };
    let options = WalkOptions {
        object_concurrency: concurrency.max(1),
        ..Default::default()
    };
    let mut results = Vec::with_capacity(total);
    walk_range(&copier, &options, &mut |r| {
        results.push(r);
        if results.len() % 50 == 0 || results.len() == total {
            println!("copied {}/{total}", results.len());
        }
    })
    .await?;
    results.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(results)
}

/// What the destination says about one copied object, checked independently of the copy.
#[derive(serde::Serialize)]
struct Check {
    key: String,
    ok: bool,
    detail: String,
}

async fn verify(dest: &Destination, results: &[ObjectResult]) -> Vec<Check> {
    let mut checks = Vec::new();
    for r in results {
        let Outcome::Copied { crc64, .. } = r.outcome else {
            continue;
        };
        let check = match dest
            .client
            .head_object(&dest.bucket, &dest.key_for(&r.key))
            .await
        {
            Ok(meta) if meta.content_length == r.size && meta.crc64 == Some(crc64) => Check {
                key: r.key.clone(),
                ok: true,
                detail: format!("size {} and CRC-64 {crc64} match", r.size),
            },
            Ok(meta) => Check {
                key: r.key.clone(),
                ok: false,
                detail: format!(
                    "destination has size {} CRC-64 {:?}; expected {} and {crc64}",
                    meta.content_length, meta.crc64, r.size
                ),
            },
            Err(e) => Check {
                key: r.key.clone(),
                ok: false,
                detail: format!("HEAD failed: {e}"),
            },
        };
        checks.push(check);
    }
    checks
}

struct Report {
    in_scope: usize,
    copied: usize,
    verified: usize,
    mismatched: usize,
    needs_restore: usize,
    failed: usize,
    bytes: u64,
    elapsed: Duration,
}

impl Report {
    fn new(results: &[ObjectResult], checks: &[Check], in_scope: usize, elapsed: Duration) -> Self {
        let count = |f: fn(&Outcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
        Report {
            in_scope,
            copied: count(|o| matches!(o, Outcome::Copied { .. })),
            verified: checks.iter().filter(|c| c.ok).count(),
            mismatched: checks.iter().filter(|c| !c.ok).count(),
            needs_restore: count(|o| matches!(o, Outcome::NeedsRestore)),
            failed: count(|o| matches!(o, Outcome::Failed { .. })),
            bytes: results
                .iter()
                .filter(|r| matches!(r.outcome, Outcome::Copied { .. }))
                .map(|r| r.size)
                .sum(),
            elapsed,
        }
    }

    /// Every object in scope copied and independently verified.
    fn complete(&self) -> bool {
        self.verified == self.in_scope
            && self.mismatched == 0
            && self.failed == 0
            && self.needs_restore == 0
    }

    fn print(&self) {
        println!("\nferry demo report");
        println!("  objects in scope     {}", self.in_scope);
        println!("  copied               {}", self.copied);
        println!("  verified (HEAD: size + CRC-64) {}", self.verified);
        println!("  mismatched           {}", self.mismatched);
        println!("  needs restore        {}", self.needs_restore);
        println!("  failed               {}", self.failed);
        println!(
            "  bytes copied         {:.1} MiB",
            self.bytes as f64 / 1048576.0
        );
        println!("  elapsed              {:.2} s", self.elapsed.as_secs_f64());
        println!(
            "  result               {}",
            if self.complete() {
                "COMPLETE: every object arrived byte-exact"
            } else {
                "INCOMPLETE"
            }
        );
    }

    fn json(&self, results: &[ObjectResult], checks: &[Check]) -> serde_json::Value {
        serde_json::json!({
            "complete": self.complete(),
            "counts": {
                "in_scope": self.in_scope, "copied": self.copied, "verified": self.verified,
                "mismatched": self.mismatched, "needs_restore": self.needs_restore, "failed": self.failed,
            },
            "bytes_copied": self.bytes,
            "elapsed_seconds": self.elapsed.as_secs_f64(),
            "objects": results,
            "verification": checks,
        })
    }
}
