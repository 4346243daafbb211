//! The sensor thread: it never blocks on the control thread (which gets the
//! latest event, not a queue), sends every fault (staleness is the
//! controller's call now), and stops when dropped, within a bound even when
//! a read blocks.

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
fn reports_every_fault_then_recovers() {
    let (sensor, reads, healthy) = fake(false);
    let (handle, rx) = SensorHandle::spawn_with_channel(
        sensor,
        Classifier::new(0.0, 5.0),
        Duration::from_millis(10),
    )
    .unwrap();
    // Every read's fault is sent as it is; none becomes "stale" here.
    for _ in 0..3 {
        let f = recv(&rx).unwrap_err();
        assert_eq!(f.kind(), "no_presence", "{f}");
    }
    assert!(reads.load(Ordering::SeqCst) >= 3);

    healthy.store(true, Ordering::SeqCst);
    let reading = loop {
        if let Ok(r) = recv(&rx) {
            break r;
        }
    };
    assert_eq!(reading.sensor_id, "28-000000000001");

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
    )
    .unwrap();
    recv(&rx).unwrap_err();
    assert_eq!(name.lock().unwrap().as_deref(), Some("sensor"));
}

/// A read that never returns (a FIFO in place of `w1_slave`, a hung driver)
/// does not hold up whoever stops the thread: `stop` gives up after its
/// bound and leaves the thread behind.
#[test]
fn stop_is_bounded_when_a_read_blocks() {
    struct Stuck(Arc<AtomicBool>);
    impl Sensor for Stuck {
        fn id(&self) -> &str {
            "28-000000000004"
        }
        fn read(&mut self) -> Result<RawReading, SensorFault> {
            self.0.store(true, Ordering::SeqCst);
            loop {
                std::thread::park();
            }
        }
    }
    let in_read = Arc::new(AtomicBool::new(false));
    let (handle, _rx) = SensorHandle::spawn_with_channel(
        Box::new(Stuck(in_read.clone())),
        Classifier::new(0.0, 5.0),
        Duration::from_millis(10),
    )
    .unwrap();
    wait_until(|| in_read.load(Ordering::SeqCst));
    let t = Instant::now();
    assert!(!handle.stop(Duration::from_millis(200)), "left behind");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(1),
        "{took:?}"
    );
}

#[test]
fn stop_joins_a_thread_that_is_waiting() {
    let (sensor, _, _) = fake(true);
    let (handle, rx) = SensorHandle::spawn_with_channel(
        sensor,
        Classifier::new(0.0, 5.0),
        Duration::from_secs(3600),
    )
    .unwrap();
    recv(&rx).expect("the first read happens at once");
    let t = Instant::now();
    assert!(handle.stop(Duration::from_secs(2)), "joined");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}
