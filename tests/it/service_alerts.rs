//! Alerts end to end (issue 12): the real binary with a hook script that
//! records every event, and a hook that hangs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::service::{eventually, sim, Rig};

const WAIT: Duration = Duration::from_secs(20);

/// A hook that appends `KASA_THERMOSTAT_EVENTS` (one JSON array per run)
/// to `file`, after sleeping `sleep` seconds.
fn hook(dir: &Path, file: &Path, sleep: u32) -> String {
    let script = dir.join(format!("hook-{sleep}.sh"));
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nsleep {sleep}\nprintf '%s\\n' \"$KASA_THERMOSTAT_EVENTS\" >> '{}'\n",
            file.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

/// Every event the hook received, in order.
fn events(file: &Path) -> Vec<Value> {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .flat_map(|l| {
            serde_json::from_str::<Vec<Value>>(l)
                .unwrap_or_else(|e| panic!("{e}: {l}"))
                .into_iter()
        })
        .collect()
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let k = e["kind"].as_str().unwrap().to_string();
            if e["recovered"] == json!(true) && !k.ends_with("recovered") {
                format!("{k}+recovered")
            } else {
                k
            }
        })
        .collect()
}

#[test]
fn alarms_staleness_and_the_service_reach_the_hook_once_per_repeat() {
    let heater = sim("heater", None);
    let rig = Rig::new(19.0).plug("heater", &heater);
    let got = rig.dir.path().join("events.jsonl");
    let cmd = hook(rig.dir.path(), &got, 0);
    let rig = rig
        .with("alarm_high", json!(25.0))
        .with("alerts", json!({"command": [cmd], "repeat_s": 3600}));
    let mut svc = rig.start();
    assert!(eventually(WAIT, || kinds(&events(&got))
        .contains(&"service_started".into())));
    // Too hot: alarm_high, reported every cycle, sent once (repeat_s 3600).
    rig.w1.set(30.0);
    assert!(eventually(WAIT, || kinds(&events(&got)).contains(&"alarm_high".into())));
    let cycles_before = svc.readings().len();
    assert!(eventually(WAIT, || svc.readings().len() > cycles_before + 6));
    // Back to normal: the recovery is never lost.
    rig.w1.set(19.0);
    assert!(eventually(WAIT, || kinds(&events(&got))
        .contains(&"alarm_high+recovered".into())));
    // The sensor goes stale, then recovers.
    rig.w1.write_raw("garbage\n");
    assert!(eventually(WAIT, || kinds(&events(&got))
        .contains(&"sensor_stale".into())));
    rig.w1.set(19.0);
    assert!(eventually(WAIT, || kinds(&events(&got))
        .contains(&"sensor_recovered".into())));
    assert!(svc.stop().success());
    assert!(eventually(WAIT, || kinds(&events(&got))
        .contains(&"service_stopping".into())));
    let k = kinds(&events(&got));
    let count = |name: &str| k.iter().filter(|x| *x == name).count();
    assert_eq!(count("alarm_high"), 1, "{k:?}");
    assert_eq!(count("alarm_high+recovered"), 1, "{k:?}");
    assert_eq!(count("sensor_stale"), 1, "{k:?}");
    assert_eq!(count("service_started"), 1, "{k:?}");
    // The JSON carries what a recipe needs.
    let alarm = events(&got)
        .into_iter()
        .find(|e| e["kind"] == "alarm_high")
        .unwrap();
    assert_eq!(alarm["units"], "C");
    assert!(alarm["temperature"].as_f64().unwrap() >= 29.0, "{alarm}");
    assert!(alarm["message"].as_str().unwrap().contains("alarm_high"));
}

#[test]
fn a_hook_that_hangs_never_delays_a_control_cycle() {
    let heater = sim("heater", None);
    let rig = Rig::new(19.0).plug("heater", &heater);
    let got = rig.dir.path().join("events.jsonl");
    let cmd = hook(rig.dir.path(), &got, 120);
    // The hook hangs for longer than this test waits for anything (its
    // timeout is 60 s): a control loop that waited on it would stop.
    let rig = rig.with("alarm_high", json!(25.0)).with(
        "alerts",
        json!({"command": [cmd], "repeat_s": 1, "timeout_s": 60}),
    );
    let mut svc = rig.start();
    assert!(eventually(WAIT, || svc.readings().len() > 2));
    rig.w1.set(30.0);
    // The alarm goes to the hanging hook; the cycles go on regardless.
    assert!(eventually(WAIT, || svc
        .readings()
        .iter()
        .any(|r| r["alarm"] == "high")));
    let start = svc.readings().len();
    assert!(
        eventually(WAIT, || svc.readings().len() >= start + 10),
        "the control loop stalled behind the hook"
    );
    let status = svc.stop();
    assert!(status.success(), "{status:?}");
    // The hanging run was killed at shutdown before it could write.
    assert!(events(&got).is_empty());
}
