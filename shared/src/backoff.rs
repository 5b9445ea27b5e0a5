//! The one backoff of ferry: how long to wait before trying something again.
//!
//! Exponential and capped: before retry *n* (1 for the first) the ceiling is
//! `min(max, base · 2^(n-1))`. Jitter spreads the waits of many workers that failed together —
//! against one throttled service, or racing for one document — so they do not come back in
//! lockstep. Two shapes:
//!
//! * [`Backoff::full_jitter`] — uniform in `[0, ceiling]`: the most spread, for requests to a
//!   service that may be overloaded (the OSS client; the OSS SDKs and AWS's guidance use it).
//! * [`Backoff::equal_jitter`] — uniform in `[ceiling/2, ceiling]`: a wait that still grows for
//!   certain, for work that failed and should not come back at once (a copy, a queue entry, a
//!   compare-and-swap conflict, a standalone redelivery).
//!
//! Every retry loop in ferry takes its waits from here; their bases and caps say why next to
//! each loop.

use std::time::Duration;

/// Exponential backoff from `base`, capped at `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first retry (the ceiling doubles from it).
    pub base: Duration,
    /// The longest ceiling.
    pub max: Duration,
}

impl Backoff {
    /// Backoff from `base`, capped at `max`.
    pub const fn new(base: Duration, max: Duration) -> Self {
        Backoff { base, max }
    }

    /// The ceiling of the wait before retry `retry` (1 for the first): `min(max, base·2^(n-1))`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// Uniform in `[0, ceiling(retry)]`.
    pub fn full_jitter(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry).as_micros() as u64;
        Duration::from_micros(fastrand::u64(0..=ceiling))
    }

    /// Uniform in `[ceiling(retry)/2, ceiling(retry)]`.
    pub fn equal_jitter(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry).as_micros() as u64;
        Duration::from_micros(ceiling / 2 + fastrand::u64(0..=ceiling - ceiling / 2))
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use proptest::prelude::*;
    use std::time::Duration;

    proptest! {
        #[test]
        fn waits_grow_within_their_ceiling(base_ms in 1u64..5_000, max_ms in 1u64..60_000, retry in 0u32..100) {
            let b = Backoff::new(Duration::from_millis(base_ms), Duration::from_millis(max_ms));
            let ceiling = b.ceiling(retry);
            prop_assert!(ceiling <= b.max);
            prop_assert!(b.ceiling(retry + 1) >= ceiling, "never shrinks");
            prop_assert!(b.full_jitter(retry) <= ceiling);
            let equal = b.equal_jitter(retry);
            prop_assert!(equal <= ceiling && equal >= ceiling / 2, "{equal:?} of {ceiling:?}");
        }
    }

    #[test]
    fn the_first_retry_waits_about_the_base() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(b.ceiling(1), Duration::from_millis(100));
        assert_eq!(b.ceiling(4), Duration::from_millis(800));
        assert_eq!(b.ceiling(5), Duration::from_secs(1));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(1));
    }
}
