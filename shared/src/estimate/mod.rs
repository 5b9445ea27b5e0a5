//! Before a run: how long it takes, how many functions it needs, how many requests it makes
//! and what it costs — `ferry estimate job.json`.
//!
//! OssImport sizes a fleet with X / Y / (Z / 100): data, days, and what one instance moves.
//! Here Z is what one transfer function moves ([`table::Throughput`]: a request's time per
//! object or part, and a bandwidth per MiB), and the answer also
//! respects the limits no number of functions can pass: OSS's requests per second on one
//! bucket, and S3's GET rate per prefix.
//!
//! The request counts follow what ferry does, object by object (docs/estimate.md has the
//! table): a small object is one source GET (its headers describe it), one PutObject and the
//! verifier's HEAD; a large one is a source HEAD, a ranged GET per part, InitiateMultipartUpload,
//! a part upload per part, CompleteMultipartUpload and the HEAD; an OSS → OSS copy on one
//! service moves no bytes through ferry (HEAD + CopyObject, or UploadPartCopy per part). Each
//! range is listed on both sides, one page per 1,000 keys. In distributed mode each task adds
//! queue messages and state writes, and each function second is billed.

pub mod table;
pub mod workload;

use serde::Serialize;

use crate::job::{EndpointKind, JobSpec, SourceSpec};
use table::{Table, tiered};
use workload::Workload;

/// Where and how wide the run goes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fleet {
    /// Lambda functions (distributed) or one `ferry run` process (standalone).
    pub distributed: bool,
    /// Transfer functions at once (the template's `TransferMaxConcurrency`), or processes.
    pub functions: u32,
    /// Memory of each function, MB (the template's parameters).
    pub transfer_memory_mb: u32,
    /// Verifier memory, MB.
    pub verifier_memory_mb: u32,
    /// Planner memory, MB.
    pub planner_memory_mb: u32,
    /// Result messages per verifier invocation (`VerifierBatchSize`).
    pub verifier_batch: u32,
}

impl Fleet {
    /// The SAM template's defaults.
    pub fn lambda() -> Fleet {
        Fleet {
            distributed: true,
            functions: 50,
            transfer_memory_mb: 1769,
            verifier_memory_mb: 512,
            planner_memory_mb: 1024,
            verifier_batch: 10,
        }
    }

    /// One `ferry run` process: no functions, queues or state bucket to pay for.
    pub fn standalone() -> Fleet {
        Fleet {
            distributed: false,
            functions: 1,
            ..Fleet::lambda()
        }
    }
}

/// Requests a run makes, by side and kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Requests {
    /// Source listings (the planner's probes and each range's pages).
    pub source_list: u64,
    /// Source HEADs (large and archived objects, server-side copies).
    pub source_head: u64,
    /// S3 GetObjectTagging calls for the objects described by HEAD (`fetch_tags`); objects a
    /// GET describes cost one only when they have tags.
    pub source_tagging: u64,
    /// Source GETs (whole small objects, one ranged GET per part).
    pub source_get: u64,
    /// Destination listings (change detection, per range).
    pub oss_list: u64,
    /// Destination writes: PutObject, multipart calls, CopyObject, UploadPartCopy.
    pub oss_put: u64,
    /// Destination HEADs (the verifier's proof of each copy).
    pub oss_head: u64,
    /// State bucket writes and reads (distributed mode).
    pub state_put: u64,
    /// State bucket reads.
    pub state_get: u64,
    /// SQS requests: sends, receives (with idle long polls) and deletes.
    pub sqs: u64,
    /// Lambda invocations of all three functions.
    pub lambda_invocations: u64,
}

impl Requests {
    /// Everything the destination bucket answers (its request-rate limit counts these).
    pub fn oss_total(&self) -> u64 {
        self.oss_list + self.oss_put + self.oss_head
    }
}

/// Which limit sets the wall time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// The functions themselves: more of them finish sooner.
    Functions,
    /// OSS's requests per second on the destination bucket.
    OssRequestRate,
    /// S3's GET/HEAD rate per prefix on the source.
    SourceRequestRate,
}

/// What it takes to finish within a number of days.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Deadline {
    /// The days asked for.
    pub days: f64,
    /// Functions needed, or none when no number of functions can make it.
    pub functions: Option<u32>,
    /// Why not, or what else to know (quota, too few tasks).
    pub note: Option<String>,
}

/// The cost, by line, in the table's currency. `None` is a quantity the table has no price for.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Cost {
    /// Lambda compute: the GB-seconds billed.
    pub lambda_compute: f64,
    /// Lambda invocations of the three functions.
    pub lambda_requests: f64,
    /// SQS requests of both queues.
    pub sqs: f64,
    /// Source requests (at the source's prices) and the state bucket's.
    pub source_and_state_requests: Option<f64>,
    /// Reading the source's bytes out of its cloud.
    pub source_egress: Option<f64>,
    /// Destination requests (PUT-type and GET-type).
    pub oss_requests: f64,
    /// OSS storage while the run fills the bucket (half the data for the run's length).
    pub oss_storage_during_run: f64,
    /// The sum of the priced lines.
    pub total: f64,
    /// OSS storage per month once everything is there (not in `total`).
    pub oss_storage_per_month: f64,
}

/// The estimate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// What the run copies.
    pub workload: Workload,
    /// Where it runs.
    pub fleet: Fleet,
    /// The table's `as_of`: where the prices come from.
    pub prices_as_of: String,
    /// The currency of every cost.
    pub currency: String,
    /// Requests by side and kind.
    pub requests: Requests,
    /// Transfer tasks (one range each; a range longer than a task's key budget hands on).
    pub tasks: u64,
    /// Seconds of transfer work (function-seconds in distributed mode).
    pub transfer_seconds: f64,
    /// Seconds of verifier work.
    pub verifier_seconds: f64,
    /// Seconds of planner work.
    pub planner_seconds: f64,
    /// Lambda GB-seconds billed (0 standalone).
    pub gb_seconds: f64,
    /// Wall time with `fleet.functions` at once.
    pub wall_seconds: f64,
    /// Which limit sets the wall time.
    pub bound: Bound,
    /// What finishing within `--days` takes.
    pub deadline: Option<Deadline>,
    /// The cost, by line.
    pub cost: Cost,
    /// What the figures leave out or assume.
    pub notes: Vec<String>,
}

/// Estimates a run of `spec` over `work` with `fleet`, from `table`; `days` asks what it takes
/// to finish within that many days.
pub fn estimate(
    spec: &JobSpec,
    work: &Workload,
    fleet: &Fleet,
    table: &Table,
    days: Option<f64>,
) -> Estimate {
    let server_side = spec.server_side_source().is_some();
    let tasks = tasks(spec, work);
    let mut requests = object_requests(spec, work, fleet, server_side, tasks);
    let (transfer_seconds, verifier_seconds, planner_seconds) =
        work_seconds(work, &requests, table);
    let functions = fleet
        .functions
        .clamp(1, table.limits.lambda_concurrency_per_account.max(1));
    let (wall_seconds, bound) = wall(
        spec,
        work,
        &requests,
        table,
        transfer_seconds,
        functions,
        tasks,
    );
    let mut notes = Vec::new();
    let mut gb_seconds = 0.0;
    if fleet.distributed {
        add_pipeline_requests(&mut requests, work, fleet, table, tasks, wall_seconds);
        gb_seconds = (transfer_seconds * f64::from(fleet.transfer_memory_mb)
            + verifier_seconds * f64::from(fleet.verifier_memory_mb)
            + planner_seconds * f64::from(fleet.planner_memory_mb))
            / 1024.0;
    }
    let deadline = days.map(|d| deadline(d, spec, work, &requests, table, transfer_seconds, tasks));
    let cost = cost(
        spec,
        work,
        fleet,
        table,
        &requests,
        gb_seconds,
        wall_seconds,
        server_side,
        &mut notes,
    );
    notes.extend(assumptions(work, tasks, functions, fleet));
    Estimate {
        workload: work.clone(),
        fleet: fleet.clone(),
        prices_as_of: table.as_of.clone(),
        currency: table.currency.clone(),
        requests,
        tasks,
        transfer_seconds,
        verifier_seconds,
        planner_seconds,
        gb_seconds,
        wall_seconds,
        bound,
        deadline,
        cost,
        notes,
    }
}

/// Transfer tasks: as the listing counted them, or one per key and byte budget.
fn tasks(spec: &JobSpec, work: &Workload) -> u64 {
    if let Some(tasks) = work.tasks {
        return tasks.max(1);
    }
    let sharding = &spec.sharding;
    let by_keys = work.objects().div_ceil(sharding.max_keys_per_shard.max(1));
    let by_bytes = work
        .bytes()
        .div_ceil(sharding.max_bytes_per_shard.bytes().max(1));
    work.ranges.unwrap_or(0).max(by_keys).max(by_bytes).max(1)
}

/// Source and destination requests, object by object.
fn object_requests(
    spec: &JobSpec,
    work: &Workload,
    fleet: &Fleet,
    server_side: bool,
    tasks: u64,
) -> Requests {
    let (small, large, parts) = (work.small.objects, work.large.objects, work.parts);
    // Without a measured listing: a page per 1,000 keys, a last page per range, the planner's
    // root listing.
    let source_list = work
        .list_requests
        .unwrap_or_else(|| work.objects().div_ceil(1000) + tasks + 1);
    let mut r = Requests {
        source_list,
        // Large objects are described before their parts are read; archived ones are found
        // out by HEAD (a listing does not say whether a restore is done).
        source_head: large + work.archived.objects,
        source_get: small + parts,
        // A fresh destination: one (empty) page per task, the end's sweep for abandoned
        // uploads, and a standalone run's reading of OSS's clock.
        oss_list: tasks + 1 + u64::from(!fleet.distributed),
        oss_put: small + large * 2 + parts,
        oss_head: small + large,
        ..Requests::default()
    };
    if server_side {
        // HEAD for the source's CRC-64, then CopyObject (small) or UploadPartCopy per part.
        r.source_head += small;
        r.source_get = 0;
    }
    if let SourceSpec::S3(s3) = &spec.source
        && s3.fetch_tags
    {
        r.source_tagging = r.source_head;
    }
    r
}

/// Seconds of work for the transfer functions, the verifier and the planner: each object,
/// part and archived HEAD costs a request's time, each MiB the bandwidth's, each listing page
/// its own.
fn work_seconds(work: &Workload, requests: &Requests, table: &Table) -> (f64, f64, f64) {
    let t = &table.throughput;
    let mib = work.copied().bytes as f64 / (1u64 << 20) as f64;
    let calls = work.small.objects + work.parts + work.archived.objects;
    let pages = requests.source_list + requests.oss_list;
    let transfer = calls as f64 / t.small_objects_per_second
        + mib / t.mib_per_second
        + pages as f64 / t.listing_pages_per_second;
    let verifier = work.copied().objects as f64 / t.verifier_objects_per_second;
    // The planner reads at most a few pages per range it cuts.
    let planner = (work.ranges.unwrap_or(1) as f64 / t.listing_pages_per_second).max(1.0);
    (transfer, verifier, planner)
}

/// The seconds no number of functions can beat: OSS's and S3's request rates.
fn ceilings(spec: &JobSpec, work: &Workload, requests: &Requests, table: &Table) -> (f64, f64) {
    let oss = requests.oss_total() as f64 / table.limits.oss_requests_per_second_per_bucket;
    let source = match spec.source {
        SourceSpec::S3(_) => {
            (requests.source_get + requests.source_head + requests.source_tagging) as f64
                / (table.limits.s3_get_per_second_per_prefix * work.top_prefixes.max(1) as f64)
        }
        SourceSpec::Oss(_) => 0.0,
    };
    (oss, source)
}

fn wall(
    spec: &JobSpec,
    work: &Workload,
    requests: &Requests,
    table: &Table,
    transfer_seconds: f64,
    functions: u32,
    tasks: u64,
) -> (f64, Bound) {
    // A task is one function's work at a time: more functions than tasks sit idle.
    let busy = u64::from(functions).min(tasks.max(1)) as f64;
    let by_functions = transfer_seconds / busy;
    let (oss, source) = ceilings(spec, work, requests, table);
    [
        (by_functions, Bound::Functions),
        (oss, Bound::OssRequestRate),
        (source, Bound::SourceRequestRate),
    ]
    .into_iter()
    .fold((0.0, Bound::Functions), |best, (s, b)| {
        if s > best.0 { (s, b) } else { best }
    })
}

/// Queue messages, state reads and writes, and invocations of distributed mode.
fn add_pipeline_requests(
    r: &mut Requests,
    work: &Workload,
    fleet: &Fleet,
    table: &Table,
    tasks: u64,
    wall_seconds: f64,
) {
    let verifier_calls = tasks.div_ceil(u64::from(fleet.verifier_batch.max(1)));
    // Work queue: send, receive, delete per task; results queue: a send per task, a receive
    // and a batch delete per verifier call; both queues long-polled while the run lasts.
    let idle_polls =
        (2.0 * table.limits.sqs_receive_polls_per_queue_per_second * wall_seconds) as u64;
    r.sqs = 3 * tasks + tasks + 2 * verifier_calls + idle_polls;
    // Per task: its result record, and the job and run manifest read; per verifier call: the
    // progress document read and written; per multipart upload: its ledger entry written and
    // cleared; at the end: the report, failures and summary.
    r.state_put = tasks + verifier_calls + 2 * work.large.objects + 3;
    r.state_get = 2 * tasks + verifier_calls;
    r.lambda_invocations = 1 + tasks + verifier_calls;
}

fn deadline(
    days: f64,
    spec: &JobSpec,
    work: &Workload,
    requests: &Requests,
    table: &Table,
    transfer_seconds: f64,
    tasks: u64,
) -> Deadline {
    let seconds = days * 86_400.0;
    let (oss, source) = ceilings(spec, work, requests, table);
    if oss > seconds || source > seconds {
        let (what, limit) = if oss >= source {
            ("OSS's requests per second on one bucket", oss)
        } else {
            ("S3's GET rate per prefix on the source", source)
        };
        return Deadline {
            days,
            functions: None,
            note: Some(format!(
                "not possible: {what} alone needs {:.1} days",
                limit / 86_400.0
            )),
        };
    }
    let needed = (transfer_seconds / seconds).ceil().max(1.0) as u64;
    let quota = u64::from(table.limits.lambda_concurrency_per_account);
    let note = if needed > tasks {
        Some(format!(
            "the run has about {tasks} tasks, fewer than the {needed} functions: lower \
             sharding.max_keys_per_shard so each function has work"
        ))
    } else if needed > quota {
        Some(format!(
            "more than the account's Lambda concurrency quota ({quota}): ask AWS for more"
        ))
    } else {
        None
    };
    Deadline {
        days,
        functions: Some(needed.min(u64::from(u32::MAX)) as u32),
        note,
    }
}

#[allow(clippy::too_many_arguments)]
fn cost(
    spec: &JobSpec,
    work: &Workload,
    fleet: &Fleet,
    table: &Table,
    r: &Requests,
    gb_seconds: f64,
    wall_seconds: f64,
    server_side: bool,
    notes: &mut Vec<String>,
) -> Cost {
    let p = &table.prices;
    const GIB: f64 = (1u64 << 30) as f64;
    let read_gib = work.copied().bytes as f64 / GIB;
    let state = if fleet.distributed {
        r.state_put as f64 / 1000.0 * p.s3_put_list_per_1000
            + r.state_get as f64 / 1000.0 * p.s3_get_head_per_1000
    } else {
        0.0
    };
    let source_reads = (r.source_head + r.source_get + r.source_tagging) as f64;
    let (source_requests, source_egress) = match &spec.source {
        SourceSpec::S3(s3) if s3.endpoint.is_none() => (
            Some(
                r.source_list as f64 / 1000.0 * p.s3_put_list_per_1000
                    + source_reads / 1000.0 * p.s3_get_head_per_1000,
            ),
            Some(tiered(&p.s3_egress_tiers, read_gib)),
        ),
        SourceSpec::S3(_) => {
            if p.other_egress_per_gib.is_none() {
                notes.push(
                    "the S3-compatible source's requests and egress are not priced: set \
                     prices.other_egress_per_gib for its egress"
                        .to_owned(),
                );
            }
            (None, p.other_egress_per_gib.map(|g| g * read_gib))
        }
        SourceSpec::Oss(oss) => {
            let free = server_side || oss.endpoint_kind == Some(EndpointKind::Internal);
            (
                Some((r.source_list as f64 + source_reads) / 10_000.0 * p.oss_get_per_10000),
                Some(if free {
                    0.0
                } else {
                    p.oss_egress_per_gib * read_gib
                }),
            )
        }
    };
    let stored_gib = work.copied().bytes as f64 / GIB;
    let mut c = Cost {
        lambda_compute: gb_seconds * p.lambda_gb_second,
        lambda_requests: r.lambda_invocations as f64 / 1e6 * p.lambda_per_million_requests,
        sqs: r.sqs as f64 / 1e6 * p.sqs_per_million_requests,
        source_and_state_requests: source_requests.map(|s| s + state),
        source_egress,
        oss_requests: r.oss_put as f64 / 10_000.0 * p.oss_put_per_10000
            + (r.oss_list + r.oss_head) as f64 / 10_000.0 * p.oss_get_per_10000,
        oss_storage_during_run: stored_gib
            * p.oss_storage_per_gib_month
            * (wall_seconds / (30.0 * 86_400.0))
            / 2.0,
        total: 0.0,
        oss_storage_per_month: stored_gib * p.oss_storage_per_gib_month,
    };
    if c.source_and_state_requests.is_none() && state > 0.0 {
        c.source_and_state_requests = Some(state);
    }
    c.total = c.lambda_compute
        + c.lambda_requests
        + c.sqs
        + c.source_and_state_requests.unwrap_or(0.0)
        + c.source_egress.unwrap_or(0.0)
        + c.oss_requests
        + c.oss_storage_during_run;
    c
}

/// What the figures assume, in words a user can act on.
fn assumptions(work: &Workload, tasks: u64, functions: u32, fleet: &Fleet) -> Vec<String> {
    let mut notes = vec![
        "a destination that already holds objects adds a listing page per 1,000 of them, \
         small objects with tags one tagging request each, and `ferry run` in a terminal \
         one more listing of the source for its progress bar"
            .to_owned(),
    ];
    if work.list_requests.is_none() {
        notes.push(
            "listings are estimated (a page per 1,000 keys and per range); --from-listing \
             counts them"
                .to_owned(),
        );
    }
    if work.archived.objects > 0 {
        notes.push(format!(
            "{} archived objects are reported needs-restore and copied only after a restore \
             (restore requests and their fees are not included)",
            work.archived.objects
        ));
    }
    if fleet.distributed && tasks < u64::from(functions) {
        notes.push(format!(
            "only about {tasks} tasks for {functions} functions: the rest sit idle (lower \
             sharding.max_keys_per_shard to spread the work)"
        ));
    }
    notes
}
