//! Result tables: printed to the terminal and, with `--record`, appended to a Markdown file in
//! the repo together with the command that produced them and the machine they ran on.

use std::fmt::Write as _;
use std::time::Duration;

pub struct Row {
    pub name: String,
    pub ops: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub peak_rss: Option<u64>,
    pub cpu: Option<Duration>,
}

impl Row {
    pub fn new(name: &str, ops: u64, bytes: u64, elapsed: Duration) -> Self {
        Row {
            name: name.to_owned(),
            ops,
            bytes,
            elapsed,
            peak_rss: None,
            cpu: None,
        }
    }

    /// Resource use of the process under test.
    pub fn server(mut self, peak_rss: Option<u64>, cpu: Duration) -> Self {
        self.peak_rss = peak_rss;
        self.cpu = Some(cpu);
        self
    }

    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }

    fn ops_per_s(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn cpu_per_gb(&self) -> Option<f64> {
        let gb = self.bytes as f64 / 1e9;
        self.cpu.filter(|_| gb > 0.0).map(|c| c.as_secs_f64() / gb)
    }
}

pub struct Table {
    pub title: String,
    pub rows: Vec<Row>,
}

impl Table {
    pub fn new(title: impl Into<String>) -> Self {
        Table {
            title: title.into(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub fn markdown(&self) -> String {
        let mut s = format!("**{}**\n\n", self.title);
        s.push_str("| run | objects | MB | seconds | MB/s | objects/s | peak RSS MiB | CPU s | CPU s/GB |\n");
        s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in &self.rows {
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} | {:.2} | {:.1} | {:.0} | {} | {} | {} |",
                r.name,
                r.ops,
                r.bytes as f64 / 1e6,
                r.elapsed.as_secs_f64(),
                r.mb_per_s(),
                r.ops_per_s(),
                r.peak_rss
                    .map_or("–".into(), |b| format!("{:.0}", b as f64 / 1048576.0)),
                r.cpu
                    .map_or("–".into(), |c| format!("{:.2}", c.as_secs_f64())),
                r.cpu_per_gb().map_or("–".into(), |c| format!("{c:.2}")),
            );
        }
        s
    }
}

/// Appends the tables to `path` under a heading with the date, the command and the machine.
pub fn record(path: &std::path::Path, command: &str, tables: &[Table]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    writeln!(
        f,
        "\n### {} — `{command}`\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    )?;
    writeln!(f, "Machine: {cores} cores, loopback only.\n")?;
    for t in tables {
        writeln!(f, "{}", t.markdown())?;
    }
    Ok(())
}
