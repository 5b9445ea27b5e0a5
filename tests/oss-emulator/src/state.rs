//! Shared server state: configuration, the store, faults, counters and the instance's clock.
//!
//! The AccessKey can change while the server runs (a test rotating it, as an operator would
//! rotate a real one), so it sits behind an `RwLock` and each request reads a snapshot of it
//! ([`State::identity`]) before checking its signature. Everything in [`Config`] is fixed at
//! start.
//!
//! Each instance has its own clock: real time plus an offset ([`State::now`],
//! [`State::set_clock_offset`]), so a test can give the server a clock that differs from the
//! client's without touching the process (several emulators may run in one test process, each
//! with its own offset). Everything time-based in the instance reads it: the `Date` header, the
//! request-time skew check and presigned-URL expiry, Last-Modified and the other stored times,
//! and restore progress.

use std::net::SocketAddr;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ferry::secret::Secret;

use crate::counters::Counters;
use crate::faults::Faults;
use crate::store::Store;

/// The settings fixed at start.
#[derive(Clone, Debug)]
pub struct Config {
    /// Region id without the `oss-` prefix (`cn-hangzhou`).
    pub region: String,
    /// Extra base domains for virtual-hosted addressing (`bucket.<domain>`).
    pub domains: Vec<String>,
}

/// The AccessKey pair requests must be signed with.
#[derive(Clone, Debug)]
pub struct AccessKey {
    pub id: String,
    pub secret: Secret,
}

/// What one request is checked against: the AccessKey current when it arrived, and the region.
#[derive(Clone, Debug)]
pub struct Identity {
    pub access_key_id: String,
    pub secret: Secret,
    /// Region id without the `oss-` prefix.
    pub region: String,
}

pub struct State {
    pub config: Config,
    access_key: RwLock<AccessKey>,
    pub store: Store,
    pub faults: Faults,
    pub counters: Counters,
    pub addr: SocketAddr,
    restore_delay_ms: AtomicU64,
    /// The instance's clock minus real time, in milliseconds.
    clock_offset_ms: AtomicI64,
    /// Buckets whose requester pays: requests must say they will (`x-oss-request-payer` /
    /// `x-amz-request-payer: requester`).
    requester_pays: RwLock<std::collections::BTreeSet<String>>,
}

impl State {
    pub fn new(
        config: Config,
        access_key: AccessKey,
        store: Store,
        faults: Faults,
        addr: SocketAddr,
        restore_delay: Duration,
        clock_offset: TimeDelta,
    ) -> State {
        State {
            config,
            access_key: RwLock::new(access_key),
            store,
            faults,
            counters: Counters::default(),
            addr,
            restore_delay_ms: AtomicU64::new(restore_delay.as_millis() as u64),
            clock_offset_ms: AtomicI64::new(clock_offset.num_milliseconds()),
            requester_pays: RwLock::default(),
        }
    }

    /// The current AccessKey id.
    pub fn access_key_id(&self) -> String {
        self.read_key().id.clone()
    }

    /// A snapshot of what the next request is checked against.
    pub fn identity(&self) -> Identity {
        let key = self.read_key();
        Identity {
            access_key_id: key.id.clone(),
            secret: key.secret.clone(),
            region: self.config.region.clone(),
        }
    }

    /// Replaces the AccessKey; requests already being checked keep the old one.
    pub fn set_access_key(&self, key: AccessKey) {
        *self
            .access_key
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = key;
    }

    fn read_key(&self) -> std::sync::RwLockReadGuard<'_, AccessKey> {
        // Nothing panics while holding the lock, and a plain assignment cannot leave it torn.
        self.access_key
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How long a RestoreObject takes to finish.
    pub fn restore_delay(&self) -> Duration {
        Duration::from_millis(self.restore_delay_ms.load(Ordering::Relaxed))
    }

    pub fn set_restore_delay(&self, d: Duration) {
        self.restore_delay_ms
            .store(d.as_millis() as u64, Ordering::Relaxed);
    }

    /// The instance's clock: real time plus the clock offset.
    pub fn now(&self) -> DateTime<Utc> {
        let offset = self.clock_offset();
        Utc::now()
            .checked_add_signed(offset)
            .unwrap_or(if offset < TimeDelta::zero() {
                DateTime::<Utc>::MIN_UTC
            } else {
                DateTime::<Utc>::MAX_UTC
            })
    }

    /// [`State::now`] as Unix milliseconds, the unit stored times use.
    pub fn now_millis(&self) -> i64 {
        Utc::now()
            .timestamp_millis()
            .saturating_add(self.clock_offset_ms.load(Ordering::Relaxed))
    }

    /// How far the instance's clock is from real time (negative: behind).
    pub fn clock_offset(&self) -> TimeDelta {
        // Never i64::MIN: it is only ever set from a TimeDelta's milliseconds.
        TimeDelta::try_milliseconds(self.clock_offset_ms.load(Ordering::Relaxed))
            .unwrap_or(TimeDelta::MIN)
    }

    /// Moves the instance's clock to real time plus `offset` (kept to the millisecond).
    pub fn set_clock_offset(&self, offset: TimeDelta) {
        self.clock_offset_ms
            .store(offset.num_milliseconds(), Ordering::Relaxed);
    }
}

impl State {
    /// Makes `bucket` a requester-pays bucket, or not.
    pub fn set_requester_pays(&self, bucket: &str, on: bool) {
        let mut set = self.requester_pays.write().expect("requester-pays lock");
        match on {
            true => set.insert(bucket.to_owned()),
            false => set.remove(bucket),
        };
    }

    /// Whether requests to `bucket` must say the requester pays.
    pub fn requester_pays(&self, bucket: &str) -> bool {
        self.requester_pays
            .read()
            .expect("requester-pays lock")
            .contains(bucket)
    }
}
