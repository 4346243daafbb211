//! Time, written once: the one local zone type, the one RFC 3339 parser and
//! formatter, the one duration grammar and the one human-duration style.
//!
//! A leaf: it depends on nothing else in the crate, so every layer may use
//! it. What lives where:
//!
//! * [`zone`]: [`Zone`], a time zone on tz-rs (the machine's, a POSIX rule,
//!   UTC or a fixed offset), its offsets and abbreviations, local civil times
//!   turned into instants across DST changes, and local times for people;
//! * [`rfc3339`]: [`parse_rfc3339`] and [`format_rfc3339`], the form of every
//!   time in the files this program writes and reads, and [`Stamp`], an
//!   instant that serializes that way;
//! * [`duration`]: [`parse_duration`], the grammar of every duration a person
//!   writes (`45s`, `90m`, `36h`, `4d`, `2w`, `1d12h`: profile steps,
//!   `--since`), and its canonical form [`format_duration`];
//! * [`mod@human`]: [`human()`], a span of time for people (`1 min 33 s`,
//!   `3 h 05 min`), as `status`, `report` and `profile show` print it;
//! * [`since`]: [`Since`], what `--since` names (a duration back, a date, an
//!   instant).

pub mod duration;
pub mod human;
pub mod rfc3339;
pub mod since;
pub mod zone;

use std::time::{Duration, SystemTime};

pub use duration::{format_duration, parse_duration, DurationError};
pub use human::human;
pub use rfc3339::{format_rfc3339, parse_rfc3339, Precision, Rfc3339Error, Stamp};
pub use since::{Since, SinceError};
pub use zone::{local_string, Zone, ZoneError};

/// Seconds since the Unix epoch (negative before it), the plot's and the
/// report's time axis.
pub fn unix_secs(t: SystemTime) -> f64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// The inverse of [`unix_secs`], to the microsecond (an `f64` of today's
/// Unix seconds holds about that much, and rounding keeps `.632` from
/// coming back as `.631999`, which prints as `.631`).
pub fn from_unix_secs(s: f64) -> SystemTime {
    let us = Duration::from_micros((s.abs() * 1e6).round() as u64);
    if s >= 0.0 {
        SystemTime::UNIX_EPOCH + us
    } else {
        SystemTime::UNIX_EPOCH - us
    }
}

/// Whole seconds since the Unix epoch, rounded down (negative before it).
pub(crate) fn unix_whole_secs(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let s = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() > 0 {
                -s - 1
            } else {
                -s
            }
        }
    }
}
