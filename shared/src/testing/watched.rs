//! A source that forwards every call to a real one and watches it: how many listing pages and
//! keys it served, how many reads were open at once, and a change made to the store right
//! after the first listing (a listing gone stale).
//!
//! Tests that need to see into the engine's use of a source wrap the real adapter in
//! [`Watched`] instead of writing a forwarding source of their own.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;

use crate::source::{
    ByteStream, GetRequest, ListPage, ListRequest, ObjectHead, Opened, RestoreOutcome, RestoreTier,
    Source, SourceError,
};

type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, SourceError>> + Send + 'a>>;
type Change = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Forwards to `inner`, counting the listing pages and keys served and the reads open at the
/// same time (a read is open from the GET or open call until its byte stream is dropped), and
/// running a change once after the first listing page.
pub struct Watched<S> {
    inner: S,
    pages: AtomicU64,
    keys: AtomicU64,
    reads: Arc<Gauge>,
    after_first_listing: Mutex<Option<Change>>,
}

impl<S: Source> Watched<S> {
    /// Watches `inner`.
    pub fn new(inner: S) -> Self {
        Watched {
            inner,
            pages: AtomicU64::new(0),
            keys: AtomicU64::new(0),
            reads: Arc::default(),
            after_first_listing: Mutex::new(None),
        }
    }

    /// Runs `change` once, after the first listing page was read and before it is returned, so
    /// the copies of that page see the store as `change` left it.
    pub fn after_first_listing(self, change: impl Future<Output = ()> + Send + 'static) -> Self {
        *self.after_first_listing.lock().expect("change lock") = Some(Box::pin(change));
        self
    }

    /// Listing pages served so far (one listing request each).
    pub fn pages(&self) -> u64 {
        self.pages.load(Ordering::SeqCst)
    }

    /// Keys the listing pages served so far.
    pub fn keys(&self) -> u64 {
        self.keys.load(Ordering::SeqCst)
    }

    /// The most reads that were open at the same time so far.
    pub fn peak_reads(&self) -> usize {
        self.reads.peak.load(Ordering::SeqCst)
    }

    /// Keeps `open` counted until `body` is dropped.
    fn held(body: ByteStream, open: Open) -> ByteStream {
        Box::pin(body.map(move |chunk| {
            let _open = &open;
            chunk
        }))
    }
}

#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
}

/// One open read: counted while it lives.
struct Open(Arc<Gauge>);

impl Open {
    fn new(gauge: Arc<Gauge>) -> Self {
        let now = gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
        gauge.peak.fetch_max(now, Ordering::SeqCst);
        Open(gauge)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<S: Source> Source for Watched<S> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn list<'a>(&'a self, req: &'a ListRequest) -> Fut<'a, ListPage> {
        Box::pin(async move {
            let page = self.inner.list(req).await?;
            self.pages.fetch_add(1, Ordering::SeqCst);
            self.keys
                .fetch_add(page.objects.len() as u64, Ordering::SeqCst);
            let change = self.after_first_listing.lock().expect("change lock").take();
            if let Some(change) = change {
                change.await;
            }
            Ok(page)
        })
    }

    fn head<'a>(&'a self, key: &'a str) -> Fut<'a, ObjectHead> {
        self.inner.head(key)
    }

    fn get<'a>(&'a self, req: GetRequest<'a>) -> Fut<'a, ByteStream> {
        Box::pin(async move {
            // Counted from the call, so reads waiting on a slow store count as open.
            let open = Open::new(self.reads.clone());
            let body = self.inner.get(req).await?;
            Ok(Self::held(body, open))
        })
    }

    fn open<'a>(&'a self, key: &'a str) -> Fut<'a, Opened> {
        Box::pin(async move {
            let open = Open::new(self.reads.clone());
            let opened = self.inner.open(key).await?;
            Ok(Opened {
                head: opened.head,
                body: Self::held(opened.body, open),
            })
        })
    }

    fn restore<'a>(
        &'a self,
        key: &'a str,
        days: u32,
        tier: RestoreTier,
    ) -> Fut<'a, RestoreOutcome> {
        self.inner.restore(key, days, tier)
    }
}
