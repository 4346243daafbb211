//! The plants `bench-control` runs when no `--plant` is given: plant files
//! like anyone else's (the same parser and checks), chosen to cover the
//! model: heat_cool with fermentation heat, a profile with a cold crash, a
//! heat-only daily profile, and a heater into the product.
//!
//! The numbers are physical estimates, not fitted to any controller:
//! * **ale**: docs/design.md §16's example: 20 L in a small fridge (air, walls and
//!   shelves 25 kJ/K; 1.5 W/K through the cabinet), a 25 W tube heater and
//!   90 W of compressor cooling, fermentation heat peaking at 20 W on day 2.
//! * **lager**: the same fridge in a cellar that swings ±2 °C a day; a
//!   slower, cooler fermentation; 7 days at 10 °C, a diacetyl rest at 14 °C,
//!   then a cold crash to 2 °C over two days.
//! * **reptile**: a 120 × 60 × 60 cm glass vivarium (15 kJ/K, 4 W/K
//!   through the glass) with a 100 W ceramic heat emitter (slow: 10 min), a
//!   basking slab as the product (4 kg as water), 30 °C by day and 24 °C
//!   by night in a room that swings ±2 °C.
//! * **seed shelf**: a heat mat (20 W, slow) under seed trays (3 kg as
//!   water) under a dome (3 kJ/K of air and plastic), in a room at 18 ± 3 °C.

use super::error::BenchError;
use super::plant::PlantFile;

/// The built-in plant files, by name.
pub const PLANTS: [(&str, &str); 4] = [
    (
        "ale-20l-fridge",
        r#"{ "name": "ale-20l-fridge", "product_kg": 20, "air_j_per_k": 25000,
  "ua_product_air_w_per_k": 5, "ua_air_ambient_w_per_k": 1.5,
  "ambient_c": 22, "heater_w": 25, "heater_into": "air",
  "heater_lag_s": 120, "cooler_w": 90, "cooler_lag_s": 300,
  "ferment": {"peak_w": 20, "peak_h": 48, "duration_h": 144},
  "sensor_noise_c": 0.03, "plug_latency_s": 1, "plug_failure_rate": 0.01,
  "low": 18.5, "high": 19.5, "settle_h": 12, "days": 7,
  "initial_product_c": 22, "initial_air_c": 22 }"#,
    ),
    (
        "lager-20l-cold-crash",
        r#"{ "name": "lager-20l-cold-crash", "product_kg": 20, "air_j_per_k": 25000,
  "ua_product_air_w_per_k": 5, "ua_air_ambient_w_per_k": 1.5,
  "ambient_c": {"mean": 16, "amplitude": 2, "period_h": 24},
  "heater_w": 25, "heater_into": "air", "heater_lag_s": 120,
  "cooler_w": 90, "cooler_lag_s": 300,
  "ferment": {"peak_w": 12, "peak_h": 72, "duration_h": 216},
  "sensor_noise_c": 0.03, "plug_latency_s": 1, "plug_failure_rate": 0.01,
  "profile": {"start": "now", "steps": [
    {"hold": "7d", "low": 9.5, "high": 10.5},
    {"ramp": "1d", "to_low": 13.5, "to_high": 14.5},
    {"hold": "2d", "low": 13.5, "high": 14.5},
    {"ramp": "2d", "to_low": 1.5, "to_high": 2.5},
    {"hold": "2d", "low": 1.5, "high": 2.5}]},
  "settle_h": 12, "days": 14, "initial_product_c": 16, "initial_air_c": 16 }"#,
    ),
    (
        "reptile-vivarium",
        r#"{ "name": "reptile-vivarium", "product_kg": 4, "air_j_per_k": 15000,
  "ua_product_air_w_per_k": 3, "ua_air_ambient_w_per_k": 4,
  "ambient_c": {"mean": 21, "amplitude": 2, "period_h": 24},
  "heater_w": 100, "heater_into": "air", "heater_lag_s": 600, "cooler_w": null,
  "sensor_noise_c": 0.05, "plug_latency_s": 1, "plug_failure_rate": 0.01,
  "profile": {"start": "08:00", "repeat": "daily", "steps": [
    {"hold": "12h", "low": 29, "high": 31},
    {"hold": "12h", "low": 23, "high": 25}]},
  "settle_h": 12, "days": 7, "initial_product_c": 21, "initial_air_c": 21 }"#,
    ),
    (
        "seed-shelf-mat",
        r#"{ "name": "seed-shelf-mat", "product_kg": 3, "air_j_per_k": 3000,
  "ua_product_air_w_per_k": 3, "ua_air_ambient_w_per_k": 2,
  "ambient_c": {"mean": 18, "amplitude": 3, "period_h": 24},
  "heater_w": 20, "heater_into": "product", "heater_lag_s": 600, "cooler_w": null,
  "sensor_noise_c": 0.03, "plug_latency_s": 1, "plug_failure_rate": 0.01,
  "low": 23.5, "high": 24.5, "settle_h": 12, "days": 7,
  "initial_product_c": 18, "initial_air_c": 18 }"#,
    ),
];

/// Every built-in plant, parsed and checked.
pub fn plants() -> Result<Vec<PlantFile>, BenchError> {
    PLANTS
        .iter()
        .map(|(name, text)| PlantFile::parse(text, &format!("(built-in {name})")))
        .collect()
}
