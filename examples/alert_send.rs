//! Runs an alert hook once with a `test` event, as `kasa-thermostat
//! alert-test` will, and prints what ran, its status and how long it took.
//! `.ci/alert_recipes.sh` uses it to try the README's recipes against a local
//! listener.
//!
//! ```sh
//! cargo run --example alert_send -- FILE.json
//! ```
//! `FILE.json` is a config file (or any JSON object) with an `alerts` section,
//! or the `alerts` object itself. Exit status: 0 delivered, 1 failed, 2 usage.

use std::process::ExitCode;

use kasa_thermostat::alerts::{self, AlertSettings, RawAlerts};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path] = args.as_slice() else {
        eprintln!("usage: alert_send FILE.json  (a file with an \"alerts\" section)");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("alert_send: cannot read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("alert_send: {path} is not JSON: {e}");
            return ExitCode::from(2);
        }
    };
    let section = value.get("alerts").cloned().unwrap_or(value);
    let settings = match serde_json::from_value::<RawAlerts>(section)
        .map_err(|e| e.to_string())
        .and_then(|raw| AlertSettings::from_raw(&raw).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("alert_send: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let (outcome, status) = match alerts::send_test(&settings) {
        Ok(o) => (o, ExitCode::SUCCESS),
        Err(alerts::AlertError::Failed(o)) => (*o, ExitCode::FAILURE),
        Err(e) => {
            eprintln!("alert_send: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("ran {outcome}");
    print!("stdin: {}", outcome.stdin);
    for (name, tail) in [
        ("stdout", &outcome.stdout_tail),
        ("stderr", &outcome.stderr_tail),
    ] {
        if !tail.is_empty() {
            println!("{name} (tail):\n{}", tail.trim_end());
        }
    }
    status
}
