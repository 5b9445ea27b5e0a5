//! `ferry demo`: a full migration on loopback with nothing but this binary.
//!
//! Two OSS emulators start in-process on 127.0.0.1, each storing its data in a folder under
//! `--dir`: the first plays the source in its S3-compatible role (ferry reads it with aws-sdk-s3,
//! exactly as it reads Amazon S3), the second is the OSS destination. The demo seeds the source
//! with awkward keys and varied sizes, writes a job file, and runs it through the standalone
//! pipeline — planner, transfer workers, verifier — exactly as `ferry run` does: every object is
//! copied (streamed PutObject, or multipart above the threshold) and proven with CRC-64, checked
//! again at the destination on its own, and counted once in `report.json`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ferry::deploy::connect::StaticSecrets;
use ferry::pipeline::standalone::{self, Options};
use ferry::secret::Secret;
use oss_emulator::{Emulator, PutOptions, StorageClass};

const REGION: &str = "cn-hangzhou";
const SOURCE_BUCKET: &str = "demo-source";
const DEST_BUCKET: &str = "demo-destination";

#[derive(clap::Args)]
pub struct Args {
    /// Folder for the demo's data: the emulators' storage, the job file, the run state and
    /// the report.
    #[arg(long, default_value = "ferry-demo")]
    dir: PathBuf,
    /// How many sample objects to create (besides the fixed set of awkward keys and large objects).
    #[arg(long, default_value_t = 200)]
    objects: usize,
    /// Objects copied at the same time by each worker.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

pub async fn run(args: Args) -> Result<(), String> {
    let started = Instant::now();
    prepare_dir(&args.dir)?;
    let source_emu = start_emulator(&args.dir.join("source"), "demo-source-ak").await?;
    let dest_emu = start_emulator(&args.dir.join("destination"), "demo-dest-ak").await?;
    println!(
        "source emulator      {}  (S3-compatible, bucket {SOURCE_BUCKET})",
        source_emu.endpoint()
    );
    println!(
        "destination emulator {}  (OSS, bucket {DEST_BUCKET})",
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

    let job = job_json(&source_emu, &dest_emu, args.concurrency);
    let job_path = args.dir.join("job.json");
    std::fs::write(&job_path, &job)
        .map_err(|e| format!("cannot write {}: {e}", job_path.display()))?;
    let mut options = Options::new(args.dir.join("state"));
    options.fresh = true;
    options.workers = 4;
    let last_shown = Arc::new(std::sync::Mutex::new(0u64));
    options.on_progress = Some(Arc::new(move |view: &standalone::View| {
        let t = &view.progress.tally;
        let mut last = last_shown.lock().expect("lock");
        if t.objects != *last {
            *last = t.objects;
            println!(
                "verified {:>4} objects ({:.1} MiB), {} tasks pending",
                t.objects,
                t.bytes as f64 / 1048576.0,
                view.progress.pending.len()
            );
        }
    }));
    let secrets = Arc::new(secrets_for(&source_emu, &dest_emu));
    let finished = standalone::run(&job, options, secrets)
        .await
        .map_err(|e| e.to_string())?;
    let report = &finished.report;
    let t = &report.objects;
    println!(
        "\nferry demo report ({} tasks, run {})",
        report.tasks, report.run
    );
    println!("  objects in scope     {}", t.objects);
    println!(
        "  copied and verified  {} ({:.1} MiB)",
        t.copied,
        t.copied_bytes as f64 / 1048576.0
    );
    println!("  skipped              {}", t.skipped);
    println!("  needs restore        {}", t.needs_restore);
    println!("  failed               {}", t.failed);
    println!(
        "  elapsed              {:.2} s",
        started.elapsed().as_secs_f64()
    );
    println!("  result               {}", report.summary);
    println!(
        "\njob:    {}\nreport: {}\ndata:   {} (source/ and destination/ hold each emulator's objects)",
        job_path.display(),
        finished.run_dir.join("report.json").display(),
        args.dir.display()
    );
    println!(
        "\nnext:   ferry report {job} --state {state}     (the report as a table)\n        \
         ferry status {job} --state {state}     (where a run is)\n        \
         docs/running.md: keep OSS current with `ferry follow`, then switch with `ferry cutover`",
        job = report.job,
        state = args.dir.join("state").display()
    );
    source_emu.shutdown().await;
    dest_emu.shutdown().await;
    let exact = t.objects == samples.len() as u64 && t.copied == t.objects;
    if report.verdict == "complete" && exact {
        Ok(())
    } else {
        Err(format!(
            "the migration did not verify every object: {} seeded, {} copied (see the report)",
            samples.len(),
            t.copied
        ))
    }
}

/// Starts from clean emulator and state folders; anything else in `dir` is left alone.
fn prepare_dir(dir: &Path) -> Result<(), String> {
    for sub in ["source", "destination", "state"] {
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

/// The demo's job: the source emulator as an S3-compatible store, the other as OSS, small
/// shards so the work spreads over several tasks. Credentials are named, never written here.
fn job_json(source: &Emulator, dest: &Emulator, concurrency: usize) -> String {
    let job = serde_json::json!({
        "version": 1,
        "name": "demo",
        "source": {
            "kind": "s3", "bucket": SOURCE_BUCKET, "region": REGION,
            "endpoint": source.endpoint(), "path_style": true, "allow_http": true,
            "credentials": { "secret": "demo/source" }
        },
        "destination": {
            "bucket": DEST_BUCKET, "region": REGION, "endpoint": dest.endpoint(),
            "allow_http": true, "credentials": { "secret": "demo/destination" }
        },
        "sharding": { "max_keys_per_shard": 40 },
        "concurrency": {
            "objects": concurrency.max(1), "multipart_threshold": "16MiB", "part_size": "5MiB"
        }
    });
    serde_json::to_string_pretty(&job).expect("json")
}

/// The emulators' keys, as the secret store would hold them.
fn secrets_for(source: &Emulator, dest: &Emulator) -> StaticSecrets {
    let s = source.access_key_id();
    let d = dest.access_key_id();
    StaticSecrets(HashMap::from([
        (
            "demo/source".to_owned(),
            Secret::new(
                serde_json::json!({ "access_key_id": s, "secret_access_key": format!("{s}-secret") })
                    .to_string(),
            ),
        ),
        (
            "demo/destination".to_owned(),
            Secret::new(
                serde_json::json!({ "access_key_id": d, "access_key_secret": format!("{d}-secret") })
                    .to_string(),
            ),
        ),
    ]))
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
