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

/// The template unit of an instance is the single unit but for what names
/// the instance's files: a hardening line added to one and not the other
/// fails here.
#[test]
fn the_instance_template_differs_from_the_single_unit_only_in_its_paths() {
    let lines = |name: &str| -> Vec<String> {
        std::fs::read_to_string(deploy_file(name))
            .unwrap()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    let (single, template) = (
        lines("kasa-thermostat.service"),
        lines("kasa-thermostat@.service"),
    );
    let per_instance = [
        "Description",
        "ExecStart",
        "ExecStartPre",
        "LogsDirectory",
        "StateDirectory",
        "RuntimeDirectory",
        "ReadWritePaths",
    ];
    let key = |l: &str| l.split('=').next().unwrap().to_string();
    for l in single.iter().filter(|l| !template.contains(l)) {
        assert!(
            per_instance.contains(&key(l).as_str()),
            "only in the single unit: {l}"
        );
    }
    for l in template.iter().filter(|l| !single.contains(l)) {
        assert!(
            per_instance.contains(&key(l).as_str()),
            "only in the template: {l}"
        );
    }
    for want in [
        "ExecStart=/usr/local/bin/kasa-thermostat run --instance %i",
        "LogsDirectory=kasa-thermostat/%i",
        "StateDirectory=kasa-thermostat/%i",
        "RuntimeDirectory=kasa-thermostat/%i",
        "ReadWritePaths=/var/log/kasa-thermostat/%i /var/lib/kasa-thermostat/%i -/run/kasa-thermostat/locks",
    ] {
        assert!(template.iter().any(|l| l == want), "the template lacks {want}");
    }
    // The lock directory's default is where the template lets it write.
    assert_eq!(
        kasa_thermostat::instance::DEFAULT_LOCK_DIR,
        "/run/kasa-thermostat/locks"
    );
}
