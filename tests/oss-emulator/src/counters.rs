//! Request counters, so tests can assert how many calls a client made (retries, resumed
//! uploads, skipped objects): per operation, per status, per (bucket, key, operation), and how
//! many injected faults fired.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A point-in-time copy of the counters (the JSON of `GET /-/admin/counters`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterSnapshot {
    /// Every request that was routed to an operation (admin requests are not counted).
    pub total: u64,
    /// Requests per operation name (`PutObject`, `UploadPart`, …).
    pub by_operation: BTreeMap<String, u64>,
    /// Responses per HTTP status code (`"reset"` counts connections dropped by a fault).
    pub by_status: BTreeMap<String, u64>,
    /// Responses per operation, then per status.
    pub by_operation_status: BTreeMap<String, BTreeMap<String, u64>>,
    /// Injected faults that fired, per operation.
    pub faults_injected: BTreeMap<String, u64>,
    /// Requests per (bucket, key, operation); `bucket`/`key` are null for service- or
    /// bucket-level requests.
    pub by_object: Vec<ObjectCount>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectCount {
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub operation: String,
    pub count: u64,
}

impl CounterSnapshot {
    /// Requests for one operation (0 if none).
    pub fn operation(&self, op: &str) -> u64 {
        self.by_operation.get(op).copied().unwrap_or(0)
    }

    /// Requests for one operation on one object.
    pub fn object(&self, bucket: &str, key: &str, op: &str) -> u64 {
        self.by_object
            .iter()
            .filter(|c| {
                c.bucket.as_deref() == Some(bucket)
                    && c.key.as_deref() == Some(key)
                    && c.operation == op
            })
            .map(|c| c.count)
            .sum()
    }

    /// Responses of one operation with one status.
    pub fn status(&self, op: &str, status: u16) -> u64 {
        self.by_operation_status
            .get(op)
            .and_then(|m| m.get(&status.to_string()))
            .copied()
            .unwrap_or(0)
    }

    pub fn faults(&self, op: &str) -> u64 {
        self.faults_injected.get(op).copied().unwrap_or(0)
    }
}

type ObjectKey = (Option<String>, Option<String>, String);

#[derive(Default)]
struct Data {
    total: u64,
    by_operation: BTreeMap<String, u64>,
    by_status: BTreeMap<String, u64>,
    by_operation_status: BTreeMap<String, BTreeMap<String, u64>>,
    faults_injected: BTreeMap<String, u64>,
    by_object: BTreeMap<ObjectKey, u64>,
}

#[derive(Default)]
pub struct Counters {
    data: Mutex<Data>,
}

impl Counters {
    fn lock(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn request(&self, op: &str, bucket: Option<&str>, key: Option<&str>) {
        let mut d = self.lock();
        d.total += 1;
        *d.by_operation.entry(op.to_owned()).or_default() += 1;
        let k = (
            bucket.map(str::to_owned),
            key.map(str::to_owned),
            op.to_owned(),
        );
        *d.by_object.entry(k).or_default() += 1;
    }

    /// Records an outcome: a status code, or `reset` for a dropped connection.
    pub fn response(&self, op: &str, outcome: &str) {
        let mut d = self.lock();
        *d.by_status.entry(outcome.to_owned()).or_default() += 1;
        *d.by_operation_status
            .entry(op.to_owned())
            .or_default()
            .entry(outcome.to_owned())
            .or_default() += 1;
    }

    pub fn fault(&self, op: &str) {
        *self
            .lock()
            .faults_injected
            .entry(op.to_owned())
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        let d = self.lock();
        CounterSnapshot {
            total: d.total,
            by_operation: d.by_operation.clone(),
            by_status: d.by_status.clone(),
            by_operation_status: d.by_operation_status.clone(),
            faults_injected: d.faults_injected.clone(),
            by_object: d
                .by_object
                .iter()
                .map(|((bucket, key, operation), count)| ObjectCount {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    operation: operation.clone(),
                    count: *count,
                })
                .collect(),
        }
    }

    pub fn reset(&self) {
        *self.lock() = Data::default();
    }
}
