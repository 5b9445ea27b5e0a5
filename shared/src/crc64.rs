//! CRC-64/XZ — the checksum OSS returns in `x-oss-hash-crc64ecma` (as an unsigned decimal).
//!
//! OSS calls it "CRC-64 ECMA", but the parameters are those of CRC-64/XZ: the ECMA-182
//! polynomial, reflected, initial value and final XOR all ones (check value `0x995DC9BBDF1939FA`).
//! Not to be confused with S3's CRC64NVME, which uses another polynomial.
//!
//! [`Crc64`] is incremental, so bytes are checked while they stream; [`combine`] joins the
//! checksums of consecutive pieces (multipart parts) into the checksum of the whole, which is how
//! ferry proves an object assembled from parts without reading it again.

use crc_fast::{CrcAlgorithm, Digest};

/// An incremental CRC-64/XZ.
#[derive(Clone)]
pub struct Crc64 {
    digest: Digest,
    len: u64,
}

impl Crc64 {
    /// A checksum of no bytes yet.
    pub fn new() -> Self {
        Crc64 {
            digest: Digest::new(CrcAlgorithm::Crc64Xz),
            len: 0,
        }
    }

    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// The checksum of everything fed so far (the digest can keep going).
    pub fn value(&self) -> u64 {
        self.digest.finalize()
    }

    /// How many bytes were fed.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes were fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Crc64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crc64")
            .field("value", &self.value())
            .field("len", &self.len)
            .finish()
    }
}

/// CRC-64/XZ of a whole buffer.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut c = Crc64::new();
    c.update(bytes);
    c.value()
}

/// The checksum of `A ‖ B` from `crc(A)`, `crc(B)` and `len(B)`.
pub fn combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    if len_b == 0 {
        return crc_a;
    }
    crc_fast::checksum_combine(CrcAlgorithm::Crc64Xz, crc_a, crc_b, len_b)
}

/// Parses the decimal header form (`x-oss-hash-crc64ecma`, ListParts `HashCrc64ecma`).
pub fn parse_header(value: &str) -> Option<u64> {
    value.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from the official OSS Go V2 SDK's CRC-64 tests, plus extra ones.
    #[test]
    fn reference_vectors() {
        assert_eq!(checksum(b""), 0);
        assert_eq!(checksum(b"123456789"), 0x995dc9bbdf1939fa);
        assert_eq!(checksum(b"123456789"), 11051210869376104954);
        let b = b"This is a test of the emergency broadcast system.";
        assert_eq!(checksum(b), 0x27db187fc15bbc72);
        assert_eq!(checksum(b"hello world"), 5981764153023615706);
        let mut both = b"123456789".to_vec();
        both.extend_from_slice(b);
        assert_eq!(checksum(&both), 0x6a7aa19fcbf48688);
        assert_eq!(
            combine(0x995dc9bbdf1939fa, 0x27db187fc15bbc72, b.len() as u64),
            0x6a7aa19fcbf48688
        );
    }

    #[test]
    fn multipart_vector_parts_and_combine() {
        let buf: Vec<u8> = (0..256000u32).map(|i| (i % 251) as u8).collect();
        let parts = [&buf[..102400], &buf[102400..204800], &buf[204800..]];
        let crcs: Vec<u64> = parts.iter().map(|p| checksum(p)).collect();
        assert_eq!(
            crcs,
            [
                5409316634556368277,
                8193091521729089674,
                3500614162694175473
            ]
        );
        let whole = parts
            .iter()
            .zip(&crcs)
            .fold(0u64, |acc, (p, c)| combine(acc, *c, p.len() as u64));
        assert_eq!(whole, 13522109751786571237);
        assert_eq!(checksum(&buf), 13522109751786571237);
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut c = Crc64::new();
        for chunk in data.chunks(333) {
            c.update(chunk);
        }
        assert_eq!(c.value(), checksum(&data));
        assert_eq!(c.len(), data.len() as u64);
    }

    #[test]
    fn header_form_is_decimal() {
        assert_eq!(
            parse_header("11051210869376104954"),
            Some(0x995dc9bbdf1939fa)
        );
        assert_eq!(parse_header("abc"), None);
    }

    proptest::proptest! {
        #[test]
        fn combine_matches_concatenation(a in proptest::collection::vec(proptest::num::u8::ANY, 0..2000),
                                         b in proptest::collection::vec(proptest::num::u8::ANY, 0..2000)) {
            let mut ab = a.clone();
            ab.extend_from_slice(&b);
            proptest::prop_assert_eq!(combine(checksum(&a), checksum(&b), b.len() as u64), checksum(&ab));
        }
    }
}
