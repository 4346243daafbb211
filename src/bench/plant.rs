//! The plant model of `bench-control` (docs/design.md, "Cascade control"):
//! what a plant file says, checked key by key, and the two thermal nodes it
//! describes, integrated in virtual time.
//!
//! ```text
//! C_p dTp/dt = UA_pa (Ta − Tp) + Q_ferm(t) [+ Qh if heater_into = product]
//! C_a dTa/dt = UA_pa (Tp − Ta) + UA_aa (Tamb(t) − Ta) [+ Qh if into air] − Qc
//! C_p = product_kg × 4186 J/K,   C_a = air_j_per_k
//! dQh/dt = (heater_w × relay_h − Qh) / heater_lag_s   (Qh = heater_w × relay_h if the lag is 0)
//! dQc/dt = (cooler_w × relay_c − Qc) / cooler_lag_s
//! Tamb(t) = mean + amplitude × sin(2π t / period_h)   (or a constant)
//! Q_ferm(t) = peak_w sin²(π/2 · t/peak_h)                  for t < peak_h
//!           = peak_w cos²(π/2 · (t − peak_h)/(duration_h − peak_h))  for peak_h <= t < duration_h
//!           = 0 after
//! ```
//!
//! The state is advanced with classic fourth-order Runge-Kutta in sub-steps
//! no longer than a quarter of the fastest time constant, so any plant a
//! file can describe is integrated stably and accurately at any cycle.

use std::f64::consts::PI;
use std::path::Path;

use serde::Deserialize;

use crate::profile::RawProfile;

use super::error::BenchError;

/// The longest `plug_latency_s`: an answer arrives within the bench's
/// 10 s control cycle (`CYCLE_S`).
pub const MAX_LATENCY_S: f64 = 5.0;
/// Specific heat of the product (water), J/(kg·K).
pub const WATER_J_PER_KG_K: f64 = 4186.0;
/// The DS18B20's resolution at 12 bits, °C.
pub const QUANTUM_C: f64 = 0.0625;

/// `ambient_c`: a constant or a daily (or any period) swing.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Ambient {
    /// Always this, °C.
    Constant(f64),
    /// `mean + amplitude × sin(2π t / period_h)`.
    Swing(Swing),
}

/// The swinging ambient.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Swing {
    /// Mean, °C.
    pub mean: f64,
    /// Amplitude, °C.
    pub amplitude: f64,
    /// Period, hours.
    pub period_h: f64,
}

/// Where the heater's heat goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaterInto {
    /// The air (a heat lamp, a tube heater).
    Air,
    /// The product (a heat mat or belt on the vessel).
    Product,
}

/// `ferment`: the heat the product makes.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ferment {
    /// The most heat, W.
    pub peak_w: f64,
    /// When it peaks, hours after the start.
    pub peak_h: f64,
    /// When it is over, hours after the start.
    pub duration_h: f64,
}

/// A plant file as written (docs/design.md §16). Unknown keys are refused.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlantFile {
    /// Its name, in the output.
    pub name: String,
    /// The product's mass as water, kg.
    pub product_kg: f64,
    /// The air node's heat capacity (air, walls, shelves), J/K.
    pub air_j_per_k: f64,
    /// Product-to-air conductance, W/K.
    pub ua_product_air_w_per_k: f64,
    /// Air-to-ambient conductance, W/K.
    pub ua_air_ambient_w_per_k: f64,
    /// The room.
    pub ambient_c: Ambient,
    /// The heater's power, W; null: no heater.
    pub heater_w: Option<f64>,
    /// Where its heat goes.
    #[serde(default = "default_into")]
    pub heater_into: HeaterInto,
    /// Its first-order lag, s.
    #[serde(default)]
    pub heater_lag_s: f64,
    /// The heat the cooler removes from the air, W; null: no cooler.
    pub cooler_w: Option<f64>,
    /// Its first-order lag, s.
    #[serde(default)]
    pub cooler_lag_s: f64,
    /// Fermentation heat, or none.
    #[serde(default)]
    pub ferment: Option<Ferment>,
    /// Standard deviation of the sensors' noise, °C.
    #[serde(default)]
    pub sensor_noise_c: f64,
    /// How long a plug takes to answer (and its relay to move), s.
    #[serde(default)]
    pub plug_latency_s: f64,
    /// The chance that a command fails (nothing happens), 0..1.
    #[serde(default)]
    pub plug_failure_rate: f64,
    /// The low limit, °C (or a `profile`).
    #[serde(default)]
    pub low: Option<f64>,
    /// The high limit, °C.
    #[serde(default)]
    pub high: Option<f64>,
    /// The limits over time instead (config `profile`, °C).
    #[serde(default)]
    pub profile: Option<RawProfile>,
    /// The first hours, not scored.
    pub settle_h: f64,
    /// The length of the run.
    pub days: f64,
    /// The product at the start, °C.
    pub initial_product_c: f64,
    /// The air at the start, °C.
    pub initial_air_c: f64,
}

fn default_into() -> HeaterInto {
    HeaterInto::Air
}

impl PlantFile {
    /// Reads and checks a plant file.
    pub fn load(path: &Path) -> Result<PlantFile, BenchError> {
        let text =
            crate::fsutil::read_text_capped(path, 1 << 20).map_err(|e| BenchError::Plant {
                file: path.display().to_string(),
                message: e.to_string(),
            })?;
        PlantFile::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a plant file's text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<PlantFile, BenchError> {
        let err = |message: String| BenchError::Plant {
            file: file.to_string(),
            message,
        };
        let plant: PlantFile = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
        plant.check().map_err(err)?;
        Ok(plant)
    }

    /// Every value in its range; the first problem names its key.
    fn check(&self) -> Result<(), String> {
        let range = |key: &str, v: f64, lo: f64, hi: f64| -> Result<(), String> {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "{key} is {v}; it must be a number from {lo} to {hi}"
                ))
            }
        };
        let positive = |key: &str, v: f64, hi: f64| -> Result<(), String> {
            if v.is_finite() && v > 0.0 && v <= hi {
                Ok(())
            } else {
                Err(format!("{key} is {v}; it must be above 0 and at most {hi}"))
            }
        };
        if self.name.trim().is_empty()
            || self
                .name
                .chars()
                .any(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        {
            return Err(format!(
                "name is {:?}; use letters, digits, '-', '_' and '.' (it names the trace file)",
                self.name
            ));
        }
        positive("product_kg", self.product_kg, 1e5)?;
        positive("air_j_per_k", self.air_j_per_k, 1e9)?;
        positive("ua_product_air_w_per_k", self.ua_product_air_w_per_k, 1e5)?;
        range(
            "ua_air_ambient_w_per_k",
            self.ua_air_ambient_w_per_k,
            0.0,
            1e5,
        )?;
        match self.ambient_c {
            Ambient::Constant(c) => range("ambient_c", c, -55.0, 125.0)?,
            Ambient::Swing(s) => {
                range("ambient_c.mean", s.mean, -55.0, 125.0)?;
                range("ambient_c.amplitude", s.amplitude, 0.0, 100.0)?;
                positive("ambient_c.period_h", s.period_h, 1e4)?;
            }
        }
        if let Some(w) = self.heater_w {
            positive("heater_w", w, 1e5)?;
        }
        if let Some(w) = self.cooler_w {
            positive("cooler_w", w, 1e5)?;
        }
        if self.heater_w.is_none() && self.cooler_w.is_none() {
            return Err("heater_w and cooler_w are both null; give at least one".into());
        }
        range("heater_lag_s", self.heater_lag_s, 0.0, 86_400.0)?;
        range("cooler_lag_s", self.cooler_lag_s, 0.0, 86_400.0)?;
        if let Some(f) = self.ferment {
            range("ferment.peak_w", f.peak_w, 0.0, 1e5)?;
            positive("ferment.peak_h", f.peak_h, 1e4)?;
            if !(f.duration_h.is_finite() && f.duration_h > f.peak_h && f.duration_h <= 1e4) {
                return Err(format!(
                    "ferment.duration_h is {}; it must be after peak_h ({}) and at most 10000",
                    f.duration_h, f.peak_h
                ));
            }
        }
        range("sensor_noise_c", self.sensor_noise_c, 0.0, 5.0)?;
        range("plug_latency_s", self.plug_latency_s, 0.0, MAX_LATENCY_S)?;
        range("plug_failure_rate", self.plug_failure_rate, 0.0, 0.5)?;
        match (self.low, self.high, &self.profile) {
            (Some(lo), Some(hi), None) => {
                range("low", lo, -55.0, 125.0)?;
                range("high", hi, -55.0, 125.0)?;
                if lo >= hi {
                    return Err(format!("low ({lo}) must be below high ({hi})"));
                }
            }
            (None, None, Some(_)) => {}
            (_, _, Some(_)) => return Err("give low and high, or a profile, not both".into()),
            _ => return Err("give both low and high, or a profile".into()),
        }
        positive("days", self.days, 365.0)?;
        range("settle_h", self.settle_h, 0.0, 24.0 * 365.0)?;
        if self.settle_h >= self.days * 24.0 {
            return Err(format!(
                "settle_h ({}) leaves nothing of a {}-day run to score",
                self.settle_h, self.days
            ));
        }
        range("initial_product_c", self.initial_product_c, -55.0, 125.0)?;
        range("initial_air_c", self.initial_air_c, -55.0, 125.0)?;
        Ok(())
    }
}

impl Ambient {
    /// The room at `t_s` seconds after the start, °C.
    pub fn at(&self, t_s: f64) -> f64 {
        match *self {
            Ambient::Constant(c) => c,
            Ambient::Swing(s) => {
                s.mean + s.amplitude * (2.0 * PI * t_s / (s.period_h * 3600.0)).sin()
            }
        }
    }
}

impl Ferment {
    /// The heat at `t_s` seconds after the start, W.
    pub fn at(&self, t_s: f64) -> f64 {
        let h = t_s / 3600.0;
        if h < 0.0 || h >= self.duration_h {
            0.0
        } else if h < self.peak_h {
            self.peak_w * (PI / 2.0 * h / self.peak_h).sin().powi(2)
        } else {
            let x = (h - self.peak_h) / (self.duration_h - self.peak_h);
            self.peak_w * (PI / 2.0 * x).cos().powi(2)
        }
    }
}

/// The plant's state: temperatures and the heat the plugs deliver now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct State {
    /// Product, °C.
    pub product_c: f64,
    /// Air, °C.
    pub air_c: f64,
    /// Heater power now, W.
    pub heater_w: f64,
    /// Cooler power now, W.
    pub cooler_w: f64,
}

/// A plant file's physics, ready to integrate.
#[derive(Debug, Clone)]
pub struct Model {
    p: PlantFile,
    c_product: f64,
    /// The longest sub-step that keeps the integration accurate, s.
    max_step_s: f64,
}

impl Model {
    /// The model of a checked plant file.
    pub fn new(p: &PlantFile) -> Model {
        let c_product = p.product_kg * WATER_J_PER_KG_K;
        let mut taus = vec![
            c_product / p.ua_product_air_w_per_k,
            p.air_j_per_k / (p.ua_product_air_w_per_k + p.ua_air_ambient_w_per_k),
        ];
        for lag in [p.heater_lag_s, p.cooler_lag_s] {
            if lag > 0.0 {
                taus.push(lag);
            }
        }
        let fastest = taus.into_iter().fold(f64::INFINITY, f64::min);
        Model {
            p: p.clone(),
            c_product,
            max_step_s: (fastest / 4.0).clamp(0.05, 60.0),
        }
    }

    /// The state at the start.
    pub fn initial(&self) -> State {
        State {
            product_c: self.p.initial_product_c,
            air_c: self.p.initial_air_c,
            heater_w: 0.0,
            cooler_w: 0.0,
        }
    }

    /// The time derivative at `t_s` with the relays so.
    fn deriv(&self, t_s: f64, s: &State, heater_on: bool, cooler_on: bool) -> [f64; 4] {
        let p = &self.p;
        let (qh, qc) = (s.heater_w, s.cooler_w);
        let ferm = p.ferment.map_or(0.0, |f| f.at(t_s));
        let flow = p.ua_product_air_w_per_k * (s.air_c - s.product_c);
        let (into_p, into_a) = match p.heater_into {
            HeaterInto::Product => (qh, 0.0),
            HeaterInto::Air => (0.0, qh),
        };
        let dtp = (flow + ferm + into_p) / self.c_product;
        let dta = (-flow + p.ua_air_ambient_w_per_k * (p.ambient_c.at(t_s) - s.air_c) + into_a
            - qc)
            / p.air_j_per_k;
        let lag = |lag_s: f64, target: f64, now: f64| {
            if lag_s > 0.0 {
                (target - now) / lag_s
            } else {
                0.0
            }
        };
        let h_target = if heater_on {
            p.heater_w.unwrap_or(0.0)
        } else {
            0.0
        };
        let c_target = if cooler_on {
            p.cooler_w.unwrap_or(0.0)
        } else {
            0.0
        };
        [
            dtp,
            dta,
            lag(p.heater_lag_s, h_target, qh),
            lag(p.cooler_lag_s, c_target, qc),
        ]
    }

    /// Advances `s` from `t0_s` to `t1_s` with the relays held so.
    pub fn advance(&self, s: &mut State, t0_s: f64, t1_s: f64, heater_on: bool, cooler_on: bool) {
        let span = t1_s - t0_s;
        if span <= 0.0 {
            return;
        }
        // A plug without lag delivers its power at once.
        if self.p.heater_lag_s == 0.0 {
            s.heater_w = if heater_on {
                self.p.heater_w.unwrap_or(0.0)
            } else {
                0.0
            };
        }
        if self.p.cooler_lag_s == 0.0 {
            s.cooler_w = if cooler_on {
                self.p.cooler_w.unwrap_or(0.0)
            } else {
                0.0
            };
        }
        let n = (span / self.max_step_s).ceil().max(1.0);
        let h = span / n;
        let add = |s: &State, k: &[f64; 4], f: f64| State {
            product_c: s.product_c + k[0] * f,
            air_c: s.air_c + k[1] * f,
            heater_w: s.heater_w + k[2] * f,
            cooler_w: s.cooler_w + k[3] * f,
        };
        let mut t = t0_s;
        for _ in 0..n as u64 {
            let k1 = self.deriv(t, s, heater_on, cooler_on);
            let k2 = self.deriv(t + h / 2.0, &add(s, &k1, h / 2.0), heater_on, cooler_on);
            let k3 = self.deriv(t + h / 2.0, &add(s, &k2, h / 2.0), heater_on, cooler_on);
            let k4 = self.deriv(t + h, &add(s, &k3, h), heater_on, cooler_on);
            let mut k = [0.0; 4];
            for i in 0..4 {
                k[i] = (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]) / 6.0;
            }
            *s = add(s, &k, h);
            t += h;
        }
    }
}

/// What a DS18B20 reports for a true temperature and a unit noise sample.
pub fn sensor_reading(true_c: f64, noise_c: f64, unit_normal: f64) -> f64 {
    ((true_c + noise_c * unit_normal) / QUANTUM_C).round() * QUANTUM_C
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plant(extra: &str) -> Result<PlantFile, BenchError> {
        let text = format!(
            r#"{{"name":"t","product_kg":20,"air_j_per_k":25000,"ua_product_air_w_per_k":5,
               "ua_air_ambient_w_per_k":1.5,"ambient_c":22,"heater_w":25,"cooler_w":90,
               "low":18.5,"high":19.5,"settle_h":12,"days":7,
               "initial_product_c":22,"initial_air_c":22{extra}}}"#
        );
        PlantFile::parse(&text, "t.json")
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key_and_file() {
        let e = plant(r#","heater_watts":5"#).unwrap_err().to_string();
        assert!(e.contains("t.json") && e.contains("heater_watts"), "{e}");
        let e = plant(r#","plug_failure_rate":2"#).unwrap_err().to_string();
        assert!(e.contains("plug_failure_rate"), "{e}");
        let e = plant(r#","ambient_c":{"mean":20,"amplitude":2,"period":24}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ambient_c"), "{e}");
        let e = plant(r#","profile":{"steps":[{"hold":"1d","low":1,"high":2}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not both"), "{e}");
        assert!(plant("").is_ok());
    }

    #[test]
    fn equilibrium_and_energy_balance_match_the_equations() {
        // No plugs on, constant ambient: both nodes relax to the ambient;
        // the air first (its time constant is 25000/6.5 s, about an hour).
        let p = plant("").unwrap();
        let m = Model::new(&p);
        let mut s = State {
            product_c: 10.0,
            air_c: 10.0,
            heater_w: 0.0,
            cooler_w: 0.0,
        };
        m.advance(&mut s, 0.0, 3600.0 * 200.0, false, false);
        // The slow mode (product through the air to the room) is about a day.
        assert!(
            (s.product_c - 22.0).abs() < 1e-2 && (s.air_c - 22.0).abs() < 1e-2,
            "{s:?}"
        );
        // Cooler on for a long time: air settles where the heat flows balance:
        // 1.5 (22 − Ta) = 90 with product following the air.
        let mut s = m.initial();
        m.advance(&mut s, 0.0, 3600.0 * 400.0, false, true);
        assert!((s.air_c - (22.0 - 60.0)).abs() < 1e-2, "{s:?}");
        assert!((s.product_c - s.air_c).abs() < 1e-2, "{s:?}");
    }

    #[test]
    fn one_step_matches_the_analytic_air_response() {
        // Product frozen in effect (huge), no lag: the air relaxes
        // exponentially toward its balance point; compare to the closed form.
        let p = PlantFile {
            product_kg: 1e5,
            ..plant("").unwrap()
        };
        let m = Model::new(&p);
        let mut s = m.initial();
        s.air_c = 10.0;
        s.product_c = 22.0;
        m.advance(&mut s, 0.0, 1800.0, true, false);
        let ua = 6.5;
        let balance = (5.0 * 22.0 + 1.5 * 22.0 + 25.0) / ua;
        let expect = balance + (10.0 - balance) * (-1800.0 * ua / 25000.0_f64).exp();
        assert!((s.air_c - expect).abs() < 2e-3, "{} vs {expect}", s.air_c);
    }

    #[test]
    fn ferment_heat_peaks_when_told_and_ends() {
        let f = Ferment {
            peak_w: 20.0,
            peak_h: 48.0,
            duration_h: 144.0,
        };
        assert_eq!(f.at(0.0), 0.0);
        assert!((f.at(48.0 * 3600.0) - 20.0).abs() < 1e-9);
        assert!(f.at(24.0 * 3600.0) > 9.0 && f.at(24.0 * 3600.0) < 11.0);
        assert!(f.at(143.9 * 3600.0) < 0.01);
        assert_eq!(f.at(200.0 * 3600.0), 0.0);
    }

    #[test]
    fn readings_are_quantised_to_a_sixteenth() {
        assert_eq!(sensor_reading(19.03, 0.0, 0.0), 19.0);
        assert_eq!(sensor_reading(19.04, 0.0, 0.0), 19.0625);
        assert_eq!(sensor_reading(19.0, 0.1, 1.0), 19.125);
    }
}
