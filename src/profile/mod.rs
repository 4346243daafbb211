//! Temperature profiles: a schedule of limits over days (a fermentation's
//! primary, diacetyl rest and cold crash; a day/night cycle) that survives
//! restarts, power cuts and reboots.
//!
//! The parts, each usable on its own:
//! * [`RawProfile`] is the config's `profile` object as written (serde);
//!   [`Profile::from_raw`] checks every value and gives the typed [`Profile`]
//!   (temperatures in °C, durations in seconds).
//! * [`limits_at`] is the pure answer to "which limits are in force now?" from
//!   the profile, its persisted start and the wall-clock time, in an injected
//!   [`crate::clock::Zone`] so that DST is testable.
//! * [`ProfileState`] is the small persisted file (`profile_state_file`) that
//!   keeps the start instant and the profile's hash; [`resume`] decides at
//!   start whether to resume, begin or start over; [`clock_check`] says whether
//!   the wall clock can be believed (a Pi without a real-time clock boots with
//!   a wrong one).
//! * [`ProfileRunner`] puts these together for the service: one call per
//!   control cycle, file writes only when something changed, events to log.
//! * [`render_plan`] and [`status_summary`] are for `profile show` and `status`.
//!
//! # The config
//!
//! ```json
//! "profile": { "start": "now", "after_end": "hold_last",
//!              "steps": [ { "hold": "4d", "low": 17.5, "high": 18.5 },
//!                         { "ramp": "2d", "to_low": 20.5, "to_high": 21.5 } ] }
//! ```
//!
//! * `start`: `"now"` (the default: the moment the service first runs this
//!   profile, kept in the state file) or an RFC 3339 time with its offset,
//!   `"2026-12-01T08:00:00+01:00"`. Before a later start the first step's
//!   limits are held. With `"repeat": "daily"` it is a local time of day,
//!   `"07:00"`, when the first step begins each day.
//! * `repeat`: absent (run once) or `"daily"`: the steps must add up to
//!   exactly 24h, and the step boundaries are times of day on the local
//!   clock, so they stay put across DST changes (the step that contains the
//!   change is an hour shorter or longer).
//! * `after_end`: `"hold_last"` (keep the last limits) or `"off"` (both plugs
//!   off once the profile has ended).
//! * `steps`: `{"hold": D, "low": T, "high": T}` holds fixed limits for D;
//!   `{"ramp": D, "to_low": T, "to_high": T}` moves both limits linearly from
//!   the previous step's to these over D. A one-off profile starts with a
//!   hold (there is nothing to ramp from); in a daily profile a first ramp
//!   starts from the last step's limits. Durations: `45s`, `90m`, `36h`,
//!   `4d`, `1d12h` (see [`crate::clock::parse_duration`]). Temperatures are in `units`.
//!
//! A one-off profile counts real elapsed time from its start (a `4d` hold is
//! 96 hours even across a DST change).
//!
//! # In the service
//!
//! ```no_run
//! use kasa_thermostat::profile::{kernel_clock_synced, Profile, ProfileRunner, RawProfile};
//! use kasa_thermostat::clock::Zone;
//! use kasa_thermostat::units::Units;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let raw: RawProfile = serde_json::from_str(r#"{"steps": [{"hold": "1d", "low": 18, "high": 19}]}"#)?;
//! let profile = Profile::from_raw(&raw, Units::C)?; // at config load
//! // No /etc/localtime: UTC, with a warning in the log.
//! let zone = Zone::local().unwrap_or_else(|_| Zone::utc());
//! // A damaged state file is an error here: refuse to start, naming it.
//! let state_file = std::path::Path::new("/var/lib/kasa-thermostat/profile.json");
//! let mut runner = ProfileRunner::new(profile, state_file, zone, Units::C)?;
//! // Each control cycle:
//! let now = time::OffsetDateTime::from(std::time::SystemTime::now());
//! let tick = runner.tick(now, kernel_clock_synced());
//! for event in &tick.events {
//!     log::log!(event.level(), "{event}");
//! }
//! match tick.band {
//!     Some(band) => { /* control to band.low_c..band.high_c; log them in readings.jsonl */ }
//!     None => { /* after_end: off: both plugs off */ }
//! }
//! # Ok(())
//! # }
//! ```

mod definition;
mod error;
mod render;
mod runner;
mod schedule;
mod state;
mod wall;

use crate::units::Units;

pub use crate::control::Band;
pub use definition::{
    step_secs, AfterEnd, Profile, RawProfile, RawStep, Repeat, Start, MAX_STEP_S,
};
pub use error::ProfileError;
pub use render::{render_plan, show_command, status_summary, ProfileStatus};
pub use runner::{ProfileEvent, ProfileRunner, Tick};
pub use schedule::{limits_at, ProfilePhase, Scheduled};
pub use state::{
    checkpoint_due, clock_check, kernel_clock_synced, load_state, restart, restart_command, resume,
    save_state, skip_command, Checkpoint, ClockVerdict, ProfileState, Resume, CHECKPOINT_STEP_C,
    CLOCK_FLOOR, STATE_FILE_MAX_BYTES,
};
pub use wall::parse_instant;

/// The default `profile_state_file`.
pub(crate) const DEFAULT_STATE_FILE: &str = "/var/lib/kasa-thermostat/profile.json";

/// A compressed profile for `run --simulate --profile`: 30 model minutes at
/// 18..20 °C, a 30-minute ramp to 22..24 °C, 30 minutes there, then a step
/// down to 16..18 °C, held after the end. Model minutes pass `speed` times
/// faster than real ones (the chamber model runs at `--speed`), so each step
/// lasts 1800/`speed` real seconds, at least 1 s.
pub(crate) fn demo_profile(speed: f64) -> Result<Profile, ProfileError> {
    if !speed.is_finite() || speed <= 0.0 {
        return Err(ProfileError::DemoSpeed(speed));
    }
    let d = format!("{}s", ((1800.0 / speed).round() as u64).max(1));
    let hold = |lo: f64, hi: f64| RawStep {
        hold: Some(d.clone()),
        low: Some(lo),
        high: Some(hi),
        ..RawStep::default()
    };
    let raw = RawProfile {
        start: "now".to_string(),
        repeat: None,
        after_end: AfterEnd::HoldLast,
        steps: vec![
            hold(18.0, 20.0),
            RawStep {
                ramp: Some(d.clone()),
                to_low: Some(22.0),
                to_high: Some(24.0),
                ..RawStep::default()
            },
            hold(22.0, 24.0),
            hold(16.0, 18.0),
        ],
    };
    Profile::from_raw(&raw, Units::C)
}

#[cfg(test)]
mod tests;
