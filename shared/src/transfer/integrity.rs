//! Proving bytes (architecture invariant 4).
//!
//! Every byte read from a source passes through an [`Inspector`], which computes CRC-64/XZ (what
//! OSS reports) and, where the source holds a checksum of its own, the same algorithm over the
//! same bytes: MD5 (S3 single-part ETag), CRC-64/NVME and CRC-32C (S3 full-object checksums).
//! The copy then checks the source's checksum against the bytes read — before the last byte of a
//! single PUT is released and before a multipart upload is completed, so disputed bytes never
//! become the object — and the client checks OSS's CRC-64 against the bytes sent: the same
//! bytes, so the chain source → ferry → OSS is closed.
//!
//! CRCs of consecutive pieces combine, so a multipart copy whose parts run in parallel still
//! proves the whole object. MD5 does not combine: it is checked when the object is read in one
//! piece, and large single-part S3 objects rely on CRC-64 end to end.

use std::sync::{Arc, Mutex};

use crc_fast::{CrcAlgorithm, Digest as CrcDigest};
use futures_util::StreamExt;
use md5::{Digest as _, Md5};

use crate::source::{ByteStream, SourceChecksums, SourceError, SourceErrorKind};

/// Which digests to compute besides CRC-64/XZ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Compute MD5 (only meaningful for a read of the whole object).
    pub md5: bool,
    /// Compute CRC-64/NVME, to check S3's full-object checksum.
    pub crc64nvme: bool,
    /// Compute CRC-32C, to check S3's full-object checksum.
    pub crc32c: bool,
}

impl Wanted {
    /// What is worth computing to check `checksums`; MD5 only for a read of the whole object.
    pub fn for_source(checksums: &SourceChecksums, whole_object: bool) -> Self {
        Wanted {
            md5: whole_object && checksums.md5.is_some(),
            crc64nvme: checksums.crc64nvme.is_some(),
            crc32c: checksums.crc32c.is_some(),
        }
    }
}

/// Digests of the bytes that went through one stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Digests {
    /// Bytes that went through.
    pub len: u64,
    /// CRC-64/XZ of those bytes, as OSS computes it (`x-oss-hash-crc64ecma`).
    pub crc64: u64,
    /// MD5 of those bytes, when it was wanted.
    pub md5: Option<[u8; 16]>,
    /// CRC-64/NVME of those bytes, when it was wanted.
    pub crc64nvme: Option<u64>,
    /// CRC-32C of those bytes, when it was wanted.
    pub crc32c: Option<u32>,
}

struct Running {
    len: u64,
    crc64: CrcDigest,
    md5: Option<Md5>,
    crc64nvme: Option<CrcDigest>,
    crc32c: Option<CrcDigest>,
}

impl Running {
    fn new(wanted: Wanted) -> Self {
        Running {
            len: 0,
            crc64: CrcDigest::new(CrcAlgorithm::Crc64Xz),
            md5: wanted.md5.then(Md5::new),
            crc64nvme: wanted
                .crc64nvme
                .then(|| CrcDigest::new(CrcAlgorithm::Crc64Nvme)),
            crc32c: wanted
                .crc32c
                .then(|| CrcDigest::new(CrcAlgorithm::Crc32Iscsi)),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        self.crc64.update(bytes);
        if let Some(d) = &mut self.md5 {
            d.update(bytes);
        }
        if let Some(d) = &mut self.crc64nvme {
            d.update(bytes);
        }
        if let Some(d) = &mut self.crc32c {
            d.update(bytes);
        }
    }

    fn digests(&self) -> Digests {
        Digests {
            len: self.len,
            crc64: self.crc64.finalize(),
            md5: self.md5.as_ref().map(|d| d.clone().finalize().into()),
            crc64nvme: self.crc64nvme.as_ref().map(|d| d.finalize()),
            crc32c: self.crc32c.as_ref().map(|d| d.finalize() as u32),
        }
    }
}

/// Computes digests over a stream as it is consumed; read them with [`Inspector::digests`]
/// once the stream has been sent.
#[derive(Clone)]
pub struct Inspector(Arc<Mutex<Running>>);

impl Inspector {
    /// Wraps `stream`: the returned stream yields the same bytes and feeds the digests.
    pub fn wrap(stream: ByteStream, wanted: Wanted) -> (ByteStream, Inspector) {
        let inspector = Inspector(Arc::new(Mutex::new(Running::new(wanted))));
        let feed = inspector.clone();
        let stream = stream.map(move |chunk| {
            if let Ok(bytes) = &chunk {
                feed.0
                    .lock()
                    .expect("digest lock is never poisoned")
                    .update(bytes);
            }
            chunk
        });
        (Box::pin(stream), inspector)
    }

    /// [`wrap`](Self::wrap) for a read of a whole `len`-byte object: the chunk that completes
    /// the object is released only if the bytes agree with the source's `checksums`. On a
    /// mismatch the stream fails before its last byte, so an upload fed from it never completes
    /// and unproven bytes never become the destination object.
    pub fn wrap_proven(
        stream: ByteStream,
        checksums: &SourceChecksums,
        len: u64,
        resource: &str,
    ) -> (ByteStream, Inspector) {
        let (stream, inspector) = Inspector::wrap(stream, Wanted::for_source(checksums, true));
        let check = inspector.clone();
        let (checksums, resource) = (checksums.clone(), resource.to_owned());
        let mut seen = 0u64;
        let stream = stream.map(move |chunk| {
            let bytes = chunk?;
            seen += bytes.len() as u64;
            if seen == len {
                check_source(&checksums, &check.digests()).map_err(|reason| {
                    SourceError::new(
                        SourceErrorKind::Integrity,
                        resource.as_str(),
                        reason.to_string(),
                    )
                })?;
            }
            Ok(bytes)
        });
        (Box::pin(stream), inspector)
    }

    /// The digests of the bytes the stream has passed so far.
    pub fn digests(&self) -> Digests {
        self.0
            .lock()
            .expect("digest lock is never poisoned")
            .digests()
    }
}

/// Joins the digests of consecutive pieces (multipart parts, in order) into the whole object's.
/// MD5 cannot be joined and is dropped.
pub fn combine(pieces: &[Digests]) -> Digests {
    let mut whole = Digests {
        crc64nvme: Some(0),
        crc32c: Some(0),
        ..Default::default()
    };
    for p in pieces {
        whole.crc64 = crate::crc64::combine(whole.crc64, p.crc64, p.len);
        whole.crc64nvme = match (whole.crc64nvme, p.crc64nvme) {
            (Some(a), Some(b)) => Some(join(CrcAlgorithm::Crc64Nvme, a, b, p.len)),
            _ => None,
        };
        whole.crc32c = match (whole.crc32c, p.crc32c) {
            (Some(a), Some(b)) => {
                Some(join(CrcAlgorithm::Crc32Iscsi, a as u64, b as u64, p.len) as u32)
            }
            _ => None,
        };
        whole.len += p.len;
    }
    if pieces.is_empty() {
        whole.crc64nvme = None;
        whole.crc32c = None;
    }
    whole
}

fn join(algorithm: CrcAlgorithm, a: u64, b: u64, len_b: u64) -> u64 {
    if len_b == 0 {
        a
    } else {
        crc_fast::checksum_combine(algorithm, a, b, len_b)
    }
}

/// The bytes read do not match a checksum the source holds for them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("source {algorithm} is {expected} but the bytes read give {got}")]
pub struct ChecksumMismatch {
    /// `MD5`, `CRC-64/NVME`, `CRC-32C` or `CRC-64` (OSS's).
    pub algorithm: &'static str,
    /// The value the source holds.
    pub expected: String,
    /// The value computed from the bytes read.
    pub got: String,
}

/// Checks the bytes read against every checksum the source holds for them. The error names the
/// algorithm and both values.
pub fn check_source(checksums: &SourceChecksums, read: &Digests) -> Result<(), ChecksumMismatch> {
    let mismatch = |algorithm, expected: String, got: String| {
        Err(ChecksumMismatch {
            algorithm,
            expected,
            got,
        })
    };
    if let (Some(expected), Some(got)) = (checksums.md5, read.md5)
        && expected != got
    {
        return mismatch("MD5", hex::encode(expected), hex::encode(got));
    }
    if let (Some(expected), Some(got)) = (checksums.crc64nvme, read.crc64nvme)
        && expected != got
    {
        return mismatch(
            "CRC-64/NVME",
            format!("{expected:016x}"),
            format!("{got:016x}"),
        );
    }
    if let (Some(expected), Some(got)) = (checksums.crc32c, read.crc32c)
        && expected != got
    {
        return mismatch("CRC-32C", format!("{expected:08x}"), format!("{got:08x}"));
    }
    if let Some(expected) = checksums.oss_crc64
        && expected != read.crc64
    {
        return mismatch("CRC-64", expected.to_string(), read.crc64.to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn stream_of(chunks: Vec<&'static [u8]>) -> ByteStream {
        Box::pin(futures_util::stream::iter(
            chunks.into_iter().map(|c| Ok(Bytes::from_static(c))),
        ))
    }

    #[tokio::test]
    async fn inspector_sees_every_byte() {
        let all = Wanted {
            md5: true,
            crc64nvme: true,
            crc32c: true,
        };
        let (mut s, inspector) = Inspector::wrap(stream_of(vec![b"1234", b"56789"]), all);
        while s.next().await.is_some() {}
        let d = inspector.digests();
        assert_eq!(d.len, 9);
        assert_eq!(d.crc64, 0x995dc9bbdf1939fa);
        assert_eq!(d.crc64nvme, Some(0xae8b14860a799888));
        assert_eq!(d.crc32c, Some(0xe3069283));
        assert_eq!(
            hex::encode(d.md5.unwrap()),
            "25f9e794323b453885f5181f1b624d0b"
        );
    }

    #[tokio::test]
    async fn parts_combine_into_the_whole() {
        let all = Wanted {
            md5: false,
            crc64nvme: true,
            crc32c: true,
        };
        let mut pieces = Vec::new();
        for part in [&b"1234"[..], b"", b"56789"] {
            let (mut s, i) = Inspector::wrap(
                Box::pin(futures_util::stream::iter([Ok(Bytes::copy_from_slice(
                    part,
                ))])),
                all,
            );
            while s.next().await.is_some() {}
            pieces.push(i.digests());
        }
        let whole = combine(&pieces);
        assert_eq!((whole.len, whole.crc64), (9, 0x995dc9bbdf1939fa));
        assert_eq!(whole.crc64nvme, Some(0xae8b14860a799888));
        assert_eq!(whole.crc32c, Some(0xe3069283));
    }

    #[tokio::test]
    async fn a_proven_stream_withholds_the_last_chunk_of_disputed_bytes() {
        let right = SourceChecksums {
            crc32c: Some(0xe3069283),
            ..Default::default()
        };
        let (s, _) = Inspector::wrap_proven(stream_of(vec![b"1234", b"56789"]), &right, 9, "k");
        let chunks: Vec<_> = s.collect().await;
        assert!(chunks.iter().all(Result::is_ok));

        let wrong = SourceChecksums {
            crc32c: Some(1),
            ..Default::default()
        };
        let (s, _) = Inspector::wrap_proven(stream_of(vec![b"1234", b"56789"]), &wrong, 9, "k");
        let chunks: Vec<_> = s.collect().await;
        assert_eq!(chunks[0].as_ref().unwrap().as_ref(), b"1234");
        let err = chunks[1].as_ref().unwrap_err();
        assert_eq!(err.kind, SourceErrorKind::Integrity);
        assert!(err.message.contains("CRC-32C"), "{err}");
    }

    #[test]
    fn a_mismatch_names_the_algorithm() {
        let sums = SourceChecksums {
            crc32c: Some(1),
            ..Default::default()
        };
        let read = Digests {
            crc32c: Some(2),
            ..Default::default()
        };
        assert_eq!(check_source(&sums, &read).unwrap_err().algorithm, "CRC-32C");
        assert!(check_source(&SourceChecksums::default(), &read).is_ok());
    }
}
