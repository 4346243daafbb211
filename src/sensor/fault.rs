//! What can go wrong with a DS18B20 (DESIGN §6), in words a user can act on.
//!
//! [`SensorFault`] is a rejected or failed reading: it travels from the sensor
//! thread to the control thread, so it is `Clone` and carries its context as
//! text. [`SensorError`] is a failure to open a backend at all; it keeps its
//! cause for `source()`.

use std::error::Error as StdError;
use std::fmt;

/// Why there is no valid reading this time.
#[derive(Debug, Clone, PartialEq)]
pub enum SensorFault {
    /// The sensor is not on the bus (no `w1_slave` for it, or the ROM search
    /// does not find it).
    NoDevice {
        /// The id looked for.
        sensor: String,
        /// Where it was looked for (`/sys/bus/w1/devices`, `/dev/gpiochip0:4`).
        bus: String,
    },
    /// Nothing answered the reset pulse: no sensor is connected, or its data
    /// or power wire is broken.
    NoPresence {
        /// The bus (`/dev/gpiochip0:4`).
        bus: String,
    },
    /// The scratchpad CRC did not match on every try (1 + retries).
    CrcMismatch {
        /// The sensor id.
        sensor: String,
        /// Reads tried.
        attempts: u32,
        /// The bytes of the last try, in hex, for the log.
        bytes: String,
    },
    /// 85.000 °C with the power-on scratchpad, as a first reading or a jump:
    /// the sensor reset (power dip) and no conversion has happened since.
    PowerOnValue {
        /// The sensor id.
        sensor: String,
    },
    /// An all-zero scratchpad (0.000 °C with a valid CRC): the data line
    /// reads low throughout, nothing real was read.
    AllZero {
        /// The sensor id.
        sensor: String,
    },
    /// FF FF in the temperature bytes (-0.0625 °C), as a first reading or a
    /// jump: the sensor's ground is lost.
    LostGround {
        /// The sensor id.
        sensor: String,
    },
    /// Outside the DS18B20's range of -55..125 °C.
    OutOfRange {
        /// The sensor id.
        sensor: String,
        /// The value read, °C, before the offset.
        celsius: f64,
    },
    /// A step larger than `sensor.max_step` from the last accepted reading.
    Spike {
        /// The sensor id.
        sensor: String,
        /// Last accepted reading, °C (offset applied).
        from: f64,
        /// This reading, °C (offset applied).
        to: f64,
        /// The largest believable step, °C.
        max_step: f64,
    },
    /// No valid reading for this long (`sensor.stale_after_s`).
    Stale {
        /// Seconds since the last valid reading (or since start).
        for_s: f64,
    },
    /// The data line is held low: a short to ground or a dead sensor.
    BusStuckLow {
        /// The bus (`/dev/gpiochip0:4`).
        bus: String,
    },
    /// Reading a file or a GPIO line failed.
    Io {
        /// The file or line.
        path: String,
        /// The system's message.
        message: String,
    },
}

impl SensorFault {
    /// The fault's name in logs, the state file and the CLI's exit message.
    pub fn kind(&self) -> &'static str {
        match self {
            SensorFault::NoDevice { .. } => "no_device",
            SensorFault::NoPresence { .. } => "no_presence",
            SensorFault::CrcMismatch { .. } => "crc_mismatch",
            SensorFault::PowerOnValue { .. } => "power_on_value",
            SensorFault::AllZero { .. } => "all_zero",
            SensorFault::LostGround { .. } => "lost_ground",
            SensorFault::OutOfRange { .. } => "out_of_range",
            SensorFault::Spike { .. } => "spike",
            SensorFault::Stale { .. } => "stale",
            SensorFault::BusStuckLow { .. } => "bus_stuck_low",
            SensorFault::Io { .. } => "io",
        }
    }
}

impl fmt::Display for SensorFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SensorFault::NoDevice { sensor, bus } => write!(
                f,
                "no sensor {sensor} on {bus}: check the wiring, and that sensor.id matches \
                 `kasa-thermostat sensor scan`"
            ),
            SensorFault::NoPresence { bus } => write!(
                f,
                "no presence pulse on {bus}: no sensor answers; check the data, power and \
                 ground wires and the 4.7 kΩ pull-up"
            ),
            SensorFault::CrcMismatch {
                sensor,
                attempts,
                bytes,
            } => write!(
                f,
                "sensor {sensor}: CRC mismatch on {attempts} reads (last: {bytes}): noise on the \
                 line; check the pull-up, cable length and connections"
            ),
            SensorFault::PowerOnValue { sensor } => write!(
                f,
                "sensor {sensor} reads 85.000 °C, its power-on value: it reset (power dip or \
                 loose power wire) and has not converted since"
            ),
            SensorFault::AllZero { sensor } => write!(
                f,
                "sensor {sensor} returned an all-zero scratchpad (0.000 °C): the data line \
                 reads low; check the wiring"
            ),
            SensorFault::LostGround { sensor } => write!(
                f,
                "sensor {sensor} reads FF FF (-0.0625 °C): its ground wire is probably \
                 disconnected"
            ),
            SensorFault::OutOfRange { sensor, celsius } => write!(
                f,
                "sensor {sensor} reads {celsius:.3} °C, outside the DS18B20's -55..125 °C"
            ),
            SensorFault::Spike {
                sensor,
                from,
                to,
                max_step,
            } => write!(
                f,
                "sensor {sensor} jumped from {from:.3} to {to:.3} °C, more than sensor.max_step \
                 ({max_step:.3} °C): ignored as a glitch"
            ),
            SensorFault::Stale { for_s } => write!(
                f,
                "no valid temperature reading for {for_s:.0} s (sensor.stale_after_s)"
            ),
            SensorFault::BusStuckLow { bus } => write!(
                f,
                "the 1-wire line {bus} is held low: a short between data and ground, or a \
                 missing pull-up"
            ),
            SensorFault::Io { path, message } => write!(f, "reading {path} failed: {message}"),
        }
    }
}

impl StdError for SensorFault {}

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
            (SensorFault::Stale { for_s: 60.0 }, "stale"),
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
