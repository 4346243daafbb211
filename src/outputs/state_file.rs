//! The state file (docs/design.md §12): the service's current state, rewritten
//! atomically every cycle, read by `kasa-thermostat status` and by anything
//! else that wants to know (a dashboard, a cron job).
//!
//! One [`StateFile`] struct is both written and read, so the two cannot
//! drift apart. Reading is strict about what it must trust (numbers finite
//! and not negative, known words) and says in one line what is wrong with a
//! damaged or foreign file; it never panics.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::control::Mode;
use crate::units::Units;

/// The largest state file read: a real one is about 1.5 KiB.
pub(crate) const MAX_STATE_BYTES: u64 = 256 * 1024;

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    /// When it was written, RFC 3339 UTC.
    pub updated: String,
    /// The same, in seconds since the Unix epoch.
    pub updated_unix: f64,
    /// The service's process id.
    pub pid: u32,
    /// Units of every temperature here.
    pub units: Units,
    /// The control mode.
    pub mode: Mode,
    /// The lower limit in force.
    pub low_limit: f64,
    /// The upper limit in force.
    pub high_limit: f64,
    /// The latest valid temperature.
    pub temperature: Option<f64>,
    /// Its age, seconds.
    pub reading_age_s: Option<f64>,
    /// No valid reading for `sensor.stale_after_s`.
    pub sensor_stale: bool,
    /// The latest sensor fault.
    pub sensor_fault: Option<String>,
    /// `low`, `high` or null.
    pub alarm: Option<String>,
    /// Why the plugs are as they are.
    pub reason: String,
    /// Written while shutting down.
    pub shutting_down: bool,
    /// Each configured plug by role.
    pub plugs: BTreeMap<String, PlugEntry>,
    /// The temperature profile, when one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<crate::profile::ProfileStatus>,
    /// The service's `log_dir`, where `status` finds the data logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_dir: Option<PathBuf>,
    /// The changes made while running (`overrides_file`), one line each
    /// with its source and time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    /// Cascade control: the chamber sensor and its setpoint (absent without
    /// a chamber sensor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chamber: Option<ChamberEntry>,
}

/// The chamber side of cascade control in the state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChamberEntry {
    /// The latest valid chamber (air) reading.
    pub temperature: Option<f64>,
    /// The chamber setpoint while cascade control is in charge.
    pub setpoint: Option<f64>,
    /// No valid chamber reading for `sensor.stale_after_s`: hysteresis on the
    /// product sensor.
    pub stale: bool,
}

/// One plug in the state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlugEntry {
    /// `host:port`.
    pub host: String,
    /// `on`, `off` or `unknown` (a switch not verified: counts as on).
    pub state: String,
    /// The verified state, null when unknown.
    pub verified: Option<bool>,
    /// What the controller wants.
    pub desired: Option<bool>,
    /// A switch under way, to this state.
    pub switching: Option<bool>,
    /// How long in its known state, seconds.
    pub state_for_s: Option<f64>,
    /// The dead-man: `off`, `unknown`, `clear`, `armed` or `unsupported`.
    pub deadman: String,
    /// When armed, the latest it switches the plug off from `updated`, seconds.
    pub deadman_remaining_s: Option<f64>,
    /// The last failure.
    pub last_error: Option<String>,
}

/// Why a state file cannot be shown.
#[derive(Debug)]
pub enum StateFileError {
    /// It cannot be read: is the service running, and is this its `state_file`?
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: crate::fsutil::ReadError,
    },
    /// It is not a state file of this program, or it is damaged.
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        detail: String,
    },
}

impl fmt::Display for StateFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateFileError::Read { path, .. } => write!(
                f,
                "{}: cannot read the state file (is the service running, and is this its state_file?)",
                path.display()
            ),
            StateFileError::Damaged { path, detail } => write!(
                f,
                "{}: not a usable kasa-thermostat state file: {detail}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StateFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StateFileError::Read { source, .. } => Some(source),
            StateFileError::Damaged { .. } => None,
        }
    }
}

const STATES: &[&str] = &["on", "off", "unknown"];
const DEADMAN: &[&str] = &["off", "unknown", "clear", "armed", "unsupported"];

impl StateFile {
    /// Reads and checks a state file.
    pub(crate) fn read(path: &Path) -> Result<StateFile, StateFileError> {
        let text = crate::fsutil::read_text_capped(path, MAX_STATE_BYTES).map_err(|source| {
            StateFileError::Read {
                path: path.to_path_buf(),
                source,
            }
        })?;
        StateFile::parse(&text).map_err(|detail| StateFileError::Damaged {
            path: path.to_path_buf(),
            detail,
        })
    }

    /// Parses and checks state file text; the error says what is wrong.
    pub fn parse(text: &str) -> Result<StateFile, String> {
        let state: StateFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        state.check()?;
        Ok(state)
    }

    fn check(&self) -> Result<(), String> {
        let finite = |key: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(format!("`{key}` is not a finite number"))
            }
        };
        let not_negative = |key: &str, v: Option<f64>| match v {
            Some(x) if !x.is_finite() || x < 0.0 => {
                Err(format!("`{key}` is {x}, not a number of seconds"))
            }
            _ => Ok(()),
        };
        finite("updated_unix", self.updated_unix)?;
        finite("low_limit", self.low_limit)?;
        finite("high_limit", self.high_limit)?;
        if let Some(t) = self.temperature {
            finite("temperature", t)?;
        }
        not_negative("reading_age_s", self.reading_age_s)?;
        if let Some(a) = &self.alarm {
            if a != "low" && a != "high" {
                return Err(format!("`alarm` is {a:?}, not low or high"));
            }
        }
        for (role, p) in &self.plugs {
            if !STATES.contains(&p.state.as_str()) {
                return Err(format!("`plugs.{role}.state` is {:?}", p.state));
            }
            if !DEADMAN.contains(&p.deadman.as_str()) {
                return Err(format!("`plugs.{role}.deadman` is {:?}", p.deadman));
            }
            not_negative(&format!("plugs.{role}.state_for_s"), p.state_for_s)?;
            not_negative(
                &format!("plugs.{role}.deadman_remaining_s"),
                p.deadman_remaining_s,
            )?;
        }
        Ok(())
    }

    /// Writes it to `path` atomically (see [`write_atomic`]).
    pub(crate) fn write(&self, path: &Path) -> io::Result<()> {
        let mut text = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        text.push('\n');
        write_atomic(path, &text)
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `text` to `path` atomically: a temporary file in the same
/// directory, flushed, then renamed over the old file, so a reader (or a
/// power cut) sees the old state or the new one, never half of one.
pub(crate) fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let dir = parent(path);
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
