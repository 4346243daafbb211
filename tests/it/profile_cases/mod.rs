//! The table of `limits_at` cases, shared by `tests/profile_table.rs` (which
//! asserts every row) and `examples/profile_table.rs` (which prints it as a
//! Markdown table for the issue's closing note).
//!
//! Zone: `CET-1CEST,M3.5.0,M10.5.0/3` (central Europe) as a POSIX rule, so no
//! tz database is needed. In 2026 summer time begins on 29 March (02:00 CET
//! jumps to 03:00 CEST) and ends on 25 October (03:00 CEST falls back to
//! 02:00 CET).

#![allow(dead_code)]

use kasa_thermostat::clock::{format_duration, local_string, Zone};
use kasa_thermostat::profile::{limits_at, parse_instant, Profile, ProfilePhase, RawProfile};
use kasa_thermostat::units::Units;

/// Central European time as a POSIX TZ rule.
pub const CET: &str = "CET-1CEST,M3.5.0,M10.5.0/3";

/// The docs/design.md §10 profile: primary, ramp, diacetyl rest, cold crash.
pub const FERMENT: &str = r#"{"start": "now", "after_end": "hold_last",
  "steps": [ { "hold": "4d", "low": 17.5, "high": 18.5 },
             { "ramp": "2d", "to_low": 20.5, "to_high": 21.5 },
             { "hold": "2d", "low": 20.5, "high": 21.5 },
             { "ramp": "1d", "to_low": 1.5, "to_high": 2.5 } ] }"#;

/// The same with `after_end: off`.
pub const FERMENT_OFF: &str = r#"{"start": "now", "after_end": "off",
  "steps": [ { "hold": "4d", "low": 17.5, "high": 18.5 },
             { "ramp": "2d", "to_low": 20.5, "to_high": 21.5 },
             { "hold": "2d", "low": 20.5, "high": 21.5 },
             { "ramp": "1d", "to_low": 1.5, "to_high": 2.5 } ] }"#;

/// A fixed start just before the spring DST change, 4 days long.
pub const HOLD_ACROSS_DST: &str = r#"{"start": "2026-03-27T08:00:00+01:00",
  "steps": [ { "hold": "4d", "low": 17.5, "high": 18.5 },
             { "hold": "1d", "low": 10, "high": 12 } ] }"#;

/// Day 07:00-21:00 at 24..26, night at 20..22.
pub const DAY_NIGHT: &str = r#"{"start": "07:00", "repeat": "daily",
  "steps": [ { "hold": "14h", "low": 24, "high": 26 },
             { "hold": "10h", "low": 20, "high": 22 } ] }"#;

/// A daily boundary at 02:30, which does not exist on the spring-forward day.
pub const AT_0230: &str = r#"{"start": "02:30", "repeat": "daily",
  "steps": [ { "hold": "12h", "low": 18, "high": 19 },
             { "hold": "12h", "low": 15, "high": 16 } ] }"#;

/// A 40-minute step wholly inside the spring-forward gap (02:10-02:50).
pub const IN_THE_GAP: &str = r#"{"start": "02:10", "repeat": "daily",
  "steps": [ { "hold": "40m", "low": 30, "high": 31 },
             { "hold": "23h20m", "low": 10, "high": 11 } ] }"#;

/// Dawn and dusk ramps; the first step ramps from the last step's limits.
pub const DAWN_DUSK: &str = r#"{"start": "06:00", "repeat": "daily",
  "steps": [ { "ramp": "2h", "to_low": 24, "to_high": 26 },
             { "hold": "12h", "low": 24, "high": 26 },
             { "ramp": "2h", "to_low": 20, "to_high": 22 },
             { "hold": "8h", "low": 20, "high": 22 } ] }"#;

/// Two ramps only: down through the night, up through the day.
pub const NIGHT_RAMP: &str = r#"{"start": "20:00", "repeat": "daily",
  "steps": [ { "ramp": "10h", "to_low": 16, "to_high": 18 },
             { "ramp": "14h", "to_low": 22, "to_high": 24 } ] }"#;

/// One row: a profile, its persisted start, the time, and what must come out.
pub struct Case {
    /// What the row shows.
    pub name: &'static str,
    /// The profile's name above.
    pub profile: &'static str,
    /// Its JSON.
    pub json: &'static str,
    /// The persisted start (RFC 3339); daily profiles ignore it.
    pub start: &'static str,
    /// The wall-clock time (RFC 3339 UTC).
    pub now: &'static str,
    /// `waiting`, `ended`, or the 1-based step and its kind: `2 ramp`.
    pub step: &'static str,
    /// The limits in °C, or `None` for plugs off.
    pub band: Option<(f64, f64)>,
    /// The time to the next step, canonical (`4h30m`), or `None` after the end.
    pub next: Option<&'static str>,
}

const S: &str = "2026-12-01T07:00:00Z";

/// Every case.
pub fn cases() -> Vec<Case> {
    let c = |name, profile, json, start, now, step, band, next| Case {
        name,
        profile,
        json,
        start,
        now,
        step,
        band,
        next,
    };
    vec![
        c(
            "clock went back before the persisted start",
            "FERMENT",
            FERMENT,
            S,
            "2026-11-30T07:00:00Z",
            "waiting",
            Some((17.5, 18.5)),
            Some("1d"),
        ),
        c(
            "at the start",
            "FERMENT",
            FERMENT,
            S,
            "2026-12-01T07:00:00Z",
            "1 hold",
            Some((17.5, 18.5)),
            Some("4d"),
        ),
        c(
            "1 s before the ramp",
            "FERMENT",
            FERMENT,
            S,
            "2026-12-05T06:59:59Z",
            "1 hold",
            Some((17.5, 18.5)),
            Some("1s"),
        ),
        c(
            "the ramp begins from the hold's limits",
            "FERMENT",
            FERMENT,
            S,
            "2026-12-05T07:00:00Z",
            "2 ramp",
            Some((17.5, 18.5)),
            Some("2d"),
        ),
        c(
            "ramp halfway",
            "FERMENT",
            FERMENT,
            S,
            "2026-12-06T07:00:00Z",
            "2 ramp",
            Some((19.0, 20.0)),
            Some("1d"),
        ),
        c(
            "ramp three quarters",
            "FERMENT",
            FERMENT,
            S,
            "2026-12-06T19:00:00Z",
            "2 ramp",
            Some((19.75, 20.75)),
            Some("12h"),
        ),
        c(
            "clock jumped days ahead, into the cold crash",
            "FERMENT",
            FERMENT,
            S,
            "2026-12-09T19:00:00Z",
            "4 ramp",
            Some((11.0, 12.0)),
            Some("12h"),
        ),
        c(
            "exactly at the end",
            "FERMENT",
            FERMENT,
            S,
            "2026-12-10T07:00:00Z",
            "ended",
            Some((1.5, 2.5)),
            None,
        ),
        c(
            "after the end, hold_last",
            "FERMENT",
            FERMENT,
            S,
            "2026-12-20T00:00:00Z",
            "ended",
            Some((1.5, 2.5)),
            None,
        ),
        c(
            "after the end, off",
            "FERMENT_OFF",
            FERMENT_OFF,
            S,
            "2026-12-20T00:00:00Z",
            "ended",
            None,
            None,
        ),
        c(
            "a 4d hold across spring DST is 96 real hours",
            "HOLD_ACROSS_DST",
            HOLD_ACROSS_DST,
            "2026-03-27T07:00:00Z",
            "2026-03-31T06:59:00Z",
            "1 hold",
            Some((17.5, 18.5)),
            Some("1m"),
        ),
        c(
            "daily: day, winter",
            "DAY_NIGHT",
            DAY_NIGHT,
            S,
            "2026-01-10T11:00:00Z",
            "1 hold",
            Some((24.0, 26.0)),
            Some("9h"),
        ),
        c(
            "daily: night before midnight",
            "DAY_NIGHT",
            DAY_NIGHT,
            S,
            "2026-01-10T22:30:00Z",
            "2 hold",
            Some((20.0, 22.0)),
            Some("7h30m"),
        ),
        c(
            "daily: night after midnight (the repeat wraps)",
            "DAY_NIGHT",
            DAY_NIGHT,
            S,
            "2026-01-11T00:30:00Z",
            "2 hold",
            Some((20.0, 22.0)),
            Some("5h30m"),
        ),
        c(
            "daily: the next day's first step",
            "DAY_NIGHT",
            DAY_NIGHT,
            S,
            "2026-01-11T06:00:00Z",
            "1 hold",
            Some((24.0, 26.0)),
            Some("14h"),
        ),
        c(
            "daily: summer, 07:00 CEST",
            "DAY_NIGHT",
            DAY_NIGHT,
            S,
            "2026-07-10T05:00:00Z",
            "1 hold",
            Some((24.0, 26.0)),
            Some("14h"),
        ),
        c(
            "daily: the spring night is 9 h (ends 07:00 CEST)",
            "DAY_NIGHT",
            DAY_NIGHT,
            S,
            "2026-03-29T00:30:00Z",
            "2 hold",
            Some((20.0, 22.0)),
            Some("4h30m"),
        ),
        c(
            "daily: the autumn night is 11 h (second 02:30)",
            "DAY_NIGHT",
            DAY_NIGHT,
            S,
            "2026-10-25T01:30:00Z",
            "2 hold",
            Some((20.0, 22.0)),
            Some("4h30m"),
        ),
        c(
            "02:30 skipped in spring: 1 s before the jump",
            "AT_0230",
            AT_0230,
            S,
            "2026-03-29T00:59:59Z",
            "2 hold",
            Some((15.0, 16.0)),
            Some("1s"),
        ),
        c(
            "02:30 skipped in spring: begins at the jump, 03:00 CEST",
            "AT_0230",
            AT_0230,
            S,
            "2026-03-29T01:00:00Z",
            "1 hold",
            Some((18.0, 19.0)),
            Some("11h30m"),
        ),
        c(
            "02:30 twice in autumn: the first one counts",
            "AT_0230",
            AT_0230,
            S,
            "2026-10-25T00:30:00Z",
            "1 hold",
            Some((18.0, 19.0)),
            Some("13h"),
        ),
        c(
            "02:30 twice in autumn: the second is inside the step",
            "AT_0230",
            AT_0230,
            S,
            "2026-10-25T01:30:00Z",
            "1 hold",
            Some((18.0, 19.0)),
            Some("12h"),
        ),
        c(
            "a step inside the spring gap lasts 0 s that day",
            "IN_THE_GAP",
            IN_THE_GAP,
            S,
            "2026-03-29T01:00:00Z",
            "2 hold",
            Some((10.0, 11.0)),
            Some("23h10m"),
        ),
        c(
            "the same step the next day",
            "IN_THE_GAP",
            IN_THE_GAP,
            S,
            "2026-03-30T00:20:00Z",
            "1 hold",
            Some((30.0, 31.0)),
            Some("30m"),
        ),
        c(
            "daily: the first ramp starts from the last step",
            "DAWN_DUSK",
            DAWN_DUSK,
            S,
            "2026-01-10T06:00:00Z",
            "1 ramp",
            Some((22.0, 24.0)),
            Some("1h"),
        ),
        c(
            "daily: dusk ramp a quarter in",
            "DAWN_DUSK",
            DAWN_DUSK,
            S,
            "2026-01-10T19:30:00Z",
            "3 ramp",
            Some((23.0, 25.0)),
            Some("1h30m"),
        ),
        c(
            "a ramp through the 25 h night spreads over 11 h",
            "NIGHT_RAMP",
            NIGHT_RAMP,
            S,
            "2026-10-24T23:30:00Z",
            "1 ramp",
            Some((19.0, 21.0)),
            Some("5h30m"),
        ),
    ]
}

/// What `limits_at` gave for a case, in the table's terms.
pub struct Outcome {
    /// As [`Case::step`].
    pub step: String,
    /// As [`Case::band`].
    pub band: Option<(f64, f64)>,
    /// As [`Case::next`].
    pub next: Option<String>,
    /// The time on the zone's local clock.
    pub local: String,
}

/// Runs one case.
pub fn evaluate(case: &Case) -> Outcome {
    let raw: RawProfile = serde_json::from_str(case.json).expect("the case's profile parses");
    let profile = Profile::from_raw(&raw, Units::C).expect("the case's profile is valid");
    let zone = Zone::posix(CET).expect("the CET rule parses");
    let start = parse_instant(case.start).expect("start");
    let now = parse_instant(case.now).expect("now");
    let limits = limits_at(&profile, start, now, &zone);
    let step = match limits.phase {
        ProfilePhase::Waiting { .. } => "waiting".to_string(),
        ProfilePhase::Ended { .. } => "ended".to_string(),
        ProfilePhase::Step { index, ramp, .. } => {
            format!("{} {}", index + 1, if ramp { "ramp" } else { "hold" })
        }
    };
    Outcome {
        step,
        band: limits.band.map(|b| (b.low_c, b.high_c)),
        next: limits.to_next.map(|d| format_duration(d.as_secs())),
        local: local_string(&zone, now, true),
    }
}

fn band_text(band: Option<(f64, f64)>) -> String {
    match band {
        Some((l, h)) => format!("{l:.2}..{h:.2}"),
        None => "off".to_string(),
    }
}

/// The cases and their outcomes as a Markdown table.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| case | profile | now (UTC) | local clock | step | limits °C | next step in |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for case in cases() {
        let o = evaluate(&case);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            case.name,
            case.profile,
            case.now,
            o.local,
            o.step,
            band_text(o.band),
            o.next.as_deref().unwrap_or("-")
        ));
    }
    out
}
