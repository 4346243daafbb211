//! Tests of parsing and validation, the hash, persistence, resume and
//! restart, the clock rule, the runner and the renderings. The table of
//! `limits_at` cases is in `tests/profile_table.rs`.

use std::path::Path;

use crate::clock::Zone;
use time::macros::datetime;
use time::OffsetDateTime;

use super::definition::{fnv1a64, StepKind, MAX_STEPS};
use super::*;

const CET: &str = "CET-1CEST,M3.5.0,M10.5.0/3";

const EXAMPLE_PROFILE: &str = r#"{ "start": "now", "after_end": "hold_last",
  "steps": [ { "hold": "4d", "low": 17.5, "high": 18.5 },
             { "ramp": "2d", "to_low": 20.5, "to_high": 21.5 },
             { "hold": "2d", "low": 20.5, "high": 21.5 },
             { "ramp": "1d", "to_low": 1.5, "to_high": 2.5 } ] }"#;

fn raw(json: &str) -> RawProfile {
    serde_json::from_str(json).unwrap()
}

fn profile(json: &str) -> Profile {
    Profile::from_raw(&raw(json), Units::C).unwrap()
}

fn cet() -> Zone {
    Zone::posix(CET).unwrap()
}

fn invalid_of(json: &str, units: Units) -> (String, String) {
    match Profile::from_raw(&raw(json), units) {
        Err(ProfileError::Invalid { key, message }) => (key, message),
        other => panic!("{json}: expected Invalid, got {other:?}"),
    }
}

// ---- parsing and validation ----

#[test]
fn the_design_example_parses_into_steps_with_ramp_origins() {
    let p = profile(EXAMPLE_PROFILE);
    assert_eq!(p.start(), Start::Now);
    assert_eq!(p.after_end(), AfterEnd::HoldLast);
    assert_eq!(p.total_secs(), 9 * 86_400);
    let s = p.steps();
    assert_eq!(s.len(), 4);
    assert_eq!((s[0].kind, s[0].secs), (StepKind::Hold, 4 * 86_400));
    assert_eq!(s[1].kind, StepKind::Ramp);
    assert_eq!(
        s[1].from,
        Band {
            low_c: 17.5,
            high_c: 18.5
        }
    );
    assert_eq!(
        s[1].to,
        Band {
            low_c: 20.5,
            high_c: 21.5
        }
    );
    assert_eq!(
        s[3].from,
        Band {
            low_c: 20.5,
            high_c: 21.5
        }
    );
    assert_eq!(
        s[3].to,
        Band {
            low_c: 1.5,
            high_c: 2.5
        }
    );
}

#[test]
fn defaults_are_now_and_hold_last() {
    let p = profile(r#"{"steps": [{"hold": "1h", "low": 1, "high": 2}]}"#);
    assert_eq!(p.start(), Start::Now);
    assert_eq!(p.after_end(), AfterEnd::HoldLast);
    assert!(!p.is_daily());
}

#[test]
fn fahrenheit_is_converted_to_celsius() {
    let p = Profile::from_raw(
        &raw(r#"{"steps": [{"hold": "1h", "low": 64.4, "high": 68}]}"#),
        Units::F,
    )
    .unwrap();
    let b = p.steps()[0].to;
    assert!(
        (b.low_c - 18.0).abs() < 1e-9 && (b.high_c - 20.0).abs() < 1e-9,
        "{b:?}"
    );
}

#[test]
fn a_fixed_start_and_a_daily_start_parse() {
    let p = profile(
        r#"{"start": "2026-12-01T08:00:00+01:00", "steps": [{"hold": "1h", "low": 1, "high": 2}]}"#,
    );
    assert_eq!(p.start(), Start::At(datetime!(2026-12-01 07:00 UTC)));
    let p = profile(
        r#"{"start": "07:30", "repeat": "daily", "steps": [{"ramp": "24h", "to_low": 1, "to_high": 2}]}"#,
    );
    assert_eq!(p.start(), Start::Daily(7 * 3600 + 1800));
    // A single daily ramp ramps from its own end: a constant band.
    assert_eq!(p.steps()[0].from, p.steps()[0].to);
}

#[test]
fn unknown_keys_and_values_are_refused_by_serde() {
    for json in [
        r#"{"steps": [], "strat": "now"}"#,
        r#"{"steps": [{"hold": "1h", "low": 1, "high": 2, "lo": 3}]}"#,
        r#"{"steps": [], "repeat": "weekly"}"#,
        r#"{"steps": [], "after_end": "hold"}"#,
    ] {
        let err = serde_json::from_str::<RawProfile>(json)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown field") || err.contains("unknown variant"),
            "{json}: {err}"
        );
    }
}

#[test]
fn validation_names_the_key_the_value_and_what_is_allowed() {
    let hold = r#"{"hold": "1h", "low": 1, "high": 2}"#;
    let cases: Vec<(String, Units, &str, &[&str])> = vec![
        (r#"{"steps": []}"#.into(), Units::C, "profile.steps", &["is empty", "hold"]),
        (
            format!(r#"{{"steps": [{hold}, {{"ramp": "4x", "to_low": 1, "to_high": 2}}]}}"#),
            Units::C,
            "profile.steps[1].ramp",
            &["\"4x\"", "the unit 'x'"],
        ),
        (
            format!(r#"{{"steps": [{hold}, {hold}, {{"hold": "36", "low": 1, "high": 2}}]}}"#),
            Units::C,
            "profile.steps[2].hold",
            &["no unit after 36"],
        ),
        (
            r#"{"steps": [{"hold": "0s", "low": 1, "high": 2}]}"#.into(),
            Units::C,
            "profile.steps[0].hold",
            &["zero"],
        ),
        (
            r#"{"steps": [{"hold": "1h", "low": 19, "high": 18}]}"#.into(),
            Units::C,
            "profile.steps[0].low",
            &["19 must be below `high` (18)"],
        ),
        (
            format!(r#"{{"steps": [{hold}, {{"ramp": "1h", "to_low": 5, "to_high": 5}}]}}"#),
            Units::C,
            "profile.steps[1].to_low",
            &["5 must be below `to_high` (5)"],
        ),
        (
            r#"{"steps": [{"hold": "1h", "low": -60, "high": 2}]}"#.into(),
            Units::C,
            "profile.steps[0].low",
            &["-60", "-55 to 125 °C"],
        ),
        (
            r#"{"steps": [{"hold": "1h", "low": 10, "high": 300}]}"#.into(),
            Units::F,
            "profile.steps[0].high",
            &["300", "-67 to 257 °F"],
        ),
        (
            r#"{"steps": [{"hold": "1h", "low": 1}]}"#.into(),
            Units::C,
            "profile.steps[0].high",
            &["missing", "`low` and `high`"],
        ),
        (
            format!(r#"{{"steps": [{hold}, {{"ramp": "1h", "to_high": 5}}]}}"#),
            Units::C,
            "profile.steps[1].to_low",
            &["missing"],
        ),
        (
            r#"{"steps": [{"hold": "1h", "ramp": "1h", "low": 1, "high": 2}]}"#.into(),
            Units::C,
            "profile.steps[0]",
            &["both `hold` and `ramp`"],
        ),
        (
            r#"{"steps": [{"low": 1, "high": 2}]}"#.into(),
            Units::C,
            "profile.steps[0]",
            &["neither `hold` nor `ramp`"],
        ),
        (
            r#"{"steps": [{"hold": "1h", "low": 1, "high": 2, "to_low": 3}]}"#.into(),
            Units::C,
            "profile.steps[0].to_low",
            &["belongs to a ramp"],
        ),
        (
            format!(r#"{{"steps": [{hold}, {{"ramp": "1h", "to_low": 1, "to_high": 2, "high": 3}}]}}"#),
            Units::C,
            "profile.steps[1].high",
            &["belongs to a hold"],
        ),
        (
            r#"{"steps": [{"ramp": "1h", "to_low": 1, "to_high": 2}]}"#.into(),
            Units::C,
            "profile.steps[0].ramp",
            &["first step", "begin with a hold"],
        ),
        (
            format!(r#"{{"start": "tomorrow", "steps": [{hold}]}}"#),
            Units::C,
            "profile.start",
            &["\"tomorrow\"", "2026-12-01T08:00:00+01:00", "\"now\""],
        ),
        (
            format!(r#"{{"start": "2026-12-01T08:00:00", "steps": [{hold}]}}"#),
            Units::C,
            "profile.start",
            &["no UTC offset"],
        ),
        (
            format!(r#"{{"start": "07:00", "steps": [{hold}]}}"#),
            Units::C,
            "profile.start",
            &["needs \"repeat\": \"daily\""],
        ),
        (
            format!(r#"{{"start": "now", "repeat": "daily", "steps": [{hold}]}}"#),
            Units::C,
            "profile.start",
            &["time of day", "\"07:00\""],
        ),
        (
            format!(r#"{{"start": "25:00", "repeat": "daily", "steps": [{hold}]}}"#),
            Units::C,
            "profile.start",
            &["HH:MM"],
        ),
        (
            r#"{"start": "07:00", "repeat": "daily", "steps": [{"hold": "14h", "low": 1, "high": 2}, {"hold": "9h30m", "low": 1, "high": 2}]}"#.into(),
            Units::C,
            "profile.steps",
            &["23h30m", "exactly 24h"],
        ),
        (
            format!(r#"{{"steps": [{}]}}"#, vec![hold; MAX_STEPS + 1].join(",")),
            Units::C,
            "profile.steps",
            &["101 steps", "at most 100"],
        ),
    ];
    for (json, units, key, parts) in cases {
        let (k, message) = invalid_of(&json, units);
        assert_eq!(k, key, "{json}: {message}");
        for part in parts {
            assert!(message.contains(part), "{json}: {message:?} lacks {part:?}");
        }
        let shown = ProfileError::Invalid { key: k, message }.to_string();
        assert!(shown.starts_with(&format!("key `{key}`: ")), "{shown}");
    }
}

#[test]
fn nan_and_infinity_cannot_reach_the_profile() {
    // JSON has no NaN; a RawProfile built in code can.
    let mut r = raw(r#"{"steps": [{"hold": "1h", "low": 1, "high": 2}]}"#);
    r.steps[0].low = Some(f64::NAN);
    assert!(matches!(
        Profile::from_raw(&r, Units::C),
        Err(ProfileError::Invalid { key, .. }) if key == "profile.steps[0].low"
    ));
    r.steps[0].low = Some(1.0);
    r.steps[0].high = Some(f64::INFINITY);
    assert!(matches!(
        Profile::from_raw(&r, Units::C),
        Err(ProfileError::Invalid { key, .. }) if key == "profile.steps[0].high"
    ));
}

#[test]
fn to_raw_reads_back_to_the_same_profile() {
    for (json, units) in [
        (EXAMPLE_PROFILE, Units::C),
        (EXAMPLE_PROFILE, Units::F),
        (
            r#"{"start": "2026-12-01T08:00:00+01:00", "after_end": "off", "steps": [{"hold": "36h", "low": 1, "high": 2}]}"#,
            Units::C,
        ),
        (
            r#"{"start": "06:00", "repeat": "daily", "steps": [{"ramp": "2h", "to_low": 24, "to_high": 26}, {"hold": "22h", "low": 20, "high": 22}]}"#,
            Units::C,
        ),
    ] {
        let p = Profile::from_raw(&raw(json), units).unwrap();
        let back = p.to_raw(units);
        let again = Profile::from_raw(&back, units).unwrap();
        assert_eq!(again.hash(), p.hash(), "{back:?}");
        assert_eq!(again.steps().len(), p.steps().len());
        assert_eq!(again.start(), p.start());
        assert_eq!(again.after_end(), p.after_end());
    }
    let back = profile(EXAMPLE_PROFILE).to_raw(Units::C);
    assert_eq!(back.steps[0].hold.as_deref(), Some("4d"));
    assert_eq!(back.steps[1].to_high, Some(21.5));
}

// ---- the hash ----

#[test]
fn the_hash_is_fixed_across_builds() {
    // This value must never change: a changed hash restarts every running
    // profile after an upgrade.
    assert_eq!(profile(EXAMPLE_PROFILE).hash(), "fnv1a64:91c8bc81d7aaabf5");
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
}

#[test]
fn the_hash_follows_the_schedule_not_the_formatting() {
    let base = profile(EXAMPLE_PROFILE).hash();
    let same = [
        // Other formatting and key order.
        r#"{"steps":[{"low":17.5,"high":18.5,"hold":"4d"},{"to_high":21.5,"to_low":20.5,"ramp":"48h"},{"hold":"1d24h","low":20.5,"high":21.5},{"ramp":"24h","to_low":1.5,"to_high":2.5}]}"#,
        // after_end is not part of it.
        r#"{"after_end": "off", "steps":[{"hold":"4d","low":17.5,"high":18.5},{"ramp":"2d","to_low":20.5,"to_high":21.5},{"hold":"2d","low":20.5,"high":21.5},{"ramp":"1d","to_low":1.5,"to_high":2.5}]}"#,
    ];
    for json in same {
        assert_eq!(profile(json).hash(), base, "{json}");
    }
    // The same temperatures written in °F.
    let f = Profile::from_raw(
        &raw(r#"{"steps":[{"hold":"4d","low":63.5,"high":65.3},{"ramp":"2d","to_low":68.9,"to_high":70.7},{"hold":"2d","low":68.9,"high":70.7},{"ramp":"1d","to_low":34.7,"to_high":36.5}]}"#),
        Units::F,
    )
    .unwrap();
    assert_eq!(f.hash(), base);
    let different = [
        r#"{"steps":[{"hold":"4d","low":17.5,"high":18.6},{"ramp":"2d","to_low":20.5,"to_high":21.5},{"hold":"2d","low":20.5,"high":21.5},{"ramp":"1d","to_low":1.5,"to_high":2.5}]}"#,
        r#"{"steps":[{"hold":"4d1s","low":17.5,"high":18.5},{"ramp":"2d","to_low":20.5,"to_high":21.5},{"hold":"2d","low":20.5,"high":21.5},{"ramp":"1d","to_low":1.5,"to_high":2.5}]}"#,
        r#"{"steps":[{"hold":"4d","low":17.5,"high":18.5},{"hold":"2d","low":20.5,"high":21.5},{"hold":"2d","low":20.5,"high":21.5},{"ramp":"1d","to_low":1.5,"to_high":2.5}]}"#,
        r#"{"steps":[{"hold":"4d","low":17.5,"high":18.5},{"ramp":"2d","to_low":20.5,"to_high":21.5},{"hold":"2d","low":20.5,"high":21.5}]}"#,
        r#"{"start":"2026-12-01T08:00:00+01:00","steps":[{"hold":"4d","low":17.5,"high":18.5},{"ramp":"2d","to_low":20.5,"to_high":21.5},{"hold":"2d","low":20.5,"high":21.5},{"ramp":"1d","to_low":1.5,"to_high":2.5}]}"#,
    ];
    for json in different {
        assert_ne!(profile(json).hash(), base, "{json}");
    }
}

// ---- persistence ----

fn state_at(start: OffsetDateTime, hash: &str) -> ProfileState {
    ProfileState {
        start,
        profile_hash: hash.to_string(),
        saved_at: start,
        checkpoint: None,
    }
}

#[test]
fn state_round_trips_through_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/profile.json");
    assert_eq!(
        load_state(&path).unwrap(),
        None,
        "a missing file is a first run"
    );
    let mut s = state_at(datetime!(2026-12-01 07:00 UTC), "fnv1a64:0123456789abcdef");
    s.saved_at = datetime!(2026-12-03 09:30:15 UTC);
    s.checkpoint = Some(Checkpoint {
        at: datetime!(2026-12-03 09:30:15 UTC),
        step: Some(1),
        band: Some(Band {
            low_c: 18.75,
            high_c: 19.75,
        }),
    });
    save_state(&path, &s).unwrap();
    assert_eq!(load_state(&path).unwrap(), Some(s.clone()));
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["profile.json"]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(r#""start":"2026-12-01T07:00:00Z""#), "{text}");
    // Plugs off is kept as such.
    s.checkpoint = Some(Checkpoint {
        at: s.saved_at,
        step: None,
        band: None,
    });
    save_state(&path, &s).unwrap();
    assert_eq!(load_state(&path).unwrap(), Some(s));
}

#[test]
fn damaged_or_foreign_state_files_are_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"version":1,"start":"2026-12-01T07:00:00Z","profile_hash":"fnv1a64:0123456789abcdef","saved_at":"2026-12-01T07:00:00Z"}"#;
    assert!(state::parse_state_for_test(good).is_ok());
    let cases: &[(&[u8], &str)] = &[
        (b"", "not a kasa-thermostat profile state"),
        (b"{\"version\":1,\"start\":\"2026-12", "not a kasa-thermostat profile state"),
        (b"[1,2,3]", "not a kasa-thermostat profile state"),
        (br#"{"units":"C","mode":"heat"}"#, "unknown field"),
        (
            br#"{"version":2,"start":"2026-12-01T07:00:00Z","profile_hash":"fnv1a64:0","saved_at":"2026-12-01T07:00:00Z"}"#,
            "version 2",
        ),
        (
            br#"{"version":1,"start":"yesterday","profile_hash":"fnv1a64:0","saved_at":"2026-12-01T07:00:00Z"}"#,
            "`start`",
        ),
        (
            br#"{"version":1,"start":"2026-12-01T07:00:00Z","profile_hash":"md5:0","saved_at":"2026-12-01T07:00:00Z"}"#,
            "profile_hash",
        ),
        (
            br#"{"version":1,"start":"2026-12-01T07:00:00Z","profile_hash":"fnv1a64:0","saved_at":"2026-12-01T07:00:00Z","checkpoint":{"at":"2026-12-01T07:00:00Z","step":0,"low_c":5,"high_c":null}}"#,
            "checkpoint",
        ),
        (b"\xff\xfe\x00", "not text"),
    ];
    for (i, (bytes, want)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("p{i}.json"));
        std::fs::write(&path, bytes).unwrap();
        let err = load_state(&path).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ProfileError::StateDamaged { .. }), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(
            text.contains(want),
            "{:?}: {text}",
            String::from_utf8_lossy(bytes)
        );
        assert!(text.contains("profile restart"), "{text}");
    }
}

#[test]
fn a_huge_file_a_directory_and_a_fifo_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    std::fs::write(&big, vec![b' '; STATE_FILE_MAX_BYTES as usize + 1]).unwrap();
    let err = load_state(&big).unwrap_err().to_string();
    assert!(err.contains("more than the 65536"), "{err}");

    let err = load_state(dir.path()).unwrap_err().to_string();
    assert!(err.contains("not a regular file"), "{err}");

    let fifo = dir.path().join("fifo.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // Without O_NONBLOCK this open would wait for a writer forever.
    let err = load_state(&fifo).unwrap_err().to_string();
    assert!(
        err.contains("not a regular file") && err.contains("fifo.json"),
        "{err}"
    );
}

#[test]
fn a_write_to_an_impossible_place_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    // A path under a regular file cannot be created.
    let path = file.join("profile.json");
    let err = save_state(
        &path,
        &state_at(datetime!(2026-12-01 07:00 UTC), "fnv1a64:0"),
    )
    .unwrap_err();
    assert!(matches!(err, ProfileError::StateIo { .. }));
    assert!(err.to_string().contains("plain/profile.json"), "{err}");
    assert!(std::error::Error::source(&err).is_some());
}

// ---- resume, restart ----

#[test]
fn resume_decides_new_resumed_or_changed() {
    let p = profile(EXAMPLE_PROFILE);
    let now = datetime!(2026-12-03 10:00:00.75 UTC);

    let (s, r) = resume(&p, None, now);
    assert_eq!(
        r,
        Resume::New {
            start: datetime!(2026-12-03 10:00 UTC)
        }
    );
    assert!(r.needs_save());
    assert_eq!(s.start, datetime!(2026-12-03 10:00 UTC), "whole seconds");
    assert_eq!(s.profile_hash, p.hash());

    let stored = state_at(datetime!(2026-12-01 07:00 UTC), &p.hash());
    let (s, r) = resume(&p, Some(stored.clone()), now);
    assert_eq!(
        r,
        Resume::Resumed {
            start: datetime!(2026-12-01 07:00 UTC)
        }
    );
    assert!(!r.needs_save());
    assert_eq!(s, stored);

    let (s, r) = resume(
        &p,
        Some(state_at(
            datetime!(2026-12-01 07:00 UTC),
            "fnv1a64:0000000000000000",
        )),
        now,
    );
    assert!(
        matches!(&r, Resume::Changed { old_hash, .. } if old_hash == "fnv1a64:0000000000000000")
    );
    assert!(r.needs_save());
    assert_eq!(s.start, datetime!(2026-12-03 10:00 UTC));
    assert!(r.to_string().contains("starts over"), "{r}");

    // A fixed start comes from the config, not from the clock.
    let fixed = profile(
        r#"{"start": "2026-12-24T18:00:00+01:00", "steps": [{"hold": "1h", "low": 1, "high": 2}]}"#,
    );
    let (s, _) = resume(&fixed, None, now);
    assert_eq!(s.start, datetime!(2026-12-24 17:00 UTC));
}

#[test]
fn restart_starts_over_now_except_daily() {
    let p = profile(EXAMPLE_PROFILE);
    let now = datetime!(2026-12-05 12:00 UTC);
    let s = restart(&p, now).unwrap();
    assert_eq!(s.start, now);
    assert_eq!(s.profile_hash, p.hash());
    let daily = profile(
        r#"{"start": "07:00", "repeat": "daily", "steps": [{"hold": "24h", "low": 1, "high": 2}]}"#,
    );
    let err = restart(&daily, now).unwrap_err();
    assert!(matches!(err, ProfileError::DailyHasNoRestart));
    assert!(err.to_string().contains("profile.start"), "{err}");
}

#[test]
fn restart_command_writes_over_a_damaged_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.json");
    std::fs::write(&path, "garbage").unwrap();
    let p = profile(EXAMPLE_PROFILE);
    let line = restart_command(&p, &path, datetime!(2026-12-05 12:00 UTC)).unwrap();
    assert!(line.contains("2026-12-05T12:00:00Z"), "{line}");
    let s = load_state(&path).unwrap().unwrap();
    assert_eq!(s.start, datetime!(2026-12-05 12:00 UTC));
}

// ---- clock and checkpoints ----

#[test]
fn the_clock_is_doubted_before_the_floor_or_the_state_file() {
    let mut s = state_at(datetime!(2026-12-01 07:00 UTC), "fnv1a64:0");
    s.saved_at = datetime!(2026-12-04 07:00 UTC);
    s.checkpoint = Some(Checkpoint {
        at: datetime!(2026-12-05 07:00 UTC),
        step: Some(1),
        band: None,
    });
    let cases = [
        (datetime!(1970-01-01 00:00:05 UTC), None, None, "release"),
        (datetime!(2025-06-01 00:00 UTC), None, Some(true), "release"),
        (datetime!(2026-11-28 12:00 UTC), None, None, "plausible"),
        (
            datetime!(2026-11-28 12:00 UTC),
            Some(&s),
            None,
            "state file",
        ),
        (
            datetime!(2026-12-05 06:56 UTC),
            Some(&s),
            Some(false),
            "plausible",
        ),
        (
            datetime!(2026-12-05 06:54 UTC),
            Some(&s),
            Some(false),
            "state file",
        ),
        (
            datetime!(2026-12-04 12:00 UTC),
            Some(&s),
            Some(true),
            "synced",
        ),
        (datetime!(2026-12-06 12:00 UTC), Some(&s), None, "plausible"),
    ];
    for (now, stored, synced, want) in cases {
        let v = clock_check(now, stored, synced);
        let got = match &v {
            ClockVerdict::Plausible => "plausible",
            ClockVerdict::SyncedBehindState { floor } => {
                assert_eq!(*floor, datetime!(2026-12-05 07:00 UTC));
                "synced"
            }
            ClockVerdict::Implausible { why, .. } => {
                if why.contains("release") {
                    "release"
                } else {
                    "state file"
                }
            }
        };
        assert_eq!(got, want, "{now} {synced:?}: {v:?}");
    }
}

#[test]
fn kernel_clock_sync_is_readable() {
    // Whatever the machine's state, the read-only call must answer.
    assert!(kernel_clock_synced().is_some());
}

#[test]
fn checkpoints_follow_steps_and_ramp_movement() {
    let p = profile(EXAMPLE_PROFILE);
    let z = Zone::utc();
    let start = datetime!(2026-12-01 07:00 UTC);
    let at = |t| limits_at(&p, start, t, &z);
    let mut s = state_at(start, &p.hash());
    let l0 = at(start);
    assert!(checkpoint_due(&s, &l0), "no checkpoint yet");
    s.checkpoint = Some(Checkpoint::of(&l0, start));
    assert!(
        !checkpoint_due(&s, &at(datetime!(2026-12-04 07:00 UTC))),
        "a hold does not move"
    );
    // The ramp moves 3 °C in 2 days: 0.25 °C after 4 hours.
    let ramp0 = at(datetime!(2026-12-05 07:00 UTC));
    assert!(checkpoint_due(&s, &ramp0), "a new step");
    s.checkpoint = Some(Checkpoint::of(&ramp0, datetime!(2026-12-05 07:00 UTC)));
    assert!(!checkpoint_due(&s, &at(datetime!(2026-12-05 10:59 UTC))));
    assert!(checkpoint_due(&s, &at(datetime!(2026-12-05 11:00 UTC))));
    // Ending with off is a change from limits.
    let off = profile(&EXAMPLE_PROFILE.replace("hold_last", "off"));
    let ended = limits_at(&off, start, datetime!(2026-12-20 00:00 UTC), &z);
    s.checkpoint = Some(Checkpoint {
        at: start,
        step: None,
        band: Some(Band {
            low_c: 1.5,
            high_c: 2.5,
        }),
    });
    assert!(checkpoint_due(&s, &ended));
    s.checkpoint = Some(Checkpoint::of(&ended, start));
    assert!(!checkpoint_due(&s, &ended));
}

// ---- the runner ----

fn runner(dir: &Path, json: &str) -> ProfileRunner {
    ProfileRunner::new(profile(json), &dir.join("profile.json"), cet(), Units::C).unwrap()
}

fn stored(dir: &Path) -> ProfileState {
    load_state(&dir.join("profile.json")).unwrap().unwrap()
}

#[test]
fn a_restart_mid_ramp_resumes_and_a_changed_profile_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = datetime!(2026-12-01 07:00 UTC);
    let mut r = runner(dir.path(), EXAMPLE_PROFILE);
    let tick = r.tick(t0, None);
    assert_eq!(
        tick.events[0],
        ProfileEvent::Started(Resume::New { start: t0 })
    );
    assert!(
        tick.events[1]
            .to_string()
            .contains("step 1/4: hold 4d 17.5..18.5 °C"),
        "{:?}",
        tick.events
    );
    assert_eq!(stored(dir.path()).start, t0);

    // The service stops mid-ramp and comes back an hour later.
    let mid = datetime!(2026-12-06 07:00 UTC);
    let before = r.tick(mid, None);
    drop(r);
    let mut r = runner(dir.path(), EXAMPLE_PROFILE);
    let later = mid + time::Duration::hours(1);
    let after = r.tick(later, None);
    assert_eq!(
        after.events[0],
        ProfileEvent::Started(Resume::Resumed { start: t0 })
    );
    let (b0, b1) = (before.band.unwrap(), after.band.unwrap());
    assert!((b0.low_c - 19.0).abs() < 1e-9, "{b0:?}");
    assert!(
        b1.low_c > b0.low_c && b1.low_c < 19.1,
        "resumed mid-ramp, not restarted: {b1:?}"
    );

    // An edited profile starts over.
    let edited = EXAMPLE_PROFILE.replace("\"2d\", \"to_low\": 20.5", "\"3d\", \"to_low\": 20.5");
    let mut r = runner(dir.path(), &edited);
    let tick = r.tick(later, None);
    assert!(
        matches!(&tick.events[0], ProfileEvent::Started(Resume::Changed { start, .. }) if *start == later)
    );
    assert_eq!(tick.events[0].level(), log::Level::Warn);
    assert_eq!(
        tick.band,
        Some(Band {
            low_c: 17.5,
            high_c: 18.5
        })
    );
    assert_eq!(stored(dir.path()).start, later);
}

#[test]
fn the_state_file_is_written_only_when_something_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.json");
    let t0 = datetime!(2026-12-01 07:00 UTC);
    let mut r = runner(dir.path(), EXAMPLE_PROFILE);
    r.tick(t0, None);
    let written = std::fs::read_to_string(&path).unwrap();
    // A day of 10-second cycles in the hold: no write.
    let mut t = t0;
    for _ in 0..8640 {
        t += time::Duration::seconds(10);
        let tick = r.tick(t, None);
        assert!(tick.events.is_empty(), "{:?}", tick.events);
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), written);
    // Into the ramp: a step change is written.
    r.tick(datetime!(2026-12-05 07:00 UTC), None);
    let s = stored(dir.path());
    assert_eq!(s.checkpoint.unwrap().step, Some(1));
    assert_eq!(s.saved_at, datetime!(2026-12-05 07:00 UTC));
}

#[test]
fn a_wrong_clock_holds_the_last_persisted_limits_until_it_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = datetime!(2026-12-01 07:00 UTC);
    let mut r = runner(dir.path(), EXAMPLE_PROFILE);
    r.tick(t0, None);
    let ramp_time = datetime!(2026-12-06 07:00 UTC);
    r.tick(ramp_time, None);
    drop(r);

    // Reboot without network time: the clock reads 1970.
    let mut r = runner(dir.path(), EXAMPLE_PROFILE);
    let tick = r.tick(datetime!(1970-01-01 00:01 UTC), Some(false));
    assert_eq!(tick.limits, None);
    let held = tick.band.unwrap();
    assert!(
        (held.low_c - 19.0).abs() < 1e-9,
        "the checkpoint's limits: {held:?}"
    );
    assert!(matches!(
        tick.events[..],
        [ProfileEvent::ClockDoubted { .. }]
    ));
    assert_eq!(tick.events[0].level(), log::Level::Warn);
    assert!(
        tick.events[0].to_string().contains("19.0..20.0 °C"),
        "{}",
        tick.events[0]
    );
    // Logged once, not every cycle.
    let tick = r.tick(datetime!(1970-01-01 00:02 UTC), Some(false));
    assert!(tick.events.is_empty());
    assert!(r.state().is_none(), "nothing is started from a wrong clock");
    // An edited profile would start over: its first step is held meanwhile.
    let edited = EXAMPLE_PROFILE.replace("17.5", "16.5");
    let tick = runner(dir.path(), &edited).tick(datetime!(1970-01-01 00:01 UTC), None);
    assert_eq!(
        tick.band,
        Some(Band {
            low_c: 16.5,
            high_c: 18.5
        })
    );
    // Network time arrives.
    let tick = r.tick(ramp_time + time::Duration::hours(2), Some(true));
    assert_eq!(tick.events[0], ProfileEvent::ClockBelieved);
    assert_eq!(
        tick.events[1],
        ProfileEvent::Started(Resume::Resumed { start: t0 })
    );
    assert!(tick.limits.is_some());
}

#[test]
fn without_any_state_a_wrong_clock_holds_the_first_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = runner(dir.path(), EXAMPLE_PROFILE);
    let tick = r.tick(datetime!(1970-01-01 00:01 UTC), None);
    assert_eq!(
        tick.band,
        Some(Band {
            low_c: 17.5,
            high_c: 18.5
        })
    );
    assert!(
        !dir.path().join("profile.json").exists(),
        "no start taken from 1970"
    );
}

#[test]
fn a_profile_restart_from_the_command_line_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.json");
    let t0 = datetime!(2026-12-01 07:00 UTC);
    let mut r = runner(dir.path(), EXAMPLE_PROFILE);
    r.tick(t0, None);
    let t1 = datetime!(2026-12-06 07:00 UTC);
    assert_eq!(r.tick(t1, None).limits.unwrap().phase.index(), Some(1));
    // Make sure the file's identity changes even on a coarse mtime clock.
    std::fs::remove_file(&path).unwrap();
    restart_command(r.profile(), &path, t1).unwrap();
    let tick = r.tick(t1 + time::Duration::seconds(10), None);
    assert_eq!(
        tick.events[0],
        ProfileEvent::RestartedByCommand { start: t1 }
    );
    assert_eq!(tick.limits.unwrap().phase.index(), Some(0));
    assert_eq!(
        tick.band,
        Some(Band {
            low_c: 17.5,
            high_c: 18.5
        })
    );
}

#[test]
fn a_state_file_that_cannot_be_written_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    // A dangling symlink as the directory: nothing to read, nothing can be written.
    let link = dir.path().join("plain");
    std::os::unix::fs::symlink(dir.path().join("gone/away"), &link).unwrap();
    let mut r = ProfileRunner::new(
        profile(EXAMPLE_PROFILE),
        &link.join("profile.json"),
        cet(),
        Units::C,
    )
    .unwrap();
    let t0 = datetime!(2026-12-01 07:00 UTC);
    let tick = r.tick(t0, None);
    let failures: Vec<_> = tick
        .events
        .iter()
        .filter(|e| matches!(e, ProfileEvent::WriteFailed { .. }))
        .collect();
    assert_eq!(failures.len(), 1, "{:?}", tick.events);
    assert_eq!(failures[0].level(), log::Level::Error);
    assert!(
        failures[0].to_string().contains("plain/profile.json"),
        "{}",
        failures[0]
    );
    // The profile runs all the same.
    assert_eq!(
        tick.band,
        Some(Band {
            low_c: 17.5,
            high_c: 18.5
        })
    );
    let tick = r.tick(t0 + time::Duration::seconds(10), None);
    assert!(tick.events.is_empty(), "{:?}", tick.events);
}

#[test]
fn a_damaged_state_file_stops_the_runner_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("profile.json"), "{").unwrap();
    let err = ProfileRunner::new(
        profile(EXAMPLE_PROFILE),
        &dir.path().join("profile.json"),
        cet(),
        Units::C,
    )
    .unwrap_err();
    assert!(matches!(err, ProfileError::StateDamaged { .. }), "{err}");
}

// ---- daily profiles over a whole year ----

#[test]
fn a_daily_profile_covers_every_instant_of_a_year() {
    let p = profile(
        r#"{"start": "02:10", "repeat": "daily", "steps": [
            {"hold": "40m", "low": 30, "high": 31},
            {"ramp": "5h", "to_low": 10, "to_high": 11},
            {"hold": "18h20m", "low": 10, "high": 11}]}"#,
    );
    let z = cet();
    let mut t = datetime!(2026-01-01 00:00 UTC);
    let end = datetime!(2027-01-01 00:00 UTC);
    let mut first_steps = Vec::new();
    while t < end {
        let l = limits_at(&p, t, t, &z);
        let ProfilePhase::Step {
            index,
            started,
            ends,
            ..
        } = l.phase
        else {
            panic!("{t}: {l:?}");
        };
        assert!(started <= t && t < ends, "{t}: {l:?}");
        let nominal = p.steps()[index].secs as i64;
        let real = (ends - started).whole_seconds();
        assert!(
            (real - nominal).abs() <= 3600,
            "{t}: step {index} lasts {real}s"
        );
        if index == 0 && first_steps.last() != Some(&started) {
            first_steps.push(started);
        }
        t += time::Duration::minutes(5);
    }
    let mut hours = std::collections::BTreeMap::new();
    for pair in first_steps.windows(2) {
        *hours.entry((pair[1] - pair[0]).whole_hours()).or_insert(0) += 1;
    }
    // The first step begins at 02:10 every day: 24 hours apart, 25 across
    // the autumn change; on 29 March 02:10 does not exist and the 40-minute
    // step lies in the gap, so it is not seen that day (47 hours between the
    // 28th and the 30th).
    let want: std::collections::BTreeMap<i64, i32> = [(24, 361), (25, 1), (47, 1)].into();
    assert_eq!(hours, want);
}

// ---- rendering ----

#[test]
fn render_plan_lists_every_step_and_marks_the_current_one() {
    let p = profile(EXAMPLE_PROFILE);
    let state = state_at(datetime!(2026-12-01 07:00 UTC), &p.hash());
    let now = datetime!(2026-12-06 07:00 UTC);
    let text = render_plan(&p, Some(&state), now, &cet(), Units::C);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("4 steps, started 2026-12-01 08:00 CET"),
        "{text}"
    );
    for want in [
        "1. hold 4d",
        "2. ramp 2d",
        "3. hold 2d",
        "4. ramp 1d",
        "2026-12-05 08:00 CET",
        "2026-12-10 08:00 CET",
        "17.5..18.5 °C -> 20.5..21.5 °C",
        "now 19.0..20.0 °C, next step in 1 d 00 h",
        "after the end: hold 1.5..2.5 °C",
    ] {
        assert!(text.contains(want), "{want:?} missing from\n{text}");
    }
    let marked: Vec<&&str> = lines.iter().filter(|l| l.starts_with('>')).collect();
    assert_eq!(marked.len(), 1, "{text}");
    assert!(marked[0].contains("2. ramp 2d"), "{text}");
    // Fahrenheit.
    let text = render_plan(&p, Some(&state), now, &cet(), Units::F);
    assert!(text.contains("63.5..65.3 °F"), "{text}");
    assert!(text.contains("now 66.2..68.0 °F"), "{text}");
}

#[test]
fn render_plan_without_state_and_after_the_end() {
    let p = profile(EXAMPLE_PROFILE);
    let now = datetime!(2026-12-01 07:00 UTC);
    let text = render_plan(&p, None, now, &cet(), Units::C);
    assert!(text.contains("not yet run"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with('>') && l.contains("1. hold")),
        "{text}"
    );

    let other = state_at(datetime!(2026-11-01 07:00 UTC), "fnv1a64:0000000000000000");
    let text = render_plan(&p, Some(&other), now, &cet(), Units::C);
    assert!(text.contains("for another profile"), "{text}");

    let off = profile(&EXAMPLE_PROFILE.replace("hold_last", "off"));
    let state = state_at(datetime!(2026-11-01 07:00 UTC), &off.hash());
    let text = render_plan(&off, Some(&state), now, &cet(), Units::C);
    assert!(
        text.contains("now: ended 21 d 00 h ago, both plugs off"),
        "{text}"
    );
    assert!(!text.lines().any(|l| l.starts_with('>')), "{text}");

    let later = profile(
        r#"{"start": "2026-12-24T18:00:00+01:00", "steps": [{"hold": "1h", "low": 1, "high": 2}]}"#,
    );
    let text = render_plan(&later, None, now, &cet(), Units::C);
    assert!(text.contains("it starts 2026-12-24 18:00 CET"), "{text}");
    assert!(
        text.contains("now: waiting for the start (in 23 d 10 h), holding 1.0..2.0 °C"),
        "{text}"
    );
}

#[test]
fn render_plan_shows_a_daily_cycle_on_the_local_clock() {
    let p = profile(
        r#"{"start": "07:00", "repeat": "daily", "steps": [
            {"hold": "14h", "low": 24, "high": 26}, {"hold": "10h", "low": 20, "high": 22}]}"#,
    );
    // 01:30 CET on 2026-01-11: the night that began on the 10th.
    let text = render_plan(&p, None, datetime!(2026-01-11 00:30 UTC), &cet(), Units::C);
    assert!(text.contains("daily profile, 2 steps from 07:00"), "{text}");
    let night = text.lines().find(|l| l.starts_with('>')).unwrap();
    assert!(
        night.contains("2. hold 10h")
            && night.contains("2026-01-10 21:00 CET")
            && night.contains("2026-01-11 07:00 CET"),
        "{text}"
    );
    assert!(
        text.contains("now 20.0..22.0 °C, next step in 5 h 30 min"),
        "{text}"
    );
    assert!(!text.contains("after the end"), "{text}");
}

#[test]
fn the_last_step_says_when_the_profile_ends() {
    let p = profile(EXAMPLE_PROFILE);
    let state = state_at(datetime!(2026-12-01 07:00 UTC), &p.hash());
    let text = render_plan(
        &p,
        Some(&state),
        datetime!(2026-12-09 19:00 UTC),
        &cet(),
        Units::C,
    );
    assert!(
        text.contains("now 11.0..12.0 °C, the profile ends in 12 h 00 min"),
        "{text}"
    );
    let status = ProfileStatus {
        phase: "ramp".into(),
        step: Some(3),
        steps: 4,
        low: Some(11.0),
        high: Some(12.0),
        next_change: Some("2026-12-10T07:00:00Z".into()),
    };
    assert_eq!(
        status_summary(&status, datetime!(2026-12-09 19:00 UTC), Units::C),
        "profile step 4/4 (ramp), now 11.0..12.0 °C, next change in 12 h 00 min"
    );
}

#[test]
fn status_summary_says_step_limits_and_time_to_next() {
    let dir = tempfile::tempdir().unwrap();
    let p = profile(EXAMPLE_PROFILE);
    let mut r = runner(dir.path(), EXAMPLE_PROFILE);
    let t0 = datetime!(2026-12-01 07:00 UTC);
    r.tick(t0, None);
    let now = datetime!(2026-12-06 07:00 UTC);
    let tick = r.tick(now, None);
    let status = ProfileStatus::of(&p, &tick, Units::C);
    assert_eq!(status.phase, "ramp");
    assert_eq!(status.step, Some(1));
    assert_eq!(status.next_change.as_deref(), Some("2026-12-07T07:00:00Z"));
    // Through the state file's JSON and back, as `status` reads it.
    let status: ProfileStatus =
        serde_json::from_str(&serde_json::to_string(&status).unwrap()).unwrap();
    assert_eq!(
        status_summary(&status, now + time::Duration::hours(1), Units::C),
        "profile step 2/4 (ramp), now 19.0..20.0 °C, next step in 23 h 00 min"
    );
    let ended = ProfileStatus {
        phase: "ended".into(),
        step: None,
        steps: 4,
        low: None,
        high: None,
        next_change: None,
    };
    assert_eq!(
        status_summary(&ended, now, Units::C),
        "profile ended, both plugs off"
    );
    let doubted = ProfileStatus {
        phase: "clock_not_set".into(),
        low: Some(65.0),
        high: Some(67.0),
        ..ended
    };
    assert_eq!(
        status_summary(&doubted, now, Units::F),
        "profile on hold until the clock is set, holding 65.0..67.0 °F"
    );
}

// ---- the demo ----

#[test]
fn the_demo_profile_is_compressed_by_the_speed() {
    let p = demo_profile(60.0).unwrap();
    let kinds: Vec<_> = p.steps().iter().map(|s| (s.kind, s.secs)).collect();
    assert_eq!(
        kinds,
        [
            (StepKind::Hold, 30),
            (StepKind::Ramp, 30),
            (StepKind::Hold, 30),
            (StepKind::Hold, 30)
        ]
    );
    assert_eq!(
        p.steps()[3].to,
        Band {
            low_c: 16.0,
            high_c: 18.0
        }
    );
    assert_eq!(demo_profile(1.0).unwrap().steps()[0].secs, 1800);
    assert_eq!(
        demo_profile(1e9).unwrap().steps()[0].secs,
        1,
        "at least a second"
    );
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(demo_profile(bad), Err(ProfileError::DemoSpeed(_))));
    }
}

#[test]
fn profile_show_prints_the_plan_even_with_a_damaged_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.json");
    let p = profile(EXAMPLE_PROFILE);
    let now = datetime!(2026-12-06 07:00 UTC);
    save_state(&path, &state_at(datetime!(2026-12-01 07:00 UTC), &p.hash())).unwrap();
    let text = show_command(&p, &path, now, &cet(), Units::C);
    assert!(text.contains("started 2026-12-01 08:00 CET"), "{text}");
    std::fs::write(&path, "{").unwrap();
    let text = show_command(&p, &path, now, &cet(), Units::C);
    assert!(text.contains("1. hold 4d"), "{text}");
    assert!(
        text.contains("warning: the profile state file") && text.contains("profile.json"),
        "{text}"
    );
}

#[test]
fn the_runner_can_move_to_the_control_thread() {
    fn send<T: Send + 'static>() {}
    send::<ProfileRunner>();
    send::<Zone>();
    send::<Profile>();
}

#[test]
fn extreme_starts_and_times_do_not_panic() {
    let hold = r#"{"hold": "365d", "low": 1, "high": 2}"#;
    let json = format!(
        r#"{{"start": "9000-12-31T23:00:00-01:00", "steps": [{}]}}"#,
        vec![hold; MAX_STEPS].join(",")
    );
    let p = profile(&json);
    let start = match p.start() {
        Start::At(t) => t,
        other => panic!("{other:?}"),
    };
    let z = cet();
    let end = time::PrimitiveDateTime::MAX.assume_utc();
    for now in [datetime!(1970-01-01 00:00 UTC), start, end] {
        let l = limits_at(&p, start, now, &z);
        assert_eq!(
            l.band,
            Some(Band {
                low_c: 1.0,
                high_c: 2.0
            })
        );
        let text = render_plan(&p, None, now, &z, Units::C);
        assert!(text.contains("100. hold 365d"), "{text}");
    }
    let daily = profile(
        r#"{"start": "23:30", "repeat": "daily", "steps": [{"hold": "24h", "low": 1, "high": 2}]}"#,
    );
    let l = limits_at(&daily, end, end, &z);
    assert_eq!(
        l.band,
        Some(Band {
            low_c: 1.0,
            high_c: 2.0
        })
    );
    let text = render_plan(&daily, None, end, &z, Units::C);
    assert!(text.contains("1. hold 1d"), "{text}");
}

#[test]
fn a_step_lasts_one_second_to_a_year() {
    assert_eq!(step_secs("1s"), Ok(1));
    assert_eq!(step_secs("2w"), Ok(14 * 86_400));
    assert_eq!(step_secs("365d"), Ok(MAX_STEP_S));
    assert_eq!(step_secs("52w1d"), Ok(MAX_STEP_S));
    for (text, want) in [
        ("0s", "zero"),
        ("0d0h", "zero"),
        ("366d", "at most 365d"),
        ("53w", "at most 365d"),
        ("9999999999999999d", "at most 365d"),
        ("99999999999999999999d", "at most 365d"),
        ("36", "no unit after 36"),
    ] {
        let err = step_secs(text).unwrap_err();
        assert!(err.contains(want), "{text:?}: {err}");
    }
}
