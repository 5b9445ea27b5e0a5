//! Byte counts and rates as people write them: `10MiB`, `1.5GB`, `200MB/s`, `100Mbit/s`, or a
//! plain integer of bytes.
//!
//! Binary units (`KiB`, `MiB`, `GiB`, `TiB`, `PiB`) are powers of 1024, decimal units (`KB`,
//! `MB`, `GB`, `TB`, `PB`) powers of 1000, so `1.5GB` is 1,500,000,000 bytes; units are read
//! case-insensitively. A bare `K`, `M` or `G` is refused rather than guessed. Fractions are
//! computed exactly (no floating point) and must come to a whole number of bytes.
//!
//! `Display` writes the shortest exact form (`1.5KiB`, `10MB`, `12345B`), so formatting a size
//! and reading it back always gives the same number.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, Visitor};

/// A number of bytes, written as an integer or as a string with a unit (`"10MiB"`, `"1.5GB"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

/// A transfer rate in bytes per second, written as an integer or as a string ending in `/s`
/// (`"200MB/s"`, `"1.5GiB/s"`, `"100Mbit/s"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bandwidth(pub u64);

/// Why a size or rate could not be read. The message quotes the text and says what to write.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} {problem}; fix: {fix}")]
pub struct SizeError {
    /// The text as written.
    pub text: String,
    /// What is wrong with it.
    pub problem: String,
    /// What to write instead.
    pub fix: String,
}

const SIZE_FIX: &str = "write a whole number of bytes, or a number with a unit such as \"512KiB\", \"10MiB\" or \"1.5GB\" (KiB/MiB/GiB/TiB = 1024ⁿ, KB/MB/GB/TB = 1000ⁿ)";
const RATE_FIX: &str = "write bytes per second as an integer, or a rate such as \"200MB/s\", \"1GiB/s\" or \"100Mbit/s\"";

/// Units from largest to smallest, for formatting; binary before decimal at each step.
const UNITS: [(&str, u64); 10] = [
    ("PiB", 1 << 50),
    ("PB", 1_000_000_000_000_000),
    ("TiB", 1 << 40),
    ("TB", 1_000_000_000_000),
    ("GiB", 1 << 30),
    ("GB", 1_000_000_000),
    ("MiB", 1 << 20),
    ("MB", 1_000_000),
    ("KiB", 1 << 10),
    ("KB", 1_000),
];

impl ByteSize {
    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// `n` KiB (1024 bytes each).
    pub const fn kib(n: u64) -> Self {
        ByteSize(n << 10)
    }

    /// `n` MiB (1024² bytes each).
    pub const fn mib(n: u64) -> Self {
        ByteSize(n << 20)
    }

    /// `n` GiB (1024³ bytes each).
    pub const fn gib(n: u64) -> Self {
        ByteSize(n << 30)
    }
}

impl Bandwidth {
    /// The rate in bytes per second.
    pub const fn bytes_per_second(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = SizeError;

    fn from_str(text: &str) -> Result<Self, SizeError> {
        let fail = |problem: &str| SizeError {
            text: text.to_owned(),
            problem: problem.to_owned(),
            fix: SIZE_FIX.to_owned(),
        };
        let (number, unit) = split_number(text.trim()).ok_or_else(|| fail("is not a size"))?;
        let multiplier = byte_unit(unit, &fail)?;
        scale(number, multiplier, 1, &fail).map(ByteSize)
    }
}

impl FromStr for Bandwidth {
    type Err = SizeError;

    fn from_str(text: &str) -> Result<Self, SizeError> {
        let fail = |problem: &str| SizeError {
            text: text.to_owned(),
            problem: problem.to_owned(),
            fix: RATE_FIX.to_owned(),
        };
        let trimmed = text.trim();
        let Some(amount) = trimmed
            .strip_suffix("/s")
            .or_else(|| trimmed.strip_suffix("/S"))
        else {
            return Err(fail("is not a rate (it does not end in `/s`)"));
        };
        let (number, unit) = split_number(amount.trim()).ok_or_else(|| fail("is not a rate"))?;
        let per_second = match bit_unit(unit) {
            Some(bits) => scale(number, bits, 8, &fail),
            None => byte_unit(unit, &fail).and_then(|m| scale(number, m, 1, &fail)),
        };
        per_second.map(Bandwidth)
    }
}

/// Splits `"1.5 GiB"` into `("1.5", "GiB")`.
fn split_number(s: &str) -> Option<(&str, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(end);
    let valid = !number.is_empty()
        && !number.starts_with('.')
        && !number.ends_with('.')
        && number.matches('.').count() <= 1;
    valid.then_some((number, unit.trim()))
}

/// Makes the error for one text from what is wrong with it.
type Fail<'a> = &'a dyn Fn(&str) -> SizeError;

/// Bytes per unit of a byte unit name.
fn byte_unit(unit: &str, fail: Fail) -> Result<u64, SizeError> {
    let lower = unit.to_ascii_lowercase();
    let found = match lower.as_str() {
        "" | "b" | "byte" | "bytes" => Some(1),
        _ => UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&lower))
            .map(|&(_, m)| m),
    };
    if let Some(m) = found {
        return Ok(m);
    }
    if matches!(lower.as_str(), "k" | "m" | "g" | "t" | "p") {
        return Err(fail(&format!(
            "has the ambiguous unit `{unit}` (1000 or 1024?): write {0}iB for powers of 1024 or {0}B for powers of 1000",
            unit.to_ascii_uppercase()
        )));
    }
    Err(fail(&format!("has the unknown unit `{unit}`")))
}

/// Bits per unit of a bit unit name (`bit`, `Kbit`, `Mbit`, `Gbit`, `Tbit`; powers of 1000).
fn bit_unit(unit: &str) -> Option<u64> {
    let lower = unit.to_ascii_lowercase();
    let prefix = lower
        .strip_suffix("bit")
        .or_else(|| lower.strip_suffix("bits"))?;
    Some(match prefix {
        "" => 1,
        "k" => 1_000,
        "m" => 1_000_000,
        "g" => 1_000_000_000,
        "t" => 1_000_000_000_000,
        _ => return None,
    })
}

/// `number × multiplier ÷ divisor`, exactly: the decimal fraction must come out whole.
fn scale(number: &str, multiplier: u64, divisor: u64, fail: Fail) -> Result<u64, SizeError> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.len() > 18 || whole.len() > 30 {
        return Err(fail("has too many digits"));
    }
    let digits = format!("{whole}{fraction}");
    let mantissa: u128 = digits.parse().map_err(|_| fail("is not a number"))?;
    let denominator = 10u128.pow(fraction.len() as u32) * u128::from(divisor);
    let scaled = mantissa
        .checked_mul(u128::from(multiplier))
        .ok_or_else(|| fail("is too large"))?;
    if scaled % denominator != 0 {
        return Err(fail("is not a whole number of bytes"));
    }
    u64::try_from(scaled / denominator).map_err(|_| fail("is too large (over 16 EiB)"))
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (name, unit) in UNITS {
            // Up to three decimals, and only when exact, so the text reads back as the same number;
            // no fractions of a small unit for large numbers (`1234.567KB`): bytes read better.
            let thousandths = u128::from(n) * 1000;
            let scaled = thousandths / u128::from(unit);
            let (whole, frac) = (scaled / 1000, scaled % 1000);
            let exact = thousandths % u128::from(unit) == 0;
            if n >= unit && exact && (frac == 0 || whole < 1000) {
                return if frac == 0 {
                    write!(f, "{whole}{name}")
                } else {
                    let frac = format!("{frac:03}");
                    write!(f, "{whole}.{}{name}", frac.trim_end_matches('0'))
                };
            }
        }
        write!(f, "{n}B")
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", ByteSize(self.0))
    }
}

/// Reads an integer or a string with `parse`; shared by both types.
struct AmountVisitor<T> {
    expecting: &'static str,
    fix: &'static str,
    parse: fn(&str) -> Result<T, SizeError>,
    wrap: fn(u64) -> T,
}

impl<T> Visitor<'_> for AmountVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Ok((self.wrap)(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        u64::try_from(v)
            .map(self.wrap)
            .map_err(|_| E::custom(format!("{v} is negative; fix: {}", self.fix)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        Err(E::custom(format!(
            "{v} is not a whole number of bytes; fix: {}",
            self.fix
        )))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AmountVisitor {
            expecting: "a size: an integer of bytes or a string like \"10MiB\"",
            fix: SIZE_FIX,
            parse: str::parse,
            wrap: ByteSize,
        })
    }
}

impl<'de> serde::Deserialize<'de> for Bandwidth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AmountVisitor {
            expecting: "a rate: an integer of bytes per second or a string like \"200MB/s\"",
            fix: RATE_FIX,
            parse: str::parse,
            wrap: Bandwidth,
        })
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A number of bytes: an integer, or a string with a unit. KiB, MiB, GiB, TiB, PiB are powers of 1024; KB, MB, GB, TB, PB powers of 1000; fractions allowed when they come to whole bytes (\"1.5GB\").",
            "oneOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*([KMGTPkmgtp][Ii]?[Bb]|[Bb])?\\s*$", "examples": ["10MiB", "1.5GB", "512KiB"] }
            ]
        })
    }
}

impl JsonSchema for Bandwidth {
    fn schema_name() -> Cow<'static, str> {
        "Bandwidth".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A rate: an integer of bytes per second, or a string ending in /s with a byte unit (\"200MB/s\", \"1GiB/s\") or a bit unit (\"100Mbit/s\", powers of 1000).",
            "oneOf": [
                { "type": "integer", "minimum": 1 },
                { "type": "string", "pattern": "/[sS]\\s*$", "examples": ["200MB/s", "100Mbit/s"] }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(s: &str) -> u64 {
        s.parse::<ByteSize>().unwrap().0
    }

    #[test]
    fn reads_units_both_families() {
        assert_eq!(size("0"), 0);
        assert_eq!(size("42"), 42);
        assert_eq!(size("42B"), 42);
        assert_eq!(size("10MiB"), 10 << 20);
        assert_eq!(size("10 mib"), 10 << 20);
        assert_eq!(size("1.5GB"), 1_500_000_000);
        assert_eq!(size("1.5KiB"), 1536);
        assert_eq!(size("100KiB"), 102_400);
        assert_eq!(size("5GiB"), 5 << 30);
        assert_eq!(size(" 2 TB "), 2_000_000_000_000);
    }

    #[test]
    fn refuses_what_it_cannot_read_exactly() {
        for bad in [
            "",
            "MiB",
            "1.2.3MB",
            ".5MB",
            "5.MB",
            "10 parsecs",
            "10M",
            "1.3B",
            "-5MB",
            "99999PiB",
        ] {
            let err = bad.parse::<ByteSize>().unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
            assert!(err.contains("fix:"), "{err}");
        }
        let err = "10M".parse::<ByteSize>().unwrap_err().to_string();
        assert!(err.contains("MiB"), "{err}");
    }

    #[test]
    fn formats_exactly_and_shortest() {
        assert_eq!(ByteSize(0).to_string(), "0B");
        assert_eq!(ByteSize(1536).to_string(), "1.5KiB");
        assert_eq!(ByteSize(1500).to_string(), "1.5KB");
        assert_eq!(ByteSize(10 << 20).to_string(), "10MiB");
        assert_eq!(ByteSize(1_000_000).to_string(), "1MB");
        assert_eq!(ByteSize(1234567).to_string(), "1234567B");
        assert_eq!(ByteSize(u64::MAX).to_string(), format!("{}B", u64::MAX));
    }

    #[test]
    fn reads_rates_in_bytes_and_bits() {
        let rate = |s: &str| s.parse::<Bandwidth>().unwrap().0;
        assert_eq!(rate("200MB/s"), 200_000_000);
        assert_eq!(rate("1GiB/s"), 1 << 30);
        assert_eq!(rate("100Mbit/s"), 12_500_000);
        assert_eq!(rate("8bit/s"), 1);
        assert!("200MB".parse::<Bandwidth>().is_err());
        assert!("1bit/s".parse::<Bandwidth>().is_err());
        assert_eq!(Bandwidth(200_000_000).to_string(), "200MB/s");
    }
}
