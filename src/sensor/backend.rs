//! What a sensor backend is: the [`Sensor`] trait every backend (w1, hal,
//! simulated) implements, the [`RawReading`] it returns before
//! classification, and [`pick_one`], the choice of a sensor from a bus scan
//! that the w1 and hal backends share. A leaf of `sensor/`: the backends, the
//! classifier and the thread import it, and it imports none of them.

use super::fault::SensorError;
use crate::msg::SensorFault;

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
