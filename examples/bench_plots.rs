//! Draws the README's two figures: day 2 (the fermentation's peak) of the
//! built-in ale fermenter under hysteresis and under cascade. Runs the
//! control bench with a trace, turns each trace's day into the lines
//! `readings.jsonl` holds (the product reading as `temperature`, the air as
//! `chamber_temperature`, the setpoint, the limits, both plugs), and draws
//! them with `plot`, as a user would draw their own service's day:
//!
//! ```text
//! cargo run --release --example bench_plots -- docs
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use kasa_thermostat::bench::{self, BenchAlgorithm};
use kasa_thermostat::clock::Zone;
use kasa_thermostat::plot::{plot, PlotOptions};

/// The run starts here (any fixed time; the axis is drawn in UTC).
const START_UNIX: u64 = 1_767_571_200;

fn main() {
    let out_dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "docs".into()));
    let work = std::env::temp_dir().join(format!("bench-plots-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("a temporary directory");
    let ale = bench::builtin::plants()
        .expect("the built-in plants parse")
        .remove(0);
    for alg in [BenchAlgorithm::Hysteresis, BenchAlgorithm::Cascade] {
        let r = bench::run(&ale, alg, Some(3.0), Some(&work)).expect("the bench runs");
        let trace = work.join(format!("{}-{}.csv", ale.name, alg.as_str()));
        let text = std::fs::read_to_string(&trace).expect("the trace");
        let mut lines = String::new();
        for row in text.lines().skip(1) {
            let f: Vec<&str> = row.split(',').collect();
            let t: f64 = f[0].parse().expect("t_s");
            if !(86_400.0..172_800.0).contains(&t) {
                continue;
            }
            let time = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(START_UNIX as f64 + t);
            let stamp = time::OffsetDateTime::from(time)
                .format(&time::format_description::well_known::Rfc3339)
                .expect("a time");
            let plug = |v: &str| {
                let on = v == "1";
                format!(
                    r#"{{"desired":{on},"verified":{on},"state":"{}"}}"#,
                    if on { "on" } else { "off" }
                )
            };
            let set = if f[9].is_empty() { "null" } else { f[9] };
            writeln!(
                lines,
                r#"{{"time":"{stamp}","temperature":{},"units":"C","mode":"heat_cool","low_limit":{},"high_limit":{},"chamber_temperature":{},"chamber_setpoint":{set},"chamber_stale":false,"alarm":null,"sensor_stale":false,"heater":{},"cooler":{}}}"#,
                f[3], f[7], f[8], f[4], plug(f[5]), plug(f[6])
            )
            .expect("a string");
        }
        let readings = work.join(format!("readings-{}.jsonl", alg.as_str()));
        std::fs::write(&readings, lines).expect("the readings");
        let svg = out_dir.join(format!("bench-ale-{}.svg", alg.as_str()));
        let mut opts = PlotOptions::new(readings, svg.clone());
        opts.zone = Zone::utc();
        let summary = plot(&opts).expect("the plot");
        println!(
            "{}: rms {:.3} °C over the run; {} ({summary})",
            alg.as_str(),
            r.rms_c,
            svg.display()
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}
