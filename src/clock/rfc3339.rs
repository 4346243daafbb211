//! RFC 3339 times, the form of every instant in the files this program
//! writes (`readings.jsonl`, `plug-events.jsonl`, the state files, the
//! alert hook's environment) and of every instant a person gives it (a
//! profile's `start`, `--since`).
//!
//! One parser, decided once:
//! * the date, `T` (or `t`, or a space), hours, minutes **and seconds** are
//!   required: `2026-12-01T08:00+01:00` is refused, so that every time in a
//!   file has one shape;
//! * a UTC offset is required, `Z` (or `z`) or `+HH:MM` / `-HH:MM`: a time
//!   without one would be ambiguous around DST changes;
//! * fractional seconds are accepted, any number of digits (at least one
//!   after the `.`), kept to the nanosecond and truncated beyond;
//! * second 60 (a leap second) is **refused**, like any other impossible
//!   time: the tz data used here has no leap seconds, and this program never
//!   writes one, so a `:60` is a typo or a foreign clock.
//!
//! The formatter writes UTC with a `Z`, to the second or the millisecond.
//! Both are hand-written over a proleptic Gregorian calendar: a few lines of
//! arithmetic, and no allocation-heavy format-description machinery.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

/// The form every error message shows.
const FORM: &str = "write it like 2026-12-01T08:00:00+01:00 (or ...Z for UTC)";

/// What is wrong with a time (the message says how to write one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rfc3339Problem {
    /// Not the shape of a date and time at all.
    NotATime,
    /// A date alone.
    NoTimeOfDay,
    /// Hours and minutes without seconds.
    NoSeconds,
    /// No `Z` or `+HH:MM` at the end.
    NoOffset,
    /// An offset beyond 23:59.
    OffsetOutOfRange,
    /// A month outside 1..=12.
    NoMonth(u32),
    /// A day the month does not have (`02-29` in a common year).
    NotACalendarDate,
    /// Hours past 23 or minutes past 59.
    NotATimeOfDay,
    /// Second 60, a leap second.
    LeapSecond,
}

/// A text is not an RFC 3339 time: write it like `2026-12-01T08:00:00+01:00`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rfc3339Error {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub problem: Rfc3339Problem,
}

impl fmt::Display for Rfc3339Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.problem {
            Rfc3339Problem::NotATime => "is not a date and time".to_string(),
            Rfc3339Problem::NoTimeOfDay => "has no time of day".to_string(),
            Rfc3339Problem::NoSeconds => "has no seconds".to_string(),
            Rfc3339Problem::NoOffset => "has no UTC offset".to_string(),
            Rfc3339Problem::OffsetOutOfRange => "has an offset out of range".to_string(),
            Rfc3339Problem::NoMonth(m) => format!("has no month {m}"),
            Rfc3339Problem::NotACalendarDate => "is not a calendar date".to_string(),
            Rfc3339Problem::NotATimeOfDay => "is not a time of day".to_string(),
            Rfc3339Problem::LeapSecond => {
                "is not a time of day (second 60, a leap second, is not accepted)".to_string()
            }
        };
        write!(f, "{:?} {what}; {FORM}", self.text)
    }
}

impl std::error::Error for Rfc3339Error {}

/// Parses an RFC 3339 date-time with its UTC offset (see the module doc for
/// exactly what is accepted): `2026-12-01T08:00:00+01:00`,
/// `2026-11-28T21:00:00.123Z`, `2026-11-28 21:00:00Z`.
pub fn parse_rfc3339(s: &str) -> Result<SystemTime, Rfc3339Error> {
    let err = |problem| Rfc3339Error {
        text: s.to_string(),
        problem,
    };
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, Rfc3339Error> {
        let part = b.get(from..from + len).unwrap_or_default();
        if part.len() != len || !part.iter().all(u8::is_ascii_digit) {
            return Err(err(Rfc3339Problem::NotATime));
        }
        Ok(part.iter().fold(0i64, |a, d| a * 10 + i64::from(d - b'0')))
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    let year = num(0, 4)?;
    if !(sep(4, b"-") && sep(7, b"-")) {
        return Err(err(Rfc3339Problem::NotATime));
    }
    let (month, day) = (num(5, 2)?, num(8, 2)?);
    if b.len() == 10 {
        return Err(err(Rfc3339Problem::NoTimeOfDay));
    }
    if !sep(10, b"Tt ") {
        return Err(err(Rfc3339Problem::NotATime));
    }
    let hour = num(11, 2)?;
    if !sep(13, b":") {
        return Err(err(Rfc3339Problem::NotATime));
    }
    let minute = num(14, 2)?;
    if !sep(16, b":") {
        return Err(err(if b.len() == 16 || sep(16, b"Zz+-") {
            Rfc3339Problem::NoSeconds
        } else {
            Rfc3339Problem::NotATime
        }));
    }
    let second = num(17, 2)?;
    let mut i = 19;
    let mut nanos = 0u32;
    if sep(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return Err(err(Rfc3339Problem::NotATime));
        }
        for _ in (i - start)..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && sep(i + 3, b":") => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return Err(err(Rfc3339Problem::OffsetOutOfRange));
            }
            let o = oh * 3600 + om * 60;
            if sign == b'-' {
                -o
            } else {
                o
            }
        }
        None => return Err(err(Rfc3339Problem::NoOffset)),
        _ => return Err(err(Rfc3339Problem::NotATime)),
    };
    if !(1..=12).contains(&month) {
        return Err(err(Rfc3339Problem::NoMonth(month as u32)));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(err(Rfc3339Problem::NotACalendarDate));
    }
    if second == 60 && hour <= 23 && minute <= 59 {
        return Err(err(Rfc3339Problem::LeapSecond));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(err(Rfc3339Problem::NotATimeOfDay));
    }
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let t = if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    };
    Ok(t + Duration::from_nanos(u64::from(nanos)))
}

/// How much of the second [`format_rfc3339`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Whole seconds, `2026-12-01T07:00:00Z`: the state files, the alert
    /// hook.
    Seconds,
    /// Milliseconds, `2026-12-01T07:00:00.250Z`: the data logs.
    Millis,
}

/// Formats an instant as RFC 3339 UTC (the fraction truncated, not rounded,
/// so a time never moves into the next second).
pub fn format_rfc3339(t: impl Into<SystemTime>, precision: Precision) -> String {
    let t: SystemTime = t.into();
    let nanos: i128 = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let sub = nanos.rem_euclid(1_000_000_000) as u32;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
    match precision {
        Precision::Seconds => format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z"),
        Precision::Millis => format!(
            "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{:03}Z",
            sub / 1_000_000
        ),
    }
}

/// An instant that serializes as RFC 3339 UTC with milliseconds (for
/// `--json` output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(pub SystemTime);

impl Serialize for Stamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rfc3339(self.0, Precision::Millis))
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`] (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::unix::{from_unix_secs, unix_secs};

    fn at(s: &str) -> SystemTime {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn times_parse_to_the_instant_they_name() {
        // Epoch seconds from `date -u -d 2026-11-28T21:00:00Z +%s`.
        let t = at("2026-11-28T21:00:00Z");
        assert_eq!(unix_secs(t), 1_795_899_600.0);
        let same = [
            "2026-11-28T21:00:00z",
            "2026-11-28t21:00:00Z",
            "2026-11-28T22:30:00+01:30",
            "2026-11-28 19:00:00-02:00",
            "2026-11-28T21:00:00+00:00",
            "2026-11-28T21:00:00-00:00",
        ];
        for text in same {
            assert_eq!(parse_rfc3339(text), Ok(t), "{text}");
        }
        let fractions = [
            ("2026-11-28T21:00:00.1Z", 100_000_000),
            ("2026-11-28T21:00:00.123Z", 123_000_000),
            ("2026-11-28T21:00:00.123456789Z", 123_456_789),
            ("2026-11-28T21:00:00.123456789123Z", 123_456_789),
            ("2026-11-28T22:00:00.5+01:00", 500_000_000),
        ];
        for (text, ns) in fractions {
            let got = at(text).duration_since(t).unwrap();
            assert_eq!(got, Duration::from_nanos(ns), "{text}");
        }
        assert_eq!(unix_secs(at("1969-12-31T23:59:59Z")), -1.0);
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_ok());
        assert!(parse_rfc3339("2026-12-31T23:59:59Z").is_ok());
    }

    #[test]
    fn a_bad_time_says_what_is_wrong_and_how_to_write_it() {
        use Rfc3339Problem::*;
        let cases = [
            ("2026-12-01T08:00:60Z", LeapSecond),
            ("2016-12-31T23:59:60Z", LeapSecond),
            ("2026-12-01T08:00:61Z", NotATimeOfDay),
            ("2026-12-01T24:00:00Z", NotATimeOfDay),
            ("2026-12-01T08:60:00Z", NotATimeOfDay),
            ("2026-12-01T08:00+01:00", NoSeconds),
            ("2026-12-01T08:00Z", NoSeconds),
            ("2026-12-01T08:00", NoSeconds),
            ("2026-12-01T08:00:00", NoOffset),
            ("2026-12-01", NoTimeOfDay),
            ("2026-13-01T08:00:00Z", NoMonth(13)),
            ("2026-00-01T08:00:00Z", NoMonth(0)),
            ("2026-02-29T08:00:00Z", NotACalendarDate),
            ("2026-04-31T08:00:00Z", NotACalendarDate),
            ("2026-12-00T08:00:00Z", NotACalendarDate),
            ("2026-12-01T08:00:00+25:00", OffsetOutOfRange),
            ("2026-12-01T08:00:00+01:60", OffsetOutOfRange),
            ("2026-12-01T08:00:00+0100", NotATime),
            ("2026-12-01T08:00:00+01", NotATime),
            ("2026-12-01T08:00:00Zjunk", NotATime),
            ("2026-12-01T08:00:00.Z", NotATime),
            ("2026-12-01T08:00:00,5Z", NotATime),
            ("2026-1-28T21:00:00Z", NotATime),
            ("2026/12/01T08:00:00Z", NotATime),
            (" 2026-12-01T08:00:00Z", NotATime),
            ("2026-12-01T08:00:00Z ", NotATime),
            ("2026-12-01X08:00:00Z", NotATime),
            ("tomorrow", NotATime),
            ("", NotATime),
            ("2026-12-01T08:00:00+01:00\u{e9}", NotATime),
        ];
        for (text, problem) in cases {
            let e = parse_rfc3339(text).unwrap_err();
            assert_eq!(e.problem, problem, "{text:?}");
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("{text:?}")) && msg.contains("2026-12-01T08:00:00+01:00"),
                "{msg}"
            );
        }
        let leap = parse_rfc3339("2026-12-01T08:00:60Z")
            .unwrap_err()
            .to_string();
        assert!(leap.contains("second 60"), "{leap}");
    }

    #[test]
    fn the_formatter_writes_utc_and_truncates_the_fraction() {
        let t = at("2026-12-01T08:00:05.999+01:00");
        assert_eq!(
            format_rfc3339(t, Precision::Seconds),
            "2026-12-01T07:00:05Z"
        );
        assert_eq!(
            format_rfc3339(t, Precision::Millis),
            "2026-12-01T07:00:05.999Z"
        );
        assert_eq!(
            format_rfc3339(SystemTime::UNIX_EPOCH, Precision::Millis),
            "1970-01-01T00:00:00.000Z"
        );
        let before = SystemTime::UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(
            format_rfc3339(before, Precision::Millis),
            "1969-12-31T23:59:58.500Z"
        );
        let odt = time::macros::datetime!(2026-01-10 07:00:05 +01:00);
        assert_eq!(
            format_rfc3339(odt, Precision::Seconds),
            "2026-01-10T06:00:05Z"
        );
    }

    #[test]
    fn format_and_parse_round_trip_over_leap_years_and_month_ends() {
        // Against the `time` crate's calendar, an independent one.
        let mut s = -2_000_000_000i64;
        while s < 5_000_000_000 {
            let t = from_unix_secs(s as f64 + 0.25);
            let text = format_rfc3339(t, Precision::Millis);
            assert_eq!(parse_rfc3339(&text), Ok(t), "{text}");
            let odt = time::OffsetDateTime::from_unix_timestamp(s).unwrap();
            let want = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                odt.year(),
                odt.month() as u8,
                odt.day(),
                odt.hour(),
                odt.minute(),
                odt.second()
            );
            assert_eq!(
                format_rfc3339(from_unix_secs(s as f64), Precision::Seconds),
                want
            );
            s += 7_777_777;
        }
    }

    #[test]
    fn a_stamp_serializes_with_milliseconds() {
        let t = at("2026-11-28T21:00:00.25Z");
        assert_eq!(
            serde_json::to_string(&Stamp(t)).unwrap(),
            "\"2026-11-28T21:00:00.250Z\""
        );
    }
}
