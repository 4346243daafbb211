//! The `control` and `chamber_sensor` sections (docs/design.md, "Cascade
//! control"): which algorithm makes the demand, its tuning, and the second
//! sensor it needs.
//!
//! | key | default | allowed |
//! |---|---|---|
//! | `control.algorithm` | `hysteresis` | `hysteresis` or `cascade` (needs `chamber_sensor`) |
//! | `control.kp` | 5 | 0 to 50 (chamber offset per degree of product error) |
//! | `control.ki` | 0.25 | 0 to 10 (per degree-minute of accumulated error) |
//! | `control.kd` | -1.5 | -50 to 50 (per degree/hour of product slope) |
//! | `control.max_offset` | 10 °C (18 °F) | above 0, at most 30 °C: chamber setpoint within target ± this |
//! | `control.idle_band` | 1 °C (1.8 °F) | 0.1 to 5 °C: nothing starts within ± this of the chamber setpoint |
//! | `control.i_max_error` | 0.5 °C (0.9 °F) | above 0, at most 5 °C: the integral moves only within this |
//! | `control.heat_estimator` | 0.2 °C/h | 0.05 to 100 °C/h: starting overshoot per hour of heating |
//! | `control.cool_estimator` | 5 °C/h | 0.05 to 100 °C/h: starting overshoot per hour of cooling |
//! | `control.min_on_s` | 180 | 0 to 3600: shortest heating or cooling run |
//! | `control.min_off_s` | 300 | 0 to 3600: shortest pause before the same plug runs again |
//! | `control.dead_time_s` | 600 | 0 to 7200: shortest pause between heating and cooling |
//! | `chamber_sensor.id` | (required) | a sensor id other than `sensor.id` |
//! | `chamber_sensor.offset` | 0 | ±10 °C |
//! | `chamber_sensor.max_step` | 5 °C | above 0, at most 180 °C |
//!
//! Temperatures are in `units` (differences, and degrees per hour).

use serde::{Deserialize, Serialize};

use super::error::{fmt_num, invalid, ConfigError};
use crate::control::{Algorithm, CascadeSettings};
use crate::sensor::Backend;
use crate::units::Units;

/// `control.algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AlgorithmName {
    /// On at one limit, off at the other (or the midpoint).
    #[default]
    Hysteresis,
    /// A PID on the product sets the chamber setpoint, held on/off.
    Cascade,
}

/// The `control` section, in `units`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawControl {
    /// `hysteresis` or `cascade`.
    pub algorithm: AlgorithmName,
    /// Proportional gain.
    pub kp: f64,
    /// Integral gain.
    pub ki: f64,
    /// Derivative gain.
    pub kd: f64,
    /// The chamber setpoint stays within target ± this. `null`: the default in `units`.
    pub max_offset: Option<f64>,
    /// Nothing starts within ± this of the chamber setpoint. `null`: the default in `units`.
    pub idle_band: Option<f64>,
    /// The integral moves only while the product error is within this. `null`: the default in `units`.
    pub i_max_error: Option<f64>,
    /// Starting overshoot per hour of heating (degrees/hour). `null`: the default in `units`.
    pub heat_estimator: Option<f64>,
    /// Starting overshoot per hour of cooling (degrees/hour). `null`: the default in `units`.
    pub cool_estimator: Option<f64>,
    /// Shortest heating or cooling run, s.
    pub min_on_s: f64,
    /// Shortest pause before the same plug runs again, s.
    pub min_off_s: f64,
    /// Shortest pause between heating and cooling, s.
    pub dead_time_s: f64,
}

impl Default for RawControl {
    fn default() -> Self {
        let d = CascadeSettings::default();
        RawControl {
            algorithm: AlgorithmName::Hysteresis,
            kp: d.kp,
            ki: d.ki,
            kd: d.kd,
            max_offset: None,
            idle_band: None,
            i_max_error: None,
            heat_estimator: None,
            cool_estimator: None,
            min_on_s: d.min_on.as_secs_f64(),
            min_off_s: d.min_off.as_secs_f64(),
            dead_time_s: d.dead_time.as_secs_f64(),
        }
    }
}

impl RawControl {
    /// Every `null` replaced by its default in `units` (what `check-config`
    /// prints).
    pub(crate) fn filled(&self, u: Units) -> RawControl {
        let d = CascadeSettings::default();
        // A difference in `units`, rounded so that 10 °C prints as 18, not 18.000000000000004.
        let delta = |c: f64| ((u.from_c(c) - u.from_c(0.0)) * 1e6).round() / 1e6 + 0.0;
        RawControl {
            max_offset: Some(self.max_offset.unwrap_or(delta(d.max_offset_c))),
            idle_band: Some(self.idle_band.unwrap_or(delta(d.idle_band_c))),
            i_max_error: Some(self.i_max_error.unwrap_or(delta(d.i_max_error_c))),
            heat_estimator: Some(self.heat_estimator.unwrap_or(delta(d.heat_estimator))),
            cool_estimator: Some(self.cool_estimator.unwrap_or(delta(d.cool_estimator))),
            ..self.clone()
        }
    }
}

/// The `chamber_sensor` section: a second DS18B20 on the same backend and bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChamberSensor {
    /// The sensor id (`28-...`).
    pub id: String,
    /// Calibration added to every reading (in `units`, a difference).
    #[serde(default)]
    pub offset: f64,
    /// Largest believable step between two readings (in `units`, a difference).
    #[serde(default = "default_max_step")]
    pub max_step: f64,
}

fn default_max_step() -> f64 {
    5.0
}

/// The chamber sensor, in °C.
#[derive(Debug, Clone, PartialEq)]
pub struct ChamberSettings {
    /// Its id.
    pub id: String,
    /// Calibration, °C.
    pub offset_c: f64,
    /// Largest believable step, °C.
    pub max_step_c: f64,
}

/// `control` and `chamber_sensor`, checked against each other and the
/// product sensor's `sensor.backend` and `sensor.id`.
pub(crate) fn control_settings(
    c: &RawControl,
    chamber: Option<&RawChamberSensor>,
    sensor_backend: Backend,
    sensor_id: Option<&str>,
    u: Units,
) -> Result<(Algorithm, Option<ChamberSettings>), ConfigError> {
    let deg = u.symbol();
    // A difference in `units`, bounded in °C.
    let delta = |key: &str, v: f64, lo_c: f64, hi_c: f64, lo_open: bool| {
        let c = u.delta_to_c(v);
        let low_ok = if lo_open { c > lo_c } else { c >= lo_c };
        if v.is_finite() && low_ok && c <= hi_c {
            Ok(c)
        } else {
            let lo = fmt_num(lo_c / u.delta_to_c(1.0));
            let hi = fmt_num(hi_c / u.delta_to_c(1.0));
            let from = if lo_open { "above" } else { "from" };
            Err(invalid(
                key,
                format!("{v} is out of range: {from} {lo} to {hi} {deg}"),
            ))
        }
    };
    let plain = |key: &str, v: f64, lo: f64, hi: f64| {
        if v.is_finite() && (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(invalid(
                key,
                format!("{v} is out of range: {} to {}", fmt_num(lo), fmt_num(hi)),
            ))
        }
    };
    let secs =
        |key: &str, v: f64, hi: f64| plain(key, v, 0.0, hi).map(std::time::Duration::from_secs_f64);
    let c = &c.filled(u);
    let v = |x: Option<f64>| x.unwrap_or(f64::NAN);
    let settings = CascadeSettings {
        kp: plain("control.kp", c.kp, 0.0, 50.0)?,
        ki: plain("control.ki", c.ki, 0.0, 10.0)?,
        kd: plain("control.kd", c.kd, -50.0, 50.0)?,
        max_offset_c: delta("control.max_offset", v(c.max_offset), 0.0, 30.0, true)?,
        idle_band_c: delta("control.idle_band", v(c.idle_band), 0.1, 5.0, false)?,
        i_max_error_c: delta("control.i_max_error", v(c.i_max_error), 0.0, 5.0, true)?,
        heat_estimator: delta(
            "control.heat_estimator",
            v(c.heat_estimator),
            0.05,
            100.0,
            false,
        )?,
        cool_estimator: delta(
            "control.cool_estimator",
            v(c.cool_estimator),
            0.05,
            100.0,
            false,
        )?,
        min_on: secs("control.min_on_s", c.min_on_s, 3600.0)?,
        min_off: secs("control.min_off_s", c.min_off_s, 3600.0)?,
        dead_time: secs("control.dead_time_s", c.dead_time_s, 7200.0)?,
        ..CascadeSettings::default()
    };
    let chamber = chamber
        .map(|ch| -> Result<ChamberSettings, ConfigError> {
            if ch.id.trim().is_empty() || ch.id.contains('/') || ch.id.len() > 64 {
                return Err(invalid(
                    "chamber_sensor.id",
                    format!("{:?} is not a sensor id (like \"28-0316a2797aff\")", ch.id),
                ));
            }
            // The simulated chamber's sensors have fixed ids.
            let simulated = sensor_backend == Backend::Simulated;
            match sensor_id {
                _ if simulated => {}
                None => {
                    return Err(invalid(
                        "sensor.id",
                        "is null, but with a chamber_sensor on the same bus the product sensor must be named".into(),
                    ))
                }
                Some(id) if id == ch.id => {
                    return Err(invalid(
                        "chamber_sensor.id",
                        format!("{id:?} is sensor.id too; the chamber needs its own sensor"),
                    ))
                }
                _ => {}
            }
            Ok(ChamberSettings {
                id: ch.id.clone(),
                offset_c: delta("chamber_sensor.offset", ch.offset, -10.0, 10.0, false)?,
                max_step_c: delta("chamber_sensor.max_step", ch.max_step, 0.0, 180.0, true)?,
            })
        })
        .transpose()?;
    let algorithm = match c.algorithm {
        AlgorithmName::Hysteresis => Algorithm::Hysteresis,
        AlgorithmName::Cascade if chamber.is_none() => {
            return Err(invalid(
                "control.algorithm",
                "\"cascade\" needs a `chamber_sensor` (the air), and none is configured".into(),
            ))
        }
        AlgorithmName::Cascade => Algorithm::Cascade(settings),
    };
    Ok((algorithm, chamber))
}
