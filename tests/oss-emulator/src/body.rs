//! Request and response bodies, streamed.
//!
//! A request body becomes a [`Payload`]: a stream of byte chunks that never holds the whole
//! upload, with S3's `aws-chunked` framing removed when the client used it, and the SHA-256 the
//! client signed (S3 only) to check at the end. Responses use [`Body`], a boxed body that is
//! either a small buffer or a stream of stored chunks.

use std::io;
use std::pin::Pin;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt};
use http::HeaderMap;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, BodyStream, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;
pub type Body = UnsyncBoxBody<Bytes, io::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

pub fn from_stream(stream: ByteStream) -> Body {
    StreamBody::new(stream.map_ok(Frame::data)).boxed_unsync()
}

/// A request body on its way into storage.
pub struct Payload {
    stream: ByteStream,
    /// The hex SHA-256 the body must have (S3 requests that signed their payload).
    pub expected_sha256: Option<String>,
    /// `x-amz-decoded-content-length` of an aws-chunked body.
    pub decoded_length: Option<u64>,
}

impl Payload {
    /// Wraps a request body, removing aws-chunked framing when the headers announce it.
    pub fn new(
        incoming: Incoming,
        headers: &HeaderMap,
        expected_sha256: Option<String>,
    ) -> Payload {
        let raw: ByteStream = Box::pin(BodyStream::new(incoming).filter_map(|frame| async move {
            match frame {
                Ok(f) => f.into_data().ok().map(Ok),
                Err(e) => Some(Err(io::Error::other(e))),
            }
        }));
        let chunked = is_aws_chunked(headers);
        let decoded_length = headers
            .get("x-amz-decoded-content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let stream = if chunked {
            decode_aws_chunked(raw)
        } else {
            raw
        };
        Payload {
            stream,
            expected_sha256,
            decoded_length,
        }
    }

    pub fn from_bytes(bytes: Bytes) -> Payload {
        Payload {
            stream: Box::pin(futures_util::stream::once(async { Ok(bytes) })),
            expected_sha256: None,
            decoded_length: None,
        }
    }

    pub fn empty() -> Payload {
        Payload {
            stream: Box::pin(futures_util::stream::empty()),
            expected_sha256: None,
            decoded_length: None,
        }
    }

    /// The same body with its first byte flipped, as bytes corrupted on the way in would be
    /// stored: the server's CRC-64 and ETag then describe the corrupted bytes (a `corrupt`
    /// fault). A Content-MD5 sent with the request still catches it.
    pub fn corrupted(self) -> Payload {
        let mut flipped = false;
        let stream = self.stream.map(move |chunk| {
            chunk.map(|b| match flipped || b.is_empty() {
                true => b,
                false => {
                    flipped = true;
                    let mut v = b.to_vec();
                    v[0] ^= 0xff;
                    Bytes::from(v)
                }
            })
        });
        Payload {
            stream: Box::pin(stream),
            ..self
        }
    }

    /// The next chunk, mapping transport failures to an API error.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, ApiError> {
        match self.stream.next().await {
            None => Ok(None),
            Some(Ok(b)) => Ok(Some(b)),
            Some(Err(e)) => Err(ApiError::new(
                400,
                "IncompleteBody",
                format!("The request body could not be read completely: {e}"),
            )),
        }
    }

    /// Reads a small body (XML documents) into memory, refusing more than `limit` bytes.
    pub async fn read_all(mut self, limit: usize) -> Result<Bytes, ApiError> {
        let mut buf = BytesMut::new();
        let mut check = BodyCheck::new(&self);
        while let Some(chunk) = self.next_chunk().await? {
            check.update(&chunk);
            if buf.len() + chunk.len() > limit {
                return Err(ApiError::invalid_argument(format!(
                    "The request body is larger than {limit} bytes"
                )));
            }
            buf.extend_from_slice(&chunk);
        }
        check.finish(buf.len() as u64)?;
        Ok(buf.freeze())
    }
}

/// Checks what an S3 client promised about a body: its SHA-256 and its decoded length.
pub struct BodyCheck {
    sha256: Option<(Sha256, String)>,
    decoded_length: Option<u64>,
}

impl BodyCheck {
    pub fn new(p: &Payload) -> BodyCheck {
        BodyCheck {
            sha256: p.expected_sha256.clone().map(|h| (Sha256::new(), h)),
            decoded_length: p.decoded_length,
        }
    }

    pub fn update(&mut self, chunk: &[u8]) {
        if let Some((h, _)) = &mut self.sha256 {
            h.update(chunk);
        }
    }

    pub fn finish(self, len: u64) -> Result<(), ApiError> {
        if let Some((h, expected)) = self.sha256 {
            let got = hex::encode(h.finalize());
            if got != expected {
                return Err(ApiError::new(
                    400,
                    "XAmzContentSHA256Mismatch",
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                )
                .with("ClientComputedContentSHA256", expected)
                .with("S3ComputedContentSHA256", got));
            }
        }
        if let Some(d) = self.decoded_length
            && d != len
        {
            return Err(ApiError::new(
                400,
                "IncompleteBody",
                format!(
                    "x-amz-decoded-content-length says {d} bytes but the body decoded to {len}"
                ),
            ));
        }
        Ok(())
    }
}

fn is_aws_chunked(headers: &HeaderMap) -> bool {
    let sha = headers
        .get("x-amz-content-sha256")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let encoding = headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .any(|v| {
            v.to_str()
                .unwrap_or("")
                .split(',')
                .any(|e| e.trim().eq_ignore_ascii_case("aws-chunked"))
        });
    sha.starts_with(b"STREAMING-") || encoding
}

/// Content-Encoding without the `aws-chunked` transfer coding (what gets stored).
pub fn stored_content_encoding(value: &str) -> Option<String> {
    let rest: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    if rest.is_empty() {
        None
    } else {
        Some(rest.join(", "))
    }
}

enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

struct ChunkDecoder {
    inner: ByteStream,
    buf: BytesMut,
    state: ChunkState,
}

fn bad_chunk(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed aws-chunked body: {what}"),
    )
}

impl ChunkDecoder {
    /// Pulls more input into the buffer; false at end of input.
    async fn fill(&mut self) -> io::Result<bool> {
        match self.inner.next().await {
            Some(Ok(b)) => {
                self.buf.extend_from_slice(&b);
                Ok(true)
            }
            Some(Err(e)) => Err(e),
            None => Ok(false),
        }
    }

    async fn next(&mut self) -> Option<io::Result<Bytes>> {
        loop {
            match self.state {
                ChunkState::Size => match self.buf.windows(2).position(|w| w == b"\r\n") {
                    Some(pos) => {
                        let line = self.buf.split_to(pos + 2);
                        let text = String::from_utf8_lossy(&line[..pos]).into_owned();
                        let size_text = text.split(';').next().unwrap_or("").trim();
                        let Ok(size) = u64::from_str_radix(size_text, 16) else {
                            return Some(Err(bad_chunk("chunk size is not hexadecimal")));
                        };
                        self.state = if size == 0 {
                            ChunkState::Trailer
                        } else {
                            ChunkState::Data(size)
                        };
                    }
                    None if self.buf.len() > 4096 => {
                        return Some(Err(bad_chunk("chunk header is too long")));
                    }
                    None => match self.fill().await {
                        Ok(true) => {}
                        Ok(false) => {
                            return Some(Err(bad_chunk("body ended inside a chunk header")));
                        }
                        Err(e) => return Some(Err(e)),
                    },
                },
                ChunkState::Data(left) => return Some(self.data(left).await),
                ChunkState::DataEnd => {
                    if self.buf.len() < 2 {
                        match self.fill().await {
                            Ok(true) => continue,
                            Ok(false) => {
                                return Some(Err(bad_chunk("body ended after chunk data")));
                            }
                            Err(e) => return Some(Err(e)),
                        }
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Some(Err(bad_chunk(
                            "chunk data is longer than its declared size",
                        )));
                    }
                    self.buf.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailer => {
                    // Trailing checksum headers: read to the end so the connection stays usable.
                    loop {
                        match self.fill().await {
                            Ok(true) => self.buf.clear(),
                            Ok(false) => break,
                            Err(e) => return Some(Err(e)),
                        }
                    }
                    self.state = ChunkState::Done;
                }
                ChunkState::Done => return None,
            }
        }
    }

    async fn data(&mut self, left: u64) -> io::Result<Bytes> {
        if self.buf.is_empty() {
            // Hand large frames through without copying them.
            let frame = match self.inner.next().await {
                Some(r) => r?,
                None => return Err(bad_chunk("body ended inside chunk data")),
            };
            if frame.len() as u64 <= left {
                self.advance_data(left, frame.len() as u64);
                return Ok(frame);
            }
            let mut frame = frame;
            let out = frame.split_to(left as usize);
            self.buf.extend_from_slice(&frame);
            self.advance_data(left, left);
            return Ok(out);
        }
        let take = (self.buf.len() as u64).min(left);
        let out = self.buf.split_to(take as usize).freeze();
        self.advance_data(left, take);
        Ok(out)
    }

    fn advance_data(&mut self, left: u64, taken: u64) {
        self.state = if left == taken {
            ChunkState::DataEnd
        } else {
            ChunkState::Data(left - taken)
        };
    }
}

fn decode_aws_chunked(inner: ByteStream) -> ByteStream {
    let decoder = ChunkDecoder {
        inner,
        buf: BytesMut::new(),
        state: ChunkState::Size,
    };
    Box::pin(futures_util::stream::unfold(decoder, |mut d| async move {
        let item = d.next().await?;
        let failed = item.is_err();
        if failed {
            d.state = ChunkState::Done;
        }
        Some((item, d))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn decode(pieces: Vec<&'static [u8]>) -> io::Result<Vec<u8>> {
        let inner: ByteStream = Box::pin(futures_util::stream::iter(
            pieces.into_iter().map(|p| Ok(Bytes::from_static(p))),
        ));
        let mut s = decode_aws_chunked(inner);
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn decodes_signed_and_trailer_forms() {
        let signed = decode(vec![
            b"5;chunk-signature=abc\r\nhello\r\n0;chunk-signature=def\r\n\r\n",
        ])
        .await
        .unwrap();
        assert_eq!(signed, b"hello");
        let split = decode(vec![
            b"3\r\nab",
            b"c\r\n2\r",
            b"\nde\r\n0\r\nx-amz-checksum-crc32:AAAA\r\n\r\n",
        ])
        .await
        .unwrap();
        assert_eq!(split, b"abcde");
    }

    #[tokio::test]
    async fn header_and_large_data_in_one_frame() {
        let mut framed = b"2710\r\n".to_vec();
        framed.extend_from_slice(&[7u8; 10000]);
        framed.extend_from_slice(b"\r\n0\r\n\r\n");
        let leaked: &'static [u8] = Box::leak(framed.into_boxed_slice());
        assert_eq!(decode(vec![leaked]).await.unwrap(), vec![7u8; 10000]);
    }

    #[tokio::test]
    async fn rejects_bad_framing() {
        assert!(decode(vec![b"zz\r\nhello\r\n"]).await.is_err());
        assert!(decode(vec![b"3\r\nabcd\r\n0\r\n\r\n"]).await.is_err());
        assert!(decode(vec![b"5\r\nab"]).await.is_err());
    }

    #[test]
    fn strips_aws_chunked_from_content_encoding() {
        assert_eq!(stored_content_encoding("aws-chunked"), None);
        assert_eq!(
            stored_content_encoding("aws-chunked, gzip"),
            Some("gzip".into())
        );
    }
}
