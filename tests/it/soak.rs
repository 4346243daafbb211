//! The soak test (issue 8): the real binary in `heat_cool` for about a minute
//! against two simulated plugs in their own processes and a w1 tree, with
//! seeded random disturbances, one at a time:
//!
//! * sensor garbage (bad text, CRC NO, an empty file, 85.000 out of nowhere),
//!   some long enough to make the sensor stale;
//! * a plug restarted with a fault (lag, drop, flaky, slow, garbage, err),
//!   which is also a power cut: it comes back off;
//! * a plug frozen with SIGSTOP, then SIGCONT;
//! * a hand switching a plug off (another client);
//! * a lagging switch-on: a plug that acknowledges a switch and moves its
//!   relay 1.5 s later, driven on and then at once to the other side (the
//!   heater and cooler on together of the "unknown is not off" issue).
//!
//! It checks the invariants from the plugs' own transition logs and the
//! service's files: never both on; with healthy plugs, every plug in its
//! fault state within `stale_after_s + cycle_s` of the last valid reading;
//! every state-file read is valid; every data-log line is one JSON object;
//! and a clean, verified shutdown at the end.

use std::ffi::OsStr;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kasa_thermostat::outputs::StateFile;
use kasa_thermostat::sensor::scratchpad_for;
use kasa_thermostat::sensor::w1::format_w1_slave;
use serde_json::{json, Value};

use crate::util::simulate_plug;

const SENSOR_ID: &str = "28-0316a2797aff";
const CYCLE_S: f64 = 0.5;
const STALE_AFTER_S: f64 = 1.5;
/// Scheduling slack for the stale check on a busy 2-core machine.
const SLACK_S: f64 = 1.0;

/// The binary under test (through the emulator on a cross test run).
fn bin() -> Command {
    crate::util::bin()
}

fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// xorshift64*: the disturbances are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn secs(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() % 10_000) as f64 / 10_000.0 * (hi - lo)
    }
}

/// A `w1_slave` file the service reads, rewritten atomically.
struct W1 {
    dir: PathBuf,
}

impl W1 {
    fn write(&self, text: &str) {
        let tmp = self.dir.join(".w1_slave.tmp");
        fs::write(&tmp, text).unwrap();
        fs::rename(&tmp, self.dir.join("w1_slave")).unwrap();
    }
    fn set(&self, celsius: f64) {
        self.write(&format_w1_slave(&scratchpad_for(celsius)));
    }
}

/// A `simulate-plug` process logging its relay changes.
struct SimProc {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl SimProc {
    fn start(bind: &str, fault: Option<&str>, log: &Path) -> SimProc {
        let (mut child, addr) = Self::spawn(bind, fault, log);
        let Some(addr) = addr else {
            let _ = child.kill();
            panic!("simulate-plug on {bind} did not start: {:?}", child.wait());
        };
        SimProc {
            child,
            addr,
            log: log.to_path_buf(),
        }
    }

    fn spawn(bind: &str, fault: Option<&str>, log: &Path) -> (Child, Option<SocketAddr>) {
        let mut args = vec![OsStr::new("--bind"), OsStr::new(bind)];
        args.extend([OsStr::new("--transitions"), log.as_os_str()]);
        if let Some(f) = fault {
            args.extend([OsStr::new("--fault"), OsStr::new(f)]);
        }
        simulate_plug(args)
    }

    fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// SIGTERM and wait: the relay goes off with the process (logged).
    fn stop(mut self) -> SocketAddr {
        self.signal(libc::SIGCONT);
        self.signal(libc::SIGTERM);
        self.child.wait().unwrap();
        self.addr
    }

    /// A power cycle: back on the same port, off, with `fault`.
    fn restart(self, fault: Option<&str>) -> SimProc {
        let log = self.log.clone();
        let addr = self.stop();
        // The port is free once the process is gone; retry briefly in case
        // the kernel has not released it yet.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (mut child, got) = Self::spawn(&addr.to_string(), fault, &log);
            if let Some(got) = got {
                return SimProc {
                    child,
                    addr: got,
                    log,
                };
            }
            let _ = child.wait();
            assert!(Instant::now() < deadline, "cannot rebind {addr}");
        }
    }

    /// Switches it off as another client would (the app, a hand).
    fn hand_off(&self) {
        use kasa_thermostat::kasa::{Device, TransportKind};
        let transport = kasa_thermostat::kasa::transport::xor::XorTransport::new(
            "127.0.0.1",
            self.addr.port(),
            Duration::from_millis(200),
        );
        let mut dev =
            kasa_thermostat::kasa::iot::IotDevice::new(transport, None, TransportKind::Legacy);
        let _ = dev.set(false, Instant::now() + Duration::from_millis(300));
    }
}

/// On-intervals `[start, end)` in Unix ms from a transition log.
fn on_spans(log: &Path, end_ms: f64) -> Vec<(f64, f64)> {
    let text = fs::read_to_string(log).unwrap_or_default();
    let mut spans = Vec::new();
    let mut since: Option<f64> = None;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let t = v["t_ms"].as_f64().unwrap();
        match (v["on"].as_bool().unwrap(), since) {
            (true, None) => since = Some(t),
            (false, Some(s)) => {
                spans.push((s, t));
                since = None;
            }
            _ => {}
        }
    }
    if let Some(s) = since {
        spans.push((s, end_ms));
    }
    spans
}

/// Whether the plug whose log this is was off at `t` (Unix ms).
fn off_at(log: &Path, t: f64) -> bool {
    !on_spans(log, f64::MAX)
        .iter()
        .any(|(s, e)| *s <= t && t < *e)
}

#[test]
fn a_minute_of_random_faults_keeps_every_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let w1_root = dir.path().join("w1");
    let w1 = W1 {
        dir: w1_root.join(SENSOR_ID),
    };
    fs::create_dir_all(&w1.dir).unwrap();
    w1.set(19.0);
    let heater_log = dir.path().join("heater.jsonl");
    let cooler_log = dir.path().join("cooler.jsonl");
    let mut heater = Some(SimProc::start("127.0.0.1:0", None, &heater_log));
    let mut cooler = Some(SimProc::start("127.0.0.1:0", None, &cooler_log));
    let state_file = dir.path().join("run/state.json");
    let log_dir = dir.path().join("log");
    let plug = |sim: &SimProc| {
        json!({"host": "127.0.0.1", "port": sim.addr.port(), "protocol": "legacy",
               "deadman_s": 3, "min_on_s": 0, "min_off_s": 0})
    };
    let config = json!({
        "mode": "heat_cool", "low_limit": 18.0, "high_limit": 20.0,
        "cycle_s": CYCLE_S, "rate_limit_s": 0.5, "switchover_delay_s": 1.0, "reconcile_s": 2.0,
        "sensor": {"backend": "w1", "id": SENSOR_ID, "w1_root": w1_root,
                   "resolution_bits": 9, "interval_s": 0.2, "stale_after_s": STALE_AFTER_S,
                   "max_step": 50.0},
        "heater": plug(heater.as_ref().unwrap()),
        "cooler": plug(cooler.as_ref().unwrap()),
        "plug_timing": {"connect_s": 0.1, "before_s": 0.2, "after_s": 0.2, "spacing_s": 0.05,
                        "retry_sleeps_s": [0, 0.05, 0.1]},
        "log_dir": log_dir, "log_level": "debug", "state_file": state_file,
        "lock_dir": dir.path().join("locks"),
    });
    let config_path = dir.path().join("config.json");
    fs::write(&config_path, config.to_string()).unwrap();
    let mut service = bin()
        .args(["run", "--config"])
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Every read of the state file must parse.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (stop, reads, path) = (stop.clone(), reads.clone(), state_file.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(text) = fs::read_to_string(&path) {
                    if let Err(e) = StateFile::parse(&text) {
                        panic!(
                            "state file read {}: {e}\n{text}",
                            reads.load(Ordering::Relaxed)
                        );
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let start = Instant::now();
    let mut temp: f64 = 19.0;
    // (time the sensor broke, Unix ms) for each stale spell with healthy plugs.
    let mut stale_spells: Vec<f64> = Vec::new();
    let mut counts = [0u32; 5];
    // A walk around a target that swings 16..22 °C every 16 s, so both
    // plugs have work to do.
    let walk = move |rng: &mut Rng, temp: &mut f64, w1: &W1| {
        let phase = start.elapsed().as_secs_f64() / 16.0 * std::f64::consts::TAU;
        let target = 19.0 + 3.0 * phase.sin();
        *temp += rng.secs(-0.4, 0.4) + (target - *temp) * 0.3;
        w1.set(*temp);
    };
    // Drives the temperature for `secs` while a disturbance holds.
    let hold = |rng: &mut Rng, temp: &mut f64, w1: Option<&W1>, secs: f64| {
        let until = Instant::now() + Duration::from_secs_f64(secs);
        while Instant::now() < until {
            if let Some(w1) = w1 {
                walk(rng, temp, w1);
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    };
    while start.elapsed() < Duration::from_secs(55) {
        {
            let secs = rng.secs(0.5, 1.5);
            hold(&mut rng, &mut temp, Some(&w1), secs)
        };
        match rng.below(5) {
            0 => {
                counts[0] += 1;
                let garbage = [
                    "garbage\n".to_string(),
                    String::new(),
                    "72 01 4b 46 7f ff 0e 10 57 : crc=00 NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
                        .to_string(),
                    format_w1_slave(&scratchpad_for(85.0)),
                ];
                let g = &garbage[rng.below(4) as usize];
                let long = rng.below(2) == 0;
                let secs = if long {
                    STALE_AFTER_S + CYCLE_S + SLACK_S + 0.5
                } else {
                    rng.secs(0.2, 1.0)
                };
                let broke = unix_ms();
                w1.write(g);
                hold(&mut rng, &mut temp, None, secs);
                if long {
                    stale_spells.push(broke);
                }
                w1.set(temp);
            }
            1 => {
                counts[1] += 1;
                let faults = [
                    "lag:1500", "lag:300", "drop", "flaky:2", "slow:100", "garbage", "err",
                ];
                let f = faults[rng.below(faults.len() as u64) as usize];
                let which = rng.below(2) == 0;
                let slot = if which { &mut heater } else { &mut cooler };
                *slot = Some(slot.take().unwrap().restart(Some(f)));
                {
                    let secs = rng.secs(1.0, 3.0);
                    hold(&mut rng, &mut temp, Some(&w1), secs)
                };
                *slot = Some(slot.take().unwrap().restart(None));
            }
            2 => {
                counts[2] += 1;
                let which = rng.below(2) == 0;
                let sim = if which { &heater } else { &cooler };
                sim.as_ref().unwrap().signal(libc::SIGSTOP);
                {
                    let secs = rng.secs(0.5, 3.0);
                    hold(&mut rng, &mut temp, Some(&w1), secs)
                };
                sim.as_ref().unwrap().signal(libc::SIGCONT);
            }
            3 => {
                counts[4] += 1;
                let heating = rng.below(2) == 0;
                let slot = if heating { &mut heater } else { &mut cooler };
                *slot = Some(slot.take().unwrap().restart(Some("lag:1500")));
                let (near, far) = if heating { (16.0, 22.5) } else { (22.5, 16.0) };
                w1.set(near);
                hold(&mut rng, &mut temp, None, 0.8);
                w1.set(far);
                temp = far;
                hold(&mut rng, &mut temp, None, 4.0);
                *slot = Some(slot.take().unwrap().restart(None));
            }
            _ => {
                counts[3] += 1;
                let which = rng.below(2) == 0;
                let sim = if which { &heater } else { &cooler };
                sim.as_ref().unwrap().hand_off();
            }
        }
    }
    // Calm down, then stop the service: both plugs verified off.
    hold(&mut rng, &mut temp, None, 2.0);
    w1.set(19.0);
    hold(&mut rng, &mut temp, None, 2.0);
    unsafe {
        libc::kill(service.id() as i32, libc::SIGTERM);
    }
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = service.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "shutdown hangs");
        std::thread::sleep(Duration::from_millis(20));
    };
    let stop_took = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let end = unix_ms();
    let heater = heater.take().unwrap();
    let cooler = cooler.take().unwrap();
    let (h_addr, c_addr) = (heater.stop(), cooler.stop());
    eprintln!(
        "soak: {counts:?} (sensor, restart, SIGSTOP, hand, lagging on), {} state reads, stop {:.2} s, {h_addr} {c_addr}",
        reads.load(Ordering::Relaxed),
        stop_took.as_secs_f64()
    );

    // Never both on.
    let hs = on_spans(&heater_log, end);
    let cs = on_spans(&cooler_log, end);
    eprintln!(
        "soak: heater on {} times, cooler on {} times",
        hs.len(),
        cs.len()
    );
    assert!(
        hs.len() >= 3 && cs.len() >= 3,
        "both plugs worked: {hs:?} {cs:?}"
    );
    for (a, b) in &hs {
        for (c, d) in &cs {
            assert!(
                b <= c || d <= a,
                "both on from {} to {} ms",
                a.max(*c),
                b.min(*d)
            );
        }
    }
    // Fault state (off) within stale_after_s + cycle_s of the last valid reading.
    assert!(!stale_spells.is_empty(), "the seed made no stale spell");
    for broke in &stale_spells {
        let by = broke + (STALE_AFTER_S + CYCLE_S + SLACK_S) * 1000.0;
        assert!(
            off_at(&heater_log, by),
            "heater on at {by} after the sensor broke at {broke}"
        );
        assert!(
            off_at(&cooler_log, by),
            "cooler on at {by} after the sensor broke at {broke}"
        );
    }
    // Every data-log line is one JSON object.
    for name in ["readings.jsonl", "plug-events.jsonl"] {
        let text = fs::read_to_string(log_dir.join(name)).unwrap();
        assert!(text.lines().count() > 10, "{name} is nearly empty");
        for line in text.lines() {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
            assert!(v.is_object());
        }
    }
    assert!(reads.load(Ordering::Relaxed) > 100);
    // A clean, verified shutdown.
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        fs::read_to_string(log_dir.join("kasa-thermostat.log"))
            .unwrap_or_default()
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(off_at(&heater_log, end - 1.0), "heater left on");
    assert!(off_at(&cooler_log, end - 1.0), "cooler left on");
}
