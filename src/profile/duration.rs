//! Durations as people write them in a profile: `45s`, `90m`, `36h`, `4d`, and
//! combinations from the largest unit to the smallest, each unit once (`1d12h`,
//! `2h30m`). Anything else is refused with a message that says how to write
//! it: no bare numbers (seconds? minutes?), no decimals, no weeks or months
//! (`M` could be read as minutes or months), no spaces, no signs.

/// The longest step: a year. Longer is surely a typo (`400d` for `40d`).
pub const MAX_STEP_S: u64 = 365 * 86_400;

const UNITS: [(u8, u64, &str); 4] = [
    (b'd', 86_400, "days"),
    (b'h', 3600, "hours"),
    (b'm', 60, "minutes"),
    (b's', 1, "seconds"),
];

const HOW: &str = "write a whole number and a unit (s, m, h, d), like 45s, 90m, 36h, 4d or 1d12h";

/// Parses a step duration into whole seconds, 1 s to [`MAX_STEP_S`].
pub fn parse_duration(s: &str) -> Result<u64, String> {
    if s.is_empty() {
        return Err(format!("an empty duration; {HOW}"));
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
            return Err(format!("{s:?} is not a duration; {HOW}"));
        }
        let number: u64 = s[i..i + digits]
            .parse()
            .map_err(|_| format!("{s:?} is too long; at most {}", format_duration(MAX_STEP_S)))?;
        i += digits;
        let Some(&unit) = b.get(i) else {
            return Err(format!(
                "{s:?} has no unit after {number}: write {number}s, {number}m, {number}h or {number}d"
            ));
        };
        if unit == b'.' || unit == b',' {
            return Err(format!(
                "{s:?}: decimals are not allowed; combine units instead, like 1h30m or 1d12h"
            ));
        }
        let Some(pos) = UNITS.iter().position(|(u, _, _)| *u == unit) else {
            let shown = s[i..].chars().next().unwrap_or('?');
            return Err(format!(
                "{s:?} has the unit {shown:?}; the units are s (seconds), m (minutes), h (hours) and d (days), lower case"
            ));
        };
        if pos < next_unit {
            return Err(format!(
                "{s:?}: units go from the largest to the smallest, each once (like 1d12h or 2h30m)"
            ));
        }
        next_unit = pos + 1;
        total = number
            .checked_mul(UNITS[pos].1)
            .and_then(|v| v.checked_add(total))
            .ok_or_else(|| format!("{s:?} is too long; at most {}", format_duration(MAX_STEP_S)))?;
        i += 1;
    }
    if total == 0 {
        return Err(format!("{s:?} is zero; a step lasts at least 1s"));
    }
    if total > MAX_STEP_S {
        return Err(format!(
            "{s:?} is too long; a step lasts at most {}",
            format_duration(MAX_STEP_S)
        ));
    }
    Ok(total)
}

/// Formats whole seconds in the canonical form that [`parse_duration`] reads
/// back: `4d`, `1d12h`, `1h30m`, `45s`; `0s` for zero.
pub fn format_duration(secs: u64) -> String {
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = secs;
    for (unit, size, _) in UNITS {
        if rest >= size {
            out.push_str(&(rest / size).to_string());
            out.push(unit as char);
            rest %= size;
        }
    }
    out
}

/// Formats a remaining time for people, coarsely: `3d 4h`, `5h 12m`, `7m 30s`, `42s`.
pub fn format_remaining(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_units_and_descending_combinations() {
        let cases = [
            ("45s", 45),
            ("90m", 5400),
            ("36h", 129_600),
            ("4d", 345_600),
            ("1d12h", 129_600),
            ("2h30m", 9000),
            ("1d2h3m4s", 93_784),
            ("365d", MAX_STEP_S),
            ("007m", 420),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn refuses_ambiguous_forms_with_a_hint() {
        let cases = [
            ("", "empty"),
            ("36", "no unit after 36: write 36s, 36m, 36h or 36d"),
            ("1.5h", "decimals are not allowed"),
            ("1,5h", "decimals are not allowed"),
            ("2w", "the unit 'w'"),
            ("1M", "the unit 'M'"),
            ("4D", "lower case"),
            ("30m1h", "from the largest to the smallest"),
            ("1h1h", "from the largest to the smallest"),
            ("0s", "zero"),
            ("0d0h", "zero"),
            ("366d", "at most 365d"),
            ("99999999999999999999d", "too long"),
            ("9999999999999999d", "too long"),
            ("-4d", "not a duration"),
            ("+4d", "not a duration"),
            ("4 d", "the unit ' '"),
            (" 4d", "not a duration"),
            ("d", "not a duration"),
            ("4d ", "not a duration"),
            ("4dé", "not a duration"),
        ];
        for (text, want) in cases {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn canonical_form_reads_back() {
        for secs in [
            1, 59, 60, 61, 3600, 5400, 86_399, 86_400, 129_600, 93_784, MAX_STEP_S,
        ] {
            let text = format_duration(secs);
            assert_eq!(parse_duration(&text), Ok(secs), "{text}");
        }
        assert_eq!(format_duration(129_600), "1d12h");
        assert_eq!(format_duration(5400), "1h30m");
    }

    #[test]
    fn remaining_is_coarse() {
        assert_eq!(format_remaining(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
        assert_eq!(format_remaining(5 * 3600 + 12 * 60 + 9), "5h 12m");
        assert_eq!(format_remaining(7 * 60 + 30), "7m 30s");
        assert_eq!(format_remaining(42), "42s");
        assert_eq!(format_remaining(0), "0s");
    }
}
