//! Alibaba credentials as the Alibaba tools find them (issue 13 point 1): a job that names no
//! destination credentials runs with `ALIBABA_CLOUD_*` variables, or with the Alibaba Cloud
//! CLI's profile in `~/.aliyun/config.json` — the real `ferry run`, a real home directory —
//! and when it finds none, says where it looked and what to do, without a key in the text.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use oss_emulator::Emulator;
use oss_emulator::process::output_within;

const SOURCE: &str = "cred-src";
const DEST: &str = "cred-dst";

/// A source and a destination, two objects, and a job without destination credentials.
async fn world(name: &str) -> (Emulator, Emulator, tempfile::TempDir, std::path::PathBuf) {
    let source = Emulator::for_test(&format!("{name}-src-ak")).await;
    let dest = Emulator::for_test(&format!("{name}-dst-ak")).await;
    source.create_bucket(SOURCE).unwrap();
    dest.create_bucket(DEST).unwrap();
    for key in ["a.txt", "b/c.txt"] {
        source
            .put_object(SOURCE, key, format!("{name} {key}").into_bytes())
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let job = serde_json::json!({
        "version": 1,
        "name": name,
        "source": {
            "kind": "s3", "bucket": SOURCE, "region": "cn-hangzhou", "endpoint": source.endpoint(),
            "path_style": true, "allow_http": true,
            "credentials": { "env": { "access_key_id_var": "T_SRC_AK", "secret_access_key_var": "T_SRC_SK" } }
        },
        "destination": {
            "bucket": DEST, "region": "cn-hangzhou", "endpoint": dest.endpoint(), "allow_http": true
        }
    });
    let path = dir.path().join("job.json");
    std::fs::write(&path, job.to_string()).unwrap();
    (source, dest, dir, path)
}

/// `ferry run` with only the source's variables and a home directory of its own, plus `env`.
fn run(job: &Path, home: &Path, source: &Emulator, env: &[(&str, String)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.arg("run")
        .arg(job)
        .arg("--state-dir")
        .arg(home.join("state"))
        .arg("--quiet")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("T_SRC_AK", source.access_key_id())
        .env(
            "T_SRC_SK",
            oss_emulator::test_secret(&source.access_key_id()),
        );
    for (name, value) in env {
        cmd.env(name, value);
    }
    output_within(&mut cmd, Duration::from_secs(120)).expect("ferry run ends")
}

async fn assert_copied(out: &std::process::Output, dest: &Emulator, name: &str) {
    assert!(
        out.status.success(),
        "ferry run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for key in ["a.txt", "b/c.txt"] {
        let got = dest.object_bytes(DEST, key).await;
        assert_eq!(
            got.as_deref(),
            Some(format!("{name} {key}").as_bytes()),
            "{key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alibaba_cloud_variables_sign_the_destination() {
    let (source, dest, dir, job) = world("aliyun-env").await;
    let id = dest.access_key_id();
    let out = run(
        &job,
        dir.path(),
        &source,
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", id.clone()),
            (
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
                oss_emulator::test_secret(&id),
            ),
        ],
    );
    assert_copied(&out, &dest, "aliyun-env").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alibaba_cloud_cli_profile_signs_the_destination() {
    let (source, dest, dir, job) = world("aliyun-cli").await;
    let id = dest.access_key_id();
    let config = serde_json::json!({
        "current": "default",
        "profiles": [
            { "name": "default", "mode": "AK", "access_key_id": "LTAI-not-this-one",
              "access_key_secret": "wrong-secret", "region_id": "cn-hangzhou" },
            { "name": "migration", "mode": "AK", "access_key_id": id,
              "access_key_secret": oss_emulator::test_secret(&id), "region_id": "cn-hangzhou" },
            { "name": "role", "mode": "RamRoleArn", "access_key_id": "x", "access_key_secret": "y",
              "ram_role_arn": "acs:ram::1:role/r", "ram_session_name": "s" }
        ]
    });
    std::fs::create_dir_all(dir.path().join(".aliyun")).unwrap();
    std::fs::write(dir.path().join(".aliyun/config.json"), config.to_string()).unwrap();
    let out = run(
        &job,
        dir.path(),
        &source,
        &[("ALIBABA_CLOUD_PROFILE", "migration".to_owned())],
    );
    assert_copied(&out, &dest, "aliyun-cli").await;

    // A profile of a mode ferry does not read is named with the fix, never skipped silently.
    let out = run(
        &job,
        dir.path(),
        &source,
        &[("ALIBABA_CLOUD_PROFILE", "role".to_owned())],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("\"RamRoleArn\"") && stderr.contains("mode AK or StsToken"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong-secret") && !stderr.contains("-secret"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_anywhere_names_every_place_and_the_fix() {
    let (source, dest, dir, job) = world("aliyun-none").await;
    let out = run(&job, dir.path(), &source, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for said in [
        "OSS_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        ".aliyun/config.json",
        "aliyun configure",
    ] {
        assert!(stderr.contains(said), "{said:?} not in: {stderr}");
    }
    assert_eq!(
        dest.counters().total,
        0,
        "nothing was sent to the destination"
    );
    // Half a pair is an error naming the missing half, not a fall-through.
    let out = run(
        &job,
        dir.path(),
        &source,
        &[("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-half".to_owned())],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
        "{stderr}"
    );
}
