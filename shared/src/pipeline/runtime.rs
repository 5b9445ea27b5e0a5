//! What every role needs for a (job, run): the job spec as submitted, the run manifest, and live
//! connections — loaded from the state store once per process and cached, because a Lambda
//! sandbox handles many messages of the same run.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::message::ShardTask;
use super::{Ports, RoleError, layout};
use crate::deploy::connect::{Connected, Secrets, connect};
use crate::job::{JobSpec, Mode};
use crate::source::ObjectInfo;

/// What a run copies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// What a listing of the source finds: the planner's runs.
    #[default]
    Listing,
    /// What the source's events name: a job's event run for one day (see `intake`).
    Events,
}

impl RunKind {
    fn is_listing(&self) -> bool {
        *self == RunKind::Listing
    }
}

/// `manifest.json`: what a run is, fixed when it is created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest format version.
    pub v: u32,
    /// The job's name.
    pub job: String,
    /// The run's id.
    pub run: String,
    /// When the run was created.
    pub started: DateTime<Utc>,
    /// What the run copies: a listing of the source (the default) or the source's events.
    #[serde(default, skip_serializing_if = "RunKind::is_listing")]
    pub kind: RunKind,
    /// Incremental runs copy only objects modified at or after this time (the previous
    /// complete run's start, minus an overlap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Incremental runs: the previous run's `carry.json` (its failed and needs-restore keys),
    /// tried again in this run whatever their age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried: Option<String>,
    /// A retry (`ferry retry`): only the carried keys are in scope; nothing is listed, and the
    /// job's watermark does not move (the run covered a few keys, not the source).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keys_only: bool,
    /// The carried keys are a key list the user gave (not a retried run's failures): a key
    /// not at the source is failed, not skipped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub key_list: bool,
    /// The first task: planning.
    pub root: ShardTask,
}

/// `carry.json`: keys carried from one incremental run into the next.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carry {
    /// The source keys to try again in the next run.
    pub keys: Vec<String>,
}

/// A run, ready to work on.
pub struct RunHandle {
    /// The run's `manifest.json`.
    pub manifest: Manifest,
    /// The run's job spec and its open connections to source and destination.
    pub connected: Connected,
    /// The keys carried into this run: its own `Keys` tasks count them, so its listings
    /// pass over them.
    pub carried: std::collections::HashSet<String>,
}

impl RunHandle {
    /// The job spec the run was started with.
    pub fn spec(&self) -> &JobSpec {
        &self.connected.spec
    }

    /// An event run: its keys come from the source's events, not from a listing.
    pub fn is_events(&self) -> bool {
        self.manifest.kind == RunKind::Events
    }

    /// Whether the job only compares source and destination (`mode: audit`), copying nothing.
    pub fn is_audit(&self) -> bool {
        self.spec().mode == Mode::Audit
    }

    /// Whether a listed object is in the run's scope: the job's filters, and for incremental
    /// runs the time window.
    pub fn in_scope(&self, object: &ObjectInfo) -> bool {
        let recent = match (self.manifest.since, object.last_modified) {
            (Some(since), Some(modified)) => modified >= since,
            _ => true,
        };
        recent && self.spec().matches(object)
    }

    /// Whether a listed key is counted by this run's carried-keys tasks instead.
    pub fn is_carried(&self, key: &str) -> bool {
        self.carried.contains(key)
    }
}

/// Ports, secrets, and a cache of open runs.
pub struct Runtime {
    /// The state store and the two queues the roles work through.
    pub ports: Ports,
    /// Fetches the secrets a job names (Secrets Manager in distributed mode).
    pub secrets: Arc<dyn Secrets>,
    runs: Mutex<HashMap<(String, String), Arc<RunHandle>>>,
}

impl Runtime {
    /// A runtime with no run open yet.
    pub fn new(ports: Ports, secrets: Arc<dyn Secrets>) -> Self {
        Runtime {
            ports,
            secrets,
            runs: Mutex::new(HashMap::new()),
        }
    }

    /// The run, loaded and connected on first use.
    pub async fn run(&self, job: &str, run: &str) -> Result<Arc<RunHandle>, RoleError> {
        let key = (job.to_owned(), run.to_owned());
        let mut runs = self.runs.lock().await;
        if let Some(handle) = runs.get(&key) {
            return Ok(handle.clone());
        }
        let handle = Arc::new(self.open(job, run).await?);
        runs.insert(key, handle.clone());
        Ok(handle)
    }

    /// The job as the run was started with it, without connecting to anything: what a role
    /// needs to describe a run whose connections cannot be opened. Runs recorded before jobs
    /// were pinned per run fall back to the job's job.json.
    pub async fn spec(&self, job: &str, run: &str) -> Result<JobSpec, RoleError> {
        let state = self.ports.state.as_ref();
        let text = match state.get(&layout::run_job(job, run)).await? {
            Some(pinned) => pinned,
            None => state
                .get(&layout::job(job))
                .await?
                .ok_or_else(|| RoleError::config(format!("job {job} has no job.json")))?,
        };
        let text = String::from_utf8_lossy(&text.body).into_owned();
        JobSpec::from_json(&text)
            .map_err(|e| RoleError::config(format!("stored job.json of {job}: {e}")))
    }

    async fn open(&self, job: &str, run: &str) -> Result<RunHandle, RoleError> {
        let state = &self.ports.state;
        let manifest: Manifest = read_json(state.as_ref(), &layout::manifest(job, run))
            .await?
            .ok_or_else(|| {
                RoleError::config(format!(
                    "run {run} of job {job} has no manifest in {}: start runs with the planner",
                    state.describe()
                ))
            })?;
        let spec = self.spec(job, run).await?;
        let carried = match &manifest.carried {
            Some(key) => read_json::<Carry>(state.as_ref(), key)
                .await?
                .ok_or_else(|| RoleError::config(format!("{key} is missing")))?
                .keys
                .into_iter()
                .collect(),
            None => Default::default(),
        };
        let connected = connect(spec, run, state.clone(), self.secrets.clone()).await?;
        Ok(RunHandle {
            manifest,
            connected,
            carried,
        })
    }
}

/// Reads and parses a JSON document, `None` when absent.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    state: &dyn crate::state::StateStore,
    key: &str,
) -> Result<Option<T>, RoleError> {
    match state.get(key).await? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(&v.body)
            .map(Some)
            .map_err(|e| RoleError::config(format!("{key} in {}: {e}", state.describe()))),
    }
}
