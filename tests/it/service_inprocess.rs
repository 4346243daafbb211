//! The service started in-process through the library: readiness and the
//! watchdog through an injected notifier, and a dying thread ending the
//! service with an error after the plugs are made safe.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::util::service::*;
use kasa_thermostat::config::Config;
use kasa_thermostat::notify::Notification;
use kasa_thermostat::sensor::{RawReading, Sensor, SensorFault};
use kasa_thermostat::service::{Options, Service, ServiceError};
use kasa_thermostat::testkit::RecordingNotifier;

fn config(dir: &std::path::Path, w1: &W1Tree, heater: &kasa_thermostat::sim::SimPlug) -> Config {
    let mut v = fast_config(dir, w1);
    v["heater"] = plug_json(heater);
    Config::from_json(&v.to_string()).unwrap()
}

#[test]
fn ready_once_then_watchdog_pings_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let w1 = W1Tree::new(dir.path(), 15.0);
    let heater = sim("heater", None);
    let notes = Arc::new(RecordingNotifier::new());
    let svc = Service::start(
        config(dir.path(), &w1, &heater),
        None,
        Options {
            notifier: notes.clone(),
            watchdog: Some(Duration::from_millis(50)),
            observers: Vec::new(),
        },
    )
    .unwrap();
    let pings = |calls: &[Notification]| {
        calls
            .iter()
            .filter(|c| **c == Notification::Watchdog)
            .count()
    };
    assert!(notes.wait_until(Duration::from_secs(10), |c| pings(c) >= 5));
    assert!(eventually(Duration::from_secs(10), || heater
        .state()
        .relay()));
    svc.shutdown();
    svc.wait().unwrap();
    let calls = notes.calls();
    assert_eq!(notes.count(&Notification::Ready), 1);
    let ready = calls
        .iter()
        .position(|c| *c == Notification::Ready)
        .unwrap();
    let first_ping = calls
        .iter()
        .position(|c| *c == Notification::Watchdog)
        .unwrap();
    assert!(ready < first_ping, "ready before the first ping: {calls:?}");
    assert_eq!(
        calls
            .iter()
            .filter(|c| **c == Notification::Stopping)
            .count(),
        1
    );
    assert!(
        calls
            .iter()
            .any(|c| matches!(c, Notification::Status(s) if s.contains("heater on"))),
        "status text shows the state: {calls:?}"
    );
    assert!(!heater.state().relay(), "shutdown switched it off");
}

/// A sensor whose driver panics after a few good readings.
struct Doomed(u32);

impl Sensor for Doomed {
    fn id(&self) -> &str {
        "28-000000000bad"
    }
    fn read(&mut self) -> Result<RawReading, SensorFault> {
        self.0 += 1;
        if self.0 > 3 {
            panic!("driver bug");
        }
        Ok(RawReading {
            celsius: 10.0,
            scratchpad: None,
            sensor_id: self.id().into(),
        })
    }
}

#[test]
fn a_dying_sensor_thread_ends_the_service_with_an_error_and_safe_plugs() {
    let dir = tempfile::tempdir().unwrap();
    let w1 = W1Tree::new(dir.path(), 15.0);
    let heater = sim("heater", None);
    let svc = Service::start(
        config(dir.path(), &w1, &heater),
        Some(Box::new(Doomed(0))),
        Options {
            notifier: Arc::new(RecordingNotifier::new()),
            watchdog: None,
            observers: Vec::new(),
        },
    )
    .unwrap();
    let err = svc.wait().unwrap_err();
    assert!(
        matches!(&err, ServiceError::ThreadDied { thread, .. } if thread == "sensor"),
        "{err}"
    );
    assert!(
        !heater.state().relay(),
        "plugs put in their shutdown state first"
    );
}

#[test]
fn mode_off_without_plugs_runs_one_cycle_per_tick() {
    let dir = tempfile::tempdir().unwrap();
    let w1 = W1Tree::new(dir.path(), 15.0);
    let mut v = fast_config(dir.path(), &w1);
    v["mode"] = serde_json::json!("off");
    let config = Config::from_json(&v.to_string()).unwrap();
    let readings = dir.path().join("log/readings.jsonl");
    let lines = || {
        std::fs::read_to_string(&readings)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let start = std::time::Instant::now();
    let svc = Service::start(
        config,
        None,
        Options {
            notifier: Arc::new(RecordingNotifier::new()),
            watchdog: None,
            observers: Vec::new(),
        },
    )
    .unwrap();
    assert!(eventually(Duration::from_secs(10), || lines() >= 3));
    svc.shutdown();
    svc.wait().unwrap();
    // One line per cycle; a loop spinning on a closed channel would have
    // written thousands.
    let most = (start.elapsed().as_secs_f64() / CYCLE_S) as usize + 2;
    assert!(
        lines() <= most,
        "{} lines in {:?}",
        lines(),
        start.elapsed()
    );
}

/// Reads 15 °C until told to block (the first flag), then never returns
/// from a read (a FIFO in place of `w1_slave`, a hung driver) and says so
/// (the second flag).
struct Blocks(Arc<AtomicBool>, Arc<AtomicBool>);

impl Sensor for Blocks {
    fn id(&self) -> &str {
        "28-00000000b10c"
    }
    fn read(&mut self) -> Result<RawReading, SensorFault> {
        while self.0.load(Ordering::SeqCst) {
            self.1.store(true, Ordering::SeqCst);
            std::thread::park_timeout(Duration::from_secs(3600));
        }
        Ok(RawReading {
            celsius: 15.0,
            scratchpad: None,
            sensor_id: self.id().into(),
        })
    }
}

#[test]
fn shutdown_does_not_wait_for_a_blocked_sensor_read() {
    let dir = tempfile::tempdir().unwrap();
    let w1 = W1Tree::new(dir.path(), 15.0);
    let heater = sim("heater", None);
    let block = Arc::new(AtomicBool::new(false));
    let blocked = Arc::new(AtomicBool::new(false));
    let svc = Service::start(
        config(dir.path(), &w1, &heater),
        Some(Box::new(Blocks(block.clone(), blocked.clone()))),
        Options {
            notifier: Arc::new(RecordingNotifier::new()),
            watchdog: None,
            observers: Vec::new(),
        },
    )
    .unwrap();
    assert!(eventually(Duration::from_secs(10), || heater
        .state()
        .relay()));
    block.store(true, Ordering::SeqCst);
    assert!(eventually(Duration::from_secs(5), || blocked.load(Ordering::SeqCst)));
    let started = std::time::Instant::now();
    svc.shutdown();
    svc.wait()
        .expect("every plug verified in its shutdown state");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(!heater.state().relay(), "shutdown switched it off");
}
