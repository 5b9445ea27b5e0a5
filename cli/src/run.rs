//! `ferry run job.json`: a migration in one process (standalone mode), with a progress bar and
//! the same report as a distributed run.
//!
//! Run it again with the same job and `--state-dir` after an interruption (Ctrl-C, a crash, a
//! reboot) and it resumes the unfinished run: verified objects are not copied again.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry::pipeline::standalone::{self, Options, View};
use ferry::pipeline::verify::report_text::size;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args)]
pub struct Args {
    /// The job file (JSON; `ferry schema` prints its schema).
    job: PathBuf,
    /// Where the run's state, report.json and failures.csv are kept. Use the same folder to
    /// resume an interrupted run.
    #[arg(long, default_value = "ferry-state")]
    state_dir: PathBuf,
    /// Shard tasks worked on at the same time (each copies `concurrency.objects` objects at once).
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Start a new run even if the state folder holds an unfinished one.
    #[arg(long)]
    fresh: bool,
    /// Copy only objects modified since the last complete run of this job.
    #[arg(long)]
    incremental: bool,
    /// Retry a finished run: only the objects it left failed or needing a restore, without
    /// listing the source (`ferry retry` is the same).
    #[arg(long, value_name = "RUN", conflicts_with = "incremental")]
    retry: Option<String>,
    /// Copy exactly the keys in FILE instead of listing the source: one key per line, or the
    /// first column of a `.csv`. The job's filters apply; a listed key not at the source is
    /// reported failed.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["incremental", "retry"])]
    keys: Option<std::path::PathBuf>,
    /// Replace the job's `overwrite` policy for this run: `if-newer` for the final run of a
    /// cut-over, so objects applications wrote to OSS after the switch are not replaced.
    #[arg(long, value_parser = ["if-different", "never", "always", "if-newer"])]
    overwrite: Option<String>,
    /// No progress bar (logs and the final summary only).
    #[arg(long)]
    quiet: bool,
    /// Where stderr is not a terminal (a log file, CI, cron), a one-line progress summary is
    /// printed instead of a bar, at most this often (seconds).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    progress_every: u64,
}

/// Exit status when the run completed but some objects failed or need a restore.
pub const EXIT_PROBLEMS: u8 = 3;

/// Reads a key list (`--keys`), telling the user what the reader noted.
pub fn read_keys(path: &std::path::Path) -> Result<Vec<String>, String> {
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot read the key list {}: {e}", path.display()))?;
    let list =
        ferry::job::key_list::read(&path.display().to_string(), std::io::BufReader::new(file))?;
    for note in &list.notes {
        eprintln!("note: {note}");
    }
    Ok(list.keys)
}

/// `ferry retry job.json --run RUN`: `ferry run` with `--retry RUN`.
pub async fn retry(mut args: Args, run_id: String) -> Result<u8, String> {
    args.retry = Some(run_id);
    run(args).await
}

pub async fn run(args: Args) -> Result<u8, String> {
    let text = std::fs::read_to_string(&args.job)
        .map_err(|e| format!("cannot read {}: {e}", args.job.display()))?;
    let text = with_overwrite(text, args.overwrite.as_deref(), &args.job)?;
    let spec = ferry::job::JobSpec::from_json(&text)
        .map_err(|e| format!("{} is not a valid job:\n{e}", args.job.display()))?;
    for warning in spec.warnings() {
        eprintln!("warning: {warning}");
    }
    let terminal = std::io::stderr().is_terminal();
    let bar = (!args.quiet && terminal).then(progress_bar);
    let mut options = Options::new(&args.state_dir);
    options.workers = args.workers;
    options.fresh = args.fresh;
    options.incremental = args.incremental;
    options.retry = args.retry.clone();
    if let Some(path) = &args.keys {
        options.keys = Some(read_keys(path)?);
    }
    // The total (one extra listing of the source) only where a bar shows it.
    options.count_scope = bar.is_some();
    if let Some(bar) = &bar {
        let bar = bar.clone();
        options.on_progress = Some(Arc::new(move |view: &View| show(&bar, view)));
    } else if !args.quiet {
        let lines = Lines::new(Duration::from_secs(args.progress_every.max(1)));
        options.on_progress = Some(Arc::new(move |view: &View| lines.show(view)));
    }
    let secrets = ferry::deploy::secrets_for(&spec).await;
    let finished = standalone::run(&text, options, secrets)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = &finished.report;
    if finished.resumed {
        println!("resumed run {} of job {}", report.run, report.job);
    }
    println!("{}", report.summary);
    let t = &report.objects;
    println!(
        "{} objects in scope ({:.1} MiB), {}; {:.1} s",
        t.objects,
        t.bytes as f64 / 1048576.0,
        t.outcomes(),
        report.seconds
    );
    println!("report: {}", finished.run_dir.join("report.json").display());
    if report.verdict == "complete" {
        Ok(0)
    } else {
        println!(
            "failures: {}",
            finished.run_dir.join("failures.csv").display()
        );
        Ok(EXIT_PROBLEMS)
    }
}

/// The job text with its `overwrite` policy replaced, when `--overwrite` is given.
fn with_overwrite(
    text: String,
    policy: Option<&str>,
    path: &std::path::Path,
) -> Result<String, String> {
    let Some(policy) = policy else {
        return Ok(text);
    };
    let mut job: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    let object = job
        .as_object_mut()
        .ok_or_else(|| format!("{} is not a JSON object", path.display()))?;
    object.insert("overwrite".to_owned(), policy.into());
    Ok(serde_json::to_string_pretty(&job).expect("json"))
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
        )
        .expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Progress for a reader that is not a terminal: one line at a time, at most every `every`.
struct Lines {
    started: Instant,
    every: Duration,
    last: Mutex<Option<Instant>>,
}

impl Lines {
    fn new(every: Duration) -> Self {
        Lines {
            started: Instant::now(),
            every,
            last: Mutex::new(None),
        }
    }

    fn show(&self, view: &View) {
        let mut last = self.last.lock().expect("progress lock");
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < self.every) {
            return;
        }
        *last = Some(now);
        eprintln!("{}", progress_line(view, now.duration_since(self.started)));
    }
}

/// `progress: 1200/5000 objects (12.0 MiB of 40.0 MiB), 0 failed, 3 tasks pending, 410 objects/s`
fn progress_line(view: &View, elapsed: Duration) -> String {
    let t = &view.progress.tally;
    let of = match view.scope {
        Some((objects, bytes, counted)) => {
            let more = if counted { "" } else { "+" };
            format!(
                "{}/{objects}{more} objects ({} of {}{more})",
                t.objects,
                size(t.bytes),
                size(bytes)
            )
        }
        None => format!("{} objects ({})", t.objects, size(t.bytes)),
    };
    let rate = t.objects as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "progress: {of}, {} failed, {} tasks pending, {rate:.0} objects/s",
        t.failed,
        view.progress.pending.len()
    )
}

fn show(bar: &ProgressBar, view: &View) {
    let t = &view.progress.tally;
    let done_bytes = t.bytes;
    match view.scope {
        Some((objects, bytes, counted)) => {
            bar.set_length(bytes.max(done_bytes));
            bar.set_message(format!(
                "{}/{}{} objects, {} failed, {} tasks pending",
                t.objects,
                objects,
                if counted { "" } else { "+" },
                t.failed,
                view.progress.pending.len()
            ));
        }
        None => bar.set_message(format!(
            "{} objects, {} failed, {} tasks pending",
            t.objects,
            t.failed,
            view.progress.pending.len()
        )),
    }
    bar.set_position(done_bytes);
}
