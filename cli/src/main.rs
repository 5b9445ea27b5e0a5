//! `ferry`: the command line. A thin shell around the `ferry` engine crate: it parses arguments,
//! starts what a command needs and prints results; the work itself lives in the engine.

mod demo;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ferry",
    version,
    about = "Migrate S3, S3-compatible and OSS buckets into Alibaba Cloud OSS, and prove it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a migration end to end on local emulators (no cloud account needed) and print the report.
    Demo(demo::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry: {e}");
            ExitCode::FAILURE
        }
    }
}
