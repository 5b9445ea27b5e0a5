//! Shared server state: configuration, the store, faults and counters.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ferry::secret::Secret;

use crate::counters::Counters;
use crate::faults::Faults;
use crate::store::Store;

/// The identity the emulator accepts requests for.
#[derive(Clone, Debug)]
pub struct Config {
    pub access_key_id: String,
    pub secret: Secret,
    /// Region id without the `oss-` prefix (`cn-hangzhou`).
    pub region: String,
    /// Extra base domains for virtual-hosted addressing (`bucket.<domain>`).
    pub domains: Vec<String>,
}

pub struct State {
    pub config: Config,
    pub store: Store,
    pub faults: Faults,
    pub counters: Counters,
    pub addr: SocketAddr,
    restore_delay_ms: AtomicU64,
}

impl State {
    pub fn new(
        config: Config,
        store: Store,
        faults: Faults,
        addr: SocketAddr,
        restore_delay: Duration,
    ) -> State {
        State {
            config,
            store,
            faults,
            counters: Counters::default(),
            addr,
            restore_delay_ms: AtomicU64::new(restore_delay.as_millis() as u64),
        }
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
