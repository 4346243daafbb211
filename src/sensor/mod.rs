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

mod classify;
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

/// What a backend returns before classification: the temperature as decoded
/// plus the raw scratchpad when the backend has it (w1 and hal do), so the
/// classifier can tell the 85 °C power-on value from a real 85 °C.
#[derive(Debug, Clone, PartialEq)]
pub struct RawReading {
    /// Degrees Celsius as decoded from the sensor, no offset.
    pub celsius: f64,
    /// The 9 scratchpad bytes (CRC included), when the backend sees them.
    pub scratchpad: Option<[u8; 9]>,
    /// The sensor's id (`28-0316a2797aff`).
    pub sensor_id: String,
}

/// One temperature sensor behind some backend.
pub trait Sensor: Send {
    /// The sensor's id (`28-0316a2797aff`), for logs.
    fn id(&self) -> &str;
    /// Takes one reading. CRC retries (up to 2) happen inside; a returned
    /// fault is final for this reading.
    fn read(&mut self) -> Result<RawReading, SensorFault>;
}

/// The DS18B20 family code: the `28` of `28-0316a2797aff`.
pub(crate) const FAMILY_DS18B20: u8 = 0x28;

/// How many times a read is retried after a CRC mismatch (docs/design.md §8).
pub(crate) const CRC_RETRIES: u32 = 2;

/// Decodes the temperature from a scratchpad: bytes 0 and 1 are a signed
/// 1/16 °C count; at 9 to 11 bits the lowest bits are undefined and are
/// masked (the ds18b20 crate divides differently per resolution and reads the
/// count as unsigned, which breaks below 0 °C, so we decode ourselves).
pub(crate) fn decode_celsius(scratchpad: &[u8; 9]) -> f64 {
    let raw = i16::from_le_bytes([scratchpad[0], scratchpad[1]]);
    let mask: i16 = match resolution_from_config(scratchpad[4]) {
        Some(9) => !7,
        Some(10) => !3,
        Some(11) => !1,
        _ => !0,
    };
    f64::from(raw & mask) / 16.0
}

#[cfg(any(test, feature = "testkit"))]
/// A 12-bit scratchpad holding `celsius` (rounded to 1/16 °C) with a valid
/// CRC, as a healthy DS18B20 returns it.
pub fn scratchpad_for(celsius: f64) -> [u8; 9] {
    let raw = (celsius * 16.0).round() as i16;
    let [lsb, msb] = raw.to_le_bytes();
    let mut pad = [lsb, msb, 0x4B, 0x46, 0x7F, 0xFF, 0x10, 0x10, 0];
    pad[8] = one_wire_bus::crc::crc8(&pad[..8]);
    pad
}

/// The resolution in bits encoded by a configuration register (byte 4).
pub(crate) fn resolution_from_config(config: u8) -> Option<u8> {
    match config {
        0x1F => Some(9),
        0x3F => Some(10),
        0x5F => Some(11),
        0x7F => Some(12),
        _ => None,
    }
}

/// The configuration register (byte 4) for a resolution of 9 to 12 bits.
pub(crate) fn config_for_resolution(bits: u8) -> Option<u8> {
    match bits {
        9 => Some(0x1F),
        10 => Some(0x3F),
        11 => Some(0x5F),
        12 => Some(0x7F),
        _ => None,
    }
}

/// The DS18B20's worst-case conversion time at a resolution, in microseconds
/// (93.75 / 187.5 / 375 / 750 ms for 9 / 10 / 11 / 12 bits).
pub(crate) fn conversion_time_us(bits: u8) -> u64 {
    match bits {
        9 => 93_750,
        10 => 187_500,
        11 => 375_000,
        _ => 750_000,
    }
}

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

/// Picks the sensor to use from a scan: the one named, or the only one found.
pub(crate) fn pick_one(bus: &str, found: Vec<String>) -> Result<String, SensorError> {
    match found.len() {
        0 => Err(SensorError::Fault(SensorFault::NoDevice {
            sensor: "any DS18B20".to_string(),
            bus: bus.to_string(),
        })),
        1 => Ok(found.into_iter().next().unwrap_or_default()),
        _ => Err(SensorError::Ambiguous {
            bus: bus.to_string(),
            found,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pad(lsb: u8, msb: u8, config: u8) -> [u8; 9] {
        [lsb, msb, 0x4B, 0x46, config, 0xFF, 0x0C, 0x10, 0]
    }

    #[test]
    fn decodes_positive_negative_and_masks_low_resolutions() {
        assert_eq!(decode_celsius(&pad(0x91, 0x01, 0x7F)), 25.0625);
        assert_eq!(decode_celsius(&pad(0x5E, 0xFF, 0x7F)), -10.125);
        assert_eq!(decode_celsius(&pad(0x90, 0xFC, 0x7F)), -55.0);
        assert_eq!(decode_celsius(&pad(0xD0, 0x07, 0x7F)), 125.0);
        // 9 bits: the three lowest bits are undefined.
        assert_eq!(decode_celsius(&pad(0x97, 0x01, 0x1F)), 25.0);
        assert_eq!(decode_celsius(&pad(0xFF, 0xFF, 0x7F)), -0.0625);
    }

    #[test]
    fn resolution_round_trips() {
        for bits in 9..=12 {
            let cfg = config_for_resolution(bits).unwrap();
            assert_eq!(resolution_from_config(cfg), Some(bits));
        }
        assert_eq!(config_for_resolution(13), None);
        assert_eq!(resolution_from_config(0), None);
    }
}
