//! Writes two days of simulated `readings.jsonl` and `plug-events.jsonl` (a
//! heat_cool chamber with a profile ramp, an unverified heater, a stale
//! sensor, an unreachable cooler plug that lets the alarm trip, a stopped
//! service and a few damaged lines), then plots and reports them (and writes
//! `report.json`), so a person can look at the result:
//!
//! ```text
//! cargo run --release --example plot_demo -- target/plot-demo [DAYS]
//! rsvg-convert target/plot-demo/plot.svg -o target/plot-demo.png
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use kasa_thermostat::clock::{format_rfc3339, parse_rfc3339, Precision, Zone};
use kasa_thermostat::history;
use kasa_thermostat::plot::{plot, PlotOptions};
use kasa_thermostat::report::{report, ReportOptions};

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/plot-demo".into()),
    );
    // A second argument: days to simulate (2; 7 shows a week's timing).
    let days: u64 = std::env::args()
        .nth(2)
        .and_then(|d| d.parse().ok())
        .unwrap_or(2);
    std::fs::create_dir_all(&dir).expect("create the demo directory");
    let start = parse_rfc3339("2026-11-26T21:00:00Z").unwrap();
    let (readings, events) = simulate(start, days * 86_400, 10);
    std::fs::write(dir.join(history::READINGS_FILE), readings).unwrap();
    std::fs::write(dir.join(history::PLUG_EVENTS_FILE), events).unwrap();

    let mut opts = PlotOptions::new(dir.join(history::READINGS_FILE), dir.join("plot.svg"));
    opts.zone = Zone::local_or_utc();
    let clock = Instant::now();
    match plot(&opts) {
        Ok(summary) => println!("{summary}\n(plot took {:.0} ms)", ms(clock)),
        Err(e) => eprintln!("plot: {e}"),
    }
    let mut day = opts.clone();
    day.since = Some(start + Duration::from_secs(26 * 3600));
    day.until = Some(start + Duration::from_secs(34 * 3600));
    day.out = dir.join("plot-8h.svg");
    match plot(&day) {
        Ok(summary) => println!("{summary}"),
        Err(e) => eprintln!("plot: {e}"),
    }
    let clock = Instant::now();
    match report(&ReportOptions::new(dir.clone())) {
        Ok(r) => {
            println!("\n(report took {:.0} ms)\n{r}", ms(clock));
            let json = serde_json::to_string_pretty(&r).unwrap();
            std::fs::write(dir.join("report.json"), json).unwrap();
        }
        Err(e) => eprintln!("report: {e}"),
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// A crude chamber: the room swings between 14 and 24 °C over a day, the
/// heater adds 2.5 °C/h, the cooler removes 2 °C/h. Every switch is a plug
/// command in the event log (the cooler's plug has a weak signal and needs
/// retries), plugs are read every minute, someone presses the heater's button
/// once, and the cooler's plug drops off the network for 90 minutes.
fn simulate(start: SystemTime, secs: u64, cycle: u64) -> (String, String) {
    let mut readings = String::new();
    let mut events = String::new();
    let mut t_c = 18.6f64;
    let (mut heater, mut cooler) = (false, false);
    let mut alarm_on = false;
    let mut rng = 12345u64;
    let mut noise = move || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((rng >> 33) as f64 / (1u64 << 31) as f64) - 0.5
    };
    let mut step = 0u64;
    while step * cycle < secs {
        let s = step * cycle;
        step += 1;
        let now = start + Duration::from_secs(s);
        let hour = s as f64 / 3600.0;
        // The service was stopped for 40 minutes.
        if (36.0..36.0 + 40.0 / 60.0).contains(&hour) {
            continue;
        }
        // A profile: 18-20 for a day, a ramp to 20.5-22 over 6 hours.
        let ramp = ((hour - 24.0) / 6.0).clamp(0.0, 1.0);
        let (low, high) = (18.0 + 2.5 * ramp, 20.0 + 2.0 * ramp);
        let mid = (low + high) / 2.0;
        let room = 19.0 + 5.0 * ((hour - 9.0) / 24.0 * std::f64::consts::TAU).sin();
        let cooler_unreachable = (38.0..39.5).contains(&hour);
        let dt_h = cycle as f64 / 3600.0;
        t_c += (room - t_c) * 0.25 * dt_h;
        if heater {
            t_c += 2.5 * dt_h;
        }
        if cooler && !cooler_unreachable {
            t_c -= 2.0 * dt_h;
        }
        let measured = t_c + noise() * 0.05;
        let (was_heater, was_cooler) = (heater, cooler);
        if t_c <= low {
            heater = true;
        } else if t_c >= mid {
            heater = false;
        }
        if t_c >= high {
            cooler = true;
        } else if t_c <= mid {
            cooler = false;
        }
        // An alarm above 21.9 °C, cleared below 21.7 °C.
        if measured > 21.9 {
            alarm_on = true;
        } else if measured < 21.7 {
            alarm_on = false;
        }
        let stale = (20.0..20.2).contains(&hour);
        let heater_unknown = (10.0..10.3).contains(&hour) || (40.0..40.15).contains(&hour);
        let state = |on: bool, unknown: bool| {
            if unknown {
                "unknown"
            } else if on {
                "on"
            } else {
                "off"
            }
        };
        let temp = if stale {
            "null".to_string()
        } else {
            format!("{measured:.3}")
        };
        let _ = writeln!(
            readings,
            r#"{{"time":"{}","temperature":{temp},"units":"C","mode":"heat_cool","low_limit":{low:.3},"high_limit":{high:.3},"reason":"demo","alarm":{},"sensor_stale":{stale},"heater":{{"desired":{heater},"verified":{},"state":"{}"}},"cooler":{{"desired":{cooler},"verified":{},"state":"{}"}}}}"#,
            format_rfc3339(now, Precision::Millis),
            if alarm_on { "\"high\"" } else { "null" },
            if heater_unknown {
                "null".to_string()
            } else {
                heater.to_string()
            },
            state(heater, heater_unknown),
            if cooler_unreachable {
                "null".to_string()
            } else {
                cooler.to_string()
            },
            state(cooler, cooler_unreachable),
        );
        // The plug commands of this cycle.
        let mut commands: Vec<(&str, &str, bool)> = Vec::new();
        if heater != was_heater {
            commands.push(("heater", if heater { "on" } else { "off" }, heater));
        }
        if cooler != was_cooler {
            commands.push(("cooler", if cooler { "on" } else { "off" }, cooler));
        }
        if s % 60 == 0 {
            commands.push(("heater", "read", heater));
            commands.push(("cooler", "read", cooler));
        }
        for (role, action, on) in commands {
            let failed = role == "cooler" && cooler_unreachable;
            let retries = if role == "cooler" && noise() > 0.3 {
                2
            } else {
                1
            };
            let attempt = if action == "read" { 150.0 } else { 600.0 } + noise() * 100.0;
            let duration = if failed {
                9000.0 + 3000.0
            } else if retries == 2 {
                3000.0 + 1000.0 + attempt
            } else {
                attempt
            };
            let rssi = if role == "heater" { -58.0 } else { -72.0 } + (noise() * 6.0).round();
            let deadman = match (role, action) {
                ("heater", "on") => "\"armed\"",
                ("heater", "off") => "\"cleared\"",
                ("cooler", "on") => "\"unsupported\"",
                _ => "null",
            };
            // Someone pressed the heater's button once.
            let corrected = role == "heater" && action == "read" && s == 15 * 3600;
            let _ = writeln!(
                events,
                r#"{{"time":"{}","role":"{role}","host":"10.0.0.{}:9999","action":"{action}","outcome":"{}","state":{},"attempts":{},"attempt_ms":[{attempt:.1}],"duration_ms":{duration:.1},"rssi":{},"error_kind":{},"error":{},"deadman":{deadman},"corrected":{corrected}}}"#,
                format_rfc3339(
                    now + Duration::from_millis(duration as u64),
                    Precision::Millis
                ),
                if role == "heater" { 5 } else { 6 },
                if failed { "failed" } else { "ok" },
                if failed {
                    "null".to_string()
                } else {
                    format!("\"{}\"", if on { "on" } else { "off" })
                },
                if failed { 3 } else { retries },
                if failed {
                    "null".to_string()
                } else {
                    rssi.to_string()
                },
                if failed { "\"unreachable\"" } else { "null" },
                if failed {
                    "\"10.0.0.6:9999: no route to host\""
                } else {
                    "null"
                },
            );
        }
        if step == 500 {
            readings.push_str("{\"time\":\"2026-11-27T00:");
        }
        if step == 9000 {
            readings.push_str("garbage after a full disk\n");
        }
    }
    (readings, events)
}
