//! What can go wrong with a DS18B20 (docs/design.md §8), in words a user can act on.
//!
//! [`SensorFault`] is a rejected or failed reading: it travels from the sensor
//! thread to the control thread, so it is `Clone` and carries its context as
//! text. [`SensorError`] is a failure to open a backend at all; it keeps its
//! cause for `source()`.

use std::error::Error as StdError;
use std::fmt;

pub(crate) use crate::msg::SensorFault;

/// Why a sensor backend could not be opened.
#[derive(Debug)]
pub enum SensorError {
    /// The bus was opened but the sensor is not usable (see the fault).
    Fault(SensorFault),
    /// Several sensors were found and `sensor.id` does not say which to use.
    Ambiguous {
        /// Where they were found.
        bus: String,
        /// Their ids.
        found: Vec<String>,
    },
    /// `sensor.id` is not of the form `28-0316a2797aff`.
    BadId {
        /// The id as given.
        id: String,
    },
    /// `sensor.resolution_bits` is not 9 to 12.
    BadResolution {
        /// The value given.
        bits: u8,
    },
    /// The GPIO chip or line could not be opened or requested.
    Gpio {
        /// The chip (`/dev/gpiochip0`).
        chip: String,
        /// The line offset.
        line: u32,
        /// The cause.
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
    /// A directory could not be listed.
    Io {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The simulated backend needs the simulated plugs: build it with
    /// `simulated::Chamber`.
    SimulatedNeedsChamber,
    /// `chamber_sensor` is not read on this backend yet: use the `w1`
    /// backend (the kernel's driver reads several sensors on one line).
    ChamberUnsupported {
        /// The backend.
        backend: &'static str,
    },
}

impl fmt::Display for SensorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SensorError::Fault(fault) => fmt::Display::fmt(fault, f),
            SensorError::Ambiguous { bus, found } => write!(
                f,
                "several sensors on {bus} ({}): set sensor.id to one of them",
                found.join(", ")
            ),
            SensorError::BadId { id } => write!(
                f,
                "sensor id {id:?} is not a DS18B20 id like 28-0316a2797aff (family 28, \
                 12 hex digits)"
            ),
            SensorError::BadResolution { bits } => {
                write!(f, "sensor.resolution_bits {bits}: allowed are 9 to 12")
            }
            SensorError::Gpio { chip, line, .. } => write!(
                f,
                "cannot use GPIO line {line} of {chip} (is the user in the gpio group, and is \
                 the line free of the w1-gpio overlay?)"
            ),
            SensorError::Io { path, .. } => write!(f, "cannot list {path}"),
            SensorError::SimulatedNeedsChamber => f.write_str(
                "the simulated sensor is built with simulated::Chamber, not sensor::open",
            ),
            SensorError::ChamberUnsupported { backend } => write!(
                f,
                "chamber_sensor is not read on the {backend} backend yet; use sensor.backend \"w1\" \
                 (both sensors on the kernel's 1-wire line)"
            ),
        }
    }
}

impl StdError for SensorError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            SensorError::Fault(fault) => Some(fault),
            SensorError::Gpio { source, .. } => Some(source.as_ref()),
            SensorError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<SensorFault> for SensorError {
    fn from(fault: SensorFault) -> SensorError {
        SensorError::Fault(fault)
    }
}

/// Formats bytes as lower-case hex separated by spaces, as the kernel does.
pub(crate) fn hex_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_the_documented_names() {
        let s = || "28-0316a2797aff".to_string();
        let cases = [
            (
                SensorFault::NoDevice {
                    sensor: s(),
                    bus: "x".into(),
                },
                "no_device",
            ),
            (SensorFault::NoPresence { bus: "x".into() }, "no_presence"),
            (
                SensorFault::CrcMismatch {
                    sensor: s(),
                    attempts: 3,
                    bytes: String::new(),
                },
                "crc_mismatch",
            ),
            (SensorFault::PowerOnValue { sensor: s() }, "power_on_value"),
            (SensorFault::AllZero { sensor: s() }, "all_zero"),
            (SensorFault::LostGround { sensor: s() }, "lost_ground"),
            (
                SensorFault::OutOfRange {
                    sensor: s(),
                    celsius: 200.0,
                },
                "out_of_range",
            ),
            (
                SensorFault::Spike {
                    sensor: s(),
                    from: 1.0,
                    to: 9.0,
                    max_step: 5.0,
                },
                "spike",
            ),
            (
                SensorFault::Garbled {
                    path: "p".into(),
                    reason: "r".into(),
                },
                "garbled",
            ),
            (
                SensorFault::Io {
                    path: "p".into(),
                    message: "m".into(),
                },
                "io",
            ),
        ];
        for (fault, kind) in cases {
            assert_eq!(fault.kind(), kind);
            let text = fault.to_string();
            assert!(!text.contains('\n'), "{text}");
        }
    }

    #[test]
    fn display_names_the_sensor() {
        let f = SensorFault::PowerOnValue {
            sensor: "28-0316a2797aff".into(),
        };
        assert!(f.to_string().contains("28-0316a2797aff"));
        assert_eq!(hex_bytes(&[0x50, 0x05, 0xff]), "50 05 ff");
    }
}
