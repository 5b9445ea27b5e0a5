//! Reading a job file: JSON text → [`JobSpec`], reporting every problem in one go.
//!
//! serde stops at the first error, which would make a user fix a job file one line per try.
//! So reading works on the parsed JSON value and, after each error, records it with its path
//! and *repairs* the value so reading can go on: a bad optional setting is removed (its default
//! takes over); a bad required one or a bad list element is replaced by a stand-in (a whole
//! `source` when its `kind` is unknown, since its other fields mean nothing then). Errors
//! caused by a repair are not reported. When the shape is fully read, the semantic checks
//! (`validate.rs`) run too, and their issues about repaired settings are dropped: they would
//! judge values the user never wrote.
//!
//! serde cannot track paths inside the internally tagged `source` (it buffers the object to
//! find `kind`), so an error there is located again by reading `source` as the variant's own
//! struct.

use serde_json::{Value, json};

use super::error::{Issue, JobError, TOP_LEVEL};
use super::location::{OssSourceSpec, S3SourceSpec};
use super::spec::JobSpec;
use super::validate;

/// Reading gives up after this many problems: a file this broken is probably not a job file.
const MAX_ROUNDS: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

type Path = Vec<Step>;

/// A setting ferry changed to keep reading: removed (`next == 0`) or replaced by stand-in
/// number `next - 1`.
struct Repair {
    path: Path,
    next: usize,
}

impl JobSpec {
    /// Reads and checks a job file. The error lists every problem found, each with its JSON
    /// path, the value and the fix.
    pub fn from_json(text: &str) -> Result<JobSpec, JobError> {
        let mut value: Value = serde_json::from_str(text).map_err(syntax_error)?;
        if !value.is_object() {
            return Err(JobError::one(Issue::new(
                TOP_LEVEL,
                None,
                "is not a JSON object",
                "a job file is one JSON object: {\"version\": 1, \"name\": …, \"source\": …, \"destination\": …}",
            )));
        }
        let mut issues = Vec::new();
        let mut repairs: Vec<Repair> = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let (path, message) = match read(&value) {
                Ok(spec) => return finish(spec, issues, &repairs),
                Err(e) => e,
            };
            let missing = missing_field(&message);
            let target = match missing.clone() {
                Some(field) => [path, vec![Step::Key(field)]].concat(),
                None => path,
            };
            if let Some(repair) = repairs.iter_mut().find(|r| target.starts_with(&r.path)) {
                // Our own stand-in (or its absence) upset serde: try the next one.
                if !repair.advance(&mut value) {
                    break;
                }
                continue;
            }
            issues.push(Issue::from_serde(&render(&target), &message));
            let replace = missing.is_some() || matches!(target.last(), Some(Step::Index(_)));
            let mut repair = Repair {
                path: repair_target(target),
                next: 0,
            };
            let kept_going = !repair.path.is_empty()
                && if replace || repair.next_is_whole_section() {
                    repair.advance(&mut value)
                } else {
                    remove(&mut value, &repair.path)
                };
            if !kept_going {
                break;
            }
            repairs.push(repair);
        }
        Err(JobError::new(issues))
    }
}

fn finish(spec: JobSpec, mut issues: Vec<Issue>, repairs: &[Repair]) -> Result<JobSpec, JobError> {
    let repaired: Vec<String> = repairs.iter().map(|r| render(&r.path)).collect();
    issues.extend(
        validate::check(&spec)
            .into_iter()
            .filter(|i| !repaired.iter().any(|p| within(&i.path, p))),
    );
    if issues.is_empty() {
        Ok(spec)
    } else {
        Err(JobError::new(issues))
    }
}

/// What to repair for an error at `target`: the whole source when its `kind` is wrong.
fn repair_target(mut target: Path) -> Path {
    if target == [Step::Key("source".into()), Step::Key("kind".into())] {
        target.pop();
    }
    target
}

fn within(path: &str, ancestor: &str) -> bool {
    path == ancestor
        || path
            .strip_prefix(ancestor)
            .is_some_and(|rest| rest.starts_with(['.', '[']))
}

/// One attempt at reading the whole spec; the first error with its precise path.
fn read(value: &Value) -> Result<JobSpec, (Path, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = convert(e.path());
        if path == [Step::Key("source".into())]
            && let Some(precise) = locate_in_source(value)
        {
            return precise;
        }
        (path, e.into_inner().to_string())
    })
}

/// Re-reads `source` as the struct its `kind` names, to find where inside it the error is.
fn locate_in_source(value: &Value) -> Option<(Path, String)> {
    let source = value.get("source")?.as_object()?;
    let kind = source.get("kind")?.as_str()?;
    let mut fields = source.clone();
    fields.remove("kind");
    let fields = Value::Object(fields);
    let (path, message) = match kind {
        "s3" => serde_path_to_error::deserialize::<_, S3SourceSpec>(&fields)
            .err()
            .map(|e| (convert(e.path()), e.into_inner().to_string()))?,
        "oss" => serde_path_to_error::deserialize::<_, OssSourceSpec>(&fields)
            .err()
            .map(|e| (convert(e.path()), e.into_inner().to_string()))?,
        _ => return None,
    };
    Some(([vec![Step::Key("source".into())], path].concat(), message))
}

fn convert(path: &serde_path_to_error::Path) -> Path {
    use serde_path_to_error::Segment;
    let mut out = Vec::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push(Step::Index(*index)),
            Segment::Map { key } => out.push(Step::Key(key.clone())),
            Segment::Enum { variant } => out.push(Step::Key(variant.clone())),
            Segment::Unknown => break,
        }
    }
    out
}

fn render(path: &[Step]) -> String {
    if path.is_empty() {
        return TOP_LEVEL.to_owned();
    }
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

impl Repair {
    /// Puts the next stand-in at the path; false when none is left.
    fn advance(&mut self, value: &mut Value) -> bool {
        let Some(stand_in) = self.stand_ins().into_iter().nth(self.next) else {
            return false;
        };
        self.next += 1;
        set(value, &self.path, stand_in)
    }

    /// A required section cannot be removed, only replaced.
    fn next_is_whole_section(&self) -> bool {
        matches!(self.path.as_slice(), [Step::Key(k)] if k == "source" || k == "destination")
    }

    /// Values to try in place of a bad or missing setting: a minimal valid section for the
    /// required sections, then simple values of each JSON type.
    fn stand_ins(&self) -> Vec<Value> {
        let mut out = match self.path.as_slice() {
            [Step::Key(k)] if k == "source" => vec![json!({"kind": "s3", "bucket": "stand-in"})],
            [Step::Key(k)] if k == "destination" => {
                vec![json!({"bucket": "stand-in", "region": "cn-hangzhou"})]
            }
            [Step::Key(k)] if k == "version" => vec![json!(1)],
            _ => Vec::new(),
        };
        out.extend([
            json!("**"),
            json!(""),
            json!(0),
            json!(false),
            json!({}),
            json!([]),
        ]);
        out
    }
}

fn parent_mut<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let (_, parents) = path.split_last()?;
    parents.iter().try_fold(value, |v, step| match step {
        Step::Key(k) => v.get_mut(k.as_str()),
        Step::Index(i) => v.get_mut(*i),
    })
}

fn set(value: &mut Value, path: &[Step], new: Value) -> bool {
    let Some(parent) = parent_mut(value, path) else {
        return false;
    };
    match (path.last(), parent) {
        (Some(Step::Key(k)), Value::Object(map)) => {
            map.insert(k.clone(), new);
            true
        }
        (Some(Step::Index(i)), Value::Array(items)) if *i < items.len() => {
            items[*i] = new;
            true
        }
        _ => false,
    }
}

fn remove(value: &mut Value, path: &[Step]) -> bool {
    match (path.last(), parent_mut(value, path)) {
        (Some(Step::Key(k)), Some(Value::Object(map))) => map.remove(k).is_some(),
        _ => false,
    }
}

fn syntax_error(e: serde_json::Error) -> JobError {
    let fix = match e.classify() {
        serde_json::error::Category::Eof => {
            "the text ends too early: close every `{`, `[` and string".to_owned()
        }
        _ => format!(
            "correct the JSON at line {} column {} (a missing comma or quote, or a trailing comma, is the usual cause)",
            e.line(),
            e.column()
        ),
    };
    JobError::one(Issue::new(
        TOP_LEVEL,
        None,
        format!("is not valid JSON: {e}"),
        fix,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_json_paths() {
        let path = vec![
            Step::Key("filters".into()),
            Step::Key("include".into()),
            Step::Index(2),
        ];
        assert_eq!(render(&path), "filters.include[2]");
        assert_eq!(render(&[]), TOP_LEVEL);
        assert!(within("source.credentials.env", "source.credentials"));
        assert!(!within("source.credentialsx", "source.credentials"));
    }

    #[test]
    fn repairs_put_stand_ins_in_lists_and_objects() {
        let mut value = serde_json::json!({"a": {"b": [1, 2]}});
        let path = vec![Step::Key("a".into()), Step::Key("b".into()), Step::Index(1)];
        let mut repair = Repair { path, next: 0 };
        assert!(repair.advance(&mut value));
        assert_eq!(value, serde_json::json!({"a": {"b": [1, "**"]}}));
        assert!(remove(
            &mut value,
            &[Step::Key("a".into()), Step::Key("b".into())]
        ));
        assert_eq!(value, serde_json::json!({"a": {}}));
    }
}
