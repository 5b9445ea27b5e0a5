//! Object and part data: a [`Blob`] is a list of segments, each an in-memory chunk or a file on
//! disk. Uploads are stored chunk by chunk as they arrive (never collected into one buffer),
//! multipart objects are the concatenation of their parts' segments (nothing is copied), and
//! reads stream a byte range segment by segment.
//!
//! Files clean themselves up: a [`BlobFile`] is created "doomed" and removed when its last
//! reference drops, unless the store has committed it; deleting or replacing an object dooms
//! its files again, so a GET still streaming them finishes before they disappear.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};

use crate::body::ByteStream;

/// Size of the pieces a file segment is read in.
const READ_CHUNK: usize = 256 * 1024;

/// A data file under `<data-dir>/blobs/`.
#[derive(Debug)]
pub struct BlobFile {
    pub id: String,
    pub path: PathBuf,
    doomed: AtomicBool,
}

impl BlobFile {
    pub fn new(id: String, path: PathBuf, committed: bool) -> Arc<BlobFile> {
        Arc::new(BlobFile {
            id,
            path,
            doomed: AtomicBool::new(!committed),
        })
    }

    pub fn commit(&self) {
        self.doomed.store(false, Ordering::SeqCst);
    }

    pub fn doom(&self) {
        self.doomed.store(true, Ordering::SeqCst);
    }
}

impl Drop for BlobFile {
    fn drop(&mut self) {
        if self.doomed.load(Ordering::SeqCst) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[derive(Clone, Debug)]
pub enum Segment {
    Mem(Bytes),
    File { file: Arc<BlobFile>, len: u64 },
}

impl Segment {
    pub fn len(&self) -> u64 {
        match self {
            Segment::Mem(b) => b.len() as u64,
            Segment::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A reference to a data file in a JSON sidecar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub id: String,
    pub len: u64,
}

/// Object or part data.
#[derive(Clone, Debug, Default)]
pub struct Blob {
    segments: Vec<Segment>,
    len: u64,
}

impl Blob {
    pub fn from_segments(segments: Vec<Segment>) -> Blob {
        let len = segments.iter().map(Segment::len).sum();
        Blob { segments, len }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The data of several blobs one after another (shares segments, copies nothing).
    pub fn concat<'a>(blobs: impl IntoIterator<Item = &'a Blob>) -> Blob {
        Blob::from_segments(
            blobs
                .into_iter()
                .flat_map(|b| b.segments.iter().cloned())
                .collect(),
        )
    }

    /// Marks the files for removal once nothing references them.
    pub fn doom(&self) {
        for s in &self.segments {
            if let Segment::File { file, .. } = s {
                file.doom();
            }
        }
    }

    pub fn commit(&self) {
        for s in &self.segments {
            if let Segment::File { file, .. } = s {
                file.commit();
            }
        }
    }

    /// The file references, for sidecars.
    pub fn refs(&self) -> Vec<BlobRef> {
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::File { file, len } => Some(BlobRef {
                    id: file.id.clone(),
                    len: *len,
                }),
                Segment::Mem(_) => None,
            })
            .collect()
    }

    /// Streams bytes `[start, end)`.
    pub fn stream(&self, start: u64, end: u64) -> ByteStream {
        let mut pieces = Vec::new();
        let mut offset = 0u64;
        for seg in &self.segments {
            let seg_len = seg.len();
            let (from, to) = (start.max(offset), end.min(offset + seg_len));
            if from < to {
                pieces.push((seg.clone(), from - offset, to - offset));
            }
            offset += seg_len;
            if offset >= end {
                break;
            }
        }
        Box::pin(
            futures_util::stream::iter(pieces).flat_map(|(seg, from, to)| -> ByteStream {
                match seg {
                    Segment::Mem(b) => {
                        let piece = b.slice(from as usize..to as usize);
                        Box::pin(futures_util::stream::once(async move { Ok(piece) }))
                    }
                    Segment::File { file, .. } => read_file(file, from, to - from),
                }
            }),
        )
    }
}

struct FileRead {
    file: Arc<BlobFile>,
    handle: Option<tokio::fs::File>,
    offset: u64,
    left: u64,
}

fn read_file(file: Arc<BlobFile>, offset: u64, len: u64) -> ByteStream {
    let state = FileRead {
        file,
        handle: None,
        offset,
        left: len,
    };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        if st.left == 0 {
            return None;
        }
        let item = st.next_piece().await;
        if item.is_err() {
            st.left = 0;
        }
        Some((item, st))
    }))
}

impl FileRead {
    async fn next_piece(&mut self) -> io::Result<Bytes> {
        if self.handle.is_none() {
            let mut f = tokio::fs::File::open(&self.file.path).await?;
            f.seek(io::SeekFrom::Start(self.offset)).await?;
            self.handle = Some(f);
        }
        let handle = self.handle.as_mut().expect("opened above");
        let want = (self.left as usize).min(READ_CHUNK);
        let mut buf = BytesMut::zeroed(want);
        let mut filled = 0;
        while filled < want {
            let n = handle.read(&mut buf[filled..]).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "stored data file is shorter than recorded",
                ));
            }
            filled += n;
        }
        self.left -= want as u64;
        Ok(buf.freeze())
    }
}

/// What writing a body produced.
#[derive(Debug)]
pub struct Written {
    pub blob: Blob,
    pub md5: [u8; 16],
    pub crc64: u64,
}

impl Written {
    pub fn etag(&self) -> String {
        hex::encode_upper(self.md5)
    }
}

enum Sink {
    Mem(Vec<Segment>),
    File {
        out: BufWriter<tokio::fs::File>,
        file: Arc<BlobFile>,
    },
}

/// Receives a body chunk by chunk, hashing as it goes.
pub struct BlobWriter {
    sink: Sink,
    len: u64,
    md5: Md5,
    crc: ferry::crc64::Crc64,
}

impl BlobWriter {
    pub fn memory() -> BlobWriter {
        BlobWriter::with_sink(Sink::Mem(Vec::new()))
    }

    /// Writes into a new (uncommitted) file.
    pub async fn file(file: Arc<BlobFile>) -> io::Result<BlobWriter> {
        let handle = tokio::fs::File::create(&file.path).await?;
        Ok(BlobWriter::with_sink(Sink::File {
            out: BufWriter::with_capacity(1 << 20, handle),
            file,
        }))
    }

    fn with_sink(sink: Sink) -> BlobWriter {
        BlobWriter {
            sink,
            len: 0,
            md5: Md5::new(),
            crc: ferry::crc64::Crc64::new(),
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.md5.update(&chunk);
        self.crc.update(&chunk);
        self.len += chunk.len() as u64;
        match &mut self.sink {
            Sink::Mem(segs) => segs.push(Segment::Mem(chunk)),
            Sink::File { out, .. } => out.write_all(&chunk).await?,
        }
        Ok(())
    }

    pub async fn finish(self) -> io::Result<Written> {
        let blob = match self.sink {
            Sink::Mem(segs) => Blob::from_segments(segs),
            Sink::File { mut out, file } => {
                out.flush().await?;
                out.get_mut().sync_data().await?;
                Blob::from_segments(vec![Segment::File {
                    file,
                    len: self.len,
                }])
            }
        };
        Ok(Written {
            blob,
            md5: self.md5.finalize().into(),
            crc64: self.crc.value(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(s: ByteStream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut s = s;
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn ranges_across_memory_and_file_segments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"defgh").unwrap();
        let file = BlobFile::new("f".into(), path.clone(), true);
        let blob = Blob::from_segments(vec![
            Segment::Mem(Bytes::from_static(b"abc")),
            Segment::File { file, len: 5 },
            Segment::Mem(Bytes::from_static(b"ij")),
        ]);
        assert_eq!(blob.len(), 10);
        assert_eq!(collect(blob.stream(0, 10)).await, b"abcdefghij");
        assert_eq!(collect(blob.stream(2, 9)).await, b"cdefghi");
        assert_eq!(collect(blob.stream(4, 5)).await, b"e");
        blob.doom();
        drop(blob);
        assert!(
            !path.exists(),
            "a doomed file goes away with its last reference"
        );
    }

    #[tokio::test]
    async fn writer_hashes_what_it_stores() {
        let mut w = BlobWriter::memory();
        w.write(Bytes::from_static(b"1234")).await.unwrap();
        w.write(Bytes::from_static(b"56789")).await.unwrap();
        let written = w.finish().await.unwrap();
        assert_eq!(written.crc64, 0x995dc9bbdf1939fa);
        assert_eq!(written.etag(), "25F9E794323B453885F5181F1B624D0B");
        assert_eq!(collect(written.blob.stream(0, 9)).await, b"123456789");
    }
}
