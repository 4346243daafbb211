//! Several chambers on one machine (issue 21): instances with their own
//! files and plugs, one plug one master, the lock gone with its holder, and a
//! GPIO line never shared. Each instance is the real binary run with
//! `--instance NAME`; the shared lock directory is a temporary one.

use std::fs;
use std::time::Duration;

use kasa_thermostat::instance::lock::{self, Resource};
use serde_json::{json, Value};

use crate::util::service::{bin, eventually, sim, w1_text, Rig, Running};

const START: Duration = Duration::from_secs(10);

/// A second DS18B20 on the rig's bus, for the second instance.
fn add_sensor(rig: &Rig, id: &str, celsius: f64) {
    let dir = rig.w1.root.join(id);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("w1_slave"), w1_text(celsius)).unwrap();
}

fn heater_on(r: &Running) -> bool {
    r.state()["plugs"]["heater"]["state"] == "on"
}

#[test]
fn two_instances_keep_to_their_own_files_and_plugs_and_a_third_is_refused_naming_the_holder() {
    let locks = tempfile::tempdir().unwrap();
    let (plug_a, plug_b) = (sim("brew heater", None), sim("keg heater", None));
    // Both sensors on one w1 bus: brew reads the rig's, keg a second one.
    let brew = Rig::new(15.0)
        .plug("heater", &plug_a)
        .with("lock_dir", json!(locks.path()));
    add_sensor(&brew, "28-00000000000b", 15.0);
    let mut keg_config = Rig::new(15.0)
        .plug("heater", &plug_b)
        .with("lock_dir", json!(locks.path()));
    keg_config.config["sensor"]["id"] = json!("28-00000000000b");
    keg_config.config["sensor"]["w1_root"] = json!(brew.w1.root);

    let mut a = Running::start_with(brew.dir.path(), &brew.config, &["--instance", "brew"]);
    let mut b = Running::start_with(
        keg_config.dir.path(),
        &keg_config.config,
        &["--instance", "keg"],
    );
    assert!(
        eventually(START, || heater_on(&a)),
        "brew: {}{}",
        a.log(),
        a.stderr()
    );
    assert!(
        eventually(START, || heater_on(&b)),
        "keg: {}{}",
        b.log(),
        b.stderr()
    );
    assert!(plug_a.state().relay() && plug_b.state().relay());
    // Each its own plug, state file and logs.
    let port = |r: &Running| {
        r.state()["plugs"]["heater"]["host"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(port(&a), plug_a.addr().to_string());
    assert_eq!(port(&b), plug_b.addr().to_string());
    assert_ne!(a.state_path(), b.state_path());
    assert!(a.log().contains("as kasa-thermostat@brew"), "{}", a.log());
    assert!(b.log().contains("as kasa-thermostat@keg"), "{}", b.log());
    assert!(!a.log().contains(&plug_b.addr().to_string()), "{}", a.log());
    assert!(!b.log().contains(&plug_a.addr().to_string()), "{}", b.log());
    let mut held: Vec<String> = fs::read_dir(locks.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    held.sort();
    assert_eq!(
        held,
        [
            format!("plug-127.0.0.1-{}.lock", plug_a.addr().port()),
            format!("plug-127.0.0.1-{}.lock", plug_b.addr().port()),
            "sensor-28-00000000000b.lock".to_string(),
            format!("sensor-{}.lock", crate::util::service::SENSOR_ID),
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );

    // A third instance configured with brew's plug: refused before it
    // touches anything, in one line naming the plug and the holder.
    let third = Rig::new(15.0)
        .plug("heater", &plug_a)
        .with("lock_dir", json!(locks.path()));
    let before = plug_a.state().connections();
    let mut c = Running::start_with(third.dir.path(), &third.config, &["--instance", "third"]);
    let status = c.wait(START);
    assert!(!status.success());
    let err = c.stderr();
    let expected = format!(
        "plug {} is already driven by kasa-thermostat@brew (pid {})",
        plug_a.addr(),
        a.pid()
    );
    assert!(err.contains(&expected), "{err}");
    // One line of error (the log's start line goes to stderr too).
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("kasa-thermostat:"))
        .collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("already driven"), "{err}");
    assert_eq!(
        plug_a.state().connections(),
        before,
        "the refused instance touched the plug"
    );
    assert!(plug_a.state().relay());
    // The same plug by name (`localhost` from /etc/hosts) is the same plug.
    let mut by_name = Rig::new(15.0)
        .plug("heater", &plug_a)
        .with("lock_dir", json!(locks.path()));
    by_name.config["heater"]["host"] = json!("localhost");
    let mut d = Running::start_with(
        by_name.dir.path(),
        &by_name.config,
        &["--instance", "named"],
    );
    assert!(!d.wait(START).success());
    let err = d.stderr();
    assert!(
        err.contains(&format!(
            "plug {} is already driven by kasa-thermostat@brew",
            plug_a.addr()
        )),
        "{err}"
    );
    assert_eq!(plug_a.state().connections(), before);

    // brew stops: its lock goes with it, and the third may start.
    assert!(a.stop().success(), "{}", a.log());
    let mut c = Running::start_with(third.dir.path(), &third.config, &["--instance", "third"]);
    assert!(
        eventually(START, || heater_on(&c)),
        "third: {}{}",
        c.log(),
        c.stderr()
    );
    assert!(c.stop().success());
    assert!(b.stop().success());
}

#[test]
fn a_gpio_line_held_by_another_process_is_refused_before_the_sensor_is_opened() {
    let rig = Rig::new(15.0);
    let locks = rig.dir.path().join("locks");
    let line = Resource::GpioLine {
        chip: "/dev/gpiochip0".into(),
        line: 4,
    };
    let _held = lock::acquire(&locks, "kasa-thermostat@other", &[line]).unwrap();
    let mut config: Value = rig.config.clone();
    config["sensor"] = json!({"backend": "hal", "gpio_chip": "/dev/gpiochip0", "gpio_line": 4});
    config["mode"] = json!("off");
    let mut r = Running::start_with(rig.dir.path(), &config, &[]);
    assert!(!r.wait(START).success());
    let err = r.stderr();
    assert!(
        err.contains(&format!(
            "GPIO line /dev/gpiochip0:4 is already driven by kasa-thermostat@other (pid {})",
            std::process::id()
        )),
        "{err}"
    );
    // One line of error (the log's start line goes to stderr too).
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("kasa-thermostat:"))
        .collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("already driven"), "{err}");
}

#[test]
fn a_bad_instance_name_is_a_usage_error_naming_it() {
    let out = bin()
        .args(["run", "--instance", "../etc"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("instance name \"../etc\"") && err.contains("'.' is not allowed"),
        "{err}"
    );
}
