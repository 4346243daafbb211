//! The one time-zone type: the machine's (`TZ`, else `/etc/localtime`) for
//! people, a POSIX rule or a fixed offset in tests, UTC.
//!
//! Offsets come from tz-rs (TZif files and POSIX TZ strings), looked up per
//! instant, so a range across a DST change is right. tz-rs reads the zone
//! once, into memory, and never calls `localtime_r`: it is safe in the
//! threaded service and in tests alike. Calendar arithmetic and civil dates
//! are `time::OffsetDateTime` values.

use std::fmt;
use std::time::SystemTime;

use time::{Date, OffsetDateTime, Time, UtcOffset};

/// What a zone is, for naming it to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Utc,
    Fixed,
    Local,
}

/// A time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    tz: tz::TimeZone,
    kind: Kind,
}

/// A time zone could not be loaded: set `TZ` or install a valid
/// `/etc/localtime`.
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
            kind: Kind::Utc,
        }
    }

    /// A fixed offset from UTC, in seconds east (clamped to ±24 h, the range
    /// tz-rs accepts beyond any real zone).
    pub fn fixed(offset_s: i32) -> Zone {
        let tz = tz::TimeZone::fixed(offset_s.clamp(-86_399, 86_399))
            .unwrap_or_else(|_| tz::TimeZone::utc());
        Zone {
            tz,
            kind: Kind::Fixed,
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
                .map(|tz| Zone {
                    tz,
                    kind: Kind::Local,
                })
                .map_err(|source| ZoneError {
                    what: "/etc/localtime".to_string(),
                    source,
                }),
        }
    }

    /// The local zone, or UTC when it cannot be loaded (then times are
    /// labelled UTC, which is the truth of what is shown).
    pub fn local_or_utc() -> Zone {
        Zone::local().unwrap_or_else(|_| Zone::utc())
    }

    /// A zone from a POSIX TZ string such as `CET-1CEST,M3.5.0,M10.5.0/3`
    /// (no file access), or a zone name looked up under /usr/share/zoneinfo.
    pub fn posix(rule: &str) -> Result<Zone, ZoneError> {
        tz::TimeZone::from_posix_tz(rule)
            .map(|tz| Zone {
                tz,
                kind: Kind::Local,
            })
            .map_err(|source| ZoneError {
                what: format!("the rule {rule:?}"),
                source,
            })
    }

    /// The offset in seconds east of UTC and the abbreviation at a Unix time.
    fn lookup(&self, unix: i64) -> (i32, &str) {
        match self.tz.find_local_time_type(unix) {
            Ok(ltt) => (ltt.ut_offset(), ltt.time_zone_designation()),
            // Only for instants outside the representable range.
            Err(_) => (0, "UTC"),
        }
    }

    /// The UTC offset in force at an instant, and its abbreviation (`CET`).
    pub fn offset_at(&self, t: OffsetDateTime) -> (UtcOffset, String) {
        let (o, abbr) = self.lookup(t.unix_timestamp());
        (
            UtcOffset::from_whole_seconds(o).unwrap_or(UtcOffset::UTC),
            abbr.to_string(),
        )
    }

    /// The offset in seconds east of UTC in force at `t`.
    pub fn offset_secs(&self, t: SystemTime) -> i32 {
        self.lookup(super::unix::unix_whole_secs(t)).0
    }

    /// The instant seen in this zone.
    pub fn to_local(&self, t: OffsetDateTime) -> OffsetDateTime {
        t.checked_to_offset(self.offset_at(t).0).unwrap_or(t)
    }

    /// `t` as a date and time in this zone.
    pub fn datetime(&self, t: SystemTime) -> OffsetDateTime {
        self.to_local(OffsetDateTime::from(t))
    }

    /// Names the zone for a title or a report header, e.g. `local time,
    /// UTC+01:00` or `UTC`.
    pub fn describe(&self, t: SystemTime) -> String {
        let o = self.offset_secs(t);
        let (sign, a) = if o < 0 { ('-', -o) } else { ('+', o) };
        let off = format!("UTC{sign}{:02}:{:02}", a / 3600, a / 60 % 60);
        match self.kind {
            Kind::Utc => "UTC".to_string(),
            Kind::Fixed => off,
            Kind::Local if o == 0 => "UTC".to_string(),
            Kind::Local => format!("local time, {off}"),
        }
    }

    /// The instant at which the local clock shows `date` plus `secs` seconds
    /// after its midnight (`secs` may exceed a day: it runs on into the next
    /// dates, counted on the local clock).
    ///
    /// DST: a local time skipped by a spring-forward change (02:30 on a day
    /// when 02:00 jumps to 03:00) resolves to the instant of the change, as
    /// cron does: the moment the clock passes it. A local time that occurs
    /// twice in autumn resolves to its first occurrence.
    pub fn resolve(&self, date: Date, secs: i64) -> OffsetDateTime {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::rfc3339::parse_rfc3339;
    use time::macros::datetime;
    use time::Month;

    const CET: &str = "CET-1CEST,M3.5.0,M10.5.0/3";

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
    }

    #[test]
    fn zones_are_described_by_their_offset() {
        let winter = parse_rfc3339("2026-01-10T12:00:00Z").unwrap();
        let summer = parse_rfc3339("2026-07-10T12:00:00Z").unwrap();
        let cet = Zone::posix(CET).unwrap();
        assert_eq!(cet.describe(winter), "local time, UTC+01:00");
        assert_eq!(cet.describe(summer), "local time, UTC+02:00");
        assert_eq!(cet.offset_secs(summer), 7200);
        assert_eq!(Zone::utc().describe(summer), "UTC");
        assert_eq!(Zone::fixed(-5 * 3600 - 1800).describe(summer), "UTC-05:30");
        assert_eq!(Zone::posix("UTC0").unwrap().describe(summer), "UTC");
        assert_eq!(
            cet.datetime(summer),
            datetime!(2026-07-10 14:00 +02:00),
            "the same instant, on the local clock"
        );
        assert_eq!(cet.datetime(summer).hour(), 14);
    }

    #[test]
    fn instants_near_the_end_of_time_do_not_panic() {
        let end = time::PrimitiveDateTime::MAX.assume_utc();
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
