//! When and how long to wait before trying a request again.
//!
//! Full-jitter exponential backoff ([`crate::backoff`]): before retry *n* the client sleeps a
//! uniformly random time in `[0, min(max_delay, base_delay · 2^(n-1))]`, which spreads many workers' retries apart instead
//! of having them hit a throttled service in lockstep. If OSS asked for a pause
//! (`x-oss-qos-delay-time`), the sleep is at least that long.
//!
//! The clock offset lives here too: when OSS rejects a request as `RequestTimeTooSkewed`, the
//! client learns the server's time from the `Date` header and signs every later request with the
//! corrected time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Retry settings. The defaults match the official OSS SDKs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryConfig {
    /// Attempts in total, the first included (default 3; 1 disables retries).
    pub max_attempts: u32,
    /// Backoff scale (default 200 ms).
    pub base_delay: Duration,
    /// Longest backoff (default 20 s).
    pub max_delay: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryConfig {
    /// No retries: every error goes straight to the caller.
    pub fn disabled() -> Self {
        RetryConfig {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The upper bound of the backoff before retry `retry` (1 for the first retry).
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        self.shape().ceiling(retry)
    }

    /// A full-jitter backoff before retry `retry`: uniform in `[0, backoff_cap(retry)]`.
    pub fn backoff(&self, retry: u32) -> Duration {
        self.shape().full_jitter(retry)
    }

    fn shape(&self) -> crate::backoff::Backoff {
        crate::backoff::Backoff::new(self.base_delay, self.max_delay)
    }

    /// The wait before retry `retry`, honouring the server's requested minimum.
    pub fn delay(&self, retry: u32, server_minimum: Option<Duration>) -> Duration {
        self.backoff(retry).max(server_minimum.unwrap_or_default())
    }

    pub(crate) fn validate(&self) -> Result<(), super::Error> {
        if self.max_attempts == 0 {
            return Err(super::Error::InvalidConfig(
                "retry max_attempts is 0: use 1 to disable retries, or more to allow them".into(),
            ));
        }
        if self.base_delay > self.max_delay {
            return Err(super::Error::InvalidConfig(format!(
                "retry base_delay {:?} exceeds max_delay {:?}: make base_delay the smaller one",
                self.base_delay, self.max_delay
            )));
        }
        Ok(())
    }
}

/// The difference between the server's clock and ours, shared by every clone of a client.
#[derive(Debug, Default)]
pub(crate) struct ClockOffset {
    millis: AtomicI64,
}

impl ClockOffset {
    /// Local time corrected by the learned offset.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.millis.load(Ordering::Relaxed))
    }

    /// Learns the offset from the server's time (a `Date` header) observed now.
    pub(crate) fn learn(&self, server_time: DateTime<Utc>) {
        let offset = server_time
            .signed_duration_since(Utc::now())
            .num_milliseconds();
        self.millis.store(offset, Ordering::Relaxed);
        tracing::warn!(
            offset_ms = offset,
            "OSS reported clock skew; signing with the server's time from now on"
        );
    }

    pub(crate) fn set(&self, offset: chrono::Duration) {
        self.millis
            .store(offset.num_milliseconds(), Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(self.millis.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_sdks() {
        let c = RetryConfig::default();
        assert_eq!(c.max_attempts, 3);
        assert_eq!(c.base_delay, Duration::from_millis(200));
        assert_eq!(c.max_delay, Duration::from_secs(20));
        assert!(c.validate().is_ok());
        assert!(
            RetryConfig {
                max_attempts: 0,
                ..c
            }
            .validate()
            .is_err()
        );
        assert!(
            RetryConfig {
                base_delay: Duration::from_secs(30),
                ..c
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn cap_doubles_then_saturates() {
        let c = RetryConfig::default();
        assert_eq!(c.backoff_cap(1), Duration::from_millis(200));
        assert_eq!(c.backoff_cap(2), Duration::from_millis(400));
        assert_eq!(c.backoff_cap(3), Duration::from_millis(800));
        assert_eq!(
            c.backoff_cap(8),
            Duration::from_millis(25_600).min(c.max_delay)
        );
        assert_eq!(c.backoff_cap(60), c.max_delay);
        assert_eq!(c.backoff_cap(u32::MAX), c.max_delay);
    }

    #[test]
    fn jittered_backoff_stays_within_bounds_and_spreads() {
        let c = RetryConfig::default();
        for retry in 1..10 {
            let cap = c.backoff_cap(retry);
            let samples: Vec<Duration> = (0..500).map(|_| c.backoff(retry)).collect();
            assert!(samples.iter().all(|d| *d <= cap));
            // Full jitter: values spread over the range, not bunched at the cap.
            assert!(samples.iter().any(|d| *d < cap / 2));
            assert!(samples.iter().any(|d| *d > cap / 2));
        }
    }

    #[test]
    fn server_delay_is_a_minimum() {
        let c = RetryConfig {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            ..Default::default()
        };
        for _ in 0..100 {
            assert!(c.delay(1, Some(Duration::from_millis(300))) >= Duration::from_millis(300));
            assert!(c.delay(1, None) <= Duration::from_millis(2));
        }
    }

    #[test]
    fn clock_offset_shifts_now() {
        let clock = ClockOffset::default();
        let server = Utc::now() + chrono::Duration::hours(1);
        clock.learn(server);
        let diff = clock
            .now()
            .signed_duration_since(server)
            .num_seconds()
            .abs();
        assert!(diff <= 1, "corrected clock is {diff}s from the server's");
    }
}
