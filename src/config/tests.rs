//! Config parsing and bounds, as tables of (input, words the message must hold).

use super::*;

const HEATER: &str = r#""heater":{"host":"192.0.2.10"}"#;

fn err(text: &str) -> String {
    Config::from_json(text).unwrap_err().to_string()
}

#[test]
fn minimal_file_gets_every_default() {
    let c = Config::from_json(&format!("{{{HEATER}}}")).unwrap();
    assert_eq!(c.mode, Mode::Heat);
    assert_eq!(c.cycle, Duration::from_secs(10));
    assert_eq!(c.plug_timing, Timing::default());
    assert_eq!(c.state_file, Path::new("/run/kasa-thermostat/state.json"));
    let h = c.heater.unwrap();
    assert_eq!(h.target.port(), 9999);
    assert_eq!(h.target.transport, TransportKind::Auto);
    assert_eq!(h.deadman, Some(Duration::from_secs(120)));
    assert!(!h.fault_state);
}

#[test]
fn the_design_example_is_valid_and_round_trips() {
    let text = r#"{
      "units": "C", "mode": "heat", "low_limit": 18.0, "high_limit": 20.0,
      "cycle_s": 10, "rate_limit_s": 10, "switchover_delay_s": 300, "reconcile_s": 60,
      "alarm_low": null, "alarm_high": null,
      "sensor": { "backend": "w1", "id": "28-0316a2797aff", "w1_root": "/sys/bus/w1/devices",
        "gpio_chip": "/dev/gpiochip0", "gpio_line": 4, "resolution_bits": 12,
        "interval_s": 5, "offset": 0.0, "max_step": 5.0, "stale_after_s": 60 },
      "credentials": { "username": "me@example.com",
                       "password_file": "/etc/kasa-thermostat/tplink-password" },
      "heater": { "host": "192.168.1.50", "protocol": "auto", "port": 9999,
          "child_id": null, "outlet": null,
          "min_on_s": 0, "min_off_s": 0, "deadman_s": 120,
          "fault_state": "off", "shutdown_state": "off" },
      "cooler": null,
      "plug_timing": { "connect_s": 3, "before_s": 6, "after_s": 5, "spacing_s": 0.5,
                       "retry_sleeps_s": [0, 1, 2] },
      "log_dir": "/var/log/kasa-thermostat", "log_level": "info",
      "state_file": "/run/kasa-thermostat/state.json"
    }"#;
    let c = Config::from_json(text).unwrap();
    assert_eq!(c.sensor.options.id.as_deref(), Some("28-0316a2797aff"));
    // The effective config round-trips.
    let again = Config::from_json(&serde_json::to_string(c.effective()).unwrap()).unwrap();
    assert_eq!(again, c);
}

#[test]
fn each_bad_value_names_its_key() {
    // (config body after the heater, words the message must contain)
    let cases: &[(&str, &[&str])] = &[
        (r#""colour":1"#, &["unknown field `colour`"]),
        (r#""sensor":{"intervl_s":1}"#, &["sensor", "intervl_s"]),
        (r#""units":"K""#, &["units", "K"]),
        (r#""mode":"warm""#, &["mode", "warm"]),
        (r#""low_limit":21"#, &["low_limit", "21", "high_limit"]),
        (r#""cycle_s":0"#, &["cycle_s", "0.5 to 3600"]),
        (r#""cycle_s":0.000001"#, &["cycle_s", "0.5 to 3600"]),
        (r#""cycle_s":4000"#, &["cycle_s", "4000"]),
        (r#""rate_limit_s":-1"#, &["rate_limit_s", "0 to 3600"]),
        (r#""reconcile_s":1e20"#, &["reconcile_s", "1 to 86400"]),
        (r#""switchover_delay_s":1e20"#, &["switchover_delay_s"]),
        (r#""rate_limit_s":1e20"#, &["rate_limit_s"]),
        (r#""alarm_low":30,"alarm_high":10"#, &["alarm_low"]),
        (r#""high_limit":300"#, &["high_limit", "300"]),
        (
            r#""sensor":{"resolution_bits":8}"#,
            &["sensor.resolution_bits", "8"],
        ),
        (
            r#""sensor":{"stale_after_s":5}"#,
            &["sensor.stale_after_s", "10"],
        ),
        (
            r#""sensor":{"stale_after_s":1e20}"#,
            &["sensor.stale_after_s", "86400"],
        ),
        (
            r#""sensor":{"interval_s":0.1}"#,
            &["sensor.interval_s", "0.75", "12 bits"],
        ),
        (
            r#""sensor":{"interval_s":1e20}"#,
            &["sensor.interval_s", "3600"],
        ),
        (r#""sensor":{"max_step":0}"#, &["sensor.max_step"]),
        (r#""mode":"cool""#, &["mode", "cooler"]),
        (r#""log_level":"loud""#, &["log_level", "loud"]),
        (
            r#""plug_timing":{"retry_sleeps_s":[]}"#,
            &["plug_timing.retry_sleeps_s"],
        ),
        (
            r#""plug_timing":{"retry_sleeps_s":[0,-1]}"#,
            &["retry_sleeps_s[1]"],
        ),
        (
            r#""plug_timing":{"connect_s":0}"#,
            &["plug_timing.connect_s", "0.01 to 60"],
        ),
        (
            r#""heater":{"host":"bad host!"}"#,
            &["heater.host", "bad host!"],
        ),
        (r#""heater":{"host":"10.0.0.5","port":0}"#, &["heater.port"]),
        (
            r#""heater":{"host":"h","protocol":"zigbee"}"#,
            &["heater.protocol", "zigbee", "klap"],
        ),
        (
            r#""heater":{"host":"h","outlet":1,"child_id":"01"}"#,
            &["heater.outlet"],
        ),
        (
            r#""heater":{"host":"h","deadman_s":5}"#,
            &["heater.deadman_s", "30"],
        ),
        (
            r#""heater":{"host":"h","deadman_s":1e20}"#,
            &["heater.deadman_s", "day"],
        ),
        (
            r#""heater":{"host":"h","min_on_s":-5}"#,
            &["heater.min_on_s"],
        ),
        (
            r#""heater":{"host":"h","min_on_s":1e20}"#,
            &["heater.min_on_s", "86400"],
        ),
        (
            r#""heater":{"host":"h","min_off_s":1e20}"#,
            &["heater.min_off_s"],
        ),
        (
            r#""heater":{"host":"h","fault_state":"maybe"}"#,
            &["heater.fault_state"],
        ),
        (r#""heater":{"port":9999}"#, &["heater", "host"]),
        (
            r#""heater":{"host":"a","fault_state":"on"},"cooler":{"host":"b","fault_state":"on"}"#,
            &["cooler.fault_state"],
        ),
        (
            r#""mode":"heat_cool","cooler":{"host":"192.0.2.10"}"#,
            &["cooler.host", "heater"],
        ),
        (
            r#""credentials":{"username":"","password_file":"/x"}"#,
            &["credentials.username"],
        ),
        (
            r#""credentials":{"username":"a@b","password":"x"}"#,
            &["credentials", "password"],
        ),
    ];
    for (body, words) in cases {
        let text = if body.starts_with(r#""heater""#) {
            format!("{{{body}}}")
        } else {
            format!("{{{HEATER},{body}}}")
        };
        let msg = err(&text);
        for w in *words {
            assert!(msg.contains(w), "{body}: {msg:?} lacks {w:?}");
        }
    }
}

#[test]
fn a_large_cycle_is_blamed_on_cycle_s_not_on_the_deadman() {
    // cycle_s too large is its own error, not "deadman_s too short".
    let msg = err(&format!(r#"{{{HEATER},"cycle_s":7200}}"#));
    assert!(msg.contains("`cycle_s`"), "{msg}");
}

#[test]
fn the_json_itself_must_be_one_object() {
    let cases: &[(&str, &str)] = &[
        (r#"{"mode":"off"} xyz"#, "text after the JSON object"),
        (
            r#"{"mode":"off"}{"mode":"heat"}"#,
            "text after the JSON object",
        ),
        (r#"["C","off"]"#, "one JSON object"),
        ("", "empty"),
        (r#"{"mode":"off","low_limit":NaN}"#, "low_limit"),
        (r#"{"mode":"off","low_limit":1e999}"#, "low_limit"),
        (r#"{"mode":"off","mode":"heat"}"#, "duplicate field"),
    ];
    for (text, want) in cases {
        let msg = err(text);
        assert!(msg.contains(want), "{text}: {msg:?} lacks {want:?}");
    }
    // A byte-order mark is skipped.
    assert!(Config::from_json("\u{feff}{\"mode\":\"off\"}").is_ok());
}

#[test]
fn fahrenheit_converts_limits_and_deltas() {
    let c = Config::from_json(&format!(
        r#"{{{HEATER},"units":"F","low_limit":64.4,"high_limit":68,"sensor":{{"max_step":9}}}}"#
    ))
    .unwrap();
    assert!((c.low_c - 18.0).abs() < 1e-9);
    assert!((c.high_c - 20.0).abs() < 1e-9);
    assert!((c.sensor.max_step_c - 5.0).abs() < 1e-9);
    assert!(Config::from_json(&format!(
        r#"{{{HEATER},"units":"F","low_limit":20,"high_limit":30}}"#
    ))
    .is_ok());
    assert!(err(&format!(
        r#"{{{HEATER},"units":"F","low_limit":-80,"high_limit":30}}"#
    ))
    .contains("°F"));
}

#[test]
fn load_names_the_file_and_refuses_what_is_not_a_regular_file() {
    let msg = crate::error::chain(&Config::load(Path::new("/nonexistent/kasa.json")).unwrap_err());
    assert!(msg.contains("/nonexistent/kasa.json"), "{msg}");
    let msg = crate::error::chain(&Config::load(Path::new("/dev/zero")).unwrap_err());
    assert!(
        msg.contains("/dev/zero") && msg.contains("character device"),
        "{msg}"
    );
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    std::fs::write(&big, vec![b' '; MAX_CONFIG_BYTES as usize + 1]).unwrap();
    let msg = crate::error::chain(&Config::load(&big).unwrap_err());
    assert!(msg.contains("larger than 1048576 bytes"), "{msg}");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"cycle_s": -1}"#).unwrap();
    let msg = Config::load(&bad).unwrap_err().to_string();
    assert!(msg.contains("bad.json") && msg.contains("cycle_s"), "{msg}");
}

#[test]
fn paths_are_checked_for_what_they_must_be() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    let cfg = |log: &Path, state: &Path| {
        Config::from_json(
            &serde_json::json!({"mode": "off", "log_dir": log, "state_file": state}).to_string(),
        )
        .unwrap()
    };
    let ok = cfg(&dir.path().join("log"), &dir.path().join("s.json"));
    ok.check_paths().unwrap();
    let msg = cfg(&file, &dir.path().join("s.json"))
        .check_paths()
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("log_dir") && msg.contains("not a directory"),
        "{msg}"
    );
    let msg = cfg(&dir.path().join("log"), dir.path())
        .check_paths()
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("state_file") && msg.contains("not a regular file"),
        "{msg}"
    );
}

#[test]
fn mqtt_gets_its_defaults_from_the_host_name() {
    let c = Config::from_json(&format!(r#"{{{HEATER},"mqtt":{{"host":"broker.lan"}}}}"#)).unwrap();
    let m = c.mqtt.clone().unwrap();
    let host = mqtt_hostname();
    assert_eq!(m.port, 1883);
    assert_eq!(m.client_id, format!("kasa-thermostat-{host}"));
    assert_eq!(m.topic_prefix, format!("kasa-thermostat/{host}"));
    assert_eq!(m.discovery_prefix, "homeassistant");
    assert_eq!(m.publish, Duration::from_secs(30));
    assert_eq!(m.password().unwrap(), None);
    // check-config prints the defaults as they came out here, and they round-trip.
    let printed = c.effective().mqtt.clone().unwrap();
    assert_eq!(printed.client_id, Some(m.client_id.clone()));
    let again = Config::from_json(&serde_json::to_string(c.effective()).unwrap()).unwrap();
    assert_eq!(again, c);
    assert!(mqtt_hostname()
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
}

#[test]
fn each_bad_mqtt_value_names_its_key() {
    let cases: &[(&str, &[&str])] = &[
        (r#"{"port":1883}"#, &["mqtt", "host"]),
        (r#"{"host":"bad host"}"#, &["mqtt.host", "bad host"]),
        (r#"{"host":"b","port":0}"#, &["mqtt.port", "1883"]),
        (r#"{"host":"b","port":70000}"#, &["mqtt.port"]),
        (
            r#"{"host":"b","password_file":"/p"}"#,
            &["mqtt.password_file", "mqtt.username"],
        ),
        (r#"{"host":"b","username":""}"#, &["mqtt.username"]),
        (
            r#"{"host":"b","client_id":"a b"}"#,
            &["mqtt.client_id", "a b"],
        ),
        (
            r#"{"host":"b","topic_prefix":"a/#"}"#,
            &["mqtt.topic_prefix", "wildcard"],
        ),
        (
            r#"{"host":"b","topic_prefix":"a/"}"#,
            &["mqtt.topic_prefix", "empty level"],
        ),
        (
            r#"{"host":"b","topic_prefix":""}"#,
            &["mqtt.topic_prefix", "empty"],
        ),
        (
            r#"{"host":"b","discovery_prefix":"/ha"}"#,
            &["mqtt.discovery_prefix"],
        ),
        (
            r#"{"host":"b","publish_s":0.5}"#,
            &["mqtt.publish_s", "1 to 3600"],
        ),
        (r#"{"host":"b","publish_s":1e9}"#, &["mqtt.publish_s"]),
        (r#"{"host":"b","qos":1}"#, &["mqtt", "unknown field `qos`"]),
    ];
    for (mqtt, words) in cases {
        let msg = err(&format!(r#"{{{HEATER},"mqtt":{mqtt}}}"#));
        for w in *words {
            assert!(msg.contains(w), "{mqtt}: {msg:?} lacks {w:?}");
        }
    }
}

#[test]
fn the_mqtt_password_is_read_from_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "s3cret\n").unwrap();
    let text = format!(
        r#"{{{HEATER},"mqtt":{{"host":"b","username":"u","password_file":{:?}}}}}"#,
        file.to_str().unwrap()
    );
    let c = Config::from_json(&text).unwrap();
    assert_eq!(
        c.mqtt.as_ref().unwrap().password().unwrap().as_deref(),
        Some("s3cret")
    );
    // The printed config names the file, never the password.
    let printed = serde_json::to_string(c.effective()).unwrap();
    assert!(!printed.contains("s3cret"));
    std::fs::write(&file, "").unwrap();
    let e = c.mqtt.unwrap().password().unwrap_err().to_string();
    assert!(
        e.contains("mqtt.password_file") && e.contains("empty"),
        "{e}"
    );
}

/// A profile step takes the one duration grammar (issue 16): weeks too, and
/// combinations from the largest unit down.
#[test]
fn a_profile_step_of_2w_is_accepted() {
    let c = Config::from_json(&format!(
        r#"{{{HEATER}, "profile": {{"steps": [
            {{"hold": "2w", "low": 18, "high": 20}},
            {{"ramp": "1w3d", "to_low": 20, "to_high": 22}},
            {{"hold": "1d12h", "low": 20, "high": 22}}]}}}}"#
    ))
    .unwrap();
    let steps: Vec<u64> = c.profile.unwrap().steps().iter().map(|s| s.secs).collect();
    assert_eq!(steps, [14 * 86_400, 10 * 86_400, 36 * 3600]);
    let e = err(&format!(
        r#"{{{HEATER}, "profile": {{"steps": [{{"hold": "2w1w", "low": 18, "high": 20}}]}}}}"#
    ));
    assert!(
        e.contains("profile.steps[0].hold") && e.contains("largest to the smallest"),
        "{e}"
    );
}

/// The `control` and `chamber_sensor` sections (`control.rs`), read through
/// the whole file: here rather than in `control.rs`, which must not use
/// `Config` (that would be an import circle through `mod.rs`).
mod control_sections {
    use crate::config::Config;
    use crate::control::Algorithm;

    const BASE: &str =
        r#""mode":"cool","cooler":{"host":"127.0.0.1"},"sensor":{"id":"28-000000000001"}"#;

    fn cfg(extra: &str) -> Result<Config, String> {
        Config::from_json(&format!("{{{BASE}{extra}}}")).map_err(|e| e.to_string())
    }

    #[test]
    fn cascade_with_a_chamber_sensor_gets_brewpi_defaults() {
        let c =
            cfg(r#","control":{"algorithm":"cascade"},"chamber_sensor":{"id":"28-000000000002"}"#)
                .unwrap();
        let Algorithm::Cascade(s) = c.algorithm else {
            panic!("{:?}", c.algorithm)
        };
        assert_eq!(
            (s.kp, s.ki, s.kd, s.max_offset_c, s.idle_band_c),
            (5.0, 0.25, -1.5, 10.0, 1.0)
        );
        assert_eq!(c.chamber.as_ref().unwrap().id, "28-000000000002");
        let printed = serde_json::to_value(c.effective()).unwrap();
        assert_eq!(printed["control"]["idle_band"], 1.0);
        assert_eq!(
            printed["control_state_file"],
            "/var/lib/kasa-thermostat/control.json"
        );
    }

    #[test]
    fn fahrenheit_defaults_and_values_are_differences() {
        let c = cfg(r#","units":"F","low_limit":64,"high_limit":68,"control":{"algorithm":"cascade","idle_band":0.9},
                      "chamber_sensor":{"id":"28-000000000002"}"#)
        .unwrap();
        let Algorithm::Cascade(s) = c.algorithm else {
            panic!()
        };
        assert!((s.idle_band_c - 0.5).abs() < 1e-9 && (s.max_offset_c - 10.0).abs() < 1e-9);
        let printed = serde_json::to_value(c.effective()).unwrap();
        assert_eq!(printed["control"]["max_offset"], 18.0);
        assert_eq!(printed["control"]["idle_band"], 0.9);
    }

    #[test]
    fn bad_control_values_name_the_key() {
        for (extra, key) in [
            (r#","control":{"algorithm":"cascade"}"#, "control.algorithm"),
            (r#","control":{"algorithm":"pid"}"#, "algorithm"),
            (r#","control":{"kp":-1}"#, "control.kp"),
            (r#","control":{"idle_band":9}"#, "control.idle_band"),
            (r#","control":{"max_offset":0}"#, "control.max_offset"),
            (r#","control":{"dead_time_s":1e9}"#, "control.dead_time_s"),
            (r#","control":{"kp2":1}"#, "kp2"),
            (
                r#","chamber_sensor":{"id":"28-000000000001"}"#,
                "chamber_sensor.id",
            ),
            (
                r#","chamber_sensor":{"id":"28-000000000002","offset":30}"#,
                "chamber_sensor.offset",
            ),
            (
                r#","chamber_sensor":{"id":"28-000000000002","colour":1}"#,
                "colour",
            ),
        ] {
            let e = cfg(extra).unwrap_err();
            assert!(e.contains(key), "{extra}: {e}");
        }
        let e = Config::from_json(
            r#"{"mode":"cool","cooler":{"host":"127.0.0.1"},"chamber_sensor":{"id":"28-000000000002"}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sensor.id"), "{e}");
    }
}
