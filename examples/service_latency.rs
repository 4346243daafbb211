//! How long from a threshold crossing in the w1 file to the verified plug
//! state, with the real service (in-process) against a simulated plug.
//!
//! ```sh
//! cargo run --release --example service_latency                 # defaults: cycle 10 s, interval 5 s, 8 crossings
//! cargo run --release --example service_latency -- 0.5 0.1 20   # CYCLE_S INTERVAL_S CROSSINGS
//! ```
//!
//! Each crossing (at a varying phase of the cycle) rewrites `w1_slave` (below `low_limit`, then above
//! `high_limit`) and times until the plug's relay moved and until the
//! service's read-back of it (the request after the move). The plug timing is
//! the real default (0.5 s spacing before the read-back). The last line is
//! `crossings=N switch_mean_s=X switch_max_s=Y verified_mean_s=Z verified_max_s=W`.
//!
//! `CYCLE_S` is at least 0.5 (the config's bound); an `INTERVAL_S` below the
//! 0.75 s of a 12-bit conversion reads at 9 bits (0.094 s).

use std::fs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kasa_thermostat::config::Config;
use kasa_thermostat::sensor::scratchpad_for;
use kasa_thermostat::sensor::w1::format_w1_slave;
use kasa_thermostat::service::{Options, Service};
use kasa_thermostat::sim::{SimOptions, SimPlug};
use kasa_thermostat::testkit::RecordingNotifier;

const ID: &str = "28-0316a2797aff";

fn write_w1(root: &std::path::Path, celsius: f64) {
    let text = format_w1_slave(&scratchpad_for(celsius));
    let tmp = root.join(ID).join(".tmp");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, root.join(ID).join("w1_slave")).unwrap();
}

fn main() {
    let args: Vec<f64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("CYCLE_S INTERVAL_S CROSSINGS"))
        .collect();
    let cycle = args.first().copied().unwrap_or(10.0);
    let interval = args.get(1).copied().unwrap_or(5.0);
    let crossings = args.get(2).copied().unwrap_or(8.0) as usize;

    let dir = std::env::temp_dir().join(format!("kasa-latency-{}", std::process::id()));
    let root = dir.join("w1");
    fs::create_dir_all(root.join(ID)).unwrap();
    write_w1(&root, 19.0);
    let plug = SimPlug::start(SimOptions::default()).unwrap();
    let config = Config::from_json(
        &serde_json::json!({
            "mode": "heat", "low_limit": 18, "high_limit": 20,
            "cycle_s": cycle, "rate_limit_s": cycle, "reconcile_s": 600,
            "sensor": {"backend": "w1", "id": ID, "w1_root": root, "interval_s": interval,
                       "resolution_bits": if interval < 0.75 { 9 } else { 12 },
                       "stale_after_s": (interval * 4.0).max(60.0), "max_step": 50},
            "heater": {"host": "127.0.0.1", "port": plug.addr().port(), "deadman_s": 0},
            "log_dir": dir.join("log"), "state_file": dir.join("state.json"),
        })
        .to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
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
    let state = plug.state();
    let wait_for = |on: bool| {
        let deadline =
            Instant::now() + Duration::from_secs_f64(cycle * 3.0 + interval * 3.0 + 30.0);
        while state.relay() != on {
            assert!(Instant::now() < deadline, "no switch");
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    // Let the service start and settle (off, between limits).
    std::thread::sleep(Duration::from_secs_f64(interval + 0.5));
    let (mut switch, mut verified) = (Vec::new(), Vec::new());
    for i in 0..crossings {
        let on = i % 2 == 0;
        // Cross at a different phase of the sensor interval and the cycle
        // each time (golden-ratio steps), not right after the last switch.
        let phase = (i as f64 * 0.618_034).fract();
        std::thread::sleep(Duration::from_secs_f64(phase * cycle));
        let t0 = Instant::now();
        write_w1(&root, if on { 17.0 } else { 21.0 });
        wait_for(on);
        let moved = state
            .transitions()
            .last()
            .map(|t| t.at)
            .unwrap_or_else(Instant::now);
        // The read-back is the first request after the move.
        let deadline = Instant::now() + Duration::from_secs(10);
        let readback = loop {
            if let Some(t) = state.request_times().into_iter().find(|t| *t > moved) {
                break t;
            }
            assert!(Instant::now() < deadline, "no read-back");
            std::thread::sleep(Duration::from_millis(2));
        };
        let s = moved.duration_since(t0).as_secs_f64();
        let v = readback.duration_since(t0).as_secs_f64();
        println!(
            "crossing {}: {} switched after {s:.3} s, verified after {v:.3} s",
            i + 1,
            if on { "on" } else { "off" }
        );
        switch.push(s);
        verified.push(v);
    }
    svc.shutdown();
    let _ = svc.wait();
    let _ = fs::remove_dir_all(&dir);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let max = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    println!(
        "crossings={crossings} switch_mean_s={:.3} switch_max_s={:.3} verified_mean_s={:.3} verified_max_s={:.3}",
        mean(&switch),
        max(&switch),
        mean(&verified),
        max(&verified)
    );
}
