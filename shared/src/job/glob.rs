//! Glob patterns over object keys, for the job's `include` / `exclude` filters.
//!
//! A pattern is matched against the *whole* source key, with `/` as the separator. The dialect
//! is the one users write for rclone, rsync and `.gitignore`, parsed by the `globset` crate:
//!
//! | pattern | matches |
//! |---|---|
//! | `*` | any run of characters inside one segment (never a `/`), including none |
//! | `?` | exactly one character, not `/` (one Unicode character, not one byte) |
//! | `**` | any number of whole segments; only as a segment of its own: `**/x` (any depth, including the top), `a/**/x` (zero or more segments between), `a/**` (everything under `a/`, not `a` itself), `**` (every key) |
//! | `[abc]`, `[a-z]`, `[[:digit:]]` | one character of the class, never `/` |
//! | `[!a-z]`, `[^a-z]` | one character outside the class, never `/` |
//! | `{jpg,png}` | any one of the comma-separated alternatives, each a pattern; they may nest, and may be empty (`x{,.bak}`) |
//! | `\c` | the character `c` itself (`\*`, `\?`, `\[`, `\{`, `\\`); inside `[...]` every character is literal: put `]` first (`[]a]`) and `-` first or last |
//!
//! Matching is case-sensitive. Where this differs from rclone's filters:
//!
//! * **Anchoring.** rclone matches a pattern without a leading `/` at any depth (`*.jpg` matches
//!   `a/b.jpg`) and one with a leading `/` from the root. ferry always matches the whole key:
//!   rclone's `*.jpg` is ferry's `**/*.jpg`, rclone's `/logs/*` is ferry's `logs/*`, and a leading
//!   `/` is refused (keys do not start with one).
//! * **`**`.** rclone's `**` is "anything, `/` included" wherever it stands (`a**b`); ferry's must
//!   be a segment of its own, and `a**b`, `***` or `**/**` are refused rather than read another
//!   way. ferry's `**/` also matches zero segments: `a/**/x` matches `a/x` (rclone's does not).
//! * **Classes.** rclone passes classes to Go regular expressions: `[^x]` there can match `/`,
//!   and `[!x]` is the class of `!` and `x`. In ferry both negate, never match `/`, and a class
//!   naming `/` is refused.
//! * **`{{regexp}}`.** rclone reads `{{…}}` as a regular expression; ferry has none and refuses
//!   `{{` (escape it as `\{\{`).
//! * **Escapes.** rclone hands `\d` to the regular expression (a digit); in ferry `\` always
//!   makes the next character literal (`\d` is `d`).
//!
//! A stray `]`, a `[` or `{` never closed, a `}` never opened, a backwards range (`[z-a]`) and a
//! trailing lone `\` are refused too, each with the fix. Matching runs a regular expression
//! (globset's translation, compiled Unicode-aware by `regex-automata`): linear in the key, so no
//! pattern can make it explode.

use std::borrow::Cow;
use std::fmt;

use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

/// A compiled glob pattern.
#[derive(Clone)]
pub struct Glob {
    pattern: String,
    regex: Regex,
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

type Problem = (&'static str, &'static str);

const DOUBLE_STAR: Problem = (
    "uses `**` inside a segment (or `***`)",
    "make `**` a segment of its own (\"logs/**/x\", \"**/*.jpg\", \"tmp/**\"), or use `*` to stay \
     within one segment",
);

impl Glob {
    /// Compiles `pattern`; the error quotes it and says how to write it.
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        let fail = |(problem, fix): Problem| GlobError {
            pattern: pattern.to_owned(),
            problem,
            fix,
        };
        if pattern.is_empty() {
            return Err(fail((
                "is empty",
                "write a pattern such as \"**/*.jpg\", or remove the entry",
            )));
        }
        if pattern.starts_with('/') {
            return Err(fail((
                "starts with `/`, but keys do not",
                "remove the leading `/`: patterns always match the whole key (rclone's \"/logs/*\" \
                 is \"logs/*\" here, and rclone's \"*.jpg\" is \"**/*.jpg\")",
            )));
        }
        if pattern == "**/" {
            // globset reads a lone `**/` as `**`, not as "keys ending in `/`".
            return Err(fail((
                "would match every key, not only keys ending in `/`",
                "write \"**\" for every key, or \"**/*/\" for folder markers (keys ending in `/`)",
            )));
        }
        check_dialect(pattern).map_err(fail)?;
        let glob = translate(pattern).map_err(|e| fail(explain(e.kind())))?;
        let unicode = unicode_regex(glob.regex()).ok_or_else(|| {
            fail((
                "could not be translated (globset wrote an expression ferry does not know: a bug)",
                "report it with the pattern; meanwhile write it with fewer constructs",
            ))
        })?;
        let regex = Regex::builder()
            .syntax(syntax::Config::new().dot_matches_new_line(true))
            .build(&unicode)
            .map_err(|_| {
                fail((
                    "is too long or complex to compile",
                    "split it into several simpler patterns",
                ))
            })?;
        Ok(Glob {
            pattern: pattern.to_owned(),
            regex,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `key` matches the whole pattern.
    pub fn matches(&self, key: &str) -> bool {
        self.regex.is_match(key)
    }

    /// The literal text every matching key starts with (up to the first wildcard, class or
    /// alternative).
    pub fn literal_prefix(&self) -> String {
        let mut out = String::new();
        let mut chars = self.pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                '*' | '?' | '[' | '{' => break,
                '\\' => match chars.next() {
                    Some(escaped) => out.push(escaped),
                    None => break,
                },
                c => out.push(c),
            }
        }
        out
    }
}

/// globset's reading of `pattern` in ferry's dialect: `*` and `?` never match `/`, `\` escapes
/// on every platform, `{a,}` keeps its empty alternative, case counts.
fn translate(pattern: &str) -> Result<globset::Glob, globset::Error> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .empty_alternates(true)
        .case_insensitive(false)
        .build()
}

/// Refuses what globset would accept but read differently from how users mean it (mostly
/// rclone's meaning): `**` that is not a whole segment, `**/**`, `{{`, a stray `]`, and a class
/// naming `/` (which can never match). Syntax errors are left to globset, which names them.
fn check_dialect(pattern: &str) -> Result<(), Problem> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '[' => i = skip_class(&chars, i)?,
            ']' => {
                return Err((
                    "has a `]` that closes no `[`",
                    "escape it (`\\]`) to match it literally, or open the class: \"[0-9]\"",
                ));
            }
            '{' if chars.get(i + 1) == Some(&'{') => {
                return Err((
                    "uses `{{`, which is rclone's regular-expression syntax; ferry's patterns are \
                     globs only",
                    "write a glob (`{jpg,png}` alternatives, `[0-9]` classes), or escape the \
                     braces (`\\{\\{`) to match them literally",
                ));
            }
            '*' => {
                let run = chars[i..].iter().take_while(|&&c| c == '*').count();
                let before = i.checked_sub(1).map(|j| chars[j]);
                let after = chars.get(i + run).copied();
                if run == 2 {
                    if before.is_some_and(|c| c != '/') || after.is_some_and(|c| c != '/') {
                        return Err(DOUBLE_STAR);
                    }
                    if after == Some('/')
                        && chars[i + 3..].starts_with(&['*', '*'])
                        && chars.get(i + 5).is_none_or(|&c| c == '/')
                    {
                        return Err((
                            "repeats `**` (`**/**`)",
                            "write `**` once: it already spans any number of segments",
                        ));
                    }
                } else if run > 2 {
                    return Err(DOUBLE_STAR);
                }
                i += run;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// The index just past the class opening at `chars[open]`, read the way globset reads it
/// (`!`/`^` negates, a leading `]` is literal, `[:name:]` is a POSIX class); an unclosed class is
/// left for globset to report.
fn skip_class(chars: &[char], open: usize) -> Result<usize, Problem> {
    let mut i = open + 1;
    if matches!(chars.get(i), Some('!' | '^')) {
        i += 1;
    }
    let mut first = true;
    while let Some(&c) = chars.get(i) {
        match c {
            ']' if !first => return Ok(i + 1),
            '/' => {
                return Err((
                    "puts `/` in a `[...]` class, but a class matches one character within a \
                     segment, never `/`",
                    "write the `/` outside the class, e.g. \"a/[0-9]*\"",
                ));
            }
            '[' if chars.get(i + 1) == Some(&':') => {
                let close = chars[i + 2..]
                    .windows(2)
                    .position(|w| w == [':', ']'])
                    .map(|p| i + 2 + p);
                let known = close.is_some_and(|end| {
                    let name: String = chars[i + 2..end].iter().collect();
                    POSIX_CLASSES.contains(&name.as_str())
                });
                i = match close {
                    Some(end) if known => end + 2,
                    _ => i + 1,
                };
            }
            _ => i += 1,
        }
        first = false;
    }
    Ok(chars.len())
}

/// The POSIX classes globset knows (`[[:digit:]]`); any other `[:name:]` is read as characters.
const POSIX_CLASSES: [&str; 12] = [
    "alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space",
    "upper", "xdigit",
];

fn explain(kind: &globset::ErrorKind) -> Problem {
    use globset::ErrorKind as K;
    match kind {
        K::UnclosedClass => (
            "has a `[` that is never closed",
            "close the class (\"[0-9]*\"), or escape the bracket (`\\[`) to match it literally",
        ),
        K::InvalidRange(..) => (
            "has a `[...]` range that runs backwards (like `[z-a]`)",
            "write the range low to high, e.g. `[a-z]`, `[0-9]`",
        ),
        K::UnopenedAlternates => (
            "has a `}` that closes no `{`",
            "escape it (`\\}`) to match it literally, or open the alternatives: \"*.{jpg,png}\"",
        ),
        K::UnclosedAlternates => (
            "has a `{` that is never closed",
            "close the alternatives (\"*.{jpg,png}\"), or escape the brace (`\\{`) to match it \
             literally",
        ),
        K::TooManyNestedAlternates => (
            "nests `{...}` too deeply",
            "flatten the alternatives, e.g. \"{a,b,c}\", or split them into several patterns",
        ),
        K::DanglingEscape => (
            "ends with a lone `\\`",
            "remove it, or write `\\\\` for a literal backslash",
        ),
        _ => (
            "is too long or complex to compile",
            "split it into several simpler patterns",
        ),
    }
}

/// globset's translation, made to match characters instead of bytes: globset writes a regex in
/// byte mode (`(?-u)`), with every non-ASCII character spelled as its UTF-8 bytes (`\xe4\xb8\xad`),
/// so `?` (`[^/]`) would match one byte of `中`. Decoding those escapes back into characters and
/// dropping `(?-u)` gives the same expression over characters. `None` if the text is not in the
/// form globset writes (a unit test holds every construct to it).
fn unicode_regex(bytes_regex: &str) -> Option<String> {
    let body = bytes_regex.strip_prefix("(?-u)")?;
    let mut out = String::with_capacity(body.len());
    let mut pending: Vec<u8> = Vec::new();
    let mut chars = body.chars();
    let flush = |pending: &mut Vec<u8>, out: &mut String| -> Option<()> {
        if !pending.is_empty() {
            out.push_str(std::str::from_utf8(pending).ok()?);
            pending.clear();
        }
        Some(())
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush(&mut pending, &mut out)?;
            out.push(c);
            continue;
        }
        let escaped = chars.next()?;
        if escaped == 'x' {
            let hex = [chars.next()?, chars.next()?];
            let byte = u8::from_str_radix(&hex.iter().collect::<String>(), 16).ok()?;
            if byte.is_ascii() {
                return None;
            }
            pending.push(byte);
            continue;
        }
        if !escaped.is_ascii_punctuation() {
            // `\s`, `\d`, …: globset writes none, and they mean more in Unicode mode.
            return None;
        }
        flush(&mut pending, &mut out)?;
        out.push('\\');
        out.push(escaped);
    }
    flush(&mut pending, &mut out)?;
    Some(out)
}

impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for Glob {}

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
            "description": "A glob over the whole source key (no leading `/`; unlike rclone, a pattern never matches at any depth by itself): `*` matches within one path segment, `?` one character, `**` as a segment of its own any number of segments (`**/*.jpg`, `tmp/**`), `[0-9]` / `[!a-z]` one character of / outside a class, `{jpg,png}` alternatives; `\\` makes the next character literal.",
            "type": "string",
            "minLength": 1,
            "examples": ["**/*.{jpg,png}", "logs/2024-??/*", "img/[0-9]*", "tmp/**"]
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn m(pattern: &str, key: &str) -> bool {
        Glob::new(pattern).unwrap().matches(key)
    }

    fn refused(pattern: &str) -> String {
        let err = Glob::new(pattern).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{pattern:?} ")) && err.contains("; fix: "),
            "{err}"
        );
        err
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
        assert!(m("logs/*", "logs/"));
        assert!(m("*", "line\nbreak"));
    }

    #[test]
    fn double_star_crosses_segments() {
        assert!(m("**/*.jpg", "a.jpg"));
        assert!(m("**/*.jpg", "x/y/z/a.jpg"));
        assert!(!m("**/*.jpg", "x/y/a.jpeg"));
        assert!(m("logs/**/err.log", "logs/err.log"));
        assert!(m("logs/**/err.log", "logs/a/b/err.log"));
        assert!(!m("logs/**/err.log", "logs/xerr.log"));
        assert!(m("tmp/**", "tmp/a/b"));
        assert!(m("tmp/**", "tmp/"));
        assert!(!m("tmp/**", "tmp"));
        assert!(!m("tmp/**", "tmpx/a"));
        assert!(m("**", "anything/at/all"));
        assert!(m("**", "new\nline/x"));
        assert!(m("a/**/", "a/b/c/"));
        assert!(!m("a/**/", "a/b/c"));
    }

    #[test]
    fn question_mark_is_one_character() {
        assert!(m("logs/2024-??/*", "logs/2024-03/x.gz"));
        assert!(!m("logs/2024-??/*", "logs/2024-3/x.gz"));
        assert!(!m("logs/2024-??/*", "logs/2024-03/d/x.gz"));
        assert!(m("?", "中"));
        assert!(!m("??", "中"));
        assert!(!m("???", "中"), "one character, not one byte");
        assert!(m("?.jpg", "é.jpg"));
        assert!(m("?", "🦀"));
        assert!(!m("a?b", "a/b"));
    }

    #[test]
    fn braces_are_alternatives() {
        assert!(m("**/*.{jpg,png}", "a.jpg"));
        assert!(m("**/*.{jpg,png}", "x/y/a.png"));
        assert!(!m("**/*.{jpg,png}", "x/a.gif"));
        assert!(!m("**/*.{jpg,png}", "x/a.jpgx"));
        assert!(m("{logs,tmp}/*", "tmp/x"));
        assert!(!m("{logs,tmp}/*", "cache/x"));
        // Alternatives may hold `/` and wildcards, nest, and be empty.
        assert!(m("{a/b,c}/*", "a/b/x"));
        assert!(m("{a/*,c}.txt", "a/x.txt"));
        assert!(!m("{a/*,c}.txt", "a/x/y.txt"));
        assert!(m("x.{tar.{gz,xz},zip}", "x.tar.xz"));
        assert!(m("x.{tar.{gz,xz},zip}", "x.zip"));
        assert!(!m("x.{tar.{gz,xz},zip}", "x.tar"));
        assert!(m("report{,.bak}", "report"));
        assert!(m("report{,.bak}", "report.bak"));
        assert!(m("{中文,日本}/?", "中文/图"));
        // Outside braces a comma is an ordinary character.
        assert!(m("a,b", "a,b"));
    }

    #[test]
    fn classes_match_one_character() {
        assert!(m("img/[0-9]*", "img/7.png"));
        assert!(!m("img/[0-9]*", "img/x7.png"));
        assert!(m("[abc].txt", "b.txt"));
        assert!(!m("[abc].txt", "d.txt"));
        assert!(m("v[[:digit:]][[:alpha:]]", "v1a"));
        assert!(!m("v[[:digit:]]", "vx"));
        assert!(m("[]a]", "]"));
        assert!(m("[-a]", "-"));
        assert!(m("[a-]", "-"));
        assert!(m(r"[\]", r"\"), "inside a class `\\` is literal");
        assert!(m("[中文]", "文"));
        assert!(m("[一-龥]*", "中国.txt"));
        assert!(!m("[一-龥]*", "a.txt"));
        assert!(!m("[0-9]", "10"));
    }

    #[test]
    fn negated_classes_never_match_the_separator() {
        for pattern in ["a[!x]b", "a[^x]b"] {
            assert!(m(pattern, "ayb"), "{pattern}");
            assert!(m(pattern, "a中b"), "{pattern}");
            assert!(!m(pattern, "axb"), "{pattern}");
            assert!(!m(pattern, "a/b"), "{pattern}");
        }
        // A range spanning `/` still leaves it out.
        assert!(m("a[+-9]b", "a.b"));
        assert!(!m("a[+-9]b", "a/b"));
    }

    #[test]
    fn escapes_make_characters_literal() {
        assert!(m(r"a\*", "a*"));
        assert!(!m(r"a\*", "ab"));
        assert!(m(r"\[x\]", "[x]"));
        assert!(m(r"\{a,b\}", "{a,b}"));
        assert!(!m(r"\{a,b\}", "a"));
        assert!(m(r"a\?", "a?"));
        assert!(!m(r"a\?", "ab"));
        assert!(m(r"\\", r"\"));
        assert!(m(r"\d", "d"), "an escaped ordinary character is itself");
        assert!(m(r"\*\*/x", "**/x"));
        assert!(m(r"{a\,b,c}", "a,b"));
        assert!(m(r"\{\{x\}\}", "{{x}}"));
    }

    #[test]
    fn literal_keys_with_unicode_and_regex_characters() {
        for key in [
            "中文/文件.txt",
            "a.b+c(d)|e^f$g",
            "spaces and\ttabs",
            "ünïcödé/🦀",
        ] {
            assert!(m(key, key), "{key}");
        }
        assert!(!m("a.b", "axb"), "`.` is literal");
    }

    #[test]
    fn refuses_patterns_that_mean_something_else_elsewhere() {
        for (bad, says) in [
            ("", "empty"),
            ("/logs/*", "rclone"),
            ("a**", "segment of its own"),
            ("**b/c", "segment of its own"),
            ("a/**b", "segment of its own"),
            ("a/***/b", "segment of its own"),
            ("***", "segment of its own"),
            ("x/{**,y}", "segment of its own"),
            ("{a/**,b}", "segment of its own"),
            ("**/**", "once"),
            ("**/", "every key"),
            ("a/**/**/b", "once"),
            ("{{.*\\.jpg}}", "regular-expression"),
            ("img/0-9]*", "`\\]`"),
            ("a[/]b", "outside the class"),
            ("a[!/]b", "outside the class"),
        ] {
            let err = refused(bad);
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn refuses_malformed_patterns_with_the_fix() {
        for (bad, says) in [
            ("x\\", "lone"),
            ("img/[0-9*", "never closed"),
            ("[!]", "never closed"),
            ("*.{jpg,png", "never closed"),
            ("*.jpg}", "closes no `{`"),
            ("[z-a]", "backwards"),
            (
                &format!("{}x{}", "{a,".repeat(150), "}".repeat(150)),
                "too deeply",
            ),
        ] {
            let err = refused(bad);
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn every_construct_compiles_to_a_unicode_regex() {
        for pattern in [
            "**",
            "**/x",
            "a/**",
            "a/**/b",
            "a?b*c",
            "[a-z]",
            "[!中]",
            "[[:space:]]",
            "{a,,{b,c}}",
            "中\\*文",
            "a.b+c(d)|e^f$g",
            "[--0]",
        ] {
            let glob = translate(pattern).unwrap();
            assert!(
                unicode_regex(glob.regex()).is_some(),
                "{pattern}: {}",
                glob.regex()
            );
            Glob::new(pattern).unwrap();
        }
    }

    #[test]
    fn literal_prefix_stops_at_the_first_wildcard() {
        let p = |s: &str| Glob::new(s).unwrap().literal_prefix();
        assert_eq!(p("logs/2024-??/*"), "logs/2024-");
        assert_eq!(p("**/*.jpg"), "");
        assert_eq!(p("data/raw/x.csv"), "data/raw/x.csv");
        assert_eq!(p("data/**/x"), "data/");
        assert_eq!(p("img/[0-9]*"), "img/");
        assert_eq!(p("{a,b}/x"), "");
        assert_eq!(p("x/{a,b}"), "x/");
        assert_eq!(p(r"a\*b/*"), "a*b/");
    }

    /// The examples table of docs/filters.md.
    #[test]
    fn the_documented_examples_hold() {
        for (pattern, yes, no) in [
            (
                "**/*.{jpg,png}",
                &["a.jpg", "x/y/b.png"][..],
                &["a.gif", "a.jpg.bak"][..],
            ),
            (
                "2024/**/*.jpg",
                &["2024/a.jpg", "2024/05/a.jpg"],
                &["2023/a.jpg", "x/2024/a.jpg"],
            ),
            (
                "logs/2024-??/*",
                &["logs/2024-03/app.log"],
                &["logs/2024-3/app.log", "logs/2024-03/d/app.log"],
            ),
            (
                "img/[0-9]*",
                &["img/7.png", "img/42"],
                &["img/x7.png", "img/7/a.png"],
            ),
            ("**/[!_]*.csv", &["data/a.csv"], &["data/_tmp.csv"]),
            (
                "{tmp,cache}/**",
                &["tmp/a", "cache/x/y"],
                &["tmp", "temp/a"],
            ),
            ("report{,.bak}", &["report", "report.bak"], &["report.old"]),
            (r"a\*b", &["a*b"], &["axb"]),
        ] {
            for key in yes {
                assert!(m(pattern, key), "{pattern} should match {key}");
            }
            for key in no {
                assert!(!m(pattern, key), "{pattern} should not match {key}");
            }
        }
    }

    #[test]
    fn equality_and_display_use_the_pattern() {
        let g = Glob::new("**/*.{jpg,png}").unwrap();
        assert_eq!(g, Glob::new("**/*.{jpg,png}").unwrap());
        assert_ne!(g, Glob::new("**/*.{png,jpg}").unwrap());
        assert_eq!(g.to_string(), "**/*.{jpg,png}");
        assert_eq!(format!("{g:?}"), "Glob(\"**/*.{jpg,png}\")");
        assert_eq!(g.as_str(), "**/*.{jpg,png}");
    }

    /// The segment semantics written out plainly: `*`, `?` and literals within a segment, `**`
    /// (a whole segment) for any number of segments — at least one when it ends the pattern.
    fn reference(pattern: &[&str], key: &[&str]) -> bool {
        fn segment(p: &[char], k: &[char]) -> bool {
            match p.split_first() {
                None => k.is_empty(),
                Some(('*', rest)) => (0..=k.len()).any(|i| segment(rest, &k[i..])),
                Some(('?', rest)) => !k.is_empty() && segment(rest, &k[1..]),
                Some((c, rest)) => k.first() == Some(c) && segment(rest, &k[1..]),
            }
        }
        match pattern.split_first() {
            None => key.is_empty(),
            Some((&"**", [])) => !key.is_empty(),
            Some((&"**", rest)) => (0..=key.len()).any(|i| reference(rest, &key[i..])),
            Some((p, rest)) => key.split_first().is_some_and(|(k, key_rest)| {
                let p: Vec<char> = p.chars().collect();
                let k: Vec<char> = k.chars().collect();
                segment(&p, &k) && reference(rest, key_rest)
            }),
        }
    }

    fn escape_all(key: &str) -> String {
        key.chars().flat_map(|c| ['\\', c]).collect()
    }

    proptest! {
        #[test]
        fn escaped_characters_match_exactly_that_key(
            key in "\\PC{1,24}",
            other in "\\PC{0,24}",
        ) {
            let glob = Glob::new(&escape_all(&key)).unwrap();
            prop_assert!(glob.matches(&key));
            prop_assert_eq!(glob.matches(&other), other == key);
            prop_assert_eq!(glob.literal_prefix(), key);
        }

        #[test]
        fn single_stars_never_cross_a_separator(
            pattern in r"\*?([ab?中]\*?){1,3}(/\*?([ab?中]\*?){1,3}){0,3}",
            key in "[ab/中]{0,14}",
        ) {
            let glob = Glob::new(&pattern).unwrap();
            if glob.matches(&key) {
                prop_assert_eq!(key.matches('/').count(), pattern.matches('/').count());
            }
        }

        #[test]
        fn matches_the_reference_segment_semantics(
            segments in prop::collection::vec(
                prop_oneof![Just("**".to_owned()), "[ab*?中]{0,3}"],
                1..5,
            ),
            key in "[ab/中]{0,10}",
        ) {
            let pattern = segments.join("/");
            // Only what ferry accepts: no empty pattern, no leading `/`, no `**` in a segment.
            let Ok(glob) = Glob::new(&pattern) else {
                return Ok(());
            };
            let p: Vec<&str> = pattern.split('/').collect();
            let k: Vec<&str> = key.split('/').collect();
            prop_assert_eq!(glob.matches(&key), reference(&p, &k), "{} vs {:?}", pattern, key);
        }

        #[test]
        fn never_panics_and_errors_quote_the_pattern(
            pattern in "[ab/*?\\[\\]{},!^:\\\\-]{0,16}|\\PC{0,16}",
            key in "\\PC{0,16}",
        ) {
            match Glob::new(&pattern) {
                Ok(glob) => {
                    glob.matches(&key);
                    glob.literal_prefix();
                }
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(text.starts_with(&format!("{pattern:?} ")), "{}", text);
                    prop_assert!(text.contains("; fix: "), "{}", text);
                }
            }
        }

        #[test]
        fn on_ascii_keys_agrees_with_globsets_own_matcher(
            pattern in r"[ab/*?\[\]{},!^\\-]{1,12}",
            key in r"[ab/,!^\\\[\]{}-]{0,10}",
        ) {
            let Ok(glob) = Glob::new(&pattern) else {
                return Ok(());
            };
            let bytes = translate(&pattern).unwrap().compile_matcher();
            prop_assert_eq!(glob.matches(&key), bytes.is_match(&key), "{} vs {:?}", pattern, key);
        }

        #[test]
        fn literal_prefix_starts_every_match(
            pattern in "[ab/*?]{1,8}",
            key in "[ab/]{0,10}",
        ) {
            if let Ok(glob) = Glob::new(&pattern)
                && glob.matches(&key)
            {
                prop_assert!(key.starts_with(&glob.literal_prefix()));
            }
        }
    }
}
