//! The local-directory adapter of the [`StateStore`] port, for standalone runs.
//!
//! A key is a file path under the store's directory (`jobs/j1/runs/r1/progress.json` is the
//! file of that name), so a run's state can be read with ordinary tools. The guarantees the
//! pipeline builds on, and how they are kept:
//!
//! * **No torn values.** Every write goes to a temporary file in `.ferry-store/tmp/`, is synced,
//!   and is then moved into place with a rename (or a hard link), which readers see all at once.
//!   The directory is synced afterwards so the new name survives a crash.
//! * **Create-only writes** (`put_if_absent`) hard-link the temporary file to the key's path;
//!   the link fails if the path exists, so of two writers exactly one wins and the other's value
//!   never replaces it.
//! * **Compare-and-swap** (`put_if_match`) reads the current value, compares its version and
//!   renames the new value into place while holding the store's lock: a mutex for the tasks of
//!   this process and an exclusive `flock` on `.ferry-store/lock` for other processes sharing the
//!   directory. Unconditional `put`s take the lock too, so they cannot slip between a
//!   compare-and-swap's check and its write. Temporary files are written and synced before the
//!   lock is taken, so the lock is held only for a read and a rename.
//!
//! Versions are the SHA-256 of the value, in hex. Keys must pass [`check_key`]; in addition the
//! first segment `.ferry-store` is taken by the store itself, and a key cannot be stored where
//! another key is a directory (`a` and `a/b` cannot both exist).
//!
//! Blocking file I/O runs on tokio's blocking pool, never on the async workers.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{Fut, StateError, StateErrorKind, StateStore, Versioned, check_key};

/// The store's own files live under this first segment; no key may start with it.
const RESERVED: &str = ".ferry-store";
/// Temporary files older than this are left over from a crash and removed on open.
const STALE_TMP_AGE: Duration = Duration::from_secs(60 * 60);

static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// How many writes local state stores of this process have started (every write goes through
/// one temporary file): what a benchmark counts as state writes.
pub fn writes_started() -> u64 {
    NEXT_TMP.load(Ordering::Relaxed)
}

/// A state store in a local directory. Clones share the same lock.
#[derive(Clone, Debug)]
pub struct LocalStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    tmp: PathBuf,
    /// The open lock file. The mutex serialises this process's writers (they share the one
    /// open file, and `flock` does not exclude holders of the same open file); the `flock`
    /// taken on it excludes other processes and other `LocalStore`s on the same directory.
    lock: Mutex<File>,
    /// Set once a write found the directory's file system full (see [`LocalStore::full`]).
    full: std::sync::atomic::AtomicBool,
}

impl LocalStore {
    /// A blocking file task that panicked or was cancelled: the write may not have happened.
    fn unfinished(&self, e: tokio::task::JoinError) -> StateError {
        StateError::new(
            StateErrorKind::Transient,
            self.describe(),
            format!("a state store task did not finish: {e}"),
        )
    }

    /// Opens (creating if needed) the store in directory `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<LocalStore, StateError> {
        let root = path.as_ref().to_path_buf();
        let describe = format!("dir:{}", root.display());
        let fail = |what: &str, path: &Path, e: io::Error| {
            StateError::new(
                StateErrorKind::Permanent,
                &describe,
                format!(
                    "cannot {what} {}: {e}; check the state directory's path and permissions",
                    path.display()
                ),
            )
        };
        let tmp = root.join(RESERVED).join("tmp");
        fs::create_dir_all(&tmp).map_err(|e| fail("create", &tmp, e))?;
        let lock_path = root.join(RESERVED).join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| fail("open", &lock_path, e))?;
        remove_stale_tmp(&tmp);
        Ok(LocalStore {
            inner: Arc::new(Inner {
                root,
                tmp,
                lock: Mutex::new(lock),
                full: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// Why the run cannot go on, once a write found the state directory's file system full
    /// (no space, or the quota used up). Nothing written before is damaged — every value is
    /// moved into place whole — so the same command resumes the run once there is room.
    pub fn full(&self) -> Option<String> {
        self.inner.full.load(Ordering::Relaxed).then(|| {
            format!(
                "the state directory {} is full (no space left on its file system): free some \
                 space, or move the directory with its contents elsewhere and pass that \
                 --state-dir, then run the same command again; the run resumes where it stopped",
                self.inner.root.display()
            )
        })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Runs `work` on the blocking pool with the checked key.
    fn run<T: Send + 'static>(
        &self,
        key: &str,
        work: impl FnOnce(&Inner, &str) -> Result<T, StateError> + Send + 'static,
    ) -> Fut<'_, T> {
        let inner = Arc::clone(&self.inner);
        let key = key.to_owned();
        Box::pin(async move {
            inner.check(&key)?;
            tokio::task::spawn_blocking(move || work(&inner, &key))
                .await
                .map_err(|e| self.unfinished(e))?
        })
    }
}

impl StateStore for LocalStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn get<'a>(&'a self, key: &'a str) -> Fut<'a, Option<Versioned>> {
        self.run(key, |inner, key| {
            Ok(inner.read(key)?.map(|body| Versioned {
                version: version(&body),
                body: Bytes::from(body),
            }))
        })
    }

    fn put<'a>(&'a self, key: &'a str, body: Bytes) -> Fut<'a, String> {
        self.run(key, move |inner, key| {
            let tmp = inner.write_tmp(key, &body)?;
            inner.locked(|| inner.replace(key, &tmp))?;
            inner.sync_parent(key)?;
            Ok(version(&body))
        })
    }

    fn put_if_absent<'a>(&'a self, key: &'a str, body: Bytes) -> Fut<'a, Option<String>> {
        self.run(key, move |inner, key| {
            let tmp = inner.write_tmp(key, &body)?;
            let created = inner.link_new(key, &tmp);
            let _ = fs::remove_file(&tmp);
            if !created? {
                return Ok(None);
            }
            inner.sync_parent(key)?;
            Ok(Some(version(&body)))
        })
    }

    fn put_if_match<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        expected: &'a str,
    ) -> Fut<'a, Option<String>> {
        let expected = expected.to_owned();
        self.run(key, move |inner, key| {
            let tmp = inner.write_tmp(key, &body)?;
            let swapped = inner.locked(|| {
                let current = inner.read(key)?;
                if current.as_deref().map(version).as_deref() != Some(expected.as_str()) {
                    return Ok(false);
                }
                inner.replace(key, &tmp)?;
                Ok(true)
            });
            if !matches!(swapped, Ok(true)) {
                let _ = fs::remove_file(&tmp);
            }
            if !swapped? {
                return Ok(None);
            }
            inner.sync_parent(key)?;
            Ok(Some(version(&body)))
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> Fut<'a, Vec<String>> {
        let inner = Arc::clone(&self.inner);
        let prefix = prefix.to_owned();
        Box::pin(async move {
            // Only the directory part of the prefix is walked: `jobs/j1/ru` walks `jobs/j1/`.
            let dir = prefix.rfind('/').map_or("", |i| &prefix[..i]);
            if !dir.is_empty() {
                inner.check(dir)?;
            }
            let dir = dir.to_owned();
            tokio::task::spawn_blocking(move || inner.list(&dir, &prefix))
                .await
                .map_err(|e| self.unfinished(e))?
        })
    }
}

impl Inner {
    fn describe(&self) -> String {
        format!("dir:{}", self.root.display())
    }

    fn error(&self, message: String) -> StateError {
        StateError::new(StateErrorKind::Permanent, self.describe(), message)
    }

    fn io_error(&self, what: &str, key: &str, e: io::Error) -> StateError {
        if is_full(&e) {
            self.full.store(true, Ordering::Relaxed);
        }
        self.error(format!("{what} key {key:?} failed: {e}"))
    }

    fn check(&self, key: &str) -> Result<(), StateError> {
        if let Some(problem) = check_key(key) {
            return Err(self.error(problem));
        }
        if key.split('/').next() == Some(RESERVED) {
            return Err(self.error(format!(
                "key {key:?} starts with `{RESERVED}`, which the local store keeps its own files in"
            )));
        }
        Ok(())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// The value at `key`; `None` when there is no file (a directory is not a value).
    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        match fs::read(self.path(key)) {
            Ok(body) => Ok(Some(body)),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::NotFound | ErrorKind::NotADirectory | ErrorKind::IsADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.io_error("reading", key, e)),
        }
    }

    /// Writes `body` to a new temporary file and syncs it.
    fn write_tmp(&self, key: &str, body: &[u8]) -> Result<PathBuf, StateError> {
        let name = format!(
            "{}-{}-{:08x}.tmp",
            std::process::id(),
            NEXT_TMP.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        );
        let path = self.tmp.join(name);
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?;
            file.write_all(body)?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&path);
            return Err(self.io_error("writing a temporary file for", key, e));
        }
        Ok(path)
    }

    /// Moves `tmp` to `key`'s path, replacing what is there.
    fn replace(&self, key: &str, tmp: &Path) -> Result<(), StateError> {
        self.make_parent(key)?;
        fs::rename(tmp, self.path(key)).map_err(|e| self.place_error(key, e))
    }

    /// Links `tmp` at `key`'s path unless something is there: `Ok(false)` when the key exists.
    fn link_new(&self, key: &str, tmp: &Path) -> Result<bool, StateError> {
        self.make_parent(key)?;
        let path = self.path(key);
        match fs::hard_link(tmp, &path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && !path.is_dir() => Ok(false),
            Err(e) => Err(self.place_error(key, e)),
        }
    }

    fn make_parent(&self, key: &str) -> Result<(), StateError> {
        let Some(parent) = self.path(key).parent().map(Path::to_path_buf) else {
            return Ok(());
        };
        fs::create_dir_all(&parent).map_err(|e| self.place_error(key, e))
    }

    /// Explains failures to put a value in place, most often a key/directory clash.
    fn place_error(&self, key: &str, e: io::Error) -> StateError {
        let path = self.path(key);
        if path.is_dir() {
            return self.error(format!(
                "cannot store key {key:?}: other keys start with \"{key}/\", and the local store \
                 cannot hold a key and keys under it"
            ));
        }
        let mut prefix = String::new();
        for segment in key.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(segment);
            if prefix.len() < key.len() && self.path(&prefix).is_file() {
                return self.error(format!(
                    "cannot store key {key:?}: {prefix:?} is a key, and the local store cannot \
                     hold a key and keys under it"
                ));
            }
        }
        self.io_error("storing", key, e)
    }

    /// Syncs the directory holding `key`, so its new entry survives a crash.
    fn sync_parent(&self, key: &str) -> Result<(), StateError> {
        let path = self.path(key);
        let parent = path.parent().unwrap_or(&self.root);
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| self.io_error("syncing the directory of", key, e))
    }

    /// Runs `work` holding the store's lock (this process's mutex, then the file lock).
    fn locked<T>(&self, work: impl FnOnce() -> Result<T, StateError>) -> Result<T, StateError> {
        let file = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        file.lock().map_err(|e| {
            self.error(format!(
                "cannot lock {}: {e}",
                self.root.join(RESERVED).join("lock").display()
            ))
        })?;
        let result = work();
        // Closing the file would release the lock too, but the file stays open for reuse.
        let _ = file.unlock();
        result
    }

    /// Keys under directory `dir` (a checked key or "") that start with `prefix`, sorted.
    fn list(&self, dir: &str, prefix: &str) -> Result<Vec<String>, StateError> {
        let mut keys = Vec::new();
        let mut pending = vec![dir.to_owned()];
        while let Some(dir) = pending.pop() {
            let entries = match fs::read_dir(self.path(&dir)) {
                Ok(entries) => entries,
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                    continue;
                }
                Err(e) => return Err(self.io_error("listing", &dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| self.io_error("listing", &dir, e))?;
                // Names that are not UTF-8 were not written by this store.
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                let key = if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                };
                if key == RESERVED {
                    continue;
                }
                let kind = entry
                    .file_type()
                    .map_err(|e| self.io_error("listing", &key, e))?;
                if kind.is_dir() {
                    // Descend only where keys starting with `prefix` can be.
                    let below = format!("{key}/");
                    if below.starts_with(prefix) || prefix.starts_with(&below) {
                        pending.push(key);
                    }
                } else if kind.is_file() && key.starts_with(prefix) {
                    keys.push(key);
                }
            }
        }
        keys.sort();
        Ok(keys)
    }
}

fn version(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Best effort: removes temporary files a crashed process left behind. Files younger than
/// [`STALE_TMP_AGE`] may belong to a live writer and stay.
fn remove_stale_tmp(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_TMP_AGE);
        if old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether `e` says the file system is out of space or quota.
fn is_full(e: &io::Error) -> bool {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    e.kind() == io::ErrorKind::StorageFull || matches!(e.raw_os_error(), Some(ENOSPC | EDQUOT))
}
