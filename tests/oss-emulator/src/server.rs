//! The HTTP server: accepts connections, and runs every request through the same pipeline:
//! route → classify → count → faults → authenticate → operation → render.
//!
//! Bodies stream in both directions. A connection reset fault makes the service fail, which
//! makes hyper drop the connection without writing a response.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::body::{self, Body, Payload};
use crate::error::ApiError;
use crate::faults::{Action, Plan};
use crate::ops::{self, Ctx, Op};
use crate::reply::Reply;
use crate::request::{Dialect, RequestInfo, header_list};
use crate::state::State;
use crate::{admin, auth, routing};

/// How long shutdown waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Returned by the service to make hyper close the connection without a response.
#[derive(Debug)]
pub struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by an injected fault")
    }
}

impl std::error::Error for ResetConnection {}

/// Serves until `shutdown` changes (or its sender goes away), then drains connections.
pub async fn run(listener: TcpListener, state: Arc<State>, mut shutdown: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve_connection(stream, state.clone(), shutdown.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        conns.abort_all();
    }
}

async fn serve_connection(
    stream: TcpStream,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| handle(state.clone(), req));
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, conn.as_mut()).await;
        }
    }
}

fn new_request_id() -> String {
    format!("{:08X}{:016X}", fastrand::u32(..), fastrand::u64(..))
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ResetConnection> {
    let host = req
        .headers()
        .get(http::header::HOST)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_else(|| state.addr.to_string());
    let raw_path = req.uri().path().to_owned();
    if routing::is_admin(&host, &raw_path, &state.config.domains) {
        let mut resp = admin::handle(&state, req).await;
        set_date(&mut resp, &state);
        return Ok(resp);
    }
    let request_id = new_request_id();
    let (parts, incoming) = req.into_parts();
    let query = routing::parse_query(parts.uri.query());
    let dialect = Dialect::detect(&parts.headers, &query);
    let target = routing::resolve(&host, &raw_path, &state.config.domains);
    let (bucket, key, decoded_path, route_error) = match target {
        Ok(t) => (t.bucket, t.key, t.decoded_path, None),
        Err(e) => (None, None, raw_path.clone(), Some(e)),
    };
    let info = RequestInfo {
        method: parts.method,
        dialect,
        bucket,
        key,
        decoded_path,
        query,
        header_list: header_list(&parts.headers),
        headers: parts.headers,
        host,
        request_id,
    };
    if let Some(e) = route_error {
        return Ok(finish(render_error(&info, e), &info, &state));
    }
    let op = ops::classify(&info);
    let name = op.name();
    state
        .counters
        .request(name, info.bucket.as_deref(), info.key.as_deref());
    let mut plan = state
        .faults
        .plan(name, info.bucket.as_deref(), info.key.as_deref());
    for _ in 0..plan.fired {
        state.counters.fault(name);
    }
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    let resp = match plan.before.take() {
        Some(Action::Reset) => return reset(&state, name),
        Some(Action::Error(e)) => render_error(&info, e),
        None => {
            let resp = run_operation(&state, &info, op, incoming, &plan).await;
            match plan.after.take() {
                Some(Action::Reset) => return reset(&state, name),
                Some(Action::Error(e)) => render_error(&info, e),
                None => resp,
            }
        }
    };
    let resp = finish(resp, &info, &state);
    state
        .counters
        .response(name, &resp.status().as_u16().to_string());
    tracing::debug!(method = %info.method, op = name, status = resp.status().as_u16(), "request");
    match plan.truncate {
        Some(after) => truncate(resp, after).ok_or_else(|| reset_quiet(&state, name)),
        None => Ok(resp),
    }
}

fn reset(state: &State, op: &str) -> Result<Response<Body>, ResetConnection> {
    Err(reset_quiet(state, op))
}

fn reset_quiet(state: &State, op: &str) -> ResetConnection {
    state.counters.response(op, "reset");
    ResetConnection
}

async fn run_operation(
    state: &State,
    info: &RequestInfo,
    op: Op,
    incoming: Incoming,
    plan: &Plan,
) -> Response<Body> {
    let verified = match auth::verify(info, &state.identity(), state.now()) {
        Ok(v) => v,
        Err(e) => return render_error(info, e),
    };
    if let Err(e) = requester_pays(state, info) {
        return render_error(info, e);
    }
    let mut payload = Payload::new(incoming, &info.headers, verified.payload_sha256.clone());
    if plan.corrupt {
        payload = payload.corrupted();
    }
    let ctx = Ctx {
        req: info,
        state,
        verified,
        listing: plan.listing.clone(),
    };
    match ops::execute(op, &ctx, payload).await {
        Ok(resp) => resp,
        Err(e) => render_error(info, e),
    }
}

/// A requester-pays bucket answers only requests that say the requester pays, as OSS and S3
/// do for anyone but the owner (the emulator has one identity, so it asks every request).
fn requester_pays(state: &State, info: &RequestInfo) -> Result<(), ApiError> {
    let Some(bucket) = info.bucket.as_deref() else {
        return Ok(());
    };
    if !state.requester_pays(bucket) {
        return Ok(());
    }
    let name = info.dialect.header("request-payer");
    let said = info
        .headers
        .get(name.as_str())
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"requester"));
    match said {
        true => Ok(()),
        false => Err(ApiError::access_denied(format!(
            "bucket {bucket} is requester-pays: send {name}: requester"
        ))),
    }
}

/// Renders an error in the request's dialect (HEAD: no body, document in `x-oss-err`).
pub fn render_error(info: &RequestInfo, e: ApiError) -> Response<Body> {
    if e.status.as_u16() == 304 {
        return Reply::new(304).empty();
    }
    let resource = info.resource();
    let mut reply = Reply::new(e.status.as_u16());
    if info.dialect == Dialect::Oss {
        reply = reply.header("x-oss-ec", e.ec());
    }
    for (name, value) in &e.headers {
        reply = reply.header(name, value);
    }
    if info.method == Method::HEAD {
        return reply
            .header(
                "x-oss-err",
                e.head_header(&info.request_id, &info.host, &resource),
            )
            .empty();
    }
    reply.xml(e.document(info.dialect, &info.request_id, &info.host, &resource))
}

/// The `Date` header from the instance's clock (hyper would otherwise write real time).
fn set_date(resp: &mut Response<Body>, state: &State) {
    if let Ok(v) = http::HeaderValue::from_str(&crate::time::http_date(state.now_millis())) {
        resp.headers_mut().insert(http::header::DATE, v);
    }
}

/// Adds the headers every response carries.
fn finish(mut resp: Response<Body>, info: &RequestInfo, state: &State) -> Response<Body> {
    set_date(&mut resp, state);
    let h = resp.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set("x-oss-request-id", &info.request_id);
    set("server", "ferry-oss-emulator");
    if info.dialect == Dialect::S3 {
        set("x-amz-request-id", &info.request_id);
        set("x-amz-id-2", &info.request_id);
    }
    resp
}

/// Keeps the full Content-Length but sends only part of the body, then fails the stream so
/// hyper closes the connection. `None` when there is no body to cut.
fn truncate(resp: Response<Body>, after: Option<u64>) -> Option<Response<Body>> {
    let len: u64 = resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if len == 0 {
        return None;
    }
    let limit = after.unwrap_or(len / 2).min(len - 1);
    let (parts, body) = resp.into_parts();
    let stream = futures_util::stream::unfold(
        (body, 0u64, false),
        move |(mut body, sent, done)| async move {
            if done {
                return None;
            }
            if sent >= limit {
                // Give hyper a moment to flush what was sent; an error right behind the last chunk
                // would make it drop the connection with the data still in its buffer.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let cut = io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "response truncated by an injected fault",
                );
                return Some((Err(cut), (body, sent, true)));
            }
            match body.frame().await {
                Some(Ok(frame)) => {
                    let data = frame.into_data().unwrap_or_default();
                    let take = (data.len() as u64).min(limit - sent) as usize;
                    Some((
                        Ok::<Bytes, io::Error>(data.slice(..take)),
                        (body, sent + take as u64, false),
                    ))
                }
                Some(Err(e)) => Some((Err(e), (body, sent, true))),
                None => None,
            }
        },
    );
    Some(Response::from_parts(
        parts,
        body::from_stream(Box::pin(stream)),
    ))
}
