//! Temperature profiles end to end (issue 13): the real binary against a w1
//! tree and a simulated plug, under a profile scaled to seconds.

use std::fs;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::bin;
use crate::util::service::eventually;
use crate::util::service::{sim, Rig};

const WAIT: Duration = Duration::from_secs(20);

fn profile_rig(profile: Value, celsius: f64) -> (Rig, kasa_thermostat::sim::SimPlug) {
    let heater = sim("heater", None);
    let rig = Rig::new(celsius).plug("heater", &heater);
    let state = rig.dir.path().join("lib/profile.json");
    let rig = rig
        .with("profile", profile)
        .with("profile_state_file", json!(state));
    (rig, heater)
}

fn low(r: &Value) -> f64 {
    r["low_limit"].as_f64().unwrap()
}

#[test]
fn the_heater_follows_a_moving_band_hold_ramp_hold() {
    // 21 °C all along: off under 18..20, on once the ramp's low passes 21.
    let profile = json!({"start": "now", "steps": [
        {"hold": "2s", "low": 18, "high": 20},
        {"ramp": "4s", "to_low": 24, "to_high": 26},
        {"hold": "1h", "low": 24, "high": 26}]});
    let (rig, heater) = profile_rig(profile, 21.0);
    let mut svc = rig.start();
    assert!(
        eventually(WAIT, || svc
            .readings()
            .last()
            .is_some_and(|r| low(r) >= 24.0)),
        "{}",
        svc.log()
    );
    assert!(eventually(WAIT, || heater.state().relay()), "{}", svc.log());
    let readings = svc.readings();
    let lows: Vec<f64> = readings.iter().map(low).collect();
    assert!(lows.first() == Some(&18.0), "{lows:?}");
    // The band moved through the ramp, never backwards.
    assert!(lows.windows(2).all(|w| w[1] >= w[0]), "{lows:?}");
    let middle = lows.iter().filter(|l| **l > 18.0 && **l < 24.0).count();
    assert!(middle >= 3, "ramp readings: {lows:?}");
    // The heater went on at the moving threshold: the first line that
    // wants it on has a low limit at or above the temperature.
    let first_on = readings
        .iter()
        .find(|r| r["heater"]["desired"] == json!(true))
        .unwrap();
    assert!(low(first_on) >= 21.0, "{first_on}");
    assert!(readings
        .iter()
        .take_while(|r| low(r) < 21.0)
        .all(|r| r["heater"]["desired"] != json!(true)));
    // The state file is rewritten just after the readings line (with an
    // fsync): wait for it rather than race it.
    assert!(
        eventually(WAIT, || svc.state()["profile"]["phase"] == "hold"),
        "{}",
        svc.state()
    );
    assert!(svc.stop().success());
}

#[test]
fn a_restart_in_the_middle_of_a_ramp_resumes_and_a_changed_profile_starts_over() {
    let ramp = json!({"start": "now", "steps": [
        {"hold": "1s", "low": 10, "high": 12},
        {"ramp": "60s", "to_low": 70, "to_high": 72}]});
    let (rig, _heater) = profile_rig(ramp.clone(), 5.0);
    let state_path = rig.dir.path().join("lib/profile.json");
    let mut svc = rig.start();
    assert!(
        eventually(WAIT, || svc.state()["profile"]["phase"] == "ramp"
            && svc.readings().last().is_some_and(|r| low(r) > 12.0)),
        "{}",
        svc.log()
    );
    let started: Value = serde_json::from_str(&fs::read_to_string(&state_path).unwrap()).unwrap();
    assert!(svc.stop().success());
    let first_run = svc.readings();
    let before = low(first_run.last().unwrap());
    // The same profile again: it resumes where it was, not from the start.
    let mut svc = rig.start();
    let restarted_at = Instant::now();
    assert!(
        eventually(WAIT, || svc.log().matches("resumed").count() >= 1),
        "{}",
        svc.log()
    );
    // Lines of the second run (the file keeps the first run's).
    assert!(eventually(WAIT, || svc.readings().len() > first_run.len() + 2));
    let after = svc.readings().iter().rev().map(low).next().unwrap();
    assert!(after >= before, "resumed at {after}, was {before}");
    let again: Value = serde_json::from_str(&fs::read_to_string(&state_path).unwrap()).unwrap();
    assert_eq!(again["start"], started["start"], "the start was kept");
    assert!(restarted_at.elapsed() < WAIT);
    assert!(svc.stop().success());
    let second_run = svc.readings().len();
    // A changed profile starts over (and says so).
    let changed = json!({"start": "now", "steps": [
        {"hold": "1s", "low": 11, "high": 13},
        {"ramp": "60s", "to_low": 70, "to_high": 72}]});
    let rig = rig.with("profile", changed);
    let mut svc = rig.start();
    assert!(
        eventually(WAIT, || svc.log().contains("changed")),
        "{}",
        svc.log()
    );
    assert!(eventually(WAIT, || {
        let readings = svc.readings();
        readings.len() > second_run
            && readings
                .last()
                .is_some_and(|r| low(r) >= 11.0 && low(r) < 14.0)
    }));
    let new: Value = serde_json::from_str(&fs::read_to_string(&state_path).unwrap()).unwrap();
    assert_ne!(new["start"], started["start"], "a new start");
    assert!(svc.stop().success());
}

#[test]
fn profile_show_lists_the_steps_and_check_config_says_the_limits_are_ignored() {
    let profile = json!({"start": "now", "after_end": "hold_last", "steps": [
        {"hold": "4d", "low": 17.5, "high": 18.5},
        {"ramp": "2d", "to_low": 20.5, "to_high": 21.5},
        {"hold": "2d", "low": 20.5, "high": 21.5},
        {"ramp": "1d", "to_low": 1.5, "to_high": 2.5}]});
    let (rig, _heater) = profile_rig(profile, 18.0);
    let path = rig.dir.path().join("config.json");
    fs::write(&path, rig.config.to_string()).unwrap();
    let out = bin()
        .args(["profile", "show", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "1. hold 4d",
        "2. ramp 2d",
        "3. hold 2d",
        "4. ramp 1d",
        "17.5..18.5",
        "1.5..2.5",
    ] {
        assert!(text.contains(want), "{want:?} in {text}");
    }
    let out = bin().args(["check-config"]).arg(&path).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("low_limit and high_limit are ignored"));
    // A bad step is named.
    let mut bad = rig.config.clone();
    bad["profile"]["steps"][1]["ramp"] = json!("2 days");
    fs::write(&path, bad.to_string()).unwrap();
    let out = bin().args(["check-config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("profile.steps[1].ramp"), "{err}");
    // `profile restart` writes a new start.
    fs::write(&path, rig.config.to_string()).unwrap();
    let out = bin()
        .args(["profile", "restart", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(rig.dir.path().join("lib/profile.json").exists());
}
