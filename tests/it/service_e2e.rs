//! The whole service, end to end: the real binary reads a directory shaped
//! like /sys/bus/w1 and switches simulated plugs on 127.0.0.1, with every
//! duration scaled down (a 0.2 s cycle).

mod util;

use std::fs;
use std::time::{Duration, Instant};

use kasa_thermostat::kasa::sim::Fault;
use kasa_thermostat::sensor::w1::format_w1_slave;
use serde_json::json;
use util::service::*;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn heats_below_low_and_stops_at_high_with_logs_state_and_status() {
    let heater = sim("heater", None);
    let rig = Rig::new(19.0).plug("heater", &heater);
    let mut svc = rig.start();
    let h = heater.state();

    assert!(eventually(WAIT, || svc.readings().len() >= 3), "cycles run");
    assert!(!h.relay(), "between the limits it holds off");
    rig.w1.set(17.5);
    assert!(eventually(WAIT, || h.relay()), "on at <= low_limit");
    rig.w1.set(19.5);
    let holding = |r: &serde_json::Value| {
        r["temperature"] == 19.5 && r["reason"].as_str().unwrap().contains("heater holds on")
    };
    assert!(eventually(WAIT, || svc.readings().iter().any(holding)));
    assert!(h.relay(), "holds on between limits");
    rig.w1.set(20.0);
    assert!(eventually(WAIT, || !h.relay()), "off at >= high_limit");

    // The data log: one object per cycle, with the decision's reason.
    let readings = svc.readings();
    let reason = |r: &serde_json::Value| r["reason"].as_str().unwrap().to_string();
    assert!(readings.iter().any(|r| r["heater"]["verified"] == true));
    assert!(readings
        .iter()
        .any(|r| r["heater"]["desired"] == true
            && reason(r).contains("17.50 °C <= 18.00 °C: heater on")));
    assert!(readings
        .iter()
        .all(|r| r["time"].is_string() && r["mode"] == "heat"));
    // The state file and `status`.
    assert!(eventually(WAIT, || svc.state()["plugs"]["heater"]
        ["verified"]
        == false));
    assert_eq!(svc.state()["temperature"], 20.0);
    let out = bin()
        .args(["status", "--state-file"])
        .arg(rig.dir.path().join("lib/state.json"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("20.00 °C") && text.contains(&format!("127.0.0.1:{}", heater.addr().port())),
        "{text}"
    );

    assert!(svc.stop().success());
    let log = svc.log();
    assert!(log.contains("first valid reading"), "{log}");
    assert!(log.contains("shutdown: every plug verified"), "{log}");
    assert!(
        svc.errors_log().is_empty(),
        "no plug failures: {}",
        svc.errors_log()
    );
}

#[test]
fn shutdown_puts_plugs_in_their_shutdown_state_and_exits_zero() {
    let (heater, cooler) = (sim("heater", None), sim("cooler", None));
    let mut rig = Rig::new(10.0)
        .with("mode", json!("heat_cool"))
        .plug("heater", &heater)
        .plug("cooler", &cooler);
    rig.config["cooler"]["shutdown_state"] = json!("on");
    let mut svc = rig.start();
    assert!(eventually(WAIT, || heater.state().relay()));
    let status = svc.stop();
    assert!(status.success(), "{status:?}\n{}", svc.log());
    assert!(!heater.state().relay(), "heater off at shutdown");
    assert!(cooler.state().relay(), "cooler's shutdown_state is on");
    assert_eq!(svc.state()["shutting_down"], true);
}

#[test]
fn a_flaky_plug_succeeds_on_a_later_cycle() {
    // 4 dropped requests: the start read's 3 attempts and the first switch's
    // first attempt fail; everything after works.
    let heater = sim("heater", Some(Fault::Flaky(4)));
    let rig = Rig::new(15.0).plug("heater", &heater);
    let mut svc = rig.start();
    assert!(eventually(WAIT, || heater.state().relay()), "{}", svc.log());
    let errors = svc.errors_log();
    assert!(
        errors.contains("heater") && errors.contains(&heater.addr().port().to_string()),
        "the failed start read is in kasa_errors.log: {errors:?}"
    );
    assert!(svc.stop().success());
}

#[test]
fn a_stuck_plug_leaves_an_error_in_kasa_errors_log() {
    let heater = sim("heater", Some(Fault::Stuck));
    let rig = Rig::new(15.0).plug("heater", &heater);
    let mut svc = rig.start();
    let addr = format!("127.0.0.1:{}", heater.addr().port());
    assert!(eventually(WAIT, || svc.errors_log().contains("heater")));
    let errors = svc.errors_log();
    assert!(errors.contains(&addr), "{errors}");
    assert!(errors.contains("on"), "names the action: {errors}");
    assert!(!heater.state().relay(), "a stuck relay stays off");
    // The state file shows the last error to a person.
    assert!(eventually(WAIT, || svc.state()["plugs"]["heater"]
        ["last_error"]
        .is_string()));
    svc.stop();
}

#[test]
fn a_dead_cooler_does_not_stop_the_heater() {
    let heater = sim("heater", None);
    let cooler = sim("cooler", Some(Fault::Blackhole));
    let rig = Rig::new(15.0)
        .with("mode", json!("heat_cool"))
        .plug("heater", &heater)
        .plug("cooler", &cooler);
    let mut svc = rig.start();
    assert!(eventually(WAIT, || heater.state().relay()), "{}", svc.log());
    assert!(eventually(WAIT, || svc.errors_log().contains("cooler")));
    svc.stop();
}

#[test]
fn stale_sensor_switches_off_then_recovers() {
    let heater = sim("heater", None);
    let rig = Rig::new(15.0).plug("heater", &heater);
    let mut svc = rig.start();
    let h = heater.state();
    assert!(eventually(WAIT, || h.relay()));
    rig.w1.write_raw(""); // the kernel's failed read
    assert!(eventually(WAIT, || !h.relay()), "stale -> fault_state off");
    assert!(eventually(WAIT, || svc.state()["sensor_stale"] == true));
    assert!(svc.log().contains("ALARM sensor"), "{}", svc.log());
    rig.w1.set(15.0);
    assert!(eventually(WAIT, || h.relay()), "control resumes");
    assert!(eventually(WAIT, || svc.log().contains("sensor recovered")));
    svc.stop();
}

#[test]
fn a_power_on_85_is_never_believed() {
    let cooler = sim("cooler", None);
    let rig = Rig::new(19.0)
        .with("mode", json!("cool"))
        .plug("cooler", &cooler);
    let mut svc = rig.start();
    assert!(eventually(WAIT, || svc.readings().len() >= 2));
    // The power-on scratchpad: 85 °C with a valid CRC, byte 6 = 0x0C.
    let mut pad = [0x50u8, 0x05, 0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10, 0];
    pad[8] = one_wire_bus::crc::crc8(&pad[..8]);
    rig.w1.write_raw(&format_w1_slave(&pad));
    assert!(
        eventually(WAIT, || svc.log().contains("power")),
        "{}",
        svc.log()
    );
    assert!(
        !cooler.state().relay(),
        "85 °C power-on value switched nothing"
    );
    svc.stop();
}

#[test]
fn a_manual_toggle_is_corrected() {
    let heater = sim("heater", None);
    let rig = Rig::new(15.0).plug("heater", &heater);
    let mut svc = rig.start();
    let h = heater.state();
    assert!(eventually(WAIT, || svc.state()["plugs"]["heater"]
        ["verified"]
        == true));
    h.set_relay(false); // someone presses the button
    assert!(
        eventually(WAIT, || svc.log().contains("heater: found off")),
        "{}",
        svc.log()
    );
    assert!(eventually(WAIT, || h.relay()), "corrected");
    svc.stop();
}

#[test]
fn heat_cool_never_has_both_plugs_on() {
    let (heater, cooler) = (sim("heater", None), sim("cooler", None));
    let rig = Rig::new(19.0)
        .with("mode", json!("heat_cool"))
        .plug("heater", &heater)
        .plug("cooler", &cooler);
    let mut svc = rig.start();
    let (h, c) = (heater.state(), cooler.state());
    // Swing across both thresholds, each swing waiting for the plug it needs.
    for round in 0..3 {
        rig.w1.set(16.0);
        assert!(eventually(WAIT, || h.relay()), "round {round}: heater on");
        rig.w1.set(23.0);
        assert!(eventually(WAIT, || c.relay()), "round {round}: cooler on");
    }
    rig.w1.set(19.0);
    assert!(eventually(WAIT, || !h.relay() && !c.relay()));
    svc.stop();
    let end = Instant::now();
    let (ht, ct) = (h.transitions(), c.transitions());
    assert!(ht.len() >= 6 && ct.len() >= 6, "{ht:?} {ct:?}");
    assert_eq!(overlap(&ht, &ct, end), None, "both plugs were on at once");
}

#[test]
fn the_deadman_switches_the_plug_off_when_the_service_is_killed() {
    let heater = sim("heater", None);
    let mut rig = Rig::new(15.0).plug("heater", &heater);
    rig.config["heater"]["deadman_s"] = json!(1);
    let mut svc = rig.start();
    let h = heater.state();
    assert!(eventually(WAIT, || h.relay() && !h.countdown_rules(None).is_empty()));
    // SIGKILL: no Drop, no shutdown; only the plug's own countdown is left.
    svc.signal(libc::SIGKILL);
    svc.wait(WAIT);
    assert!(h.relay(), "still on right after the kill");
    assert!(
        eventually(Duration::from_secs(5), || !h.relay()),
        "the dead-man switched it off"
    );
}

#[test]
fn bad_config_and_unwritable_log_dir_fail_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let w1 = W1Tree::new(dir.path(), 15.0);
    let mut config = fast_config(dir.path(), &w1);
    config["heater"] = json!({"host": "127.0.0.1", "port": 9, "min_on": 5});
    let path = dir.path().join("bad.json");
    fs::write(&path, config.to_string()).unwrap();
    for args in [vec!["check-config"], vec!["run", "--config"]] {
        let out = bin().args(&args).arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("min_on") && err.contains("heater"),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }

    fs::write(dir.path().join("file"), "x").unwrap();
    config["heater"] = json!({"host": "127.0.0.1", "port": 9});
    config["log_dir"] = json!(dir.path().join("file/log"));
    fs::write(&path, config.to_string()).unwrap();
    let out = bin().args(["run", "--config"]).arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("file/log") && err.contains("log_dir"), "{err}");
}

#[test]
fn check_config_prints_the_effective_config() {
    let out = bin()
        .args([
            "check-config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/config.example.json"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["plug_timing"]["retry_sleeps_s"], json!([0.0, 1.0, 2.0]));
    assert_eq!(v["heater"]["deadman_s"], 120.0);
}
