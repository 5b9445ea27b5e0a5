//! A fault-injecting proxy in front of a real S3 server (moto) on 127.0.0.1.
//!
//! moto never fails on its own, and it cannot answer `503 SlowDown` or drop a connection. This
//! proxy forwards requests to it unchanged, except those a [`FaultRule`] picks:
//!
//! * [`Action::SlowDown`] — S3's `503 SlowDown` ("reduce your request rate");
//! * [`Action::Reset`] — the connection is closed without an answer;
//! * [`Action::Error`] — any status and S3 error code (`500 InternalError`, `403 AccessDenied`).
//!
//! A rule matches the method and fragments of the request target (path and query, after
//! percent-decoding, so `prefix=logs/` matches a listing of `logs/`), and fires with a
//! probability drawn from a seeded RNG: the same requests in the same order see the same faults.
//! The first matching rule that fires wins.
//!
//! Every forwarded request carries `Connection: close` (moto closes after each response
//! anyway), so each request arrives on a connection of its own and is looked at.
//!
//! Use it from a test module with `use crate::support::s3_faults;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a fired rule does to the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    SlowDown,
    Reset,
    Error { status: u16, code: String },
}

/// Which requests get a fault, and how often.
#[derive(Clone, Debug)]
pub struct FaultRule {
    /// `GET`, `HEAD`, …; `None` for any.
    pub method: Option<String>,
    /// Every fragment must occur in the decoded target.
    pub target_contains: Vec<String>,
    /// No fragment may occur in it (e.g. `delimiter=`, to spare the planner's listings).
    pub target_lacks: Vec<String>,
    pub action: Action,
    /// Probability in [0, 1] that a matching request gets the fault.
    pub rate: f64,
}

impl FaultRule {
    /// Every request, at `rate`.
    pub fn any(action: Action, rate: f64) -> FaultRule {
        FaultRule {
            method: None,
            target_contains: Vec::new(),
            target_lacks: Vec::new(),
            action,
            rate,
        }
    }

    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_owned());
        self
    }

    pub fn contains(mut self, fragment: &str) -> Self {
        self.target_contains.push(fragment.to_owned());
        self
    }

    pub fn lacks(mut self, fragment: &str) -> Self {
        self.target_lacks.push(fragment.to_owned());
        self
    }

    fn matches(&self, method: &str, target: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && self
                .target_contains
                .iter()
                .all(|f| target.contains(f.as_str()))
            && !self
                .target_lacks
                .iter()
                .any(|f| target.contains(f.as_str()))
    }
}

/// Counts of what the proxy did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub forwarded: u64,
    pub slow_downs: u64,
    pub resets: u64,
    pub errors: u64,
}

impl Counts {
    pub fn injected(&self) -> u64 {
        self.slow_downs + self.resets + self.errors
    }
}

/// A running proxy; stopped when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

struct State {
    upstream: SocketAddr,
    rules: Mutex<Vec<FaultRule>>,
    rng: Mutex<fastrand::Rng>,
    forwarded: AtomicU64,
    slow_downs: AtomicU64,
    resets: AtomicU64,
    errors: AtomicU64,
    /// Decoded request lines of the faults injected, for assertions and debugging.
    log: Mutex<Vec<String>>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1:0 and forwards to `upstream`; faults are drawn from `seed`.
    pub async fn start(upstream: SocketAddr, seed: u64, rules: Vec<FaultRule>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            upstream,
            rules: Mutex::new(rules),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            forwarded: AtomicU64::new(0),
            slow_downs: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, shared.clone()));
            }
        });
        FaultProxy { addr, state, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the rules (e.g. to end a fault).
    pub fn set_rules(&self, rules: Vec<FaultRule>) {
        *self.state.rules.lock().unwrap() = rules;
    }

    pub fn counts(&self) -> Counts {
        let s = &self.state;
        Counts {
            forwarded: s.forwarded.load(Ordering::SeqCst),
            slow_downs: s.slow_downs.load(Ordering::SeqCst),
            resets: s.resets.load(Ordering::SeqCst),
            errors: s.errors.load(Ordering::SeqCst),
        }
    }

    /// The request lines (method and decoded target) that got a fault.
    pub fn faulted(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl State {
    /// The fault for this request, if a rule fires.
    fn pick(&self, method: &str, target: &str) -> Option<Action> {
        let rules = self.rules.lock().unwrap();
        let mut rng = self.rng.lock().unwrap();
        for rule in rules.iter() {
            if rule.matches(method, target) && rng.f64() < rule.rate {
                self.log.lock().unwrap().push(format!("{method} {target}"));
                return Some(rule.action.clone());
            }
        }
        None
    }
}

async fn serve(mut client: TcpStream, state: Arc<State>) {
    // Read up to the end of the request head; a body (PUT) is streamed on afterwards.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let request_line = head.lines().next().unwrap_or("").to_owned();
    let mut words = request_line.split(' ');
    let method = words.next().unwrap_or("").to_owned();
    let target = percent_encoding::percent_decode_str(words.next().unwrap_or(""))
        .decode_utf8_lossy()
        .into_owned();
    match state.pick(&method, &target) {
        Some(Action::Reset) => {
            state.resets.fetch_add(1, Ordering::SeqCst);
            // Dropping the socket unanswered: the client sees the connection end mid-request.
            drop(client);
            return;
        }
        Some(Action::SlowDown) => {
            state.slow_downs.fetch_add(1, Ordering::SeqCst);
            let reply = error_reply(503, "Slow Down", "SlowDown", &method);
            let _ = client.write_all(&reply).await;
            let _ = client.shutdown().await;
            return;
        }
        Some(Action::Error { status, code }) => {
            state.errors.fetch_add(1, Ordering::SeqCst);
            let reply = error_reply(status, "Injected", &code, &method);
            let _ = client.write_all(&reply).await;
            let _ = client.shutdown().await;
            return;
        }
        None => {}
    }
    state.forwarded.fetch_add(1, Ordering::SeqCst);
    let Ok(mut upstream) = TcpStream::connect(state.upstream).await else {
        return;
    };
    let mut forwarded = close_after(&head).into_bytes();
    forwarded.extend_from_slice(&buf[head_end..]);
    if upstream.write_all(&forwarded).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// The request head with its `Connection` header replaced by `Connection: close`.
fn close_after(head: &str) -> String {
    let mut out = String::with_capacity(head.len() + 20);
    let mut lines = head.split("\r\n");
    out.push_str(lines.next().unwrap_or(""));
    out.push_str("\r\nConnection: close");
    for line in lines.filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str("\r\n");
            out.push_str(line);
        }
    }
    out.push_str("\r\n\r\n");
    out
}

/// An S3 error answer; a HEAD answer carries no body, as HTTP requires.
fn error_reply(status: u16, reason: &str, code: &str, method: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>injected by the test proxy</Message><RequestId>INJECTED</RequestId>\
         <HostId>proxy</HostId></Error>"
    );
    let mut reply = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n\
         x-amz-request-id: INJECTED\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        reply.push_str(&body);
    }
    reply.into_bytes()
}
