//! The command line: one layer for every subcommand, with one usage and help
//! convention (every subcommand answers `--help` and `-h`, and
//! `kasa-thermostat help SUBCOMMAND` works; completions for bash, zsh and
//! fish are generated) and one mapping from outcomes to exit codes:
//! **0** done, **1** failed, **2** usage error.
//!
//! [`args`] declares every flag and holds the structs the subcommands
//! receive; `flags/` is the engine that parses (over `lexopt`), prints help
//! and writes completions from those declarations. The subcommands live
//! beside them (`service.rs`: `run`, `check-config`, `status`; `plug.rs`:
//! `plug`, `discover`, `simulate-plug`; `sensor.rs`; `look.rs`: `plot`,
//! `report`, `alert-test`, `profile`). A subcommand returns `Ok(ExitCode)`
//! for outcomes that are not errors and `Err(CliError)` for everything
//! else; [`main`] prints the error once, with its causes, on one line.
//! The error type is in `error.rs` and what goes to stdout in `output.rs`
//! (the `out!`/`outln!` macros), leaves the subcommands use without
//! importing this dispatcher back.

// `output` comes first: its `out!`/`outln!` macros are in scope only for
// the modules declared after it.
#[macro_use]
mod output;
pub mod args;
mod bench;
mod error;
mod flags;
mod instances;
mod look;
mod plug;
mod sensor;
mod service;
mod set;

use std::ffi::OsString;
use std::process::ExitCode;

use args::{Command, Parsed, Shell};
use error::{CliError, CmdResult};
use flags::PROGRAM;
use output::print;

/// Runs the command line `args` (without the program name) and returns the
/// exit code, having printed what there is to print: help and the version
/// on stdout with 0, a usage error on stderr with 2 (one line, then where
/// to read more), a failure on stderr with 1.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let command = match args::parse(args) {
        Ok(Parsed::Run(command)) => command,
        Ok(Parsed::Help(text)) => return print(&text),
        Ok(Parsed::Version) => return print(&format!("{PROGRAM} {}\n", flags::VERSION)),
        Ok(Parsed::NoCommand(help)) => {
            eprint!("{help}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("{PROGRAM}: {e}\n{}", e.hint());
            return ExitCode::from(2);
        }
    };
    let name = command.name();
    match run(command) {
        Ok(code) => code,
        Err(CliError::StdoutClosed) => ExitCode::SUCCESS,
        Err(CliError::Usage(msg)) => {
            eprintln!("{PROGRAM}: {msg}\n(see {PROGRAM} {name} --help)");
            ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("{PROGRAM}: {}", err.chain());
            err.exit_code()
        }
    }
}

/// Runs one parsed subcommand.
pub(crate) fn run(command: Command) -> CmdResult {
    match command {
        Command::Run(a) => service::run(a),
        Command::CheckConfig(a) => service::check_config(a),
        Command::Status(a) => service::status(a),
        Command::Discover(a) => plug::discover(a),
        Command::Plug(a) => plug::plug(a),
        Command::SimulatePlug(a) => plug::simulate_plug(a),
        Command::Sensor(a) => sensor::sensor(a),
        Command::Plot(a) => look::plot(a),
        Command::Report(a) => look::report(a),
        Command::BenchControl(a) => bench::bench_control(a),
        Command::AlertTest(a) => look::alert_test(a),
        Command::Profile(p) => look::profile(p),
        Command::Set(a) => set::set(a),
        Command::Completions(a) => completions(a.shell),
    }
}

fn completions(shell: Shell) -> CmdResult {
    let script = match shell {
        Shell::Bash => flags::complete::bash(&args::ROOT),
        Shell::Zsh => flags::complete::zsh(&args::ROOT),
        Shell::Fish => flags::complete::fish(&args::ROOT),
    };
    Ok(print(&script))
}
