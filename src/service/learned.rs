//! `control_state_file`: what cascade control learned (the overshoot
//! estimators and the PID's integral), so that a restart does not relearn.
//!
//! Read once at start (a missing file is a first run; a damaged one is
//! logged and ignored: the defaults are safe, only slower to settle).
//! Written atomically, and only when what it holds changes: the values are
//! rounded (estimators to 0.001 °C/h, the integral to 0.01 °C·min, which is
//! 0.0025 °C of setpoint at the default `ki`), and a change of the integral
//! alone is written at most every [`INTEGRAL_WRITE_EVERY`], so an SD card
//! sees a handful of writes an hour at most.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::control::Learned;

/// The shortest time between writes for a change of the integral alone.
pub(crate) const INTEGRAL_WRITE_EVERY: Duration = Duration::from_secs(600);

/// The largest control state file read.
const MAX_BYTES: u64 = 4096;

fn rounded(l: Learned) -> Learned {
    let r = |x: f64, k: f64| (x * k).round() / k + 0.0;
    Learned {
        heat_estimator: r(l.heat_estimator, 1000.0),
        cool_estimator: r(l.cool_estimator, 1000.0),
        integral: r(l.integral, 100.0),
    }
}

/// Reads `path`: `Ok(None)` when there is none yet; an error says what is
/// wrong with it.
pub(crate) fn load(path: &Path) -> Result<Option<Learned>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let text = crate::fsutil::read_text_capped(path, MAX_BYTES)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let l: Learned = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a control state file ({e})", path.display()))?;
    if !l.is_plausible() {
        return Err(format!("{}: values out of range ({l:?})", path.display()));
    }
    Ok(Some(l))
}

/// Keeps `control_state_file` in step with the controller.
#[derive(Debug)]
pub(crate) struct LearnedFile {
    path: PathBuf,
    saved: Option<Learned>,
    saved_at: Option<Instant>,
}

impl LearnedFile {
    /// The file at `path`, holding `loaded` (what [`load`] found).
    pub(crate) fn new(path: PathBuf, loaded: Option<Learned>) -> LearnedFile {
        LearnedFile {
            path,
            saved: loaded.map(rounded),
            saved_at: None,
        }
    }

    /// Writes `now_learned` if it differs from what the file holds (see the
    /// module docs for when). A failed write is logged and tried again later.
    pub(crate) fn update(&mut self, now_learned: Learned, now: Instant) {
        let new = rounded(now_learned);
        let Some(old) = self.saved else {
            self.write(new, now);
            return;
        };
        if new == old {
            return;
        }
        let estimators_moved =
            new.heat_estimator != old.heat_estimator || new.cool_estimator != old.cool_estimator;
        let due = self
            .saved_at
            .is_none_or(|t| now.saturating_duration_since(t) >= INTEGRAL_WRITE_EVERY);
        if estimators_moved || due {
            self.write(new, now);
        }
    }

    fn write(&mut self, l: Learned, now: Instant) {
        let text = match serde_json::to_string_pretty(&l) {
            Ok(t) => t + "\n",
            Err(e) => {
                log::error!("control_state_file: cannot encode {l:?}: {e}");
                return;
            }
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        match crate::outputs::state_file::write_atomic(&self.path, &text) {
            Ok(()) => {
                self.saved = Some(l);
                self.saved_at = Some(now);
            }
            Err(e) => {
                // Tried again at the next change; the next start relearns.
                self.saved_at = Some(now);
                log::warn!(
                    "control_state_file {}: cannot write: {e}",
                    self.path.display()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_when_it_changes_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/control.json");
        assert_eq!(load(&path), Ok(None));
        let t0 = Instant::now();
        let l = Learned {
            heat_estimator: 0.2,
            cool_estimator: 5.0,
            integral: 0.0,
        };
        let mut f = LearnedFile::new(path.clone(), None);
        f.update(l, t0);
        assert_eq!(load(&path), Ok(Some(l)));
        // The integral moves a little a minute later: not written yet.
        let moved = Learned {
            integral: -0.3,
            ..l
        };
        f.update(moved, t0 + Duration::from_secs(60));
        assert_eq!(load(&path), Ok(Some(l)));
        // An estimator changes: written at once, with the integral.
        let est = Learned {
            cool_estimator: 6.2,
            ..moved
        };
        f.update(est, t0 + Duration::from_secs(70));
        assert_eq!(load(&path), Ok(Some(est)));
        // Ten minutes on, the integral alone is written.
        let later = Learned {
            integral: -0.9,
            ..est
        };
        f.update(later, t0 + Duration::from_secs(700));
        assert_eq!(load(&path), Ok(Some(later)));
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.json");
        std::fs::write(&path, r#"{"heat_estimator": 0.2}"#).unwrap();
        let e = load(&path).unwrap_err();
        assert!(
            e.contains("control.json") && e.contains("cool_estimator"),
            "{e}"
        );
        std::fs::write(
            &path,
            r#"{"heat_estimator": -1, "cool_estimator": 5, "integral": 0}"#,
        )
        .unwrap();
        assert!(load(&path).unwrap_err().contains("out of range"));
    }
}
