//! The CLI's view of several chambers: which config and files an
//! `--instance NAME` means, and `status` as one line per install.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::error::CliError;
use crate::config::Config;
use crate::instance::{self, Installed, Instance};
use crate::outputs::StateFile;

/// A path of `instance` from its config when this user may read it, else
/// the default that `pick` derives from the name (what the config gives
/// when it leaves the key out, as deploy.sh writes it).
pub(crate) fn path_of(
    instance: &Instance,
    from_config: impl Fn(&Config) -> PathBuf,
    default: impl Fn(&Instance) -> PathBuf,
) -> PathBuf {
    match Config::load_as(&instance.config_file(), Some(instance)) {
        Ok(c) => from_config(&c),
        Err(_) => default(instance),
    }
}

/// The state file of an install (the single one's config may move it too).
fn state_file_of(i: &Installed) -> PathBuf {
    match Config::load_as(&i.config, i.instance.as_ref()) {
        Ok(c) => c.state_file,
        Err(_) => match &i.instance {
            Some(n) => n.state_file(),
            None => PathBuf::from(crate::config::raw::DEFAULT_STATE_FILE),
        },
    }
}

/// Whether process `pid` exists (EPERM: it does, as another user).
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// One line for one install: its name, running or not, and the gist of its
/// state file.
pub(crate) fn line(name: &str, state_file: &Path, now: SystemTime) -> String {
    let state = match StateFile::read(state_file) {
        Ok(s) => s,
        Err(_) if !state_file.exists() => {
            return format!(
                "{name:<20} stopped   (no state file {})",
                state_file.display()
            );
        }
        Err(e) => return format!("{name:<20} unknown   ({e})"),
    };
    let running = alive(state.pid) && !state.shutting_down;
    let age = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| (d.as_secs_f64() - state.updated_unix).max(0.0))
        .unwrap_or(0.0);
    let sym = state.units.symbol();
    let temp = match state.temperature {
        Some(t) if !state.sensor_stale => format!("{t:.1} {sym}"),
        Some(t) => format!("{t:.1} {sym} (stale)"),
        None => "no reading".to_string(),
    };
    let plugs: Vec<String> = state
        .plugs
        .iter()
        .map(|(role, p)| format!("{role} {}", p.state))
        .collect();
    format!(
        "{name:<20} {:<9} {temp}, {} {:.1}..{:.1} {sym}, {}{} (updated {:.0}s ago)",
        if running { "running" } else { "stopped" },
        state.mode,
        state.low_limit,
        state.high_limit,
        if plugs.is_empty() {
            "no plug".to_string()
        } else {
            plugs.join(", ")
        },
        state
            .alarm
            .as_ref()
            .map(|a| format!(", ALARM {a}"))
            .unwrap_or_default(),
        age
    )
}

/// What `status` does without `--state-file` or NAME.
pub(crate) enum Listing {
    /// Only the single install (or nothing installed): its full status, as
    /// before there were instances.
    Single,
    /// One line per install.
    Lines(String),
}

/// Lists the installs under `etc` (normally `/etc/kasa-thermostat`).
pub(crate) fn listing(etc: &Path, now: SystemTime) -> Result<Listing, CliError> {
    let installed = match instance::installed(etc) {
        Ok(i) => i,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(CliError::failed(format!(
                "cannot list {}: {e}",
                etc.display()
            )))
        }
    };
    if installed.iter().all(|i| i.instance.is_none()) {
        return Ok(Listing::Single);
    }
    let mut out = String::new();
    for i in &installed {
        let name = match &i.instance {
            Some(n) => n.name().to_string(),
            None => format!("({})", instance::SINGLE_UNIT),
        };
        out.push_str(&line(&name, &state_file_of(i), now));
        out.push('\n');
    }
    Ok(Listing::Lines(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lists_each_install_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        // Only the single install: the full status as before.
        std::fs::write(etc.join("config.json"), "{}").unwrap();
        assert!(matches!(
            listing(&etc, SystemTime::now()).unwrap(),
            Listing::Single
        ));
        assert!(matches!(
            listing(&dir.path().join("none"), SystemTime::now()).unwrap(),
            Listing::Single
        ));

        // Two instances, one running (this process's pid), one never started.
        let state = dir.path().join("brew-state.json");
        let cfg = |state: &Path| {
            format!(
                r#"{{"mode": "heat", "heater": {{"host": "10.0.0.5"}}, "state_file": {:?}}}"#,
                state
            )
        };
        std::fs::write(etc.join("brew.json"), cfg(&state)).unwrap();
        std::fs::write(
            etc.join("keg.json"),
            cfg(&dir.path().join("keg-state.json")),
        )
        .unwrap();
        let now = SystemTime::now();
        let unix = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let text = serde_json::json!({
            "updated": "2026-12-01T22:00:00Z", "updated_unix": unix - 4.0,
            "pid": std::process::id(), "units": "C", "mode": "heat",
            "low_limit": 18.0, "high_limit": 20.0, "temperature": 19.25,
            "reading_age_s": 1.0, "sensor_stale": false, "sensor_fault": null,
            "alarm": null, "reason": "in band", "shutting_down": false,
            "plugs": {"heater": {"host": "10.0.0.5:9999", "state": "on", "verified": true,
                      "desired": true, "switching": null, "state_for_s": 3.0,
                      "deadman": "off"}}
        });
        std::fs::write(&state, text.to_string()).unwrap();
        let Listing::Lines(out) = listing(&etc, now).unwrap() else {
            panic!("a listing")
        };
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(
            lines[0].starts_with("(kasa-thermostat)") && lines[0].contains("stopped"),
            "{out}"
        );
        assert!(lines[1].starts_with("brew "), "{out}");
        assert!(
            lines[1].contains("running")
                && lines[1].contains("19.2 °C, heat 18.0..20.0 °C, heater on")
                && lines[1].contains("updated 4s ago"),
            "{out}"
        );
        assert!(
            lines[2].starts_with("keg ")
                && lines[2].contains("stopped")
                && lines[2].contains("no state file"),
            "{out}"
        );
    }
}
