//! Shared server state: configuration, the store, faults and counters.
//!
//! The AccessKey is the one setting that changes while the server runs (a test rotating it, as
//! an operator would rotate a real one), so it sits behind an `RwLock` and each request reads a
//! snapshot of it ([`State::identity`]) before checking its signature. Everything else in
//! [`Config`] is fixed at start.

use std::net::SocketAddr;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
}

impl State {
    pub fn new(
        config: Config,
        access_key: AccessKey,
        store: Store,
        faults: Faults,
        addr: SocketAddr,
        restore_delay: Duration,
    ) -> State {
        State {
            config,
            access_key: RwLock::new(access_key),
            store,
            faults,
            counters: Counters::default(),
            addr,
            restore_delay_ms: AtomicU64::new(restore_delay.as_millis() as u64),
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
}
