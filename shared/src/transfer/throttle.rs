//! A bandwidth limit shared by every stream of a transfer (bytes per second, token bucket).
//!
//! The limiter sits on the source side: chunks are released only when the bucket holds enough
//! tokens, so reads (and therefore writes) never exceed the rate on average, with bursts of at
//! most one second's worth.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use futures_util::StreamExt;

use crate::source::ByteStream;

/// A bandwidth limit in bytes per second, shared by every stream that reads through it.
#[derive(Debug)]
pub struct RateLimiter {
    bytes_per_second: u64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl RateLimiter {
    /// A limiter allowing `bytes_per_second` (at least 1).
    pub fn new(bytes_per_second: u64) -> Self {
        let rate = bytes_per_second.max(1);
        RateLimiter {
            bytes_per_second: rate,
            state: Mutex::new(Bucket {
                tokens: rate as f64,
                refilled: Instant::now(),
            }),
        }
    }

    /// The rate allowed, in bytes per second.
    pub fn bytes_per_second(&self) -> u64 {
        self.bytes_per_second
    }

    /// Takes `n` bytes' worth of tokens, waiting as long as the rate requires. The bucket may go
    /// into debt for a chunk larger than a second's worth; later callers then wait it off.
    pub async fn acquire(&self, n: u64) {
        let wait = {
            let mut b = self.state.lock().expect("limiter lock");
            let now = Instant::now();
            let rate = self.bytes_per_second as f64;
            b.tokens = (b.tokens + now.duration_since(b.refilled).as_secs_f64() * rate).min(rate);
            b.refilled = now;
            b.tokens -= n as f64;
            if b.tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-b.tokens / rate)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// `stream`, released no faster than the limit.
    pub fn limit(self: &std::sync::Arc<Self>, stream: ByteStream) -> ByteStream {
        let limiter = self.clone();
        Box::pin(stream.then(move |chunk| {
            let limiter = limiter.clone();
            async move {
                if let Ok(bytes) = &chunk {
                    limiter.acquire(bytes.len() as u64).await;
                }
                chunk
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_average_rate_holds() {
        let limiter = RateLimiter::new(1000);
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            limiter.acquire(1000).await;
        }
        // One second of burst, then 4,000 bytes at 1,000 B/s.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(3900) && elapsed <= Duration::from_millis(4100),
            "{elapsed:?}"
        );
    }
}
