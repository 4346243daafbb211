//! Two DS18B20s on one line (cascade's product and chamber sensors): each
//! read through its own probe on the shared line, and the sensor thread
//! sending each on its own channel.

use std::time::Duration;

use crate::util::sensor::{bus_with, wire, ID_A, ID_B};
use kasa_thermostat::sensor::hal::probes_on;
use kasa_thermostat::sensor::{Classifier, SensorHandle};

#[test]
fn two_probes_share_one_line_and_read_their_own_sensor() {
    let bus = bus_with(&[(ID_A, 19.5), (ID_B, 14.25)]);
    let mut probes = probes_on(wire(&bus), bus.delay(), "virtual:0", &[ID_A, ID_B], 12);
    let chamber = probes.pop().unwrap();
    let mut product = probes.pop().unwrap();
    assert_eq!(product.id(), ID_A);
    assert_eq!(chamber.id(), ID_B);
    assert_eq!(product.read().unwrap().celsius, 19.5);
    let (handle, product_rx, chamber_rx) = SensorHandle::spawn_pair(
        (product, Classifier::new(0.0, 5.0)),
        (chamber, Classifier::new(0.25, 5.0)),
        Duration::from_millis(20),
    )
    .unwrap();
    let p = product_rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    let c = chamber_rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert_eq!((p.sensor_id.as_str(), p.celsius), (ID_A, 19.5));
    // The chamber's own offset (0.25) applies to the chamber only.
    assert_eq!((c.sensor_id.as_str(), c.celsius), (ID_B, 14.5));
    assert!(handle.stop(Duration::from_secs(5)));
}
