//! Instants as seconds since the Unix epoch: the plot's and the report's
//! time axis, and the key tz-rs looks offsets up by.

use std::time::{Duration, SystemTime};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_round_down_on_both_sides_of_the_epoch() {
        let cases = [(1.5, 1), (0.0, 0), (-0.5, -1), (-1.0, -1), (-1.25, -2)];
        for (secs, whole) in cases {
            assert_eq!(unix_whole_secs(from_unix_secs(secs)), whole, "{secs}");
            assert_eq!(unix_secs(from_unix_secs(secs)), secs);
        }
        assert_eq!(
            unix_secs(from_unix_secs(1_795_899_600.632)),
            1_795_899_600.632
        );
    }
}
