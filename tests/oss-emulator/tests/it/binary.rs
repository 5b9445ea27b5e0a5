//! The `oss-emulator` binary: first stdout line, serving, fault and clock flags, clean exit on
//! SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use oss_emulator::process::{output_within, wait_within};

fn spawn(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_oss-emulator"))
        .args(args)
        .env_remove("OSS_EMULATOR_ACCESS_KEY_ID")
        .env_remove("OSS_EMULATOR_ACCESS_KEY_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts")
}

#[tokio::test]
async fn serves_after_printing_its_address_and_exits_on_sigterm() {
    let mut child = spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--access-key-id",
        AK,
        "--access-key-secret",
        SK,
        "--region",
        "oss-cn-hangzhou",
        "--fault",
        "op=GetObject,status=503,count=1",
        "--fault-seed",
        "1",
        "--bucket",
        "bin-bucket",
    ]);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let endpoint = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_owned();
    assert!(endpoint.starts_with("http://127.0.0.1:"));

    let oss = Oss {
        http: reqwest::Client::new(),
        endpoint: endpoint.clone(),
        signer: signer(ferry::oss::sign::SignatureVersion::V4),
    };
    assert_eq!(
        oss.req("PUT", Some("bin-bucket"), Some("k"))
            .body("v")
            .send()
            .await
            .status,
        200
    );
    assert_eq!(
        oss.req("GET", Some("bin-bucket"), Some("k"))
            .send()
            .await
            .status,
        503
    );
    assert_eq!(
        oss.req("GET", Some("bin-bucket"), Some("k"))
            .send()
            .await
            .text(),
        "v"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_within(&mut child, Duration::from_secs(10)).expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn the_clock_offset_flag_sets_the_server_clock() {
    let mut child = spawn(&[
        "--access-key-id",
        AK,
        "--access-key-secret",
        SK,
        "--clock-offset-ms",
        "-1200000",
    ]);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let endpoint = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_owned();
    let clock = get_url(&format!("{endpoint}/-/admin/clock")).await;
    assert_eq!(clock.status, 200, "{}", clock.text());
    assert_eq!(clock.json()["offset_ms"].as_i64(), Some(-1_200_000));
    let date = clock.header("date").unwrap();
    let date = chrono::DateTime::parse_from_rfc2822(&date).unwrap();
    let behind = chrono::Utc::now() - date.with_timezone(&chrono::Utc);
    assert!(
        (behind - chrono::TimeDelta::minutes(20)).abs() < chrono::TimeDelta::seconds(5),
        "{behind}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_within(&mut child, Duration::from_secs(10)).expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_oss-emulator")).args([
            "--access-key-id",
            AK,
            "--access-key-secret",
            SK,
            "--fault",
            "op=PutObject,status=200",
        ]),
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("status 200 must be between 400 and 599")
    );
    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_oss-emulator"))
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("OSS_EMULATOR_ACCESS_KEY_ID")
            .env_remove("OSS_EMULATOR_ACCESS_KEY_SECRET"),
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--access-key-id"));
}
