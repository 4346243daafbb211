//! The `simulated` backend: a thermal model of a chamber that the simulated
//! plugs heat and cool, for the demo (`run --simulate`) and the service tests.
//!
//! Physics: one lumped thermal mass `C` (J/°C) losing heat to the ambient
//! through a conductance `k` (W/°C), plus the heater's and the cooler's power
//! while their plugs are on:
//!
//! ```text
//! C dT/dt = k (ambient - T) + heater_w·[heater on] - cooler_w·[cooler on]
//! ```
//!
//! With constant plug states this has the exact solution
//! `T(t) = T_eq + (T0 - T_eq) e^(-t/τ)`, `τ = C/k`, `T_eq = ambient +
//! (heater_w - cooler_w)/k`, which is what [`Chamber`] integrates, so any
//! `speed` is stable. The plug states are sampled each time the model
//! advances (every `temperature()` or sensor read). The sensor adds a little
//! uniform noise and rounds to the DS18B20's 1/16 °C.
//!
//! With a `product` node (cascade control's second sensor) the chamber above
//! is the air, and a product (the beer) of heat capacity `C_p` exchanges
//! heat with it through `k_pa`:
//!
//! ```text
//! C_p dTp/dt = k_pa (Ta - Tp)
//! C   dTa/dt = k (ambient - Ta) + k_pa (Tp - Ta) + heater - cooler
//! ```
//!
//! Each node is then advanced by its exact exponential with the other held
//! constant, in sub-steps of a tenth of the faster time constant, which is
//! stable at any step and close to the coupled solution. [`Chamber::sensor`]
//! reads the air; [`Chamber::product_sensor`] reads the product.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::backend::{RawReading, Sensor};
use crate::msg::SensorFault;

/// The chamber's physics; see the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct ChamberParams {
    /// Temperature around the chamber, °C.
    pub ambient_c: f64,
    /// Temperature at the start, °C.
    pub start_c: f64,
    /// Heat capacity of the chamber and its contents, J/°C.
    pub thermal_mass_j_per_c: f64,
    /// Heat loss to the ambient per degree of difference, W/°C.
    pub loss_w_per_c: f64,
    /// Heater power while its plug is on, W.
    pub heater_w: f64,
    /// Cooling power while the cooler's plug is on, W.
    pub cooler_w: f64,
    /// Half-width of the uniform sensor noise, °C.
    pub noise_c: f64,
    /// The ambient swings this much either side of `ambient_c` (a day in a
    /// garage), starting at its low; 0 keeps it constant.
    pub ambient_swing_c: f64,
    /// The period of that swing, seconds of model time.
    pub ambient_period_s: f64,
    /// A product in the air (cascade control's product sensor), if any.
    pub product: Option<ProductNode>,
}

/// The product node of a two-node chamber.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProductNode {
    /// Heat capacity of the product, J/°C.
    pub thermal_mass_j_per_c: f64,
    /// Product-to-air conductance, W/°C.
    pub coupling_w_per_c: f64,
}

impl Default for ProductNode {
    /// About 10 L of beer in a small fridge: a time constant of 8000 s of
    /// model time to the air.
    fn default() -> Self {
        ProductNode {
            thermal_mass_j_per_c: 40_000.0,
            coupling_w_per_c: 5.0,
        }
    }
}

impl Default for ChamberParams {
    /// Ambient 14 °C; the heater alone pulls toward 30 °C, the cooler alone
    /// toward 2 °C; time constant 500 s (8.3 min) of model time.
    fn default() -> Self {
        ChamberParams {
            ambient_c: 14.0,
            start_c: 16.0,
            thermal_mass_j_per_c: 5_000.0,
            loss_w_per_c: 10.0,
            heater_w: 160.0,
            cooler_w: 120.0,
            noise_c: 0.03,
            ambient_swing_c: 0.0,
            ambient_period_s: 86_400.0,
            product: None,
        }
    }
}

impl ChamberParams {
    /// The time constant `C/k`, seconds of model time.
    pub(crate) fn tau_s(&self) -> f64 {
        self.thermal_mass_j_per_c / self.loss_w_per_c
    }

    /// The ambient temperature `model_s` seconds of model time after the start.
    pub(crate) fn ambient_at(&self, model_s: f64) -> f64 {
        if self.ambient_swing_c == 0.0 || self.ambient_period_s <= 0.0 {
            return self.ambient_c;
        }
        let phase = std::f64::consts::TAU * model_s / self.ambient_period_s;
        self.ambient_c - self.ambient_swing_c * phase.cos()
    }

    /// Where the temperature settles with these plug states, °C (with the
    /// mean ambient).
    pub(crate) fn equilibrium_c(&self, heater_on: bool, cooler_on: bool) -> f64 {
        let mut power = 0.0;
        if heater_on {
            power += self.heater_w;
        }
        if cooler_on {
            power -= self.cooler_w;
        }
        self.ambient_c + power / self.loss_w_per_c
    }
}

/// A probe of a plug's relay state.
pub(crate) type PlugProbe = Box<dyn Fn() -> bool + Send + Sync>;

struct Inner {
    params: ChamberParams,
    speed: f64,
    heater: PlugProbe,
    cooler: PlugProbe,
    state: Mutex<State>,
}

struct State {
    celsius: f64,
    /// The product node, °C (equal to the air without one).
    product_c: f64,
    at: Instant,
    rng: u64,
    fault: Option<SensorFault>,
    /// Model time since the start, seconds.
    model_s: f64,
}

/// The simulated chamber; clones share one model.
#[derive(Clone)]
pub struct Chamber {
    inner: Arc<Inner>,
}

/// The id the simulated sensor reports.
pub(crate) const SIMULATED_ID: &str = "28-00000000beef";
/// The id the simulated product sensor reports.
pub(crate) const SIMULATED_PRODUCT_ID: &str = "28-00000000b0de";

impl Chamber {
    /// A chamber whose model time runs `speed` times faster than real time,
    /// heated while `heater()` is true and cooled while `cooler()` is true.
    pub fn new(params: ChamberParams, speed: f64, heater: PlugProbe, cooler: PlugProbe) -> Chamber {
        let speed = if speed.is_finite() && speed > 0.0 {
            speed
        } else {
            1.0
        };
        let state = State {
            celsius: params.start_c,
            product_c: params.start_c,
            at: Instant::now(),
            rng: 0x9E37_79B9_7F4A_7C15,
            fault: None,
            model_s: 0.0,
        };
        Chamber {
            inner: Arc::new(Inner {
                params,
                speed,
                heater,
                cooler,
                state: Mutex::new(state),
            }),
        }
    }

    #[cfg(test)]
    /// The chamber's true temperature now, °C (no noise).
    pub(crate) fn temperature(&self) -> f64 {
        self.advance().celsius
    }

    #[cfg(test)]
    /// Makes the simulated sensor report `fault` (or work again with `None`),
    /// to demonstrate the fail-safe.
    pub(crate) fn set_sensor_fault(&self, fault: Option<SensorFault>) {
        self.advance().fault = fault;
    }

    /// A sensor in this chamber('s air).
    pub(crate) fn sensor(&self) -> Box<dyn Sensor> {
        Box::new(SimulatedSensor {
            chamber: self.clone(),
            id: SIMULATED_ID.to_string(),
            product: false,
        })
    }

    /// A sensor in the product (the air's temperature without a product node).
    pub(crate) fn product_sensor(&self) -> Box<dyn Sensor> {
        Box::new(SimulatedSensor {
            chamber: self.clone(),
            id: SIMULATED_PRODUCT_ID.to_string(),
            product: true,
        })
    }

    #[cfg(test)]
    /// The product's true temperature now, °C.
    pub(crate) fn product_temperature(&self) -> f64 {
        self.advance().product_c
    }

    /// Brings the model up to now and returns its locked state.
    fn advance(&self) -> MutexGuard<'_, State> {
        // Probe the plugs before locking: a probe may take other locks.
        let heater_on = (self.inner.heater)();
        let cooler_on = (self.inner.cooler)();
        let p = &self.inner.params;
        let mut state = match self.inner.state.lock() {
            Ok(guard) => guard,
            // The state is plain numbers: a panic elsewhere cannot leave it
            // half-updated in a harmful way.
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        let dt = now.saturating_duration_since(state.at).as_secs_f64() * self.inner.speed;
        state.at = now;
        // The ambient is taken as constant over one step (steps are short
        // against its period), which keeps the exact exponential solution.
        let eq = p.equilibrium_c(heater_on, cooler_on) - p.ambient_c + p.ambient_at(state.model_s);
        state.model_s += dt;
        let tau = p.tau_s();
        match p.product {
            None => {
                if tau.is_finite() && tau > 0.0 {
                    state.celsius = eq + (state.celsius - eq) * (-dt / tau).exp();
                } else {
                    state.celsius = eq;
                }
                state.product_c = state.celsius;
            }
            Some(n) => {
                // The air sees the ambient (through k) and the product
                // (through k_pa); the product sees the air.
                let k = p.loss_w_per_c;
                let kpa = n.coupling_w_per_c;
                let tau_a = p.thermal_mass_j_per_c / (k + kpa);
                let tau_p = n.thermal_mass_j_per_c / kpa;
                let step = (tau_a.min(tau_p) / 10.0).max(1e-3);
                let steps = (dt / step).ceil().clamp(1.0, 1e6);
                let h = dt / steps;
                for _ in 0..steps as u64 {
                    let air_eq = (k * eq + kpa * state.product_c) / (k + kpa);
                    state.celsius = air_eq + (state.celsius - air_eq) * (-h / tau_a).exp();
                    state.product_c =
                        state.celsius + (state.product_c - state.celsius) * (-h / tau_p).exp();
                }
            }
        }
        state
    }
}

/// xorshift64*: a few bits of noise without a dependency.
fn next_unit(rng: &mut u64) -> f64 {
    let mut x = *rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
    (r >> 11) as f64 / (1u64 << 53) as f64
}

struct SimulatedSensor {
    chamber: Chamber,
    id: String,
    /// Reads the product node rather than the air.
    product: bool,
}

impl Sensor for SimulatedSensor {
    fn id(&self) -> &str {
        &self.id
    }

    fn read(&mut self) -> Result<RawReading, SensorFault> {
        let noise = self.chamber.inner.params.noise_c;
        let mut state = self.chamber.advance();
        if let Some(fault) = &state.fault {
            return Err(fault.clone());
        }
        let jitter = (next_unit(&mut state.rng) * 2.0 - 1.0) * noise;
        let truth = if self.product {
            state.product_c
        } else {
            state.celsius
        };
        let celsius = ((truth + jitter) * 16.0).round() / 16.0;
        Ok(RawReading {
            celsius,
            scratchpad: None,
            sensor_id: self.id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn equilibria_match_the_documented_defaults() {
        let p = ChamberParams::default();
        assert_eq!(p.equilibrium_c(false, false), 14.0);
        assert_eq!(p.equilibrium_c(true, false), 30.0);
        assert_eq!(p.equilibrium_c(false, true), 2.0);
        assert_eq!(p.tau_s(), 500.0);
    }

    #[test]
    fn a_product_node_lags_the_air_and_settles_with_it() {
        let params = ChamberParams {
            product: Some(ProductNode::default()),
            ..ChamberParams::default()
        };
        let chamber = Chamber::new(params, 1.0, Box::new(|| false), Box::new(|| true));
        // Advance 2000 model seconds by hand: the air (tau 333 s) is most of
        // the way to its balance, the product (tau 8000 s) far behind it.
        {
            let mut s = chamber.inner.state.lock().unwrap();
            s.at -= std::time::Duration::from_secs(2000);
        }
        let (air, product) = (chamber.temperature(), chamber.product_temperature());
        assert!(air < 8.0, "{air}");
        assert!(product > air + 3.0 && product < 16.0, "{air} {product}");
        {
            let mut s = chamber.inner.state.lock().unwrap();
            s.at -= std::time::Duration::from_secs(200_000);
        }
        // Both at the cooler's balance: 14 − 120/10 = 2 °C (no heat through the product).
        let (air, product) = (chamber.temperature(), chamber.product_temperature());
        assert!(
            (air - 2.0).abs() < 0.01 && (product - 2.0).abs() < 0.01,
            "{air} {product}"
        );
        let mut ps = chamber.product_sensor();
        let r = ps.read().unwrap();
        assert_eq!(r.sensor_id, SIMULATED_PRODUCT_ID);
        assert!((r.celsius - 2.0).abs() < 0.1);
    }

    #[test]
    fn heater_warms_and_sensor_reads_near_the_model() {
        let on = Arc::new(AtomicBool::new(true));
        let probe = on.clone();
        // One real millisecond is 100 model seconds.
        let chamber = Chamber::new(
            ChamberParams::default(),
            100_000.0,
            Box::new(move || probe.load(Ordering::SeqCst)),
            Box::new(|| false),
        );
        let mut sensor = chamber.sensor();
        let start = chamber.temperature();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let warm = chamber.temperature();
        assert!(warm > start + 5.0, "{start} -> {warm}");
        assert!(warm <= 30.0 + 1e-9);
        let read = sensor.read().unwrap();
        assert!((read.celsius - chamber.temperature()).abs() < 0.2);
        assert_eq!(read.celsius * 16.0, (read.celsius * 16.0).round());
        on.store(false, Ordering::SeqCst);
        chamber.set_sensor_fault(Some(SensorFault::NoPresence { bus: "sim".into() }));
        assert_eq!(sensor.read().unwrap_err().kind(), "no_presence");
    }
}
