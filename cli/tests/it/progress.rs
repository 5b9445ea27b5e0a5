//! `ferry run` where stderr is not a terminal (a log file, CI, cron) prints a one-line progress
//! summary at most every `--progress-every` seconds instead of drawing a bar (issue 11 point 1);
//! `--quiet` prints none.

use std::time::Duration;

use oss_emulator::Emulator;
use oss_emulator::process::output_within;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_without_a_terminal_prints_periodic_progress_lines() {
    let source = Emulator::for_test("lines-src-ak").await;
    let dest = Emulator::for_test("lines-dst-ak").await;
    source.create_bucket("src").unwrap();
    dest.create_bucket("dst").unwrap();
    for i in 0..40 {
        source
            .put_object("src", &format!("k/{i:03}"), vec![1u8; 100_000])
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let job = serde_json::json!({
        "version": 1, "name": "lines",
        "source": {
            "kind": "s3", "bucket": "src", "region": "cn-hangzhou", "endpoint": source.endpoint(),
            "path_style": true, "allow_http": true,
            "credentials": { "env": { "access_key_id_var": "T_SRC_AK", "secret_access_key_var": "T_SRC_SK" } }
        },
        "destination": {
            "bucket": "dst", "region": "cn-hangzhou", "endpoint": dest.endpoint(), "allow_http": true,
            "credentials": { "env": { "access_key_id_var": "T_DST_AK", "access_key_secret_var": "T_DST_SK" } }
        },
        "sharding": { "max_keys_per_shard": 5 },
        "concurrency": { "objects": 2 },
        // 4 MB at 1 MB/s: a run of about four seconds.
        "bandwidth_limit": "1MB/s"
    });
    let path = dir.path().join("job.json");
    std::fs::write(&path, job.to_string()).unwrap();
    let run = |state: &str, quiet: bool| {
        let mut cmd = crate::ferry_signed_by(&source, &dest);
        cmd.arg("run")
            .arg(&path)
            .arg("--state-dir")
            .arg(dir.path().join(state))
            .args(["--progress-every", "1"]);
        if quiet {
            cmd.arg("--quiet");
        }
        let out = output_within(&mut cmd, Duration::from_secs(120)).expect("ferry run ends");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    };
    let stderr = run("state", false);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    assert!(
        lines.len() >= 2,
        "a line a second over a run of seconds:\n{stderr}"
    );
    assert!(lines.len() <= 15, "at most one line a second:\n{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no terminal control codes:\n{stderr}"
    );
    for line in &lines {
        assert!(
            line.contains(" objects (")
                && line.contains("tasks pending")
                && line.contains("objects/s"),
            "{line}"
        );
    }
    let quiet = run("quiet-state", true);
    assert!(!quiet.contains("progress: "), "{quiet}");
}
