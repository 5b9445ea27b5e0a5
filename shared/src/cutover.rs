//! The cut-over: switching applications from the source to OSS while objects are still being
//! copied, without a moment in which a read finds nothing.
//!
//! The recipe (docs/running.md, "Switch to OSS: the cut-over"):
//!
//! 1. copy the history with a full run; its start is **T1** (the job's watermark);
//! 2. [`enable`]: the destination bucket gets a `Mirror` back-to-origin rule, so a GET of a key
//!    OSS does not have yet is fetched from the source, stored and answered;
//! 3. switch applications to OSS (**T2**, recorded with [`record_switch`]);
//! 4. a final incremental run copies what changed since T1, with `overwrite: if-newer` so an
//!    object an application wrote to OSS after T2 is never replaced by an older source copy;
//! 5. check its report, then [`disable`] removes ferry's rule (and only it).
//!
//! ferry's rule is recognised by what it says (the job's prefix and the source's URL), not by
//! its number, so rules the bucket already has are kept and renumbering them does not matter.
//! The times are kept in `jobs/<job>/cutover.json` in the job's state.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::job::{JobSpec, KeyLayout, SourceSpec};
use crate::oss::OssClient;
use crate::oss::{Redirect, RoutingCondition, RoutingRule, WebsiteConfiguration};
use crate::pipeline::RoleError;
use crate::pipeline::layout;
use crate::pipeline::runtime::read_json;
use crate::pipeline::verify::progress::Progress;
use crate::state::StateStore;

/// OSS keeps at most 20 routing rules per bucket.
pub const MAX_RULES: usize = 20;

/// Why a cut-over step could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum CutoverError {
    /// The job does not say enough to build the rule.
    #[error("{0}")]
    Job(String),
    /// OSS refused or could not be reached.
    #[error("{what}: {source}")]
    Oss {
        /// The step that failed.
        what: String,
        /// The OSS client's error.
        #[source]
        source: crate::oss::Error,
    },
    /// The job's state could not be read or written.
    #[error("the job's state: {0}")]
    State(#[from] RoleError),
    /// The bucket already holds as many routing rules as OSS allows, so ferry's cannot be added.
    #[error(
        "bucket {bucket} has {MAX_RULES} routing rules already, OSS's limit: remove one you no \
         longer need (ossutil or the console) and run `ferry cutover enable` again"
    )]
    RulesFull {
        /// The destination bucket.
        bucket: String,
    },
}

impl From<crate::state::StateError> for CutoverError {
    fn from(e: crate::state::StateError) -> Self {
        CutoverError::State(e.into())
    }
}

/// What `jobs/<job>/cutover.json` records.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When ferry's rule was last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_at: Option<DateTime<Utc>>,
    /// T2: when applications were switched to OSS (as the operator recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switched_at: Option<DateTime<Utc>>,
    /// When ferry's rule was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<DateTime<Utc>>,
}

/// The origin the destination's misses are fetched from: the source bucket's URL, ending `/`.
pub fn origin_url(spec: &JobSpec) -> Result<String, CutoverError> {
    match &spec.source {
        SourceSpec::S3(s3) => match &s3.endpoint {
            None => {
                let region = s3
                    .region
                    .as_deref()
                    .filter(|r| !r.is_empty())
                    .ok_or_else(|| {
                        CutoverError::Job(format!(
                            "source.region is not set: the mirror rule needs the bucket's URL, \
                         https://{}.s3.<region>.amazonaws.com/ — set source.region in the job",
                            s3.bucket
                        ))
                    })?;
                // A dotted bucket name does not match S3's wildcard certificate as a host name.
                Ok(match s3.bucket.contains('.') {
                    true => format!("https://s3.{region}.amazonaws.com/{}/", s3.bucket),
                    false => format!("https://{}.s3.{region}.amazonaws.com/", s3.bucket),
                })
            }
            Some(endpoint) => {
                let parsed = crate::oss::endpoint::Endpoint::parse(endpoint)
                    .map_err(|e| CutoverError::Job(format!("source.endpoint {endpoint:?}: {e}")))?;
                Ok(bucket_url(&parsed, &s3.bucket, s3.path_style))
            }
        },
        SourceSpec::Oss(oss) => {
            let endpoint = oss
                .endpoint()
                .map_err(|e| CutoverError::Job(e.to_string()))?;
            let path_style = endpoint.needs_path_style();
            Ok(bucket_url(&endpoint, &oss.bucket, path_style))
        }
    }
}

fn bucket_url(endpoint: &crate::oss::endpoint::Endpoint, bucket: &str, path_style: bool) -> String {
    use crate::oss::endpoint::Addressing;
    let addressing = match path_style || endpoint.needs_path_style() {
        true => Addressing::PathStyle,
        false => Addressing::VirtualHosted,
    };
    endpoint.url(addressing, Some(bucket), None, &[])
}

/// ferry's `Mirror` rule for the job, numbered `number`: a 404 for a key in the job's scope at
/// the destination is fetched from the source key it was copied from. Under the `full` key
/// layout the scope is the destination prefix followed by the source prefix, and the
/// destination prefix is replaced by nothing; under `relative` the scope is the destination
/// prefix, which is taken off, and the source prefix goes into the origin URL (OSS appends the
/// remaining key to it) — OSS can only replace a prefix the rule's condition names.
pub fn mirror_rule(spec: &JobSpec, number: u32) -> Result<RoutingRule, CutoverError> {
    let (dest_prefix, source_prefix) = (spec.destination.prefix.as_str(), spec.source.prefix());
    let mut mirror_url = origin_url(spec)?;
    let kept = match spec.destination.key_layout {
        KeyLayout::Full => source_prefix,
        KeyLayout::Relative => {
            mirror_url.push_str(&crate::oss::sign::uri_encode_path(source_prefix));
            ""
        }
    };
    let scope = format!("{dest_prefix}{kept}");
    let replace = !dest_prefix.is_empty();
    Ok(RoutingRule {
        rule_number: number,
        condition: RoutingCondition {
            key_prefix_equals: (!scope.is_empty()).then_some(scope),
            http_error_code_returned_equals: Some(404),
            ..RoutingCondition::default()
        },
        redirect: Redirect {
            redirect_type: Some("Mirror".to_owned()),
            mirror_url: Some(mirror_url),
            enable_replace_prefix: replace.then_some(true),
            replace_key_prefix_with: replace.then(|| kept.to_owned()),
            mirror_follow_redirect: Some(true),
            ..Redirect::default()
        },
    })
}

/// Whether `rule` is the job's rule, whatever its number. Only what ferry chose is compared:
/// OSS may return the rule with defaults filled in (MirrorPassQueryString, MirrorCheckMd5, …).
fn is_ours(rule: &RoutingRule, ours: &RoutingRule) -> bool {
    let (a, b) = (&rule.redirect, &ours.redirect);
    let replaced = |r: &Redirect| match r.enable_replace_prefix {
        Some(true) => Some(r.replace_key_prefix_with.clone().unwrap_or_default()),
        _ => None,
    };
    a.redirect_type == b.redirect_type
        && a.mirror_url == b.mirror_url
        && replaced(a) == replaced(b)
        && rule.condition.key_prefix_equals == ours.condition.key_prefix_equals
        && rule.condition.key_suffix_equals.is_none()
}

/// The destination bucket's website configuration; empty when it has none.
async fn website(client: &OssClient, bucket: &str) -> Result<WebsiteConfiguration, CutoverError> {
    match client.get_bucket_website(bucket).await {
        Ok(config) => Ok(config),
        Err(e) if e.code() == Some("NoSuchWebsiteConfiguration") => {
            Ok(WebsiteConfiguration::default())
        }
        Err(source) => Err(CutoverError::Oss {
            what: format!("reading bucket {bucket}'s website configuration"),
            source,
        }),
    }
}

async fn put_website(
    client: &OssClient,
    bucket: &str,
    config: &WebsiteConfiguration,
) -> Result<(), CutoverError> {
    let result = match config == &WebsiteConfiguration::default() {
        true => client.delete_bucket_website(bucket).await,
        false => client.put_bucket_website(bucket, config).await,
    };
    result.map_err(|source| CutoverError::Oss {
        what: format!("writing bucket {bucket}'s website configuration"),
        source,
    })
}

/// What [`enable`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct Enabled {
    /// ferry's rule as it stands in the bucket.
    pub rule: RoutingRule,
    /// The rule was there already; nothing was written to the bucket.
    pub already: bool,
    /// Rules the bucket had that are kept as they were.
    pub kept: usize,
}

/// Adds the job's mirror rule to the destination bucket, after the rules it has (which are
/// kept), and records the time. Running it again changes nothing.
pub async fn enable(
    client: &OssClient,
    spec: &JobSpec,
    state: &dyn StateStore,
) -> Result<Enabled, CutoverError> {
    let bucket = spec.destination.bucket.as_str();
    let mut config = website(client, bucket).await?;
    let wanted = mirror_rule(spec, 0)?;
    let kept = config
        .routing_rules
        .iter()
        .filter(|r| !is_ours(r, &wanted))
        .count();
    if let Some(rule) = config.routing_rules.iter().find(|r| is_ours(r, &wanted)) {
        return Ok(Enabled {
            rule: rule.clone(),
            already: true,
            kept,
        });
    }
    if config.routing_rules.len() >= MAX_RULES {
        return Err(CutoverError::RulesFull {
            bucket: bucket.to_owned(),
        });
    }
    let number = config
        .routing_rules
        .iter()
        .map(|r| r.rule_number)
        .max()
        .unwrap_or(0)
        + 1;
    let rule = mirror_rule(spec, number)?;
    config.routing_rules.push(rule.clone());
    put_website(client, bucket, &config).await?;
    update_record(state, &spec.name, |r| {
        r.enabled_at = Some(Utc::now());
        r.disabled_at = None;
    })
    .await?;
    Ok(Enabled {
        rule,
        already: false,
        kept,
    })
}

/// Removes the job's mirror rule from the destination bucket, keeping every other rule, and
/// records the time. `Ok(false)` when the rule was not there.
pub async fn disable(
    client: &OssClient,
    spec: &JobSpec,
    state: &dyn StateStore,
) -> Result<bool, CutoverError> {
    let bucket = spec.destination.bucket.as_str();
    let mut config = website(client, bucket).await?;
    let wanted = mirror_rule(spec, 0)?;
    let before = config.routing_rules.len();
    config.routing_rules.retain(|r| !is_ours(r, &wanted));
    if config.routing_rules.len() == before {
        return Ok(false);
    }
    put_website(client, bucket, &config).await?;
    update_record(state, &spec.name, |r| r.disabled_at = Some(Utc::now())).await?;
    Ok(true)
}

/// Records T2, the moment applications were switched to OSS.
pub async fn record_switch(
    state: &dyn StateStore,
    job: &str,
    at: DateTime<Utc>,
) -> Result<(), CutoverError> {
    update_record(state, job, |r| r.switched_at = Some(at)).await
}

async fn update_record(
    state: &dyn StateStore,
    job: &str,
    change: impl FnOnce(&mut Record),
) -> Result<(), CutoverError> {
    let key = layout::cutover(job);
    let mut record: Record = read_json(state, &key).await?.unwrap_or_default();
    change(&mut record);
    let body = serde_json::to_vec_pretty(&record).expect("a record serialises");
    state.put(&key, body.into()).await?;
    Ok(())
}

/// Where the cut-over stands.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The job's name.
    pub job: String,
    /// The destination bucket the rule lives in.
    pub bucket: String,
    /// ferry's rule as it stands in the bucket, if it is there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<RoutingRule>,
    /// The origin the rule fetches from (or would).
    pub origin: String,
    /// T1: the start of the job's last complete run, and that run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t1: Option<DateTime<Utc>>,
    /// The id of that run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t1_run: Option<String>,
    /// The times the job's `cutover.json` records.
    #[serde(flatten)]
    pub record: Record,
    /// Event tasks not yet copied (the last week's event runs), and the oldest event among
    /// them.
    pub events_pending: usize,
    /// When the oldest event not yet copied happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_waiting_event: Option<DateTime<Utc>>,
}

/// Reads where the cut-over stands: the rule from the bucket, the times from the state.
pub async fn status(
    client: &OssClient,
    spec: &JobSpec,
    state: &dyn StateStore,
) -> Result<Status, CutoverError> {
    let bucket = spec.destination.bucket.as_str();
    let config = website(client, bucket).await?;
    let wanted = mirror_rule(spec, 0)?;
    let rule = config
        .routing_rules
        .into_iter()
        .find(|r| is_ours(r, &wanted));
    let (t1, t1_run) = last_complete_run(state, &spec.name).await?;
    let record = read_json(state, &layout::cutover(&spec.name))
        .await?
        .unwrap_or_default();
    let events =
        crate::pipeline::intake::recent_event_progress(state, &spec.name, Utc::now()).await?;
    Ok(Status {
        job: spec.name.clone(),
        bucket: bucket.to_owned(),
        rule,
        origin: origin_url(spec)?,
        t1,
        t1_run,
        record,
        events_pending: events.iter().map(|p| p.pending.len()).sum(),
        oldest_waiting_event: events.iter().filter_map(Progress::oldest_waiting).min(),
    })
}

/// T1: the start of the job's last complete run (its watermark), and that run.
pub async fn last_complete_run(
    state: &dyn StateStore,
    job: &str,
) -> Result<(Option<DateTime<Utc>>, Option<String>), RoleError> {
    let mark: Option<serde_json::Value> = read_json(state, &layout::watermark(job)).await?;
    let field = |name: &str| {
        mark.as_ref()
            .and_then(|m| m.get(name)?.as_str())
            .map(str::to_owned)
    };
    let started = field("started")
        .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc));
    Ok((started, field("run")))
}

impl Status {
    /// A few lines for a person.
    pub fn lines(&self) -> Vec<String> {
        let at = |t: Option<DateTime<Utc>>| {
            t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        };
        let mut out = vec![match &self.rule {
            Some(rule) => format!(
                "mirror rule: on (rule {} of bucket {}): misses under {:?} are fetched from {}",
                rule.rule_number,
                self.bucket,
                rule.condition.key_prefix_equals.as_deref().unwrap_or(""),
                self.origin
            ),
            None => format!(
                "mirror rule: off (bucket {} has no rule of this job)",
                self.bucket
            ),
        }];
        out.push(match (at(self.t1), &self.t1_run) {
            (Some(t), Some(run)) => format!("T1 (start of the last complete run, {run}): {t}"),
            _ => "T1: no complete run yet — copy the history first".to_owned(),
        });
        out.push(match at(self.record.switched_at) {
            Some(t) => format!("T2 (applications switched to OSS): {t}"),
            None => "T2: not recorded (`ferry cutover switched` records it)".to_owned(),
        });
        out.push(match (self.events_pending, at(self.oldest_waiting_event)) {
            (0, _) => "events: none waiting to be copied".to_owned(),
            (n, Some(t)) => format!("events: {n} tasks waiting, the oldest event from {t}"),
            (n, None) => format!("events: {n} tasks waiting"),
        });
        out
    }
}

/// One step of the cut-over, as [`plan`] prints it.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// What the step does, in a few words.
    pub title: String,
    /// The command to run, with the job's real names.
    pub command: String,
    /// What the state says about this step already, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done: Option<String>,
}

/// The whole cut-over for this job, in order, each step as the exact command to run, marked
/// with what the state already says about it. `job_file` and `state` are as the user gave them
/// (a folder for standalone runs, `s3://…` for a deployed stack).
pub fn plan(job_file: &str, state: &str, status: &Status) -> Vec<Step> {
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (job, file, st) = (&status.job, quote(job_file), quote(state));
    let deployed = state.starts_with("s3://");
    let start = |incremental: bool| match deployed {
        false if incremental => {
            format!("ferry run {file} --state-dir {st} --incremental --overwrite if-newer")
        }
        false => format!("ferry run {file} --state-dir {st}"),
        true => format!(
            "aws lambda invoke --function-name \"$PLANNER\" --invocation-type Event \
             --cli-binary-format raw-in-base64-out --payload '{{\"job_key\": \"jobs/{job}/job.json\", \
             \"incremental\": {incremental}}}' /dev/stdout"
        ),
    };
    let final_note = match deployed {
        true => " (upload the job with \"overwrite\": \"if-newer\" first)",
        false => "",
    };
    vec![
        Step {
            title: "Copy the history; T1 is this run's start".to_owned(),
            command: start(false),
            done: status.t1.map(|t| {
                format!(
                    "T1 = {} (run {})",
                    at(t),
                    status.t1_run.as_deref().unwrap_or("?")
                )
            }),
        },
        Step {
            title: "Keep OSS current from the source's events until the switch (recommended; \
                    stop it before the switch — `--idle 60` ends it once it has caught up)"
                .to_owned(),
            command: match deployed {
                false => format!("ferry follow {file} --queue <events queue URL> --state-dir {st}"),
                true => "deploy the stack with FollowEvents=true (infra/README.md §9)".to_owned(),
            },
            done: None,
        },
        Step {
            title: format!(
                "Turn on back-to-origin: OSS fetches keys it misses from {}",
                status.origin
            ),
            command: format!("ferry cutover enable {file} --state {st}"),
            done: status.rule.as_ref().map(|r| {
                let since = status.record.enabled_at.map(at).unwrap_or_default();
                format!("rule {} is on {since}", r.rule_number)
                    .trim_end()
                    .to_owned()
            }),
        },
        Step {
            title: "Switch applications to OSS, then record T2".to_owned(),
            command: format!("ferry cutover switched {file} --state {st}"),
            done: status.record.switched_at.map(|t| format!("T2 = {}", at(t))),
        },
        Step {
            title: format!(
                "Copy what changed since T1, never replacing an object applications wrote to \
                 OSS after T2{final_note}"
            ),
            command: start(true),
            done: None,
        },
        Step {
            title: "Check the final run: exit status 0 means every object in scope is copied \
                    and verified; otherwise read its failures.csv"
                .to_owned(),
            command: format!("ferry status {job} --state {st}"),
            done: None,
        },
        Step {
            title: "Turn off back-to-origin (ferry's rule only; other rules stay)".to_owned(),
            command: format!("ferry cutover disable {file} --state {st}"),
            done: status
                .record
                .disabled_at
                .filter(|_| status.rule.is_none())
                .map(|t| format!("off since {}", at(t))),
        },
    ]
}

/// A shell word: as it is when it is plain, single-quoted otherwise.
fn quote(word: &str) -> String {
    let plain = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    match plain && !word.is_empty() {
        true => word.to_owned(),
        false => format!("'{}'", word.replace('\'', r"'\''")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> JobSpec {
        let job = serde_json::json!({
            "version": 1, "name": "photos",
            "source": { "kind": "s3", "bucket": "photos", "prefix": "2024/", "region": "eu-west-1" },
            "destination": { "bucket": "dst", "region": "cn-hangzhou", "prefix": "from-s3/" }
        });
        JobSpec::from_json(&job.to_string()).unwrap()
    }

    #[test]
    fn ferrys_rule_is_recognised_with_the_defaults_oss_fills_in() {
        let ours = mirror_rule(&spec(), 0).unwrap();
        let mut stored = mirror_rule(&spec(), 7).unwrap();
        stored.redirect.mirror_check_md5 = Some(false);
        stored.redirect.mirror_pass_query_string = Some(false);
        stored.redirect.pass_query_string = Some(false);
        stored.redirect.mirror_follow_redirect = None;
        assert!(is_ours(&stored, &ours));
        let mut other = stored.clone();
        other.redirect.mirror_url = Some("https://elsewhere.example.com/".into());
        assert!(!is_ours(&other, &ours));
        let mut narrower = stored.clone();
        narrower.condition.key_prefix_equals = Some("from-s3/2024/jpg/".into());
        assert!(!is_ours(&narrower, &ours));
    }

    #[test]
    fn plan_commands_quote_what_a_shell_would_split() {
        assert_eq!(quote("job.json"), "job.json");
        assert_eq!(quote("my jobs/it's.json"), r"'my jobs/it'\''s.json'");
        assert_eq!(quote("s3://state/prefix"), "s3://state/prefix");
    }
}
