//! rclone (S3 provider "Other", path style) copies a tree into the emulator and back.
//! Skipped, with a note, when no `rclone` binary is on PATH.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use oss_emulator::process::output_within;

use crate::common::*;

fn rclone_available() -> bool {
    Command::new("rclone")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs rclone with a remote `emu:` pointing at the emulator; fails the test after 120 s.
fn rclone(endpoint: &str, args: &[&str]) -> String {
    let mut cmd = Command::new("rclone");
    cmd.args([
        "--config",
        "/dev/null",
        "--retries",
        "1",
        "--low-level-retries",
        "2",
    ])
    .args(args)
    .env_remove("AWS_CA_BUNDLE")
    .env("RCLONE_CONFIG_EMU_TYPE", "s3")
    .env("RCLONE_CONFIG_EMU_PROVIDER", "Other")
    .env("RCLONE_CONFIG_EMU_ACCESS_KEY_ID", AK)
    .env("RCLONE_CONFIG_EMU_SECRET_ACCESS_KEY", SK)
    .env("RCLONE_CONFIG_EMU_ENDPOINT", endpoint)
    .env("RCLONE_CONFIG_EMU_REGION", REGION)
    .env("RCLONE_CONFIG_EMU_FORCE_PATH_STYLE", "true");
    let out = output_within(&mut cmd, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("rclone {args:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "rclone {args:?} failed:\n{text}");
    text
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_round_trip_with_multipart() {
    assert!(
        rclone_available(),
        "rclone is not on PATH: run scripts/setup-tools (it installs Debian's rclone)"
    );
    let emu = emulator().await;
    let endpoint = emu.endpoint();
    let src = tempfile::tempdir().unwrap();
    let back = tempfile::tempdir().unwrap();
    let big = pattern(6 * 1024 * 1024 + 17, 3);
    write(src.path(), "big.bin", &big);
    write(src.path(), "small.txt", b"hello");
    write(src.path(), "sub dir/a+b c.txt", b"awkward");
    let (src_path, back_path) = (
        src.path().to_str().unwrap().to_owned(),
        back.path().to_str().unwrap().to_owned(),
    );
    let ep = endpoint.clone();
    tokio::task::spawn_blocking(move || {
        rclone(&ep, &["mkdir", "emu:rclone-bucket"]);
        rclone(
            &ep,
            &[
                "copy",
                &src_path,
                "emu:rclone-bucket/data",
                "--s3-upload-cutoff",
                "5M",
                "--s3-chunk-size",
                "5M",
            ],
        );
        rclone(&ep, &["check", &src_path, "emu:rclone-bucket/data"]);
        rclone(&ep, &["copy", "emu:rclone-bucket/data", &back_path]);
    })
    .await
    .unwrap();
    assert!(std::fs::read(back.path().join("big.bin")).unwrap() == big);
    assert_eq!(
        std::fs::read(back.path().join("sub dir/a+b c.txt")).unwrap(),
        b"awkward"
    );
    let info = emu.object_info("rclone-bucket", "data/big.bin").unwrap();
    assert_eq!(info.object_type, "Multipart");
    assert_eq!(info.crc64, Some(ferry::crc64::checksum(&big)));
    assert!(emu.counters().operation("UploadPart") >= 2);
}
