//! A span of time for people, in one style everywhere (`status`, `report`,
//! `profile show`, the status sparkline): two units at most, the larger one
//! first, the smaller one zero-padded so columns line up:
//! `45 s`, `4 min 05 s`, `3 h 05 min`, `6 d 03 h`.
//!
//! The span is rounded to the smaller unit shown, then split, so a
//! rounding never shows an impossible value: 59.6 s is `1 min 00 s`, not
//! `60 s`, and 59 min 59.7 s is `1 h 00 min`.

/// `93.0` -> `1 min 33 s` (negative or NaN spans are `0 s`).
pub fn human(secs: f64) -> String {
    let s = if secs.is_nan() {
        0
    } else {
        secs.max(0.0).round() as u64
    };
    if s < 60 {
        return format!("{s} s");
    }
    if s < 3600 {
        return format!("{} min {:02} s", s / 60, s % 60);
    }
    let minutes = (s + 30) / 60;
    if minutes < 24 * 60 {
        return format!("{} h {:02} min", minutes / 60, minutes % 60);
    }
    let hours = (s + 1800) / 3600;
    format!("{} d {:02} h", hours / 24, hours % 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_round_to_the_smaller_unit_shown() {
        let cases = [
            (0.0, "0 s"),
            (-3.0, "0 s"),
            (f64::NAN, "0 s"),
            (0.4, "0 s"),
            (45.0, "45 s"),
            (59.4, "59 s"),
            (59.5, "1 min 00 s"),
            (59.6, "1 min 00 s"),
            (93.0, "1 min 33 s"),
            (250.0, "4 min 10 s"),
            (3599.4, "59 min 59 s"),
            (3599.6, "1 h 00 min"),
            (3600.0 + 29.0, "1 h 00 min"),
            (3600.0 + 30.0, "1 h 01 min"),
            (3.0 * 3600.0 + 5.0 * 60.0, "3 h 05 min"),
            (86_369.0, "23 h 59 min"),
            (86_370.0, "1 d 00 h"),
            (86_400.0 * 6.0 + 3.0 * 3600.0, "6 d 03 h"),
            (86_400.0 * 6.0 + 23.0 * 3600.0 + 1800.0, "7 d 00 h"),
            (14.0 * 86_400.0, "14 d 00 h"),
        ];
        for (secs, want) in cases {
            assert_eq!(human(secs), want, "{secs}");
        }
    }
}
