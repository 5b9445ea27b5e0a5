//! `ferry start` and `ferry status --stack` against a deployed stack stood in for by moto: a
//! CloudFormation stack whose outputs name a state bucket and the work and results queues
//! with their dead-letter queues, as infra/template.yaml's do. The real binary reads the
//! outputs, creates the run in the state bucket and puts its first task on the work queue; a
//! second start while that run is unfinished is refused (exit 4) unless `--overlap`; status
//! shows the run and the queues' depths.

#[path = "../../../shared/tests/it/support/moto.rs"]
mod moto;

use std::time::Duration;

use ferry::pipeline::message::{ShardTask, Work};
use oss_emulator::process::output_within;
use serde_json::json;

const STACK: &str = "ferry-ops";

/// A stack with ferry's output names: the state bucket and four queues.
async fn stack(moto: &moto::Moto) -> aws_sdk_cloudformation::Client {
    let config = aws_sdk_cloudformation::Config::builder()
        .behavior_version(aws_sdk_cloudformation::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudformation::config::Region::new(moto::REGION))
        .endpoint_url(moto.endpoint())
        .credentials_provider(moto::credentials())
        .build();
    let cfn = aws_sdk_cloudformation::Client::from_conf(config);
    let queue = json!({ "Type": "AWS::SQS::Queue" });
    let template = json!({
        "Resources": {
            "StateBucket": { "Type": "AWS::S3::Bucket" },
            "WorkQueue": queue, "WorkDlq": queue, "ResultsQueue": queue, "ResultsDlq": queue
        },
        "Outputs": {
            "StateBucketName": { "Value": { "Ref": "StateBucket" } },
            "WorkQueueUrl": { "Value": { "Ref": "WorkQueue" } },
            "WorkDlqUrl": { "Value": { "Ref": "WorkDlq" } },
            "ResultsQueueUrl": { "Value": { "Ref": "ResultsQueue" } },
            "ResultsDlqUrl": { "Value": { "Ref": "ResultsDlq" } }
        }
    });
    cfn.create_stack()
        .stack_name(STACK)
        .template_body(template.to_string())
        .send()
        .await
        .expect("moto creates the stack");
    cfn
}

fn output(stack: &aws_sdk_cloudformation::types::Stack, key: &str) -> String {
    stack
        .outputs()
        .iter()
        .find(|o| o.output_key() == Some(key))
        .and_then(|o| o.output_value())
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_creates_the_run_and_queues_its_plan_once_and_status_shows_the_queues() {
    let moto = moto::Moto::start();
    let cfn = stack(&moto).await;
    let described = cfn
        .describe_stacks()
        .stack_name(STACK)
        .send()
        .await
        .unwrap();
    let outputs = described.stacks()[0].clone();
    let bucket = output(&outputs, "StateBucketName");
    let work_url = output(&outputs, "WorkQueueUrl");

    let dir = tempfile::tempdir().unwrap();
    let job = json!({
        "version": 1, "name": "ops-job",
        "source": { "kind": "s3", "bucket": "photos", "region": "us-east-1" },
        "destination": { "bucket": "dst", "region": "cn-hangzhou",
                         "credentials": { "secret": "ferry/oss" } }
    });
    let path = dir.path().join("job.json");
    std::fs::write(&path, job.to_string()).unwrap();
    let ferry = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"));
        cmd.env("AWS_ENDPOINT_URL", moto.endpoint())
            .env("AWS_REGION", moto::REGION)
            .env("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("FERRY_STATE_PATH_STYLE", "1")
            .env_remove("AWS_PROFILE")
            .current_dir(dir.path())
            .args(args);
        output_within(&mut cmd, Duration::from_secs(60)).expect("ferry ends")
    };
    let job_arg = path.to_str().unwrap();

    let out = ferry(&["start", job_arg, "--stack", STACK, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = started["run"].as_str().unwrap().to_owned();
    assert_eq!(started["state"], format!("s3://{bucket}"));

    // The run is in the stack's state bucket, with the job as submitted.
    let s3 = moto.s3_client();
    for key in [
        "jobs/ops-job/job.json".to_owned(),
        format!("jobs/ops-job/runs/{run}/manifest.json"),
        format!("jobs/ops-job/runs/{run}/progress.json"),
    ] {
        s3.head_object()
            .bucket(&bucket)
            .key(&key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key} not in the state bucket: {e:?}"));
    }

    // Status reads the stack too: the run is planning, its one task waits on the work queue.
    let out = ferry(&["status", "ops-job", "--stack", STACK, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["run"], run.as_str(), "{status}");
    let queues = status["queues"].as_array().unwrap();
    let depth = |name: &str| {
        let q = queues.iter().find(|q| q["queue"] == name).unwrap();
        (
            q["waiting"].as_u64().unwrap(),
            q["in_flight"].as_u64().unwrap(),
        )
    };
    assert_eq!(depth("work"), (1, 0), "{status}");
    assert_eq!(depth("results"), (0, 0));
    assert_eq!(depth("work dead letters"), (0, 0));
    let out = ferry(&["status", "ops-job", "--stack", STACK]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("queues: work 1 · results 0"), "{text}");

    // A second start while the run is unfinished starts nothing.
    let out = ferry(&["start", job_arg, "--stack", STACK]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains(&run) && err.contains("--overlap"), "{err}");

    // The one message on the work queue is the run's planning task.
    let sqs = moto.sqs_client();
    let got = sqs
        .receive_message()
        .queue_url(&work_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let bodies: Vec<&str> = got.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let task: ShardTask = serde_json::from_str(bodies[0]).unwrap();
    assert_eq!(
        (task.job.as_str(), task.run.as_str()),
        ("ops-job", run.as_str())
    );
    assert!(matches!(task.work, Work::Plan { .. }), "{task:?}");

    // --overlap starts another run anyway.
    let out = ferry(&["start", job_arg, "--stack", STACK, "--overlap"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(second != run && !second.is_empty(), "{second}");

    // A stack that does not exist is named in the error.
    let out = ferry(&["start", job_arg, "--stack", "no-such-stack"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no-such-stack"), "{err}");
}
