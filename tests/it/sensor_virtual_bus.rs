//! The `hal` read path (one-wire-bus + ds18b20, unchanged) on the virtual
//! 1-wire bus: search, read, resolution and each fault.

use std::time::Duration;

use crate::util::sensor::{bus_with, hal_sensor, rom, wire, ID_A, ID_B, ID_C};
use embedded_hal::blocking::delay::DelayMs;
use kasa_thermostat::sensor::hal::{format_rom_id, search};
use kasa_thermostat::sensor::virtual_bus::DeviceFault;
use kasa_thermostat::sensor::{Classifier, Sensor, SensorError, SensorFault};

fn read_kind(sensor: &mut dyn Sensor) -> String {
    match sensor.read() {
        Ok(raw) => match Classifier::new(0.0, 5.0).classify(raw) {
            Ok(r) => format!("ok {}", r.celsius),
            Err(f) => f.kind().to_string(),
        },
        Err(f) => f.kind().to_string(),
    }
}

#[test]
fn search_finds_every_device_sorted() {
    let bus = bus_with(&[(ID_A, 20.0), (ID_B, 21.0), (ID_C, 22.0)]);
    let mut w = wire(&bus);
    let found = search(&mut w, &mut bus.delay(), "virtual:0").unwrap();
    let mut want = vec![ID_A.to_string(), ID_B.to_string(), ID_C.to_string()];
    want.sort();
    assert_eq!(found, want);
}

#[test]
fn search_on_an_empty_line_finds_nothing() {
    let bus = bus_with(&[]);
    let found = search(&mut wire(&bus), &mut bus.delay(), "virtual:0").unwrap();
    assert!(found.is_empty());
}

#[test]
fn the_crates_own_search_iterator_sees_two_devices() {
    let bus = bus_with(&[(ID_A, 20.0), (ID_B, 21.0)]);
    let mut w = wire(&bus);
    let mut d = bus.delay();
    let ids: Vec<String> = w
        .devices(false, &mut d)
        .map(|a| format_rom_id(a.unwrap().0))
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&ID_A.to_string()) && ids.contains(&ID_B.to_string()));
}

#[test]
fn reads_the_named_device_among_several() {
    let bus = bus_with(&[(ID_A, 21.5), (ID_B, -10.125), (ID_C, 30.0)]);
    let mut a = hal_sensor(&bus, Some(ID_A), 12);
    let raw = a.read().unwrap();
    assert_eq!(raw.celsius, 21.5);
    assert_eq!(raw.sensor_id, ID_A);
    let sp = raw.scratchpad.unwrap();
    assert_eq!(one_wire_bus::crc::crc8(&sp), 0, "the CRC is valid");
    let (w, _) = a.into_parts();
    let mut b = kasa_thermostat::sensor::hal::HalSensor::new(
        w,
        bus.delay(),
        "virtual:0",
        Some(ID_B),
        12,
        false,
    )
    .unwrap();
    assert_eq!(b.read().unwrap().celsius, -10.125);
}

#[test]
fn without_an_id_the_only_device_is_taken_and_two_are_ambiguous() {
    let bus = bus_with(&[(ID_B, 19.0)]);
    let mut s = hal_sensor(&bus, None, 12);
    assert_eq!(s.id(), ID_B);
    assert_eq!(s.read().unwrap().celsius, 19.0);

    let bus = bus_with(&[(ID_A, 19.0), (ID_B, 19.0)]);
    let err = kasa_thermostat::sensor::hal::HalSensor::new(
        wire(&bus),
        bus.delay(),
        "virtual:0",
        None,
        12,
        false,
    )
    .err()
    .expect("two sensors and no id");
    assert!(matches!(err, SensorError::Ambiguous { ref found, .. } if found.len() == 2));
    assert!(err.to_string().contains("sensor.id"));
}

#[test]
fn skip_rom_converts_every_device_at_once() {
    let bus = bus_with(&[(ID_A, 20.0), (ID_B, 25.0)]);
    let mut w = wire(&bus);
    let mut d = bus.delay();
    ds18b20::start_simultaneous_temp_measurement(&mut w, &mut d).unwrap();
    d.delay_ms(750u16);
    for (id, want) in [(ID_A, 20.0), (ID_B, 25.0)] {
        let dev = ds18b20::Ds18b20::new::<std::convert::Infallible>(one_wire_bus::Address(rom(id)))
            .unwrap();
        let data = dev.read_data(&mut w, &mut d).unwrap();
        assert_eq!(f64::from(data.temperature), want);
        assert_eq!(bus.conversions(rom(id)), Some(1));
    }
}

#[test]
fn resolution_is_written_and_sets_the_wait_and_the_rounding() {
    for (bits, wait_ms, want) in [
        (9, 94, 21.5),
        (10, 188, 21.75),
        (11, 375, 21.75),
        (12, 750, 21.8125),
    ] {
        let bus = bus_with(&[(ID_A, 21.8125)]);
        let mut s = hal_sensor(&bus, Some(ID_A), bits);
        let t0 = bus.now();
        let raw = s.read().unwrap();
        assert_eq!(bus.resolution(rom(ID_A)), Some(bits), "{bits} bits");
        assert_eq!(raw.celsius, want, "{bits} bits");
        // The first read also configures; measure a second one.
        let t1 = bus.now();
        s.read().unwrap();
        let took = bus.now() - t1;
        assert!(
            took >= Duration::from_millis(wait_ms),
            "{bits} bits took {took:?}"
        );
        assert!(
            took < Duration::from_millis(wait_ms + 40),
            "{bits} bits took {took:?}"
        );
        assert!(t1 > t0);
    }
}

#[test]
fn a_sensor_that_power_cycles_is_configured_again() {
    let bus = bus_with(&[(ID_A, 20.0)]);
    let mut s = hal_sensor(&bus, Some(ID_A), 9);
    s.read().unwrap();
    assert_eq!(bus.resolution(rom(ID_A)), Some(9));
    bus.set_present(rom(ID_A), false);
    bus.set_present(rom(ID_A), true);
    assert_eq!(
        bus.resolution(rom(ID_A)),
        Some(12),
        "back to its EEPROM value"
    );
    s.read().unwrap();
    s.read().unwrap();
    assert_eq!(bus.resolution(rom(ID_A)), Some(9));
}

#[test]
fn absent_only_device_is_no_presence() {
    let bus = bus_with(&[(ID_A, 20.0)]);
    let mut s = hal_sensor(&bus, Some(ID_A), 12);
    bus.set_present(rom(ID_A), false);
    assert_eq!(read_kind(&mut s), "no_presence");
}

#[test]
fn absent_device_beside_another_is_no_device() {
    let bus = bus_with(&[(ID_A, 20.0), (ID_B, 20.0)]);
    let mut s = hal_sensor(&bus, Some(ID_A), 12);
    bus.set_present(rom(ID_A), false);
    match s.read() {
        Err(f @ SensorFault::NoDevice { .. }) => {
            assert!(f.to_string().contains(ID_A), "{f}");
        }
        other => panic!("expected no_device, got {other:?}"),
    }
}

#[test]
fn crc_errors_are_retried_twice() {
    let bus = bus_with(&[(ID_A, 20.0)]);
    let mut s = hal_sensor(&bus, Some(ID_A), 12);
    s.read().unwrap();
    bus.corrupt_crc(rom(ID_A), 2);
    assert_eq!(s.read().unwrap().celsius, 20.0, "third try succeeds");
    bus.corrupt_crc(rom(ID_A), 3);
    match s.read() {
        Err(SensorFault::CrcMismatch { attempts, .. }) => assert_eq!(attempts, 3),
        other => panic!("expected a CRC mismatch, got {other:?}"),
    }
    assert_eq!(s.read().unwrap().celsius, 20.0, "recovers");
}

#[test]
fn power_on_scratchpad_is_rejected() {
    let bus = bus_with(&[(ID_A, 20.0)]);
    bus.set_fault(rom(ID_A), DeviceFault::PowerOn);
    let mut s = hal_sensor(&bus, Some(ID_A), 12);
    let raw = s.read().unwrap();
    assert_eq!(raw.celsius, 85.0);
    assert_eq!(raw.scratchpad.unwrap()[6], 0x0C);
    assert_eq!(read_kind(&mut s), "power_on_value");
}

/// 85 °C is never believed as a first reading, even with a scratchpad that
/// is not the power-on one; reached step by step it is a real reading.
#[test]
fn a_real_85_is_accepted_only_when_reached_gradually() {
    let bus = bus_with(&[(ID_A, 85.0)]);
    let mut s = hal_sensor(&bus, Some(ID_A), 12);
    let raw = s.read().unwrap();
    assert_ne!(raw.scratchpad.unwrap()[6], 0x0C, "not the power-on bytes");
    assert_eq!(read_kind(&mut s), "power_on_value");

    let bus = bus_with(&[(ID_A, 84.0)]);
    let mut s = hal_sensor(&bus, Some(ID_A), 12);
    let mut classifier = Classifier::new(0.0, 5.0);
    let mut read = |s: &mut dyn Sensor| classifier.classify(s.read().unwrap());
    assert_eq!(read(&mut s).unwrap().celsius, 84.0);
    bus.set_temperature(rom(ID_A), 85.0);
    assert_eq!(read(&mut s).unwrap().celsius, 85.0);
}

#[test]
fn all_zero_scratchpad_is_rejected() {
    let bus = bus_with(&[(ID_A, 20.0)]);
    let mut s = hal_sensor(&bus, Some(ID_A), 12);
    s.read().unwrap();
    bus.set_fault(rom(ID_A), DeviceFault::AllZero);
    assert_eq!(read_kind(&mut s), "all_zero");
}

#[test]
fn lost_ground_is_rejected() {
    let bus = bus_with(&[(ID_A, 20.0)]);
    let mut s = hal_sensor(&bus, Some(ID_A), 12);
    bus.set_fault(rom(ID_A), DeviceFault::LostGround);
    let raw = s.read().unwrap();
    assert_eq!(raw.celsius, -0.0625);
    assert_eq!(read_kind(&mut s), "lost_ground");
}

#[test]
fn bus_stuck_low_is_reported() {
    let bus = bus_with(&[(ID_A, 20.0)]);
    let mut s = hal_sensor(&bus, Some(ID_A), 12);
    bus.set_stuck_low(true);
    match s.read() {
        Err(f @ SensorFault::BusStuckLow { .. }) => assert!(f.to_string().contains("virtual:0")),
        other => panic!("expected bus_stuck_low, got {other:?}"),
    }
    bus.set_stuck_low(false);
    assert_eq!(s.read().unwrap().celsius, 20.0);
}

#[test]
fn an_empty_line_has_no_presence_pulse() {
    let bus = bus_with(&[]);
    let mut s = hal_sensor(&bus, Some(ID_A), 12);
    assert_eq!(read_kind(&mut s), "no_presence");
}

#[test]
fn the_sensor_thread_runs_the_hal_path_on_the_virtual_bus() {
    let bus = bus_with(&[(ID_A, 21.5)]);
    let sensor = hal_sensor(&bus, Some(ID_A), 12);
    let (handle, rx) = kasa_thermostat::sensor::SensorHandle::spawn_with_channel(
        Box::new(sensor),
        Classifier::new(0.25, 5.0),
        Duration::from_millis(10),
    )
    .unwrap();
    let reading = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("an event")
        .expect("a valid reading");
    assert_eq!(reading.celsius, 21.75);
    assert_eq!(reading.sensor_id, ID_A);
    drop(handle);
    assert!(bus.conversions(rom(ID_A)).unwrap() >= 1);
}
