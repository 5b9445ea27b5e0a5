//! Source events: what S3 says happened to an object, read from an events-queue message in any
//! of the shapes AWS delivers (docs/architecture.md §10).
//!
//! One SQS message body is one of:
//!
//! * an **S3 event notification** (`{"Records": [...]}`), sent by S3 to SQS directly, or
//!   through SNS with raw message delivery on;
//! * an **SNS notification** whose `Message` is such a notification (raw delivery off);
//! * an **EventBridge event** from `aws.s3` (`detail-type` "Object Created", "Object Deleted",
//!   "Object Restore Completed", …), one event per message;
//! * **`s3:TestEvent`**, which S3 sends once when notifications are configured: nothing to do.
//!
//! [`parse`] reads any of them into [`SourceEvent`]s with the key decoded: S3 and EventBridge
//! both send keys form-encoded (`a b+c.txt` arrives as `a+b%2Bc.txt`; AWS's own Lambda
//! Powertools decodes both shapes the same way). `versionId`, `size`, `eTag` and `sequencer` are
//! kept when present (moto sends no sequencer; real S3 always does). A body that is none of
//! these is a [`Poison`] message with the reason, for the dead-letter queue: never a panic,
//! never a silent skip.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use aws_lambda_events::event::sns::SnsMessage;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// What happened to the object, as far as a migration cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Written: put, post, copy, multipart upload completed.
    Created,
    /// Deleted, or hidden by a delete marker.
    Removed,
    /// A restore of an archived object completed: it can be read now.
    RestoreCompleted,
    /// Anything else S3 reports (tags, ACLs, a restore started, lifecycle transitions): no
    /// copy follows from it, but it is counted, not dropped unseen.
    Other,
}

/// One event about one object, whatever shape it came in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceEvent {
    /// What happened to the object.
    pub kind: EventKind,
    /// The event's own name: `ObjectCreated:Put`, or EventBridge's `Object Created`.
    pub name: String,
    /// The source bucket's name.
    pub bucket: String,
    /// The object key, decoded.
    pub key: String,
    /// The object's size in bytes, when the event gives it.
    pub size: Option<u64>,
    /// The object's ETag, when the event gives it.
    pub etag: Option<String>,
    /// The object's version id, on a versioned bucket.
    pub version_id: Option<String>,
    /// S3's ordering of events on one key: the later event has the greater sequencer, compared
    /// by [`sequencer_order`].
    pub sequencer: Option<String>,
    /// When the event happened, as S3 reports it.
    pub time: Option<DateTime<Utc>>,
}

/// A message that cannot be read as source events, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a source event: {0}")]
pub struct Poison(pub String);

/// Reads one events-queue message body. `Ok(vec![])` for `s3:TestEvent`.
pub fn parse(body: &str) -> Result<Vec<SourceEvent>, Poison> {
    parse_at(body, 0)
}

fn parse_at(body: &str, depth: u8) -> Result<Vec<SourceEvent>, Poison> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| Poison(format!("the body is not JSON ({e})")))?;
    let Some(fields) = value.as_object() else {
        return Err(Poison("the body is JSON but not an object".into()));
    };
    if fields.contains_key("Records") {
        let event: S3Event = serde_json::from_value(with_optional_parts(value))
            .map_err(|e| Poison(format!("an S3 event notification that does not parse: {e}")))?;
        return event.records.iter().map(from_record).collect();
    }
    if fields.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    if fields.get("Type").and_then(Value::as_str) == Some("Notification") && depth == 0 {
        let sns: SnsMessage = serde_json::from_value(value)
            .map_err(|e| Poison(format!("an SNS notification that does not parse: {e}")))?;
        return parse_at(&sns.message, depth + 1)
            .map_err(|Poison(why)| Poison(format!("the SNS notification's Message: {why}")));
    }
    if fields.contains_key("detail-type") {
        return from_eventbridge(value).map(|e| vec![e]);
    }
    let mut names: Vec<&str> = fields.keys().map(String::as_str).take(8).collect();
    names.sort_unstable();
    Err(Poison(format!(
        "an object with fields {names:?}: expected an S3 event notification (\"Records\"), an \
         SNS notification carrying one (\"Type\": \"Notification\"), an EventBridge event from \
         aws.s3 (\"detail-type\"), or s3:TestEvent"
    )))
}

/// Real S3 always sends `userIdentity` and `requestParameters`; S3-compatible stores and moto
/// leave them out, and ferry needs neither, so a record without them is read as if they were
/// empty.
fn with_optional_parts(mut value: Value) -> Value {
    if let Some(records) = value.get_mut("Records").and_then(Value::as_array_mut) {
        for record in records.iter_mut().filter_map(Value::as_object_mut) {
            for part in ["userIdentity", "requestParameters"] {
                record
                    .entry(part)
                    .or_insert_with(|| Value::Object(Default::default()));
            }
        }
    }
    value
}

fn from_record(record: &S3EventRecord) -> Result<SourceEvent, Poison> {
    let source = record.event_source.as_deref().unwrap_or("");
    if source != "aws:s3" {
        return Err(Poison(format!("a record from {source:?}, not from aws:s3")));
    }
    let name = record.event_name.clone().unwrap_or_default();
    let kind = match name.split(':').next().unwrap_or("") {
        "ObjectCreated" => EventKind::Created,
        "ObjectRemoved" | "LifecycleExpiration" => EventKind::Removed,
        "ObjectRestore" if name == "ObjectRestore:Completed" => EventKind::RestoreCompleted,
        "" => return Err(Poison("a record without an eventName".into())),
        _ => EventKind::Other,
    };
    let object = &record.s3.object;
    let raw_key = object
        .key
        .as_deref()
        .ok_or_else(|| Poison(format!("a {name} record without an object key")))?;
    Ok(SourceEvent {
        kind,
        bucket: named_bucket(record.s3.bucket.name.as_deref(), &name)?,
        key: decode_key(raw_key)?,
        size: object.size.and_then(|s| u64::try_from(s).ok()),
        etag: object.e_tag.clone().filter(|e| !e.is_empty()),
        version_id: object.version_id.clone().filter(|v| !v.is_empty()),
        sequencer: object.sequencer.clone().filter(|s| !s.is_empty()),
        time: Some(record.event_time),
        name,
    })
}

/// The `detail` of an EventBridge event from `aws.s3`.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct BridgeDetail {
    bucket: BridgeBucket,
    object: BridgeObject,
}

#[derive(Deserialize)]
struct BridgeBucket {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct BridgeObject {
    key: String,
    size: Option<u64>,
    #[serde(alias = "eTag")]
    etag: Option<String>,
    version_id: Option<String>,
    sequencer: Option<String>,
}

fn from_eventbridge(mut value: Value) -> Result<SourceEvent, Poison> {
    // EventBridge sends `time` as RFC 3339; moto sends seconds since the epoch.
    if let Some(time) = value.get_mut("time")
        && let Some(seconds) = time.as_f64()
        && let Some(at) = DateTime::<Utc>::from_timestamp(seconds as i64, 0)
    {
        *time = Value::String(at.to_rfc3339());
    }
    let event: EventBridgeEvent<Value> = serde_json::from_value(value)
        .map_err(|e| Poison(format!("an EventBridge event that does not parse: {e}")))?;
    if event.source != "aws.s3" {
        let source = &event.source;
        return Err(Poison(format!(
            "an EventBridge event from {source:?}, not from aws.s3"
        )));
    }
    let name = event.detail_type;
    let detail: BridgeDetail = serde_json::from_value(event.detail).map_err(|e| {
        Poison(format!(
            "an EventBridge {name:?} event whose detail does not parse: {e}"
        ))
    })?;
    let kind = match name.as_str() {
        "Object Created" => EventKind::Created,
        "Object Deleted" => EventKind::Removed,
        "Object Restore Completed" => EventKind::RestoreCompleted,
        _ => EventKind::Other,
    };
    let object = detail.object;
    Ok(SourceEvent {
        kind,
        bucket: named_bucket(Some(&detail.bucket.name), &name)?,
        key: decode_key(&object.key)?,
        size: object.size,
        etag: object.etag.filter(|e| !e.is_empty()),
        version_id: object.version_id.filter(|v| !v.is_empty()),
        sequencer: object.sequencer.filter(|s| !s.is_empty()),
        time: event.time,
        name,
    })
}

fn named_bucket(name: Option<&str>, event: &str) -> Result<String, Poison> {
    match name {
        Some(name) if !name.is_empty() => Ok(name.to_owned()),
        _ => Err(Poison(format!("a {event} event without a bucket name"))),
    }
}

/// Decodes a key as S3 encodes it in events: form encoding, so `+` is a space and `%2B` a plus.
pub fn decode_key(raw: &str) -> Result<String, Poison> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|_| Poison(format!("the key {raw:?} does not decode to UTF-8")))
}

/// Orders two sequencers of events on the same key: S3's are hex strings of varying length,
/// compared after left-padding the shorter with zeros (S3's documented rule).
pub fn sequencer_order(a: &str, b: &str) -> std::cmp::Ordering {
    let width = a.len().max(b.len());
    let pad = |s: &str| format!("{s:0>width$}").to_ascii_uppercase();
    pad(a).cmp(&pad(b))
}

#[cfg(test)]
mod tests;
