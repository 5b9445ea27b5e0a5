//! Discovery: one delimiter listing of a "directory", and how its entries become ranges.
//!
//! The listing's entries (keys and common prefixes, in key order) are grouped: each common
//! prefix alone (a directory, explored further or probed), and each run of plain keys together
//! (its size is then exact). Groups are separated by cuts that fall between the entries:
//!
//! * after a key `k`: `k` itself;
//! * after a directory `d/`: `d0`, which sorts after every key under `d/` — unless the very
//!   next entry is the key `d0`, which then joins the directory's group;
//! * before a directory `d/`, when there is room: its stem `d`, so the directory's range
//!   reads `prefix = d, start_after = d` rather than starting at some unrelated key.
//!
//! A listing cut short (page budget, or a flat level) ends with a *remainder* group that runs to
//! the end of the parent range and is probed like any range of unknown size.

use std::sync::atomic::{AtomicU64, Ordering};

use super::PlanOptions;
use super::keys::past_prefix;
use crate::source::{ListPage, ListRequest, Source, SourceError};

/// Counters shared by the listings of one invocation (also those of a round the deadline
/// drops, which still happened).
#[derive(Default)]
pub struct Counters {
    pub list_requests: AtomicU64,
    pub discovery_requests: AtomicU64,
    pub probe_requests: AtomicU64,
    pub keys_read: AtomicU64,
    pub prefixes_read: AtomicU64,
}

impl Counters {
    pub fn page(&self, page: &ListPage, discovery: bool) {
        self.list_requests.fetch_add(1, Ordering::Relaxed);
        let kind = if discovery {
            &self.discovery_requests
        } else {
            &self.probe_requests
        };
        kind.fetch_add(1, Ordering::Relaxed);
        self.keys_read
            .fetch_add(page.objects.len() as u64, Ordering::Relaxed);
        self.prefixes_read
            .fetch_add(page.common_prefixes.len() as u64, Ordering::Relaxed);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Key(String),
    Prefix(String),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Key(k) | Entry::Prefix(k) => k,
        }
    }
}

/// What a delimiter listing found, in key order.
#[derive(Debug, Default)]
pub struct Listing {
    pub entries: Vec<Entry>,
    /// False when pages were left unread.
    pub complete: bool,
}

/// Lists the directory `prefix` with delimiter `/`. Reads the next page only while the last one
/// was at least half directories: a level of plain keys is better cut by probes than read.
pub async fn list_level(
    source: &dyn Source,
    options: &PlanOptions,
    prefix: &str,
    start_after: Option<String>,
    counters: &Counters,
) -> Result<Listing, SourceError> {
    let mut req = ListRequest {
        prefix: prefix.to_owned(),
        delimiter: Some("/".to_owned()),
        start_after,
        continuation: None,
        max_keys: options.discovery_page_keys,
    };
    let mut listing = Listing::default();
    for _ in 0..options.discovery_pages {
        let page = source.list(&req).await?;
        counters.page(&page, true);
        let (keys, dirs) = (page.objects.len(), page.common_prefixes.len());
        listing
            .entries
            .extend(page.objects.into_iter().map(|o| Entry::Key(o.key)));
        listing
            .entries
            .extend(page.common_prefixes.into_iter().map(Entry::Prefix));
        match page.next {
            None => {
                listing.complete = true;
                break;
            }
            Some(_) if dirs * 2 < keys + dirs => break,
            Some(token) => req.continuation = Some(token),
        }
    }
    listing.entries.sort_by(|a, b| a.name().cmp(b.name()));
    listing.entries.dedup();
    Ok(listing)
}

/// Entries that sort together, and the cut after them (`None`: the parent range's end).
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub entries: Vec<Entry>,
    pub hi: Option<String>,
    /// Runs to the parent's end over keys the listing did not reach.
    pub remainder: bool,
}

impl Group {
    /// The group's keys, when it holds nothing but keys the listing returned.
    pub fn only_keys(&self) -> Option<Vec<String>> {
        if self.remainder {
            return None;
        }
        self.entries
            .iter()
            .map(|e| match e {
                Entry::Key(k) => Some(k.clone()),
                Entry::Prefix(_) => None,
            })
            .collect()
    }

    /// The directory, when the group is exactly one.
    pub fn only_prefix(&self) -> Option<&str> {
        match self.entries.as_slice() {
            [Entry::Prefix(p)] if !self.remainder => Some(p),
            _ => None,
        }
    }
}

/// Groups a listing's entries (see the module docs). The groups tile the parent range: the
/// first starts at its start, the last (`hi == None`) ends at its end.
pub fn group(listing: &Listing) -> Vec<Group> {
    let mut groups = Vec::new();
    let mut current = Group::default();
    let entries = &listing.entries;
    for (i, entry) in entries.iter().enumerate() {
        current.entries.push(entry.clone());
        let cut = match (entry, entries.get(i + 1)) {
            (Entry::Key(k), Some(Entry::Prefix(_))) => Some(k.clone()),
            (Entry::Key(k), None) if !listing.complete => Some(k.clone()),
            (Entry::Prefix(p), Some(next)) => {
                past_prefix(p).filter(|c| next != &Entry::Key(c.clone()))
            }
            _ => None,
        };
        if let Some(cut) = cut {
            current.hi = Some(cut);
            groups.push(std::mem::take(&mut current));
        }
    }
    if !current.entries.is_empty() || !listing.complete || groups.is_empty() {
        current.remainder = !listing.complete;
        groups.push(current);
    }
    groups
}

/// Merges neighbouring groups so there are at most `max` (the shard budget left).
pub fn coarsen(groups: Vec<Group>, max: usize) -> Vec<Group> {
    let n = groups.len();
    if n <= max.max(1) {
        return groups;
    }
    let max = max.max(1);
    let mut out: Vec<Group> = Vec::with_capacity(max);
    for (i, g) in groups.into_iter().enumerate() {
        let chunk = i * max / n;
        match out.get_mut(chunk) {
            Some(merged) => {
                merged.entries.extend(g.entries);
                merged.hi = g.hi;
                merged.remainder = g.remainder;
            }
            None => out.push(g),
        }
    }
    out
}

/// Moves the cut before each directory up to the directory's stem where that is still above the
/// previous group (see the module docs).
pub fn tighten(groups: &mut [Group]) {
    for i in 1..groups.len() {
        let Some(Entry::Prefix(dir)) = groups[i].entries.first() else {
            continue;
        };
        let stem = dir.strip_suffix('/').unwrap_or(dir).to_owned();
        if let Some(prev) = &mut groups[i - 1].hi
            && stem.as_str() > prev.as_str()
        {
            *prev = stem;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(names: &[&str], complete: bool) -> Listing {
        Listing {
            entries: names
                .iter()
                .map(|n| match n.strip_suffix('/') {
                    Some(_) => Entry::Prefix((*n).to_owned()),
                    None => Entry::Key((*n).to_owned()),
                })
                .collect(),
            complete,
        }
    }

    fn cuts(groups: &[Group]) -> Vec<Option<&str>> {
        groups.iter().map(|g| g.hi.as_deref()).collect()
    }

    #[test]
    fn directories_stand_alone_and_key_runs_stay_together() {
        let mut g = group(&listing(&["README", "a", "data/", "logs/", "x", "y"], true));
        assert_eq!(cuts(&g), [Some("a"), Some("data0"), Some("logs0"), None]);
        assert_eq!(g[0].only_keys().unwrap(), ["README", "a"]);
        assert_eq!(g[1].only_prefix(), Some("data/"));
        tighten(&mut g);
        assert_eq!(cuts(&g), [Some("data"), Some("logs"), Some("logs0"), None]);
    }

    #[test]
    fn the_key_right_after_a_directory_joins_it() {
        let g = group(&listing(&["a/", "a0", "b/"], true));
        assert_eq!(cuts(&g), [Some("a0"), None]);
        assert!(g[0].only_prefix().is_none() && g[0].only_keys().is_none());
    }

    #[test]
    fn cut_short_listings_end_with_a_remainder() {
        let g = group(&listing(&["k1", "k2"], false));
        assert_eq!(cuts(&g), [Some("k2"), None]);
        assert!(g[1].remainder && g[1].entries.is_empty());
        let g = group(&listing(&["k1", "d/"], false));
        assert_eq!(cuts(&g), [Some("k1"), None]);
        assert!(g[1].remainder && g[1].only_prefix().is_none());
        let g = group(&listing(&[], true));
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].only_keys().unwrap().len(), 0);
    }

    #[test]
    fn coarsening_keeps_the_outer_cuts() {
        let g = group(&listing(&["a/", "b/", "c/", "d/", "e/"], true));
        let c = coarsen(g, 2);
        assert_eq!(cuts(&c), [Some("c0"), None]);
        assert_eq!(c[0].entries.len() + c[1].entries.len(), 5);
    }
}
