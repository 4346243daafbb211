//! The DS18B20 sensor (docs/design.md §8): backends, fault classification and the
//! sensor thread.
//!
//! A backend ([`Sensor`]) only talks to the hardware: it returns a
//! [`RawReading`] (the decoded temperature plus the raw scratchpad when it has
//! one) or a [`SensorFault`] for what it could see itself (no device, no
//! presence pulse, CRC mismatch after retries, I/O). Everything that needs
//! judgement across readings (power-on value, all-zero, lost ground, range,
//! spikes) is decided once, in [`Classifier`], so every backend gets the same
//! rules. [`thread::SensorHandle`] runs a backend on its own thread.
//!
//! Backends: [`w1`] (the kernel's w1-gpio sysfs tree), [`hal`] (1-wire
//! bit-banged on a GPIO line through linux-embedded-hal and the one-wire-bus
//! and ds18b20 crates), `simulated` (a thermal model of a chamber). The
//! `virtual_bus` (test support, feature `testkit`) is a slot-level simulation of a 1-wire line used to test
//! the `hal` path without hardware.

pub mod delay;
pub mod hal;
pub(crate) mod simulated;
pub(crate) mod thread;
#[cfg(any(test, feature = "testkit"))]
pub mod virtual_bus;
pub mod w1;

mod backend;
mod classify;
mod ds18b20;
mod fault;

pub use classify::Classifier;
pub use fault::SensorError;
pub use thread::SensorHandle;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which backend reads the DS18B20 (docs/design.md §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Bit-banged 1-wire on a GPIO line through linux-embedded-hal.
    Hal,
    /// The kernel's w1-gpio driver under `w1_root`.
    #[default]
    W1,
    /// A thermal model of a chamber (the demo and tests).
    Simulated,
}

/// What it takes to open a sensor: the library's own options, filled in by
/// the caller (the service from its config, `sensor read` from its flags).
#[derive(Debug, Clone, PartialEq)]
pub struct SensorOptions {
    /// The backend.
    pub backend: Backend,
    /// The sensor id (`28-0316a2797aff`); `None` takes the only one found.
    pub id: Option<String>,
    /// Root of the kernel's w1 devices (w1 backend).
    pub w1_root: PathBuf,
    /// GPIO character device (hal backend).
    pub gpio_chip: PathBuf,
    /// GPIO line offset (hal backend).
    pub gpio_line: u32,
    /// DS18B20 resolution, 9 to 12 bits (hal backend).
    pub resolution_bits: u8,
}

impl Default for SensorOptions {
    fn default() -> Self {
        SensorOptions {
            backend: Backend::W1,
            id: None,
            w1_root: PathBuf::from("/sys/bus/w1/devices"),
            gpio_chip: PathBuf::from("/dev/gpiochip0"),
            gpio_line: 4,
            resolution_bits: 12,
        }
    }
}

pub use crate::msg::{Reading, SensorEvent, SensorFault};

pub use backend::{RawReading, Sensor};
pub(crate) use ds18b20::conversion_time_us;
#[cfg(any(test, feature = "testkit"))]
pub use ds18b20::scratchpad_for;

/// Opens the backend named in the config (`hal` or `w1`). The `simulated`
/// backend is built by the caller with `simulated::Chamber`, because it
/// needs probes of the simulated plugs; asking for it here is an error.
///
/// With `sensor.id` set, the sensor is opened even if it is not there yet
/// (a read then reports `no_device`, and the service fails safe until it
/// appears); with `id` null the bus is scanned and exactly one DS18B20 must be
/// found.
pub fn open(cfg: &SensorOptions) -> Result<Box<dyn Sensor>, SensorError> {
    match cfg.backend {
        Backend::W1 => {
            let sensor = w1::W1Sensor::open(&cfg.w1_root, cfg.id.as_deref())?;
            Ok(Box::new(sensor))
        }
        Backend::Hal => {
            let sensor = hal::open_gpio(
                &cfg.gpio_chip,
                cfg.gpio_line,
                cfg.id.as_deref(),
                cfg.resolution_bits,
            )?;
            Ok(Box::new(sensor))
        }
        Backend::Simulated => Err(SensorError::SimulatedNeedsChamber),
    }
}
