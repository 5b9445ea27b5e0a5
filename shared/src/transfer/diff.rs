//! Deciding what to copy without a HEAD per object: a merge-join of the source listing with the
//! destination listing, page by page.
//!
//! Both stores list keys in UTF-8 byte order, and the destination key is the source key behind a
//! fixed prefix, so one cursor over each listing finds every pair in a single pass with memory
//! for one page of each — whatever the bucket size. Listings decide almost everything:
//!
//! * no destination object → copy;
//! * sizes differ → copy (`if-different`);
//! * equal plain-MD5 ETags → identical bytes → skip;
//! * the source was modified after the copy was written → copy;
//! * otherwise (same size, ETags not comparable, e.g. multipart) → HEAD the destination and
//!   compare ferry's `ferry-src-etag` stamp with the source ETag: this catches same-size
//!   rewrites that size/mtime tools miss.

use std::collections::VecDeque;

use super::Destination;
use super::metadata::STAMP_ETAG;
use crate::oss::{ListObjectsOptions, ObjectSummary};
use crate::source::ObjectInfo;

/// When an object that exists at the destination is copied again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverwritePolicy {
    /// Copy when the content differs (size, ETag, or ferry's source-ETag stamp).
    #[default]
    IfDifferent,
    /// Never replace an existing object (and tell OSS so: `x-oss-forbid-overwrite`).
    Never,
    /// Always copy.
    Always,
    /// Copy when the source was modified after the destination object was written; an object
    /// ferry wrote is also copied when its stamp names an older source version. An object
    /// someone else wrote after the source's last change stays (the final run of a cut-over).
    IfNewer,
}

/// What to do with one source object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Copy the object.
    Copy,
    /// Leave the destination as it is, for the reason given.
    Skip(String),
    /// The destination object was written during the current run (an earlier attempt of the
    /// same task, killed or redelivered): confirm it with a HEAD and count it copied, instead of
    /// copying it again.
    Adopt,
}

/// What an audit (`mode: audit`) found for one source object. The reason starts with the
/// class, so reports group by it: `matches`, `missing`, `size differs`, `stamp differs`,
/// `unproven`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The destination holds the object, proven by MD5 or ferry's stamp.
    Matches(String),
    /// The destination lacks it, or holds something else, or nothing proves it either way.
    Differs(String),
}

/// Walks the destination listing alongside source pages.
pub struct Differ<'a> {
    dest: &'a Destination,
    policy: OverwritePolicy,
    /// Listing prefix on the source side (the range's prefix).
    source_prefix: String,
    page: VecDeque<ObjectSummary>,
    next_token: Option<String>,
    started: bool,
    exhausted: bool,
    /// Destination objects written at or after this time belong to the current run.
    run_started: Option<chrono::DateTime<chrono::Utc>>,
    /// HEAD requests made, for tests and metrics.
    pub heads: u64,
}

impl<'a> Differ<'a> {
    /// A differ over `dest` deciding by `policy`; `source_prefix` is the range's source prefix.
    pub fn new(dest: &'a Destination, policy: OverwritePolicy, source_prefix: &str) -> Self {
        Differ {
            dest,
            policy,
            source_prefix: source_prefix.to_owned(),
            page: VecDeque::new(),
            next_token: None,
            started: false,
            exhausted: false,
            run_started: None,
            heads: 0,
        }
    }

    /// Recognise objects written since `started` as the current run's own work
    /// ([`Decision::Adopt`]). Destination clocks count whole seconds, so a run should start on
    /// a whole second after the previous run's last write (the standalone runner waits for it).
    pub fn with_run_start(mut self, started: chrono::DateTime<chrono::Utc>) -> Self {
        self.run_started = Some(started);
        self
    }

    /// Decisions for one page of source objects (in listing order).
    pub async fn decide(
        &mut self,
        objects: &[ObjectInfo],
    ) -> Result<Vec<Decision>, crate::oss::Error> {
        let mut out = Vec::with_capacity(objects.len());
        for object in objects {
            if self.policy == OverwritePolicy::Always && self.run_started.is_none() {
                out.push(Decision::Copy);
                continue;
            }
            let dest_key = self.dest.key_for(&object.key);
            let existing = self.find(&dest_key, &object.key).await?;
            out.push(match existing {
                None => Decision::Copy,
                Some(d) if self.written_this_run(&d) => Decision::Adopt,
                Some(d) => self.compare(object, &d).await?,
            });
        }
        Ok(out)
    }

    /// What the destination holds for each of one page of source objects (in listing order),
    /// whatever the overwrite policy: an audit compares, it decides nothing.
    pub async fn audit(
        &mut self,
        objects: &[ObjectInfo],
    ) -> Result<Vec<Finding>, crate::oss::Error> {
        let mut out = Vec::with_capacity(objects.len());
        for object in objects {
            let dest_key = self.dest.key_for(&object.key);
            let found = match self.find(&dest_key, &object.key).await? {
                None => Finding::Differs("missing at the destination".into()),
                Some(d) if d.size != object.size => Finding::Differs(format!(
                    "size differs: {} bytes at the source, {} at the destination",
                    object.size, d.size
                )),
                Some(d) if same_md5(object, &d) => {
                    Finding::Matches("matches: same size and MD5".into())
                }
                Some(d) => match self.stamp_matches(object, &d).await? {
                    Some(true) => Finding::Matches(
                        "matches: same size, and ferry's stamp names the source's ETag".into(),
                    ),
                    Some(false) => Finding::Differs(
                        "stamp differs: the destination was copied from another version of \
                         the source"
                            .into(),
                    ),
                    None => Finding::Differs(
                        "unproven: same size, but no MD5 to compare and no ferry stamp".into(),
                    ),
                },
            };
            out.push(found);
        }
        Ok(out)
    }

    /// The destination object with `dest_key`, advancing the cursor past smaller keys.
    async fn find(
        &mut self,
        dest_key: &str,
        source_key: &str,
    ) -> Result<Option<ObjectSummary>, crate::oss::Error> {
        loop {
            while let Some(front) = self.page.front() {
                if front.key.as_str() < dest_key {
                    self.page.pop_front();
                } else {
                    return Ok((front.key == dest_key).then(|| front.clone()));
                }
            }
            if self.exhausted {
                return Ok(None);
            }
            self.fetch(source_key).await?;
        }
    }

    async fn fetch(&mut self, first_source_key: &str) -> Result<(), crate::oss::Error> {
        let mut options = ListObjectsOptions {
            prefix: Some(self.dest.key_for(&self.source_prefix)).filter(|p| !p.is_empty()),
            max_keys: Some(1000),
            ..Default::default()
        };
        if self.started {
            options.continuation_token = self.next_token.clone();
        } else {
            // Start just before the first key asked about; earlier destination keys are
            // outside this range.
            options.start_after = predecessor(&self.dest.key_for(first_source_key));
            self.started = true;
        }
        let page = self.dest.list_objects_v2(&options).await?;
        self.page.extend(page.objects);
        self.next_token = page.next_continuation_token.filter(|_| page.is_truncated);
        self.exhausted = self.next_token.is_none();
        Ok(())
    }

    fn written_this_run(&self, dst: &ObjectSummary) -> bool {
        matches!((self.run_started, dst.last_modified), (Some(run), Some(written)) if written >= run)
    }

    async fn compare(
        &mut self,
        src: &ObjectInfo,
        dst: &ObjectSummary,
    ) -> Result<Decision, crate::oss::Error> {
        let newer = matches!((src.last_modified, dst.last_modified), (Some(s), Some(d)) if s > d);
        let identical = src.size == dst.size && same_md5(src, dst);
        match self.policy {
            OverwritePolicy::Always => Ok(Decision::Copy),
            OverwritePolicy::Never => Ok(Decision::Skip(
                "exists at the destination (overwrite: never)".into(),
            )),
            // An identical copy (one OSS's back-to-origin stored during a cut-over, say) is
            // skipped with that proof, whatever the times say.
            OverwritePolicy::IfNewer | OverwritePolicy::IfDifferent if identical => Ok(
                Decision::Skip("identical at the destination (same size and MD5)".into()),
            ),
            OverwritePolicy::IfNewer if newer => Ok(Decision::Copy),
            OverwritePolicy::IfNewer => self.newer_by_stamp(src, dst).await,
            OverwritePolicy::IfDifferent => {
                if src.size != dst.size {
                    return Ok(Decision::Copy);
                }
                if newer {
                    return Ok(Decision::Copy);
                }
                self.compare_stamp(src, dst).await
            }
        }
    }

    /// `if-newer` when the times say the destination is newer. Times alone miss a source
    /// rewritten in the same second ferry copied it (S3 keeps whole seconds), so ferry's stamp
    /// decides where there is one: a destination object carrying it was last written by ferry,
    /// and a stamp naming another source ETag means the source changed since. An object without
    /// the stamp was written by someone else after the source's last change: it stays.
    async fn newer_by_stamp(
        &mut self,
        src: &ObjectInfo,
        dst: &ObjectSummary,
    ) -> Result<Decision, crate::oss::Error> {
        Ok(match self.stamp_matches(src, dst).await? {
            Some(true) => unchanged(),
            Some(false) => Decision::Copy,
            None => Decision::Skip(
                "written at the destination by someone else after the source was last modified \
                 (overwrite: if-newer)"
                    .into(),
            ),
        })
    }

    /// The one case listings cannot decide: read ferry's stamp on the destination object.
    async fn compare_stamp(
        &mut self,
        src: &ObjectInfo,
        dst: &ObjectSummary,
    ) -> Result<Decision, crate::oss::Error> {
        Ok(match self.stamp_matches(src, dst).await? {
            Some(true) => unchanged(),
            _ => Decision::Copy,
        })
    }

    /// Whether ferry's stamp on the destination object names the source's ETag (one HEAD);
    /// `None` when the object carries no stamp.
    async fn stamp_matches(
        &mut self,
        src: &ObjectInfo,
        dst: &ObjectSummary,
    ) -> Result<Option<bool>, crate::oss::Error> {
        self.heads += 1;
        let meta = self.dest.head_object(&dst.key).await?;
        Ok(meta
            .metadata
            .get(STAMP_ETAG)
            .map(|stamp| src.etag.as_deref() == Some(stamp.as_str())))
    }
}

fn unchanged() -> Decision {
    Decision::Skip("unchanged since ferry copied it (source ETag matches the stamp)".into())
}

/// Both sides carry the same plain (single-part) MD5 ETag.
fn same_md5(src: &ObjectInfo, dst: &ObjectSummary) -> bool {
    let dst_etag = dst.etag.as_deref().map(|e| e.trim_matches('"'));
    matches!((src.etag.as_deref(), dst_etag), (Some(a), Some(b)) if is_plain_md5(a) && a.eq_ignore_ascii_case(b))
}

/// A plain MD5 ETag (32 hex digits), as opposed to a multipart `HEX-N` one.
fn is_plain_md5(etag: &str) -> bool {
    etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A key that sorts before `key` with nothing in between but keys sharing its prefix, for
/// `start-after` (none for a one-character key). Dropping the last *character* (not byte) keeps
/// it valid UTF-8 and below `key`; the few keys it re-reads are skipped by the cursor.
fn predecessor(key: &str) -> Option<String> {
    // OSS refuses a start-after of 1024 bytes or more; any prefix of the key also sorts before it.
    const MAX: usize = 1000;
    let mut end = key.len().min(MAX + 1);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    let mut chars = key[..end].chars();
    chars.next_back();
    Some(chars.as_str().to_owned()).filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_md5_etags_are_recognised() {
        assert!(is_plain_md5("5EB63BBBE01EEED093CB22BB8F5ACDC3"));
        assert!(!is_plain_md5("5EB63BBBE01EEED093CB22BB8F5ACDC3-2"));
    }

    #[test]
    fn predecessor_sorts_before() {
        assert_eq!(predecessor("abc").as_deref(), Some("ab"));
        assert_eq!(predecessor("a"), None);
        assert!(predecessor("ab").unwrap().as_str() < "ab");
        assert_eq!(predecessor("a中").as_deref(), Some("a"));
        let long = "é".repeat(700);
        let p = predecessor(&long).unwrap();
        assert!(p.len() <= 1000 && p.as_str() < long.as_str() && long.starts_with(&p));
    }
}
