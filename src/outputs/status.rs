//! `kasa-thermostat status`: the state file for a person; and the one-line
//! status the service gives systemd each cycle.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::StateFile;
use crate::clock::human;
use crate::control::Snapshot;
use crate::msg::PlugState;
use crate::units::Units;

/// A plug's state in three columns (`ON `, `off`, `?  `), for the lines
/// people read: the systemd status and the demo's echo.
pub(crate) fn state_word(state: PlugState) -> &'static str {
    match state {
        PlugState::On => "ON ",
        PlugState::Off => "off",
        PlugState::Unknown => "?  ",
    }
}

/// The one-line status for systemd (`systemctl status`).
pub(crate) fn status_line(snap: &Snapshot, units: Units) -> String {
    let t = snap
        .temperature_c
        .map(|t| format!("{:.2} {}", units.from_c(t), units.symbol()))
        .unwrap_or_else(|| "no reading".into());
    let plugs: Vec<String> = snap
        .plugs
        .iter()
        .map(|p| format!("{} {}", p.role, state_word(p.state).trim()))
        .collect();
    format!("{t}; {}; {}", plugs.join(", "), snap.reason)
}

/// A state file older than this means the service is not updating it.
pub(crate) const NOT_UPDATING_AFTER: Duration = Duration::from_secs(120);

/// Renders a state file for a person.
pub(crate) fn render(state: &StateFile, path: &Path, now: SystemTime) -> String {
    let mut out = String::new();
    let sym = state.units.symbol();
    let now_unix = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let age = (now_unix - state.updated_unix).max(0.0);
    out.push_str(&format!(
        "state file   {} (updated {}, {} ago)\n",
        path.display(),
        state.updated,
        human(age)
    ));
    if state.shutting_down {
        out.push_str("service      stopped (it wrote this state while shutting down)\n");
    } else if age > NOT_UPDATING_AFTER.as_secs_f64() {
        out.push_str(
            "service      NOT UPDATING: is it running? (`systemctl status kasa-thermostat`)\n",
        );
    }
    let temp = match state.temperature {
        Some(t) => format!(
            "{t:.2} {sym}{}",
            state
                .reading_age_s
                .map(|a| format!(" (read {} ago)", human(a)))
                .unwrap_or_default()
        ),
        None => "no valid reading yet".to_string(),
    };
    out.push_str(&format!("temperature  {temp}\n"));
    if let Some(c) = &state.chamber {
        let air = c
            .temperature
            .map_or("no valid reading".to_string(), |t| format!("{t:.2} {sym}"));
        let how = match (c.stale, c.setpoint) {
            (true, _) => "STALE: hysteresis on the product sensor".to_string(),
            (false, Some(s)) => format!("setpoint {s:.2} {sym} (cascade)"),
            (false, None) => "cascade not in charge".to_string(),
        };
        out.push_str(&format!("chamber      {air}, {how}\n"));
    }
    out.push_str(&format!(
        "mode         {}  (limits {} .. {} {sym})\n",
        state.mode, state.low_limit, state.high_limit
    ));
    for line in &state.overrides {
        out.push_str(&format!("override     {line}\n"));
    }
    if let Some(p) = &state.profile {
        let now = time::OffsetDateTime::from(now);
        out.push_str(&format!(
            "profile      {}\n",
            crate::profile::status_summary(p, now, state.units)
        ));
    }
    for (role, p) in &state.plugs {
        let word = |v: Option<bool>| match v {
            Some(true) => "on",
            Some(false) => "off",
            None => "unknown",
        };
        let shown = match p.state.as_str() {
            "unknown" => "UNKNOWN (counted as on)",
            other => other,
        };
        let mut line = format!("{role:<12} {shown} (wanted {})", word(p.desired));
        if let Some(s) = p.state_for_s {
            line.push_str(&format!(" for {}", human(s)));
        }
        if let Some(to) = p.switching {
            line.push_str(&format!(", switching {}", word(Some(to))));
        }
        line.push_str(&format!("  at {}", p.host));
        match (p.deadman.as_str(), p.deadman_remaining_s) {
            ("armed", Some(r)) => {
                line.push_str(&format!("  dead-man armed (off within {})", human(r)))
            }
            ("unsupported", _) => line.push_str("  dead-man: unsupported"),
            ("unknown", _) => line.push_str("  dead-man: unknown"),
            _ => {}
        }
        out.push_str(&line);
        out.push('\n');
        if let Some(e) = &p.last_error {
            out.push_str(&format!("             last error: {e}\n"));
        }
    }
    let alarm = match (&state.alarm, state.sensor_stale) {
        (_, true) => format!(
            "SENSOR STALE{}",
            state
                .sensor_fault
                .as_deref()
                .map(|f| format!(": {f}"))
                .unwrap_or_default()
        ),
        (Some(a), _) => format!("temperature {a}"),
        _ => "none".to_string(),
    };
    out.push_str(&format!("alarms       {alarm}\n"));
    if let Some(f) = &state.sensor_fault {
        if !state.sensor_stale {
            out.push_str(&format!("sensor       last fault: {f}\n"));
        }
    }
    out.push_str(&format!("reason       {}\n", state.reason));
    out
}
