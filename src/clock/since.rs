//! What `--since` names: a duration back from now (in the one duration
//! grammar: `90m`, `24h`, `7d`, `2w`, `1d12h`), a date (from its midnight in
//! the display zone), or an RFC 3339 instant.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use time::{Date, OffsetDateTime};

use super::duration::parse_duration;
use super::rfc3339::parse_rfc3339;
use super::zone::Zone;

/// Longer than a century back is a typo, and would overflow `SystemTime`
/// arithmetic on some platforms.
const MAX_BACK_S: u64 = 100 * 365 * 86_400;

/// How far back `--since` reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// This long before now (`24h`, `7d`, `90m`, `2w`, `1d12h`).
    Ago(Duration),
    /// From midnight (in the display zone) of this date (`2026-11-20`).
    Date(Date),
    /// From this instant (RFC 3339, `2026-11-20T18:00:00Z`).
    At(SystemTime),
}

/// `--since` could not be understood: give a duration, a date or a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinceError {
    /// What was given.
    pub text: String,
    /// What the duration grammar found wrong, when the text reads as a
    /// duration (starts with a digit and is not a date).
    pub why: Option<String>,
}

impl fmt::Display for SinceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`--since {}` is not understood", self.text)?;
        if let Some(why) = &self.why {
            write!(f, " ({why})")?;
        }
        write!(
            f,
            ": give a duration back from now like 90m, 24h, 7d, 2w or 1d12h, \
             a date like 2026-11-20, or a time like 2026-11-20T18:00:00Z"
        )
    }
}

impl std::error::Error for SinceError {}

impl FromStr for Since {
    type Err = SinceError;
    fn from_str(s: &str) -> Result<Since, SinceError> {
        Since::parse(s)
    }
}

impl Since {
    /// Parses a duration (`24h`, `1d12h`, ...), a date `2026-11-20` or an
    /// RFC 3339 time.
    pub fn parse(text: &str) -> Result<Since, SinceError> {
        let err = |why: Option<String>| SinceError {
            text: text.to_string(),
            why,
        };
        let s = text.trim();
        let looks_like_date = s.as_bytes().get(4) == Some(&b'-');
        if !looks_like_date && s.starts_with(|c: char| c.is_ascii_digit()) {
            let secs = parse_duration(s).map_err(|e| err(Some(e.to_string())))?;
            if secs > MAX_BACK_S {
                return Err(err(Some("more than a century back".to_string())));
            }
            return Ok(Since::Ago(Duration::from_secs(secs)));
        }
        if s.len() == 10 {
            // A date: parse it as that day's midnight UTC, keep the date.
            let t = parse_rfc3339(&format!("{s}T00:00:00Z")).map_err(|_| err(None))?;
            return Ok(Since::Date(OffsetDateTime::from(t).date()));
        }
        parse_rfc3339(s).map(Since::At).map_err(|_| err(None))
    }

    /// The instant this names, given the present and the zone a date is in.
    pub fn resolve(&self, now: SystemTime, zone: &Zone) -> SystemTime {
        match self {
            Since::Ago(d) => now.checked_sub(*d).unwrap_or(SystemTime::UNIX_EPOCH),
            Since::At(t) => *t,
            Since::Date(d) => zone.resolve(*d, 0).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn since_parses_durations_dates_and_times() {
        let ago = |s: u64| Ok(Since::Ago(Duration::from_secs(s)));
        assert_eq!(Since::parse("24h"), ago(86_400));
        assert_eq!(Since::parse("7d"), ago(604_800));
        assert_eq!(Since::parse("90m"), ago(5400));
        assert_eq!(Since::parse("45s"), ago(45));
        assert_eq!(Since::parse("2w"), ago(1_209_600));
        assert_eq!(Since::parse("1d12h"), ago(129_600));
        assert_eq!(Since::parse("36h"), ago(129_600));
        let now = at("2026-11-28T21:00:00Z");
        let d = Since::parse("2026-11-20").unwrap();
        assert_eq!(d.resolve(now, &Zone::utc()), at("2026-11-20T00:00:00Z"));
        let plus1 = Zone::fixed(3600);
        assert_eq!(d.resolve(now, &plus1), at("2026-11-19T23:00:00Z"));
        // A date in summer time, read on a zone with DST.
        let cet = Zone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let july = Since::parse("2026-07-01").unwrap();
        assert_eq!(july.resolve(now, &cet), at("2026-06-30T22:00:00Z"));
        let t = Since::parse("2026-11-20T18:30:00+01:00").unwrap();
        assert_eq!(t.resolve(now, &Zone::utc()), at("2026-11-20T17:30:00Z"));
        assert_eq!(
            Since::parse("1d12h").unwrap().resolve(now, &Zone::utc()),
            at("2026-11-27T09:00:00Z")
        );
    }

    #[test]
    fn a_bad_since_gets_one_message_naming_the_flag() {
        for (bad, why) in [
            ("", None),
            ("24", Some("no unit after 24")),
            ("h", None),
            ("7x", Some("the unit 'x'")),
            ("30m1h", Some("largest to the smallest")),
            ("yesterday", None),
            ("2026-13-01", None),
            ("2026-11-20T18:30", None),
            ("-5h", None),
            ("99999999999w", Some("more than a century")),
            ("99999999999999999999w", Some("too long")),
        ] {
            let e = Since::parse(bad).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("--since") && msg.contains("7d") && msg.contains("1d12h"),
                "{bad:?}: {msg}"
            );
            if let Some(why) = why {
                assert!(msg.contains(why), "{bad:?}: {msg}");
            }
        }
    }
}
