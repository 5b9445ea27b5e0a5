//! `ferry run` killed with SIGKILL at random moments and started again with the same command
//! finishes with the same report, and never copies an object again once it was verified
//! (architecture §9, invariant 2). The emulators run inside this test process, so they outlive
//! every `ferry` they serve; their per-key counters show each write.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use oss_emulator::Emulator;
use oss_emulator::process::{output_within, wait_within};

const REGION: &str = "cn-hangzhou";
const SOURCE: &str = "kill-src";
const DEST: &str = "kill-dst";

async fn emulator(ak: &str) -> Emulator {
    Emulator::builder()
        .credentials(ak, format!("{ak}-secret"))
        .region(REGION)
        .start()
        .await
        .unwrap()
}

fn job(source: &Emulator, dest: &Emulator) -> String {
    serde_json::json!({
        "version": 1,
        "name": "restart-job",
        "source": {
            "kind": "s3", "bucket": SOURCE, "region": REGION, "endpoint": source.endpoint(),
            "path_style": true, "allow_http": true,
            "credentials": { "env": { "access_key_id_var": "T_SRC_AK", "secret_access_key_var": "T_SRC_SK" } }
        },
        "destination": {
            "bucket": DEST, "region": REGION, "endpoint": dest.endpoint(), "allow_http": true,
            "credentials": { "env": { "access_key_id_var": "T_DST_AK", "access_key_secret_var": "T_DST_SK" } }
        },
        "sharding": { "max_keys_per_shard": 20 },
        "concurrency": { "objects": 4, "multipart_threshold": "5MiB", "part_size": "5MiB" },
        // Slow enough that the kills land mid-run.
        "bandwidth_limit": "5MB/s"
    })
    .to_string()
}

fn ferry(job: &Path, state: &Path, source: &Emulator, dest: &Emulator) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.arg("run")
        .arg(job)
        .arg("--state-dir")
        .arg(state)
        .arg("--quiet")
        .env("T_SRC_AK", source.access_key_id())
        .env("T_SRC_SK", format!("{}-secret", source.access_key_id()))
        .env("T_DST_AK", dest.access_key_id())
        .env("T_DST_SK", format!("{}-secret", dest.access_key_id()))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Keys whose copy the verifier has recorded, from the run's result files.
fn verified_keys(state: &Path) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut dirs = vec![state.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.components().any(|c| c.as_os_str() == "results")
                && path.extension().is_some_and(|e| e == "json")
            {
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
                    continue;
                };
                for object in value["objects"].as_array().into_iter().flatten() {
                    if object["outcome"] == "copied" {
                        keys.insert(object["key"].as_str().unwrap().to_owned());
                    }
                }
            }
        }
    }
    keys
}

/// Writes of each key at the destination (single PUTs and multipart starts).
fn writes(dest: &Emulator, keys: &BTreeSet<String>) -> BTreeMap<String, u64> {
    let counters = dest.counters();
    keys.iter()
        .map(|k| {
            let n = counters.object(DEST, k, "PutObject")
                + counters.object(DEST, k, "InitiateMultipartUpload");
            (k.clone(), n)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_run_finishes_with_the_same_report() {
    let source = emulator("kill-src-ak").await;
    let dest = emulator("kill-dst-ak").await;
    source.create_bucket(SOURCE).unwrap();
    dest.create_bucket(DEST).unwrap();
    let mut all = BTreeSet::new();
    for i in 0..240u32 {
        let key = format!("d{:02}/file-{i:04}", i % 8);
        let size = 40_000 + (i as usize * 7919) % 80_000;
        source
            .put_object(SOURCE, &key, vec![(i % 251) as u8; size])
            .await
            .unwrap();
        all.insert(key);
    }
    for i in 0..2u32 {
        let key = format!("big/part-{i}.bin");
        source
            .put_object(SOURCE, &key, vec![i as u8 + 1; 11 << 20])
            .await
            .unwrap();
        all.insert(key);
    }
    let dir = tempfile::tempdir().unwrap();
    let job_path = dir.path().join("job.json");
    std::fs::write(&job_path, job(&source, &dest)).unwrap();
    let state = dir.path().join("state");

    fastrand::seed(2026);
    let mut promised: BTreeMap<String, u64> = BTreeMap::new();
    let mut kills = 0;
    for _ in 0..4 {
        let mut child = ferry(&job_path, &state, &source, &dest).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(fastrand::u64(700..1500))).await;
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap(); // SIGKILL
        wait_within(&mut child, Duration::from_secs(10)).expect("a killed ferry exits");
        kills += 1;
        // Everything verified so far must never be written again.
        let verified = verified_keys(&state);
        for (key, n) in writes(&dest, &verified) {
            promised.entry(key).or_insert(n);
        }
    }
    assert!(
        kills >= 2,
        "the run was killed mid-way at least twice ({kills})"
    );

    // Bounded: a resumed run that waits for ever fails here after 120 s instead of hanging.
    let out = output_within(
        &mut ferry(&job_path, &state, &source, &dest),
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("the restarted run ends: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the restarted run completes: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("resumed run"), "{stdout}");

    // The same report as an uninterrupted run: every object in scope, copied and verified.
    let current: serde_json::Value = serde_json::from_slice(
        &std::fs::read(state.join("jobs/restart-job/current.json")).unwrap(),
    )
    .unwrap();
    let run = current["run"].as_str().unwrap();
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(state.join(format!("jobs/restart-job/runs/{run}/report.json"))).unwrap(),
    )
    .unwrap();
    let objects = &report["objects"];
    assert_eq!(report["verdict"], "complete", "{report}");
    assert_eq!(objects["objects"], all.len() as u64, "{report}");
    assert_eq!(objects["copied"], all.len() as u64, "{report}");
    assert_eq!(objects["failed"], 0);
    for key in &all {
        let got = dest.object_bytes(DEST, key).await.expect("copied");
        assert_eq!(
            got,
            source.object_bytes(SOURCE, key).await.unwrap(),
            "{key}"
        );
    }
    // No object verified before a kill was written again after it.
    assert!(
        !promised.is_empty(),
        "some objects were verified before a kill"
    );
    let now = writes(&dest, &promised.keys().cloned().collect());
    for (key, before) in &promised {
        assert_eq!(
            now[key], *before,
            "{key} was written again after it was verified"
        );
    }
}
