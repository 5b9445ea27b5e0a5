//! Request and response bodies, with CRC-64 computed on the bytes as they pass.
//!
//! A request body is either *replayable* (`Bytes` in memory: the client can resend it after a
//! failure) or *one-shot* (a stream of known length, typically another service's download: it
//! can be read once). The client never retries a one-shot body itself; it returns the error,
//! marked retryable, and the caller re-opens its source.
//!
//! The length of a stream is declared up front (OSS needs `Content-Length`; ferry never uses
//! chunked uploads) and enforced: a stream that ends early or runs long fails the request with
//! [`Error::Body`] rather than storing a truncated object.
//!
//! [`ObjectBody`] is the other direction: a GetObject response streamed as `Bytes` chunks, with a
//! running CRC-64 and, for whole-object reads, a final check against the server's
//! `x-oss-hash-crc64ecma`.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{BoxStream, Stream, StreamExt};
use md5::{Digest, Md5};

use super::error::{Error, error_chain};
use crate::crc64::Crc64;

/// The error type a body stream may yield.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of an upload (PutObject, UploadPart).
pub struct RequestBody {
    kind: Kind,
    content_md5: Option<String>,
}

enum Kind {
    Empty,
    Bytes(Bytes),
    // The Mutex only makes the body `Sync` (requests are borrowed across awaits); it is never
    // contended.
    Stream {
        stream: Mutex<Option<BoxStream<'static, Result<Bytes, BoxError>>>>,
        len: u64,
    },
}

impl RequestBody {
    /// A body of no bytes.
    pub fn empty() -> Self {
        RequestBody {
            kind: Kind::Empty,
            content_md5: None,
        }
    }

    /// A replayable body held in memory.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        RequestBody {
            kind: Kind::Bytes(bytes.into()),
            content_md5: None,
        }
    }

    /// A one-shot body: `len` bytes that `stream` yields exactly once.
    pub fn from_stream<S, E>(len: u64, stream: S) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError> + 'static,
    {
        let stream = stream.map(|r| r.map_err(Into::into)).boxed();
        RequestBody {
            kind: Kind::Stream {
                stream: Mutex::new(Some(stream)),
                len,
            },
            content_md5: None,
        }
    }

    /// Sends this Base64 MD5 as `Content-Md5` so OSS rejects altered bytes with `InvalidDigest`
    /// (useful for streams whose MD5 the source already told us). For in-memory bodies the
    /// client computes it itself unless disabled.
    pub fn with_content_md5(mut self, base64_md5: impl Into<String>) -> Self {
        self.content_md5 = Some(base64_md5.into());
        self
    }

    /// The number of bytes the body sends.
    pub fn len(&self) -> u64 {
        match &self.kind {
            Kind::Empty => 0,
            Kind::Bytes(b) => b.len() as u64,
            Kind::Stream { len, .. } => *len,
        }
    }

    /// Whether the body sends no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the client may send it more than once (retry it).
    pub fn is_replayable(&self) -> bool {
        !matches!(self.kind, Kind::Stream { .. })
    }

    pub(crate) fn content_md5(&self) -> Option<&str> {
        self.content_md5.as_deref()
    }

    /// Computes what can be known before sending: the CRC-64 of an in-memory body and, if asked
    /// and not given, its Content-MD5.
    pub(crate) fn precompute(&mut self, want_md5: bool) -> Option<u64> {
        let Kind::Bytes(bytes) = &self.kind else {
            return matches!(self.kind, Kind::Empty).then_some(0);
        };
        if want_md5 && self.content_md5.is_none() {
            self.content_md5 = Some(BASE64.encode(Md5::digest(bytes)));
        }
        Some(crate::crc64::checksum(bytes))
    }

    /// The body for one attempt. A stream can be taken once; later calls return `None`.
    pub(crate) fn attempt(&mut self) -> Option<(reqwest::Body, Option<StreamTracker>)> {
        match &mut self.kind {
            Kind::Empty => Some((reqwest::Body::from(Bytes::new()), None)),
            Kind::Bytes(b) => Some((reqwest::Body::from(b.clone()), None)),
            Kind::Stream { stream, len } => {
                let stream = stream.get_mut().unwrap_or_else(|p| p.into_inner()).take()?;
                let tracker = StreamTracker::default();
                let tracked = Tracked {
                    inner: stream,
                    expected: *len,
                    tracker: tracker.clone(),
                };
                Some((reqwest::Body::wrap_stream(tracked), Some(tracker)))
            }
        }
    }
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::Empty => "empty",
            Kind::Bytes(_) => "bytes",
            Kind::Stream { .. } => "stream",
        };
        f.debug_struct("RequestBody")
            .field("kind", &kind)
            .field("len", &self.len())
            .finish()
    }
}

impl From<Bytes> for RequestBody {
    fn from(b: Bytes) -> Self {
        RequestBody::from_bytes(b)
    }
}

impl From<Vec<u8>> for RequestBody {
    fn from(b: Vec<u8>) -> Self {
        RequestBody::from_bytes(b)
    }
}

impl From<&'static [u8]> for RequestBody {
    fn from(b: &'static [u8]) -> Self {
        RequestBody::from_bytes(b)
    }
}

impl From<String> for RequestBody {
    fn from(s: String) -> Self {
        RequestBody::from_bytes(s)
    }
}

/// What one streamed attempt saw: CRC and length of the bytes handed to the connection, and
/// why the stream failed, if it did.
#[derive(Clone, Default)]
pub(crate) struct StreamTracker(Arc<Mutex<TrackState>>);

#[derive(Default)]
struct TrackState {
    crc: Crc64,
    failure: Option<String>,
    complete: bool,
}

impl StreamTracker {
    fn with<T>(&self, f: impl FnOnce(&mut TrackState) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The CRC-64 of the whole body, if the stream was read to its declared end.
    pub(crate) fn crc(&self) -> Option<u64> {
        self.with(|s| s.complete.then(|| s.crc.value()))
    }

    /// Why the stream failed (source error, wrong length), if it did.
    pub(crate) fn failure(&self) -> Option<String> {
        self.with(|s| s.failure.clone())
    }
}

/// Feeds the tracker and enforces the declared length.
struct Tracked {
    inner: BoxStream<'static, Result<Bytes, BoxError>>,
    expected: u64,
    tracker: StreamTracker,
}

impl Tracked {
    fn fail(&self, message: String) -> Poll<Option<Result<Bytes, BoxError>>> {
        self.tracker.with(|s| s.failure = Some(message.clone()));
        Poll::Ready(Some(Err(message.into())))
    }
}

impl Stream for Tracked {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.tracker.with(|s| s.failure.is_some() || s.complete) {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                let expected = self.expected;
                let seen = self.tracker.with(|s| {
                    s.crc.update(&chunk);
                    s.crc.len()
                });
                if seen > expected {
                    return self.fail(format!(
                        "the body stream yielded more than the declared {expected} bytes"
                    ));
                }
                if seen == expected {
                    self.tracker.with(|s| s.complete = true);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => self.fail(format!(
                "the body stream failed: {}",
                error_chain(e.as_ref())
            )),
            Poll::Ready(None) => {
                let seen = self.tracker.with(|s| s.crc.len());
                if seen < self.expected {
                    let expected = self.expected;
                    return self.fail(format!(
                        "the body stream ended after {seen} of the declared {expected} bytes"
                    ));
                }
                self.tracker.with(|s| s.complete = true);
                Poll::Ready(None)
            }
        }
    }
}

/// A GetObject body: `Bytes` chunks as they arrive, with a running CRC-64.
///
/// When the whole object was requested and OSS reported its CRC-64, reaching the end verifies it
/// and yields [`Error::ChecksumMismatch`] instead of the end if they differ. A short body
/// (connection closed early) ends with a retryable [`Error::Transport`].
pub struct ObjectBody {
    inner: BoxStream<'static, Result<Bytes, reqwest::Error>>,
    crc: Crc64,
    expected_len: Option<u64>,
    expected_crc: Option<u64>,
    operation: &'static str,
    resource: String,
    request_id: String,
    done: bool,
}

impl ObjectBody {
    pub(crate) fn new(
        response: reqwest::Response,
        expected_crc: Option<u64>,
        resource: String,
        request_id: String,
    ) -> Self {
        ObjectBody {
            expected_len: response.content_length(),
            inner: response.bytes_stream().boxed(),
            crc: Crc64::new(),
            expected_crc,
            operation: "GetObject",
            resource,
            request_id,
            done: false,
        }
    }

    /// CRC-64 of the bytes yielded so far (of the whole body once the stream has ended).
    pub fn crc64(&self) -> u64 {
        self.crc.value()
    }

    /// Bytes yielded so far.
    pub fn bytes_read(&self) -> u64 {
        self.crc.len()
    }

    /// Reads the rest of the body into memory. For small objects and tests; transfers stream.
    pub async fn collect(mut self) -> Result<Bytes, Error> {
        let mut buf = BytesMut::new();
        while let Some(chunk) = self.next().await {
            buf.extend_from_slice(&chunk?);
        }
        Ok(buf.freeze())
    }

    fn finish(&mut self) -> Option<Error> {
        let read = self.crc.len();
        if let Some(expected) = self.expected_len.filter(|e| *e != read) {
            return Some(Error::Transport {
                operation: self.operation,
                kind: super::error::TransportKind::Body,
                message: format!("response body ended after {read} of {expected} bytes"),
            });
        }
        let server = self.expected_crc?;
        let client = self.crc.value();
        (client != server).then(|| Error::ChecksumMismatch {
            operation: self.operation,
            resource: self.resource.clone(),
            client,
            server,
            request_id: self.request_id.clone(),
        })
    }
}

impl Stream for ObjectBody {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.crc.update(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(Error::from_reqwest(self.operation, e))))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(self.finish().map(Err))
            }
        }
    }
}

impl std::fmt::Debug for ObjectBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBody")
            .field("resource", &self.resource)
            .field("bytes_read", &self.bytes_read())
            .field("expected_len", &self.expected_len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    async fn drain(mut body: reqwest::Body) -> Result<Vec<u8>, String> {
        use http_body_util::BodyExt;
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| e.to_string())?;
            if let Ok(data) = frame.into_data() {
                out.extend_from_slice(&data);
            }
        }
        Ok(out)
    }

    fn chunks(
        parts: &[&'static [u8]],
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn bytes_bodies_are_replayable_with_md5_and_crc() {
        let mut b = RequestBody::from_bytes(&b"123456789"[..]);
        assert!(b.is_replayable());
        assert_eq!(b.precompute(true), Some(0x995dc9bbdf1939fa));
        assert_eq!(b.content_md5(), Some("JfnnlDI7RTiF9RgfG2JNCw=="));
        assert!(b.attempt().is_some());
        assert!(b.attempt().is_some());
        let mut given = RequestBody::from_bytes(&b"x"[..]).with_content_md5("given");
        given.precompute(true);
        assert_eq!(given.content_md5(), Some("given"));
    }

    #[tokio::test]
    async fn stream_bodies_are_one_shot_and_tracked() {
        let mut b = RequestBody::from_stream(9, chunks(&[b"1234", b"56789"]));
        assert!(!b.is_replayable());
        assert_eq!(b.precompute(true), None);
        let (body, tracker) = b.attempt().unwrap();
        assert!(
            b.attempt().is_none(),
            "a stream must not be handed out twice"
        );
        assert_eq!(drain(body).await.unwrap(), b"123456789");
        let tracker = tracker.unwrap();
        assert_eq!(tracker.crc(), Some(0x995dc9bbdf1939fa));
        assert_eq!(tracker.failure(), None);
    }

    #[tokio::test]
    async fn short_and_long_streams_fail_with_a_reason() {
        let mut short = RequestBody::from_stream(10, chunks(&[b"1234"]));
        let (body, tracker) = short.attempt().unwrap();
        assert!(drain(body).await.is_err());
        let reason = tracker.unwrap().failure().unwrap();
        assert!(reason.contains("4 of the declared 10"), "{reason}");

        let mut long = RequestBody::from_stream(3, chunks(&[b"12", b"34"]));
        let (body, tracker) = long.attempt().unwrap();
        assert!(drain(body).await.is_err());
        assert!(
            tracker
                .as_ref()
                .unwrap()
                .failure()
                .unwrap()
                .contains("more than the declared 3")
        );
        assert_eq!(tracker.unwrap().crc(), None);
    }

    #[tokio::test]
    async fn source_errors_are_reported() {
        let failing = stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "source reset",
            )),
        ]);
        let mut b = RequestBody::from_stream(4, failing);
        let (body, tracker) = b.attempt().unwrap();
        assert!(drain(body).await.is_err());
        assert!(tracker.unwrap().failure().unwrap().contains("source reset"));
    }
}
