//! A deployed stack as the commands that operate it see it: the state bucket and the queues,
//! read from the stack's CloudFormation outputs (`StateBucketName`, `WorkQueueUrl`,
//! `WorkDlqUrl`, `ResultsQueueUrl`, `ResultsDlqUrl`, `EventsDlqUrl`; infra/template.yaml), each
//! overridable by a flag. AWS credentials and region come from the usual chain
//! (`AWS_PROFILE`, `AWS_REGION`, …; `AWS_ENDPOINT_URL` for a local stand-in).

use ferry::pipeline::Ports;
use serde::Serialize;

/// Which stack, and any of its outputs given by hand.
#[derive(clap::Args, Clone, Default)]
pub struct StackArgs {
    /// The deployed stack's name: its outputs name the state bucket and the queues.
    #[arg(long)]
    pub stack: Option<String>,
    /// The state bucket (instead of the stack's `StateBucketName`).
    #[arg(long)]
    pub state_bucket: Option<String>,
    /// The work queue URL (instead of the stack's `WorkQueueUrl`).
    #[arg(long)]
    pub work_queue: Option<String>,
    /// The results queue URL (instead of the stack's `ResultsQueueUrl`).
    #[arg(long)]
    pub results_queue: Option<String>,
}

/// The resources of a deployed stack.
#[derive(Clone, Debug, Default)]
pub struct Stack {
    pub state_bucket: String,
    pub work_queue: String,
    pub results_queue: String,
    /// The dead-letter queues, when the stack names them.
    pub work_dlq: Option<String>,
    pub results_dlq: Option<String>,
    pub events_dlq: Option<String>,
}

impl StackArgs {
    /// Whether anything names a stack's resources.
    pub fn given(&self) -> bool {
        self.stack.is_some() || self.state_bucket.is_some()
    }

    /// The stack's resources: its outputs, with the flags laid over them.
    pub async fn resolve(&self) -> Result<Stack, String> {
        let mut stack = match &self.stack {
            Some(name) => outputs(name).await?,
            None => Stack::default(),
        };
        let set = |field: &mut String, flag: &Option<String>| {
            if let Some(v) = flag {
                *field = v.clone();
            }
        };
        set(&mut stack.state_bucket, &self.state_bucket);
        set(&mut stack.work_queue, &self.work_queue);
        set(&mut stack.results_queue, &self.results_queue);
        for (value, output, flag) in [
            (&stack.state_bucket, "StateBucketName", "--state-bucket"),
            (&stack.work_queue, "WorkQueueUrl", "--work-queue"),
            (&stack.results_queue, "ResultsQueueUrl", "--results-queue"),
        ] {
            if value.is_empty() {
                return Err(match &self.stack {
                    Some(name) => format!(
                        "stack {name:?} has no output {output}: is it ferry's stack \
                         (infra/template.yaml)? Give {flag} instead"
                    ),
                    None => format!("no stack named: give --stack NAME, or {flag}"),
                });
            }
        }
        Ok(stack)
    }
}

/// Reads a stack's outputs from CloudFormation.
async fn outputs(name: &str) -> Result<Stack, String> {
    let config = aws_config::load_from_env().await;
    let client = aws_sdk_cloudformation::Client::new(&config);
    let found = client
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| {
            let detail = aws_sdk_cloudformation::error::DisplayErrorContext(&e).to_string();
            format!(
                "cannot read stack {name:?} from CloudFormation ({}): check the name, the \
                 region (AWS_REGION) and the credentials",
                first_line(&detail)
            )
        })?;
    let stack = found
        .stacks()
        .first()
        .ok_or_else(|| format!("stack {name:?} not found: check the name and AWS_REGION"))?;
    let output = |key: &str| {
        stack
            .outputs()
            .iter()
            .find(|o| o.output_key() == Some(key))
            .and_then(|o| o.output_value())
            .map(str::to_owned)
    };
    Ok(Stack {
        state_bucket: output("StateBucketName").unwrap_or_default(),
        work_queue: output("WorkQueueUrl").unwrap_or_default(),
        results_queue: output("ResultsQueueUrl").unwrap_or_default(),
        work_dlq: output("WorkDlqUrl"),
        results_dlq: output("ResultsDlqUrl"),
        events_dlq: output("EventsDlqUrl"),
    })
}

/// The SDK's error context can run to several lines; the first says what went wrong.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

impl Stack {
    /// The pipeline's ports on this stack, wired as the functions wire them.
    pub async fn ports(&self) -> Result<Ports, String> {
        let lookup = |name: &str| match name {
            "FERRY_STATE_BUCKET" => Some(self.state_bucket.clone()),
            "FERRY_WORK_QUEUE_URL" => Some(self.work_queue.clone()),
            "FERRY_RESULTS_QUEUE_URL" => Some(self.results_queue.clone()),
            "FERRY_STATE_PATH_STYLE" => std::env::var(name).ok(),
            _ => None,
        };
        ferry::deploy::Deployment::from_lookup(&lookup)
            .await
            .map(|d| d.ports)
            .map_err(|e| e.to_string())
    }

    /// How many messages each queue holds now.
    pub async fn depths(&self) -> Result<Vec<QueueDepth>, String> {
        let config = aws_config::load_from_env().await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let queues = [
            ("work", Some(&self.work_queue)),
            ("results", Some(&self.results_queue)),
            ("work dead letters", self.work_dlq.as_ref()),
            ("results dead letters", self.results_dlq.as_ref()),
            ("events dead letters", self.events_dlq.as_ref()),
        ];
        let mut depths = Vec::new();
        for (name, url) in queues {
            let Some(url) = url else { continue };
            depths.push(depth(&sqs, name, url).await?);
        }
        Ok(depths)
    }
}

/// One queue's messages: waiting to be received, and received but not yet deleted.
#[derive(Clone, Debug, Serialize)]
pub struct QueueDepth {
    pub queue: String,
    pub waiting: u64,
    pub in_flight: u64,
}

async fn depth(sqs: &aws_sdk_sqs::Client, name: &str, url: &str) -> Result<QueueDepth, String> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let got = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(A::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| {
            let detail = aws_sdk_sqs::error::DisplayErrorContext(&e).to_string();
            format!(
                "cannot read the {name} queue {url}: {}",
                first_line(&detail)
            )
        })?;
    let attrs = got.attributes();
    let count = |a: A| {
        attrs
            .and_then(|m| m.get(&a))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(QueueDepth {
        queue: name.to_owned(),
        waiting: count(A::ApproximateNumberOfMessages)
            + count(A::ApproximateNumberOfMessagesDelayed),
        in_flight: count(A::ApproximateNumberOfMessagesNotVisible),
    })
}

/// `work 3 waiting + 1 in flight · results 0 · work dead letters 0`.
pub fn depths_line(depths: &[QueueDepth]) -> String {
    let parts: Vec<String> = depths
        .iter()
        .map(|d| match d.in_flight {
            0 => format!("{} {}", d.queue, d.waiting),
            n => format!("{} {} waiting + {n} in flight", d.queue, d.waiting),
        })
        .collect();
    format!("queues: {}", parts.join(" · "))
}
