//! `ferry estimate job.json`: before the run, how long it takes, how many functions it needs,
//! the requests it makes and what it costs — from the source's listing (the default), a
//! manifest of keys and sizes, or bare totals. The model and its table of prices, throughput
//! and limits live in the engine (`ferry::estimate`); docs/estimate.md explains both.
//!
//! Exit status: `0` estimated; `1` the job, manifest or price file could not be read, or the
//! source could not be listed (the message says what to fix).

use std::io::BufReader;
use std::path::PathBuf;

use ferry::estimate::table::Table;
use ferry::estimate::workload::Workload;
use ferry::estimate::{Bound, Estimate, Fleet};
use ferry::job::{ByteSize, JobSpec};
use ferry::pipeline::verify::report_text::size as bytes;

use crate::plan::group;

#[derive(clap::Args)]
pub struct Args {
    /// The job file (JSON).
    #[arg(required_unless_present = "show_table")]
    job: Option<PathBuf>,
    /// Count what the run would copy from the source's listing (the default; lists only).
    #[arg(long, conflicts_with_all = ["manifest", "objects"])]
    from_listing: bool,
    /// Estimate from a CSV of `key,size` rows (a bucket inventory's key and size columns)
    /// instead of listing the source.
    #[arg(long, value_name = "FILE", conflicts_with = "objects")]
    manifest: Option<PathBuf>,
    /// Estimate from totals: this many objects…
    #[arg(long, requires = "bytes")]
    objects: Option<u64>,
    /// …of this many bytes in all (`12TiB`, `500GB`, `1048576`).
    #[arg(long, requires = "objects")]
    bytes: Option<ByteSize>,
    /// What it takes to finish within this many days.
    #[arg(long)]
    days: Option<f64>,
    /// Transfer functions at once (the stack's TransferMaxConcurrency).
    #[arg(long, default_value_t = 50)]
    functions: u32,
    /// Transfer function memory in MB (the stack's TransferMemorySize).
    #[arg(long, default_value_t = 1769)]
    memory: u32,
    /// One `ferry run` process instead of Lambda: no functions, queues or state bucket.
    #[arg(long)]
    standalone: bool,
    /// Prices, throughput or limits overriding the shipped table (JSON, any subset of
    /// `--show-table`'s fields).
    #[arg(long, value_name = "FILE")]
    prices: Option<PathBuf>,
    /// Print the table the estimate uses (with `--prices` laid over it) and stop.
    #[arg(long)]
    show_table: bool,
    /// Print the estimate as JSON, for tools.
    #[arg(long)]
    json: bool,
    /// Ranges listed at the same time (`--from-listing`).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

pub async fn run(args: Args) -> Result<(), String> {
    let table = table(args.prices.as_deref())?;
    if args.show_table {
        println!(
            "{}",
            serde_json::to_string_pretty(&table).expect("table serialises")
        );
        return Ok(());
    }
    let path = args.job.as_deref().expect("clap requires the job");
    let spec = crate::plan::read_job(path)?;
    let work = workload(&args, &spec).await?;
    let mut fleet = if args.standalone {
        Fleet::standalone()
    } else {
        Fleet::lambda()
    };
    if !args.standalone {
        fleet.functions = args.functions.max(1);
        fleet.transfer_memory_mb = args.memory.max(128);
    }
    let estimate = ferry::estimate::estimate(&spec, &work, &fleet, &table, args.days);
    if args.json {
        let mut doc = serde_json::to_value(&estimate).expect("estimate serialises");
        doc["job"] = spec.name.clone().into();
        println!("{doc}");
    } else {
        print!("{}", text(&spec.name, &estimate));
    }
    Ok(())
}

fn table(prices: Option<&std::path::Path>) -> Result<Table, String> {
    let Some(path) = prices else {
        return Ok(Table::shipped());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Table::with_overrides(&text, &path.display().to_string()).map_err(|e| e.to_string())
}

async fn workload(args: &Args, spec: &JobSpec) -> Result<Workload, String> {
    if let (Some(objects), Some(size)) = (args.objects, args.bytes) {
        if objects == 0 && size.bytes() > 0 {
            return Err(format!(
                "--objects 0 with --bytes {}: bytes need objects to hold them; fix: give the \
                 number of objects",
                size.bytes()
            ));
        }
        return Ok(Workload::from_totals(spec, objects, size.bytes()));
    }
    if let Some(path) = &args.manifest {
        let file = std::fs::File::open(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        return Workload::from_manifest(spec, &path.display().to_string(), BufReader::new(file));
    }
    let survey = crate::plan::survey(spec, args.concurrency).await?;
    Ok(Workload::from_survey(&survey.0))
}

/// The estimate for people.
fn text(job: &str, e: &Estimate) -> String {
    let w = &e.workload;
    let mut out = format!(
        "job {job}: {} objects, {} in scope (from {})\n",
        group(w.objects()),
        bytes(w.bytes()),
        w.from
    );
    out += &format!(
        "  {} small objects ({}), {} multipart ({}, {} parts), {} archived\n",
        group(w.small.objects),
        bytes(w.small.bytes),
        group(w.large.objects),
        bytes(w.large.bytes),
        group(w.parts),
        group(w.archived.objects)
    );
    out += &time_lines(e);
    out += &request_lines(e);
    out += &cost_lines(e);
    for note in &e.notes {
        out += &format!("note: {note}\n");
    }
    out
}

fn time_lines(e: &Estimate) -> String {
    let who = if e.fleet.distributed {
        format!("{} transfer functions", e.fleet.functions)
    } else {
        "one ferry run process".to_owned()
    };
    let bound = match e.bound {
        Bound::Functions => "more functions finish sooner",
        Bound::OssRequestRate => "bounded by OSS's requests per second on one bucket",
        Bound::SourceRequestRate => "bounded by S3's request rate per prefix",
    };
    let mut out = format!(
        "time\n  work          {} of transfer, {} of verifying ({} tasks)\n  with {who:<9} {} ({bound})\n",
        duration(e.transfer_seconds),
        duration(e.verifier_seconds),
        group(e.tasks),
        duration(e.wall_seconds)
    );
    if let Some(d) = &e.deadline {
        match d.functions {
            Some(n) => {
                let plural = if n == 1 { "" } else { "s" };
                out += &format!(
                    "  in {} days    {} function{plural}\n",
                    d.days,
                    group(u64::from(n))
                )
            }
            None => out += &format!("  in {} days    cannot be done\n", d.days),
        }
        if let Some(note) = &d.note {
            out += &format!("                ({note})\n");
        }
    }
    out
}

fn request_lines(e: &Estimate) -> String {
    let r = &e.requests;
    let mut rows = vec![
        ("source LIST", r.source_list),
        ("source HEAD", r.source_head),
        ("source GET", r.source_get),
        ("OSS LIST", r.oss_list),
        ("OSS PUT-type", r.oss_put),
        ("OSS HEAD", r.oss_head),
    ];
    if e.fleet.distributed {
        rows.extend([
            ("state PUT", r.state_put),
            ("state GET", r.state_get),
            ("SQS", r.sqs),
            ("Lambda calls", r.lambda_invocations),
        ]);
    }
    let mut out = "requests\n".to_owned();
    for (name, n) in rows {
        out += &format!("  {name:<14}{:>16}\n", group(n));
    }
    out
}

fn cost_lines(e: &Estimate) -> String {
    let c = &e.cost;
    let money = |v: Option<f64>| v.map_or("not priced".to_owned(), |v| format!("{v:.2}"));
    let mut out = format!("cost ({}; {})\n", e.currency, e.prices_as_of);
    let mut rows = vec![];
    if e.fleet.distributed {
        rows.push((
            format!("Lambda {} GB-s", group(e.gb_seconds as u64)),
            Some(c.lambda_compute),
        ));
        rows.push(("Lambda calls".to_owned(), Some(c.lambda_requests)));
        rows.push(("SQS".to_owned(), Some(c.sqs)));
    }
    rows.extend([
        (
            "source + state requests".to_owned(),
            c.source_and_state_requests,
        ),
        (
            format!("source egress {}", bytes(e.workload.copied().bytes)),
            c.source_egress,
        ),
        ("OSS requests".to_owned(), Some(c.oss_requests)),
        (
            "OSS storage during the run".to_owned(),
            Some(c.oss_storage_during_run),
        ),
        ("total".to_owned(), Some(c.total)),
        (
            "then OSS storage per month".to_owned(),
            Some(c.oss_storage_per_month),
        ),
    ]);
    for (name, v) in rows {
        out += &format!("  {name:<34}{:>14}\n", money(v));
    }
    out
}

/// Seconds as people read them: `45 s`, `12.5 min`, `3.2 h`, `4.1 days`.
pub fn duration(seconds: f64) -> String {
    match seconds {
        s if s < 90.0 => format!("{s:.0} s"),
        s if s < 5400.0 => format!("{:.1} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.1} days", s / 86_400.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(12.0), "12 s");
        assert_eq!(duration(600.0), "10.0 min");
        assert_eq!(duration(7200.0), "2.0 h");
        assert_eq!(duration(3.0 * 86_400.0), "3.0 days");
    }
}
