//! The admin API: unsigned JSON endpoints under `/-/admin/` on the server's own port, for test
//! setup and inspection. Bucket names cannot start with `-`, so these paths never collide with
//! a path-style bucket; virtual-hosted requests never reach them. The routes are documented in
//! the crate documentation.

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;

use crate::body::{self, Body};
use crate::faults::FaultRule;
use crate::ops::bucket::validate_bucket_name;
use crate::reply::Reply;
use crate::state::{AccessKey, State};
use crate::store::model::{BucketInfo, StorageClass};

const MAX_ADMIN_BODY: usize = 64 * 1024;

fn json_reply(status: u16, value: serde_json::Value) -> Response<Body> {
    let text = value.to_string();
    Reply::new(status)
        .header("content-type", "application/json")
        .header("content-length", text.len().to_string())
        .body(body::full(text))
}

/// A failed admin request: status and a message naming the problem.
struct AdminError(u16, String);

fn error(status: u16, message: impl Into<String>) -> AdminError {
    AdminError(status, message.into())
}

fn error_reply(e: AdminError) -> Response<Body> {
    json_reply(e.0, json!({ "error": e.1 }))
}

fn no_content() -> Response<Body> {
    Reply::new(204).empty()
}

async fn read_body(req: Request<Incoming>) -> Result<bytes::Bytes, AdminError> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_ADMIN_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => Err(error(400, format!("could not read the request body: {e}"))),
    }
}

fn parse_json<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, AdminError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| error(400, format!("invalid JSON body: {e}")))
}

#[derive(Deserialize, Default)]
struct SeedBody {
    seed: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BucketBody {
    storage_class: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    restore_delay_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    offset_ms: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CredentialsBody {
    access_key_id: String,
    access_key_secret: String,
}

/// Handles one admin request.
pub async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req
        .uri()
        .path()
        .trim_start_matches("/-/admin")
        .trim_matches('/')
        .to_owned();
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(e) => return error_reply(e),
    };
    route(state, &method, &segs, &body).unwrap_or_else(error_reply)
}

fn route(
    state: &State,
    method: &Method,
    segs: &[&str],
    body: &[u8],
) -> Result<Response<Body>, AdminError> {
    Ok(match (method.clone(), segs) {
        (Method::GET, ["health"]) => json_reply(200, json!({ "status": "ok" })),
        (Method::GET, ["counters"]) => json_reply(200, json!(state.counters.snapshot())),
        (Method::DELETE, ["counters"]) => {
            state.counters.reset();
            no_content()
        }
        (Method::GET, ["faults"]) => json_reply(
            200,
            json!({ "seed": state.faults.seed(), "faults": state.faults.list() }),
        ),
        (Method::POST, ["faults"]) => {
            let rule: FaultRule = serde_json::from_slice(body)
                .map_err(|e| error(400, format!("invalid fault rule: {e}")))?;
            let id = state
                .faults
                .add(rule)
                .map_err(|e| error(400, e.to_string()))?;
            json_reply(201, json!({ "id": id }))
        }
        (Method::DELETE, ["faults"]) => {
            state.faults.clear();
            no_content()
        }
        (Method::PUT, ["faults", "seed"]) => {
            let b: SeedBody = parse_json(body)?;
            let seed = b.seed.ok_or_else(|| error(400, "send {\"seed\": <u64>}"))?;
            state.faults.set_seed(seed);
            no_content()
        }
        (Method::DELETE, ["faults", id]) => {
            let id: u64 = id
                .parse()
                .map_err(|_| error(400, format!("fault id '{id}' is not a number")))?;
            if !state.faults.remove(id) {
                return Err(error(404, format!("no fault rule with id {id}")));
            }
            no_content()
        }
        (Method::GET, ["buckets"]) => {
            let names: Vec<String> = state.store.buckets().into_iter().map(|b| b.name).collect();
            json_reply(200, json!({ "buckets": names }))
        }
        (Method::PUT, ["buckets", name]) => create_bucket(state, name, body)?,
        (Method::DELETE, ["buckets", name]) => {
            state
                .store
                .delete_bucket(name, true)
                .map_err(|e| error(e.status.as_u16(), e.message))?;
            no_content()
        }
        (Method::GET, ["config"]) => json_reply(
            200,
            json!({
                "region": state.config.region,
                "endpoint": format!("http://{}", state.addr),
                "storage": if state.store.is_disk() { "disk" } else { "memory" },
                "restore_delay_ms": state.restore_delay().as_millis() as u64,
                "clock_offset_ms": state.clock_offset().num_milliseconds(),
            }),
        ),
        (Method::PUT, ["config"]) => {
            let b: ConfigBody = parse_json(body)?;
            if let Some(ms) = b.restore_delay_ms {
                state.set_restore_delay(std::time::Duration::from_millis(ms));
            }
            no_content()
        }
        (Method::GET, ["clock"]) => json_reply(200, clock_json(state)),
        (Method::PUT, ["clock"]) => {
            let b: ClockBody = parse_json(body)?;
            let offset = b
                .offset_ms
                .and_then(chrono::TimeDelta::try_milliseconds)
                .ok_or_else(|| {
                    error(
                        400,
                        "send {\"offset_ms\": <milliseconds the server's clock is ahead of real time; negative: behind>}",
                    )
                })?;
            state.set_clock_offset(offset);
            no_content()
        }
        (Method::PUT, ["credentials"]) => {
            let b: CredentialsBody = parse_json(body)?;
            if b.access_key_id.is_empty() || b.access_key_secret.is_empty() {
                return Err(error(
                    400,
                    "send {\"access_key_id\": …, \"access_key_secret\": …}, both non-empty",
                ));
            }
            state.set_access_key(AccessKey {
                id: b.access_key_id,
                secret: b.access_key_secret.into(),
            });
            no_content()
        }
        _ => {
            return Err(error(
                404,
                format!(
                    "no admin route {method} /-/admin/{}; see the oss-emulator crate documentation",
                    segs.join("/")
                ),
            ));
        }
    })
}

/// The instance's clock: its offset and its current time.
fn clock_json(state: &State) -> serde_json::Value {
    let now = state.now_millis();
    json!({
        "offset_ms": state.clock_offset().num_milliseconds(),
        "now_ms": now,
        "now": crate::time::http_date(now),
    })
}

fn create_bucket(state: &State, name: &str, body: &[u8]) -> Result<Response<Body>, AdminError> {
    validate_bucket_name(name).map_err(|e| error(400, e.message))?;
    let b: BucketBody = parse_json(body)?;
    let mut info = BucketInfo::new(name, state.now_millis());
    if let Some(sc) = b.storage_class {
        info.storage_class = StorageClass::parse_oss(&sc)
            .ok_or_else(|| error(400, format!("unknown storage class '{sc}'")))?;
    }
    let created = state
        .store
        .create_bucket(info)
        .map_err(|e| error(e.status.as_u16(), e.message))?;
    Ok(json_reply(
        if created { 201 } else { 200 },
        json!({ "bucket": name, "created": created }),
    ))
}
