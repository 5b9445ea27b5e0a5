//! Splitting: probing a range, estimating its size, and choosing where to cut it.
//!
//! A probe lists up to `probe_keys` keys from a range's start. If it reaches the range's end, the
//! size is exact and, when above the target, the range is cut at every target-th key it saw.
//! Otherwise the range is at least as big as the probe, and [`estimate`] extrapolates from how
//! densely the probed keys sit (see `keys.rs`); [`cuts`] then picks strings between the last
//! probed key and the range's end that should split it into pieces of about equal size.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::discover::Counters;
use super::keys::{KeySpace, MAX_CUT_BYTES, alphabet, between, common_prefix, increment};
use crate::source::{ListRequest, Source, SourceError};

/// Estimates never exceed this (a guard against absurd extrapolations).
const MAX_ESTIMATE: f64 = 1e15;

/// What a probe saw, kept to estimate and cut the range later (also across invocations).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub first: String,
    pub last: String,
    /// Keys the probe returned within the range.
    pub seen: u64,
    /// Distinct chars of the probed keys after their common prefix.
    pub alphabet: String,
    /// Set when the probed keys sit in several subdirectories of one directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nested: Option<Nested>,
}

/// Probed keys spread over subdirectories of `dir` (`dir/2024-01-01/…`, `dir/2024-01-02/…`):
/// a listing of `dir` then says how many subdirectories there are, and the probe how big
/// they are — much better than extrapolating over the key space, whose constant positions
/// (`2024-`) would be taken for varying ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nested {
    pub dir: String,
    /// Mean keys of the subdirectories the probe saw whole (`None`: it saw none whole).
    pub keys_per_dir: Option<u64>,
}

/// A probe's result: the keys seen (all within the range), and whether that is all of them.
pub struct Probed {
    pub keys: Vec<String>,
    pub complete: bool,
}

impl Probed {
    /// The probe, for a range starting after `lo`.
    pub fn summary(&self, lo: Option<&str>) -> Option<Probe> {
        let (first, last) = (self.keys.first()?, self.keys.last()?);
        Some(Probe {
            first: first.clone(),
            last: last.clone(),
            seen: self.keys.len() as u64,
            alphabet: alphabet(self.keys.iter().map(String::as_str)),
            nested: nested(&self.keys, lo),
        })
    }
}

/// How the keys spread over subdirectories of their deepest common directory, if they do.
fn nested(keys: &[String], lo: Option<&str>) -> Option<Nested> {
    let (first, last) = (keys.first()?, keys.last()?);
    let shared = common_prefix(first, last);
    let dir = &shared[..shared.rfind('/')? + 1];
    // A listing is not trusted to be sorted: a key outside `dir` (out of order) has no
    // subdirectory here rather than a slice that panics.
    let subdir = |k: &str| -> Option<String> {
        let rest = k.strip_prefix(dir)?;
        rest.find('/').map(|i| k[..dir.len() + i + 1].to_owned())
    };
    if keys.iter().all(|k| subdir(k).is_none()) {
        return None;
    }
    // Keys per subdirectory, in order; the last one may go on past the probe, and the first
    // one may have started before the range.
    let mut counts: Vec<(Option<String>, u64)> = Vec::new();
    for k in keys {
        let d = subdir(k);
        match counts.last_mut() {
            Some((last, n)) if *last == d => *n += 1,
            _ => counts.push((d, 1)),
        }
    }
    counts.pop();
    if let (Some(lo), Some((Some(d), _))) = (lo, counts.first())
        && lo.starts_with(d.as_str())
    {
        counts.remove(0);
    }
    let whole: Vec<u64> = counts
        .iter()
        .filter(|(d, _)| d.is_some())
        .map(|(_, n)| *n)
        .collect();
    let keys_per_dir =
        (!whole.is_empty()).then(|| whole.iter().sum::<u64>().div_ceil(whole.len() as u64));
    Some(Nested {
        dir: dir.to_owned(),
        keys_per_dir,
    })
}

/// Lists up to `max_keys` keys of the range `(lo, hi]` under `prefix`.
pub async fn probe(
    source: &dyn Source,
    prefix: &str,
    lo: Option<&str>,
    hi: Option<&str>,
    max_keys: u32,
    counters: &Counters,
) -> Result<Probed, SourceError> {
    let req = ListRequest {
        prefix: prefix.to_owned(),
        delimiter: None,
        start_after: lo.map(str::to_owned),
        continuation: None,
        max_keys,
    };
    let page = source.list(&req).await?;
    counters.page(&page, false);
    let returned = page.objects.len();
    let keys: Vec<String> = page
        .objects
        .into_iter()
        .map(|o| o.key)
        .filter(|k| hi.is_none_or(|h| k.as_str() <= h))
        .collect();
    // A page past the range's end, or the listing's last page, saw everything. So does an empty
    // page, whatever its token says (nothing to extrapolate from).
    let complete = page.next.is_none() || keys.len() < returned || keys.is_empty();
    Ok(Probed { keys, complete })
}

/// The space a range's keys are measured in: from the common part of its first probed key and
/// its end (the root when it runs to the end). Digits: the probe's alphabet, plus the chars
/// between that common part and where the probed keys start to vary, plus the end's first
/// differing char — so the first key and the end can be written in it.
fn space(root: &str, hi: Option<&str>, probe: &Probe) -> Option<KeySpace> {
    let context = context(root, hi, &probe.first);
    let varying = common_prefix(&probe.first, &probe.last)
        .len()
        .max(context.len());
    let mut chars: BTreeSet<char> = probe.alphabet.chars().collect();
    chars.extend(probe.first.get(context.len()..varying)?.chars());
    let hi_rest = hi.map(|h| h.get(context.len()..)).unwrap_or(Some(""))?;
    chars.extend(hi_rest.chars().next());
    let longest = [probe.first.as_str(), probe.last.as_str(), hi_rest]
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0);
    KeySpace::new(context, chars, longest)
}

/// Where a range's keys are measured from: the common part of its first probed key and its
/// end, or the root when it runs to the end.
fn context<'a>(root: &'a str, hi: Option<&str>, first: &'a str) -> &'a str {
    match hi {
        Some(h) => common_prefix(first, h),
        None => root,
    }
}

/// Adds `cut` to `cuts` if it splits the range: past the probed keys, before the end, short
/// enough for a `start-after`, and above the cut before it.
fn push_if_fits(cuts: &mut Vec<String>, cut: String, probe: &Probe, hi: Option<&str>) {
    let fits = cut.as_str() > probe.last.as_str()
        && hi.is_none_or(|h| cut.as_str() < h)
        && cut.len() <= MAX_CUT_BYTES
        && cuts.last().is_none_or(|prev| cut > *prev);
    if fits {
        cuts.push(cut);
    }
}

/// About how many keys `(.., hi]` holds, given a probe from its start that did not reach `hi`.
pub fn estimate(root: &str, hi: Option<&str>, probe: &Probe) -> u64 {
    let floor = probe.seen + 1;
    let guess = || -> Option<f64> {
        let space = space(root, hi, probe)?;
        let first = space.position(Some(&probe.first))?;
        let last = space.position(Some(&probe.last))?;
        let end = space.position(hi)?;
        let ratio = space.ratio(&space.sub(&first, &end)?, &space.sub(&first, &last)?)?;
        Some(1.0 + (probe.seen.saturating_sub(1)) as f64 * ratio)
    };
    match guess() {
        Some(g) if g.is_finite() => g.clamp(floor as f64, MAX_ESTIMATE) as u64,
        Some(_) => MAX_ESTIMATE as u64,
        None => floor,
    }
}

/// Cuts that follow the structure of the probed keys, for a range estimated too big: the keys
/// the probe saw share a prefix `L` (`logs/2024-03-0`), so
///
/// 1. the first piece ends where `L` ends: its size is measured where the keys vary, without
///    extrapolating across positions that may be constant (`000…` padding, a year);
/// 2. the next pieces end where `L`'s ever shorter prefixes end (`…-1`, `…3-`, `…4`): each
///    about the alphabet's size times bigger than the one before, so wherever the keys stop,
///    a few probes find it;
/// 3. at the shallowest position with room, a few sibling subtrees (`+1, +2, +4, +8` chars)
///    each start a piece, so keys that go on everywhere (hashes) are cut wide at once.
///
/// Every piece is probed next, and big ones are cut again. Empty when the probed keys vary right
/// away (nothing to follow: use [`cuts`]).
pub fn structural_cuts(root: &str, hi: Option<&str>, probe: &Probe, pieces: u64) -> Vec<String> {
    let first = probe.first.as_str();
    let context = context(root, hi, first);
    let shared = common_prefix(first, &probe.last);
    if shared.len() <= context.len() || !first.starts_with(context) {
        return Vec::new();
    }
    let mut alphabet: BTreeSet<char> = probe.alphabet.chars().collect();
    alphabet.extend(first[context.len()..shared.len()].chars());
    let hi_char = hi.and_then(|h| h[context.len()..].chars().next());
    // Positions (byte offsets in `first`) from the context to the end of the shared prefix.
    let positions: Vec<(usize, char)> = first[..shared.len()]
        .char_indices()
        .filter(|&(i, _)| i >= context.len())
        .collect();
    let siblings = |&(i, c): &(usize, char)| -> Vec<char> {
        let upper = if i == context.len() { hi_char } else { None };
        alphabet
            .iter()
            .copied()
            .filter(|&s| s > c && upper.is_none_or(|u| s < u))
            .collect()
    };
    let level = positions.iter().position(|p| !siblings(p).is_empty());
    let deeper = level.map_or(0, |k| k + 1);
    let mut out: Vec<String> = positions[deeper..]
        .iter()
        .rev()
        .filter_map(|&(i, c)| increment(&first[..i + c.len_utf8()]))
        .collect();
    if let Some(k) = level {
        let (i, _) = positions[k];
        let above = siblings(&positions[k]);
        let picks = [0usize, 1, 3, 7, 15]
            .into_iter()
            .filter_map(|n| above.get(n));
        out.extend(picks.map(|c| format!("{}{c}", &first[..i])));
    }
    let mut cuts: Vec<String> = Vec::new();
    for cut in out {
        push_if_fits(&mut cuts, cut, probe, hi);
    }
    cuts.truncate(pieces.saturating_sub(1) as usize);
    cuts
}

/// Up to `pieces - 1` cuts, increasing, strictly between the probe's last key and `hi`, that
/// should split the range into pieces of about equal size; one midpoint if the key space gives
/// none; empty if no string fits.
pub fn cuts(root: &str, hi: Option<&str>, probe: &Probe, pieces: u64) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(space) = space(root, hi, probe)
        && let (Some(first), Some(end)) = (space.position(Some(&probe.first)), space.position(hi))
    {
        for j in 1..pieces {
            let Some(at) = space.lerp(&first, &end, j, pieces) else {
                break;
            };
            if at[0] != 0 {
                break;
            }
            push_if_fits(&mut out, space.string(&at), probe, hi);
        }
    }
    if out.is_empty()
        && let Some(mid) = between(&probe.last, hi)
    {
        out.push(mid);
    }
    out
}

/// Cut points that split a run of known keys into pieces of at most about `target` keys, using
/// no more than `spare + 1` pieces: every `per`-th key, never the last one.
pub fn key_cuts(keys: &[String], target: u64, spare: u64) -> Vec<String> {
    let n = keys.len() as u64;
    if n <= target || spare == 0 {
        return Vec::new();
    }
    let pieces = n.div_ceil(target).min(spare + 1);
    let per = n.div_ceil(pieces);
    (1..pieces)
        .map(|j| (j * per - 1) as usize)
        .filter(|&i| i + 1 < keys.len())
        .map(|i| keys[i].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe_of(keys: &[String]) -> Probe {
        Probed {
            keys: keys.to_vec(),
            complete: false,
        }
        .summary(None)
        .unwrap()
    }

    #[test]
    fn decimal_keys_are_estimated_within_a_small_factor() {
        // 1,000,000 keys flat/000000..flat/999999; the probe saw the first 100.
        let keys: Vec<String> = (0..100).map(|i| format!("flat/{i:06}")).collect();
        let p = probe_of(&keys);
        let est = estimate("", Some("flat0"), &p);
        assert!((300_000..=3_000_000).contains(&est), "{est}");
        let est_root = estimate("", None, &p);
        assert!(est_root >= 101, "{est_root}");
    }

    #[test]
    fn hex_keys_are_estimated_within_a_small_factor() {
        // 65,536 keys h/0000..h/ffff; the probe saw the first 256.
        let keys: Vec<String> = (0..256).map(|i| format!("h/{i:04x}")).collect();
        let est = estimate("h/", Some("h/ffff"), &probe_of(&keys));
        assert!((30_000..=150_000).contains(&est), "{est}");
    }

    #[test]
    fn cuts_are_increasing_and_inside_the_range() {
        let keys: Vec<String> = (0..100).map(|i| format!("flat/{i:06}")).collect();
        let p = probe_of(&keys);
        for hi in [Some("flat0"), None] {
            let c = cuts("", hi, &p, 8);
            assert!(!c.is_empty());
            assert!(c.windows(2).all(|w| w[0] < w[1]), "{c:?}");
            assert!(c.iter().all(|k| k.as_str() > "flat/000099"), "{c:?}");
            assert!(c.iter().all(|k| hi.is_none_or(|h| k.as_str() < h)), "{c:?}");
        }
        let c = cuts("", Some("flat0"), &p, 2);
        assert!(
            c[0].starts_with("flat/4") || c[0].starts_with("flat/5"),
            "{c:?}"
        );
    }

    proptest::proptest! {
        /// Whatever a store lists — out of order, outside the prefix, multi-byte — the probe
        /// summary is computed without a panic.
        #[test]
        fn any_listing_is_summarised_without_a_panic(
            keys in proptest::collection::vec("[a-c/é]{0,8}", 1..20),
            lo in proptest::option::of("[a-c/é]{0,6}"),
        ) {
            let probed = Probed { keys, complete: false };
            let _ = probed.summary(lo.as_deref());
        }
    }

    #[test]
    fn out_of_order_keys_do_not_panic() {
        let keys: Vec<String> = ["a/x/1", "b", "a/é", "a/y/2"].map(String::from).to_vec();
        let n = probe_of(&keys).nested.unwrap();
        assert_eq!(n.dir, "a/");
    }

    #[test]
    fn nested_keys_report_their_directory_and_subdirectory_size() {
        let keys: Vec<String> = (0..30)
            .map(|i| format!("t/01/2024-01-{:02}/obj-{i:03}", i / 4 + 1))
            .collect();
        let n = probe_of(&keys).nested.unwrap();
        assert_eq!(n.dir, "t/01/");
        assert_eq!(n.keys_per_dir, Some(4));
        // All in one subdirectory: nothing seen whole.
        let one: Vec<String> = (0..5).map(|i| format!("t/01/d/{i}")).collect();
        assert_eq!(probe_of(&one).nested, None);
        let two = vec!["t/a/1".to_owned(), "t/b/1".to_owned()];
        assert_eq!(probe_of(&two).nested.unwrap().keys_per_dir, Some(1));
        // The first subdirectory began before the range: not seen whole either.
        let probed = Probed {
            keys: two,
            complete: false,
        };
        let nested = probed.summary(Some("t/a/0")).unwrap().nested.unwrap();
        assert_eq!(nested.keys_per_dir, None);
        // Flat keys are not nested.
        let flat: Vec<String> = (0..5).map(|i| format!("t/{i}")).collect();
        assert_eq!(probe_of(&flat).nested, None);
    }

    #[test]
    fn structural_cuts_follow_padded_numbers_and_hashes() {
        // Zero-padded numbers d/000001000..d/000004663: the first piece ends after `d/00000`,
        // the next ones at the ends of `d/0000`, `d/000`, …, then sibling directories.
        let keys: Vec<String> = (0..100)
            .map(|i| format!("d/{:09}", 1000 + i * 37))
            .collect();
        let c = structural_cuts("", Some("e"), &probe_of(&keys), 32);
        assert_eq!(&c[..3], ["d/00001", "d/0001", "d/001"]);
        assert!(c.windows(2).all(|w| w[0] < w[1]), "{c:?}");
        assert!(
            c.iter()
                .all(|k| k.as_str() > keys[99].as_str() && k.as_str() < "e")
        );
        // Hex: siblings of the first digit start pieces.
        let hex: Vec<String> = (0..100).map(|i| format!("h/0{i:02x}9")).collect();
        let c = structural_cuts("", Some("h0"), &probe_of(&hex), 32);
        assert!(
            c.contains(&"h/1".to_owned()) && c.contains(&"h/8".to_owned()),
            "{c:?}"
        );
        // The budget caps the pieces.
        assert_eq!(structural_cuts("", Some("h0"), &probe_of(&hex), 3).len(), 2);
        // Keys that vary at once give no structure.
        let flat: Vec<String> = ["a1", "b1"].map(str::to_owned).to_vec();
        assert!(structural_cuts("", None, &probe_of(&flat), 8).is_empty());
    }

    #[test]
    fn no_cut_between_adjacent_strings() {
        let keys = vec!["a".to_owned(), "b".to_owned()];
        assert!(cuts("", Some("b\u{0}"), &probe_of(&keys), 4).is_empty());
    }

    #[test]
    fn known_runs_are_cut_every_target_keys_within_the_budget() {
        let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        assert_eq!(key_cuts(&keys, 4, 100), ["k3", "k7"]);
        assert_eq!(key_cuts(&keys, 4, 1), ["k4"]);
        assert!(key_cuts(&keys, 10, 100).is_empty());
        assert!(key_cuts(&keys, 4, 0).is_empty());
    }
}
