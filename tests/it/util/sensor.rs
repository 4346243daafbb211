//! Test helpers for the sensor tests: a w1 sysfs tree in a temp dir, and a
//! virtual 1-wire bus with DS18B20s on it.

use std::path::Path;

use kasa_thermostat::sensor::hal::{parse_rom_id, HalSensor};
use kasa_thermostat::sensor::virtual_bus::{VirtualBus, VirtualDelay, VirtualPin};
use one_wire_bus::OneWire;

/// The id used by most tests.
pub const ID_A: &str = "28-0316a2797aff";
/// A second sensor, for search tests.
pub const ID_B: &str = "28-01144f3a8caa";
/// A third sensor, sharing a long ROM prefix with `ID_A`.
pub const ID_C: &str = "28-0316a2797a0f";

/// The `w1_slave` text the kernel writes for a good reading.
pub fn w1_yes(bytes: &str, millidegrees: i32) -> String {
    let crc = bytes.split_whitespace().last().unwrap_or("00");
    format!("{bytes} : crc={crc} YES\n{bytes} t={millidegrees}\n")
}

/// Writes `<root>/<id>/w1_slave` with `text`.
pub fn write_w1(root: &Path, id: &str, text: &str) {
    let dir = root.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("w1_slave"), text).unwrap();
}

/// A bus with one device per `(id, celsius)`.
pub fn bus_with(devices: &[(&str, f64)]) -> VirtualBus {
    let bus = VirtualBus::new();
    for (id, c) in devices {
        bus.add_device(rom(id), *c);
    }
    bus
}

/// The ROM code of an id.
pub fn rom(id: &str) -> u64 {
    parse_rom_id(id).expect("a valid test id")
}

/// A 1-wire master on the bus.
pub fn wire(bus: &VirtualBus) -> OneWire<VirtualPin> {
    OneWire::new(bus.pin()).expect("the virtual pin never fails")
}

/// A hal sensor on the virtual bus (no real-time priority).
pub fn hal_sensor(
    bus: &VirtualBus,
    id: Option<&str>,
    bits: u8,
) -> HalSensor<VirtualPin, VirtualDelay> {
    match HalSensor::new(wire(bus), bus.delay(), "virtual:0", id, bits, false) {
        Ok(s) => s,
        Err(e) => panic!("opening the sensor failed: {e}"),
    }
}
