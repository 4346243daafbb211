//! Cascade control in the running service (issue 18): two DS18B20s on one
//! fake w1 bus, the chamber setpoint in the decisions and the data log, and
//! a chamber sensor going stale (hysteresis on the product sensor, alert
//! `chamber_sensor_stale`) and coming back.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::service::{eventually, sim, w1_text, Rig};

const WAIT: Duration = Duration::from_secs(20);
const CHAMBER_ID: &str = "28-01144f3a8caa";

/// Writes the chamber sensor's `w1_slave` (atomically).
fn set_chamber(root: &Path, text: &str) {
    let dir = root.join(CHAMBER_ID);
    fs::create_dir_all(&dir).unwrap();
    let tmp = dir.join(".w1_slave.tmp");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, dir.join("w1_slave")).unwrap();
}

/// A hook that appends each event's kind (with `+recovered`) to `file`.
fn hook(dir: &Path, file: &Path) -> String {
    let script = dir.join("hook.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$KASA_THERMOSTAT_EVENTS\" >> '{}'\n",
            file.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

fn kinds(file: &Path) -> Vec<String> {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .flat_map(|l| serde_json::from_str::<Vec<Value>>(l).unwrap())
        .map(|e| {
            let k = e["kind"].as_str().unwrap().to_string();
            if e["recovered"] == json!(true) {
                format!("{k}+recovered")
            } else {
                k
            }
        })
        .collect()
}

#[test]
fn two_w1_sensors_cascade_and_a_stale_chamber_falls_back_with_an_alert() {
    let cooler = sim("cooler", None);
    // Product 19.5 in a band of 18..20 (target 19): the PID asks for a
    // chamber at 16.5; the air reads 19.4, above the idle band: cool.
    let rig = Rig::new(19.5).plug("cooler", &cooler);
    set_chamber(&rig.w1.root, &w1_text(19.4));
    let got = rig.dir.path().join("events.jsonl");
    let cmd = hook(rig.dir.path(), &got);
    let state_file = rig.dir.path().join("lib/control.json");
    let mut sensor = rig.config["sensor"].clone();
    sensor["stale_after_s"] = json!(1.0);
    let rig = rig
        .with("mode", json!("cool"))
        .with("sensor", sensor)
        .with("chamber_sensor", json!({"id": CHAMBER_ID}))
        .with("control", json!({"algorithm": "cascade"}))
        .with("control_state_file", json!(state_file))
        .with("alerts", json!({"command": [cmd], "repeat_s": 3600}));
    let mut svc = rig.start();
    assert!(
        eventually(WAIT, || svc
            .log()
            .contains("decision: chamber setpoint 16.50 °C")),
        "{}\n{}",
        svc.log(),
        svc.stderr()
    );
    assert!(svc.log().contains(&format!("chamber sensor {CHAMBER_ID}")));
    assert!(eventually(WAIT, || cooler.state().relay()), "{}", svc.log());
    // What cascade learned is kept.
    assert!(eventually(WAIT, || state_file.exists()));
    let learned: Value = serde_json::from_str(&fs::read_to_string(&state_file).unwrap()).unwrap();
    assert_eq!(learned["cool_estimator"], 5.0);
    // Both sensors and the setpoint are in the data log.
    assert!(
        eventually(WAIT, || svc.readings().iter().any(|r| {
            r["chamber_temperature"] == json!(19.375) && r["chamber_setpoint"].is_number()
        })),
        "{:?}",
        svc.readings().last()
    );

    // The state file, and so `status`, shows both.
    assert!(eventually(WAIT, || svc.state()["chamber"]["setpoint"].is_number()));
    assert_eq!(svc.state()["chamber"]["temperature"], json!(19.375));
    let status = crate::util::bin()
        .args(["status", "--state-file"])
        .arg(svc.state_path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("chamber      19.38 °C, setpoint"), "{text}");

    // The chamber sensor fails: hysteresis on the product, logged, alerted.
    set_chamber(&rig.w1.root, "garbage\n");
    assert!(eventually(WAIT, || kinds(&got)
        .contains(&"chamber_sensor_stale".into())));
    assert!(
        svc.log().contains("hysteresis on the product sensor"),
        "{}",
        svc.log()
    );
    assert!(eventually(WAIT, || svc
        .log()
        .contains("between limits: cooler holds")));
    // The product is not held by the chamber: a product at the low limit
    // switches the cooler off under hysteresis.
    rig.w1.set(18.0);
    assert!(
        eventually(WAIT, || !cooler.state().relay()),
        "{}",
        svc.log()
    );
    // The chamber comes back: recovery alert, cascade again.
    set_chamber(&rig.w1.root, &w1_text(17.0));
    assert!(eventually(WAIT, || kinds(&got)
        .contains(&"chamber_sensor_stale+recovered".into())));
    assert!(eventually(WAIT, || svc
        .log()
        .contains("cascade control resumes")));
    assert!(svc.stop().success(), "{}", svc.stderr());
    // The product sensor never went stale: no fault state.
    assert!(
        !kinds(&got).contains(&"sensor_stale".into()),
        "{:?}",
        kinds(&got)
    );
}
