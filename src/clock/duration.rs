//! The one duration grammar, for every duration a person writes: a profile
//! step, `--since`, any later flag or key.
//!
//! A whole number and a unit, `45s`, `90m`, `36h`, `4d`, `2w`, or several
//! from the largest unit to the smallest, each unit once (`1d12h`, `2h30m`,
//! `1w3d`). Anything else is refused with a message that says how to write
//! it: no bare numbers (seconds? minutes?), no decimals, no months or years
//! (`M` could be read as minutes or months), no spaces, no signs, lower case
//! only. The bounds (at least 1 s for a step, at most a year, ...) are the
//! caller's: the grammar only refuses what overflows.

use std::fmt;

/// The units, largest first: the letter, its length in seconds.
const UNITS: [(u8, u64); 5] = [
    (b'w', 7 * 86_400),
    (b'd', 86_400),
    (b'h', 3600),
    (b'm', 60),
    (b's', 1),
];

/// How to write a duration, in every message.
const HOW: &str =
    "write a whole number and a unit (s, m, h, d, w), like 45s, 90m, 36h, 4d, 2w or 1d12h";

/// A text is not a duration; each message says how to write one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// Nothing was given.
    Empty,
    /// Not a number and a unit (a sign, a space, a stray letter).
    NotADuration(String),
    /// A number without a unit: add one.
    NoUnit {
        /// The text given.
        text: String,
        /// The number left without a unit.
        number: u64,
    },
    /// `1.5h`: combine units instead.
    Decimal(String),
    /// A letter that is not a unit.
    UnknownUnit {
        /// The text given.
        text: String,
        /// The letter found.
        unit: char,
    },
    /// `30m1h`, `1h1h`: largest to smallest, each once.
    Order(String),
    /// More seconds than fit in 64 bits.
    TooLong(String),
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Empty => write!(f, "an empty duration; {HOW}"),
            DurationError::NotADuration(s) => write!(f, "{s:?} is not a duration; {HOW}"),
            DurationError::NoUnit { text, number: n } => write!(
                f,
                "{text:?} has no unit after {n}: write {n}s, {n}m, {n}h, {n}d or {n}w"
            ),
            DurationError::Decimal(s) => write!(
                f,
                "{s:?}: decimals are not allowed; combine units instead, like 1h30m or 1d12h"
            ),
            DurationError::UnknownUnit { text, unit } => write!(
                f,
                "{text:?} has the unit {unit:?}; the units are s (seconds), m (minutes), \
                 h (hours), d (days) and w (weeks), lower case"
            ),
            DurationError::Order(s) => write!(
                f,
                "{s:?}: units go from the largest to the smallest, each once (like 1d12h or 2h30m)"
            ),
            DurationError::TooLong(s) => write!(f, "{s:?} is too long"),
        }
    }
}

impl std::error::Error for DurationError {}

/// Parses a duration into whole seconds (zero is allowed here; see the
/// module doc).
pub fn parse_duration(s: &str) -> Result<u64, DurationError> {
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    // Index into UNITS of the next unit allowed: each must be smaller than
    // the one before it.
    let mut next_unit = 0;
    while i < b.len() {
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(DurationError::NotADuration(s.to_string()));
        }
        let number: u64 = s[i..i + digits]
            .parse()
            .map_err(|_| DurationError::TooLong(s.to_string()))?;
        i += digits;
        let Some(&unit) = b.get(i) else {
            return Err(DurationError::NoUnit {
                text: s.to_string(),
                number,
            });
        };
        if unit == b'.' || unit == b',' {
            return Err(DurationError::Decimal(s.to_string()));
        }
        let Some(pos) = UNITS.iter().position(|(u, _)| *u == unit) else {
            if !unit.is_ascii() {
                return Err(DurationError::NotADuration(s.to_string()));
            }
            return Err(DurationError::UnknownUnit {
                text: s.to_string(),
                unit: char::from(unit),
            });
        };
        if pos < next_unit {
            return Err(DurationError::Order(s.to_string()));
        }
        next_unit = pos + 1;
        total = number
            .checked_mul(UNITS[pos].1)
            .and_then(|v| v.checked_add(total))
            .ok_or_else(|| DurationError::TooLong(s.to_string()))?;
        i += 1;
    }
    Ok(total)
}

/// Formats whole seconds in the canonical form that [`parse_duration`] reads
/// back: `4d`, `1d12h`, `1h30m`, `45s`; `0s` for zero. Days are the largest
/// unit written (`14d`, not `2w`): a count of days reads plainly.
pub fn format_duration(secs: u64) -> String {
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = secs;
    for (unit, size) in &UNITS[1..] {
        if rest >= *size {
            out.push_str(&(rest / size).to_string());
            out.push(char::from(*unit));
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_unit_and_descending_combinations() {
        let cases = [
            ("45s", 45),
            ("90m", 5400),
            ("36h", 129_600),
            ("4d", 345_600),
            ("2w", 1_209_600),
            ("1d12h", 129_600),
            ("1w3d", 864_000),
            ("2h30m", 9000),
            ("1d2h3m4s", 93_784),
            ("1w1d1h1m1s", 694_861),
            ("365d", 365 * 86_400),
            ("007m", 420),
            ("0s", 0),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn refuses_ambiguous_forms_with_a_hint() {
        let cases = [
            ("", "empty"),
            ("36", "no unit after 36: write 36s, 36m, 36h, 36d or 36w"),
            ("1d12", "no unit after 12"),
            ("1.5h", "decimals are not allowed"),
            ("1,5h", "decimals are not allowed"),
            ("1M", "the unit 'M'"),
            ("2y", "the unit 'y'"),
            ("4D", "lower case"),
            ("30m1h", "from the largest to the smallest"),
            ("1h1h", "from the largest to the smallest"),
            ("1d2w", "from the largest to the smallest"),
            ("99999999999999999999d", "too long"),
            ("99999999999999w", "too long"),
            ("-4d", "not a duration"),
            ("+4d", "not a duration"),
            ("4 d", "the unit ' '"),
            (" 4d", "not a duration"),
            ("d", "not a duration"),
            ("4d ", "not a duration"),
            ("4dé", "not a duration"),
            ("4é", "not a duration"),
            ("yesterday", "not a duration"),
        ];
        for (text, want) in cases {
            let err = parse_duration(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_canonical_form_reads_back() {
        for secs in [
            1, 59, 60, 61, 3600, 5400, 86_399, 86_400, 129_600, 93_784, 1_209_600,
        ] {
            let text = format_duration(secs);
            assert_eq!(parse_duration(&text), Ok(secs), "{text}");
        }
        assert_eq!(format_duration(129_600), "1d12h");
        assert_eq!(format_duration(5400), "1h30m");
        assert_eq!(format_duration(1_209_600), "14d");
        assert_eq!(format_duration(0), "0s");
    }
}
