//! What the service leaves for people and tools to read (docs/design.md §12):
//! `readings.jsonl` (one line per cycle), `plug-events.jsonl` (one line per
//! finished plug command), and the state file; `status` renders the state
//! file for `kasa-thermostat status`.
//!
//! Writing these must never stop the thermostat: a full disk loses a line of
//! data, not the temperature. So write errors after start-up are logged
//! (once per distinct error) and control goes on, and a line is written
//! whole or not at all (`datalog`). An unusable directory at start-up,
//! though, is a clear error before anything is switched.
//!
//! SD-card wear at the defaults (10 s cycle): `readings.jsonl` gets 8640
//! lines a day (about 2.5 MB), `plug-events.jsonl` a line per plug command
//! (a few hundred a day, about 100 KB), both appended without fsync (the
//! kernel writes them back in batches); the state file lives in `/run`
//! (tmpfs) and costs the card nothing.

pub(crate) mod datalog;
pub(crate) mod state_file;
pub(crate) mod status;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::clock::{format_rfc3339, Precision};
use crate::config::Config;
use crate::control::{DeadmanStatus, Snapshot};
use crate::msg::{Completion, PlugOutcome, Role};
use crate::records::{
    EventOutcome, EventRecord, PlugRecord, ReadingRecord, PLUG_EVENTS_FILE, READINGS_FILE,
};
use crate::units::Units;

pub(crate) use datalog::DataLog;
pub(crate) use state_file::write_atomic;
pub use state_file::{PlugEntry, StateFile, StateFileError};

/// The main log, in `log_dir`.
pub(crate) const MAIN_LOG: &str = "kasa-thermostat.log";
/// Plug failures only, in `log_dir`.
pub(crate) const ERRORS_LOG: &str = "kasa_errors.log";

/// A file or directory the service needs could not be used.
#[derive(Debug)]
pub struct OutputError {
    /// What it is for (`log_dir`, `state_file`): the config key.
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
            "cannot write {} (`{}`); check that it is a directory the service user may write",
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
pub(crate) fn open_append(key: &'static str, path: &Path) -> Result<File, OutputError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(output_err(key, dir))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(output_err(key, path))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The data logs and the state file, written as the service runs.
pub(crate) struct Outputs {
    readings: DataLog,
    events: DataLog,
    state_file: PathBuf,
    log_dir: PathBuf,
    units: Units,
    last_error: Option<String>,
    overrides: Vec<String>,
}

impl Outputs {
    /// Opens the data logs and checks that the state file's directory can be
    /// written, so a bad path fails at start, not silently later.
    pub fn open(config: &Config) -> Result<Outputs, OutputError> {
        let readings_path = config.log_dir.join(READINGS_FILE);
        let readings =
            DataLog::open(&readings_path).map_err(output_err("log_dir", &readings_path))?;
        let events_path = config.log_dir.join(PLUG_EVENTS_FILE);
        let events = DataLog::open(&events_path).map_err(output_err("log_dir", &events_path))?;
        let state_file = config.state_file.clone();
        let dir = match state_file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(output_err("state_file", &dir))?;
        let probe = dir.join(format!(".kasa-thermostat-probe-{}", std::process::id()));
        File::create(&probe).map_err(output_err("state_file", &dir))?;
        let _ = fs::remove_file(&probe);
        Ok(Outputs {
            readings,
            events,
            state_file,
            log_dir: config.log_dir.clone(),
            units: config.units,
            last_error: None,
            overrides: Vec::new(),
        })
    }

    /// Appends the cycle's line and rewrites the state file.
    pub(crate) fn write(
        &mut self,
        snap: &Snapshot,
        now: SystemTime,
        profile: Option<crate::profile::ProfileStatus>,
    ) {
        let line = reading_line(snap, now, self.units);
        let r = self
            .readings
            .append(&line)
            .map_err(|e| format!("cannot append to {}: {e}", self.readings.path().display()))
            .and_then(|()| self.write_state_file(snap, now, profile));
        self.note(r);
    }

    /// Rewrites only the state file (after a change made while running, so
    /// that `status` and the page show it before the next cycle).
    pub(crate) fn refresh_state(
        &mut self,
        snap: &Snapshot,
        now: SystemTime,
        profile: Option<crate::profile::ProfileStatus>,
    ) {
        let r = self.write_state_file(snap, now, profile);
        self.note(r);
    }

    fn write_state_file(
        &self,
        snap: &Snapshot,
        now: SystemTime,
        profile: Option<crate::profile::ProfileStatus>,
    ) -> Result<(), String> {
        let mut st = state(snap, now, self.units, profile);
        st.log_dir = Some(self.log_dir.clone());
        st.overrides = self.overrides.clone();
        st.write(&self.state_file).map_err(|e| {
            format!(
                "cannot write the state file {}: {e}",
                self.state_file.display()
            )
        })
    }

    /// The overrides in force (one line each, with source and time), for
    /// the state file from the next cycle on.
    pub(crate) fn set_overrides(&mut self, lines: Vec<String>) {
        self.overrides = lines;
    }

    /// Appends one line to `plug-events.jsonl`.
    pub(crate) fn plug_event(
        &mut self,
        outcome: &PlugOutcome,
        address: &str,
        corrected: bool,
        now: SystemTime,
    ) {
        let line = event_line(outcome, address, corrected, now);
        let r = self
            .events
            .append(&line)
            .map_err(|e| format!("cannot append to {}: {e}", self.events.path().display()));
        self.note(r);
    }

    fn note(&mut self, r: Result<(), String>) {
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
}

/// The state file's content for a snapshot.
pub fn state(
    snap: &Snapshot,
    now: SystemTime,
    u: Units,
    profile: Option<crate::profile::ProfileStatus>,
) -> StateFile {
    let plugs: BTreeMap<String, PlugEntry> = snap
        .plugs
        .iter()
        .map(|p| {
            let (deadman, remaining) = match p.deadman {
                DeadmanStatus::Armed { remaining, .. } => {
                    ("armed", Some(round3(remaining.as_secs_f64())))
                }
                other => (other.as_str(), None),
            };
            let entry = PlugEntry {
                host: p.address.clone(),
                state: p.state.as_str().to_string(),
                verified: p.state.known(),
                desired: p.desired,
                switching: p.switching,
                state_for_s: p.state_for.map(|d| round3(d.as_secs_f64())),
                deadman: deadman.to_string(),
                deadman_remaining_s: remaining,
                last_error: p.last_error.clone(),
            };
            (p.role.to_string(), entry)
        })
        .collect();
    let unix = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    StateFile {
        updated: format_rfc3339(now, Precision::Millis),
        updated_unix: round3(unix),
        pid: std::process::id(),
        units: u,
        mode: snap.mode,
        low_limit: round3(u.from_c(snap.limits.low_c)),
        high_limit: round3(u.from_c(snap.limits.high_c)),
        temperature: snap.temperature_c.map(|t| round3(u.from_c(t))),
        reading_age_s: snap.reading_age.map(|d| round3(d.as_secs_f64())),
        sensor_stale: snap.sensor_stale,
        sensor_fault: snap.sensor_fault.clone(),
        alarm: snap.alarm.map(|a| a.as_str().to_string()),
        reason: snap.reason.clone(),
        shutting_down: snap.shutting_down,
        plugs,
        profile,
        log_dir: None,
        chamber: snap
            .chamber
            .temperature_c
            .map(|t| state_file::ChamberEntry {
                temperature: Some(round3(u.from_c(t))),
                setpoint: snap.chamber.setpoint_c.map(|s| round3(u.from_c(s))),
                stale: snap.chamber.stale,
            }),
        overrides: Vec::new(),
    }
}

/// One line of `readings.jsonl`.
pub(crate) fn reading_line(snap: &Snapshot, now: SystemTime, units: Units) -> String {
    let plug = |role: Role| {
        snap.plugs
            .iter()
            .find(|p| p.role == role)
            .map(|p| PlugRecord::new(p.desired, p.state))
    };
    let record = ReadingRecord {
        time: now,
        temperature: snap.temperature_c.map(|t| round3(units.from_c(t))),
        units: Some(units),
        mode: Some(snap.mode.as_str().to_string()),
        low_limit: Some(round3(units.from_c(snap.limits.low_c))),
        high_limit: Some(round3(units.from_c(snap.limits.high_c))),
        reason: Some(snap.reason.clone()),
        alarm: snap.alarm,
        sensor_stale: snap.sensor_stale,
        heater: plug(Role::Heater),
        cooler: plug(Role::Cooler),
        // Cascade control: the air and its setpoint (absent otherwise, so
        // old readers and old files stay as they were).
        chamber_temperature: snap.chamber.temperature_c.map(|t| round3(units.from_c(t))),
        chamber_setpoint: snap.chamber.setpoint_c.map(|s| round3(units.from_c(s))),
        chamber_stale: snap.chamber.temperature_c.map(|_| snap.chamber.stale),
    };
    serde_json::to_string(&record).unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// One line of `plug-events.jsonl`.
pub(crate) fn event_line(
    o: &PlugOutcome,
    address: &str,
    corrected: bool,
    now: SystemTime,
) -> String {
    let (outcome, error_kind, error) = match &o.completion {
        Completion::Done => (EventOutcome::Ok, None, None),
        Completion::Superseded => (EventOutcome::Superseded, None, None),
        Completion::Failed(f) => (
            EventOutcome::Failed,
            Some(f.kind.as_str().to_string()),
            Some(f.message.clone()),
        ),
    };
    let record = EventRecord {
        time: now,
        role: o.role.as_str().to_string(),
        host: Some(address.to_string()),
        action: o.command.action().to_string(),
        outcome,
        state: o.state,
        attempts: Some(o.attempts),
        attempt_ms: o.attempt_times.iter().map(|d| ms(*d)).collect(),
        duration_ms: Some(ms(o.elapsed)),
        rssi: o.rssi,
        error_kind,
        error,
        deadman: o.deadman.as_ref().map(|d| d.as_str().to_string()),
        corrected,
    };
    serde_json::to_string(&record).unwrap_or_default()
}

#[cfg(test)]
mod tests;
