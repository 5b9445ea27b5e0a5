//! The contenders that run inside `ferry-bench worker …`, each in its own process.
//!
//! * `ferry` — ferry's engine exactly as a migration runs it: the S3 source adapter, the
//!   listing diff against the destination, streamed copies proven by CRC-64, default settings.
//! * `raw` — the ceiling: GET from the source, PUT the same stream to the destination, no
//!   checks, no listing of the destination.

use std::sync::Arc;

use ferry::oss::{Credentials, OssClient};
use ferry::source::s3::S3Source;
use ferry::transfer::resume::MemoryLedger;
use ferry::transfer::{Copier, CopyOptions, Destination, Outcome, WalkOptions, walk_range};
use futures_util::stream::{self, StreamExt};

use crate::migrate::{AK, DEST_BUCKET, REGION, SK, SOURCE_BUCKET};
use crate::raw_oss::RawOss;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[arg(value_parser = ["ferry", "raw"])]
    pub kind: String,
    #[arg(long)]
    pub source: String,
    #[arg(long)]
    pub destination: String,
    #[arg(long)]
    pub prefix: String,
    #[arg(long)]
    pub count: usize,
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

pub async fn run(args: Args) -> Result<(), String> {
    match args.kind.as_str() {
        "ferry" => ferry(&args).await,
        _ => raw(&args).await,
    }
}

async fn ferry(args: &Args) -> Result<(), String> {
    let config = ferry::testing::s3_config(args.source.clone(), REGION, SOURCE_BUCKET, AK, SK);
    let source = S3Source::new(config).await.map_err(|e| e.to_string())?;
    let client = OssClient::builder()
        .endpoint(&args.destination)
        .region(REGION)
        .credentials(Credentials::new(AK, SK))
        .allow_http(true)
        .build()
        .map_err(|e| e.to_string())?;
    let copier = Copier {
        source: Arc::new(source),
        dest: Destination::new(client, DEST_BUCKET, ""),
        options: CopyOptions::default(),
        ledger: Arc::new(MemoryLedger::new()),
        server_side: None,
    };
    let options = WalkOptions {
        prefix: args.prefix.clone(),
        object_concurrency: args.concurrency,
        ..Default::default()
    };
    let mut copied = 0usize;
    let mut failures = Vec::new();
    walk_range(&copier, &options, &mut |r| match &r.outcome {
        Outcome::Copied { .. } => copied += 1,
        other => failures.push(format!("{}: {other:?}", r.key)),
    })
    .await
    .map_err(|e| e.to_string())?;
    if copied != args.count || !failures.is_empty() {
        return Err(format!(
            "ferry copied {copied} of {}; {} not copied: {:?}",
            args.count,
            failures.len(),
            failures.first()
        ));
    }
    Ok(())
}

async fn raw(args: &Args) -> Result<(), String> {
    let src = RawOss::new(&args.source, AK, SK, REGION);
    let dst = RawOss::new(&args.destination, AK, SK, REGION);
    let results: Vec<Result<(), String>> = stream::iter(0..args.count)
        .map(|i| {
            let (src, dst) = (src.clone(), dst.clone());
            let key = format!("{}{i:07}", args.prefix);
            async move { dst.pipe_from(&src, SOURCE_BUCKET, DEST_BUCKET, &key).await }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    results.into_iter().collect()
}
