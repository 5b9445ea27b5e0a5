//! The soak: one whole `ferry run` of many objects between two emulator processes that fail
//! all along, then every object read back with oss2 and compared byte for byte. Not part of the
//! test suite: run by hand, and recorded (`--record tests/bench/RESULTS.md`).
//!
//! 1. Two `oss-emulator` processes: the source (ferry reads it through its S3 dialect, as in
//!    `migrate`) and the destination. The source is seeded with N reproducible objects over a
//!    few hundred prefixes: mostly 1–64 KiB (log-uniform), a few hundred of 1–8 MiB, eight
//!    from the multipart threshold (5 MiB, parts of 1 MiB) to 40 MiB, and two giants larger
//!    than a shard's byte budget (64 MiB), which go by part tasks — plus a few keys with
//!    spaces, `+`, `%`, `?`, `#` and CJK characters.
//! 2. Faults through each emulator's admin API (`POST /-/admin/faults`), see [`fault_rules`]:
//!    5xx errors, connection resets before the operation and after it ran (the answer lost),
//!    truncated GET bodies.
//! 3. The real `ferry run` binary (`ferry` beside this executable, from `-p ferry-cli`) on a
//!    job naming both emulators, with its state in the work folder, bounded by `--limit-secs`
//!    (killed when it runs over). Its wall time, peak RSS and CPU come from `wait4`.
//! 4. Checks: exit status 0, report.json (verdict complete, objects = copied = N, bytes, no
//!    failed object, no failed task), failures.csv empty; then, with the faults cleared,
//!    `soak_readback.py` (oss2) lists the destination, reads every object back and compares it
//!    with the generator's bytes, and lists open multipart uploads (there must be none).
//! 5. A table: objects, bytes, seconds, objects/s, faults injected and requests per operation
//!    (the emulators' counters, taken before the readback), ferry's peak RSS and CPU, and the
//!    result — `exact`, or what differed. A run that is not exact is recorded as it is and the
//!    benchmark exits 1.
//!
//! Duplicate deliveries: neither `ferry run` nor `pipeline::standalone` has a switch that
//! delivers queue messages twice (the in-memory queue redelivers only what a worker hands back
//! or leaves unacknowledged), so the soak gets repeated work from the faults themselves: a write
//! whose answer is lost (error or reset after it ran) is done again by the retry, by a later
//! delivery of its task, or by the verifier's re-copy.
//!
//! The work folder (`--work-dir`, default a new folder under the system temp dir) keeps the
//! job, ferry's state (report.json, failures.csv), its stdout/stderr, the manifest and the
//! readback's output, for the evidence when a run is not exact.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::migrate::{AK, REGION, SK};
use crate::procs::{self, EmulatorProcess};
use crate::raw_oss::RawOss;

const SOURCE_BUCKET: &str = "soak-src";
const DEST_BUCKET: &str = "soak-dst";
const JOB_NAME: &str = "soak";
/// The generator's block: a prime length, so no two parts of a multipart object are alike.
const BLOCK_LEN: usize = 1_048_573;
const MIB: u64 = 1 << 20;
const MULTIPART_THRESHOLD: u64 = 5 * MIB;
const PART_SIZE: u64 = MIB;
/// A shard's byte budget: objects above it are giants, copied by part tasks.
const SHARD_BYTES: u64 = 64 * MIB;
const SHARD_KEYS: u64 = 2000;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Objects to seed and migrate.
    #[arg(long, default_value_t = 100_000)]
    pub objects: u64,
    /// Wall-time limit for `ferry run`; it is killed and the soak fails when it runs over.
    #[arg(long, default_value_t = 1200)]
    pub limit_secs: u64,
    /// Wall-time limit for the oss2 readback.
    #[arg(long, default_value_t = 1800)]
    pub readback_limit_secs: u64,
    /// `ferry run --workers`.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Seed of the emulators' fault RNGs (the source gets this one, the destination this + 1).
    #[arg(long, default_value_t = 14)]
    pub fault_seed: u64,
    /// Run without faults (a baseline for the timings; never a substitute for the soak).
    #[arg(long)]
    pub no_faults: bool,
    /// The emulator binary (default: `oss-emulator` beside this executable).
    #[arg(long)]
    pub emulator: Option<PathBuf>,
    /// The ferry CLI binary (default: `ferry` beside this executable).
    #[arg(long)]
    pub ferry: Option<PathBuf>,
    /// Python with oss2 (default: the repo's `.venv/bin/python`).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Where the job, ferry's state and logs are kept (default: a new temp folder).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// What the ferry binary was built from, for the record (default: this repo's commit and
    /// uncommitted changes when the soak starts).
    #[arg(long)]
    pub ferry_rev: Option<String>,
}

/// One seeded object.
#[derive(Clone, Debug)]
struct Obj {
    index: u64,
    key: String,
    size: u64,
    offset: u64,
}

impl Obj {
    fn header(&self) -> Vec<u8> {
        format!("ferry-soak {} {}\n", self.index, self.key).into_bytes()
    }
}

/// Bytes `start..start + len` of `obj`: its header, then the block from `obj.offset` on,
/// wrapping. `soak_readback.py` rebuilds the same bytes (`expected_bytes`).
fn fill(obj: &Obj, header: &[u8], block: &[u8], start: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let end = start + len as u64;
    let mut pos = start;
    while pos < end {
        let left = (end - pos) as usize;
        if (pos as usize) < header.len() {
            let take = (header.len() - pos as usize).min(left);
            out.extend_from_slice(&header[pos as usize..pos as usize + take]);
            pos += take as u64;
        } else {
            let b = ((obj.offset + pos) % BLOCK_LEN as u64) as usize;
            let take = (BLOCK_LEN - b).min(left);
            out.extend_from_slice(&block[b..b + take]);
            pos += take as u64;
        }
    }
    out
}

fn mix(mut x: u64) -> u64 {
    // splitmix64
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The soak's N objects: two giants, eight multipart objects, a few hundred of 1–8 MiB, the
/// rest 1–64 KiB (log-uniform) over 300 prefixes `tNN/dNN/`, a few with awkward keys.
fn dataset(n: u64) -> Vec<Obj> {
    const GIANTS: [u64; 2] = [72 * MIB + 12_345, 100 * MIB + 1];
    const LARGE: [u64; 8] = [
        MULTIPART_THRESHOLD,
        MULTIPART_THRESHOLD + 1,
        6 * MIB + 777,
        9 * MIB + 12_345,
        12 * MIB,
        17 * MIB + 3,
        24 * MIB + 999,
        40 * MIB - 1,
    ];
    let giants = (GIANTS.len() as u64).min(n);
    let large = (LARGE.len() as u64).min(n - giants);
    let medium = (n / 333).clamp(5, 300).min(n - giants - large);
    let mut objects = Vec::with_capacity(n as usize);
    for i in 0..n {
        let h = mix(i);
        let (key, size) = if i < giants {
            (format!("giant/blob-{i}.bin"), GIANTS[i as usize])
        } else if i < giants + large {
            let j = i - giants;
            (format!("large/part-{j:02}.bin"), LARGE[j as usize])
        } else if i < giants + large + medium {
            let j = i - giants - large;
            (
                format!("media/m{:02}/clip-{j:04}.mp4", j % 20),
                MIB + h % (7 * MIB),
            )
        } else {
            let u = (h >> 11) as f64 / (1u64 << 53) as f64;
            let size = (1024.0 * 64f64.powf(u)) as u64;
            let p = mix(h) % 300;
            let key = match i % 20_000 {
                7 => format!("文档/报告 {i:06}.pdf"),
                13 => format!("a+b=c/100% done {i:06}.txt"),
                17 => format!("sp ace/what?/why#not {i:06}.txt"),
                _ => format!("t{:02}/d{:02}/obj-{i:06}.dat", p / 25, p % 25),
            };
            (key, size.clamp(1024, 64 * 1024 - 1))
        };
        objects.push(Obj {
            index: i,
            key,
            size,
            offset: mix(i ^ 0x5EED) % BLOCK_LEN as u64,
        });
    }
    objects
}

/// Which emulator a fault rule goes to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Source,
    Destination,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Destination => "destination",
        }
    }
}

/// The soak's faults. Rules for the same request are drawn in this order and one error or
/// reset acts per phase, so the rates below add up to a little less than their sum.
///
/// * destination writes (PutObject, UploadPart, CompleteMultipartUpload): 503 before 2.5%, 500
///   after the write 2.5% (done, answer lost), reset before 1.5%, reset after the write 1.5%;
/// * destination reads (HeadObject, ListObjectsV2): 503 and 500 before, 2.5% each; reset
///   before 1.5%;
/// * the rest of the multipart path at the destination: InitiateMultipartUpload 503 before
///   2.5%; ListParts and ListMultipartUploads 503 before 2.5%, reset 1.5%;
///   AbortMultipartUpload 503 before 2.5%, 500 after 2.5%;
/// * source (GetObject, HeadObject, ListObjectsV2): 503 and 500 before, 2.5% each, reset
///   before 1.5%; GetObject bodies cut at half 1%.
fn fault_rules() -> Vec<(Side, Value)> {
    let mut rules = Vec::new();
    let error = |op: &str, status: u16, rate: f64, phase: &str| json!({"op": op, "kind": "error", "status": status, "rate": rate, "phase": phase});
    let reset = |op: &str, rate: f64, phase: &str| json!({"op": op, "kind": "reset", "rate": rate, "phase": phase});
    for op in ["PutObject", "UploadPart", "CompleteMultipartUpload"] {
        rules.push((Side::Destination, error(op, 503, 0.025, "before")));
        rules.push((Side::Destination, reset(op, 0.015, "before")));
        rules.push((Side::Destination, error(op, 500, 0.025, "after")));
        rules.push((Side::Destination, reset(op, 0.015, "after")));
    }
    for op in ["HeadObject", "ListObjectsV2"] {
        rules.push((Side::Destination, error(op, 503, 0.025, "before")));
        rules.push((Side::Destination, error(op, 500, 0.025, "before")));
        rules.push((Side::Destination, reset(op, 0.015, "before")));
    }
    rules.push((
        Side::Destination,
        error("InitiateMultipartUpload", 503, 0.025, "before"),
    ));
    for op in ["ListParts", "ListMultipartUploads"] {
        rules.push((Side::Destination, error(op, 503, 0.025, "before")));
        rules.push((Side::Destination, reset(op, 0.015, "before")));
    }
    rules.push((
        Side::Destination,
        error("AbortMultipartUpload", 503, 0.025, "before"),
    ));
    rules.push((
        Side::Destination,
        error("AbortMultipartUpload", 500, 0.025, "after"),
    ));
    for op in ["GetObject", "HeadObject", "ListObjectsV2"] {
        rules.push((Side::Source, error(op, 503, 0.025, "before")));
        rules.push((Side::Source, error(op, 500, 0.025, "before")));
        rules.push((Side::Source, reset(op, 0.015, "before")));
    }
    rules.push((
        Side::Source,
        json!({"op": "GetObject", "kind": "truncate", "rate": 0.01}),
    ));
    rules
}

/// The emulator's unsigned admin API.
struct Admin {
    http: reqwest::Client,
    base: String,
}

impl Admin {
    fn new(endpoint: &str) -> Self {
        Admin {
            http: reqwest::Client::new(),
            base: format!("{}/-/admin", endpoint.trim_end_matches('/')),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Bytes, String> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}/{path}", self.base));
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{method} /-/admin/{path}: {e}"))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!(
                "{method} /-/admin/{path}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        Ok(bytes)
    }

    async fn counters(&self) -> Result<Counters, String> {
        let bytes = self.call(reqwest::Method::GET, "counters", None).await?;
        serde_json::from_slice(&bytes).map_err(|e| format!("counters: {e}"))
    }

    async fn faults(&self) -> Result<Vec<FaultEntry>, String> {
        #[derive(Deserialize)]
        struct List {
            faults: Vec<FaultEntry>,
        }
        let bytes = self.call(reqwest::Method::GET, "faults", None).await?;
        serde_json::from_slice::<List>(&bytes)
            .map(|l| l.faults)
            .map_err(|e| format!("faults: {e}"))
    }
}

/// The parts of the emulator's counters the soak reports.
#[derive(Deserialize, Default)]
struct Counters {
    total: u64,
    by_operation: BTreeMap<String, u64>,
    by_operation_status: BTreeMap<String, BTreeMap<String, u64>>,
    faults_injected: BTreeMap<String, u64>,
    by_object: Vec<ObjectCount>,
}

#[derive(Deserialize)]
struct ObjectCount {
    key: Option<String>,
    operation: String,
    count: u64,
}

impl Counters {
    fn faults(&self) -> u64 {
        self.faults_injected.values().sum()
    }

    /// Responses of `op` that were not 2xx (errors and dropped connections).
    fn failed(&self, op: &str) -> u64 {
        self.by_operation_status
            .get(op)
            .map(|m| {
                m.iter()
                    .filter(|(s, _)| !s.starts_with('2'))
                    .map(|(_, n)| n)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Keys written (PutObject or InitiateMultipartUpload requests) more than once.
    fn rewritten_keys(&self) -> u64 {
        let mut writes: BTreeMap<&str, u64> = BTreeMap::new();
        for c in &self.by_object {
            if let Some(key) = &c.key
                && (c.operation == "PutObject" || c.operation == "InitiateMultipartUpload")
            {
                *writes.entry(key).or_default() += c.count;
            }
        }
        writes.values().filter(|&&n| n > 1).count() as u64
    }
}

#[derive(Deserialize)]
struct FaultEntry {
    rule: Value,
    fired: u64,
}

/// How a bounded child process ended.
struct Ran {
    /// Exit code, or `None` when killed by a signal.
    code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
    elapsed: Duration,
    /// The highest `VmHWM` read from `/proc` while it ran (sampled every 100 ms): its own
    /// memory. `wait4`'s `ru_maxrss` would also count this process's peak at spawn time.
    peak_rss: u64,
    cpu: Duration,
}

impl Ran {
    fn describe(&self) -> String {
        match (self.timed_out, self.code, self.signal) {
            (true, _, _) => format!(
                "killed after {:.0} s (the limit)",
                self.elapsed.as_secs_f64()
            ),
            (_, Some(c), _) => format!("exit status {c}"),
            (_, None, Some(s)) => format!("killed by signal {s}"),
            _ => "ended in an unknown way".into(),
        }
    }
}

/// Runs `command` with stdout and stderr into files, killing it (SIGKILL) after `limit`.
/// Wall time and CPU time come from `wait4`, peak RSS from the child's own `VmHWM`.
async fn run_bounded(
    mut command: Command,
    limit: Duration,
    stdout: &Path,
    stderr: &Path,
    label: &str,
) -> Result<Ran, String> {
    let out = File::create(stdout).map_err(|e| format!("{}: {e}", stdout.display()))?;
    let err = File::create(stderr).map_err(|e| format!("{}: {e}", stderr.display()))?;
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, zero is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut timed_out = false;
    let mut next_note = Duration::from_secs(60);
    let mut peak_rss = 0;
    loop {
        if let Some(hwm) = crate::proc_stats::peak_rss(pid as u32) {
            peak_rss = peak_rss.max(hwm);
        }
        let rc = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if rc == pid {
            break;
        }
        if rc < 0 {
            return Err(format!("wait4 failed for {label}"));
        }
        let elapsed = start.elapsed();
        if elapsed > limit && !timed_out {
            eprintln!(
                "{label} ran over its limit of {} s: killing it",
                limit.as_secs()
            );
            timed_out = true;
            let _ = child.kill();
        }
        if elapsed >= next_note {
            eprintln!("{label}: {:.0} s", elapsed.as_secs_f64());
            next_note += Duration::from_secs(60);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = start.elapsed();
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    let exited = libc::WIFEXITED(status);
    Ok(Ran {
        code: exited.then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        timed_out,
        elapsed,
        peak_rss,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
    })
}

/// The repo's commit and its uncommitted changes, for the record (the binaries are built
/// from the working tree).
fn git_state(repo: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_owned())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown (no git)".into();
    };
    let changed: Vec<String> = git(&["status", "--porcelain", "--untracked-files=no"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.get(3..).map(str::to_owned))
        .collect();
    if changed.is_empty() {
        format!("`{head}`")
    } else {
        format!(
            "`{head}` with uncommitted changes in {}",
            changed.join(", ")
        )
    }
}

fn beside_me(name: &str, given: Option<&Path>, hint: &str) -> Result<PathBuf, String> {
    let path = match given {
        Some(p) => p.to_owned(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name(name),
    };
    if path.exists() {
        Ok(path)
    } else {
        Err(format!("no {name} at {}: {hint}", path.display()))
    }
}

fn job_json(source: &str, dest: &str) -> Value {
    json!({
        "version": 1,
        "name": JOB_NAME,
        "source": {
            "kind": "s3", "bucket": SOURCE_BUCKET, "region": REGION, "endpoint": source,
            "path_style": true, "allow_http": true,
            "credentials": { "env": { "access_key_id_var": "SOAK_SRC_AK", "secret_access_key_var": "SOAK_SRC_SK" } }
        },
        "destination": {
            "bucket": DEST_BUCKET, "region": REGION, "endpoint": dest, "allow_http": true,
            "credentials": { "env": { "access_key_id_var": "SOAK_DST_AK", "access_key_secret_var": "SOAK_DST_SK" } }
        },
        "sharding": { "max_keys_per_shard": SHARD_KEYS, "max_bytes_per_shard": format!("{}MiB", SHARD_BYTES / MIB) },
        "concurrency": {
            "objects": 32, "parts": 4,
            "part_size": format!("{}MiB", PART_SIZE / MIB),
            "multipart_threshold": format!("{}MiB", MULTIPART_THRESHOLD / MIB)
        }
    })
}

/// Seeds the source bucket (no faults yet) and writes the manifest and block for the readback.
async fn seed(endpoint: &str, objects: &Arc<Vec<Obj>>, block: &Arc<Vec<u8>>) -> Result<(), String> {
    let oss = RawOss::new(endpoint, AK, SK, REGION);
    oss.create_bucket(SOURCE_BUCKET).await?;
    let results: Vec<Result<(), String>> = stream::iter(0..objects.len())
        .map(|i| {
            let (oss, objects, block) = (oss.clone(), objects.clone(), block.clone());
            async move {
                let obj = &objects[i];
                let header = obj.header();
                if obj.size <= MIB {
                    let body = fill(obj, &header, &block, 0, obj.size as usize);
                    oss.put(SOURCE_BUCKET, &obj.key, Bytes::from(body)).await
                } else {
                    let o = obj.clone();
                    oss.put_chunked(SOURCE_BUCKET, &obj.key, obj.size, move |start, n| {
                        fill(&o, &header, &block, start, n)
                    })
                    .await
                }
                .map_err(|e| format!("seeding {}: {e}", obj.key))
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

fn write_manifest(dir: &Path, objects: &[Obj], block: &[u8]) -> Result<(PathBuf, PathBuf), String> {
    let manifest = dir.join("manifest.json");
    let block_path = dir.join("block.bin");
    let entries: Vec<Value> = objects
        .iter()
        .map(|o| json!([o.key, o.size, o.offset, o.index]))
        .collect();
    let text = json!({ "block_len": BLOCK_LEN, "objects": entries }).to_string();
    std::fs::write(&manifest, text).map_err(|e| format!("{}: {e}", manifest.display()))?;
    std::fs::write(&block_path, block).map_err(|e| format!("{}: {e}", block_path.display()))?;
    Ok((manifest, block_path))
}

/// What the run produced, read from the state folder.
struct Outcome {
    report: Option<Value>,
    report_path: Option<PathBuf>,
    failures: Vec<String>,
    progress: Option<Value>,
}

fn read_outcome(state: &Path) -> Outcome {
    let run = std::fs::read(state.join(format!("jobs/{JOB_NAME}/current.json")))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["run"].as_str().map(str::to_owned));
    let Some(run) = run else {
        return Outcome {
            report: None,
            report_path: None,
            failures: Vec::new(),
            progress: None,
        };
    };
    let dir = state.join(format!("jobs/{JOB_NAME}/runs/{run}"));
    let read = |name: &str| {
        std::fs::read(dir.join(name))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    };
    let failures = std::fs::read_to_string(dir.join("failures.csv"))
        .map(|t| t.lines().skip(1).map(str::to_owned).collect())
        .unwrap_or_default();
    Outcome {
        report: read("report.json"),
        report_path: Some(dir.join("report.json")),
        failures,
        progress: read("progress.json"),
    }
}

/// The checks on ferry's side: exit status and report.
fn check_run(ran: &Ran, outcome: &Outcome, n: u64, bytes: u64, problems: &mut Vec<String>) {
    if ran.timed_out || ran.code != Some(0) {
        problems.push(format!("`ferry run` {}", ran.describe()));
    }
    let Some(report) = &outcome.report else {
        problems.push("no report.json".into());
        if let Some(p) = &outcome.progress {
            let pending: Vec<&String> = p["pending"]
                .as_object()
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            problems.push(format!(
                "progress.json: tally {}, {} tasks done, {} tasks pending (first: {:?})",
                p["tally"],
                p["tasks_done"],
                pending.len(),
                pending.iter().take(5).collect::<Vec<_>>()
            ));
        }
        return;
    };
    let o = &report["objects"];
    let expect = |field: &str, want: u64, problems: &mut Vec<String>| {
        if o[field].as_u64() != Some(want) {
            problems.push(format!(
                "report objects.{field} = {}, expected {want}",
                o[field]
            ));
        }
    };
    expect("objects", n, problems);
    expect("bytes", bytes, problems);
    expect("copied", n, problems);
    expect("copied_bytes", bytes, problems);
    expect("failed", 0, problems);
    expect("skipped", 0, problems);
    expect("needs_restore", 0, problems);
    if report["verdict"] != "complete" {
        problems.push(format!("report verdict {}", report["verdict"]));
    }
    let failed_tasks = report["failed_tasks"].as_array().map_or(0, Vec::len);
    if failed_tasks > 0 {
        problems.push(format!(
            "{failed_tasks} failed tasks, first: {}",
            report["failed_tasks"][0]
        ));
    }
    if !outcome.failures.is_empty() {
        problems.push(format!(
            "failures.csv has {} lines, first: {}",
            outcome.failures.len(),
            outcome.failures[0]
        ));
    }
}

/// The checks on the readback's side.
fn check_readback(rb: &Value, n: u64, problems: &mut Vec<String>) {
    let num = |k: &str| rb[k].as_u64().unwrap_or(u64::MAX);
    let first = |k: &str| {
        rb[k]
            .as_array()
            .and_then(|a| a.first())
            .cloned()
            .unwrap_or(Value::Null)
    };
    if num("listed") != n {
        problems.push(format!(
            "the destination lists {} objects, expected {n}",
            rb["listed"]
        ));
    }
    for (count, keys, what) in [
        (
            "listed_missing",
            "listed_missing_keys",
            "not listed at the destination",
        ),
        ("unexpected", "unexpected_keys", "listed but never seeded"),
        (
            "listed_size_mismatch",
            "listed_size_mismatch_keys",
            "listed with the wrong size",
        ),
    ] {
        if num(count) != 0 {
            problems.push(format!(
                "{} objects {what}, first: {}",
                rb[count],
                first(keys)
            ));
        }
    }
    for (kind, what) in [
        ("missing", "missing (GET: NoSuchKey)"),
        ("error", "not readable"),
        ("crc", "read with a CRC-64 different from the server's"),
        ("size", "of the wrong size"),
        ("bytes", "with different bytes"),
    ] {
        let c = rb["counts"][kind].as_u64().unwrap_or(0);
        if c > 0 {
            problems.push(format!(
                "{c} objects {what}, first: {}",
                rb["findings"][kind][0]
            ));
        }
    }
    if num("exact") != n {
        problems.push(format!("{} of {n} objects read back exact", rb["exact"]));
    }
    if num("uploads_open") != 0 {
        problems.push(format!(
            "{} multipart uploads left open, first: {}",
            rb["uploads_open"],
            first("uploads")
        ));
    }
    if let Some(e) = rb["listing_errors"].as_array().filter(|a| !a.is_empty()) {
        problems.push(format!("listing errors: {e:?}"));
    }
}

pub async fn run(args: Args, record: Option<&Path>) -> Result<bool, String> {
    let emulator = procs::emulator_path(args.emulator.as_deref())?;
    let ferry = beside_me(
        "ferry",
        args.ferry.as_deref(),
        "build it with `cargo build --release -p ferry-cli`",
    )?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = match &args.python {
        Some(p) => p.clone(),
        None => repo.join(".venv/bin/python"),
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("soak_readback.py");
    let work = match &args.work_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "ferry-soak-{}-{}",
            chrono::Utc::now().format("%Y%m%d-%H%M%S"),
            std::process::id()
        )),
    };
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    eprintln!("work folder: {}", work.display());
    let built_from = match &args.ferry_rev {
        Some(rev) => format!("`{}`, built from {rev}", ferry.display()),
        None => format!(
            "`{}`, built from the working tree: {} (at the start of the soak)",
            ferry.display(),
            git_state(&repo)
        ),
    };

    let n = args.objects;
    let objects = Arc::new(dataset(n));
    let total_bytes: u64 = objects.iter().map(|o| o.size).sum();
    let block = Arc::new(ferry::testing::data::seeded(0x50A4, BLOCK_LEN));
    let (manifest, block_path) = write_manifest(&work, &objects, &block)?;

    let source = EmulatorProcess::start(&emulator)?;
    let dest = EmulatorProcess::start(&emulator)?;
    let (src_admin, dst_admin) = (Admin::new(&source.endpoint), Admin::new(&dest.endpoint));
    let seeded = Instant::now();
    seed(&source.endpoint, &objects, &block).await?;
    RawOss::new(&dest.endpoint, AK, SK, REGION)
        .create_bucket(DEST_BUCKET)
        .await?;
    let seed_secs = seeded.elapsed().as_secs_f64();
    eprintln!(
        "seeded {n} objects, {:.1} MB, in {seed_secs:.1} s",
        total_bytes as f64 / 1e6
    );
    drop(objects);
    drop(block);

    for (admin, seed) in [
        (&src_admin, args.fault_seed),
        (&dst_admin, args.fault_seed + 1),
    ] {
        admin
            .call(reqwest::Method::DELETE, "counters", None)
            .await?;
        admin
            .call(
                reqwest::Method::PUT,
                "faults/seed",
                Some(&json!({ "seed": seed })),
            )
            .await?;
    }
    if !args.no_faults {
        for (side, rule) in fault_rules() {
            let admin = if side == Side::Source {
                &src_admin
            } else {
                &dst_admin
            };
            admin
                .call(reqwest::Method::POST, "faults", Some(&rule))
                .await?;
        }
    }

    let job_path = work.join("job.json");
    let job = serde_json::to_string_pretty(&job_json(&source.endpoint, &dest.endpoint))
        .map_err(|e| e.to_string())?;
    std::fs::write(&job_path, job).map_err(|e| e.to_string())?;
    let state = work.join("state");
    let mut command = Command::new(&ferry);
    command
        .arg("run")
        .arg(&job_path)
        .arg("--state-dir")
        .arg(&state)
        .args(["--workers", &args.workers.to_string(), "--quiet"])
        .env("SOAK_SRC_AK", AK)
        .env("SOAK_SRC_SK", SK)
        .env("SOAK_DST_AK", AK)
        .env("SOAK_DST_SK", SK);
    let ferry_command = format!(
        "{} run {} --state-dir {} --workers {} --quiet",
        ferry.display(),
        job_path.display(),
        state.display(),
        args.workers
    );
    eprintln!("running: {ferry_command}");
    let ran = run_bounded(
        command,
        Duration::from_secs(args.limit_secs),
        &work.join("ferry.stdout"),
        &work.join("ferry.stderr"),
        "ferry run",
    )
    .await?;
    eprintln!(
        "ferry run: {} after {:.1} s",
        ran.describe(),
        ran.elapsed.as_secs_f64()
    );

    // The counters and fault tallies of the run, before the readback adds its own requests.
    let src_counts = src_admin.counters().await?;
    let dst_counts = dst_admin.counters().await?;
    let mut fired = Vec::new();
    for (side, admin) in [(Side::Source, &src_admin), (Side::Destination, &dst_admin)] {
        for f in admin.faults().await? {
            fired.push((side, f));
        }
        admin.call(reqwest::Method::DELETE, "faults", None).await?;
    }

    let outcome = read_outcome(&state);
    let mut problems = Vec::new();
    check_run(&ran, &outcome, n, total_bytes, &mut problems);

    let mut readback = Command::new(&python);
    readback
        .arg(&script)
        .args(["--endpoint", &dest.endpoint, "--bucket", DEST_BUCKET])
        .arg("--manifest")
        .arg(&manifest)
        .arg("--block")
        .arg(&block_path)
        .args([
            "--access-key-id",
            AK,
            "--access-key-secret",
            SK,
            "--region",
            REGION,
        ]);
    let rb_out = work.join("readback.stdout");
    eprintln!("reading back with oss2: {readback:?}");
    let rb_ran = run_bounded(
        readback,
        Duration::from_secs(args.readback_limit_secs),
        &rb_out,
        &work.join("readback.stderr"),
        "readback",
    )
    .await?;
    let rb: Option<Value> = std::fs::read_to_string(&rb_out)
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("READBACK "))
                .map(str::to_owned)
        })
        .and_then(|l| serde_json::from_str(&l).ok());
    match &rb {
        Some(rb) => check_readback(rb, n, &mut problems),
        None => problems.push(format!(
            "the oss2 readback gave no result ({}; see {})",
            rb_ran.describe(),
            work.join("readback.stderr").display()
        )),
    }

    let stderr_lines = std::fs::read_to_string(work.join("ferry.stderr"))
        .map(|t| t.lines().count())
        .unwrap_or(0);
    let md = markdown(&Summary {
        args: &args,
        total_bytes,
        seed_secs,
        ran: &ran,
        src: &src_counts,
        dst: &dst_counts,
        fired: &fired,
        outcome: &outcome,
        readback: rb.as_ref(),
        problems: &problems,
        stderr_lines,
        work: &work,
        built_from,
    });
    println!("{md}");
    if let Some(path) = record {
        append(path, &md).map_err(|e| format!("cannot record in {}: {e}", path.display()))?;
        println!("recorded in {}", path.display());
    }
    Ok(problems.is_empty())
}

struct Summary<'a> {
    args: &'a Args,
    total_bytes: u64,
    seed_secs: f64,
    ran: &'a Ran,
    src: &'a Counters,
    dst: &'a Counters,
    fired: &'a [(Side, FaultEntry)],
    outcome: &'a Outcome,
    readback: Option<&'a Value>,
    problems: &'a [String],
    stderr_lines: usize,
    work: &'a Path,
    /// What the ferry binary was built from.
    built_from: String,
}

fn rule_text(rule: &Value) -> String {
    let kind = rule["kind"].as_str().unwrap_or("error");
    let what = match kind {
        "error" => format!("{}", rule["status"]),
        k => k.to_owned(),
    };
    let phase = match rule["phase"].as_str() {
        Some("after") => " after the operation",
        _ if kind == "truncate" => " (body cut at half)",
        _ => " before",
    };
    format!(
        "{what}{phase}, {:.1}%",
        rule["rate"].as_f64().unwrap_or(1.0) * 100.0
    )
}

fn markdown(s: &Summary) -> String {
    let n = s.args.objects;
    let secs = s.ran.elapsed.as_secs_f64();
    let exact = s.problems.is_empty();
    let mut md = format!(
        "**soak: {n} objects ({:.1} MB) from an S3-dialect emulator to the OSS emulator through `ferry run --workers {}` (separate processes, loopback, in memory), {}**\n\n",
        s.total_bytes as f64 / 1e6,
        s.args.workers,
        if s.args.no_faults {
            "NO FAULTS (baseline for the timings)"
        } else {
            "faults at both ends"
        }
    );
    md.push_str("| objects | MB | seconds | objects/s | MB/s | faults injected (source / destination) | requests (source / destination) | ferry peak RSS MiB | ferry CPU s | result |\n");
    md.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    let result = if exact {
        "exact: report complete, every object read back byte-exact with oss2, no upload open"
            .to_owned()
    } else {
        format!("**NOT exact**: {}", s.problems.join("; "))
    };
    let _ = writeln!(
        md,
        "| {n} | {:.1} | {secs:.1} | {:.0} | {:.1} | {} / {} | {} / {} | {:.0} | {:.1} | {result} |",
        s.total_bytes as f64 / 1e6,
        n as f64 / secs,
        s.total_bytes as f64 / 1e6 / secs,
        s.src.faults(),
        s.dst.faults(),
        s.src.total,
        s.dst.total,
        s.ran.peak_rss as f64 / 1048576.0,
        s.ran.cpu.as_secs_f64(),
    );

    md.push_str("\nRequests by operation during the run (emulator counters; failed = non-2xx answers and dropped connections, injected or not):\n\n");
    md.push_str("| operation | source requests | source faults | source failed | destination requests | destination faults | destination failed |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    let mut ops: Vec<&String> = s
        .src
        .by_operation
        .keys()
        .chain(s.dst.by_operation.keys())
        .collect();
    ops.sort();
    ops.dedup();
    for op in ops {
        let get = |c: &Counters| c.by_operation.get(op).copied().unwrap_or(0);
        let f = |c: &Counters| c.faults_injected.get(op).copied().unwrap_or(0);
        let _ = writeln!(
            md,
            "| {op} | {} | {} | {} | {} | {} | {} |",
            get(s.src),
            f(s.src),
            s.src.failed(op),
            get(s.dst),
            f(s.dst),
            s.dst.failed(op)
        );
    }

    // Fault rules, grouped by what they do.
    let mut groups: BTreeMap<(&str, String), (Vec<String>, u64)> = BTreeMap::new();
    for (side, f) in s.fired {
        let g = groups.entry((side.name(), rule_text(&f.rule))).or_default();
        g.0.push(f.rule["op"].as_str().unwrap_or("*").to_owned());
        g.1 += f.fired;
    }
    if !groups.is_empty() {
        md.push_str("\nFault rules (admin API, seeded RNG; fired = times the rule acted):\n\n");
        md.push_str("| side | fault | operations | fired |\n|---|---|---|---:|\n");
        for ((side, text), (ops, fired)) in &groups {
            let _ = writeln!(md, "| {side} | {text} | {} | {fired} |", ops.join(", "));
        }
    }

    let _ = write!(
        md,
        "\nferry: {}. Fault seeds {} (source) and {} (destination). No switch for duplicate deliveries exists in `ferry run` or `pipeline::standalone`: repeated work comes from the faults (writes whose answers were lost, task retries, the verifier's re-copies). Seeding took {:.1} s. `ferry run` {}; its stderr had {} lines. ",
        s.built_from,
        s.args.fault_seed,
        s.args.fault_seed + 1,
        s.seed_secs,
        s.ran.describe(),
        s.stderr_lines
    );
    if let Some(r) = &s.outcome.report {
        let _ = write!(
            md,
            "report.json: verdict `{}`, objects {}, tasks {}, failed_tasks {}, uploads_aborted {}, summary “{}”. ",
            r["verdict"].as_str().unwrap_or("?"),
            r["objects"],
            r["tasks"],
            r["failed_tasks"].as_array().map_or(0, Vec::len),
            r["uploads_aborted"],
            r["summary"].as_str().unwrap_or("")
        );
    }
    let _ = write!(
        md,
        "Destination keys written more than once (PutObject or InitiateMultipartUpload requests > 1): {}. ",
        s.dst.rewritten_keys()
    );
    if let Some(rb) = s.readback {
        let _ = write!(
            md,
            "Readback ({}, faults cleared): {} listed, {} of {} exact, {:.1} MB read in {:.1} s, {} multipart uploads open.",
            rb["sdk"].as_str().unwrap_or("oss2"),
            rb["listed"],
            rb["exact"],
            rb["expected"],
            rb["bytes_read"].as_f64().unwrap_or(0.0) / 1e6,
            rb["seconds"].as_f64().unwrap_or(0.0),
            rb["uploads_open"]
        );
    }
    md.push('\n');
    if !exact {
        md.push_str("\nEvidence:\n\n");
        for p in s.problems {
            let _ = writeln!(md, "* {p}");
        }
        if let Some(r) = &s.outcome.report {
            for t in r["failed_tasks"].as_array().into_iter().flatten().take(10) {
                let _ = writeln!(md, "* failed task: `{t}`");
            }
        }
        for line in s.outcome.failures.iter().take(20) {
            let _ = writeln!(md, "* failures.csv: `{line}`");
        }
        if let Some(rb) = s.readback {
            for (kind, list) in rb["findings"].as_object().into_iter().flatten() {
                for f in list.as_array().into_iter().flatten().take(10) {
                    let _ = writeln!(md, "* readback {kind}: {f}");
                }
            }
            for u in rb["uploads"].as_array().into_iter().flatten().take(10) {
                let _ = writeln!(md, "* open upload: {u}");
            }
        }
        if let Some(p) = &s.outcome.report_path {
            let _ = writeln!(md, "* report: {}", p.display());
        }
        let _ = writeln!(md, "* work folder (job, state, logs): {}", s.work.display());
    }
    md
}

/// Appends the text under a heading with the date, the command and the machine, like the other
/// benchmarks' records.
fn append(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let command = std::env::args()
        .map(|a| shell_quote(&a))
        .collect::<Vec<_>>()
        .join(" ");
    // A code span holding backticks needs a longer fence.
    let fence = if command.contains('`') { "``" } else { "`" };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(
        f,
        "\n### {} — {fence}{command}{fence}\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    )?;
    writeln!(f, "Machine: {cores} cores, loopback only.\n")?;
    writeln!(f, "{text}")
}

/// `arg` as a POSIX shell reads it back.
fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_is_distinct_and_mixed() {
        let objects = dataset(100_000);
        let keys: std::collections::BTreeSet<&str> =
            objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys.len(), objects.len());
        let multipart = objects
            .iter()
            .filter(|o| o.size >= MULTIPART_THRESHOLD)
            .count();
        let giants = objects.iter().filter(|o| o.size > SHARD_BYTES).count();
        let medium = objects.iter().filter(|o| o.size >= MIB).count();
        assert_eq!(giants, 2);
        assert!(multipart > 10, "{multipart}");
        assert_eq!(medium, 310);
        assert!(objects.iter().all(|o| o.size >= 1024));
    }

    #[test]
    fn command_lines_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("--objects"), "--objects");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn fill_in_pieces_is_fill_whole() {
        let block = ferry::testing::data::seeded(1, BLOCK_LEN);
        let obj = Obj {
            index: 3,
            key: "k".into(),
            size: 3 * MIB + 5,
            offset: BLOCK_LEN as u64 - 7,
        };
        let h = obj.header();
        let whole = fill(&obj, &h, &block, 0, obj.size as usize);
        let mut pieces = Vec::new();
        for start in (0..obj.size).step_by(MIB as usize) {
            let n = MIB.min(obj.size - start) as usize;
            pieces.extend(fill(&obj, &h, &block, start, n));
        }
        assert_eq!(whole, pieces);
        assert!(whole.starts_with(b"ferry-soak 3 k\n"));
        assert_eq!(
            whole[h.len()],
            block[(obj.offset as usize + h.len()) % BLOCK_LEN]
        );
    }
}
