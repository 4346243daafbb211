//! Wall-clock helpers that only profiles need: instants from a profile's
//! text (RFC 3339 through [`crate::clock::parse_rfc3339`], within the years
//! a profile can reach), a step added to an instant without overflow, and
//! local times of day (`07:00`) for daily profiles.
//!
//! Instants are `time::OffsetDateTime` values kept in UTC; the zone and the
//! RFC 3339 form are [`crate::clock`]'s.

use time::OffsetDateTime;

use crate::clock::parse_rfc3339;

/// `t` plus `secs` seconds, or the last representable instant (a start in
/// the year 9000 plus a year of steps must not panic).
pub(crate) fn add_secs(t: OffsetDateTime, secs: u64) -> OffsetDateTime {
    i64::try_from(secs)
        .ok()
        .and_then(|s| t.checked_add(time::Duration::seconds(s)))
        .unwrap_or_else(|| time::PrimitiveDateTime::MAX.assume_utc())
}

/// Parses a profile's instant (a `start`, a checkpoint in the state file):
/// RFC 3339 as [`crate::clock::rfc3339`] reads it, written between 1970
/// and 9000, so that a year of steps after it stays representable.
pub fn parse_instant(s: &str) -> Result<OffsetDateTime, String> {
    let t = parse_rfc3339(s).map_err(|e| e.to_string())?;
    // The year as written (valid: the parse succeeded), as people read it.
    let year: i32 = s.get(..4).and_then(|y| y.parse().ok()).unwrap_or(0);
    if !(1970..=9000).contains(&year) {
        return Err(format!(
            "{s:?} is not a year between 1970 and 9000; write it like 2026-12-01T08:00:00+01:00 (or ...Z for UTC)"
        ));
    }
    // Profiles count whole seconds: a fraction is dropped.
    let whole = OffsetDateTime::from(t);
    Ok(whole.replace_nanosecond(0).unwrap_or(whole))
}

/// Parses a local time of day, `HH:MM` or `HH:MM:SS` (00:00 to 23:59:59), into
/// seconds after midnight.
pub(crate) fn parse_time_of_day(s: &str) -> Result<u32, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let field = |p: &str, max: u32| -> Option<u32> {
        if p.len() != 2 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        p.parse().ok().filter(|v| *v <= max)
    };
    let parsed = match parts.as_slice() {
        [h, m] => field(h, 23)
            .zip(field(m, 59))
            .map(|(h, m)| h * 3600 + m * 60),
        [h, m, sec] => field(h, 23)
            .zip(field(m, 59))
            .zip(field(sec, 59))
            .map(|((h, m), sec)| h * 3600 + m * 60 + sec),
        _ => None,
    };
    parsed.ok_or_else(|| {
        format!(
            "{s:?} is not a time of day; write it as HH:MM on the 24-hour clock, like \"07:00\""
        )
    })
}

/// Formats seconds after midnight as `HH:MM` (or `HH:MM:SS`).
pub(crate) fn time_of_day_string(secs: u32) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if s == 0 {
        format!("{h:02}:{m:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn instants_accept_offsets_and_utc() {
        let cases = [
            ("2026-12-01T08:00:00+01:00", datetime!(2026-12-01 07:00 UTC)),
            ("2026-12-01T07:00:00Z", datetime!(2026-12-01 07:00 UTC)),
            ("2026-12-01t07:00:00z", datetime!(2026-12-01 07:00 UTC)),
            ("2026-12-01 02:00:00-05:00", datetime!(2026-12-01 07:00 UTC)),
            ("2026-12-01T07:00:00.250Z", datetime!(2026-12-01 07:00 UTC)),
            ("2024-02-29T00:00:00Z", datetime!(2024-02-29 00:00 UTC)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_instant(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn instants_refuse_what_is_ambiguous_or_wrong() {
        let cases = [
            ("2026-12-01T08:00:00", "no UTC offset"),
            ("2026-12-01T08:00+01:00", "has no seconds"),
            ("2026-12-01", "no time of day"),
            ("2026-13-01T08:00:00Z", "no month 13"),
            ("2026-02-29T08:00:00Z", "not a calendar date"),
            ("2026-12-01T24:00:00Z", "not a time of day"),
            ("2026-12-01T08:00:60Z", "not a time of day"),
            ("2026-12-01T08:00:00+25:00", "offset out of range"),
            ("2026-12-01T08:00:00+0100", "is not a date and time"),
            ("2026-12-01T08:00:00Zjunk", "is not a date and time"),
            ("tomorrow", "is not a date and time"),
            ("", "is not a date and time"),
            ("2026-12-01T08:00:00.Z", "is not a date and time"),
            ("1969-12-01T08:00:00Z", "between 1970 and 9000"),
            ("9999-12-31T23:59:59-01:00", "between 1970 and 9000"),
        ];
        for (text, want) in cases {
            let err = parse_instant(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
            assert!(err.contains("2026-12-01T08:00:00+01:00"), "{err}");
        }
    }

    #[test]
    fn time_of_day_parses_and_formats() {
        assert_eq!(parse_time_of_day("07:00"), Ok(7 * 3600));
        assert_eq!(parse_time_of_day("23:59:59"), Ok(86_399));
        assert_eq!(parse_time_of_day("00:00"), Ok(0));
        for bad in ["24:00", "7:00", "07:60", "07", "07:00:00:00", "now", ""] {
            let err = parse_time_of_day(bad).unwrap_err();
            assert!(err.contains("HH:MM"), "{bad}: {err}");
        }
        assert_eq!(time_of_day_string(7 * 3600 + 30 * 60), "07:30");
        assert_eq!(time_of_day_string(45), "00:00:45");
    }

    #[test]
    fn adding_near_the_end_of_time_does_not_panic() {
        let end = time::PrimitiveDateTime::MAX.assume_utc();
        assert_eq!(add_secs(end, 1), end);
        assert_eq!(
            add_secs(datetime!(2026-01-01 00:00 UTC), 60),
            datetime!(2026-01-01 00:01 UTC)
        );
    }
}
