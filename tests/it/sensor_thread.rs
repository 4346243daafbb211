//! The sensor thread: it never blocks on the control thread (which gets the
//! latest event, not a queue), reports staleness, and stops when dropped.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kasa_thermostat::sensor::{
    Classifier, RawReading, Sensor, SensorEvent, SensorFault, SensorHandle,
};

/// Reads `0.01 °C × read number` while healthy, no presence otherwise.
struct Fake {
    reads: Arc<AtomicUsize>,
    healthy: Arc<AtomicBool>,
}

impl Sensor for Fake {
    fn id(&self) -> &str {
        "28-000000000001"
    }
    fn read(&mut self) -> Result<RawReading, SensorFault> {
        let n = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
        if self.healthy.load(Ordering::SeqCst) {
            Ok(RawReading {
                celsius: n as f64 * 0.01,
                scratchpad: None,
                sensor_id: self.id().to_string(),
            })
        } else {
            Err(SensorFault::NoPresence { bus: "fake".into() })
        }
    }
}

fn fake(healthy: bool) -> (Box<Fake>, Arc<AtomicUsize>, Arc<AtomicBool>) {
    let reads = Arc::new(AtomicUsize::new(0));
    let flag = Arc::new(AtomicBool::new(healthy));
    let sensor = Box::new(Fake {
        reads: reads.clone(),
        healthy: flag.clone(),
    });
    (sensor, reads, flag)
}

/// Polls until `cond` holds, for at most 5 s.
fn wait_until(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "condition not reached in 5 s");
        std::thread::yield_now();
    }
}

fn recv(rx: &crossbeam_channel::Receiver<SensorEvent>) -> SensorEvent {
    rx.recv_timeout(Duration::from_secs(5))
        .expect("an event within 5 s")
}

#[test]
fn keeps_reading_while_nobody_takes_and_hands_over_the_latest() {
    let (sensor, reads, _) = fake(true);
    let (handle, rx) = SensorHandle::spawn_with_channel(
        sensor,
        Classifier::new(0.0, 5.0),
        Duration::from_millis(10),
        Duration::from_secs(60),
    )
    .unwrap();
    // Nobody receives: a blocking sender would stop after the first read.
    wait_until(|| reads.load(Ordering::SeqCst) >= 10);
    let seen_before = reads.load(Ordering::SeqCst);
    let first = recv(&rx).expect("a reading");
    assert!(
        first.celsius >= (seen_before - 1) as f64 * 0.01 - 1e-9,
        "got read #{:.0} after {seen_before} reads: a stale queued event",
        first.celsius * 100.0
    );
    assert!(rx.len() <= 1, "the channel holds at most the latest event");
    drop(handle);
}

#[test]
fn reports_stale_then_recovers() {
    let (sensor, reads, healthy) = fake(false);
    let (handle, rx) = SensorHandle::spawn_with_channel(
        sensor,
        Classifier::new(0.0, 5.0),
        Duration::from_millis(10),
        Duration::from_millis(200),
    )
    .unwrap();
    let first = recv(&rx).unwrap_err();
    assert!(matches!(first.kind(), "no_presence" | "stale"), "{first}");
    let stale = loop {
        match recv(&rx) {
            Err(SensorFault::Stale { for_s }) => break for_s,
            Err(f) => assert_eq!(f.kind(), "no_presence"),
            Ok(r) => panic!("unexpected reading {r:?}"),
        }
    };
    assert!(stale >= 0.2, "stale after {stale} s");
    assert!(reads.load(Ordering::SeqCst) >= 2);

    healthy.store(true, Ordering::SeqCst);
    let reading = loop {
        if let Ok(r) = recv(&rx) {
            break r;
        }
    };
    assert_eq!(reading.sensor_id, "28-000000000001");

    // A valid reading restarts the stale clock: the next fault is the fault.
    healthy.store(false, Ordering::SeqCst);
    let next = loop {
        if let Err(f) = recv(&rx) {
            break f;
        }
    };
    assert_eq!(next.kind(), "no_presence", "{next}");
    drop(handle);
}

#[test]
fn classification_happens_on_the_thread() {
    struct PowerOn;
    impl Sensor for PowerOn {
        fn id(&self) -> &str {
            "28-000000000002"
        }
        fn read(&mut self) -> Result<RawReading, SensorFault> {
            Ok(RawReading {
                celsius: 85.0,
                scratchpad: None,
                sensor_id: self.id().into(),
            })
        }
    }
    let (_handle, rx) = SensorHandle::spawn_with_channel(
        Box::new(PowerOn),
        Classifier::new(0.0, 5.0),
        Duration::from_millis(10),
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(recv(&rx).unwrap_err().kind(), "power_on_value");
}

#[test]
fn dropping_the_handle_interrupts_a_long_interval() {
    let (sensor, reads, _) = fake(true);
    let (handle, rx) = SensorHandle::spawn_with_channel(
        sensor,
        Classifier::new(0.0, 5.0),
        Duration::from_secs(3600),
        Duration::from_secs(7200),
    )
    .unwrap();
    recv(&rx).expect("the first read happens at once");
    let t = Instant::now();
    drop(handle);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(reads.load(Ordering::SeqCst), 1);
}

#[test]
fn the_thread_is_named_sensor() {
    struct Name(Arc<std::sync::Mutex<Option<String>>>);
    impl Sensor for Name {
        fn id(&self) -> &str {
            "28-000000000003"
        }
        fn read(&mut self) -> Result<RawReading, SensorFault> {
            *self.0.lock().unwrap() = std::thread::current().name().map(str::to_string);
            Err(SensorFault::NoPresence { bus: "x".into() })
        }
    }
    let name = Arc::new(std::sync::Mutex::new(None));
    let (_handle, rx) = SensorHandle::spawn_with_channel(
        Box::new(Name(name.clone())),
        Classifier::new(0.0, 5.0),
        Duration::from_millis(10),
        Duration::from_secs(60),
    )
    .unwrap();
    recv(&rx).unwrap_err();
    assert_eq!(name.lock().unwrap().as_deref(), Some("sensor"));
}
