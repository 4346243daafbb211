//! The data log lines, the state file and `status`.

use super::*;
use crate::control::{Band, Mode, PlugSnapshot};
use crate::msg::{FailureKind, PlugCommand, PlugFailure, PlugState, Role};
use serde_json::Value;

fn snap() -> Snapshot {
    Snapshot {
        mode: Mode::Heat,
        limits: Band {
            low_c: 18.0,
            high_c: 20.0,
        },
        temperature_c: Some(18.0),
        reading_age: Some(Duration::from_secs(2)),
        reason: "18.00 °C <= 18.00 °C: heater on".into(),
        alarm: None,
        sensor_stale: false,
        sensor_fault: None,
        plugs: vec![PlugSnapshot {
            role: Role::Heater,
            address: "127.0.0.1:9".into(),
            desired: Some(true),
            state: PlugState::Unknown,
            switching: None,
            phase: "idle",
            last_error: Some("127.0.0.1:9: connection refused".into()),
            state_for: None,
            deadman: DeadmanStatus::Armed {
                kind: crate::msg::DeadmanKind::Countdown { secs: 120 },
                remaining: Duration::from_secs(95),
            },
        }],
        shutting_down: false,
        chamber: Default::default(),
    }
}

#[test]
fn reading_line_is_one_json_object_in_the_configured_units() {
    let line = reading_line(&snap(), SystemTime::UNIX_EPOCH, Units::F);
    assert!(!line.contains('\n'));
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["time"], "1970-01-01T00:00:00.000Z");
    assert_eq!(v["temperature"], 64.4);
    assert_eq!(v["units"], "F");
    assert_eq!(v["low_limit"], 64.4);
    assert_eq!(v["high_limit"], 68.0);
    assert_eq!(v["heater"]["desired"], true);
    assert_eq!(v["heater"]["verified"], Value::Null, "unknown is not off");
    assert_eq!(v["heater"]["state"], "unknown");
    assert!(v["reason"].as_str().unwrap().contains("heater on"));
}

#[test]
fn a_plug_event_line_has_every_field_report_reads() {
    let o = PlugOutcome {
        role: Role::Cooler,
        command: PlugCommand::on(None),
        completion: Completion::Failed(PlugFailure {
            kind: FailureKind::Timeout,
            permanent: false,
            message: "10.0.0.6:9999: timed out".into(),
        }),
        state: Some(PlugState::Unknown),
        deadman: None,
        attempts: 3,
        attempt_times: vec![Duration::from_millis(6000), Duration::from_micros(1500)],
        elapsed: Duration::from_millis(9001),
        rssi: Some(-61),
    };
    let v: Value = serde_json::from_str(&event_line(
        &o,
        "10.0.0.6:9999",
        false,
        SystemTime::UNIX_EPOCH,
    ))
    .unwrap();
    assert_eq!(v["role"], "cooler");
    assert_eq!(v["action"], "on");
    assert_eq!(v["outcome"], "failed");
    assert_eq!(v["state"], "unknown");
    assert_eq!(v["attempt_ms"], serde_json::json!([6000.0, 1.5]));
    assert_eq!(v["duration_ms"], 9001.0);
    assert_eq!(v["rssi"], -61);
    assert_eq!(v["error_kind"], "timeout");
    assert_eq!(v["corrected"], false);
}

/// The lines keep the keys and value shapes that earlier versions wrote
/// (with `json!`, keys in alphabetical order): the same keys, the same
/// values, now with `time` first.
#[test]
fn the_lines_keep_the_keys_and_shapes_of_earlier_versions() {
    let line = reading_line(&snap(), SystemTime::UNIX_EPOCH, Units::F);
    let old = serde_json::json!({
        "time": "1970-01-01T00:00:00.000Z", "temperature": 64.4, "units": "F",
        "mode": "heat", "low_limit": 64.4, "high_limit": 68.0,
        "reason": "18.00 °C <= 18.00 °C: heater on", "alarm": null, "sensor_stale": false,
        "heater": {"desired": true, "verified": null, "state": "unknown"},
    });
    assert_eq!(serde_json::from_str::<Value>(&line).unwrap(), old);
    assert!(
        line.starts_with(r#"{"time":"1970-01-01T00:00:00.000Z","#),
        "{line}"
    );
    // And what the writer writes, the reader reads back whole.
    let back = crate::history::parse_reading(&line).unwrap();
    assert_eq!(back.heater.unwrap().state(), PlugState::Unknown);
    assert_eq!(back.temperature, Some(64.4));
    let old_line = old.to_string();
    assert!(old_line.starts_with(r#"{"alarm":null,"#), "{old_line}");
    assert_eq!(crate::history::parse_reading(&old_line).unwrap(), back);
}

#[test]
fn status_shows_what_a_person_needs() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_json(
        &serde_json::json!({
            "heater": {"host": "127.0.0.1", "port": 9},
            "log_dir": dir.path().join("log"),
            "state_file": dir.path().join("run/state.json"),
        })
        .to_string(),
    )
    .unwrap();
    let mut out = Outputs::open(&config).unwrap();
    let now = SystemTime::now();
    out.write(&snap(), now, None);
    out.write(&snap(), now, None);
    let lines = fs::read_to_string(config.log_dir.join(READINGS_FILE)).unwrap();
    assert_eq!(lines.lines().count(), 2);
    let state = StateFile::read(&config.state_file).unwrap();
    assert_eq!(state.plugs["heater"].host, "127.0.0.1:9");
    let text = status::render(&state, &config.state_file, now + Duration::from_secs(3));
    for want in [
        "18.00 °C (read 2 s ago)",
        "heater       UNKNOWN (counted as on) (wanted on)  at 127.0.0.1:9",
        "dead-man armed (off within 1 min 35 s)",
        "last error: 127.0.0.1:9: connection refused",
        "alarms       none",
        "heater on",
        "3 s ago",
    ] {
        assert!(text.contains(want), "{want:?} missing in:\n{text}");
    }
    let old = status::render(&state, &config.state_file, now + Duration::from_secs(600));
    assert!(old.contains("NOT UPDATING"), "{old}");
}

#[test]
fn damaged_or_foreign_state_files_say_what_is_wrong() {
    let good = serde_json::to_value(state(&snap(), SystemTime::now(), Units::C, None)).unwrap();
    let cases: Vec<(Value, &str)> = vec![
        (serde_json::json!({"hello": 1}), "missing field"),
        (
            {
                let mut v = good.clone();
                v["reading_age_s"] = serde_json::json!(-1);
                v
            },
            "reading_age_s",
        ),
        (
            {
                let mut v = good.clone();
                v["plugs"]["heater"]["state"] = serde_json::json!("sideways");
                v
            },
            "plugs.heater.state",
        ),
        (
            {
                let mut v = good.clone();
                v["mode"] = serde_json::json!("turbo");
                v
            },
            "turbo",
        ),
    ];
    for (v, want) in cases {
        let e = StateFile::parse(&v.to_string()).unwrap_err();
        assert!(e.contains(want), "{e:?} lacks {want:?}");
    }
    assert!(StateFile::parse("not json").is_err());
    StateFile::parse(&good.to_string()).unwrap();
}

#[test]
fn an_unusable_log_dir_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    fs::write(&file, "x").unwrap();
    let config = Config::from_json(
        &serde_json::json!({
            "heater": {"host": "127.0.0.1"},
            "log_dir": file.join("logs"),
            "state_file": dir.path().join("state.json"),
        })
        .to_string(),
    )
    .unwrap();
    let msg = crate::error::chain(&Outputs::open(&config).err().unwrap());
    assert!(
        msg.contains("plain-file") && msg.contains("log_dir"),
        "{msg}"
    );
}

#[test]
fn atomic_write_replaces_whole_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.json");
    state_file::write_atomic(&p, "one").unwrap();
    state_file::write_atomic(&p, "two").unwrap();
    assert_eq!(fs::read_to_string(&p).unwrap(), "two");
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp file left"
    );
}
