//! Key-space arithmetic: cut points between keys, midpoints, and the density estimates the
//! splitter uses to guess where to cut a range it has only probed.
//!
//! Keys are UTF-8 strings compared byte-wise, which is the same order as comparing their
//! chars (Unicode scalar values) one by one. Everything here works on chars, so every string it
//! makes is valid UTF-8, and keeps cut strings within OSS's `start-after` limit.
//!
//! ## Estimating without reading
//!
//! A probe reads the first few keys of a range. To guess how many keys the whole range holds,
//! the keys are read as fractions in a positional number system whose digits are the chars
//! seen in the probe (the *alphabet*): `flat/000000`..`flat/000099` uses the digits `0`–`9`, so
//! the gap between the first and the last probed key, compared with the gap between the first
//! key and the range's end, says roughly how many keys fit in the range if they are spread
//! like the probed ones. Using the observed alphabet rather than raw bytes matters: in raw bytes
//! decimal or hex keys fill a small part of each position and every estimate would be off by
//! orders of magnitude. The same numbers give the cut strings (`flat/5…` halves
//! `flat/0…`..`flat/9…`). Estimates are only estimates: every piece is probed again.

use std::collections::BTreeSet;

/// The longest cut string the planner makes: OSS refuses a `start-after` of 1024 bytes or more.
pub const MAX_CUT_BYTES: usize = 1023;

/// Digits per position beyond the longest string involved, so midpoints have room.
const EXTRA_DIGITS: usize = 2;
/// At most this many chars of a key take part in the arithmetic.
const MAX_DIGITS: usize = 256;

/// The longest common prefix of `a` and `b`, ending on a char boundary.
pub fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let mut n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while !a.is_char_boundary(n) {
        n -= 1;
    }
    &a[..n]
}

/// The cut just past every key under `prefix` (which ends with `/`): the same string with the
/// `/` raised to `0`, the next char. Keys under `dir/` sort below `dir0`.
pub fn past_prefix(prefix: &str) -> Option<String> {
    prefix.strip_suffix('/').map(|stem| format!("{stem}0"))
}

/// The smallest string above every string that starts with `s`: its last char raised by one
/// (dropped first if it is the highest char). `None` for "" and strings of highest chars.
pub fn increment(s: &str) -> Option<String> {
    let mut chars: Vec<char> = s.chars().collect();
    while let Some(c) = chars.pop() {
        let next = match c as u32 {
            0xD7FF => Some('\u{E000}'),
            n => char::from_u32(n + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// A string strictly between `a` and `b` (`None`: no upper bound), made of chars that are safe
/// in a `start-after` (no control chars), at most [`MAX_CUT_BYTES`] long; `None` when there is
/// none (`a` and `b` adjacent, or only control chars fit between them).
///
/// It differs from `a` at the first char where `a` and `b` differ and takes the middle char
/// there, so repeated calls bisect the space between two keys.
pub fn between(a: &str, b: Option<&str>) -> Option<String> {
    let m = between_chars(a, b)?;
    let fits = m.len() <= MAX_CUT_BYTES && m.as_str() > a && b.is_none_or(|b| m.as_str() < b);
    fits.then_some(m)
}

fn between_chars(a: &str, b: Option<&str>) -> Option<String> {
    let mut out = String::new();
    let mut a_chars = a.chars();
    let mut b_chars = b.map(str::chars);
    while out.len() <= MAX_CUT_BYTES {
        let x = a_chars.next();
        let y = match &mut b_chars {
            // Past the upper bound's common part: anything above `a` will do.
            None => 0x11_0000,
            Some(chars) => chars.next()? as u32,
        };
        let low = x.map_or(-1, |c| i64::from(c as u32));
        if low == i64::from(y) {
            out.push(x?);
            continue;
        }
        if low > i64::from(y) {
            return None;
        }
        if let Some(c) = safe_char_between(low, y) {
            out.push(c);
            return Some(out);
        }
        // No room at this position: keep `a`'s char and go above the rest of `a`.
        out.push(x?);
        b_chars = None;
    }
    None
}

/// A char `c` with `low < c < high`, not a control char or a surrogate, near the middle.
fn safe_char_between(low: i64, high: u32) -> Option<char> {
    let lo = (low + 1).max(0x20);
    let hi = i64::from(high) - 1;
    if lo > hi {
        return None;
    }
    let mid = (lo + hi) / 2;
    let pick = match mid {
        0xD800..=0xDFFF if lo <= 0xD7FF => 0xD7FF,
        0xD800..=0xDFFF if hi >= 0xE000 => 0xE000,
        0xD800..=0xDFFF => return None,
        m => m,
    };
    char::from_u32(u32::try_from(pick).ok()?)
}

/// Keys as fractions: digits are the chars of an alphabet (1-based; 0 = end of the string or
/// below every alphabet char), base = alphabet size + 1. Index 0 of a digit vector is the
/// integer part, so the end of the key space is `[1, 0, 0, …]`.
pub struct KeySpace {
    alphabet: Vec<char>,
    base: u64,
    /// The common part of every string placed in this space.
    context: String,
    len: usize,
}

impl KeySpace {
    /// A space for strings that start with `context`, with one digit per char of `alphabet`,
    /// positions for strings of up to `longest` chars after the context.
    pub fn new(context: &str, alphabet: BTreeSet<char>, longest: usize) -> Option<KeySpace> {
        if alphabet.is_empty() {
            return None;
        }
        let alphabet: Vec<char> = alphabet.into_iter().collect();
        Some(KeySpace {
            base: alphabet.len() as u64 + 1,
            alphabet,
            context: context.to_owned(),
            len: (longest + EXTRA_DIGITS).min(MAX_DIGITS),
        })
    }

    /// The digits of `s` (`None`: the end of the space); `None` if `s` is outside the context.
    pub fn position(&self, s: Option<&str>) -> Option<Vec<u64>> {
        let mut digits = vec![0; self.len + 1];
        match s {
            Some(s) => {
                let rest = s.strip_prefix(self.context.as_str())?;
                for (slot, c) in digits[1..].iter_mut().zip(rest.chars()) {
                    *slot = self.digit(c);
                }
            }
            None => digits[0] = 1,
        }
        Some(digits)
    }

    fn digit(&self, c: char) -> u64 {
        match self.alphabet.binary_search(&c) {
            Ok(i) => i as u64 + 1,
            Err(i) => i as u64,
        }
    }

    /// The string at a position (the inverse of [`KeySpace::position`] for alphabet strings).
    pub fn string(&self, digits: &[u64]) -> String {
        let mut out = self.context.clone();
        let used = digits
            .iter()
            .rposition(|&d| d != 0)
            .map_or(0, |last| last + 1);
        for &d in digits.iter().take(used).skip(1) {
            let index = d.saturating_sub(1) as usize;
            out.push(self.alphabet[index.min(self.alphabet.len() - 1)]);
        }
        out
    }

    /// `b - a`, or `None` when `b < a`.
    pub fn sub(&self, a: &[u64], b: &[u64]) -> Option<Vec<u64>> {
        let mut out = vec![0; a.len()];
        let mut borrow = 0u64;
        for i in (0..a.len()).rev() {
            let take = a[i] + borrow;
            if b[i] >= take {
                out[i] = b[i] - take;
                borrow = 0;
            } else {
                out[i] = b[i] + self.base - take;
                borrow = 1;
            }
        }
        (borrow == 0).then_some(out)
    }

    /// `a + (b - a) * j / n`, for `a <= b` and `0 < j < n`.
    pub fn lerp(&self, a: &[u64], b: &[u64], j: u64, n: u64) -> Option<Vec<u64>> {
        let diff = self.sub(a, b)?;
        let mut scaled = vec![0; diff.len()];
        let mut carry = 0u64;
        for i in (0..diff.len()).rev() {
            let v = diff[i] * j + carry;
            scaled[i] = v % self.base;
            carry = v / self.base;
        }
        scaled[0] += carry * self.base;
        let mut rem = 0u64;
        for d in scaled.iter_mut() {
            let cur = rem * self.base + *d;
            *d = cur / n;
            rem = cur % n;
        }
        let mut sum = vec![0; a.len()];
        let mut carry = 0u64;
        for i in (0..a.len()).rev() {
            let v = a[i] + scaled[i] + carry;
            sum[i] = if i == 0 { v } else { v % self.base };
            carry = if i == 0 { 0 } else { v / self.base };
        }
        Some(sum)
    }

    /// `num / den` as a float, exact in magnitude even when both are far below `f64`'s
    /// precision relative to 1 (keys that share long prefixes).
    pub fn ratio(&self, num: &[u64], den: &[u64]) -> Option<f64> {
        let (en, mn) = self.magnitude(num)?;
        let (ed, md) = self.magnitude(den)?;
        let exponent = i32::try_from(ed as i64 - en as i64).ok()?;
        Some(mn / md * (self.base as f64).powi(exponent))
    }

    /// First non-zero digit index and the value from there on (a few digits).
    fn magnitude(&self, v: &[u64]) -> Option<(usize, f64)> {
        let first = v.iter().position(|&d| d != 0)?;
        let base = self.base as f64;
        let mantissa = v[first..]
            .iter()
            .take(6)
            .rev()
            .fold(0.0, |acc, &d| acc / base + d as f64);
        Some((first, mantissa))
    }
}

/// How many chars after their common prefix make the alphabet of a run of keys.
const ALPHABET_DEPTH: usize = 4;

/// The distinct chars of `keys` in the first few positions after their common prefix: the
/// alphabet of their varying part (`0`–`9` for `flat/000123.json`, not the suffix's letters,
/// which would fill the key space with digits no key uses).
pub fn alphabet<'a>(keys: impl IntoIterator<Item = &'a str> + Clone) -> String {
    let mut iter = keys.clone().into_iter();
    let Some(first) = iter.next() else {
        return String::new();
    };
    let shared = iter.fold(first.len(), |n, k| common_prefix(&first[..n], k).len());
    let mut chars = BTreeSet::new();
    for k in keys {
        let mut start = shared.min(k.len());
        while !k.is_char_boundary(start) {
            start -= 1;
        }
        chars.extend(k[start..].chars().take(ALPHABET_DEPTH));
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix_stops_on_char_boundaries() {
        assert_eq!(common_prefix("abc", "abd"), "ab");
        assert_eq!(common_prefix("é", "è"), "");
        assert_eq!(common_prefix("xé1", "xé2"), "xé");
        assert_eq!(common_prefix("", "a"), "");
    }

    #[test]
    fn past_prefix_sorts_after_the_whole_directory() {
        let past = past_prefix("logs/").unwrap();
        assert_eq!(past, "logs0");
        for k in ["logs/", "logs/a", "logs/\u{10FFFF}\u{10FFFF}"] {
            assert!(k < past.as_str());
        }
        assert!(past_prefix("logs").is_none());
    }

    #[test]
    fn increment_sorts_above_every_extension() {
        assert_eq!(increment("ab").as_deref(), Some("ac"));
        assert_eq!(increment("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(increment("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(increment(""), None);
        let up = increment("x/00").unwrap();
        assert!("x/00\u{10FFFF}\u{10FFFF}" < up.as_str() && up.as_str() <= "x/01");
    }

    #[test]
    fn between_is_strictly_between_and_valid() {
        let cases: &[(&str, Option<&str>)] = &[
            ("a", Some("c")),
            ("a", Some("b")),
            ("a", None),
            ("", Some("a")),
            ("ab", Some("ab!x")),
            ("中", Some("中文")),
            ("\u{D7FE}", Some("\u{E001}")),
            ("z\u{10FFFF}", None),
            ("k/😀", Some("k/😁")),
        ];
        for &(a, b) in cases {
            let m = between(a, b).unwrap_or_else(|| panic!("no string between {a:?} and {b:?}"));
            assert!(
                m.as_str() > a && b.is_none_or(|b| m.as_str() < b),
                "{a:?} {m:?} {b:?}"
            );
            assert!(m.chars().all(|c| !c.is_control()), "{m:?}");
        }
    }

    #[test]
    fn between_gives_up_when_nothing_fits() {
        assert_eq!(between("a", Some("a\u{0}")), None);
        // Only "ab\0…" fits, and NUL is not a safe `start-after`.
        assert_eq!(between("ab", Some("ab\u{0}x")), None);
        assert_eq!(between("a", Some("a")), None);
        assert_eq!(between("b", Some("a")), None);
        // Only control chars sort between these two.
        assert_eq!(between("a", Some("a\u{5}")), None);
        let long = "x".repeat(MAX_CUT_BYTES);
        assert_eq!(between(&long, Some(&format!("{long}\u{1}"))), None);
    }

    #[test]
    fn keyspace_halves_decimal_keys_in_the_middle() {
        let space = KeySpace::new("flat/", "0123456789".chars().collect(), 6).unwrap();
        let a = space.position(Some("flat/000000")).unwrap();
        let b = space.position(Some("flat/999999")).unwrap();
        let mid = space.string(&space.lerp(&a, &b, 1, 2).unwrap());
        assert!(
            mid.starts_with("flat/4") || mid.starts_with("flat/5"),
            "{mid}"
        );
        let end = space.position(None).unwrap();
        let quarter = space.string(&space.lerp(&a, &end, 1, 4).unwrap());
        assert!(quarter.as_str() > "flat/000000", "{quarter}");
    }

    #[test]
    fn ratio_survives_long_shared_prefixes() {
        let deep = "p".repeat(100);
        let k1 = format!("{deep}00");
        let k2 = format!("{deep}09");
        let space = KeySpace::new("", "0123456789p".chars().collect(), 102).unwrap();
        let a = space.position(Some(&k1)).unwrap();
        let b = space.position(Some(&k2)).unwrap();
        let d = space.sub(&a, &b).unwrap();
        let r = space.ratio(&d, &d).unwrap();
        assert!((r - 1.0).abs() < 1e-9);
        assert!(space.sub(&b, &a).is_none());
    }

    #[test]
    fn alphabet_is_the_varying_part() {
        assert_eq!(alphabet(["flat/000", "flat/019"]), "019");
        assert_eq!(alphabet(["e/00a1b2.json", "e/01f3c4.json"]), "013abcf");
        assert_eq!(alphabet(Vec::<&str>::new()), "");
    }
}
