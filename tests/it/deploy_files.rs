//! Checks on the files under `deploy/` that the Rust side can judge: the
//! example config must load with the real config loader, and the systemd unit
//! must keep the settings that the service's behaviour relies on.

use std::path::Path;

fn deploy_file(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name)
}

#[test]
fn example_config_loads() {
    let path = deploy_file("config.example.json");
    let config = kasa_thermostat::config::Config::load(&path)
        .unwrap_or_else(|e| panic!("{}: {}", path.display(), kasa_thermostat::error::chain(&e)));
    assert!(config.heater.is_some(), "the example drives a heater");
    assert!(config.cooler.is_none());
}

#[test]
fn unit_keeps_the_settings_the_service_relies_on() {
    let unit = std::fs::read_to_string(deploy_file("kasa-thermostat.service")).unwrap();
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    for want in [
        "Type=notify",
        "NotifyAccess=main",
        "Restart=always",
        "User=kasa-thermostat",
        "SupplementaryGroups=gpio",
        "ExecStart=/usr/local/bin/kasa-thermostat run --config /etc/kasa-thermostat/config.json",
        "ReadWritePaths=/var/log/kasa-thermostat /var/lib/kasa-thermostat",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "DevicePolicy=closed",
        "DeviceAllow=/dev/gpiochip0 rw",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(lines.contains(&want), "unit lacks {want:?}");
    }
    // The service takes up to 15 s to put the plugs in their shutdown state.
    let stop = seconds(&lines, "TimeoutStopSec=");
    assert!(
        stop > 15,
        "TimeoutStopSec={stop} must exceed the 15 s shutdown"
    );
    // The watchdog is pinged at half its period from a loop that cycles at
    // most every few seconds; it must leave room for that.
    let watchdog = seconds(&lines, "WatchdogSec=");
    assert!((20..=120).contains(&watchdog), "WatchdogSec={watchdog}");
}

fn seconds(lines: &[&str], key: &str) -> u64 {
    let value = lines
        .iter()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("unit lacks {key}"));
    value
        .trim_end_matches('s')
        .parse()
        .unwrap_or_else(|_| panic!("{key}{value}: expected whole seconds"))
}
