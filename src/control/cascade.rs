//! Cascade control (docs/design.md, "Cascade control"): a PID on the product
//! (the beer) sets a chamber (air) setpoint, and the chamber is held there
//! by on/off control that predicts its own overshoot. BrewPi's fridge
//! control is the anchor for the structure and every default; this is our
//! own code, written from its published behaviour.
//!
//! Why two loops: the product lags the air by hours. Switching on the
//! product's own temperature (hysteresis) runs the compressor long after the
//! product has had enough, and the product swings across the band. Holding
//! the air at a setpoint the PID moves slowly keeps the product still.
//!
//! The outer loop (every call):
//! * `P = kp × (target − product)`, `D = kd × product slope (°C/h)`,
//!   `I = ki × integral`; chamber setpoint = target + P + I + D, clamped
//!   to target ± `max_offset_c`.
//! * The integral moves at most every 60 s, only while idle (the air has
//!   reached its setpoint: any remaining product error means the setpoint
//!   is wrong) and within `i_max_error_c`; it shrinks twice as fast as it
//!   grows, stops growing at the clamp or while the air is saturated far
//!   from its setpoint, and bleeds off by 1/8 per step when the error is large.
//!
//! The inner loop, on the chamber's fast-filtered temperature:
//! * **Idle band**: nothing starts while the air is within ±`idle_band_c`
//!   of its setpoint, and nothing starts against the product (no cooling
//!   while the product is already below target, and so on).
//! * **Estimators**: while on, the predicted peak is
//!   `air ∓ estimator × min(on time, 600 s heat / 1200 s cool)`; the plug is
//!   released when the prediction reaches the setpoint (after `min_on`).
//! * **Peak detection**: after each switch-off the real peak is watched for
//!   (900 s after heating, 1800 s after cooling) and the estimator is scaled
//!   ×0.67..×1.5 by how far it missed. Nothing new starts before the peak
//!   is in (or its time is up), so the estimator learns from clean cycles.
//! * **Time limits**: `min_on`, `min_off` and `dead_time` between heating
//!   and cooling.
//!
//! The cascade is a *demand source*: it says what each plug should be. It
//! times everything from the relay states the controller observed (so a
//! plug held by the controller's own min on/off, interlock or a failed
//! switch is never mistaken for one that switched), and the controller
//! applies every safety rule on top. It reads no clock and does no I/O.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::units::Units;

/// Half a DS18B20 step: the product's dead zone around the target for the
/// guards ("no cooling while the product is below target").
const PRODUCT_DEAD_ZONE_C: f64 = 0.03125;
/// How often the integral moves.
const INTEGRATOR_PERIOD: Duration = Duration::from_secs(60);
/// Peak errors inside these are good: heating `(-0.2, +0.3)`, cooling `(-0.3, +0.2)` °C.
const HEAT_TARGET: (f64, f64) = (-0.2, 0.3);
const COOL_TARGET: (f64, f64) = (-0.3, 0.2);
/// The smallest an estimator may become, °C/h.
const MIN_ESTIMATOR: f64 = 0.05;
/// How far the air must come back from its extreme for the extreme to count
/// as a peak: above one quantisation step and the filtered noise.
const PEAK_HYSTERESIS_C: f64 = 0.1;
/// An anti-windup bound: the air this far beyond its setpoint while the
/// plug works means the plug is saturated.
const SATURATED_C: f64 = 2.0;
/// The window over which the product's slope is measured.
const SLOPE_WINDOW: Duration = Duration::from_secs(1800);
/// Filter time constants (BrewPi's filter delays): chamber fast, product fast
/// (the guards) and product slow (the PID).
const CHAMBER_TAU_S: f64 = 20.0;
const PRODUCT_FAST_TAU_S: f64 = 80.0;
const PRODUCT_SLOW_TAU_S: f64 = 160.0;
/// A gap in readings this long restarts the filters.
const FILTER_RESTART: Duration = Duration::from_secs(600);

/// The tuning, in °C, °C/h and [`Duration`]s (config `control`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CascadeSettings {
    /// Proportional gain (°C of chamber offset per °C of product error).
    pub kp: f64,
    /// Integral gain (per °C·minute of accumulated error).
    pub ki: f64,
    /// Derivative gain (°C of offset per °C/h of product slope; negative).
    pub kd: f64,
    /// The chamber setpoint stays within target ± this, °C.
    pub max_offset_c: f64,
    /// The integral moves only while |error| is below this, °C.
    pub i_max_error_c: f64,
    /// Nothing starts while the air is within ± this of its setpoint, °C.
    pub idle_band_c: f64,
    /// Starting heat estimator, °C of overshoot per hour of heating.
    pub heat_estimator: f64,
    /// Starting cool estimator, °C of overshoot per hour of cooling.
    pub cool_estimator: f64,
    /// Shortest heating or cooling run.
    pub min_on: Duration,
    /// Shortest pause after a run before the same plug runs again.
    pub min_off: Duration,
    /// Shortest pause between heating and cooling (either way).
    pub dead_time: Duration,
    /// Heating time counted by the estimator at most.
    pub heat_estimate_max: Duration,
    /// Cooling time counted by the estimator at most.
    pub cool_estimate_max: Duration,
    /// How long to watch for the peak after heating.
    pub heat_peak_window: Duration,
    /// How long to watch for the peak after cooling.
    pub cool_peak_window: Duration,
}

impl Default for CascadeSettings {
    /// BrewPi's defaults.
    fn default() -> Self {
        CascadeSettings {
            kp: 5.0,
            ki: 0.25,
            kd: -1.5,
            max_offset_c: 10.0,
            i_max_error_c: 0.5,
            idle_band_c: 1.0,
            heat_estimator: 0.2,
            cool_estimator: 5.0,
            min_on: Duration::from_secs(180),
            min_off: Duration::from_secs(300),
            dead_time: Duration::from_secs(600),
            heat_estimate_max: Duration::from_secs(600),
            cool_estimate_max: Duration::from_secs(1200),
            heat_peak_window: Duration::from_secs(900),
            cool_peak_window: Duration::from_secs(1800),
        }
    }
}

/// What the cascade learns, kept across restarts (`control_state_file`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Learned {
    /// °C of overshoot per hour of heating.
    pub heat_estimator: f64,
    /// °C of overshoot per hour of cooling.
    pub cool_estimator: f64,
    /// The PID's accumulated error, °C·minutes.
    pub integral: f64,
}

impl Learned {
    /// Whether every value is one the cascade could have learned (a state
    /// file edited by hand or cut short is not trusted).
    pub fn is_plausible(&self) -> bool {
        let est = |e: f64| e.is_finite() && (MIN_ESTIMATOR * 0.5..=1000.0).contains(&e);
        est(self.heat_estimator) && est(self.cool_estimator) && self.integral.is_finite()
    }
}

/// What the cascade is given each cycle, °C.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Inputs {
    /// The product's latest valid reading.
    pub product_c: f64,
    /// The chamber's latest valid reading.
    pub chamber_c: f64,
    /// The product's target (the middle of the band).
    pub target_c: f64,
    /// The heater: `None` when it takes no part (no plug, or the mode); else
    /// whether the relay may be closed (unknown counts as on).
    pub heater_on: Option<bool>,
    /// The cooler, likewise.
    pub cooler_on: Option<bool>,
}

/// What the cascade wants after a cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Heater demand (false when there is no heater).
    pub heat: bool,
    /// Cooler demand.
    pub cool: bool,
    /// The chamber setpoint, °C.
    pub chamber_set_c: f64,
    /// The PID terms, °C of chamber offset.
    pub p: f64,
    /// Integral term.
    pub i: f64,
    /// Derivative term.
    pub d: f64,
    /// Why the plugs are wanted so, for a person (the controller puts the
    /// setpoint and its terms in front).
    pub why: String,
}

/// Heating or cooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Heat,
    Cool,
}

impl Kind {
    fn plug(self) -> &'static str {
        match self {
            Kind::Heat => "heater",
            Kind::Cool => "cooler",
        }
    }
}

/// One actuator's observed history.
#[derive(Debug, Clone, Copy, Default)]
struct Relay {
    on: bool,
    /// When it was last seen to go on.
    on_since: Option<Instant>,
    /// When it was last seen to go off after being on.
    off_since: Option<Instant>,
}

impl Relay {
    fn observe(&mut self, on: bool, now: Instant) {
        if on && !self.on {
            self.on_since = Some(now);
        } else if !on && self.on {
            self.off_since = Some(now);
        }
        self.on = on;
    }
    fn on_for(&self, now: Instant) -> Duration {
        self.on_since
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
    }
    /// Off for at least `d` (or never on).
    fn off_at_least(&self, now: Instant, d: Duration) -> Option<Duration> {
        match self.off_since {
            Some(t) if !self.on => {
                let off = now.saturating_duration_since(t);
                (off < d).then(|| d - off)
            }
            _ if self.on => Some(d),
            _ => None,
        }
    }
}

/// A peak being watched for after a run.
#[derive(Debug, Clone, Copy)]
struct PeakWatch {
    kind: Kind,
    /// The peak the estimator predicted at switch-off.
    estimate: f64,
    started: Instant,
    /// The most extreme air temperature since.
    extreme: f64,
}

/// A first-order filter with a time constant.
#[derive(Debug, Clone, Copy)]
struct Ema {
    tau_s: f64,
    value: Option<f64>,
}

impl Ema {
    fn new(tau_s: f64) -> Ema {
        Ema { tau_s, value: None }
    }
    fn push(&mut self, x: f64, dt_s: f64) -> f64 {
        let v = match self.value {
            None => x,
            Some(v) => v + (x - v) * (1.0 - (-dt_s / self.tau_s).exp()),
        };
        self.value = Some(v);
        v
    }
}

/// The cascade controller: feed it [`Inputs`] once per control cycle.
#[derive(Debug, Clone)]
pub struct Cascade {
    s: CascadeSettings,
    learned: Learned,
    last: Option<Instant>,
    chamber: Ema,
    product_fast: Ema,
    product_slow: Ema,
    /// (time, slow-filtered product) about a minute apart, for the slope.
    history: VecDeque<(Instant, f64)>,
    last_integral: Option<Instant>,
    heater: Relay,
    cooler: Relay,
    peak: Option<PeakWatch>,
    /// The last chamber setpoint, for the integrator's clamp check.
    set_c: Option<f64>,
    /// A line for the log about the estimators, taken by [`Cascade::take_note`].
    note: Option<String>,
    /// Units for the text of reasons.
    units: Units,
}

/// Scales an estimator by BrewPi's rule: up by 1.2 + 3.1 % per °C of error
/// (at most ×1.5), down by 1/1.2 − 3.1 % per °C (at least ×0.67).
fn scale(estimator: f64, error: f64, increase: bool) -> f64 {
    let step = (error.abs() * 0.03125).min(if increase { 0.3 } else { 0.166 });
    if increase {
        (estimator * (1.2 + step)).max(MIN_ESTIMATOR)
    } else {
        estimator * (0.8333 - step)
    }
}

impl Cascade {
    /// A cascade with these settings, starting from `learned` (or the
    /// settings' starting estimators and no integral).
    pub fn new(s: CascadeSettings, learned: Option<Learned>, units: Units) -> Cascade {
        let learned = learned.filter(Learned::is_plausible).unwrap_or(Learned {
            heat_estimator: s.heat_estimator,
            cool_estimator: s.cool_estimator,
            integral: 0.0,
        });
        Cascade {
            s,
            learned,
            last: None,
            chamber: Ema::new(CHAMBER_TAU_S),
            product_fast: Ema::new(PRODUCT_FAST_TAU_S),
            product_slow: Ema::new(PRODUCT_SLOW_TAU_S),
            history: VecDeque::new(),
            last_integral: None,
            heater: Relay::default(),
            cooler: Relay::default(),
            peak: None,
            set_c: None,
            note: None,
            units,
        }
    }

    /// What has been learned so far.
    pub fn learned(&self) -> Learned {
        self.learned
    }

    /// The settings.
    pub fn settings(&self) -> &CascadeSettings {
        &self.s
    }

    /// A temperature in the configured units, one decimal.
    fn t(&self, c: f64) -> String {
        format!("{:.1}", self.units.from_c(c))
    }

    /// A line for the log about what the estimators learned, once.
    pub fn take_note(&mut self) -> Option<String> {
        self.note.take()
    }

    /// Forgets the filters and the relay history (after the cascade was
    /// not in charge for a while); keeps what was learned.
    pub fn restart(&mut self) {
        *self = Cascade::new(self.s, Some(self.learned), self.units);
    }

    fn filter(&mut self, now: Instant, input: &Inputs) -> (f64, f64, f64) {
        let dt = match self.last {
            Some(t) if now.saturating_duration_since(t) < FILTER_RESTART => {
                now.saturating_duration_since(t).as_secs_f64()
            }
            Some(_) => {
                self.chamber = Ema::new(CHAMBER_TAU_S);
                self.product_fast = Ema::new(PRODUCT_FAST_TAU_S);
                self.product_slow = Ema::new(PRODUCT_SLOW_TAU_S);
                self.history.clear();
                0.0
            }
            None => 0.0,
        };
        self.last = Some(now);
        let air = self.chamber.push(input.chamber_c, dt);
        let fast = self.product_fast.push(input.product_c, dt);
        let slow = self.product_slow.push(input.product_c, dt);
        let due = self
            .history
            .back()
            .is_none_or(|(t, _)| now.saturating_duration_since(*t) >= INTEGRATOR_PERIOD);
        if due {
            self.history.push_back((now, slow));
        }
        while self.history.len() > 2
            && now.saturating_duration_since(self.history[1].0) >= SLOPE_WINDOW
        {
            self.history.pop_front();
        }
        (air, fast, slow)
    }

    /// The product's slope, °C/h, over the slope window (0 until a few
    /// minutes of history exist).
    fn slope(&self, now: Instant, slow: f64) -> f64 {
        match self.history.front() {
            Some((t, v)) => {
                let h = now.saturating_duration_since(*t).as_secs_f64() / 3600.0;
                if h >= 0.05 {
                    (slow - v) / h
                } else {
                    0.0
                }
            }
            None => 0.0,
        }
    }

    /// One cycle: the chamber setpoint and each plug's demand.
    pub fn update(&mut self, now: Instant, input: &Inputs) -> Decision {
        let (air, product_fast, product_slow) = self.filter(now, input);
        if let Some(on) = input.heater_on {
            self.heater.observe(on, now);
        }
        if let Some(on) = input.cooler_on {
            self.cooler.observe(on, now);
        }
        let heating = input.heater_on == Some(true);
        let cooling = input.cooler_on == Some(true);
        let idle = !heating && !cooling;
        self.watch_peak(now, air, heating, cooling);

        // The outer loop.
        let target = input.target_c;
        let error = target - product_slow;
        let slope = self.slope(now, product_slow);
        let lo = target - self.s.max_offset_c;
        let hi = target + self.s.max_offset_c;
        // The first step comes a period after the start, as every other.
        let last = *self.last_integral.get_or_insert(now);
        if now.saturating_duration_since(last) >= INTEGRATOR_PERIOD {
            self.last_integral = Some(now);
            self.integrate(error, idle, air, lo, hi);
        }
        let p = self.s.kp * error;
        let i = self.s.ki * self.learned.integral;
        let d = self.s.kd * slope;
        let set = (target + p + i + d).clamp(lo, hi);
        self.set_c = Some(set);

        // The inner loop.
        let (heat, cool, why) = self.on_off(now, air, product_fast, set, target, input);
        Decision {
            heat,
            cool,
            chamber_set_c: set,
            p,
            i,
            d,
            why,
        }
    }

    fn integrate(&mut self, error: f64, idle: bool, air: f64, lo: f64, hi: f64) {
        let integral = self.learned.integral;
        let update = if !idle {
            0.0
        } else if error.abs() < self.s.i_max_error_c {
            let grows = (error > 0.0) == (integral > 0.0) || integral == 0.0;
            if grows {
                let set = self.set_c.unwrap_or(air);
                let at_clamp = set >= hi || set <= lo;
                // Heating wanted and the air far below its setpoint (or
                // cooling and far above): the plug is already doing all it
                // can; growing the integral only winds it up.
                let saturated = (error < 0.0 && air > set + SATURATED_C)
                    || (error > 0.0 && air < set - SATURATED_C);
                if at_clamp || saturated {
                    0.0
                } else {
                    error
                }
            } else {
                2.0 * error
            }
        } else {
            -integral / 8.0
        };
        self.learned.integral = integral + update;
    }

    /// Watches for the peak after a run and corrects the estimator.
    fn watch_peak(&mut self, now: Instant, air: f64, heating: bool, cooling: bool) {
        // A run ending starts a watch.
        let ended = |r: &Relay| r.off_since == Some(now) && !r.on;
        for kind in [Kind::Heat, Kind::Cool] {
            let relay = match kind {
                Kind::Heat => self.heater,
                Kind::Cool => self.cooler,
            };
            if ended(&relay) {
                let on_for = relay
                    .on_since
                    .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
                let estimate = self.predicted_peak(kind, air, on_for);
                self.peak = Some(PeakWatch {
                    kind,
                    estimate,
                    started: now,
                    extreme: air,
                });
            }
        }
        let Some(mut w) = self.peak else {
            return;
        };
        // A new run of either kind ends the watch without a verdict.
        if heating || cooling {
            self.peak = None;
            return;
        }
        let (window, (lower, upper)) = match w.kind {
            Kind::Heat => (self.s.heat_peak_window, HEAT_TARGET),
            Kind::Cool => (self.s.cool_peak_window, COOL_TARGET),
        };
        let sign = if w.kind == Kind::Heat { 1.0 } else { -1.0 };
        // In "toward the overshoot" coordinates: higher is further.
        if sign * air > sign * w.extreme {
            w.extreme = air;
        }
        let came_back = sign * (w.extreme - air) >= PEAK_HYSTERESIS_C;
        let timed_out = now.saturating_duration_since(w.started) >= window;
        let error = w.extreme - w.estimate;
        // Overshoot beyond the estimate: sign × error > upper bound (heat)
        // or below the lower bound (cool).
        let (over, under) = match w.kind {
            Kind::Heat => (error > upper, error < lower),
            Kind::Cool => (error < lower, error > upper),
        };
        let mut verdict = None;
        if came_back {
            if over {
                verdict = Some(true);
            } else if under {
                verdict = Some(false);
            }
            self.peak = None;
        } else if timed_out {
            // Still drifting the right way, slowly, short of the estimate:
            // the estimator is too high.
            let short = match w.kind {
                Kind::Heat => air < w.estimate + lower,
                Kind::Cool => air > w.estimate + upper,
            };
            if short {
                verdict = Some(false);
            }
            self.peak = None;
        } else {
            self.peak = Some(w);
        }
        if let Some(increase) = verdict {
            let old = match w.kind {
                Kind::Heat => self.learned.heat_estimator,
                Kind::Cool => self.learned.cool_estimator,
            };
            let new = scale(old, error, increase);
            let name = match w.kind {
                Kind::Heat => {
                    self.learned.heat_estimator = new;
                    "heat"
                }
                Kind::Cool => {
                    self.learned.cool_estimator = new;
                    "cool"
                }
            };
            self.note = Some(format!(
                "{} peak {} {}, estimated {}: {name} estimator {old:.2} -> {new:.2} °C/h",
                w.kind.plug(),
                self.t(w.extreme),
                self.units.symbol(),
                self.t(w.estimate),
            ));
        }
    }

    fn predicted_peak(&self, kind: Kind, air: f64, on_for: Duration) -> f64 {
        match kind {
            Kind::Heat => {
                let t = on_for.min(self.s.heat_estimate_max).as_secs_f64() / 3600.0;
                air + self.learned.heat_estimator * t
            }
            Kind::Cool => {
                let t = on_for.min(self.s.cool_estimate_max).as_secs_f64() / 3600.0;
                air - self.learned.cool_estimator * t
            }
        }
    }

    fn on_off(
        &mut self,
        now: Instant,
        air: f64,
        product: f64,
        set: f64,
        target: f64,
        input: &Inputs,
    ) -> (bool, bool, String) {
        let heating = input.heater_on == Some(true);
        let cooling = input.cooler_on == Some(true);
        if cooling || heating {
            // A run: hold it until the predicted peak reaches the setpoint.
            let (kind, relay) = if cooling {
                (Kind::Cool, self.cooler)
            } else {
                (Kind::Heat, self.heater)
            };
            let on_for = relay.on_for(now);
            let peak = self.predicted_peak(kind, air, on_for);
            let (reached, product_past) = match kind {
                Kind::Cool => (peak <= set, product < target - PRODUCT_DEAD_ZONE_C),
                Kind::Heat => (peak >= set, product > target + PRODUCT_DEAD_ZONE_C),
            };
            let plug = kind.plug();
            let want = if !reached && !product_past {
                let side = if kind == Kind::Cool { "above" } else { "below" };
                (
                    true,
                    format!("{plug} on: predicted peak {} {side} setpoint", self.t(peak)),
                )
            } else if on_for < self.s.min_on {
                (
                    true,
                    format!(
                        "{plug} on for its minimum run ({:.0} s left)",
                        (self.s.min_on - on_for).as_secs_f64()
                    ),
                )
            } else if product_past {
                (
                    false,
                    format!("{plug} off: product {} past target", self.t(product)),
                )
            } else {
                (
                    false,
                    format!(
                        "{plug} off: predicted peak {} reaches setpoint",
                        self.t(peak)
                    ),
                )
            };
            let (on, why) = want;
            // Both may be seen on (an unknown plug counts as on): the one
            // not running this cascade's run is asked off.
            return match kind {
                Kind::Cool => (false, on, why),
                Kind::Heat => (on, false, why),
            };
        }
        // Idle: start only outside the idle band, with the product agreeing.
        let too_warm = air > set + self.s.idle_band_c;
        let too_cold = air < set - self.s.idle_band_c;
        let kind = match (too_warm, too_cold) {
            (true, _) => Kind::Cool,
            (_, true) => Kind::Heat,
            _ => {
                return (
                    false,
                    false,
                    format!("idle: air {} within the idle band", self.t(air)),
                )
            }
        };
        let (present, product_agrees, own, other) = match kind {
            Kind::Cool => (
                input.cooler_on.is_some(),
                product >= target + PRODUCT_DEAD_ZONE_C,
                self.cooler,
                self.heater,
            ),
            Kind::Heat => (
                input.heater_on.is_some(),
                product <= target - PRODUCT_DEAD_ZONE_C,
                self.heater,
                self.cooler,
            ),
        };
        let plug = kind.plug();
        let side = if kind == Kind::Cool { "above" } else { "below" };
        if !present {
            return (
                false,
                false,
                format!("idle: air {} {side} the idle band, no {plug}", self.t(air)),
            );
        }
        if !product_agrees {
            return (
                false,
                false,
                format!("idle: air {} {side} the idle band, but product {} is already on the far side of target", self.t(air), self.t(product)),
            );
        }
        if let Some(left) = other.off_at_least(now, self.s.dead_time) {
            return (
                false,
                false,
                format!(
                    "{plug} waits for the dead time after the other plug ({:.0} s left)",
                    left.as_secs_f64()
                ),
            );
        }
        if let Some(left) = own.off_at_least(now, self.s.min_off) {
            return (
                false,
                false,
                format!(
                    "{plug} waits for its minimum pause ({:.0} s left)",
                    left.as_secs_f64()
                ),
            );
        }
        if self.peak.is_some() {
            return (
                false,
                false,
                format!("{plug} waits for the peak after the last run"),
            );
        }
        let why = format!("{plug} on: air {} {side} the idle band", self.t(air));
        match kind {
            Kind::Cool => (false, true, why),
            Kind::Heat => (true, false, why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cascade driven by a fake clock in whole seconds.
    struct Rig {
        c: Cascade,
        t0: Instant,
    }

    impl Rig {
        fn new() -> Rig {
            Rig {
                c: Cascade::new(CascadeSettings::default(), None, Units::C),
                t0: Instant::now(),
            }
        }
        fn at(&mut self, s: u64, product: f64, air: f64, heat: bool, cool: bool) -> Decision {
            self.c.update(
                self.t0 + Duration::from_secs(s),
                &Inputs {
                    product_c: product,
                    chamber_c: air,
                    target_c: 19.0,
                    heater_on: Some(heat),
                    cooler_on: Some(cool),
                },
            )
        }
    }

    #[test]
    fn setpoint_is_target_plus_p_and_clamped() {
        let mut r = Rig::new();
        let d = r.at(0, 19.4, 19.0, false, false);
        // P = 5 × (19.0 − 19.4) = −2.0; no history yet: no I or D.
        assert!((d.p + 2.0).abs() < 1e-9, "{d:?}");
        assert!((d.chamber_set_c - 17.0).abs() < 1e-9, "{d:?}");
        let mut r = Rig::new();
        let d = r.at(0, 25.0, 19.0, false, false);
        assert_eq!(d.chamber_set_c, 9.0, "clamped to target − 10");
    }

    #[test]
    fn cooler_runs_until_the_predicted_peak_reaches_the_setpoint() {
        let mut r = Rig::new();
        // Product warm: setpoint 17.0; air 18.5 is above the idle band.
        let d = r.at(0, 19.4, 18.5, false, false);
        assert!(d.cool && !d.heat, "{d:?}");
        // Running for 600 s at 5 °C/h predicts 0.83 °C more: air 17.9 →
        // peak 17.07, still above 17.0: keep on.
        let d = r.at(600, 19.4, 17.9, false, true);
        assert!(d.cool, "{d:?}");
        assert!(d.why.contains("above setpoint"), "{}", d.why);
        // Air 17.8 at 700 s: 17.8 − 0.97 = 16.83 <= 17.0: off.
        let mut r2 = Rig::new();
        r2.at(0, 19.4, 18.5, false, false);
        r2.at(10, 19.4, 18.5, false, true);
        let d = r2.at(710, 19.4, 17.8, false, true);
        assert!(!d.cool, "{d:?}");
    }

    #[test]
    fn min_on_holds_a_run_that_has_reached_its_peak() {
        let mut r = Rig::new();
        r.at(0, 19.4, 18.5, false, false);
        r.at(10, 19.4, 18.5, false, true);
        let d = r.at(100, 19.4, 16.0, false, true);
        assert!(d.cool && d.why.contains("minimum run"), "{d:?}");
        let d = r.at(200, 19.4, 16.0, false, true);
        assert!(!d.cool, "{d:?}");
    }

    #[test]
    fn no_cooling_while_the_product_is_below_target() {
        let mut r = Rig::new();
        // Air far above any setpoint, product below target: heat would be
        // asked by the PID, and the air is too warm: nothing starts.
        let d = r.at(0, 18.9, 25.0, false, false);
        assert!(!d.cool && !d.heat, "{d:?}");
        assert!(d.why.contains("far side"), "{}", d.why);
    }

    #[test]
    fn dead_time_and_min_off_hold_a_start() {
        let mut r = Rig::new();
        r.at(0, 19.0, 19.0, true, false);
        // Heater went off at 200 s.
        r.at(200, 19.0, 19.0, false, false);
        // Warm product, warm air: cooling wanted, but within 600 s of the heater.
        let d = r.at(500, 19.5, 21.0, false, false);
        assert!(!d.cool && d.why.contains("dead time"), "{d:?}");
        // Past the dead time, the heater's peak is still being watched for.
        let d = r.at(810, 19.5, 21.0, false, false);
        assert!(!d.cool && d.why.contains("peak"), "{d:?}");
        // Its window (900 s) is over.
        let d = r.at(1110, 19.5, 21.0, false, false);
        assert!(d.cool, "{d:?}");
        // The cooler ran 1120..1200; it pauses min_off (300 s) after.
        r.at(1120, 19.5, 21.0, false, true);
        r.at(1200, 19.5, 21.0, false, false);
        let d = r.at(1400, 19.5, 21.0, false, false);
        assert!(!d.cool && d.why.contains("minimum pause"), "{d:?}");
    }

    #[test]
    fn a_peak_deeper_than_estimated_raises_the_estimator() {
        let mut r = Rig::new();
        r.at(0, 19.4, 18.5, false, false);
        r.at(10, 19.4, 18.5, false, true);
        // Off at 1210 s with air 17.0 after 1200 s: estimate 17.0 − 5/3 = 15.33.
        r.at(1210, 19.4, 17.0, false, false);
        // The air keeps falling to 14.0 (1.33 deeper), then comes back.
        let mut s = 1210;
        for k in 0..60 {
            s += 10;
            let air = (17.0 - 0.1 * f64::from(k)).max(14.0);
            r.at(s, 19.4, air, false, false);
        }
        for _ in 0..30 {
            s += 10;
            r.at(s, 19.4, 14.5, false, false);
        }
        let est = r.c.learned().cool_estimator;
        assert!(est > 5.0 * 1.2 && est <= 5.0 * 1.5, "{est}");
        assert!(r.c.take_note().is_some());
    }

    #[test]
    fn a_shallow_peak_lowers_the_estimator() {
        let mut r = Rig::new();
        r.at(0, 19.4, 18.5, false, false);
        r.at(10, 19.4, 18.5, false, true);
        r.at(1210, 19.4, 17.0, false, false);
        // The air stops at 16.9 and comes back: far short of 15.33.
        let mut s = 1210;
        for _ in 0..5 {
            s += 10;
            r.at(s, 19.4, 16.9, false, false);
        }
        for _ in 0..30 {
            s += 10;
            r.at(s, 19.4, 17.4, false, false);
        }
        let est = r.c.learned().cool_estimator;
        assert!((5.0 * 0.66..5.0 * 0.834).contains(&est), "{est}");
    }

    #[test]
    fn integral_moves_only_while_idle_and_shrinks_twice_as_fast() {
        let mut c = Cascade::new(CascadeSettings::default(), None, Units::C);
        let t0 = Instant::now();
        let input = |product: f64, cool: bool| Inputs {
            product_c: product,
            chamber_c: 19.0 - 5.0 * (product - 19.0),
            target_c: 19.0,
            heater_on: Some(false),
            cooler_on: Some(cool),
        };
        // Running: no integral, however long.
        for k in 0..30 {
            c.update(t0 + Duration::from_secs(60 * k), &input(19.2, true));
        }
        assert_eq!(c.learned().integral, 0.0);
        // Idle at −0.2 error: −0.2 a minute, from a minute after the start.
        let mut c = Cascade::new(CascadeSettings::default(), None, Units::C);
        for k in 0..=10 {
            c.update(t0 + Duration::from_secs(60 * k), &input(19.2, false));
        }
        let grown = c.learned().integral;
        assert!((grown + 2.0).abs() < 1e-9, "{grown}");
        // From there, +0.2 shrinks it by 0.4 a minute: gone in 5.
        let start = |integral| {
            let learned = Learned {
                integral,
                ..c.learned()
            };
            Cascade::new(CascadeSettings::default(), Some(learned), Units::C)
        };
        let mut shrink = start(grown);
        for k in 0..=5 {
            shrink.update(t0 + Duration::from_secs(60 * k), &input(18.8, false));
        }
        assert!(
            shrink.learned().integral.abs() < 1e-9,
            "{}",
            shrink.learned().integral
        );
        // Far from target (|error| >= 0.5), it bleeds off by 1/8 a step.
        let mut bleed = start(grown);
        for k in 0..=1 {
            bleed.update(t0 + Duration::from_secs(60 * k), &input(20.0, false));
        }
        assert!((bleed.learned().integral - grown * 7.0 / 8.0).abs() < 1e-9);
    }

    #[test]
    fn learned_state_round_trips_and_implausible_is_refused() {
        let l = Learned {
            heat_estimator: 0.3,
            cool_estimator: 4.0,
            integral: -1.5,
        };
        let c = Cascade::new(CascadeSettings::default(), Some(l), Units::C);
        assert_eq!(c.learned(), l);
        let bad = Learned {
            cool_estimator: f64::NAN,
            ..l
        };
        let c = Cascade::new(CascadeSettings::default(), Some(bad), Units::C);
        assert_eq!(c.learned().cool_estimator, 5.0);
    }
}
