//! Glob patterns over object keys, for the job's `include` / `exclude` filters.
//!
//! A pattern is matched against the *whole* source key, with `/` as the separator:
//!
//! * `*` — any run of characters inside one path segment (never a `/`), including none;
//! * `?` — exactly one character, not `/`;
//! * `**` — any number of whole segments, including none; it must be a segment on its own
//!   (`logs/**/x.gz`, `**/*.jpg`, `tmp/**`), so `**/*.jpg` matches `a.jpg` and `a/b/c.jpg`;
//! * `\` — makes the next character literal (`\*`, `\?`, `\[`).
//!
//! `[`, `]`, `{` and `}` are refused unless escaped: they mean character classes and
//! alternatives in other glob dialects, and matching them literally would silently select
//! nothing. Matching is linear-time backtracking (the classic two-cursor wildcard algorithm, run
//! over characters inside a segment and over segments for `**`), so no pattern can make it
//! explode.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// A compiled glob pattern.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// `**`: any number of whole segments.
    AnyDepth,
    Tokens(Vec<Token>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`
    One,
    /// `*`
    Many,
}

/// Why a pattern does not compile; the message quotes it and says how to write it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{pattern:?} {problem}; fix: {fix}")]
pub struct GlobError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub problem: &'static str,
    /// How to write it instead.
    pub fix: &'static str,
}

impl Glob {
    /// Compiles `pattern`; the error quotes it and says how to write it.
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        let fail = |problem, fix| GlobError {
            pattern: pattern.to_owned(),
            problem,
            fix,
        };
        if pattern.is_empty() {
            return Err(fail(
                "is empty",
                "write a pattern such as \"**/*.jpg\", or remove the entry",
            ));
        }
        if pattern.starts_with('/') {
            return Err(fail(
                "starts with `/`, but keys do not",
                "remove the leading `/`: patterns match the whole key, e.g. \"logs/*\"",
            ));
        }
        let segments = pattern
            .split('/')
            .map(|s| compile_segment(s).map_err(|(problem, fix)| fail(problem, fix)))
            .collect::<Result<_, _>>()?;
        Ok(Glob {
            pattern: pattern.to_owned(),
            segments,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `key` matches the whole pattern.
    pub fn matches(&self, key: &str) -> bool {
        let parts: Vec<&str> = key.split('/').collect();
        wildcard(
            &self.segments,
            &parts,
            |s| *s == Segment::AnyDepth,
            |s, part| match s {
                Segment::Tokens(tokens) => segment_matches(tokens, part),
                Segment::AnyDepth => true,
            },
        )
    }

    /// The literal text every matching key starts with (up to the first wildcard).
    pub fn literal_prefix(&self) -> String {
        let mut out = String::new();
        for (i, segment) in self.segments.iter().enumerate() {
            let Segment::Tokens(tokens) = segment else {
                return out;
            };
            if i > 0 {
                out.push('/');
            }
            for token in tokens {
                match token {
                    Token::Char(c) => out.push(*c),
                    Token::One | Token::Many => return out,
                }
            }
        }
        out
    }
}

type SegmentError = (&'static str, &'static str);

fn compile_segment(segment: &str) -> Result<Segment, SegmentError> {
    if segment == "**" {
        return Ok(Segment::AnyDepth);
    }
    if segment.contains("**") {
        return Err((
            "uses `**` inside a segment",
            "make `**` a segment of its own (\"logs/**/x\"), or use `*` to stay within one segment",
        ));
    }
    let mut tokens = Vec::with_capacity(segment.len());
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' => Token::Many,
            '?' => Token::One,
            '\\' => Token::Char(chars.next().ok_or((
                "ends with a lone `\\`",
                "remove it, or write `\\\\` for a literal backslash",
            ))?),
            '[' | ']' | '{' | '}' => {
                return Err((
                    "uses `[`, `]`, `{` or `}`, which ferry's globs do not support",
                    "use `*` and `?`, or escape the character (`\\[`) to match it literally",
                ));
            }
            c => Token::Char(c),
        });
    }
    Ok(Segment::Tokens(tokens))
}

fn segment_matches(tokens: &[Token], text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    wildcard(
        tokens,
        &chars,
        |t| *t == Token::Many,
        |t, c| match t {
            Token::Char(x) => x == c,
            Token::One => true,
            Token::Many => true,
        },
    )
}

/// The two-cursor wildcard match: `is_star` items match any run of text items, others match
/// one item each when `one` says so. On a mismatch it backtracks to the last star only, which is
/// enough for correctness and keeps it O(pattern × text).
fn wildcard<P, T>(
    pattern: &[P],
    text: &[T],
    is_star: impl Fn(&P) -> bool,
    one: impl Fn(&P, &T) -> bool,
) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && is_star(&pattern[p]) {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && one(&pattern[p], &text[t]) {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(is_star)
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.pattern)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

impl<'de> serde::Deserialize<'de> for Glob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pattern = String::deserialize(d)?;
        Glob::new(&pattern).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Glob {
    fn schema_name() -> Cow<'static, str> {
        "Glob".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A glob over the whole source key: `*` matches within one path segment, `?` one character, `**` (a whole segment) any number of segments; `\\` escapes. `[ ] { }` must be escaped.",
            "type": "string",
            "minLength": 1,
            "examples": ["**/*.jpg", "logs/2024-??/*"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, key: &str) -> bool {
        Glob::new(pattern).unwrap().matches(key)
    }

    #[test]
    fn star_stays_in_one_segment() {
        assert!(m("logs/*", "logs/a.gz"));
        assert!(!m("logs/*", "logs/2024/a.gz"));
        assert!(m("*.txt", "a.txt"));
        assert!(!m("*.txt", "dir/a.txt"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
    }

    #[test]
    fn double_star_crosses_segments() {
        assert!(m("**/*.jpg", "a.jpg"));
        assert!(m("**/*.jpg", "x/y/z/a.jpg"));
        assert!(!m("**/*.jpg", "x/y/a.jpeg"));
        assert!(m("logs/**/err.log", "logs/err.log"));
        assert!(m("logs/**/err.log", "logs/a/b/err.log"));
        assert!(m("tmp/**", "tmp/a/b"));
        assert!(!m("tmp/**", "tmpx/a"));
        assert!(m("**", "anything/at/all"));
    }

    #[test]
    fn question_mark_is_one_character() {
        assert!(m("logs/2024-??/*", "logs/2024-03/x.gz"));
        assert!(!m("logs/2024-??/*", "logs/2024-3/x.gz"));
        assert!(!m("logs/2024-??/*", "logs/2024-03/d/x.gz"));
        assert!(m("?", "中"));
        assert!(!m("a?b", "a/b"));
    }

    #[test]
    fn escapes_make_characters_literal() {
        assert!(m(r"a\*", "a*"));
        assert!(!m(r"a\*", "ab"));
        assert!(m(r"\[x\]", "[x]"));
    }

    #[test]
    fn refuses_patterns_that_mean_something_else_elsewhere() {
        for bad in ["", "/logs/*", "a**", "**b/c", "x\\", "img/[0-9]*", "{a,b}"] {
            let err = Glob::new(bad).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{bad:?}")) && err.contains("fix:"),
                "{err}"
            );
        }
    }

    #[test]
    fn literal_prefix_stops_at_the_first_wildcard() {
        let p = |s: &str| Glob::new(s).unwrap().literal_prefix();
        assert_eq!(p("logs/2024-??/*"), "logs/2024-");
        assert_eq!(p("**/*.jpg"), "");
        assert_eq!(p("data/raw/x.csv"), "data/raw/x.csv");
        assert_eq!(p("data/**/x"), "data");
    }
}
