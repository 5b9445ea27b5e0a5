//! `ferry plan job.json --dry-run`: what a run of the job would copy — objects and bytes in
//! scope, archived objects that need a restore first, objects the filters leave out, and where
//! the bytes are by top-level folder — from the source's listings alone. It writes nothing:
//! no state, no destination request, no source read beyond listings.
//!
//! Exit status: `0` counted; `1` the job could not be read or the source not listed (the
//! message says what to fix).

use ferry::pipeline::verify::report_text::size as bytes;
use ferry::plan::survey::{Count, Survey};

#[derive(clap::Args)]
pub struct Args {
    /// The job file (JSON).
    job: std::path::PathBuf,
    /// Count only, copy nothing. `plan` always runs this way; the flag says so on the command
    /// line.
    #[arg(long)]
    dry_run: bool,
    /// Print the counts as JSON, for tools.
    #[arg(long)]
    json: bool,
    /// Ranges listed at the same time.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Folders shown in the table, largest first (`--json` has them all).
    #[arg(long, default_value_t = 20)]
    top: usize,
}

pub async fn run(args: Args) -> Result<(), String> {
    let spec = read_job(&args.job)?;
    let started = std::time::Instant::now();
    let (survey, source) = survey(&spec, args.concurrency).await?;
    let seconds = started.elapsed().as_secs_f64();
    let work = ferry::estimate::workload::Workload::from_survey(&survey);
    let prices = ferry::estimate::table::Table::shipped();
    let fleet = ferry::estimate::Fleet::lambda();
    let estimate = ferry::estimate::estimate(&spec, &work, &fleet, &prices, None);
    if args.json {
        let mut doc = serde_json::to_value(&survey).expect("survey serialises");
        doc["job"] = spec.name.clone().into();
        doc["source"] = source.into();
        doc["seconds"] = seconds.into();
        doc["estimate"] = serde_json::to_value(&estimate).expect("estimate serialises");
        println!("{doc}");
        return Ok(());
    }
    print!("{}", table(&spec.name, &source, &survey, args.top));
    println!(
        "estimate: about {} with {} transfer functions, about {:.2} {} (`ferry estimate` has the breakdown)",
        crate::estimate::duration(estimate.wall_seconds),
        fleet.functions,
        estimate.cost.total,
        estimate.currency
    );
    println!(
        "listed with {} requests in {seconds:.1} s; nothing was copied or written",
        survey.list_requests
    );
    Ok(())
}

/// Reads and checks a job file, naming the file in every error.
pub fn read_job(path: &std::path::Path) -> Result<ferry::job::JobSpec, String> {
    read_job_text(path).map(|(_, spec)| spec)
}

/// [`read_job`], keeping the file's text (what a run records as submitted).
pub fn read_job_text(path: &std::path::Path) -> Result<(String, ferry::job::JobSpec), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let spec = ferry::job::JobSpec::from_json(&text)
        .map_err(|e| format!("{} is not a valid job:\n{e}", path.display()))?;
    Ok((text, spec))
}

/// Lists the job's source and counts what a run would copy; returns the counts and the
/// source's description.
pub async fn survey(
    spec: &ferry::job::JobSpec,
    concurrency: usize,
) -> Result<(Survey, String), String> {
    let secrets = ferry::deploy::secrets_for(spec).await;
    let source = ferry::deploy::connect::source_for(spec, &secrets)
        .await
        .map_err(|e| e.to_string())?;
    let options = ferry::pipeline::planner::plan_options(spec);
    let survey = ferry::plan::survey::survey(source.as_ref(), spec, &options, concurrency)
        .await
        .map_err(|e| format!("listing {}: {e}", source.describe()))?;
    Ok((survey, source.describe()))
}

fn table(job: &str, source: &str, s: &Survey, top: usize) -> String {
    let mut out = format!("job {job}: {source}\n");
    let line = |label: &str, c: Count| {
        format!(
            "  {label:<14} {:>14} objects  {:>11}\n",
            group(c.objects),
            bytes(c.bytes)
        )
    };
    out += &line("in scope", s.in_scope);
    if s.archived.objects > 0 {
        out += &line("archived", s.archived);
        out += "                 (archived objects need a restore first: see the job's `archive` setting)\n";
    }
    if s.unnamable.objects > 0 {
        out += &line("not UTF-8", s.unnamable);
        out += "                 (OSS cannot name these keys: a run reports each failed)\n";
    }
    out += &line("filtered out", s.filtered_out);
    let mut folders: Vec<(&String, &Count)> = s.by_prefix.iter().collect();
    folders.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then(a.0.cmp(b.0)));
    if !folders.is_empty() {
        out += &format!(
            "by top-level folder ({} of {}, largest first):\n",
            folders.len().min(top),
            folders.len()
        );
        for (name, count) in folders.into_iter().take(top) {
            let name = if name.is_empty() {
                "(keys at the top)"
            } else {
                name
            };
            out += &format!(
                "  {name:<30} {:>14} objects  {:>11}\n",
                group(count.objects),
                bytes(count.bytes)
            );
        }
    }
    out
}

/// `1234567` → `1,234,567`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }
}
