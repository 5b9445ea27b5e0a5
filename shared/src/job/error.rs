//! What is wrong with a job spec, said so a person can fix it without reading ferry's code.
//!
//! Every [`Issue`] names the JSON path of the setting (`destination.prefix`,
//! `filters.include[2]`), the value found there (when showing it is safe), what is wrong and what
//! to write instead. [`JobError`] holds all the issues found in one read, so a user fixes a job
//! file in one pass instead of one error at a time.
//!
//! Messages from serde (unknown field, wrong type, missing field) are rewritten into the same
//! shape here. Under a `credentials` path, values are never echoed: a user may have pasted a
//! secret where a reference belongs, and error messages end up in logs.

use std::fmt;

/// One problem with one setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// JSON path of the setting: `destination.prefix`, `filters.include[0]`, `(top level)`.
    pub path: String,
    /// The value found, as JSON-ish text (`"logs/"`, `0`), when it helps and is safe to show.
    pub value: Option<String>,
    /// What is wrong.
    pub problem: String,
    /// What to write instead.
    pub fix: String,
}

/// A job spec that cannot be used, with every problem found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.issues))]
pub struct JobError {
    /// Every problem found.
    pub issues: Vec<Issue>,
}

/// The path shown for problems with the document as a whole.
pub const TOP_LEVEL: &str = "(top level)";

impl Issue {
    /// A problem at `path`, with the value found (if any), what is wrong and the fix.
    pub fn new(
        path: impl Into<String>,
        value: Option<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Issue {
            path: path.into(),
            value,
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// An issue about a string value, shown quoted.
    pub fn text(
        path: impl Into<String>,
        value: &str,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Issue::new(path, Some(format!("{value:?}")), problem, fix)
    }

    /// An issue about a number or other value shown as is.
    pub fn shown(
        path: impl Into<String>,
        value: impl fmt::Display,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Issue::new(path, Some(value.to_string()), problem, fix)
    }

    /// Turns a serde message about the setting at `path` into an issue.
    pub(super) fn from_serde(path: &str, message: &str) -> Self {
        let secret_path = path.split(['.', '[']).any(|s| s == "credentials");
        let issue = classify(path, message);
        if secret_path { redact(issue) } else { issue }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let Some(value) = &self.value {
            write!(f, " = {value}")?;
        }
        write!(f, ": {}; fix: {}", self.problem, self.fix)
    }
}

/// Top-level settings in the order the spec documents them; issues are listed in this order.
const SECTIONS: [&str; 13] = [
    "version",
    "name",
    "source",
    "destination",
    "filters",
    "mode",
    "overwrite",
    "archive",
    "sharding",
    "concurrency",
    "bandwidth_limit",
    "verification",
    "events",
];

impl JobError {
    /// An error with these issues, listed in the order of the spec's sections.
    pub fn new(mut issues: Vec<Issue>) -> Self {
        issues.sort_by_key(|issue| {
            let section = issue.path.split(['.', '[']).next().unwrap_or_default();
            match SECTIONS.iter().position(|s| *s == section) {
                _ if issue.path == TOP_LEVEL => 0,
                Some(i) => i + 1,
                None => SECTIONS.len() + 1,
            }
        });
        JobError { issues }
    }

    /// An error with a single problem.
    pub fn one(issue: Issue) -> Self {
        JobError {
            issues: vec![issue],
        }
    }

    /// Every problem found.
    pub fn issues(&self) -> &[Issue] {
        &self.issues
    }

    /// The issue about `path`, if there is one.
    pub fn at(&self, path: &str) -> Option<&Issue> {
        self.issues.iter().find(|i| i.path == path)
    }
}

fn render(issues: &[Issue]) -> String {
    let mut out = match issues.len() {
        1 => "the job spec has 1 problem:".to_owned(),
        n => format!("the job spec has {n} problems:"),
    };
    for issue in issues {
        out.push_str("\n  - ");
        out.push_str(&issue.path);
        if let Some(value) = &issue.value {
            out.push_str(" = ");
            out.push_str(value);
        }
        out.push_str(": ");
        out.push_str(&issue.problem);
        out.push_str("\n    fix: ");
        out.push_str(&issue.fix);
    }
    out
}

const SECRET_FIX: &str = "ferry never reads secrets from the job file: store them in AWS Secrets Manager and write \"credentials\": {\"secret\": \"<secret ARN or name>\"}, or export them as environment variables and write \"credentials\": {\"env\": {…variable names…}} (for S3 also \"default_chain\")";

fn classify(path: &str, message: &str) -> Issue {
    let ticked = backticked(message);
    if let Some(rest) = message.strip_prefix("missing field ") {
        let field = backticked(rest).into_iter().next().unwrap_or_default();
        return Issue::new(
            path,
            None,
            "is required but missing",
            format!("add `{field}`; {}", required_hint(&field)),
        );
    }
    if message.starts_with("unknown field") {
        return unknown(path, None, "is not a setting ferry knows here", &ticked);
    }
    if message.starts_with("unknown variant") {
        let value = ticked.first().map(|v| format!("{v:?}"));
        return unknown(path, value, "is not one of the allowed values", &ticked);
    }
    if let Some((problem, fix)) = message.rsplit_once("; fix: ") {
        // ferry's own value types (sizes, globs, times) already say what and how.
        return Issue::new(path, None, problem, fix);
    }
    for kind in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = message.strip_prefix(kind)
            && let Some((found, expected)) = rest.split_once(", expected ")
        {
            let problem = if kind.starts_with("invalid type") {
                "has the wrong type"
            } else {
                "is not allowed here"
            };
            return Issue::new(
                path,
                Some(found.to_owned()),
                problem,
                format!("write {} here", plain_type(expected)),
            );
        }
    }
    Issue::new(
        path,
        None,
        message,
        "see the job schema (`ferry::job::schema()`) for what this setting accepts",
    )
}

/// An unknown field or variant: the first ticked name is what was written, the rest what is
/// allowed.
fn unknown(path: &str, value: Option<String>, problem: &str, ticked: &[String]) -> Issue {
    let written = ticked.first().map(String::as_str).unwrap_or_default();
    let allowed = ticked.get(1..).unwrap_or_default();
    let fix = if looks_secret(written) {
        SECRET_FIX.to_owned()
    } else {
        let listed = allowed
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", ");
        match closest(written, allowed) {
            Some(best) => format!("did you mean `{best}`? Allowed here: {listed}"),
            None if listed.is_empty() => "remove it".to_owned(),
            None => format!("remove it, or use one of: {listed}"),
        }
    };
    Issue::new(path, value, problem, fix)
}

/// Under `credentials` a value may be a pasted secret: keep only names that look like names.
fn redact(mut issue: Issue) -> Issue {
    let safe = |v: &str| {
        let bare = v.trim_matches('"');
        !bare.is_empty()
            && bare.len() <= 40
            && bare.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    };
    if issue.value.as_deref().is_some_and(|v| !safe(v)) {
        issue.value = Some("<hidden>".to_owned());
    }
    issue.problem = hide_quoted(&issue.problem);
    let last = issue.path.rsplit('.').next().unwrap_or_default();
    let typo = issue.fix.starts_with("did you mean");
    if last == "credentials" && !typo {
        issue.value = None;
        issue.problem = "is not a credentials reference (secrets cannot be written here)".into();
    }
    if looks_secret(last) || (last == "credentials" && !typo) {
        issue.fix = SECRET_FIX.to_owned();
    }
    issue
}

fn hide_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut parts = text.split('"');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for (i, part) in parts.enumerate() {
        out.push('"');
        out.push_str(if i % 2 == 0 { "<hidden>" } else { part });
    }
    out
}

fn looks_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !lower.ends_with("_var")
        && lower != "secret"
        && ["secret", "password", "passwd", "token", "private_key"]
            .iter()
            .any(|w| lower.contains(w))
}

fn backticked(message: &str) -> Vec<String> {
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The allowed name nearest to a misspelt one, if it is near enough to be a typo.
fn closest<'a>(written: &str, allowed: &'a [String]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (edit_distance(written, a), a))
        .filter(|(d, a)| *d <= 1.max(a.chars().count() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a.as_str())
}

/// Edits (insert, delete, substitute, swap two neighbours) turning `a` into `b`: swapped
/// letters are the most common typo in a name, so they count as one.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// serde's names for expected types, in words a job author uses.
fn plain_type(expected: &str) -> &str {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a sequence" => "a list `[…]`",
        "map" | "a map" => "an object `{…}`",
        e if e.starts_with("struct ") => "an object `{…}`",
        e => e,
    }
}

fn required_hint(field: &str) -> &'static str {
    match field {
        "version" => "this ferry reads `\"version\": 1`",
        "name" => "the job id: lower-case letters, digits and hyphens, e.g. \"photos-to-oss\"",
        "source" => {
            "where to copy from: {\"kind\": \"s3\", \"bucket\": …} or {\"kind\": \"oss\", …}"
        }
        "destination" => "the OSS bucket to copy into: {\"bucket\": …, \"region\": …}",
        "kind" => "`s3` (Amazon S3 or an S3-compatible store) or `oss`",
        "bucket" => "the bare bucket name",
        "region" => "e.g. \"cn-hangzhou\" for OSS, \"us-east-1\" for S3",
        "role_arn" => "e.g. \"arn:aws:iam::123456789012:role/ferry-reader\"",
        _ => "see the job schema (`ferry::job::schema()`)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_suggest_the_nearest_name() {
        let issue = Issue::from_serde(
            "destination.bukcet",
            "unknown field `bukcet`, expected one of `bucket`, `prefix`, `region`",
        );
        assert!(issue.fix.contains("did you mean `bucket`"), "{issue}");
    }

    #[test]
    fn secret_looking_fields_get_the_reference_advice() {
        let issue = Issue::from_serde(
            "destination.credentials.access_key_secret",
            "unknown variant `access_key_secret`, expected `secret` or `env`",
        );
        assert!(issue.fix.contains("Secrets Manager"), "{issue}");
    }

    #[test]
    fn values_under_credentials_are_hidden() {
        let issue = Issue::from_serde(
            "source.credentials",
            "invalid type: string \"wJalrXUtnFEMI/K7MDENG\", expected map",
        );
        let shown = issue.to_string();
        assert!(!shown.contains("wJalr"), "{shown}");
        let issue = Issue::from_serde(
            "source.credentials",
            "unknown variant `wJalrXUtnFEMI/K7MDENG`, expected one of `default_chain`, `secret`, `env`",
        );
        assert!(!issue.to_string().contains("wJalr"), "{issue}");
    }

    #[test]
    fn wrong_types_say_what_to_write() {
        let issue = Issue::from_serde(
            "destination.allow_http",
            "invalid type: string \"yes\", expected a boolean",
        );
        assert_eq!(issue.value.as_deref(), Some("string \"yes\""));
        assert_eq!(issue.fix, "write a boolean here");
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("bukcet", "bucket"), 1);
        assert_eq!(edit_distance("nmae", "name"), 1);
        assert_eq!(edit_distance("gcs", "oss"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
