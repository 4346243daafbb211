//! What the service leaves for people to read (DESIGN §7): the two log files,
//! `readings.jsonl`, the state file, and `kasa-thermostat status` that shows
//! the state file for a person.
//!
//! Writing these must never stop the thermostat: a full disk loses a line of
//! data, not the temperature. So write errors after start-up are logged (once
//! per distinct error) and control goes on; an unwritable directory at
//! start-up, though, is a clear error before anything is switched.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::config::{Config, Units};
use crate::control::{PlugSnapshot, Snapshot};
use crate::Role;

/// The main log, in `log_dir`.
pub const MAIN_LOG: &str = "kasa-thermostat.log";
/// Plug failures only, in `log_dir`.
pub const ERRORS_LOG: &str = "kasa_errors.log";
/// One JSON object per control cycle, in `log_dir`.
pub const READINGS_LOG: &str = "readings.jsonl";

/// A file or directory the service needs could not be used.
#[derive(Debug)]
pub struct OutputError {
    /// What it is for (`log_dir`, `state_file`, ...): the config key.
    pub key: &'static str,
    /// The path.
    pub path: PathBuf,
    /// The I/O error.
    pub source: io::Error,
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot write {} (`{}`); create it and give the service user write access",
            self.path.display(),
            self.key
        )
    }
}

impl std::error::Error for OutputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn output_err<'a>(key: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> OutputError + 'a {
    move |source| OutputError {
        key,
        path: path.to_path_buf(),
        source,
    }
}

/// Opens a log file for appending, creating it (and its directory).
pub fn open_append(key: &'static str, path: &Path) -> Result<File, OutputError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(output_err(key, dir))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(output_err(key, path))
}

/// Formats a wall-clock time as RFC 3339 UTC with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    dt.format(&format).unwrap_or_else(|_| "?".to_string())
}

/// `readings.jsonl` and the state file, written every cycle.
pub struct Outputs {
    readings_path: PathBuf,
    readings: File,
    state_file: PathBuf,
    units: Units,
    low: f64,
    high: f64,
    hosts: Vec<(Role, String)>,
    last_error: Option<String>,
}

impl Outputs {
    /// Opens `readings.jsonl` and checks that the state file's directory can
    /// be written, so that a bad path fails at start, not silently later.
    pub fn open(config: &Config) -> Result<Outputs, OutputError> {
        let readings_path = config.log_dir.join(READINGS_LOG);
        let readings = open_append("log_dir", &readings_path)?;
        let state_file = config.state_file.clone();
        let dir = state_parent(&state_file);
        fs::create_dir_all(dir).map_err(output_err("state_file", dir))?;
        let probe = dir.join(format!(".kasa-thermostat-probe-{}", std::process::id()));
        File::create(&probe).map_err(output_err("state_file", dir))?;
        let _ = fs::remove_file(&probe);
        Ok(Outputs {
            readings_path,
            readings,
            state_file,
            units: config.units,
            low: config.low_limit,
            high: config.high_limit,
            hosts: config
                .plugs()
                .into_iter()
                .map(|(r, p)| (r, p.address()))
                .collect(),
            last_error: None,
        })
    }

    /// Appends the cycle's line and rewrites the state file.
    pub fn write(&mut self, snap: &Snapshot, now: SystemTime) {
        let line = reading_line(snap, now, self.units);
        let r = writeln!(self.readings, "{line}")
            .map_err(|e| format!("cannot append to {}: {e}", self.readings_path.display()))
            .and_then(|()| {
                let state = self.state_json(snap, now);
                write_atomic(&self.state_file, &state).map_err(|e| {
                    format!(
                        "cannot write the state file {}: {e}",
                        self.state_file.display()
                    )
                })
            });
        match r {
            Ok(()) => {
                if self.last_error.take().is_some() {
                    log::info!("writing readings and state works again");
                }
            }
            Err(e) => {
                if self.last_error.as_deref() != Some(&e) {
                    log::error!("{e} (control goes on)");
                    self.last_error = Some(e);
                }
            }
        }
    }

    fn state_json(&self, snap: &Snapshot, now: SystemTime) -> String {
        let u = self.units;
        let mut plugs = serde_json::Map::new();
        for p in &snap.plugs {
            let host = self
                .hosts
                .iter()
                .find(|(r, _)| *r == p.role)
                .map(|(_, h)| h.clone())
                .unwrap_or_default();
            plugs.insert(p.role.to_string(), plug_json(p, Some(host)));
        }
        let unix = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let doc = json!({
            "updated": rfc3339(now),
            "updated_unix": round3(unix),
            "pid": std::process::id(),
            "units": units_str(u),
            "mode": snap.mode.as_str(),
            "low_limit": self.low,
            "high_limit": self.high,
            "temperature": snap.temperature_c.map(|t| round3(u.from_c(t))),
            "reading_age_s": snap.reading_age.map(|d| round3(d.as_secs_f64())),
            "sensor_stale": snap.sensor_stale,
            "sensor_fault": snap.sensor_fault,
            "alarm": snap.alarm.map(|a| a.as_str()),
            "reason": snap.reason,
            "shutting_down": snap.shutting_down,
            "plugs": plugs,
        });
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        text.push('\n');
        text
    }
}

fn state_parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn units_str(u: Units) -> &'static str {
    match u {
        Units::C => "C",
        Units::F => "F",
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn plug_json(p: &PlugSnapshot, host: Option<String>) -> Value {
    let mut v = json!({
        "desired": p.desired,
        "verified": p.verified,
        "pending": p.pending,
        "state_for_s": p.state_for.map(|d| round3(d.as_secs_f64())),
        "deadman_armed": p.deadman_armed,
        "last_error": p.last_error,
    });
    if let Some(h) = host {
        v["host"] = Value::String(h);
    }
    v
}

/// One line of `readings.jsonl`.
pub fn reading_line(snap: &Snapshot, now: SystemTime, units: Units) -> String {
    let mut doc = json!({
        "time": rfc3339(now),
        "temperature": snap.temperature_c.map(|t| round3(units.from_c(t))),
        "units": units_str(units),
        "mode": snap.mode.as_str(),
        "reason": snap.reason,
        "alarm": snap.alarm.map(|a| a.as_str()),
        "sensor_stale": snap.sensor_stale,
    });
    for p in &snap.plugs {
        doc[p.role.as_str()] = json!({ "desired": p.desired, "verified": p.verified });
    }
    doc.to_string()
}

/// Writes `text` to `path` atomically: a temporary file in the same
/// directory, flushed to disk, then renamed over the old file, so a reader
/// (or a power cut) sees the old state or the new one, never half of one.
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let dir = state_parent(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_data()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Renders a state file for a person (`kasa-thermostat status`).
pub fn render_status(state: &Value, path: &Path, now: SystemTime) -> String {
    let mut out = String::new();
    let units = state["units"].as_str().unwrap_or("C");
    let sym = if units == "F" { "°F" } else { "°C" };
    let age = state["updated_unix"].as_f64().map(|t| {
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        (now - t).max(0.0)
    });
    let updated = state["updated"].as_str().unwrap_or("?");
    out.push_str(&format!(
        "state file   {} (updated {updated}{})\n",
        path.display(),
        age.map(|a| format!(", {} ago", human(Duration::from_secs_f64(a))))
            .unwrap_or_default()
    ));
    if state["shutting_down"].as_bool() == Some(true) {
        out.push_str("service      stopped (it wrote this state while shutting down)\n");
    } else if age.is_some_and(|a| a > 120.0) {
        out.push_str(
            "service      NOT UPDATING: is it running? (`systemctl status kasa-thermostat`)\n",
        );
    }
    let temp = match state["temperature"].as_f64() {
        Some(t) => format!(
            "{t:.2} {sym}{}",
            state["reading_age_s"]
                .as_f64()
                .map(|a| format!(" (read {} ago)", human(Duration::from_secs_f64(a))))
                .unwrap_or_default()
        ),
        None => "no valid reading yet".to_string(),
    };
    out.push_str(&format!("temperature  {temp}\n"));
    out.push_str(&format!(
        "mode         {}  (limits {} .. {} {sym})\n",
        state["mode"].as_str().unwrap_or("?"),
        state["low_limit"],
        state["high_limit"]
    ));
    if let Some(plugs) = state["plugs"].as_object() {
        for (role, p) in plugs {
            let word = |v: &Value| match v.as_bool() {
                Some(true) => "on",
                Some(false) => "off",
                None => "unknown",
            };
            let mut line = format!(
                "{role:<12} {} (wanted {})",
                word(&p["verified"]),
                word(&p["desired"])
            );
            if let Some(s) = p["state_for_s"].as_f64() {
                line.push_str(&format!(" for {}", human(Duration::from_secs_f64(s))));
            }
            if let Some(h) = p["host"].as_str() {
                line.push_str(&format!("  at {h}"));
            }
            if p["deadman_armed"].as_bool() == Some(true) {
                line.push_str("  dead-man armed");
            }
            out.push_str(&line);
            out.push('\n');
            if let Some(e) = p["last_error"].as_str() {
                out.push_str(&format!("             last error: {e}\n"));
            }
        }
    }
    let alarm = match (state["alarm"].as_str(), state["sensor_stale"].as_bool()) {
        (_, Some(true)) => format!(
            "SENSOR STALE{}",
            state["sensor_fault"]
                .as_str()
                .map(|f| format!(": {f}"))
                .unwrap_or_default()
        ),
        (Some(a), _) => format!("temperature {a}"),
        _ => "none".to_string(),
    };
    out.push_str(&format!("alarms       {alarm}\n"));
    if let Some(f) = state["sensor_fault"].as_str() {
        if state["sensor_stale"].as_bool() != Some(true) {
            out.push_str(&format!("sensor       last fault: {f}\n"));
        }
    }
    out.push_str(&format!(
        "reason       {}\n",
        state["reason"].as_str().unwrap_or("?")
    ));
    out
}

/// `93 s` -> `1 min 33 s`, for people.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{:.0} s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{} min {} s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    } else {
        format!("{} d {} h", s / 86_400, (s % 86_400) / 3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;

    fn snap() -> Snapshot {
        Snapshot {
            mode: Mode::Heat,
            temperature_c: Some(18.0),
            reading_age: Some(Duration::from_secs(2)),
            reason: "18.00 °C <= 18.00 °C: heater on".into(),
            alarm: None,
            sensor_stale: false,
            sensor_fault: None,
            plugs: vec![PlugSnapshot {
                role: Role::Heater,
                desired: Some(true),
                verified: Some(false),
                pending: Some(true),
                last_error: Some("127.0.0.1:9: connection refused".into()),
                state_for: Some(Duration::from_secs(75)),
                deadman_armed: false,
            }],
            shutting_down: false,
        }
    }

    #[test]
    fn reading_line_is_one_json_object_in_the_configured_units() {
        let line = reading_line(&snap(), SystemTime::UNIX_EPOCH, Units::F);
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["time"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["temperature"], 64.4);
        assert_eq!(v["units"], "F");
        assert_eq!(v["heater"]["desired"], true);
        assert_eq!(v["heater"]["verified"], false);
        assert!(v["reason"].as_str().unwrap().contains("heater on"));
    }

    #[test]
    fn status_shows_what_a_person_needs() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::from_json(r#"{"heater":{"host":"127.0.0.1","port":9}}"#).unwrap();
        config.log_dir = dir.path().join("log");
        config.state_file = dir.path().join("lib/state.json");
        let mut out = Outputs::open(&config).unwrap();
        let now = SystemTime::now();
        out.write(&snap(), now);
        out.write(&snap(), now);
        let lines = fs::read_to_string(config.log_dir.join(READINGS_LOG)).unwrap();
        assert_eq!(lines.lines().count(), 2);
        let state: Value =
            serde_json::from_str(&fs::read_to_string(&config.state_file).unwrap()).unwrap();
        assert_eq!(state["plugs"]["heater"]["host"], "127.0.0.1:9");
        let text = render_status(&state, &config.state_file, now + Duration::from_secs(3));
        for want in [
            "18.00 °C (read 2 s ago)",
            "heater       off (wanted on) for 1 min 15 s  at 127.0.0.1:9",
            "last error: 127.0.0.1:9: connection refused",
            "alarms       none",
            "heater on",
            "3 s ago",
        ] {
            assert!(text.contains(want), "{want:?} missing in:\n{text}");
        }
        let old = render_status(&state, &config.state_file, now + Duration::from_secs(600));
        assert!(old.contains("NOT UPDATING"), "{old}");
    }

    #[test]
    fn an_unwritable_log_dir_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        fs::write(&file, "x").unwrap();
        let mut config = Config::from_json(r#"{"heater":{"host":"127.0.0.1"}}"#).unwrap();
        config.log_dir = file.join("logs");
        config.state_file = dir.path().join("state.json");
        let msg = Outputs::open(&config).err().unwrap().to_string();
        assert!(
            msg.contains("plain-file") && msg.contains("log_dir"),
            "{msg}"
        );
    }

    #[test]
    fn atomic_write_replaces_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        write_atomic(&p, "one").unwrap();
        write_atomic(&p, "two").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }
}
