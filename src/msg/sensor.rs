//! Between the sensor thread and the control thread: a [`Reading`] the
//! classifier accepted, or the [`SensorFault`] that explains why there is
//! none this time. Whether the sensor is *stale* (no valid reading for
//! `sensor.stale_after_s`) is decided in one place only, by the controller,
//! from the time of the last reading.

use std::fmt;
use std::time::Instant;

/// A temperature the classifier accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Degrees Celsius, calibration offset applied.
    pub celsius: f64,
    /// The sensor's id as the kernel prints it (`28-0316a2797aff`).
    pub sensor_id: String,
    /// When the reading was taken (monotonic).
    pub at: Instant,
}

/// What a sensor thread sends: a reading, or why there is none.
pub type SensorEvent = Result<Reading, SensorFault>;

/// Which sensor an event is from. Each has its own channel from the sensor
/// thread (both are read on one bus, in turn), so a reading of one never
/// displaces the other's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Probe {
    /// `sensor`: the product (the beer, the enclosure's hot spot): the
    /// temperature that is held.
    Product,
    /// `chamber_sensor`: the air around it (cascade control).
    Chamber,
}

impl Probe {
    /// `sensor` or `chamber sensor`, as the logs name them.
    pub fn label(self) -> &'static str {
        match self {
            Probe::Product => "sensor",
            Probe::Chamber => "chamber sensor",
        }
    }
}

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
    /// The data line is held low: a short to ground or a dead sensor.
    BusStuckLow {
        /// The bus (`/dev/gpiochip0:4`).
        bus: String,
    },
    /// The `w1_slave` file is not in the kernel's exact shape (a corrupted
    /// read or a broken driver): no temperature is taken from it.
    Garbled {
        /// The file.
        path: String,
        /// What departs from the shape.
        reason: String,
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
            SensorFault::BusStuckLow { .. } => "bus_stuck_low",
            SensorFault::Garbled { .. } => "garbled",
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
            SensorFault::BusStuckLow { bus } => write!(
                f,
                "the 1-wire line {bus} is held low: a short between data and ground, or a \
                 missing pull-up"
            ),
            SensorFault::Garbled { path, reason } => write!(
                f,
                "{path} is garbled ({reason}): not the kernel's w1_slave shape, no temperature \
                 taken from it; a corrupted read or a broken w1 driver"
            ),
            SensorFault::Io { path, message } => write!(f, "reading {path} failed: {message}"),
        }
    }
}

impl std::error::Error for SensorFault {}
