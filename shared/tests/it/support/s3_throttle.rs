//! A throttling proxy in front of a real S3 server (moto) on 127.0.0.1.
//!
//! moto cannot answer `503 SlowDown`, which is how Amazon S3 tells a client to back off. The
//! proxy forwards every request to moto unchanged, except that requests matching a rule get
//! S3's SlowDown error instead — the first `n` of them, or all. It sees every request because
//! moto closes the connection after each response, so each request arrives on a new connection;
//! a request that comes on a reused connection is forwarded without being looked at.
//!
//! Use it from a test module with `use crate::support::s3_throttle;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Which requests are throttled: the method and a fragment of the request target.
#[derive(Clone, Debug)]
pub struct Rule {
    pub method: String,
    /// Throttled when the request target (path and query) contains this…
    pub target_contains: String,
    /// …and does not contain this (e.g. `tagging`, to let GetObjectTagging through).
    pub target_lacks: Option<String>,
    /// How many matching requests to throttle; `None` for all of them.
    pub count: Option<u64>,
}

/// A running proxy; stopped when dropped.
pub struct ThrottleProxy {
    addr: SocketAddr,
    throttled: Arc<AtomicU64>,
    matched: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl ThrottleProxy {
    /// Listens on 127.0.0.1:0 and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr, rule: Rule) -> ThrottleProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().unwrap();
        let throttled = Arc::new(AtomicU64::new(0));
        let matched = Arc::new(AtomicU64::new(0));
        let state = Arc::new(State {
            upstream,
            rule,
            throttled: throttled.clone(),
            matched: matched.clone(),
        });
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, state.clone()));
            }
        });
        ThrottleProxy {
            addr,
            throttled,
            matched,
            task,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered with SlowDown so far.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::SeqCst)
    }

    /// Requests that matched the rule so far (throttled or, once its count ran out, forwarded).
    pub fn matched(&self) -> u64 {
        self.matched.load(Ordering::SeqCst)
    }
}

impl Drop for ThrottleProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct State {
    upstream: SocketAddr,
    rule: Rule,
    throttled: Arc<AtomicU64>,
    matched: Arc<AtomicU64>,
}

impl State {
    /// Whether this request line gets SlowDown.
    fn throttle(&self, request_line: &str) -> bool {
        let mut words = request_line.split(' ');
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let rule = &self.rule;
        let matches = method == rule.method
            && target.contains(&rule.target_contains)
            && !rule
                .target_lacks
                .as_ref()
                .is_some_and(|lacks| target.contains(lacks));
        if !matches {
            return false;
        }
        let seen = self.matched.fetch_add(1, Ordering::SeqCst);
        let throttle = rule.count.is_none_or(|n| seen < n);
        if throttle {
            self.throttled.fetch_add(1, Ordering::SeqCst);
        }
        throttle
    }
}

async fn serve(mut client: TcpStream, state: Arc<State>) {
    // Read up to the end of the request head; GETs and HEADs have no body to wait for.
    let mut head = Vec::new();
    let mut chunk = [0u8; 8192];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let request_line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    if state.throttle(&request_line) {
        let _ = client.write_all(&slow_down()).await;
        let _ = client.shutdown().await;
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(state.upstream).await else {
        return;
    };
    if upstream.write_all(&head).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// S3's answer to a client that should back off.
fn slow_down() -> Vec<u8> {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>\
                <Message>Please reduce your request rate.</Message>\
                <RequestId>THROTTLED</RequestId><HostId>proxy</HostId></Error>";
    format!(
        "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nx-amz-request-id: THROTTLED\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
