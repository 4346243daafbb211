//! Wall-clock time for profiles: the time zone (injected, so that tests can use
//! a fixed POSIX rule instead of the machine's), local civil times turned into
//! instants across DST changes, and the strict RFC 3339 / time-of-day parsers
//! that the config and the state file use.
//!
//! Instants are `time::OffsetDateTime` values kept in UTC. The `time` crate
//! is only used for calendar arithmetic and formatting here: its own local
//! offset lookup is refused in multithreaded programs and it has no tz
//! database, so offsets come from [`tz`] (tz-rs: TZif files and POSIX TZ
//! strings, ~35 KiB in the release binary).

use std::fmt;

use time::{Date, Month, OffsetDateTime, Time, UtcOffset};

/// A time zone: the machine's (`/etc/localtime`, or `TZ`) in the service, a
/// POSIX TZ rule or UTC in tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    tz: tz::TimeZone,
}

/// Why a time zone could not be loaded.
#[derive(Debug)]
pub struct ZoneError {
    /// What was being loaded (`/etc/localtime`, `TZ=...`, a rule).
    pub what: String,
    /// tz-rs's error.
    pub source: tz::Error,
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot load the time zone from {}; set TZ (e.g. TZ=Europe/Berlin) or install a valid /etc/localtime",
            self.what
        )
    }
}

impl std::error::Error for ZoneError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl Zone {
    /// Coordinated Universal Time.
    pub fn utc() -> Zone {
        Zone {
            tz: tz::TimeZone::utc(),
        }
    }

    /// The machine's local zone: the `TZ` environment variable when it is set
    /// and not empty (a POSIX rule, a zone name under /usr/share/zoneinfo, or
    /// `:path`), else `/etc/localtime`. Under systemd `TZ` is normally unset.
    pub fn local() -> Result<Zone, ZoneError> {
        match std::env::var("TZ") {
            Ok(v) if !v.is_empty() => Zone::posix(&v).map_err(|e| ZoneError {
                what: format!("TZ={v}"),
                source: e.source,
            }),
            _ => tz::TimeZone::local()
                .map(|tz| Zone { tz })
                .map_err(|source| ZoneError {
                    what: "/etc/localtime".to_string(),
                    source,
                }),
        }
    }

    /// A zone from a POSIX TZ string such as `CET-1CEST,M3.5.0,M10.5.0/3`
    /// (no file access), or a zone name looked up under /usr/share/zoneinfo.
    pub fn posix(rule: &str) -> Result<Zone, ZoneError> {
        tz::TimeZone::from_posix_tz(rule)
            .map(|tz| Zone { tz })
            .map_err(|source| ZoneError {
                what: format!("the rule {rule:?}"),
                source,
            })
    }

    /// The UTC offset in force at an instant, and its abbreviation (`CET`).
    pub(crate) fn offset_at(&self, t: OffsetDateTime) -> (UtcOffset, String) {
        match self.tz.find_local_time_type(t.unix_timestamp()) {
            Ok(ltt) => (
                UtcOffset::from_whole_seconds(ltt.ut_offset()).unwrap_or(UtcOffset::UTC),
                ltt.time_zone_designation().to_string(),
            ),
            // Only for instants outside the representable range.
            Err(_) => (UtcOffset::UTC, "UTC".to_string()),
        }
    }

    /// The instant seen in this zone.
    pub(crate) fn to_local(&self, t: OffsetDateTime) -> OffsetDateTime {
        t.checked_to_offset(self.offset_at(t).0).unwrap_or(t)
    }

    /// The instant at which the local clock shows `date` plus `secs` seconds
    /// after its midnight (`secs` may exceed a day: it runs on into the next
    /// dates, counted on the local clock).
    ///
    /// DST: a local time skipped by a spring-forward change (02:30 on a day
    /// when 02:00 jumps to 03:00) resolves to the instant of the change, as
    /// cron does: the moment the clock passes it. A local time that occurs
    /// twice in autumn resolves to its first occurrence.
    pub(crate) fn resolve(&self, date: Date, secs: i64) -> OffsetDateTime {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let date = date.checked_add(time::Duration::days(days)).unwrap_or(date);
        let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
        let found = tz::DateTime::find(
            date.year(),
            date.month() as u8,
            date.day(),
            h as u8,
            m as u8,
            s as u8,
            0,
            self.tz.as_ref(),
        );
        if let Ok(Some(dt)) = found.map(|list| list.earliest()) {
            if let Ok(t) = OffsetDateTime::from_unix_timestamp(dt.unix_time()) {
                return t;
            }
        }
        // Unreachable for dates a profile can reach; UTC is a defined answer.
        let time = Time::from_hms(h as u8, m as u8, s as u8).unwrap_or(Time::MIDNIGHT);
        date.with_time(time).assume_utc()
    }
}

/// `t` plus `secs` seconds, or the last representable instant (a start in
/// the year 9000 plus a year of steps must not panic).
pub(crate) fn add_secs(t: OffsetDateTime, secs: u64) -> OffsetDateTime {
    i64::try_from(secs)
        .ok()
        .and_then(|s| t.checked_add(time::Duration::seconds(s)))
        .unwrap_or_else(|| time::PrimitiveDateTime::MAX.assume_utc())
}

/// Formats an instant as RFC 3339 UTC with whole seconds, the state file's
/// form: `2026-12-01T07:00:00Z`.
pub fn rfc3339_utc(t: OffsetDateTime) -> String {
    let t = t.checked_to_offset(UtcOffset::UTC).unwrap_or(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Formats an instant on the local clock for people: `2026-12-01 08:00 CET`,
/// with seconds when `seconds` is set.
pub fn local_string(zone: &Zone, t: OffsetDateTime, seconds: bool) -> String {
    let (offset, abbr) = zone.offset_at(t);
    let l = t.checked_to_offset(offset).unwrap_or(t);
    let mut s = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        l.year(),
        l.month() as u8,
        l.day(),
        l.hour(),
        l.minute()
    );
    if seconds {
        s.push_str(&format!(":{:02}", l.second()));
    }
    s.push(' ');
    s.push_str(&abbr);
    s
}

/// Parses an RFC 3339 date-time with its UTC offset:
/// `2026-12-01T08:00:00+01:00`, `2026-12-01T07:00:00Z`, fractions of a second
/// allowed (and dropped), `T` or a space between date and time. Seconds may
/// be left out (`2026-12-01T08:00+01:00`). A time without an offset is refused:
/// it would be ambiguous around DST changes.
pub fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    const FORM: &str = "write it like 2026-12-01T08:00:00+01:00 (or ...Z for UTC)";
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(part.iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0')))
    };
    let bad = || format!("{s:?} is not a date and time; {FORM}");
    let year = num(0, 4).ok_or_else(bad)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(bad());
    }
    let month = num(5, 2).ok_or_else(bad)?;
    let day = num(8, 2).ok_or_else(bad)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return Err(if b.len() == 10 {
            format!("{s:?} has no time of day; {FORM}")
        } else {
            bad()
        });
    }
    let hour = num(11, 2).ok_or_else(bad)?;
    if b.get(13) != Some(&b':') {
        return Err(bad());
    }
    let minute = num(14, 2).ok_or_else(bad)?;
    let mut i = 16;
    let mut second = 0;
    if b.get(i) == Some(&b':') {
        second = num(i + 1, 2).ok_or_else(bad)?;
        i += 3;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return Err(bad());
            }
            i += digits;
        }
    }
    let offset_s: i32 = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1, 2).ok_or_else(bad)?;
            let om = num(i + 4, 2).ok_or_else(bad)?;
            if oh > 23 || om > 59 {
                return Err(format!("{s:?} has an offset out of range; {FORM}"));
            }
            let v = (oh * 3600 + om * 60) as i32;
            if sign == b'-' {
                -v
            } else {
                v
            }
        }
        None => return Err(format!("{s:?} has no UTC offset; {FORM}")),
        _ => return Err(bad()),
    };
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(|| format!("{s:?} has no month {month}; {FORM}"))?;
    let date = Date::from_calendar_date(year as i32, month, day as u8)
        .map_err(|_| format!("{s:?} is not a calendar date; {FORM}"))?;
    // A leap second (:60) is not accepted: the tz data here has none.
    let time = Time::from_hms(hour as u8, minute as u8, second as u8)
        .map_err(|_| format!("{s:?} is not a time of day; {FORM}"))?;
    let offset = UtcOffset::from_whole_seconds(offset_s).map_err(|_| bad())?;
    if !(1970..=9000).contains(&year) {
        return Err(format!("{s:?} is not a year between 1970 and 9000; {FORM}"));
    }
    date.with_time(time)
        .assume_offset(offset)
        .checked_to_offset(UtcOffset::UTC)
        .ok_or_else(bad)
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

    const CET: &str = "CET-1CEST,M3.5.0,M10.5.0/3";

    #[test]
    fn rfc3339_accepts_offsets_and_utc() {
        let cases = [
            ("2026-12-01T08:00:00+01:00", datetime!(2026-12-01 07:00 UTC)),
            ("2026-12-01T07:00:00Z", datetime!(2026-12-01 07:00 UTC)),
            ("2026-12-01t07:00:00z", datetime!(2026-12-01 07:00 UTC)),
            ("2026-12-01 02:00:00-05:00", datetime!(2026-12-01 07:00 UTC)),
            ("2026-12-01T07:00:00.250Z", datetime!(2026-12-01 07:00 UTC)),
            ("2026-12-01T08:00+01:00", datetime!(2026-12-01 07:00 UTC)),
            ("2024-02-29T00:00:00Z", datetime!(2024-02-29 00:00 UTC)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_rfc3339(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rfc3339_refuses_what_is_ambiguous_or_wrong() {
        let cases = [
            ("2026-12-01T08:00:00", "no UTC offset"),
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
            let err = parse_rfc3339(text).unwrap_err();
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
    fn resolve_handles_the_dst_gap_and_fold() {
        let z = Zone::posix(CET).unwrap();
        let d = |y, m, day| Date::from_calendar_date(y, Month::try_from(m).unwrap(), day).unwrap();
        // Ordinary winter and summer days.
        assert_eq!(
            z.resolve(d(2026, 1, 10), 7 * 3600),
            datetime!(2026-01-10 06:00 UTC)
        );
        assert_eq!(
            z.resolve(d(2026, 7, 10), 7 * 3600),
            datetime!(2026-07-10 05:00 UTC)
        );
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 is the jump itself.
        assert_eq!(
            z.resolve(d(2026, 3, 29), 2 * 3600 + 1800),
            datetime!(2026-03-29 01:00 UTC)
        );
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 is the first one.
        assert_eq!(
            z.resolve(d(2026, 10, 25), 2 * 3600 + 1800),
            datetime!(2026-10-25 00:30 UTC)
        );
        // Seconds past a day run into the next date on the local clock.
        assert_eq!(
            z.resolve(d(2026, 3, 28), 86_400 + 7 * 3600),
            datetime!(2026-03-29 05:00 UTC)
        );
    }

    #[test]
    fn local_strings_name_the_zone() {
        let z = Zone::posix(CET).unwrap();
        assert_eq!(
            local_string(&z, datetime!(2026-07-10 05:00 UTC), false),
            "2026-07-10 07:00 CEST"
        );
        assert_eq!(
            local_string(&z, datetime!(2026-01-10 06:00:05 UTC), true),
            "2026-01-10 07:00:05 CET"
        );
        assert_eq!(
            rfc3339_utc(datetime!(2026-01-10 07:00:05 +01:00)),
            "2026-01-10T06:00:05Z"
        );
    }

    #[test]
    fn instants_near_the_end_of_time_do_not_panic() {
        let end = time::PrimitiveDateTime::MAX.assume_utc();
        assert_eq!(add_secs(end, 1), end);
        assert_eq!(
            add_secs(datetime!(2026-01-01 00:00 UTC), 60),
            datetime!(2026-01-01 00:01 UTC)
        );
        let z = Zone::posix("<+14>-14").unwrap();
        assert_eq!(z.to_local(end), end);
        assert!(local_string(&z, end, false).starts_with("9999-12-31"));
    }

    #[test]
    fn a_bad_zone_rule_is_an_error_naming_it() {
        let err = Zone::posix("Not/A_Zone_Anywhere").unwrap_err();
        assert!(err.to_string().contains("Not/A_Zone_Anywhere"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }
}
