//! A run's report for people: what `ferry report` prints as a table — the verdict, the counts
//! by outcome, the tasks that failed as a whole, and failures.csv grouped by reason, so a run
//! with ten thousand failed objects of one cause reads as one line, not ten thousand.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::report::Report;

/// At most this many reasons are shown; the rest are summed up in one line.
const REASONS_SHOWN: usize = 20;

/// One (outcome, reason) group of failures.csv: how many objects, one example key.
#[derive(Debug, PartialEq, Eq)]
pub struct Group {
    /// The failures.csv outcome: `failed`, `needs-restore` or `copied-with-notes`.
    pub outcome: String,
    /// The reason the objects share.
    pub reason: String,
    /// How many objects are in the group.
    pub objects: u64,
    /// One of their keys.
    pub example: String,
}

/// failures.csv grouped by outcome and reason, the largest groups first.
pub fn groups(failures_csv: &str) -> Result<Vec<Group>, csv::Error> {
    let mut by: BTreeMap<(String, String), Group> = BTreeMap::new();
    let mut reader = csv::Reader::from_reader(failures_csv.as_bytes());
    for row in reader.records() {
        let row = row?;
        let (key, outcome, reason) = (&row[0], &row[2], &row[3]);
        let group = by
            .entry((outcome.to_owned(), reason.to_owned()))
            .or_insert_with(|| Group {
                outcome: outcome.to_owned(),
                reason: reason.to_owned(),
                objects: 0,
                example: key.to_owned(),
            });
        group.objects += 1;
    }
    let mut out: Vec<Group> = by.into_values().collect();
    out.sort_by(|a, b| b.objects.cmp(&a.objects).then(a.outcome.cmp(&b.outcome)));
    Ok(out)
}

/// The report as a table. `groups` is failures.csv as [`groups`] reads it.
pub fn table(report: &Report, groups: &[Group]) -> String {
    let t = &report.objects;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "job {}, run {}: {}",
        report.job, report.run, report.verdict
    );
    let _ = writeln!(out, "{}", report.summary);
    let _ = writeln!(out, "{} → {}", report.source, report.destination);
    let _ = writeln!(
        out,
        "{} → {} ({:.1} s), mode {}, proof {}",
        report
            .started
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        report
            .finished
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        report.seconds,
        report.mode,
        report.verification
    );
    let rows = [
        ("objects in scope", t.objects, Some(t.bytes)),
        ("copied", t.copied, Some(t.copied_bytes)),
        ("skipped", t.skipped, None),
        ("needs restore", t.needs_restore, None),
        ("failed", t.failed, None),
        ("filtered out", t.filtered, None),
        ("tasks failed whole", t.failed_tasks, None),
        ("uploads aborted", report.uploads_aborted, None),
    ];
    for (name, n, bytes) in rows {
        let _ = match bytes {
            Some(b) => writeln!(out, "  {name:<20}{n:>12}  {}", size(b)),
            None => writeln!(out, "  {name:<20}{n:>12}"),
        };
    }
    for task in &report.failed_tasks {
        let _ = writeln!(out, "task failed: {} — {}", task.scope, task.error);
    }
    if !groups.is_empty() {
        let _ = writeln!(out, "failures.csv by reason:");
    }
    for g in groups.iter().take(REASONS_SHOWN) {
        let _ = writeln!(
            out,
            "  {:>8}  {:<17} {} (e.g. {:?})",
            g.objects, g.outcome, g.reason, g.example
        );
    }
    if groups.len() > REASONS_SHOWN {
        let rest: u64 = groups[REASONS_SHOWN..].iter().map(|g| g.objects).sum();
        let more = groups.len() - REASONS_SHOWN;
        let _ = writeln!(
            out,
            "  {rest:>8}  in {more} more reasons (see failures.csv)"
        );
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// Bytes for people: binary units, one decimal (`3.0 GiB`), plain bytes below 1 KiB.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "key,size,outcome,reason\n\
        \"a,b.txt\",3,failed,source: AccessDenied\n\
        c.txt,4,failed,source: AccessDenied\n\
        cold/x,9,needs-restore,\"archived (GLACIER), restore it\"\n";

    #[test]
    fn failures_are_grouped_by_reason_largest_first() {
        let g = groups(CSV).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].objects, g[0].example.as_str()), (2, "a,b.txt"));
        assert_eq!(g[1].reason, "archived (GLACIER), restore it");
        assert!(groups("key,size,outcome,reason\n").unwrap().is_empty());
    }

    #[test]
    fn the_table_shows_counts_and_reasons() {
        let report: Report = serde_json::from_value(serde_json::json!({
            "v": 1, "job": "photos", "run": "r1", "source": "s3://photos/", "destination": "oss://dst/",
            "mode": "copy", "verification": "crc64",
            "started": "2026-12-04T10:00:00Z", "finished": "2026-12-04T10:01:00Z", "seconds": 60.0,
            "verdict": "complete-with-problems", "summary": "3 problems",
            "objects": {"objects": 10, "bytes": 3145728, "copied": 7, "copied_bytes": 2097152,
                        "skipped": 0, "needs_restore": 1, "failed": 2, "filtered": 0, "failed_tasks": 0},
            "tasks": 3, "failed_tasks": [], "failures_listed": 3
        }))
        .unwrap();
        let text = table(&report, &groups(CSV).unwrap());
        assert!(
            text.contains("objects in scope              10  3.0 MiB"),
            "{text}"
        );
        assert!(
            text.contains("       2  failed            source: AccessDenied"),
            "{text}"
        );
        assert!(
            text.starts_with("job photos, run r1: complete-with-problems"),
            "{text}"
        );
    }
}
