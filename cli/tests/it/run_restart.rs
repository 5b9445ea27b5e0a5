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

/// A source and a destination emulator with their buckets; keys named after `name`.
async fn emulators(name: &str) -> (Emulator, Emulator) {
    let source = Emulator::for_test(&format!("{name}-src-ak")).await;
    let dest = Emulator::for_test(&format!("{name}-dst-ak")).await;
    source.create_bucket(SOURCE).unwrap();
    dest.create_bucket(DEST).unwrap();
    (source, dest)
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
    let mut cmd = crate::ferry_signed_by(source, dest);
    cmd.arg("run")
        .arg(job)
        .arg("--state-dir")
        .arg(state)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// `ferry status JOB --state-dir STATE --json`, bounded: its exit status and JSON (or stderr).
fn status(job: &str, state: &Path) -> (i32, serde_json::Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(["status", job, "--json", "--state-dir"])
        .arg(state);
    let out = output_within(&mut cmd, Duration::from_secs(30)).expect("ferry status ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), json, stderr)
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
    let (source, dest) = emulators("kill").await;
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
    let mut seen_running = 0;
    for _ in 0..4 {
        let mut child = ferry(&job_path, &state, &source, &dest).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(fastrand::u64(700..1500))).await;
        if child.try_wait().unwrap().is_some() {
            break;
        }
        child.kill().unwrap(); // SIGKILL
        wait_within(&mut child, Duration::from_secs(10)).expect("a killed ferry exits");
        kills += 1;
        // `ferry status` reads the killed run's state: not finished (exit 4), exact so far.
        let (code, now, stderr) = status("restart-job", &state);
        if code == 4 {
            assert_eq!(now["phase"], "running", "{now}");
            assert!(now["tasks_pending"].as_u64() > Some(0), "{now}");
            assert!(
                now["objects"]["objects"].as_u64() <= Some(all.len() as u64),
                "{now}"
            );
            seen_running += 1;
        } else {
            let early = stderr.contains("has no run") || stderr.contains("does not exist");
            assert!(early, "no state yet, or running: {code} {stderr}");
        }
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
    assert!(seen_running >= 1, "ferry status saw the run unfinished");

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
    // `ferry status`, given the job file, says what the report says (exit 0).
    let (code, done, stderr) = status(job_path.to_str().unwrap(), &state);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        (&done["phase"], &done["verdict"]),
        (&"reported".into(), &"complete".into())
    );
    assert_eq!(&done["objects"], objects, "{done}");
    assert_eq!(done["tasks_pending"], 0);
    let (code, _, stderr) = status("no-such-job", &state);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("\"no-such-job\" has no run") && stderr.contains("state"),
        "{stderr}"
    );
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

/// Issue 14 point 13: the state directory's file system fills up mid-run (a 256 KiB tmpfs in a
/// mount namespace of our own, made with `unshare`; no privileges needed). The run stops at once
/// with exit status 1 and says what is full and how to go on, instead of every role retrying
/// its failed write for ever; nothing is lost: once the file system has room (the tmpfs grown
/// in place) the same command resumes the run and completes it exactly. Before, the run never
/// ended (each write failed as a permanent error, and each delivery was given back to retry);
/// and once it stopped, the resumed run waited for ever: results the verifier had recorded but
/// progress had not taken spawned tasks whose messages died with the old queues (now
/// `standalone::resume_tasks` puts them back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_state_directory_stops_the_run_with_the_fix_and_the_same_command_resumes_it() {
    let (source, dest) = emulators("full").await;
    let mut all = BTreeSet::new();
    for i in 0..300u32 {
        let key = format!("f{:02}/file-{i:04}", i % 6);
        source
            .put_object(SOURCE, &key, vec![(i % 251) as u8; 1_000 + i as usize])
            .await
            .unwrap();
        all.insert(key);
    }
    let dir = tempfile::tempdir().unwrap();
    let job_path = dir.path().join("job.json");
    let mut job: serde_json::Value = serde_json::from_str(&job(&source, &dest)).unwrap();
    job["bandwidth_limit"] = serde_json::Value::Null;
    job["sharding"]["max_keys_per_shard"] = 10.into();
    std::fs::write(&job_path, job.to_string()).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let (err1, code1, code2) = (
        dir.path().join("err1"),
        dir.path().join("code1"),
        dir.path().join("code2"),
    );
    // Inside one namespace: mount a small tmpfs, run, grow it, run the same command again.
    let script = r#"
        mount -t tmpfs -o size=256k ferry-state "$STATE" || exit 90
        timeout 100 "$FERRY" run "$JOB" --state-dir "$STATE" --quiet 2>"$ERR1" >/dev/null
        echo $? >"$CODE1"
        mount -o remount,size=16m "$STATE" || exit 91
        timeout 100 "$FERRY" run "$JOB" --state-dir "$STATE" --quiet >/dev/null 2>&1
        echo $? >"$CODE2"
        cat "$STATE"/jobs/restart-job/runs/*/report.json
    "#;
    let mut ferry = ferry(&job_path, &state, &source, &dest);
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "--mount", "sh", "-c", script])
        .envs(ferry.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("FERRY", ferry.get_program())
        .env("JOB", &job_path)
        .env("STATE", &state)
        .env("ERR1", &err1)
        .env("CODE1", &code1)
        .env("CODE2", &code2);
    let _ = ferry.stdout(Stdio::null());
    let out = output_within(&mut cmd, Duration::from_secs(240))
        .unwrap_or_else(|e| panic!("the namespace script ends: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(
        out.status.success(),
        "the script ran (unshare and mount work here): {:?} {stderr}; first run: exit {} {}; \
         second run: exit {}",
        out.status,
        read(&code1),
        read(&err1),
        read(&code2)
    );
    let first = read(&err1);
    assert_eq!(
        read(&code1).trim(),
        "1",
        "the full run stops, could not run: {first}"
    );
    assert!(
        first.contains("is full") && first.contains("run the same command again"),
        "the error names what is full and the fix: {first}"
    );
    assert_eq!(
        read(&code2).trim(),
        "0",
        "the same command resumes and completes"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "complete", "{report}");
    assert_eq!(report["objects"]["objects"], all.len() as u64, "{report}");
    assert_eq!(report["objects"]["copied"], all.len() as u64, "{report}");
    for key in &all {
        let got = dest.object_bytes(DEST, key).await.expect("copied");
        assert_eq!(
            got,
            source.object_bytes(SOURCE, key).await.unwrap(),
            "{key}"
        );
    }
}
