//! Test data: reproducible bytes, so a failing case can be run again with the same objects.
//!
//! Two generators and no others, so every test's objects are made the same way: [`seeded`]
//! when a test picks its data by number, [`keyed`] when each object's bytes should differ by
//! key (a copy landing under the wrong key then shows as wrong bytes).

/// `len` pseudo-random bytes, the same for the same `seed`.
pub fn seeded(seed: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    fastrand::Rng::with_seed(seed).fill(&mut data);
    data
}

/// `len` pseudo-random bytes that differ from key to key and are the same for the same key.
pub fn keyed(key: &str, len: usize) -> Vec<u8> {
    seeded(key_seed(key), len)
}

/// FNV-1a of the key: cheap, stable across runs and platforms.
fn key_seed(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_keys_differ() {
        assert_eq!(seeded(7, 64), seeded(7, 64));
        assert_ne!(seeded(7, 64), seeded(8, 64));
        assert_eq!(keyed("a/b", 100), keyed("a/b", 100));
        assert_ne!(keyed("a/b", 100), keyed("a/c", 100));
        assert_eq!(seeded(1, 0), Vec::<u8>::new());
    }
}
