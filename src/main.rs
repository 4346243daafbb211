//! The `kasa-thermostat` binary: everything lives in the library; this file only
//! maps the outcome of a subcommand to an exit code and prints errors once.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = std::env::args_os().skip(1).collect::<Vec<_>>();
    match kasa_thermostat::cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kasa-thermostat: {}", err.chain());
            err.exit_code()
        }
    }
}
