//! Prints how much per-GPIO-call latency a DS18B20 read tolerates, measured on
//! the virtual 1-wire bus, and how precise the busy-wait delay is here.
//!
//! `cargo run --release --example onewire_latency`

use std::time::{Duration, Instant};

use embedded_hal::blocking::delay::DelayUs;
use kasa_thermostat::sensor::delay::SpinDelay;
use kasa_thermostat::sensor::virtual_bus::{
    full_read_works_with_latency, max_tolerated_latency, DEVICE_HOLD_US,
};

fn main() {
    println!("per-call latency -> full read (search + configure + 2 reads)");
    let mut latency = Duration::ZERO;
    while latency <= Duration::from_micros(12) {
        let ok = full_read_works_with_latency(latency);
        println!(
            "  {:>5.2} µs  {}",
            latency.as_secs_f64() * 1e6,
            if ok { "ok" } else { "FAILS" }
        );
        latency += Duration::from_micros(1) / 2;
    }
    match max_tolerated_latency(Duration::from_nanos(100), Duration::from_micros(30)) {
        Some(max) => println!(
            "largest tolerated latency per pin call: {:.1} µs (device holds a 0 for {DEVICE_HOLD_US} µs)",
            max.as_secs_f64() * 1e6
        ),
        None => println!("no latency tolerated at all"),
    }

    let mut delay = SpinDelay;
    for us in [2u16, 6, 9, 60, 480] {
        let n = 2000;
        let mut worst = Duration::ZERO;
        let mut total = Duration::ZERO;
        for _ in 0..n {
            let t = Instant::now();
            delay.delay_us(us);
            let over = t
                .elapsed()
                .saturating_sub(Duration::from_micros(u64::from(us)));
            worst = worst.max(over);
            total += over;
        }
        println!(
            "SpinDelay {us:>3} µs: mean overshoot {:.2} µs, worst {:.1} µs",
            total.as_secs_f64() * 1e6 / f64::from(n),
            worst.as_secs_f64() * 1e6
        );
    }
    let n = 2000;
    let mut worst = Duration::ZERO;
    for _ in 0..n {
        let t = Instant::now();
        std::thread::sleep(Duration::from_micros(6));
        worst = worst.max(t.elapsed());
    }
    println!(
        "thread::sleep(6 µs): worst {:.1} µs (why 1-wire cannot sleep)",
        worst.as_secs_f64() * 1e6
    );
}
