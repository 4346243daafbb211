//! `kasa-thermostat sensor scan|read` run as a process against a temp dir
//! shaped like /sys/bus/w1/devices.

use std::path::Path;
use std::process::Output;

use crate::util::sensor::{w1_yes, write_w1, ID_A, ID_B};

const GOOD: &str = "72 01 4b 46 7f ff 0e 10 57";
const POWER_ON: &str = "50 05 4b 46 7f ff 0c 10 1c";

fn run(args: &[&str]) -> Output {
    crate::util::bin()
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn root_arg(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn scan_lists_the_sensors() {
    let dir = tempfile::tempdir().unwrap();
    write_w1(dir.path(), ID_A, &w1_yes(GOOD, 23125));
    write_w1(dir.path(), ID_B, &w1_yes(GOOD, 23125));
    std::fs::create_dir(dir.path().join("w1_bus_master1")).unwrap();
    let out = run(&["sensor", "scan", "--w1-root", &root_arg(dir.path())]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut want = vec![ID_A, ID_B];
    want.sort();
    assert_eq!(text(&out.stdout).lines().collect::<Vec<_>>(), want);
}

#[test]
fn scan_of_an_empty_bus_fails_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["sensor", "scan", "--w1-root", &root_arg(dir.path())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no sensor"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn read_prints_the_temperature() {
    let dir = tempfile::tempdir().unwrap();
    write_w1(dir.path(), ID_A, &w1_yes(GOOD, 23125));
    let out = run(&["sensor", "read", "--w1-root", &root_arg(dir.path())]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("{ID_A} 23.125 °C"));
}

#[test]
fn read_rejects_the_power_on_value_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    write_w1(dir.path(), ID_A, &w1_yes(POWER_ON, 85000));
    let out = run(&["sensor", "read", "--w1-root", &root_arg(dir.path())]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("power_on_value") && err.contains(ID_A),
        "{err}"
    );
    assert!(text(&out.stdout).is_empty());
}

#[test]
fn read_with_a_config_uses_its_id_offset_and_units() {
    let dir = tempfile::tempdir().unwrap();
    write_w1(dir.path(), ID_A, &w1_yes(GOOD, 23125));
    write_w1(dir.path(), ID_B, &w1_yes(GOOD, 10000));
    let config = dir.path().join("config.json");
    let json = serde_json::json!({
        "units": "F",
        "mode": "off",
        "sensor": { "backend": "w1", "id": ID_B, "w1_root": dir.path(), "offset": 1.8 }
    });
    std::fs::write(&config, json.to_string()).unwrap();
    let out = run(&["sensor", "read", "--config", &root_arg(&config)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // 10 °C = 50 °F, plus a 1.8 °F offset.
    assert_eq!(text(&out.stdout).trim(), format!("{ID_B} 51.800 °F"));
}

#[test]
fn a_missing_sensor_is_no_device() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let json = serde_json::json!({
        "mode": "off",
        "sensor": { "backend": "w1", "id": ID_A, "w1_root": dir.path() }
    });
    std::fs::write(&config, json.to_string()).unwrap();
    let out = run(&["sensor", "read", "--config", &root_arg(&config)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no_device"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = run(&["sensor", "read", "--w1-root", "/x", "--gpio", "gpiochip0:4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot be used with"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["sensor", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["sensor", "read", "--gpio", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_missing_gpio_chip_fails_with_a_clear_message() {
    let out = run(&["sensor", "scan", "--gpio", "/nonexistent/gpiochip9:4"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("/nonexistent/gpiochip9"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn read_of_a_fifo_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(ID_A)).unwrap();
    let slave = dir.path().join(ID_A).join("w1_slave");
    let c = std::ffi::CString::new(slave.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut child = crate::util::bin()
        .args(["sensor", "read", "--w1-root", &root_arg(dir.path())])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("`sensor read` blocked on a FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(1));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("w1_slave") && err.contains(ID_A), "{err}");
}
