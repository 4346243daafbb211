//! SIGHUP: which config keys a reload may change while the service runs.
//!
//! A reload takes effect at the next cycle for the keys the control thread
//! can take over without reopening anything (the mode, the limits, the
//! cycle's timings, each plug's `min_on_s`/`min_off_s`/`deadman_s`/
//! `fault_state`/`shutdown_state`). Every other key (a plug's host, the
//! sensor, the files, the web page, `units`...) is read once at start: a
//! reload that changes one is refused with a line naming it, and the running
//! config stays. The list is in the README too.

use serde_json::Value;

use crate::config::RawConfig;

/// The keys a reload applies (dotted paths); every other key needs a restart.
pub const RELOADABLE: &[&str] = &[
    "mode",
    "low_limit",
    "high_limit",
    "cycle_s",
    "rate_limit_s",
    "switchover_delay_s",
    "reconcile_s",
    "heater.min_on_s",
    "heater.min_off_s",
    "heater.deadman_s",
    "heater.fault_state",
    "heater.shutdown_state",
    "cooler.min_on_s",
    "cooler.min_off_s",
    "cooler.deadman_s",
    "cooler.fault_state",
    "cooler.shutdown_state",
];

/// Every leaf of `v` (objects opened, arrays and scalars kept whole) by its
/// dotted path.
fn leaves(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, child) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&path, child, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

/// The keys that differ between `old` and `new` and need a restart, in
/// sorted order; empty when a reload may apply `new`.
pub fn restart_keys(old: &RawConfig, new: &RawConfig) -> Vec<String> {
    let as_leaves = |raw: &RawConfig| {
        let mut out = Vec::new();
        leaves(
            "",
            &serde_json::to_value(raw).unwrap_or(Value::Null),
            &mut out,
        );
        out
    };
    let (a, b) = (as_leaves(old), as_leaves(new));
    let mut keys: Vec<String> = Vec::new();
    let mut note = |k: &str| {
        // A plug added or removed is its whole section.
        if !RELOADABLE.contains(&k) && !keys.iter().any(|have| have == k) {
            keys.push(k.to_string());
        }
    };
    for (k, v) in &a {
        match b.iter().find(|(kb, _)| kb == k) {
            Some((_, vb)) if vb == v => {}
            _ => note(k),
        }
    }
    for (k, _) in &b {
        if !a.iter().any(|(ka, _)| ka == k) {
            note(k);
        }
    }
    // A plug section that appeared or disappeared shows as its leaves on
    // one side and `null` on the other: name the section once.
    let mut out: Vec<String> = Vec::new();
    for k in keys {
        let top = k.split('.').next().unwrap_or(&k).to_string();
        let section_changed = matches!(top.as_str(), "heater" | "cooler")
            && (old_is_null(old, &top) != old_is_null(new, &top));
        let name = if section_changed { top } else { k };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

fn old_is_null(raw: &RawConfig, plug: &str) -> bool {
    match plug {
        "heater" => raw.heater.is_none(),
        _ => raw.cooler.is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawPlug;

    use crate::command::test_base::test_base as base;

    #[test]
    fn reloadable_keys_need_no_restart() {
        let mut new = base();
        new.mode = crate::control::Mode::Off;
        new.low_limit = 10.0;
        new.cycle_s = 5.0;
        new.heater.as_mut().unwrap().min_on_s = 60.0;
        assert!(restart_keys(&base(), &new).is_empty());
    }

    #[test]
    fn a_plugs_host_a_new_plug_and_the_sensor_are_named() {
        let mut new = base();
        new.heater.as_mut().unwrap().host = "10.0.0.9".into();
        new.sensor.interval_s = 2.0;
        new.cooler = Some(RawPlug::new("10.0.0.6", None));
        let keys = restart_keys(&base(), &new);
        assert_eq!(keys, vec!["cooler", "heater.host", "sensor.interval_s"]);
    }
}
